"""Fixtures of the cluster tests: a real redis-server per test, a PostgreSQL server per session."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest

from tests.cluster.redis_server import RedisServer, RedisUnavailable, launch
from tests.persistence.conftest import pg_server, pg_url
from tests.support.postgres import on_ci

__all__ = ["pg_server", "pg_url", "redis_server"]


@pytest.fixture
def redis_server() -> Iterator[RedisServer]:
    """A fresh redis-server; skipped without the binary (failed when CI=true)."""
    try:
        server = launch()
    except RedisUnavailable as exc:
        if on_ci():
            pytest.fail(f"CI=true but redis-server is unavailable: {exc}")
        pytest.skip(str(exc))
    try:
        yield server
    finally:
        server.destroy()


@pytest.fixture
async def redis_url(redis_server: RedisServer) -> AsyncIterator[str]:
    yield redis_server.url
