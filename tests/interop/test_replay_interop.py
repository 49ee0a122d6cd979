"""History with real clients: a facilitated session, its timeline and summary, and a 10x replay."""

# History with real clients: a facilitated session (our Python client and two stock y-websocket Node
# clients, comments over HTTP) through `cocreate serve --secret`, then its timeline and summary checked
# against numbers worked out here from the script, and a 10x replay watched by a stock provider.
#
# Nothing sleeps: every wait is for a condition or a line from a process, with a timeout.

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from server.auth import Role
from server.tokens import issue
from tests.interop.conftest import Peers
from tests.interop.node_client import INTEROP_DIR
from tests.interop.py_peer import python_peer
from tests.support.http import request
from tests.support.server_process import ServerProcess, running_server

pytestmark = [pytest.mark.interop, pytest.mark.timeout(90)]

SECRET = "interop-history-secret-0123456789abcdef"
DOC = "team/workshop"
BASE = f"/api/documents/{DOC}/-"


def tok(user: str, role: Role) -> str:
    return issue(user, user.title(), {"team/*": role}, now=time.time(), ttl=600, secret=SECRET)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServerProcess]:
    with running_server(tmp_path, None, "--secret", SECRET) as process:
        yield process


async def http(server: ServerProcess, method: str, path: str, token: str, body: Any = None) -> Any:
    reply = await asyncio.to_thread(
        request, server.port, method, path, body, {"Authorization": f"Bearer {token}"}
    )
    assert 200 <= reply.status < 300, (method, path, reply.status, reply.body)
    return json.loads(reply.body) if reply.body else None


class Watcher:
    """js/replay_watcher.mjs: a stock provider reporting every text and awareness change it sees."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process
        self.texts: list[str] = []
        self.awareness: list[dict[str, Any]] = []

    @classmethod
    async def start(cls, node: str, server: ServerProcess, params: dict[str, str]) -> Watcher:
        script = str(INTEROP_DIR / "js" / "replay_watcher.mjs")
        pipe = asyncio.subprocess.PIPE
        process = await asyncio.create_subprocess_exec(
            node,
            script,
            server.ws("").rstrip("/"),
            DOC,
            json.dumps(params),
            cwd=INTEROP_DIR,
            stdin=pipe,
            stdout=pipe,
        )
        return cls(process)

    async def until(self, wanted: str, timeout: float = 20.0) -> dict[str, Any]:
        assert self.process.stdout is not None
        async with asyncio.timeout(timeout):
            while True:
                line = await self.process.stdout.readline()
                assert line, "the watcher exited"
                event = json.loads(line)
                if event["event"] == "text":
                    self.texts.append(event["text"])
                elif event["event"] == "awareness":
                    self.awareness.append(event["states"])
                assert event["event"] not in ("console", "closed"), event
                if event["event"] == wanted or (
                    wanted.startswith("text=") and event.get("text") == wanted[5:]
                ):
                    return dict(event)

    async def stop(self) -> None:
        if self.process.stdin is not None and self.process.returncode is None:
            self.process.stdin.write(b"stop\n")
            await self.process.stdin.drain()
        await asyncio.wait_for(self.process.wait(), 10)


async def test_a_facilitated_session_its_numbers_and_its_replay(peers: Peers, server: ServerProcess) -> None:
    olga, ann = tok("olga", Role.OWNER), tok("ann", Role.EDITOR)
    ben, cat = tok("ben", Role.EDITOR), tok("cat", Role.EDITOR)
    await http(server, "POST", "/api/documents", olga, {"name": DOC})
    session = await http(server, "POST", f"{BASE}/sessions", olga, {"name": "workshop 3"})
    anna = await peers.stack.enter_async_context(python_peer(server.ws(DOC, f"token={ann}")))
    bob = await peers.node(DOC, name="ben", params={"token": ben})
    carla = await peers.node(DOC, name="cat", params={"token": cat})
    anna.client.set_awareness({"user": {"name": "Ann"}, "cursor": 0})
    await bob.set_awareness({"user": {"name": "Ben"}, "cursor": 5})
    await carla.set_awareness({"user": {"name": "Cat"}, "cursor": 6})

    for i, ch in enumerate("Hello"):  # ann: five keystrokes
        anna.insert_text_at_char(i, ch)
        await anna.client.flushed()
    await bob.wait_for(roots={"t": "Hello"})
    await bob.insert_text("t", " world", 5)  # ben writes on from ann's text
    await carla.wait_for(roots={"t": "Hello world"})
    await carla.insert_text("t", "Big ", 6)  # cat inserts inside ben's text
    await bob.wait_for(roots={"t": "Hello Big world"})
    mark = await http(server, "POST", f"{BASE}/bookmarks", olga, {"label": "halfway"})
    await bob.delete_text("t", 0, 1)  # ben deletes ann's "H"
    await anna.until(lambda: str(anna.text) == "ello Big world")
    anna.insert_text_at_char(0, "J")
    await anna.client.flushed()
    await carla.wait_for(roots={"t": "Jello Big world"})
    await carla.delete_text("t", 6, 4)  # cat deletes her own "Big "
    await anna.until(lambda: str(anna.text) == "Jello world")
    thread = await http(
        server, "POST", f"{BASE}/threads", cat, {"root": "t", "range": {"start": 0, "end": 5}, "body": "nice"}
    )
    await http(server, "POST", f"{BASE}/threads/{thread['id']}/comments", ben, {"body": "thanks"})
    ended = await http(server, "POST", f"{BASE}/sessions/{session['id']}/end", olga)
    assert ended["end_seq"] - ended["start_seq"] == 10 and ended["bookmarks"][0]["id"] == mark["id"]

    # -- timeline: who wrote what, in bursts --------------------------------------------------------
    timeline = await http(server, "GET", f"{BASE}/history/timeline?gap=600&limit=1000", olga)
    assert timeline["authors"] == {
        "ann": {"bursts": 1, "updates": 6, "inserted": 6, "deleted": 0},
        "ben": {"bursts": 1, "updates": 2, "inserted": 6, "deleted": 1},
        "cat": {"bursts": 1, "updates": 2, "inserted": 4, "deleted": 4},
    }
    kinds = [e["kind"] for e in timeline["entries"]]
    assert {"comment.thread_created", "comment.added", "join", "session.started", "bookmark.added"} <= set(
        kinds
    )

    # -- session summary, worked out from the script above ------------------------------------------
    summary = await http(server, "GET", f"{BASE}/sessions/{session['id']}/summary", olga)
    people = {p["author"]: p for p in summary["participants"]}
    expected = {  # written, kept, deleted own, deleted others', lost to others, comments, replies, built on
        "ann": (6, 5, 0, 0, 1, 0, 0, {}),
        "ben": (6, 6, 0, 1, 0, 0, 1, {"ann": 6}),
        "cat": (4, 0, 4, 0, 0, 1, 0, {"ben": 4}),
    }
    for name, numbers in expected.items():
        p = people[name]
        got = (p["written"], p["kept"], p["deleted_own"], p["deleted_others"], p["lost_to_others"])
        assert (*got, p["comments"], p["replies"], p["built_on"]) == numbers, name
        assert p["active_minutes"] >= 1

    # -- replay at 10x into a stock y-websocket provider ---------------------------------------------
    auth = {"Authorization": f"Bearer {olga}"}
    states = []
    for seq in range(ended["start_seq"], ended["end_seq"] + 1):
        path = f"{BASE}/history/at?seq={seq}&format=text&root=t"
        states.append((await asyncio.to_thread(request, server.port, "GET", path, None, auth)).body.decode())
    replay = await http(server, "POST", f"{BASE}/replays", olga, {"session": session["id"], "speed": 10})
    watcher = await Watcher.start(
        peers.node_path, server, {"token": tok("vic", Role.VIEWER), "replay": replay["id"]}
    )
    try:
        synced = await watcher.until("synced")
        assert synced["text"] == states[0]
        started = time.monotonic()
        await http(server, "POST", f"{BASE}/replays/{replay['id']}/play", olga)
        await watcher.until(f"text={states[-1]}")
        elapsed = time.monotonic() - started
    finally:
        await watcher.stop()
    changes = [s for i, s in enumerate(states) if i == 0 or s != states[i - 1]][1:]
    assert watcher.texts == changes  # every state, in log order, ending in the final one
    status = await http(server, "GET", f"{BASE}/replays/{replay['id']}", olga)
    assert status["state"] == "ended" and status["seq"] == ended["end_seq"]
    assert elapsed >= 0.5 * status["duration"]  # paced, not dumped
    names = {s.get("user", {}).get("name") for states_now in watcher.awareness for s in states_now.values()}
    assert {"Ann", "Ben", "Cat"} <= names  # the recorded participants' presence was replayed
