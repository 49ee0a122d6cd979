"""Readiness checks (timeouts, failures, shutdown), and `/readyz` of a real server as PostgreSQL stops
and comes back."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from server.readiness import Readiness
from tests.persistence.pg_server import PostgresServer, create_database
from tests.support.http import request
from tests.support.server_process import running_server
from tests.support.services import own_postgres


async def test_ready_when_every_check_passes() -> None:
    readiness = Readiness(timeout=1.0)

    async def fine() -> None:
        return None

    readiness.add("database", fine)
    readiness.add("redis", fine)
    assert await readiness.evaluate() == (True, {"database": "ok", "redis": "ok"})


async def test_a_slow_check_fails_after_the_timeout() -> None:
    readiness = Readiness(timeout=0.05)
    never = asyncio.Event()

    async def hangs() -> None:
        await never.wait()

    readiness.add("database", hangs)
    ready, checks = await readiness.evaluate()
    assert not ready
    assert checks == {"database": "no answer within 0.05s"}


async def test_a_failing_check_names_its_error_on_one_short_line() -> None:
    readiness = Readiness()

    async def fails() -> None:
        raise ConnectionRefusedError("connection refused\nmore lines\n" + "x" * 500)

    readiness.add("redis", fails)
    ready, checks = await readiness.evaluate()
    assert not ready
    assert checks == {"redis": "ConnectionRefusedError: connection refused"}


async def test_not_ready_while_shutting_down_even_with_no_checks() -> None:
    readiness = Readiness()
    assert await readiness.evaluate() == (True, {})
    readiness.shutting_down = True
    assert await readiness.evaluate() == (False, {"shutdown": "shutting down"})


@pytest.fixture(scope="module")
def postgres() -> Iterator[PostgresServer]:
    """A PostgreSQL server of our own (this test stops it); skipped without binaries unless CI=true."""
    yield from own_postgres()


def readyz(port: int) -> tuple[int, dict[str, object]]:
    reply = request(port, "GET", "/readyz")
    body = reply.json
    assert isinstance(body, dict)
    return reply.status, body


@pytest.mark.postgres
async def test_readyz_flips_when_postgres_stops_and_returns(postgres: PostgresServer, tmp_path: Path) -> None:
    url = await create_database(postgres)
    with running_server(tmp_path, url, "--readiness-timeout", "3") as server:
        assert await asyncio.to_thread(readyz, server.port) == (
            200,
            {"ready": True, "checks": {"database": "ok"}},
        )
        postgres.stop()
        try:
            status, body = await asyncio.to_thread(readyz, server.port)
            assert status == 503, body
            assert body["ready"] is False
            checks = body["checks"]
            assert isinstance(checks, dict) and checks["database"] != "ok"
            health = await asyncio.to_thread(request, server.port, "GET", "/healthz")
            assert health.status == 200  # alive, just not ready
        finally:
            postgres.start()
        assert await asyncio.to_thread(readyz, server.port) == (
            200,
            {"ready": True, "checks": {"database": "ok"}},
        )
