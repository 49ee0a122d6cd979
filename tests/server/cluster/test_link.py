"""A room's link without Redis: what it hands the room, when it reads the log, what it publishes."""

from __future__ import annotations

import asyncio
from typing import Any

from crdt.awareness import AwarenessEntry
from persistence.base import NewUpdate, Snapshot
from persistence.memory import MemoryStorage
from server.cluster.link import GAP_PATIENCE, LOG_ORIGIN, LogSnapshot, PresenceExpired, RoomLink
from server.cluster.records import AwarenessQuery, AwarenessRelay, CommittedUpdates, Record


class FakeCluster:
    node_id = "here"

    def __init__(self) -> None:
        self.now = 100.0
        self.published: list[tuple[str | None, Record]] = []
        self.lease = True

    def clock(self) -> float:
        return self.now

    def publish(self, document_id: str | None, record: Record) -> None:
        self.published.append((document_id, record))

    def holds_lease(self, document_id: str) -> bool:
        return self.lease


async def linked(rows: int, peers: bool = True) -> tuple[RoomLink, FakeCluster, MemoryStorage, list[Any]]:
    storage = MemoryStorage()
    record = await storage.create_document("doc", 0.0)
    for index in range(rows):
        await storage.append_updates(record.id, [NewUpdate(f"u{index + 1}".encode(), "a", 0.0)])
    cluster, received = FakeCluster(), []
    link = RoomLink(cluster, record.id, storage, received.append, lambda: peers, lambda: None)  # type: ignore[arg-type]
    return link, cluster, storage, received


async def settle(link: RoomLink) -> None:
    task = link._catching_up
    if task is not None:
        await asyncio.wait_for(task, 5)


async def test_duplicates_are_not_handed_to_the_room_and_a_lasting_gap_reads_the_log() -> None:
    link, cluster, _, received = await linked(6)
    link.loaded(2)
    assert cluster.published == [(link.document_id, AwarenessQuery("here"))]
    link.deliver(CommittedUpdates(1, (b"u1", b"u2"), "other"), cluster.now)
    assert received == []  # already applied
    link.deliver(CommittedUpdates(5, (b"u5",), "other"), cluster.now)
    assert received == [CommittedUpdates(5, (b"u5",), "other")]
    assert link.tracker is not None
    link.tracker.mark(5, 5, cluster.now)  # the room applied it: 3 and 4 are missing
    cluster.now += GAP_PATIENCE / 2
    link.tick(cluster.now)
    assert link._catching_up is None  # patience: the stream may still deliver them
    cluster.now += GAP_PATIENCE
    link.tick(cluster.now)
    await settle(link)
    assert received[-1] == CommittedUpdates(3, (b"u3", b"u4", b"u5", b"u6"), LOG_ORIGIN)


async def test_resync_before_loading_reads_the_log_once_loaded() -> None:
    link, _, _, received = await linked(3)
    link.resync()  # Redis came back while the room was still loading
    assert received == []
    link.loaded(1)
    await settle(link)
    assert received == [CommittedUpdates(2, (b"u2", b"u3"), LOG_ORIGIN)]


async def test_a_pruned_log_is_bridged_by_the_snapshot() -> None:
    link, _, storage, received = await linked(6)
    await storage.save_snapshot(link.document_id, Snapshot(4, b"state@4", 0.0))
    assert await storage.prune_updates(link.document_id, 4, older_than=1.0) == 4
    link.loaded(1)
    link.catch_up()
    await settle(link)
    assert received == [LogSnapshot(4, b"state@4"), CommittedUpdates(5, (b"u5", b"u6"), LOG_ORIGIN)]


async def test_commits_are_published_with_their_seqs_and_snapshots_claim_the_watermark() -> None:
    link, cluster, _, _ = await linked(0)
    link.loaded(0)
    link.committed(3, [NewUpdate(b"x", "a", 0.0), NewUpdate(b"y", "a", 0.0)])  # seqs 2..3; 1 unseen
    assert cluster.published[-1] == (link.document_id, CommittedUpdates(2, (b"x", b"y"), "here"))
    assert link.snapshot_seq() is None  # the document holds rows beyond the hole at 1: not now
    link.committed(1, [NewUpdate(b"w", "a", 0.0)])
    assert link.snapshot_seq() == 3
    cluster.lease = False
    assert link.snapshot_seq() is None  # another node compacts


async def test_presence_is_published_answered_and_expires() -> None:
    link, cluster, _, received = await linked(0)
    link.loaded(0)
    link.presence_changed([AwarenessEntry(7, 1, '{"u":1}')])
    assert isinstance(cluster.published[-1][1], AwarenessRelay)
    count = len(cluster.published)
    link.answer_presence_query()
    assert len(cluster.published) == count + 1
    link.presence_changed([AwarenessEntry(7, 2, "null")])
    link.answer_presence_query()  # nobody left to announce
    assert len(cluster.published) == count + 2
    link.remote_seen[("remote", "there", 9)] = cluster.now
    cluster.now += 31
    link.tick(cluster.now)
    assert PresenceExpired((("remote", "there", 9),)) in received
