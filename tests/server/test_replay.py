"""Replay rooms end to end: a websocket viewer follows seeks back and forth, pause, play to the end
with the replayed comment events; its writes are refused and never logged; unknown replays -> 4404."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from pycrdt import Doc, Text
from websockets.asyncio.client import ClientConnection
from websockets.asyncio.client import connect as ws_connect
from websockets.exceptions import ConnectionClosed

from crdt.awareness import AwarenessEntry, encode_awareness
from crdt.messages import (
    AwarenessMessage,
    DocumentEvent,
    Message,
    Refused,
    SyncStep1,
    SyncStep2,
    SyncUpdate,
    decode_message,
    encode_message,
)
from persistence.base import NewUpdate
from persistence.sql import SqlStorage
from server.auth import Role
from server.tokens import issue
from tests.crdt.history_logs import Row, make_log, texts_after_each
from tests.support.http import Reply, request
from tests.support.server_process import ServerProcess, running_server

DOC = "team/essay"
BASE = f"/api/documents/{DOC}/-"
SECRET = "replay-live-secret-0123456789abcdef"


def tok(user: str, role: Role) -> str:
    return issue(user, user.title(), {"team/*": role}, now=time.time(), ttl=600, secret=SECRET)


VIEWER, COMMENTER = tok("vic", Role.VIEWER), tok("cam", Role.COMMENTER)


async def seed(url: str, rows: list[Row]) -> None:
    storage = SqlStorage(url)
    await storage.open()
    try:
        record = await storage.create_document(DOC, rows[0].created_at - 1)
        for row in rows:
            await storage.append_updates(record.id, [NewUpdate(row.data, row.author, row.created_at)])
    finally:
        await storage.close()


async def call(server: ServerProcess, method: str, path: str, body: Any = None, token: str = VIEWER) -> Reply:
    headers = {"Authorization": f"Bearer {token}"}
    return await asyncio.to_thread(request, server.port, method, path, body, headers)


async def ok(server: ServerProcess, method: str, path: str, body: Any = None, token: str = VIEWER) -> Any:
    reply = await call(server, method, path, body, token)
    assert reply.status in (200, 201), reply.body
    return reply.json


class Viewer:
    """A y-websocket viewer speaking cocreate's extension: its document, events, refusals, presence."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.doc: Doc[Any] = Doc()
        self.events: list[DocumentEvent] = []
        self.refused: list[Refused] = []
        self.presence: list[bytes] = []

    @property
    def text(self) -> str:
        return str(self.doc.get("t", type=Text))

    async def send(self, message: Message) -> None:
        await self.ws.send(encode_message(message))

    async def until(self, done: Callable[[], bool], timeout: float = 10.0) -> None:
        deadline = asyncio.get_running_loop().time() + timeout
        while not done():
            left = deadline - asyncio.get_running_loop().time()
            raw = await asyncio.wait_for(self.ws.recv(), max(left, 0.001))
            assert isinstance(raw, bytes)
            match decode_message(raw):
                case SyncStep2(update) | SyncUpdate(update):
                    self.doc.apply_update(update)
                case DocumentEvent() as event:
                    self.events.append(event)
                case Refused() as refusal:
                    self.refused.append(refusal)
                case AwarenessMessage(payload):
                    self.presence.append(payload)
                case _:
                    pass

    async def barrier(self, clock: int) -> None:
        """Everything the room sent before now has arrived: our own presence echo comes after it."""
        mine = encode_awareness([AwarenessEntry(4242, clock, '{"user":"vic"}')])
        seen = len([p for p in self.presence if p == mine])
        await self.send(AwarenessMessage(mine))
        await self.until(lambda: len([p for p in self.presence if p == mine]) > seen)


@contextlib.asynccontextmanager
async def viewing(server: ServerProcess, replay_id: str) -> AsyncIterator[Viewer]:
    url = server.ws(DOC, f"replay={replay_id}&token={VIEWER}&acks=1")
    async with ws_connect(url, max_size=None, compression=None) as ws:
        viewer = Viewer(ws)
        await viewer.send(SyncStep1(viewer.doc.get_state()))
        yield viewer


async def test_a_viewer_follows_seeks_pause_and_play_and_cannot_write(tmp_path: Path) -> None:
    rows, _ = make_log(8, 3, 240)
    texts = texts_after_each(rows)
    last = len(rows)
    url = f"sqlite+aiosqlite:///{tmp_path / 'cocreate.db'}"
    await seed(url, rows)
    with running_server(tmp_path, url, "--secret", SECRET) as server:
        range_ = {"start": 0, "end": 3, "unit": "codepoint"}
        thread = await ok(
            server, "POST", f"{BASE}/threads", {"root": "t", "range": range_, "body": "look"}, COMMENTER
        )
        replay = await ok(server, "POST", f"{BASE}/replays", {"to_seq": last, "speed": 1, "max_gap": 5})
        path = f"{BASE}/replays/{replay['id']}"
        async with viewing(server, replay["id"]) as viewer:
            await viewer.barrier(1)
            assert viewer.text == ""  # the stretch starts before the first row
            for seq in (last // 2, last // 4, last * 3 // 4):  # forward, back (detached), forward
                view = await ok(server, "POST", f"{path}/seek", {"seq": seq})
                assert view["seq"] == seq and view["state"] == "paused"
                await viewer.until(lambda s=seq: viewer.text == texts[s])  # type: ignore[misc]

            await ok(server, "POST", f"{path}/seek", {"frame": 0})
            await viewer.until(lambda: viewer.text == "")
            await ok(server, "POST", f"{path}/play")
            paused = await ok(server, "POST", f"{path}/pause")
            assert paused["state"] == "paused"
            await viewer.barrier(2)
            still = await ok(server, "GET", path)
            assert (still["position"], still["seq"]) == (paused["position"], paused["seq"])
            assert viewer.text == texts[paused["seq"]]

            await viewer.send(SyncUpdate(_an_edit(viewer.doc)))  # a viewer's write
            await viewer.until(lambda: bool(viewer.refused))
            assert viewer.refused[0].index == 1
            await viewer.barrier(3)
            assert (await ok(server, "GET", path))["seq"] == paused["seq"]

            assert (await ok(server, "POST", f"{path}/speed", {"speed": 10_000}))["speed"] == 10_000
            await ok(server, "POST", f"{path}/play")
            await viewer.until(lambda: viewer.text == texts[last] and bool(viewer.events))
            (event,) = viewer.events  # the thread opened after the last edit, as it went out live
            assert event.kind == "comment.thread_created" and f'"id":"{thread["id"]}"' in event.data
            assert (await ok(server, "GET", path))["state"] == "ended"

        at = await ok(server, "GET", f"{BASE}/history/at?format=json")
        assert at["seq"] == last  # nothing the viewer sent was logged
        assert at["roots"]["t"]["value"] == texts[last]

        async with ws_connect(server.ws(DOC, f"replay=nope&token={VIEWER}")) as ws:
            with pytest.raises(ConnectionClosed):
                await asyncio.wait_for(ws.recv(), 5)
            assert ws.close_code == 4404


def _an_edit(doc: Doc[Any]) -> bytes:
    """An update inserting text on a copy of what the viewer holds."""
    mine: Doc[Any] = Doc()
    mine.apply_update(doc.get_update())
    before = mine.get_state()
    mine.get("t", type=Text).insert(0, "sneaky ")
    return mine.get_update(before)
