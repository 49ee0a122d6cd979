"""Presence recording through a room: joins, sampled awareness states, leaves, written in batches."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Mapping, Sequence
from types import SimpleNamespace
from typing import cast

from crdt.awareness import AwarenessEntry, encode_awareness
from crdt.messages import AwarenessMessage, encode_message
from crdt.sync import AwarenessReceived
from persistence.history import JOIN, LEAVE, STATE, NewPresence, history_store_for
from persistence.history_memory import MemoryHistoryStore
from persistence.memory import MemoryStorage
from server.presence import BATCH_DOCUMENTS, PresenceRecorder
from server.room import Room
from server.settings import Settings
from tests.server.fakes import FakePeer


def say(room: Room, peer: FakePeer, client: int, clock: int, state: object) -> None:
    payload = encode_awareness([AwarenessEntry(client, clock, json.dumps(state))])
    event = peer.session.receive_data(encode_message(AwarenessMessage(payload)))
    assert isinstance(event, AwarenessReceived)
    room.submit(peer, event, len(payload))


async def test_joins_states_and_leaves_are_recorded_with_sampling() -> None:
    storage = MemoryStorage()
    store = history_store_for(storage)
    recorder = PresenceRecorder(store, time.time, interval=3600.0)  # every later state must wait
    room = Room("doc", storage, Settings(), time.time)
    room.presence = recorder
    task = asyncio.create_task(room.run())
    ann, bob = FakePeer(), FakePeer()
    room.join(ann)
    room.join(bob)
    say(room, ann, 11, 1, {"cursor": 1})
    say(room, ann, 11, 2, {"cursor": 2})  # within the interval: waits...
    say(room, ann, 11, 3, {"cursor": 3})  # ...and is replaced by this one
    say(room, bob, 22, 1, {"cursor": 9})
    await bob.wait_for(lambda: sum(isinstance(m, AwarenessMessage) for m in bob.received) >= 3)
    room.leave(bob)
    await ann.wait_for(lambda: sum(isinstance(m, AwarenessMessage) for m in ann.received) >= 3)
    room.leave(ann)
    await asyncio.wait_for(task, 5)
    await recorder.drain()
    record = await storage.get_document("doc")
    assert record is not None
    rows = await store.read_presence(record.id)
    kinds = [(r.kind, r.author, r.client_id) for r in rows]
    assert kinds[:2] == [(JOIN, ann.author, None), (JOIN, bob.author, None)]
    states = [(r.client_id, json.loads(r.data)) for r in rows if r.kind == STATE]
    assert states == [(11, {"cursor": 1}), (22, {"cursor": 9}), (11, {"cursor": 3})]
    leaves = [json.loads(r.data)["clients"] for r in rows if r.kind == LEAVE]
    assert leaves == [[22], [11]]
    assert recorder.written == len(rows) and recorder.dropped == 0


async def test_a_cleared_state_is_recorded_at_once() -> None:
    storage = MemoryStorage()
    recorder = PresenceRecorder(history_store_for(storage), time.time, interval=3600.0)
    room = Room("doc", storage, Settings(), time.time)
    room.presence = recorder
    task = asyncio.create_task(room.run())
    ann = FakePeer()
    room.join(ann)
    say(room, ann, 5, 1, {"cursor": 1})
    payload = encode_awareness([AwarenessEntry(5, 2, "null")])
    event = ann.session.receive_data(encode_message(AwarenessMessage(payload)))
    assert isinstance(event, AwarenessReceived)
    room.submit(ann, event, len(payload))
    await ann.wait_for(lambda: sum(isinstance(m, AwarenessMessage) for m in ann.received) >= 2)
    room.leave(ann)
    await asyncio.wait_for(task, 5)
    await recorder.drain()
    record = await storage.get_document("doc")
    assert record is not None
    rows = await history_store_for(storage).read_presence(record.id, kinds=(STATE,))
    assert [r.data for r in rows] == ['{"cursor": 1}', "null"]


class _Opened:
    """What the recorder reads of a room: its document record and its committer's last seq."""

    def __init__(self, document_id: str) -> None:
        self.record = SimpleNamespace(id=document_id)
        self.committer = SimpleNamespace(last_seq=0)


class GatedStore(MemoryHistoryStore):
    """A history store whose batch writes wait for `gate` (a database that is behind)."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = asyncio.Event()
        self.batches: list[int] = []  # documents per transaction

    async def append_presence_batch(self, batch: Mapping[str, Sequence[NewPresence]]) -> dict[str, int]:
        await self.gate.wait()
        self.batches.append(len(batch))
        return await super().append_presence_batch(batch)


def visit(recorder: PresenceRecorder, document_id: str) -> None:
    room, peer = cast(Room, _Opened(document_id)), FakePeer()
    recorder.joined(room, peer)
    recorder.left(room, peer, [])


async def test_rooms_opening_are_written_together_in_one_transaction() -> None:
    """One transaction per document could not keep up with rooms opening (soak: the rows waiting
    grew by ~1 KB per room); a turn of the writer writes every waiting document."""
    store = GatedStore()
    recorder = PresenceRecorder(store, time.time)
    for i in range(300):
        visit(recorder, f"doc{i}")
    assert recorder.pending() == 600
    store.gate.set()
    await asyncio.wait_for(recorder.drain(), 5)
    assert store.batches == [BATCH_DOCUMENTS, 300 - BATCH_DOCUMENTS]
    assert recorder.pending() == 0 and recorder.written == 600 and recorder.dropped == 0
    assert [r.kind for r in await store.read_presence("doc299")] == [JOIN, LEAVE]


async def test_the_rows_waiting_for_a_stalled_database_are_bounded() -> None:
    store = GatedStore()
    recorder = PresenceRecorder(store, time.time, max_pending=100)
    for i in range(200):
        visit(recorder, f"doc{i}")
    assert recorder.pending() == 100 and recorder.dropped == 300
    store.gate.set()
    await asyncio.wait_for(recorder.drain(), 5)
    assert recorder.pending() == 0 and recorder.written == 100
    visit(recorder, "after")  # room again once the backlog is written
    await asyncio.wait_for(recorder.drain(), 5)
    assert recorder.written == 102


async def test_a_refused_row_loses_only_its_own_document() -> None:
    store = MemoryHistoryStore()
    recorder = PresenceRecorder(store, time.time)
    visit(recorder, "good")
    room, peer = cast(Room, _Opened("bad")), FakePeer()
    peer.author = "nul \x00"
    recorder.joined(room, peer)
    await asyncio.wait_for(recorder.drain(), 5)
    assert recorder.written == 2 and recorder.dropped == 1
    assert await store.read_presence("bad") == []
