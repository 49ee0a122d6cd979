"""History routes in process: time travel, timeline, diff, sessions, restore, replays, roles."""

# History routes in process (signed tokens): time travel, timeline, diff, sessions, summaries, restore,
# replay control, and who may do what.

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pycrdt import Doc

from persistence.base import NewUpdate, Storage
from persistence.memory import MemoryStorage
from persistence.sql import SqlStorage
from server.app import build
from server.auth import Role
from server.history import history_for
from server.hub import Hub
from server.settings import Settings
from server.tokens import issue
from tests.crdt.history_logs import Row, make_log, seeds, text_of, texts_after_each
from tests.support.asgi import Reply, call

SECRET = "history-test-secret-0123456789abcdef"
DOC = "team/essay"
BASE = f"/api/documents/{DOC}/-"


def tok(user: str, role: Role) -> str:
    return issue(user, user.title(), {"team/*": role}, now=time.time(), ttl=3600, secret=SECRET)


OWNER, EDITOR, VIEWER = tok("olga", Role.OWNER), tok("ed", Role.EDITOR), tok("vic", Role.VIEWER)
COMMENTER = tok("cam", Role.COMMENTER)


@dataclass
class Api:
    hub: Hub
    app: Any
    rows: list[Row]

    async def __call__(self, method: str, path: str, token: str | None = VIEWER, **kw: Any) -> Reply:
        return await call(self.app, method, path, token=token, **kw)

    async def ok(
        self, method: str, path: str, token: str | None = VIEWER, status: int = 200, **kw: Any
    ) -> Any:
        reply = await self(method, path, token, **kw)
        assert reply.status == status, reply.body
        return reply.json()


async def seeded(storage: Storage, rows: list[Row], **overrides: Any) -> Api:
    app, hub = build(Settings(secret=SECRET, **overrides), storage)
    await storage.open()
    record = await storage.create_document(DOC, rows[0].created_at - 1 if rows else time.time())
    for row in rows:
        await storage.append_updates(record.id, [NewUpdate(row.data, row.author, row.created_at)])
    return Api(hub, app, rows)


@pytest.fixture
async def api() -> AsyncIterator[Api]:
    rows, _ = make_log(21, 3, 240)
    yield await seeded(MemoryStorage(), rows)


async def check_every_seq(storage: Storage, rows: list[Row]) -> None:
    api = await seeded(storage, rows, history_checkpoint_rows=7)
    try:
        history = history_for(api.hub)
        record = await history.record(DOC)
        expected = texts_after_each(rows)
        for seq in [*range(len(rows), -1, -1), *range(len(rows) + 1)]:  # backwards, then forwards
            assert text_of(await history.state_at(record, seq)) == expected[seq]
        stored = await storage.read_updates(record.id)
        assert [(r.seq, r.data, r.author) for r in stored] == [(r.seq, r.data, r.author) for r in rows]
        if len(rows) > 10:
            assert await storage.latest_snapshot(record.id) is not None  # checkpoints were left behind
    finally:
        await storage.close()


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=seeds, steps=st.integers(1, 100))
def test_the_state_at_every_seq_equals_replaying_the_log(seed: int, steps: int) -> None:
    rows, _ = make_log(seed, 3, steps)
    asyncio.run(check_every_seq(MemoryStorage(), rows))


async def test_time_travel_on_sqlite_leaves_checkpoints(tmp_path: Path) -> None:
    rows, _ = make_log(4, 3, 140)
    await check_every_seq(SqlStorage(f"sqlite+aiosqlite:///{tmp_path / 'h.db'}"), rows)


async def test_document_at_a_seq_or_a_time_in_three_formats(api: Api) -> None:
    texts = texts_after_each(api.rows)
    middle = api.rows[len(api.rows) // 2]
    view = await api.ok("GET", f"{BASE}/history/at?seq={middle.seq}")
    assert view["seq"] == middle.seq and view["roots"]["t"] == {"type": "text", "value": texts[middle.seq]}
    reply = await api("GET", f"{BASE}/history/at?at={middle.created_at}&format=text")
    assert reply.body.decode() == texts[int(reply.headers["x-cocreate-seq"])]
    assert int(reply.headers["x-cocreate-seq"]) >= middle.seq
    raw = await api("GET", f"{BASE}/history/at?seq=3&format=update")
    doc: Doc[Any] = Doc()
    doc.apply_update(raw.body)
    assert text_of(doc) == texts[3]
    assert (await api("GET", f"{BASE}/history/at?seq=1&at=5")).status == 422
    assert (await api("GET", f"{BASE}/history/at?seq=1", token=None)).status == 401


async def test_timeline_authors_counts_and_pages(api: Api) -> None:
    view = await api.ok("GET", f"{BASE}/history/timeline?gap=10&limit=5")
    authors = view["authors"]
    assert set(authors) == {r.author for r in api.rows}
    for name, totals in authors.items():
        assert totals["updates"] == sum(1 for r in api.rows if r.author == name)
    fold = await history_for(api.hub).fold(await history_for(api.hub).record(DOC))
    assert sum(t["inserted"] for t in authors.values()) == sum(fold.inserted)
    assert len(view["entries"]) == 5 and view["next"] == 5
    entries, offset = [], 0
    while offset is not None:
        page = await api.ok("GET", f"{BASE}/history/timeline?gap=10&limit=7&offset={offset}&kinds=edit")
        entries += page["entries"]
        offset = page["next"]
    assert sum(e["updates"] for e in entries) == len(api.rows)
    assert [e["time"] for e in entries] == sorted(e["time"] for e in entries)
    assert (await api("GET", f"{BASE}/history/timeline?kinds=nope")).status == 422
    # a window cutting through bursts (gap 1000 s: few, long bursts): only the rows inside count
    since, until = api.rows[len(api.rows) // 3].created_at, api.rows[len(api.rows) * 2 // 3].created_at - 0.1
    inside = [(r, i) for i, r in enumerate(api.rows) if since <= r.created_at <= until]
    query = f"gap=1000&kinds=edit&limit=1000&from={since}&to={until}"
    windowed = await api.ok("GET", f"{BASE}/history/timeline?{query}")
    expected = {a: sum(1 for r, _ in inside if r.author == a) for a in {r.author for r, _ in inside}}
    assert {a: t["updates"] for a, t in windowed["authors"].items()} == expected
    assert sum(t["inserted"] for t in windowed["authors"].values()) == sum(
        fold.inserted[i] for _, i in inside
    )
    assert sum(t["deleted"] for t in windowed["authors"].values()) == sum(fold.deleted[i] for _, i in inside)
    for entry in windowed["entries"]:
        assert since <= entry["time"] and entry["seconds"] <= until - since
        assert api.rows[entry["first_seq"] - 1].created_at >= since
        assert api.rows[entry["last_seq"] - 1].created_at <= until
    assert sum(e["updates"] for e in windowed["entries"]) == len(inside)


async def test_diff_changes_and_frames(api: Api) -> None:
    texts = texts_after_each(api.rows)
    low, high = len(api.rows) // 6, len(api.rows) * 3 // 4
    api.hub.clock = lambda: api.rows[4].created_at + 0.1  # a thread opened between rows 5 and 6
    thread = await api.ok(
        "POST",
        f"{BASE}/threads",
        COMMENTER,
        201,
        json={"root": "t", "range": {"start": 0, "end": 1}, "body": "hm"},
    )
    api.hub.clock = lambda: api.rows[-1].created_at + 60  # a reply after the last edit of the log
    await api.ok("POST", f"{BASE}/threads/{thread['id']}/comments", COMMENTER, 201, json={"body": "ok"})
    diff = await api.ok("GET", f"{BASE}/history/diff?from_seq={low}&to_seq={high}")
    added = sum(len(h["text"]) for h in diff["hunks"] if h["kind"] == "added")
    removed = sum(len(h["text"]) for h in diff["hunks"] if h["kind"] == "removed")
    assert added - removed == len(texts[high]) - len(texts[low])
    assert sum(a["added"] for a in diff["authors"].values()) == added
    changes = await api.ok("GET", f"{BASE}/history/changes?from_seq=0&to_seq=5")
    assert [u["seq"] for u in changes["updates"]] == [1, 2, 3, 4, 5]
    reply = await api("GET", f"{BASE}/history/frames?to_seq={high}&speed=10&format=ndjson&changes=1")
    frames = [json.loads(line) for line in reply.body.splitlines()]
    assert [f["seq"] for f in frames if f["kind"] == "update"] == list(range(1, high + 1))
    assert [f["offset"] for f in frames] == sorted(f["offset"] for f in frames)
    assert all("changes" in f for f in frames if f["kind"] == "update")
    (event,) = [f for f in frames if f["kind"] == "event"]  # the reply came after this window
    assert (event["event"], event["seq"], event["author"]) == ("comment.thread_created", 5, "cam")
    assert event["data"]["thread"]["id"] == thread["id"] and event["data"]["comment"]["body"] == "hm"
    at = frames.index(event)
    assert [(f["kind"], f["seq"]) for f in (frames[at - 1], frames[at + 1])] == [("update", 5), ("update", 6)]
    events = {}  # windows that meet share no event: each goes with the last row logged before it
    for window in ("to_seq=4", "from_seq=4&to_seq=5", "from_seq=5&to_seq=6", f"from_seq=6&to_seq={high}",
                   f"from_seq={high}"):  # fmt: skip
        view = await api.ok("GET", f"{BASE}/history/frames?{window}")
        events[window] = [(f["event"], f["seq"]) for f in view["frames"] if f["kind"] == "event"]
    assert events == {
        "to_seq=4": [],
        "from_seq=4&to_seq=5": [("comment.thread_created", 5)],
        "from_seq=5&to_seq=6": [],
        f"from_seq=6&to_seq={high}": [],
        f"from_seq={high}": [("comment.added", len(api.rows))],
    }


async def test_sessions_bookmarks_and_summary(api: Api) -> None:
    assert (await api("POST", f"{BASE}/sessions", json={"name": "warm-up"})).status == 403  # viewers
    session = await api.ok("POST", f"{BASE}/sessions", OWNER, 201, json={"name": "warm-up"})
    assert session["open"] and session["start_seq"] == len(api.rows)
    assert (await api("POST", f"{BASE}/sessions", OWNER, json={"name": "again"})).status == 409
    mark = await api.ok("POST", f"{BASE}/bookmarks", OWNER, 201, json={"label": "ideas"})
    assert mark["session"] == session["id"]
    ended = await api.ok("POST", f"{BASE}/sessions/{session['id']}/end", OWNER)
    assert not ended["open"] and ended["bookmarks"][0]["label"] == "ideas"
    listed = await api.ok("GET", f"{BASE}/sessions")
    assert [s["id"] for s in listed["sessions"]] == [session["id"]]
    summary = await api.ok("GET", f"{BASE}/sessions/{session['id']}/summary")
    assert summary["participants"] == []  # nobody edited during it
    whole = await api.ok("GET", f"{BASE}/history/summary?to_seq={len(api.rows)}")
    written = {p["author"]: p["written"] for p in whole["participants"]}
    fold = await history_for(api.hub).fold(await history_for(api.hub).record(DOC))
    assert sum(written.values()) == sum(fold.inserted)
    assert sum(p["kept"] for p in whole["participants"]) == len(texts_after_each(api.rows)[-1])


async def test_restore_appends_a_change_by_the_restorer(api: Api) -> None:
    texts = texts_after_each(api.rows)
    target = len(api.rows) // 3
    assert (await api("POST", f"{BASE}/history/restore", COMMENTER, json={"seq": target})).status == 403
    done = await api.ok("POST", f"{BASE}/history/restore", EDITOR, json={"seq": target})
    assert done["changed"] and done["seq"] > len(api.rows)
    history = history_for(api.hub)
    record = await history.record(DOC)
    assert text_of(await history.state_at(record, record.last_seq)) == texts[target]
    stored = await api.hub.storage.read_updates(record.id)
    assert [(r.data, r.author) for r in stored[: len(api.rows)]] == [(r.data, r.author) for r in api.rows]
    assert {r.author for r in stored[len(api.rows) :]} == {"ed"}
    again = await api.ok("POST", f"{BASE}/history/restore", EDITOR, json={"seq": target})
    assert not again["changed"]  # already reads like that


async def test_replays_are_controlled_by_their_opener_or_an_owner(api: Api) -> None:
    replay = await api.ok("POST", f"{BASE}/replays", VIEWER, 201, json={"to_seq": 30, "speed": 50})
    assert replay["state"] == "paused" and replay["websocket"].endswith(f"?replay={replay['id']}")
    path = f"{BASE}/replays/{replay['id']}"
    other = tok("val", Role.VIEWER)
    assert (await api("POST", f"{path}/play", other)).status == 403
    assert (await api.ok("POST", f"{path}/seek", OWNER, json={"seq": 20}))["seq"] == 20
    assert (await api.ok("POST", f"{path}/speed", json={"speed": 100}))["speed"] == 100
    assert (await api.ok("POST", f"{path}/seek", json={"seq": 5}))["seq"] == 5  # backwards
    assert (await api.ok("POST", f"{path}/play"))["state"] == "playing"
    assert (await api.ok("POST", f"{path}/pause"))["state"] == "paused"
    assert (await api("DELETE", path)).status == 204
    assert (await api("GET", path)).status == 404
