"""Two cluster nodes on a real redis-server: records cross, the reader follows new streams at once,
exactly one node holds a document's compaction lease and hands it over when it leaves."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest

from server.cluster import node as node_module
from server.cluster.node import Cluster
from server.cluster.records import (
    AccessChanged,
    AwarenessRelay,
    Broadcast,
    CommittedUpdates,
    Eviction,
    Record,
    RelayedEvent,
)
from tests.cluster.redis_server import RedisServer


class Recorder:
    def __init__(self) -> None:
        self.records: list[Record] = []
        self.resyncs = 0
        self.arrived = asyncio.Event()

    def deliver(self, record: Record, now: float) -> None:
        self.records.append(record)
        self.arrived.set()

    def resync(self) -> None:
        self.resyncs += 1

    def tick(self, now: float) -> None:
        pass


@pytest.fixture
async def pair(redis_server: RedisServer) -> AsyncIterator[tuple[Cluster, Cluster]]:
    a, b = Cluster(redis_server.url, "node-a"), Cluster(redis_server.url, "node-b")
    await a.start()
    await b.start()
    try:
        yield a, b
    finally:
        await a.close()
        await b.close()


async def test_records_reach_the_other_node_not_the_origin(pair: tuple[Cluster, Cluster]) -> None:
    a, b = pair
    on_a, on_b = Recorder(), Recorder()
    await a.attach("doc1", on_a)
    await b.attach("doc1", on_b)
    record = CommittedUpdates(1, (b"x", b"y"), a.node_id)
    a.publish("doc1", record)
    a.publish("doc1", AwarenessRelay(b"\x00", a.node_id))
    await asyncio.wait_for(on_b.arrived.wait(), 5)
    while len(on_b.records) < 2:
        on_b.arrived.clear()
        await asyncio.wait_for(on_b.arrived.wait(), 5)
    assert on_b.records == [record, AwarenessRelay(b"\x00", a.node_id)]
    assert on_a.records == []
    assert a.stats.published == 2 and b.stats.received == 2 and b.stats.lag_ms < 5000
    assert await a.ping()


async def test_a_newly_attached_stream_is_read_without_waiting_for_the_block_timeout(
    pair: tuple[Cluster, Cluster],
) -> None:
    a, b = pair
    on_b = Recorder()
    await asyncio.sleep(0.1)  # let b's reader block on the events stream alone
    started = time.monotonic()
    await b.attach("doc2", on_b)
    a.publish("doc2", CommittedUpdates(1, (b"u",), a.node_id))
    await asyncio.wait_for(on_b.arrived.wait(), 5)
    assert time.monotonic() - started < node_module.BLOCK_MS / 1000 / 2


async def test_events_and_evictions_travel_on_the_events_stream(pair: tuple[Cluster, Cluster]) -> None:
    a, b = pair
    seen: asyncio.Queue[Broadcast] = asyncio.Queue()
    b.on_event = seen.put_nowait
    await asyncio.sleep(0.1)
    a.publish(None, RelayedEvent("doc", "comment.created", {"id": "1"}, a.node_id))
    a.publish(None, Eviction("doc", 4404, "document deleted", a.node_id))
    a.publish(None, AccessChanged("doc", a.node_id))
    first = await asyncio.wait_for(seen.get(), 5)
    second = await asyncio.wait_for(seen.get(), 5)
    third = await asyncio.wait_for(seen.get(), 5)
    assert isinstance(first, RelayedEvent) and first.data == {"id": "1"}
    assert isinstance(second, Eviction) and second.code == 4404
    assert third == AccessChanged("doc", a.node_id)


async def test_exactly_one_node_compacts_and_the_lease_moves_when_it_leaves(
    pair: tuple[Cluster, Cluster], monkeypatch: pytest.MonkeyPatch
) -> None:
    a, b = pair
    on_a, on_b = Recorder(), Recorder()
    await a.attach("doc3", on_a)
    await b.attach("doc3", on_b)

    async def holders(count: int) -> list[Cluster]:
        deadline = time.monotonic() + 2 * node_module.LEASE_EVERY + 2
        while time.monotonic() < deadline:
            held = [n for n in (a, b) if n.holds_lease("doc3")]
            assert len(held) <= 1, "two nodes hold the same lease"
            if len(held) == count:
                return held
            await asyncio.sleep(0.05)
        raise AssertionError("no node took the lease")

    (holder,) = await holders(1)
    other = b if holder is a else a
    holder.detach("doc3", on_a if holder is a else on_b)  # the room closed: the lease is released
    assert not holder.holds_lease("doc3")
    deadline = time.monotonic() + 2 * node_module.LEASE_EVERY + 2
    while not other.holds_lease("doc3") and time.monotonic() < deadline:
        assert not holder.holds_lease("doc3")
        await asyncio.sleep(0.05)
    assert other.holds_lease("doc3")
