"""A service of the test's own (PostgreSQL, redis-server) for a fixture: skipped without its binary,
a failure when CI=true (CI must run every test)."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from typing import Protocol, TypeVar

import pytest

from tests.persistence.pg_server import PostgresServer, PostgresUnavailable
from tests.persistence.pg_server import launch as launch_postgres


class Destroyable(Protocol):
    def destroy(self) -> None: ...


Service = TypeVar("Service", bound=Destroyable)


def on_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() == "true"


def own_service(launch: Callable[[], Service], unavailable: type[Exception], what: str) -> Iterator[Service]:
    """Launch a throwaway service, yield it, destroy it: `yield from own_service(...)` in a fixture."""
    try:
        service = launch()
    except unavailable as exc:
        if on_ci():
            pytest.fail(f"CI=true but {what} is unavailable: {exc}")
        pytest.skip(str(exc))
    try:
        yield service
    finally:
        service.destroy()


def own_postgres() -> Iterator[PostgresServer]:
    return own_service(launch_postgres, PostgresUnavailable, "PostgreSQL")
