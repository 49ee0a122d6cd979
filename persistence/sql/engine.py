"""Database URLs and engines: SQLite (WAL, synchronous=FULL) or PostgreSQL (synchronous_commit=on).

The durability settings of DESIGN.md §4 hold for every connection, so a commit returns only
once the rows are on disk: SQLite's `synchronous` is set as each connection opens (WAL is a
property of the file, switched on once by `enable_wal`), PostgreSQL's `synchronous_commit` is a
startup parameter of each session. On SQLite, SQLAlchemy (not the sqlite3 module) emits
BEGIN: IMMEDIATE for writes, so two writers never deadlock upgrading a read lock, and none for
reads (autocommit); writers of one process also queue on an asyncio lock instead of SQLite's
busy-wait.
"""

from __future__ import annotations

import asyncio
import random
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import event
from sqlalchemy.engine import URL, Connection, make_url
from sqlalchemy.exc import ArgumentError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from persistence.base import StorageError
from persistence.sql.errors import translated

T = TypeVar("T")

SQLITE_DRIVER = "sqlite+aiosqlite"
POSTGRES_DRIVER = "postgresql+asyncpg"

_DRIVERS = {
    "sqlite": SQLITE_DRIVER,
    SQLITE_DRIVER: SQLITE_DRIVER,
    "postgresql": POSTGRES_DRIVER,
    "postgres": POSTGRES_DRIVER,
    POSTGRES_DRIVER: POSTGRES_DRIVER,
}

#: How long a SQLite writer waits for another process's write lock before failing.
BUSY_TIMEOUT_MS = 10_000
#: How long connecting to PostgreSQL may take before it counts as a failure.
CONNECT_TIMEOUT_S = 10.0
#: SQLite's `PRAGMA synchronous` reports FULL as 2.
_SYNCHRONOUS_FULL = 2
#: Execution option read by the SQLite `begin` hook: which BEGIN to emit.
_BEGIN_OPTION = "cocreate_sqlite_begin"


def normalize_url(url: str) -> URL:
    """Parse a database URL and pin its async driver; `ValueError` if unsupported or in-memory."""
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise ValueError(f"not a database URL: {url!r}") from exc
    driver = _DRIVERS.get(parsed.drivername)
    if driver is None:
        raise ValueError(
            f"unsupported database URL scheme {parsed.drivername!r}: use "
            f"'{SQLITE_DRIVER}:///path/to/file.db' or '{POSTGRES_DRIVER}://user@host/database'"
        )
    parsed = parsed.set(drivername=driver)
    if driver == SQLITE_DRIVER and sqlite_path(parsed) is None:
        raise ValueError("in-memory SQLite is not durable storage; use 'memory://' for tests")
    return parsed


def sqlite_path(url: URL) -> Path | None:
    """The file of a SQLite URL, or None for an in-memory database."""
    database = url.database or ""
    if database in ("", ":memory:") or url.query.get("mode") == "memory":
        return None
    if database.startswith("file:"):
        database = database[len("file:") :].split("?", 1)[0]
    return Path(database)


def _is_busy(exc: sqlite3.OperationalError) -> bool:
    message = str(exc).lower()
    return "locked" in message or "busy" in message


async def _pragma(driver: Any, name: str, value: str | None = None) -> str:
    """Run `PRAGMA name [= value]` on an aiosqlite connection; its result, lower case."""
    statement = f"PRAGMA {name}" if value is None else f"PRAGMA {name} = {value}"
    cursor = await driver.execute(statement)
    try:
        row = await cursor.fetchone()
    finally:
        await cursor.close()
    return "" if row is None else str(row[0]).lower()


def _on_sqlite_begin(conn: Connection) -> None:
    mode = conn.get_execution_options().get(_BEGIN_OPTION, "DEFERRED")
    if mode == "NONE":  # autocommit reads: each SELECT is its own read transaction
        return
    conn.exec_driver_sql("BEGIN IMMEDIATE" if mode == "IMMEDIATE" else "BEGIN DEFERRED")


class Database:
    """One async engine, and the way to open read and write transactions on it."""

    def __init__(self, url: URL) -> None:
        self.url = url
        self.where = url.render_as_string(hide_password=True)
        self.is_sqlite = url.get_backend_name() == "sqlite"
        self._wal = False
        self._write_lock: asyncio.Lock | None = None
        self.engine: AsyncEngine
        if self.is_sqlite:
            self.engine = create_async_engine(url, hide_parameters=True)
            event.listen(self.engine.sync_engine, "connect", self._on_sqlite_connect)
            event.listen(self.engine.sync_engine, "begin", _on_sqlite_begin)
            self._writer = self.engine.execution_options(**{_BEGIN_OPTION: "IMMEDIATE"})
            self._reader = self.engine.execution_options(**{_BEGIN_OPTION: "NONE"})
            self._write_lock = asyncio.Lock()
        else:
            self.engine = create_async_engine(
                url,
                hide_parameters=True,
                pool_pre_ping=True,
                connect_args={
                    "timeout": CONNECT_TIMEOUT_S,
                    "server_settings": {"synchronous_commit": "on", "application_name": "cocreate"},
                },
            )
            self._writer = self.engine
            self._reader = self.engine.execution_options(isolation_level="AUTOCOMMIT")

    def _on_sqlite_connect(self, dbapi_connection: Any, _record: Any) -> None:
        # Take over BEGIN from the sqlite3 module (see _on_sqlite_begin), then set the pragmas.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            cursor.execute("PRAGMA foreign_keys = ON")
            cursor.execute("PRAGMA synchronous = FULL")
            cursor.execute("PRAGMA synchronous")
            if cursor.fetchone()[0] != _SYNCHRONOUS_FULL:
                raise StorageError(f"{self.where}: SQLite refused synchronous=FULL")
        finally:
            cursor.close()

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncConnection]:
        """A connection for reads in autocommit mode: each statement sees its own snapshot.

        Saves the BEGIN and ROLLBACK round trips (thread hops on aiosqlite) of a transaction;
        our reads never need two statements to agree (rows are never deleted).
        """
        async with self._reader.connect() as conn:
            yield conn

    @asynccontextmanager
    async def write(self) -> AsyncIterator[AsyncConnection]:
        """A write transaction, committed when the block ends normally, else rolled back."""
        if self._write_lock is None:
            async with self._writer.begin() as conn:
                yield conn
            return
        async with self._write_lock, self._writer.begin() as conn:
            yield conn

    @asynccontextmanager
    async def sqlite_write(self) -> AsyncIterator[Any]:
        """SQLite: a write transaction run on the aiosqlite driver connection itself, for hot paths.

        BEGIN IMMEDIATE, the block's statements, COMMIT (ROLLBACK when the block raises): the same
        connection, pragmas (synchronous=FULL), lock and single commit as `write`, but one thread hop
        per statement instead of SQLAlchemy's three or four (cursor, execute, fetch, close).
        """
        if self._write_lock is None:
            raise StorageError(f"{self.where}: not a SQLite database")
        async with self._write_lock, self.engine.connect() as conn:
            driver = (await conn.get_raw_connection()).driver_connection
            if driver is None:  # pragma: no cover - only after invalidation
                raise StorageError(f"{self.where}: no driver connection")
            await driver.execute_fetchall("BEGIN IMMEDIATE")
            try:
                yield driver
            except BaseException:
                await driver.execute_fetchall("ROLLBACK")  # (cancelled here: the pool's reset rolls back)
                raise
            await driver.execute_fetchall("COMMIT")

    async def enable_wal(self) -> None:
        """Switch a SQLite database to WAL mode, once its schema is known to be ours.

        Called after the schema check because the journal mode is stored in the file (and
        kept there for every later connection): a database we refuse must not be changed by
        merely opening it. Two connections switching at once would each wait for the other's
        shared lock until the busy timeout, so the switch is tried without the busy handler and
        retried after a short random pause.
        """
        if not self.is_sqlite or self._wal:
            return
        loop = asyncio.get_running_loop()
        deadline = loop.time() + BUSY_TIMEOUT_MS / 1000
        async with self.engine.connect() as conn:
            driver = (await conn.get_raw_connection()).driver_connection  # aiosqlite, no BEGIN
            if driver is None:  # pragma: no cover - only after invalidation
                raise StorageError(f"{self.where}: no driver connection")
            mode = await _pragma(driver, "journal_mode")
            if mode != "wal":
                await _pragma(driver, "busy_timeout", "0")
                try:
                    while True:
                        try:
                            mode = await _pragma(driver, "journal_mode", "WAL")
                            break
                        except sqlite3.OperationalError as exc:
                            if not _is_busy(exc) or loop.time() > deadline:
                                raise
                            await asyncio.sleep(random.uniform(0.002, 0.03))
                finally:
                    await _pragma(driver, "busy_timeout", str(BUSY_TIMEOUT_MS))
        if mode != "wal":
            raise StorageError(f"{self.where}: SQLite refused WAL mode (journal_mode={mode})")
        self._wal = True

    async def settings(self) -> dict[str, str]:
        """The durability settings in effect on a pooled connection, for checks and diagnostics."""
        names: tuple[str, ...]
        if self.is_sqlite:
            names = ("journal_mode", "synchronous", "busy_timeout", "foreign_keys")
            query = "PRAGMA {}"
        else:
            names = ("synchronous_commit", "fsync", "server_version")
            query = "SHOW {}"
        values: dict[str, str] = {}
        async with self.engine.connect() as conn:
            for name in names:
                values[name] = str((await conn.exec_driver_sql(query.format(name))).scalar())
        return values

    async def dispose(self) -> None:
        """Close every pooled connection; the engine reconnects if used again."""
        await self.engine.dispose()


async def write_retrying(
    database: Database, action: str, body: Callable[[AsyncConnection], Awaitable[T]], attempts: int = 8
) -> T:
    """Run `body` in a write transaction; again when a concurrent writer took the same per-document
    sequence number (a unique violation, PostgreSQL). SQLite writers are serialised: one attempt."""
    for attempt in range(attempts):
        with translated(action, database.where):
            try:
                async with database.write() as conn:
                    return await body(conn)
            except IntegrityError:
                if database.is_sqlite or attempt == attempts - 1:
                    raise
    raise StorageError(f"{action} on {database.where} failed: sequence contention")  # pragma: no cover
