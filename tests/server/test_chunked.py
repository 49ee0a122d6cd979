"""Large updates applied piece by piece by the room: same document, same log, same acks as in one call."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from pycrdt import Array, Doc, Map, Text

from crdt.chunks import PIECE_BYTES
from crdt.document import Document
from crdt.messages import SyncStep2, SyncUpdate, encode_message
from crdt.sync import UpdateReceived
from crdt.validation import UpdateLimits
from persistence.memory import MemoryStorage
from server.loading import load_state
from server.room import Room
from server.settings import Settings
from tests.server.fakes import FakePeer
from tests.server.test_room import acked, finish, fresh_copy

SMALL = 16 * 1024  # offload_update_size here: updates above it are prevalidated and cut


async def start(
    storage: MemoryStorage, limits: UpdateLimits | None = None
) -> tuple[Room, asyncio.Task[None]]:
    room = Room("doc", storage, Settings(offload_update_size=SMALL), time.time, limits=limits)
    return room, asyncio.create_task(room.run())


def submit(room: Room, peer: FakePeer, update: bytes, step2: bool = False) -> None:
    message = SyncStep2(update) if step2 else SyncUpdate(update)
    event = peer.session.receive_data(encode_message(message))
    assert isinstance(event, UpdateReceived)
    room.submit(peer, event, len(update))


def contents(doc: Doc[Any]) -> dict[str, Any]:
    return {
        "t": str(doc.get("t", type=Text)),
        "m": doc.get("m", type=Map).to_py(),
        "a": doc.get("a", type=Array).to_py(),
    }


def rich_document(client_id: int, rounds: int) -> Doc[Any]:
    """Many small structs (text typed at alternating ends, so they do not merge), nested maps and
    arrays, and deletions."""
    doc: Doc[Any] = Doc(client_id=client_id)
    text, root, array = doc.get("t", type=Text), doc.get("m", type=Map), doc.get("a", type=Array)
    for i in range(rounds):
        text.insert(0 if i % 2 else len(text), f"w{i % 10}")
        if i % 7 == 0:
            root[f"k{i % 50}"] = Map({"n": i, "inner": Map({"list": Array([i, str(i)])})})
        if i % 11 == 0:
            array.append(Map({"t": Text(f"cell {i}")}))
        if i % 5 == 0 and len(text) > 4:
            del text[2:4]
        if i % 13 == 0 and f"k{(i // 2) % 50}" in root:
            del root[f"k{(i // 2) % 50}"]
    return doc


async def replayed(storage: MemoryStorage) -> Doc[Any]:
    record = await storage.get_document("doc")
    assert record is not None
    return (await load_state(storage, record.id)).document.doc


def relayed(peer: FakePeer) -> Doc[Any]:
    doc: Doc[Any] = Doc()
    for message in peer.received:
        if isinstance(message, SyncUpdate):
            doc.apply_update(message.update)
    return doc


async def test_a_large_step2_applies_in_pieces_and_is_logged_and_relayed_whole() -> None:
    source = rich_document(4242, 20000)
    other = rich_document(777, 1500)
    source.apply_update(other.get_update())
    update = source.get_update()
    assert len(update) > 4 * PIECE_BYTES
    storage = MemoryStorage()
    room, task = await start(storage)
    writer, reader = FakePeer(), FakePeer(acks=False)
    room.join(writer)
    room.join(reader)
    submit(room, writer, update, step2=True)
    await writer.wait_for(lambda: acked(writer) == 1, timeout=30)
    assert writer.closed is None
    relayed_updates = [m.update for m in reader.received if isinstance(m, SyncUpdate)]
    assert relayed_updates == [update]  # fresh: the original update itself
    copy = await fresh_copy(room)
    assert contents(copy) == contents(source)
    await finish(room, task, writer, reader)
    assert contents(await replayed(storage)) == contents(source)


async def test_an_overlapping_large_step2_relays_and_logs_only_what_was_new() -> None:
    source = rich_document(4242, 20000)
    storage = MemoryStorage()
    room, task = await start(storage)
    writer, reader = FakePeer(), FakePeer(acks=False)
    room.join(writer)
    room.join(reader)
    early: Doc[Any] = Doc()
    early.apply_update(source.get_update())
    half: Doc[Any] = Doc(client_id=4242)  # the server holds an older state of the client
    half_source = rich_document(4242, 8000)
    half.apply_update(half_source.get_update())
    submit(room, writer, half.get_update())
    await writer.wait_for(lambda: acked(writer) == 1, timeout=30)
    known_then = len(reader.received)
    source.get("t", type=Text).insert(0, "after the disconnect ")  # more, after the reconnect
    update = source.get_update()  # its step 2 after reconnecting: everything, overlapping
    assert len(update) > 4 * PIECE_BYTES
    submit(room, writer, update, step2=True)
    await writer.wait_for(lambda: acked(writer) == 2, timeout=30)
    assert writer.closed is None
    deltas = [m.update for m in reader.received[known_then:] if isinstance(m, SyncUpdate)]
    assert len(deltas) == 1 and len(deltas[0]) < len(update)  # the merged captured delta
    assert contents(relayed(reader)) == contents(source)
    copy = await fresh_copy(room)
    assert contents(copy) == contents(source)
    await finish(room, task, writer, reader)
    assert contents(await replayed(storage)) == contents(source)
    record = await storage.get_document("doc")
    assert record is not None
    rows = await storage.read_updates(record.id)
    assert sum(len(row.data) for row in rows) < len(half.get_update()) + len(update)


async def test_a_too_deep_type_chain_in_a_later_piece_taints_and_rebuilds_the_room(
    caplog: pytest.LogCaptureFixture,
) -> None:
    limits = UpdateLimits(max_type_depth=16)
    source: Doc[Any] = Doc(client_id=5150)
    inner = source.get("m", type=Map)
    for _ in range(10):  # accepted: 10 levels
        child: Map[Any] = Map()
        inner["c"] = child
        inner = child
    storage = MemoryStorage()
    room, task = await start(storage, limits)
    honest, attacker = FakePeer(), FakePeer()
    room.join(honest)
    room.join(attacker)
    base = source.get_update()
    submit(room, attacker, base)
    await attacker.wait_for(lambda: acked(attacker) == 1)
    before = source.get_state()
    text = source.get("t", type=Text)
    for i in range(40000):  # filler first: pieces of it are applied before the chain's piece
        text.insert(0 if i % 2 else len(text), "f")
    for _ in range(10):  # 10 more levels: 20 in the document, each update alone holds 10
        child = Map()
        inner["c"] = child
        inner = child
    large = source.get_update(before)
    assert len(large) > 2 * PIECE_BYTES
    submit(room, attacker, large)
    await attacker.wait_for(lambda: attacker.closed is not None, timeout=30)
    assert attacker.closed is not None and attacker.closed[0] == 1007
    assert "nested deeper than 16" in attacker.closed[1]
    assert "tainted by a refused piece of a large update" in caplog.text
    assert room.committer is not None
    _, more = honest_edit(base)
    submit(room, honest, more)
    await honest.wait_for(lambda: acked(honest) == 1)
    copy = await fresh_copy(room)
    assert str(copy.get("t", type=Text)) == "honest"  # no filler: the partial apply was dropped
    await finish(room, task, honest, attacker)
    stored = await replayed(storage)
    assert str(stored.get("t", type=Text)) == "honest"
    depth, level = 0, stored.get("m", type=Map)
    while "c" in level:
        level, depth = level["c"], depth + 1
    assert depth == 10


def honest_edit(base: bytes) -> tuple[Doc[Any], bytes]:
    doc: Doc[Any] = Doc(client_id=99)
    doc.apply_update(base)
    before = doc.get_state()
    doc.get("t", type=Text).insert(0, "honest")
    return doc, doc.get_update(before)


async def test_no_snapshot_while_pieces_are_applied_and_other_items_keep_their_order(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    storage = MemoryStorage()
    room, task = await start(storage)
    writer, reader = FakePeer(), FakePeer(acks=False)
    room.join(writer)
    room.join(reader)
    update = rich_document(4242, 20000).get_update()
    seen: list[tuple[bool, bool, int]] = []  # per piece: applying, snapshot refused, acks so far
    apply_fresh = Document.apply_fresh

    def observed(document: Document, piece: bytes) -> None:
        seen.append((room.applying_in_pieces, room._snapshot_state() is None, acked(writer)))
        apply_fresh(document, piece)

    monkeypatch.setattr(Document, "apply_fresh", observed)
    submit(room, writer, update)
    follow: Doc[Any] = Doc(client_id=5)
    follow.apply_update(update)
    before = follow.get_state()
    follow.get("t", type=Text).insert(0, "next")
    submit(room, writer, follow.get_update(before))  # queued behind the large one
    await writer.wait_for(lambda: acked(writer) == 2, timeout=30)
    assert len(seen) >= 4 and all(applying and refused and acks == 0 for applying, refused, acks in seen)
    assert room._snapshot_state() is not None
    relayed_updates = [m.update for m in reader.received if isinstance(m, SyncUpdate)]
    assert relayed_updates[0] == update and len(relayed_updates) == 2  # in the order received
    await finish(room, task, writer, reader)
    assert str((await replayed(storage)).get("t", type=Text)).startswith("next")
