"""The compaction lease on a real redis-server: one holder at a time, expiry hands it over."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from server.cluster.lease import Leases
from tests.cluster.redis_server import RedisServer


@pytest.fixture
async def redis(redis_server: RedisServer) -> AsyncIterator[Redis]:
    client = Redis.from_url(redis_server.url)
    try:
        yield client
    finally:
        await client.aclose()


async def test_two_nodes_never_hold_the_same_lease(redis: Redis) -> None:
    leases = Leases(redis, ttl=5.0)
    results = await asyncio.gather(*(leases.hold("doc", f"node{i}") for i in range(20)))
    assert sum(results) == 1
    winner = f"node{results.index(True)}"
    assert await leases.holder("doc") == winner
    assert await leases.hold("doc", winner)  # renewal by the holder
    assert not await leases.hold("doc", "intruder")
    assert await leases.hold("other-doc", "intruder")  # leases are per document


async def test_release_is_compare_and_delete(redis: Redis) -> None:
    leases = Leases(redis, ttl=5.0)
    assert await leases.hold("doc", "a")
    assert not await leases.release("doc", "b")  # not b's to give back
    assert await leases.holder("doc") == "a"
    assert await leases.release("doc", "a")
    assert await leases.holder("doc") is None
    assert await leases.hold("doc", "b")


async def test_a_dead_holders_lease_expires_and_another_node_takes_over(redis: Redis) -> None:
    leases = Leases(redis, ttl=0.2)
    assert await leases.hold("doc", "dead")
    assert not await leases.hold("doc", "b")
    ttl_ms = await redis.pttl("cocreate:lease:doc")
    assert 0 < ttl_ms <= 200
    await asyncio.sleep(0.25)  # the lease's own expiry is what is under test
    assert await leases.hold("doc", "b")
    assert not await leases.hold("doc", "dead")
