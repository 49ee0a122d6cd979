"""Token mode in-process: client ids claimed through awareness protect offline edits, without refusing."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from pycrdt import Doc, Text

from crdt.awareness import AwarenessEntry, encode_awareness
from crdt.messages import Ack, AwarenessMessage, SyncUpdate, encode_message
from crdt.sync import AwarenessReceived, UpdateReceived
from persistence.memory import MemoryStorage
from server.room import Room
from server.settings import Settings
from tests.server.fakes import FakePeer, GatedStorage, stored_text

SECRET = "claims-test-secret-0123456789abcdef"
ANA_ID, BO_ID = 4242, 77


def user(name: str) -> FakePeer:
    peer = FakePeer()
    peer.author = name
    return peer


async def start(
    storage: Any, secret: str | None = SECRET, **overrides: Any
) -> tuple[Room, asyncio.Task[None]]:
    room = Room("doc", storage, Settings(secret=secret, **overrides), time.time)
    return room, asyncio.create_task(room.run())


def announce(room: Room, peer: FakePeer, client_id: int) -> None:
    payload = encode_awareness([AwarenessEntry(client_id, 1, '{"user":"x"}')])
    event = peer.session.receive_data(encode_message(AwarenessMessage(payload)))
    assert isinstance(event, AwarenessReceived)
    room.submit(peer, event, len(payload))


def send(room: Room, peer: FakePeer, update: bytes) -> None:
    event = peer.session.receive_data(encode_message(SyncUpdate(update)))
    assert isinstance(event, UpdateReceived)
    room.submit(peer, event, len(update))


def acked(peer: FakePeer) -> int:
    return max([m.count for m in peer.received if isinstance(m, Ack)], default=0)


def text(room: Room, name: str = "t") -> str:
    doc: Doc[Any] = Doc()
    doc.apply_update(room.document.encode_state())
    return str(doc.get(name, type=Text))


async def claimed(storage: MemoryStorage, client_id: int) -> str | None:
    record = await storage.get_document("doc")
    assert record is not None
    return (await storage.client_claims(record.id, record.epoch)).get(client_id)


async def finish(room: Room, task: asyncio.Task[None], *peers: FakePeer) -> None:
    for peer in peers:
        room.leave(peer)
    await asyncio.wait_for(task, 5)


async def test_a_relay_of_an_uncommitted_edit_is_not_closed_and_waits_for_its_author() -> None:
    """ana edits, bo receives it, the server dies before the commit. bo reconnects first and sends
    ana's edit in its step 2: bo stays connected, its own edits are acknowledged, ana's edit waits
    until ana sends it herself; then everyone converges."""
    storage = GatedStorage()
    room, task = await start(storage)
    ana, bo = user("ana"), user("bo")
    room.join(ana)
    room.join(bo)
    announce(room, ana, ANA_ID)
    ana_doc: Doc[Any] = Doc(client_id=ANA_ID)
    ana_doc.get("t", type=Text).insert(0, "ana's line")
    send(room, ana, ana_doc.get_update())
    await bo.wait_for(lambda: any(isinstance(m, SyncUpdate) for m in bo.received))
    await asyncio.wait_for(storage.appending.wait(), 5)
    assert await claimed(storage, ANA_ID) == "ana"
    task.cancel()  # the crash: the commit in flight never lands
    await asyncio.gather(task, return_exceptions=True)
    assert (await storage.get_document("doc")).last_seq == 0  # type: ignore[union-attr]

    storage.gate.set()
    room, task = await start(storage)
    bo_doc: Doc[Any] = Doc(client_id=BO_ID)
    bo_doc.apply_update(ana_doc.get_update())  # what bo received before the crash
    bo_doc.get("notes", type=Text).insert(0, "bo's own")
    bo_doc.get("t", type=Text).insert(len("ana's line"), ", bo's reply")  # hangs off ana's edit
    bo = user("bo")
    room.join(bo)
    announce(room, bo, BO_ID)
    send(room, bo, bo_doc.get_update())  # bo's step 2 carries ana's uncommitted edit
    await bo.wait_for(lambda: acked(bo) == 1)
    assert bo.closed is None
    assert text(room, "notes") == "bo's own" and text(room) == ""  # ana's edit waits for ana
    ana = user("ana")
    room.join(ana)
    announce(room, ana, 5150)  # a reloaded page: a new awareness id, the old id in its saved state
    send(room, ana, ana_doc.get_update())
    await ana.wait_for(lambda: acked(ana) == 1)
    assert ana.closed is None and text(room) == "ana's line, bo's reply" and text(room, "notes") == "bo's own"
    await bo.wait_for(lambda: any(isinstance(m, SyncUpdate) for m in bo.received))  # ana's edit reaches bo
    await finish(room, task, bo, ana)
    assert await stored_text(storage, "doc") == "ana's line, bo's reply"
    assert await claimed(storage, BO_ID) == "bo" and await claimed(storage, 5150) == "ana"


@pytest.mark.parametrize("offload", [False, True], ids=["inline", "worker"])
async def test_offline_edits_under_an_old_id_of_the_same_user_are_accepted(offload: bool) -> None:
    storage = MemoryStorage()
    room, task = await start(storage)
    ana = user("ana")
    room.join(ana)
    announce(room, ana, ANA_ID)
    old: Doc[Any] = Doc(client_id=ANA_ID)
    old.get("t", type=Text).insert(0, "abc")
    send(room, ana, old.get_update())
    await ana.wait_for(lambda: acked(ana) == 1)
    await finish(room, task, ana)
    old.get("t", type=Text).insert(3, "def")  # offline, then the page is reloaded
    room, task = await start(storage, offload_update_size=1 if offload else 256 * 1024)
    ana, bo = user("ana"), user("bo")
    room.join(bo)
    send(room, bo, old.get_update())  # someone else sending ana's offline clocks: left out
    await bo.wait_for(lambda: acked(bo) == 1)
    assert text(room) == "abc" and bo.closed is None
    room.join(ana)
    announce(room, ana, 9001)
    send(room, ana, old.get_update())
    await ana.wait_for(lambda: acked(ana) == 1)
    assert text(room) == "abcdef" and ana.closed is None
    await finish(room, task, ana, bo)


async def test_local_mode_keeps_one_identity_and_no_claims() -> None:
    storage = MemoryStorage()
    room, task = await start(storage, secret=None)
    ana = user("local")
    room.join(ana)
    announce(room, ana, ANA_ID)
    await finish(room, task, ana)
    assert await claimed(storage, ANA_ID) is None


async def test_an_id_with_structs_cannot_be_claimed_by_another_connection() -> None:
    storage = MemoryStorage()
    room, task = await start(storage)
    ana, bo = user("ana"), user("bo")
    room.join(ana)
    room.join(bo)
    legacy: Doc[Any] = Doc(client_id=ANA_ID)  # written without an awareness claim (an old client)
    legacy.get("t", type=Text).insert(0, "abc")
    send(room, ana, legacy.get_update())
    await ana.wait_for(lambda: acked(ana) == 1)
    announce(room, bo, ANA_ID)  # squatting the id would filter ana's next edits out
    announce(room, ana, 31337)
    await ana.wait_for(lambda: any(isinstance(m, AwarenessMessage) for m in ana.received))
    await finish(room, task, ana, bo)
    assert await claimed(storage, ANA_ID) is None and await claimed(storage, 31337) == "ana"


async def test_awareness_for_an_id_another_user_claimed_is_ignored() -> None:
    storage = MemoryStorage()
    room, task = await start(storage)
    ana = user("ana")
    room.join(ana)
    announce(room, ana, ANA_ID)
    await ana.wait_for(lambda: ANA_ID in room.awareness.states())
    room.leave(ana)
    bo, ana = user("bo"), user("ana")
    room.join(bo)
    announce(room, bo, ANA_ID)  # ana is offline: bo presents himself as her client
    announce(room, bo, BO_ID)
    await bo.wait_for(lambda: BO_ID in room.awareness.states())
    assert ANA_ID not in room.awareness.states()
    room.join(ana)
    announce(room, ana, ANA_ID)  # ana's client comes back with its id
    await ana.wait_for(lambda: ANA_ID in room.awareness.states())
    await finish(room, task, ana, bo)
