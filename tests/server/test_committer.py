"""The committer: group commit (one transaction per batch, acks after it), the commit hook (webhooks)
never breaks commits, the snapshot policy; snapshots are test-loaded, large ones off the event loop."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence

import pytest
from pycrdt import Doc, Text

from crdt.messages import Ack, SyncUpdate
from persistence.base import NewUpdate
from persistence.memory import MemoryStorage
from server import committer as committer_module
from server.committer import Committer
from server.room import Room
from server.settings import Settings
from tests.server.fakes import FakePeer, GatedStorage, edits, stored_text
from tests.server.test_room import acked, finish, send, start


async def test_the_hook_sees_every_committed_batch_and_a_raising_one_breaks_nothing() -> None:
    storage = MemoryStorage()
    seen: list[tuple[str, str, int, int, set[str]]] = []

    def hook(name: str, document_id: str, last_seq: int, batch: Sequence[NewUpdate]) -> None:
        seen.append((name, document_id, last_seq, len(batch), {u.author for u in batch}))
        if len(seen) % 2:
            raise RuntimeError("an observer that fails")

    room = Room("doc", storage, Settings(), time.time)
    room.on_commit = hook
    task = asyncio.create_task(room.run())
    peer = FakePeer()
    room.join(peer)
    _, updates = edits(30)
    for update in updates:
        send(room, peer, update)
    await peer.wait_for(lambda: acked(peer) == 30)
    await finish(room, task, peer)
    record = await storage.get_document("doc")
    assert record is not None and await stored_text(storage, "doc") == "x" * 30
    assert {(name, document_id) for name, document_id, *_ in seen} == {("doc", record.id)}
    last_seqs = [last for _, _, last, _, _ in seen]
    assert last_seqs == sorted(last_seqs) and last_seqs[-1] == record.last_seq
    assert sum(size for *_, size, _ in seen) == record.last_seq  # every logged update, once
    assert all(authors == {peer.author} for *_, authors in seen)


async def test_updates_arriving_during_a_commit_form_one_batch_acked_only_after_it() -> None:
    storage = GatedStorage()
    room, task = await start(storage)
    peer, reader = FakePeer(), FakePeer(acks=False)
    room.join(peer)
    room.join(reader)
    await peer.wait_for(lambda: len(peer.received) >= 2)
    _, updates = edits(10)
    send(room, peer, updates[0])
    await asyncio.wait_for(storage.appending.wait(), 5)  # the first commit is held in flight
    for update in updates[1:]:
        send(room, peer, update)
    # the room applies and relays all ten before any commit (relaying may precede it, acking not)
    await reader.wait_for(lambda: sum(isinstance(m, SyncUpdate) for m in reader.received) == 10)
    assert acked(peer) == 0 and storage.batches == []
    storage.gate.set()
    await peer.wait_for(lambda: acked(peer) == 10)
    await finish(room, task, peer, reader)
    assert sum(storage.batches) == 10 and len(storage.batches) < 10, storage.batches
    assert storage.batches == [1, 9]  # the held one, then everything that queued behind it
    # acknowledgements are cumulative and each covers exactly the rows committed before it was sent
    commits = [sum(storage.batches[: i + 1]) for i in range(len(storage.batches))]
    assert [m.count for m in peer.received if isinstance(m, Ack)] == commits
    assert await stored_text(storage, "doc") == "x" * 10


@pytest.mark.parametrize(
    ("ratio_min_updates", "rows", "snapshotted"), [(5, 4, False), (5, 5, True), (50, 49, False)]
)
async def test_the_byte_ratio_rule_waits_for_snapshot_ratio_min_updates_rows(
    ratio_min_updates: int, rows: int, snapshotted: bool
) -> None:
    storage = MemoryStorage()
    # no snapshot yet (0 bytes): the byte ratio alone is always exceeded; the row floor decides
    room, task = await start(
        storage, snapshot_min_updates=100_000, snapshot_ratio_min_updates=ratio_min_updates
    )
    peer = FakePeer()
    room.join(peer)
    _, updates = edits(rows)
    for i, update in enumerate(updates, 1):  # one commit (log row) each
        send(room, peer, update)
        await peer.wait_for(lambda i=i: acked(peer) == i)  # type: ignore[misc]
    await finish(room, task, peer)  # a closing room writes the snapshot the policy asks for
    record = await storage.get_document("doc")
    assert record is not None and record.last_seq == rows
    snapshot = await storage.latest_snapshot(record.id)
    assert (snapshot is not None) == snapshotted
    assert snapshot is None or snapshot.seq == rows


def test_the_row_floor_is_a_setting_with_flag_and_environment_variable() -> None:
    assert Settings().snapshot_ratio_min_updates == 50
    environ = {"COCREATE_SNAPSHOT_RATIO_MIN_UPDATES": "7"}
    assert Settings.from_environment(environ).snapshot_ratio_min_updates == 7


async def committer_of(state: bytes, offload_update_size: int) -> tuple[Committer, MemoryStorage, str]:
    storage = MemoryStorage()
    record = await storage.create_document("big", time.time())
    settings = Settings(snapshot_min_updates=1, offload_update_size=offload_update_size)
    committer = Committer("big", record.id, storage, settings, time.time, lambda: state, print)
    committer.last_seq = await storage.append_updates(record.id, [NewUpdate(state, "u", time.time())])
    return committer, storage, record.id


async def test_a_large_snapshot_is_test_loaded_in_the_worker_process(monkeypatch: pytest.MonkeyPatch) -> None:
    doc: Doc = Doc()
    doc.get("t", type=Text).insert(0, "large " * 1000)
    state = doc.get_update()

    def on_the_loop(_: bytes) -> bool:
        raise AssertionError("a large state was test-loaded on the event loop")

    monkeypatch.setattr(committer_module, "reloads", on_the_loop)
    committer, storage, document_id = await committer_of(state, offload_update_size=1024)
    await committer.compact()
    snapshot = await storage.latest_snapshot(document_id)
    assert snapshot is not None and snapshot.data == state and committer.snapshot_seq == 1


@pytest.mark.parametrize("offload_update_size", [1 << 30, 16], ids=["on-the-loop", "in-the-worker"])
async def test_a_state_that_does_not_load_again_is_never_stored(offload_update_size: int) -> None:
    broken = b"\x01\x01\xff\xff\xff\xff\x0f" + b"\x07" * 64  # pycrdt refuses it
    committer, storage, document_id = await committer_of(broken, offload_update_size)
    await committer.compact()
    assert await storage.latest_snapshot(document_id) is None and committer.snapshot_seq == 0
