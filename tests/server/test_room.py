"""The room task in-process: group commit and acks, failures, taint, epochs, compaction."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from prometheus_client.parser import text_string_to_metric_families
from pycrdt import Array, Doc, Map, Text

from crdt.document import decode_state_vector
from crdt.messages import Ack, Epoch, Refused, SyncStep1, SyncStep2, SyncUpdate, encode_message
from crdt.sync import SyncRequested, UpdateReceived
from persistence.base import NewUpdate, Snapshot, Storage
from persistence.factory import open_storage
from persistence.memory import MemoryStorage
from server.loading import load_state
from server.metrics import Metrics
from server.room import Room
from server.settings import Settings
from tests.server.fakes import FakePeer, FlakyStorage, GatedStorage, edits, stored_text


async def start(storage: Any, name: str = "doc", **overrides: Any) -> tuple[Room, asyncio.Task[None]]:
    room = Room(name, storage, Settings(**overrides), time.time)
    return room, asyncio.create_task(room.run())


def send(room: Room, peer: FakePeer, update: bytes) -> None:
    event = peer.session.receive_data(encode_message(SyncUpdate(update)))
    assert isinstance(event, UpdateReceived)
    room.submit(peer, event, len(update))


def acked(peer: FakePeer) -> int:
    return max([m.count for m in peer.received if isinstance(m, Ack)], default=0)


async def finish(room: Room, task: asyncio.Task[None], *peers: FakePeer) -> None:
    for peer in peers:
        room.leave(peer)
    await asyncio.wait_for(task, 5)


async def test_welcome_sends_epoch_then_step1_and_updates_are_acked_after_commit() -> None:
    storage = MemoryStorage()
    room, task = await start(storage)
    writer, reader = FakePeer(), FakePeer(acks=False)
    room.join(writer)
    room.join(reader)
    await writer.wait_for(lambda: len(writer.received) >= 2)
    assert isinstance(writer.received[0], Epoch) and isinstance(writer.received[1], SyncStep1)
    assert isinstance(reader.received[0], SyncStep1)  # no extension messages for plain clients
    _, updates = edits(20)
    for update in updates:
        send(room, writer, update)
    await writer.wait_for(lambda: acked(writer) == 20)
    await reader.wait_for(lambda: sum(isinstance(m, SyncUpdate) for m in reader.received) == 20)
    await finish(room, task, writer, reader)
    assert await stored_text(storage, "doc") == "x" * 20
    record = await storage.get_document("doc")
    assert record is not None and 1 <= record.last_seq <= 20  # deltas, some batched


async def test_duplicate_updates_are_acked_but_not_logged() -> None:
    storage = MemoryStorage()
    room, task = await start(storage)
    peer = FakePeer()
    room.join(peer)
    _, updates = edits(3)
    for update in updates + updates:
        send(room, peer, update)
    await peer.wait_for(lambda: acked(peer) == 6)
    await finish(room, task, peer)
    record = await storage.get_document("doc")
    assert record is not None
    assert len(await storage.read_updates(record.id)) <= 3


async def test_storage_failure_never_acks_and_recovers_when_storage_returns() -> None:
    storage = FlakyStorage()
    room, task = await start(storage)
    peer = FakePeer()
    room.join(peer)
    _, updates = edits(5)
    send(room, peer, updates[0])
    await peer.wait_for(lambda: acked(peer) == 1)
    storage.failing = True
    send(room, peer, updates[1])
    await peer.wait_for(lambda: peer.closed is not None)
    assert peer.closed is not None and peer.closed[0] == 1013
    assert acked(peer) == 1
    await asyncio.wait_for(task, 5)
    storage.failing = False
    # A new room (as after the client reconnects) loads the log: the failed update is not in it,
    # and the client's step 2 brings it back.
    room2, task2 = await start(storage)
    again = FakePeer()
    room2.join(again)
    send(room2, again, updates[0])
    send(room2, again, updates[1])
    await again.wait_for(lambda: acked(again) == 2)
    await finish(room2, task2, again)
    assert await stored_text(storage, "doc") == "xx"


async def test_a_failed_apply_taints_and_rebuilds_from_the_log() -> None:
    storage = MemoryStorage()
    room, task = await start(storage)
    honest, attacker = FakePeer(), FakePeer()
    room.join(honest)
    room.join(attacker)
    _, updates = edits(2)
    send(room, honest, updates[0])
    await honest.wait_for(lambda: acked(honest) == 1)
    send(room, attacker, bytes.fromhex("010207002801016d016b017d0108000700017d0200"))
    await attacker.wait_for(lambda: attacker.closed is not None)
    send(room, honest, updates[1])
    await honest.wait_for(lambda: acked(honest) == 2)
    copy = await fresh_copy(room)  # what the rebuilt room serves
    assert "m" not in list(copy.keys()) and str(copy.get("t", type=Text)) == "xx"
    await finish(room, task, honest, attacker)
    record = await storage.get_document("doc")
    assert record is not None
    state = await load_state(storage, record.id)
    assert "m" not in list(state.document.doc.keys())  # the half-applied map entry never reached the log
    assert await stored_text(storage, "doc") == "xx"


async def fresh_copy(room: Room) -> Doc:
    """The document as a client that joins now gets it: its step 1 (nothing known) answered by step 2."""
    peer = FakePeer()
    room.join(peer)
    event = peer.session.receive_data(encode_message(SyncStep1(b"\x00")))
    assert isinstance(event, SyncRequested)
    room.submit(peer, event, 2)
    await peer.wait_for(lambda: any(isinstance(m, SyncStep2) for m in peer.received))
    step2 = next(m for m in peer.received if isinstance(m, SyncStep2))
    copy: Doc = Doc()
    copy.apply_update(step2.update)
    room.leave(peer)
    return copy


class HeldCommits(MemoryStorage):
    """Appends wait for `gate`; every snapshot is recorded with whether its room was tainted then."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = asyncio.Event()
        self.gate.set()
        self.room: Room | None = None
        self.snapshots: list[tuple[bool, Snapshot]] = []

    async def append_updates(self, document_id: str, updates: Sequence[NewUpdate]) -> int:
        await self.gate.wait()
        return await super().append_updates(document_id, updates)

    async def save_snapshot(self, document_id: str, snapshot: Snapshot) -> None:
        assert self.room is not None
        self.snapshots.append((self.room._tainted, snapshot))
        await super().save_snapshot(document_id, snapshot)


async def test_a_room_tainted_while_a_compaction_is_due_never_snapshots_the_tainted_state() -> None:
    storage = HeldCommits()
    room, task = await start(storage, snapshot_min_updates=3)
    storage.room = room
    honest, attacker = FakePeer(), FakePeer()
    room.join(honest)
    room.join(attacker)
    await honest.wait_for(lambda: len(honest.received) >= 2)
    storage.gate.clear()  # the commit of the next edits waits: compaction becomes due after the taint
    _, updates = edits(3)
    for update in updates:
        send(room, honest, update)
    send(room, attacker, bytes.fromhex("010207002801016d016b017d0108000700017d0200"))
    await attacker.wait_for(lambda: attacker.closed is not None)
    assert room._tainted and room.committer is not None and room.committer.last_seq == 0
    storage.gate.set()  # commit -> compaction due (3 rows) while the room is still tainted
    await honest.wait_for(lambda: acked(honest) == 3)
    await finish(room, task, honest, attacker)
    assert storage.snapshots, "a snapshot was due: the rebuilt room takes it"
    for tainted, snapshot in storage.snapshots:
        assert not tainted, f"snapshot at seq {snapshot.seq} taken while the room was tainted"
        saved: Doc = Doc()
        saved.apply_update(snapshot.data)
        assert "m" not in list(saved.keys()) and str(saved.get("t", type=Text)) == "xxx"


async def test_read_only_peer_is_refused_and_nothing_is_logged() -> None:
    storage = MemoryStorage()
    room, task = await start(storage)
    viewer = FakePeer(read_only=True)
    room.join(viewer)
    await viewer.wait_for(lambda: len(viewer.received) >= 2)
    _, updates = edits(1)
    event = viewer.session.receive_data(encode_message(SyncUpdate(updates[0])))
    viewer.flush()
    assert event is not None and not isinstance(event, UpdateReceived)
    assert any(isinstance(m, Refused) for m in viewer.received)
    await finish(room, task, viewer)
    record = await storage.get_document("doc")
    assert record is not None and record.last_seq == 0


async def test_client_of_another_epoch_is_closed_4404() -> None:
    room, task = await start(MemoryStorage())
    stale = FakePeer(epoch="not-this-one")
    room.join(stale)
    await stale.wait_for(lambda: stale.closed is not None)
    assert stale.closed is not None and stale.closed[0] == 4404
    fresh = FakePeer()
    room.join(fresh)
    await finish(room, task, fresh, stale)


async def test_copy_of_a_deleted_generation_is_refused() -> None:
    storage = MemoryStorage()
    room, task = await start(storage)
    old = FakePeer()
    room.join(old)
    old_doc, updates = edits(3)
    for update in updates:
        send(room, old, update)
    await old.wait_for(lambda: acked(old) == 3)
    await finish(room, task, old)
    await storage.delete_document("doc", time.time())
    room, task = await start(storage)  # re-created: a new generation
    returning = FakePeer(acks=False)
    room.join(returning)
    event = returning.session.receive_data(encode_message(SyncStep1(old_doc.get_state())))
    assert isinstance(event, SyncRequested)
    room.submit(returning, event, 10)
    await returning.wait_for(lambda: returning.closed is not None)
    assert returning.closed is not None and returning.closed[0] == 4404
    await finish(room, task, returning)
    assert await stored_text(storage, "doc") == ""


#: One client edit: (client, kind, position/key, length/value). Positions are reduced modulo the
#: current length; text is ASCII because pycrdt indexes Y.Text in UTF-8 bytes (emoji go in values).
Op = tuple[int, str, int, int]
OPS = st.tuples(
    st.integers(0, 2),
    st.sampled_from(["text+", "text-", "map=", "map-", "array+", "array-", "pull", "commit", "commit"]),
    st.integers(0, 10_000),
    st.integers(0, 10_000),
)
VALUES = ["a", "bc", "😀", "é x", ""]


def _edit(doc: Doc[Any], kind: str, where: int, what: int) -> None:
    text, cells, items = doc.get("t", type=Text), doc.get("m", type=Map), doc.get("a", type=Array)
    if kind == "text+":
        text.insert(where % (len(text) + 1), "abxy "[what % 5] * (1 + what % 3))
    elif kind == "text-" and len(text):
        start = where % len(text)
        del text[start : min(len(text), start + 1 + what % 4)]
    elif kind == "map=":
        cells["k" + "abc"[where % 3]] = VALUES[what % 5] if what % 2 else what
    elif kind == "map-" and "k" + "abc"[where % 3] in cells:
        del cells["k" + "abc"[where % 3]]
    elif kind == "array+":
        items.insert(where % (len(items) + 1), VALUES[what % 5] if what % 2 else what)
    elif kind == "array-" and len(items):
        del items[where % len(items)]


def _full_state(doc: Doc[Any]) -> tuple[dict[str, Any], dict[int, int]]:
    """Every root's plain value, and the state vector (client -> clock; its encoding's order varies)."""
    roots = {
        "t": str(doc.get("t", type=Text)),
        "m": doc.get("m", type=Map).to_py(),
        "a": doc.get("a", type=Array).to_py(),
    }
    return roots, decode_state_vector(doc.get_state())


async def _all_acked(peers: list[FakePeer], sent: list[int]) -> None:
    for who, peer in enumerate(peers):
        await peer.wait_for(lambda peer=peer, who=who: acked(peer) == sent[who])  # type: ignore[misc]


@pytest.mark.parametrize("backend", ["memory", "sqlite"])
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(script=st.lists(OPS, min_size=1, max_size=50), every=st.integers(1, 8))
def test_snapshot_plus_tail_equals_log_replay_equals_live(
    backend: str, tmp_path: Path, script: list[Op], every: int
) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'log.db'}" if backend == "sqlite" else None
    asyncio.run(_snapshot_property(open_storage(url), script, every))


async def _snapshot_property(storage: Storage, script: list[Op], every: int) -> None:
    """Three clients edit text, map and array at random places (sometimes pulling the room's state
    first, so edits build on each other's; sometimes waiting for the commit, so the log has many rows
    and snapshots fall between them); then, at every log position, loading snapshot + tail
    equals replaying the log from sequence 1, and at the end both equal the live document."""
    await storage.open()
    name = f"doc-{uuid.uuid4().hex}"  # examples share the SQLite file
    try:
        room, task = await start(storage, name, snapshot_min_updates=every)
        peers = [FakePeer() for _ in range(3)]
        docs: list[Doc[Any]] = [Doc() for _ in range(3)]
        for peer in peers:
            room.join(peer)
        sent = [0, 0, 0]
        for who, kind, where, what in script:
            doc = docs[who]
            if kind == "pull":
                doc.apply_update(room.document.encode_state())
                continue
            if kind == "commit":  # wait for the acks: what follows goes into later commits (log rows)
                await _all_acked(peers, sent)
                continue
            before = doc.get_state()
            _edit(doc, kind, where, what)
            update = doc.get_update(before)
            if update != b"\x00\x00":  # the edit changed something
                send(room, peers[who], update)
                sent[who] += 1
        await _all_acked(peers, sent)
        live_doc: Doc[Any] = Doc()
        live_doc.apply_update(room.document.encode_state())
        await finish(room, task, *peers)
        record = await storage.get_document(name)
        assert record is not None
        rows = await storage.read_updates(record.id)
        assert [row.seq for row in rows] == list(range(1, record.last_seq + 1))
        replay: Doc[Any] = Doc()
        for row in rows:
            replay.apply_update(row.data)
            loaded = await load_state(storage, record.id, until_seq=row.seq)
            try:
                assert _full_state(loaded.document.doc) == _full_state(replay), f"at seq {row.seq}"
            finally:
                loaded.document.close()
        assert _full_state(replay) == _full_state(live_doc)
        final = await load_state(storage, record.id)
        assert _full_state(final.document.doc) == _full_state(live_doc)
        final.document.close()
        assert (await storage.latest_snapshot(record.id)) is not None or record.last_seq < every
    finally:
        await storage.close()


@pytest.mark.parametrize("retention", [0.0, 0.001])
async def test_retention_prunes_only_when_enabled(retention: float) -> None:
    storage = MemoryStorage()
    ticks = iter(range(1_000_000))  # a clock that advances a second per reading: rows age however fast
    room = Room(
        "doc", storage, Settings(snapshot_min_updates=5, log_retention_seconds=retention), lambda: next(ticks)
    )
    task = asyncio.create_task(room.run())
    peer = FakePeer()
    room.join(peer)
    _, updates = edits(12)
    for i, update in enumerate(updates, 1):  # one commit each, so several snapshots are taken
        send(room, peer, update)
        await peer.wait_for(lambda i=i: acked(peer) == i)  # type: ignore[misc]
    await finish(room, task, peer)
    record = await storage.get_document("doc")
    assert record is not None
    rows = await storage.read_updates(record.id)
    if retention == 0.0:
        assert [r.seq for r in rows] == list(range(1, record.last_seq + 1))
    else:
        assert rows == [] or rows[0].seq > 1
    assert await stored_text(storage, "doc") == "x" * 12


async def test_shut_commits_and_acks_what_was_received_before_closing_peers() -> None:
    storage = GatedStorage()
    room, task = await start(storage)
    peer = FakePeer()
    room.join(peer)
    await peer.wait_for(lambda: len(peer.received) >= 2)
    _, updates = edits(10)
    for update in updates:
        send(room, peer, update)
    await asyncio.wait_for(storage.appending.wait(), 5)  # a commit is in flight, more are queued
    room.shut(1012, "server restarting")
    storage.gate.set()
    await asyncio.wait_for(task, 5)
    assert acked(peer) == 10  # the committer acknowledges only open peers: these came before the close
    assert peer.closed == (1012, "server restarting")
    assert await stored_text(storage, "doc") == "x" * 10


async def test_the_room_reports_applied_updates_fanout_commits_and_ack_latency() -> None:
    room, task = await start(MemoryStorage())
    room.metrics = metrics = Metrics()
    writer, reader = FakePeer(), FakePeer()
    room.join(writer)
    room.join(reader)
    _, updates = edits(5)
    for update in updates:
        send(room, writer, update)
    await writer.wait_for(lambda: acked(writer) == 5)
    await finish(room, task, writer, reader)
    samples = {
        sample.name: sample.value
        for family in text_string_to_metric_families(metrics.render().decode())
        for sample in family.samples
        if not sample.labels
    }
    assert samples["cocreate_updates_applied_total"] == 5
    assert samples["cocreate_fanout_deliveries_total"] == 5  # one reader
    assert samples["cocreate_commit_batch_updates_sum"] == 5
    assert 1 <= samples["cocreate_ack_latency_seconds_count"] <= 5
