"""Fixtures of the persistence tests: a real PostgreSQL server per session, a backend per test."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Generic, TypeVar

import pytest

from persistence.base import Storage
from persistence.memory import MemoryStorage
from persistence.sql import SqlStorage
from tests.persistence.pg_server import (
    PostgresServer,
    fresh_database,
)
from tests.support.services import own_postgres

BACKENDS = ["memory", "sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PostgresServer]:
    """A PostgreSQL server for the whole session; skipped without binaries (failed when CI=true)."""
    yield from own_postgres()


async def _empty_database(server: PostgresServer) -> str:
    if not server.running:  # a test that stopped the server failed before restarting it
        server.start()
    return await fresh_database(server)


@pytest.fixture
async def pg_url(pg_server: PostgresServer) -> str:
    """The URL of an empty database on the session's server."""
    return await _empty_database(pg_server)


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """The URL of a SQLite file that does not exist yet."""
    return f"sqlite+aiosqlite:///{tmp_path / 'cocreate.db'}"


@pytest.fixture(params=BACKENDS)
async def storage_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """One URL per backend: "memory://", a SQLite file, a fresh PostgreSQL database."""
    if request.param == "memory":
        yield "memory://"
    elif request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'cocreate.db'}"
    else:
        yield await _empty_database(request.getfixturevalue("pg_server"))


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def sql_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The URL of an empty SQL database: a SQLite file, then PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'cocreate.db'}"
    return await _empty_database(request.getfixturevalue("pg_server"))


def make_storage(url: str) -> Storage:
    """The backend for a fixture URL (the factory has its own tests)."""
    return MemoryStorage() if url == "memory://" else SqlStorage(url)


@pytest.fixture
async def storage(storage_url: str) -> AsyncIterator[Storage]:
    """An opened, empty backend, closed after the test."""
    backend = make_storage(storage_url)
    await backend.open()
    yield backend
    await backend.close()


StoreT = TypeVar("StoreT")


@dataclass
class StoreEnv(Generic[StoreT]):
    """A backend with one document, and a side store (comments, history, webhooks) over it."""

    storage: Storage
    store: StoreT
    document_id: str


@contextlib.asynccontextmanager
async def store_env(
    url: str, store_for: Callable[[Storage], StoreT], created_at: float
) -> AsyncIterator[StoreEnv[StoreT]]:
    """An opened backend for `url` with the document "notes", and `store_for(backend)`; closed after."""
    storage = make_storage(url)
    await storage.open()
    try:
        record = await storage.create_document("notes", created_at)
        yield StoreEnv(storage, store_for(storage), record.id)
    finally:
        await storage.close()
