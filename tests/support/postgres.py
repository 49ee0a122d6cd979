"""A PostgreSQL server of the test's own for a fixture: skipped without binaries, a failure when CI=true."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from tests.persistence.pg_server import PostgresServer, PostgresUnavailable, launch


def on_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() == "true"


def own_postgres() -> Iterator[PostgresServer]:
    """Launch a throwaway server, yield it, destroy it: `yield from own_postgres()` in a fixture."""
    try:
        server = launch()
    except PostgresUnavailable as exc:
        if on_ci():
            pytest.fail(f"CI=true but PostgreSQL is unavailable: {exc}")
        pytest.skip(str(exc))
    try:
        yield server
    finally:
        server.destroy()
