"""Access control through a real `cocreate serve --secret` with real clients: stock y-websocket providers
(Node), our Python client, and a raw websocket sending crafted messages.

Nothing sleeps: every wait is for a condition or a socket event, with a timeout. Live changes
(revocation, downgrade, expiry) are timed from just before the HTTP call (or the expiry instant)
to the close frame's arrival, and must stay under 1 s.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sqlite3
import time
import urllib.error
import urllib.request
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from pycrdt import Doc, Text
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from crdt.awareness import AwarenessEntry, decode_awareness, encode_awareness
from crdt.messages import AwarenessMessage, Message, SyncStep1, SyncStep2, SyncUpdate, encode_message
from crdt.sync import AccessDenied, AwarenessReceived, Event, Role, SyncSession, UpdateRefused
from server.auth import Role as Access
from server.tokens import issue
from tests.interop.conftest import Peers
from tests.interop.py_peer import python_peer
from tests.support.server_process import ServerProcess, running_server

pytestmark = [pytest.mark.interop, pytest.mark.timeout(60)]

SECRET = "interop-auth-secret-0123456789abcdef"
DOC = "team/auth-doc"
LIVE_LIMIT = 1.0  # seconds: revocation, downgrade and expiry must reach live connections within this


def tok(user: str, grants: dict[str, Access], ttl: float = 600, secret: str = SECRET, now: float = 0) -> str:
    return issue(user, user.title(), grants, now=now or time.time(), ttl=ttl, secret=secret)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServerProcess]:
    """Overrides the interop `server` fixture: this module's server has a secret."""
    with running_server(tmp_path, None, "--secret", SECRET) as process:
        yield process


async def http(
    server: ServerProcess, method: str, path: str, token: str, body: Any = None
) -> tuple[int, Any]:
    def run() -> tuple[int, Any]:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(server.url + path, data=data, method=method)
        request.add_header("Authorization", f"Bearer {token}")
        if data is not None:
            request.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                raw = response.read()
                return response.status, json.loads(raw) if raw else None
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read() or b"null")

    return await asyncio.to_thread(run)


class Raw:
    """A bare websocket speaking y-websocket through our sans-I/O session (acks on): sends anything."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.session = SyncSession(Role.CLIENT, acks=True)
        self.events: list[Event] = []

    async def send(self, message: Message) -> None:
        await self.ws.send(encode_message(message))

    async def until(self, predicate: Callable[[Event], bool], timeout: float = 10.0) -> Event:
        async with asyncio.timeout(timeout):
            while True:
                event = self.session.receive_data(await self.ws.recv())
                if event is not None:
                    self.events.append(event)
                    if predicate(event):
                        return event

    async def closed(self, timeout: float = 10.0) -> tuple[int | None, float]:
        """Read until the server closes; (close code, time.monotonic() when it did)."""
        with contextlib.suppress(ConnectionClosed):
            await self.until(lambda _e: False, timeout)
        return self.ws.close_code, time.monotonic()


@contextlib.asynccontextmanager
async def raw(server: ServerProcess, token: str, document: str = DOC) -> AsyncIterator[Raw]:
    async with connect(server.ws(document, f"token={token}&acks=1"), open_timeout=10) as ws:
        yield Raw(ws)


def crafted_update(text: str) -> bytes:
    doc: Doc[Any] = Doc()
    doc.get("t", type=Text).insert(0, text)
    return doc.get_update()


async def refused_status(server: ServerProcess, query: str, document: str = DOC) -> tuple[int, str]:
    with pytest.raises(InvalidStatus) as info:
        async with connect(server.ws(document, query), open_timeout=10):
            pass
    response = info.value.response
    return response.status_code, json.loads(response.body or b"{}")["error"]


# -- 1. the handshake ----------------------------------------------------------------------------------------
async def test_handshakes_without_a_valid_token_are_refused(server: ServerProcess) -> None:
    editor = tok("ed", {"team/*": Access.EDITOR})
    cases = {
        "": (401, "unauthorized"),
        "token=garbage": (401, "token_malformed"),
        f"token={tok('ed', {'*': Access.OWNER}, secret='wrong-secret')}": (401, "token_bad_signature"),
        f"token={tok('ed', {'*': Access.OWNER}, ttl=60, now=time.time() - 120)}": (401, "token_expired"),
        f"token={tok('ed', {})}": (403, "forbidden"),
        f"token={tok('ed', {'other/*': Access.OWNER})}": (403, "forbidden"),
    }
    for query, expected in cases.items():
        assert await refused_status(server, query) == expected, query
    headers = {"Authorization": f"Bearer {editor}"}
    async with connect(server.ws(DOC), additional_headers=headers, open_timeout=10) as ws:
        assert Raw(ws).session.receive_data(await ws.recv()) is not None  # SyncStep1: admitted
    expired = tok("ed", {"team/*": Access.EDITOR}, ttl=60, now=time.time() - 120)
    with pytest.raises(ConnectionError, match="401"):
        async with python_peer(server.ws(DOC, f"token={expired}"), reconnect=False, timeout=5):
            pass
    assert SECRET not in server.log_text()


# -- 2. a viewer cannot change the document by any message ---------------------------------------------------
async def test_a_viewer_cannot_change_the_document(peers: Peers) -> None:
    server = peers.server
    editor = await peers.node(DOC, name="editor", params={"token": tok("ed", {"team/*": Access.EDITOR})})
    await editor.insert_text("t", "hello")
    viewer = await peers.node(DOC, name="viewer", params={"token": tok("vic", {DOC: Access.VIEWER})})
    await viewer.wait_for(roots={"t": "hello"})
    await viewer.insert_text("t", " VIEWER")  # a stock provider sends it; the server refuses it
    await viewer.map_set("m", "viewer", True)
    await viewer.set_awareness({"cursor": 3, "user": {"name": "Olga the owner"}})
    # Awareness still flows, after the refused updates (same connection, in order), and is stamped
    # with the authenticated name: the viewer cannot pose as someone else.
    stamped = {"cursor": 3, "user": {"name": "Vic", "id": "vic"}}
    await editor.wait_for(awarenessStates={str(viewer.client_id): stamped})

    async with raw(server, tok("vic", {DOC: Access.VIEWER})) as crafted:
        await crafted.send(SyncStep1(b"\x00"))
        await crafted.send(SyncStep2(crafted_update("RAW STEP 2")))
        await crafted.send(SyncUpdate(crafted_update("RAW UPDATE")))
        refused = await crafted.until(lambda e: isinstance(e, UpdateRefused) and e.index == 2)
        assert isinstance(refused, UpdateRefused) and "may not edit" in refused.reason

    await editor.map_set("barrier", "done", True)
    async with python_peer(server.ws(DOC, f"token={tok('obs', {DOC: Access.EDITOR})}")) as observer:
        await observer.wait_barrier(["done"])
        assert observer.content()["t"] == "hello" and observer.content()["m"] == {}
        observer.barrier["committed"] = True
        await observer.client.flushed()  # acknowledged once committed, after every earlier row
    assert (await editor.dump())["roots"]["t"] == "hello"
    status, content = await http(
        server, "GET", f"/api/documents/{DOC}/-/content?root=t:text", tok("ed", {"*": Access.VIEWER})
    )
    assert (status, content["roots"]["t"]["value"]) == (200, "hello")
    assert authors(server) == {"ed", "obs"}


def authors(server: ServerProcess) -> set[str]:
    """The author column of the update log (read from the SQLite file; WAL allows a concurrent reader)."""
    path = server.db_url.split(":///", 1)[1]
    with contextlib.closing(sqlite3.connect(path)) as db:
        return {row[0] for row in db.execute("SELECT DISTINCT author FROM updates")}


# -- 3. a commenter cannot edit ------------------------------------------------------------------------------
async def test_a_commenter_cannot_edit(server: ServerProcess) -> None:
    editor_url = server.ws(DOC, f"token={tok('ed', {'team/*': Access.EDITOR})}")
    async with python_peer(editor_url) as editor:
        editor.text.insert(0, "base")
        await editor.client.flushed()
        commenter_url = server.ws(DOC, f"token={tok('cat', {'team/*': Access.COMMENTER})}")
        async with python_peer(commenter_url) as commenter:
            assert commenter.content()["t"] == "base"
            commenter.text.insert(0, "EDIT ")
            await commenter.until(lambda: bool(commenter.client.refusals), what="a refusal")
            editor.barrier["after"] = True
            await commenter.wait_barrier(["after"])
            assert str(editor.text) == "base"
    assert authors(server) == {"ed"}


# -- 4. expiry -----------------------------------------------------------------------------------------------
async def test_a_connection_is_closed_when_its_token_expires(server: ServerProcess) -> None:
    expires_at = time.time() + 1.5
    token = issue("ed", "Ed", {DOC: Access.EDITOR}, now=expires_at - 1.5, ttl=1.5, secret=SECRET)
    async with raw(server, token) as connection:
        code, _ = await connection.closed(timeout=5)
        lateness = time.time() - expires_at
    assert code == 4401
    assert any(isinstance(e, AccessDenied) for e in connection.events)
    assert -0.05 < lateness < LIVE_LIMIT, lateness
    print(f"expiry: closed {lateness * 1000:.0f} ms after exp")
    assert await refused_status(server, f"token={token}") == (401, "token_expired")


# -- 5. invites ----------------------------------------------------------------------------------------------
async def test_a_revoked_invite_stops_working_live(peers: Peers) -> None:
    server = peers.server
    owner = tok("olga", {"team/*": Access.OWNER})
    status, invite = await http(
        server, "POST", f"/api/documents/{DOC}/-/invites", owner, {"role": "editor", "max_uses": 3}
    )
    assert status == 201, invite
    status, guest = await http(
        server, "POST", "/api/invites/redeem", owner, {"code": invite["code"], "name": "Dr. Expert"}
    )
    assert status == 200, guest
    watcher = await peers.node(DOC, name="watcher", params={"token": owner})
    expert = await peers.node(DOC, name="expert", params={"token": guest["token"]})
    await expert.insert_text("t", "expert note")
    await watcher.wait_for(roots={"t": "expert note"})
    async with python_peer(server.ws(DOC, f"token={owner}")) as committed:
        committed.barrier["expert"] = True
        await committed.client.flushed()  # committed, after the expert's edit
    assert authors(server) == {guest["user"], "olga"}
    assert await refused_status(server, f"token={guest['token']}", "team/elsewhere") == (403, "forbidden")

    async with raw(server, guest["token"]) as live:
        await live.until(lambda e: True)  # admitted (the server's SyncStep1)
        started = time.monotonic()
        status, _ = await http(server, "DELETE", f"/api/documents/{DOC}/-/invites/{invite['id']}", owner)
        assert status == 200
        code, closed_at = await live.closed(timeout=5)
    latency = closed_at - started
    assert code == 4403 and latency < LIVE_LIMIT, (code, latency)
    print(f"invite revocation: live connection closed {latency * 1000:.0f} ms after the request")
    await expert.wait_for(consoleIncludes="Permission denied", connected=False)
    assert await refused_status(server, f"token={guest['token']}") == (403, "forbidden")
    status, again = await http(server, "POST", "/api/invites/redeem", owner, {"code": invite["code"]})
    assert (status, again["error"]) == (410, "invite_revoked")


# -- 6. access-list downgrade and removal --------------------------------------------------------------------
async def test_a_downgrade_closes_the_live_connections_within_a_second(peers: Peers) -> None:
    server = peers.server
    owner = tok("olga", {"team/*": Access.OWNER})
    dana = tok("dana", {})  # every right of dana's comes from the access list
    assert await refused_status(server, f"token={dana}") == (403, "forbidden")
    assert (await http(server, "PUT", f"/api/documents/{DOC}/-/access/dana", owner, {"role": "editor"}))[
        0
    ] == 200
    node = await peers.node(DOC, name="dana-node", params={"token": dana})
    async with (
        python_peer(server.ws(DOC, f"token={dana}"), reconnect=False) as client,
        raw(server, dana) as live,
    ):
        await live.until(lambda e: True)  # admitted (the server's SyncStep1)
        client.text.insert(0, "by dana")
        await client.client.flushed()
        await node.wait_for(roots={"t": "by dana"})
        assert not client.client.refusals

        started = time.monotonic()
        status, _ = await http(
            server, "PUT", f"/api/documents/{DOC}/-/access/dana", owner, {"role": "viewer"}
        )
        assert status == 200
        code, closed_at = await live.closed(timeout=5)
        latency = closed_at - started
        assert code == 4403 and latency < LIVE_LIMIT, (code, latency)
        assert live.ws.close_reason == "your role on this document changed to viewer; reconnect"
        assert any(isinstance(e, AccessDenied) for e in live.events)  # y-websocket's permission denied
        print(f"downgrade: live connection closed {latency * 1000:.0f} ms after the request")
        await client.wait_disconnected(timeout=max(0.0, started + LIVE_LIMIT - time.monotonic()))
        reason = client.client.closed_reason or ""
        assert reason == "permission denied: your role on this document changed to viewer; reconnect"
        # the stock provider (y-websocket 3.x) stops on 44xx, like our client ...
        await node.wait_for(consoleIncludes="changed to viewer; reconnect", connected=False)
    await node.connect()  # ... until the application reconnects it: admitted again, as a viewer
    await node.wait_synced()

    async with raw(server, dana) as again:  # reconnected: a viewer now
        await again.until(lambda e: True)
        await again.send(SyncUpdate(crafted_update("after downgrade")))
        refused = await again.until(lambda e: isinstance(e, UpdateRefused))
        assert isinstance(refused, UpdateRefused)

        started = time.monotonic()
        assert (await http(server, "DELETE", f"/api/documents/{DOC}/-/access/dana", owner))[0] == 204
        code, closed_at = await again.closed(timeout=5)
        assert code == 4403 and closed_at - started < LIVE_LIMIT, (code, closed_at - started)
        assert again.ws.close_reason == "your access to this document was revoked"
        print(f"removal: live connection closed {(closed_at - started) * 1000:.0f} ms after the request")
    status, content = await http(server, "GET", f"/api/documents/{DOC}/-/content?root=t:text", owner)
    assert content["roots"]["t"]["value"] == "by dana"
    assert authors(server) == {"dana"}


async def test_raw_awareness_is_stamped_with_the_token_identity(server: ServerProcess) -> None:
    viewer_token, editor_token = tok("vic", {DOC: Access.VIEWER}), tok("ed", {DOC: Access.EDITOR})
    async with raw(server, viewer_token) as viewer, raw(server, editor_token) as other:
        await other.until(lambda e: True)  # admitted
        forged = {"user": {"name": "Olga", "id": "olga", "color": "red"}, "x": 1}
        await viewer.send(AwarenessMessage(encode_awareness([AwarenessEntry(4242, 1, json.dumps(forged))])))
        event = await other.until(lambda e: 4242 in states_of(e))
    assert states_of(event)[4242] == {"user": {"name": "Vic", "id": "vic", "color": "red"}, "x": 1}


def states_of(event: Event) -> dict[int, Any]:
    if not isinstance(event, AwarenessReceived):
        return {}
    return {e.client_id: json.loads(e.state) for e in decode_awareness(event.payload) if e.state != "null"}
