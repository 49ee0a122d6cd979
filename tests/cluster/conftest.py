"""Fixtures of the cluster tests: a real redis-server per test, a PostgreSQL server per session."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest

from tests.cluster.redis_server import RedisServer, RedisUnavailable, launch
from tests.persistence.conftest import pg_server, pg_url
from tests.support.services import own_service

__all__ = ["pg_server", "pg_url", "redis_server"]


@pytest.fixture
def redis_server() -> Iterator[RedisServer]:
    """A fresh redis-server; skipped without the binary (failed when CI=true)."""
    yield from own_service(launch, RedisUnavailable, "redis-server")


@pytest.fixture
async def redis_url(redis_server: RedisServer) -> AsyncIterator[str]:
    yield redis_server.url
