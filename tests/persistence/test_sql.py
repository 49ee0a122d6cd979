"""What only the SQL backend promises: schema versioning, durability settings, errors, reopening."""

from __future__ import annotations

import asyncio
import hashlib
import sqlite3
import time
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

from persistence.base import (
    DocumentNotFound,
    NewUpdate,
    SchemaMismatch,
    Snapshot,
    StorageError,
)
from persistence.sql import SqlStorage
from persistence.sql.schema import head_revision
from persistence.sql.storage import read_updates_query
from persistence.sql.tables import VERSION_TABLE, metadata
from tests.persistence.pg_server import PostgresServer, free_port

T0 = 1_700_000_000.5


def upd(data: bytes, author: str = "alice", at: float = T0) -> NewUpdate:
    return NewUpdate(data, author, at)


async def run_sql(url: str, *statements: str) -> list[list[tuple[object, ...]]]:
    """Run raw statements in one transaction on a separate engine; the rows of each."""
    engine = create_async_engine(url)
    try:
        async with engine.begin() as conn:
            results = []
            for statement in statements:
                result = await conn.execute(text(statement))
                results.append([tuple(r) for r in result.all()] if result.returns_rows else [])
            return results
    finally:
        await engine.dispose()


def files_in(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def digest(path: Path) -> tuple[str, float]:
    return hashlib.sha256(path.read_bytes()).hexdigest(), path.stat().st_mtime


# -- schema ---------------------------------------------------------------------------------------


async def test_migrations_create_exactly_the_tables(sql_url: str) -> None:
    storage = SqlStorage(sql_url)
    await storage.open()
    await storage.close()

    def diff(conn: Connection) -> list[object]:
        opts = {"version_table": VERSION_TABLE, "compare_type": True}
        context = MigrationContext.configure(conn, opts=opts)
        return list(compare_metadata(context, metadata))

    engine = create_async_engine(sql_url)
    try:
        async with engine.connect() as conn:
            assert await conn.run_sync(diff) == []
            version = (await conn.execute(text(f"SELECT version_num FROM {VERSION_TABLE}"))).scalar()
            assert version == head_revision()
    finally:
        await engine.dispose()


async def test_open_is_idempotent_and_reopen_keeps_everything(sql_url: str) -> None:
    blob = bytes(range(256)) * 1000
    first = SqlStorage(sql_url)
    await first.open()
    await first.open()
    gone = await first.create_document("gone", T0)
    await first.append_updates(gone.id, [upd(b"old-1"), upd(b"old-2")])
    await first.delete_document("gone", T0 + 1)
    kept = await first.create_document("kept", T0 + 2)
    await first.append_updates(kept.id, [upd(b"k1", "ann", T0 + 3), upd(blob, "bob", T0 + 4)])
    await first.save_snapshot(kept.id, Snapshot(1, b"snap-1", T0 + 5))
    await first.rename_document("kept", "renamed", T0 + 6)
    again = await first.create_document("gone", T0 + 7)
    listed = await first.list_documents()
    before = (listed, await first.read_updates(kept.id), await first.read_updates(gone.id))
    await first.close()

    second = SqlStorage(sql_url)
    await second.open()
    try:
        assert (
            await second.list_documents(),
            await second.read_updates(kept.id),
            await second.read_updates(gone.id),
        ) == before
        assert [r.name for r in before[0]] == ["gone", "renamed"]
        assert await second.get_document("gone") == again
        assert await second.latest_snapshot(kept.id) == Snapshot(1, b"snap-1", T0 + 5)
        assert await second.append_updates(kept.id, [upd(b"k3")]) == 3
        with pytest.raises(DocumentNotFound):
            await second.append_updates(gone.id, [upd(b"x")])
    finally:
        await second.close()


async def test_concurrent_first_opens_of_an_empty_database(sql_url: str) -> None:
    storages = [SqlStorage(sql_url) for _ in range(4)]
    await asyncio.gather(*(s.open() for s in storages))
    doc = await storages[0].create_document("doc", T0)
    assert await storages[3].get_document("doc") == doc
    for storage in storages:
        await storage.close()


def _make_sqlite(path: Path, *statements: str) -> None:
    conn = sqlite3.connect(path)
    try:
        for statement in statements:
            conn.execute(statement)
        conn.commit()
    finally:
        conn.close()


async def test_sqlite_from_a_newer_version_is_refused_untouched(tmp_path: Path) -> None:
    path = tmp_path / "future.db"
    _make_sqlite(
        path,
        f"CREATE TABLE {VERSION_TABLE} (version_num VARCHAR(32) PRIMARY KEY)",
        f"INSERT INTO {VERSION_TABLE} VALUES ('9999_from_the_future')",
        "CREATE TABLE documents (id TEXT PRIMARY KEY, shiny_new_column BLOB)",
        "CREATE TABLE updates (x INTEGER)",
    )
    before = digest(path)
    storage = SqlStorage(f"sqlite+aiosqlite:///{path}")
    with pytest.raises(SchemaMismatch, match="9999_from_the_future") as caught:
        await storage.open()
    assert "newer cocreate" in str(caught.value)
    with pytest.raises(StorageError, match="not open"):  # a refused storage stays closed
        await storage.create_document("doc", T0)
    await storage.close()
    assert digest(path) == before
    assert files_in(tmp_path) == ["future.db"]
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "delete"  # never switched to WAL
    conn.close()


async def test_sqlite_with_foreign_tables_is_refused_untouched(tmp_path: Path) -> None:
    path = tmp_path / "other.db"
    _make_sqlite(
        path, "CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT)", "INSERT INTO users VALUES (1, 'x')"
    )
    before = digest(path)
    storage = SqlStorage(f"sqlite+aiosqlite:///{path}")
    with pytest.raises(SchemaMismatch, match="users"):
        await storage.open()
    await storage.close()
    assert digest(path) == before
    assert files_in(tmp_path) == ["other.db"]


async def test_sqlite_file_that_is_not_a_database(tmp_path: Path) -> None:
    path = tmp_path / "junk.db"
    path.write_bytes(b"this is not SQLite" * 100)
    storage = SqlStorage(f"sqlite+aiosqlite:///{path}")
    with pytest.raises(StorageError) as caught:
        await storage.open()
    assert type(caught.value) is StorageError
    assert isinstance(caught.value.__cause__, Exception)
    await storage.close()
    assert path.read_bytes() == b"this is not SQLite" * 100


@pytest.mark.postgres
async def test_postgres_from_a_newer_version_is_refused_untouched(pg_url: str) -> None:
    await run_sql(
        pg_url,
        f"CREATE TABLE {VERSION_TABLE} (version_num VARCHAR(32) PRIMARY KEY)",
        f"INSERT INTO {VERSION_TABLE} VALUES ('9999_from_the_future')",
        "CREATE TABLE documents (id TEXT PRIMARY KEY, shiny_new_column BYTEA)",
        "INSERT INTO documents VALUES ('a', NULL)",
    )
    storage = SqlStorage(pg_url)
    with pytest.raises(SchemaMismatch, match="9999_from_the_future"):
        await storage.open()
    await storage.close()
    [tables, rows] = await run_sql(
        pg_url,
        "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1",
        "SELECT * FROM documents",
    )
    assert tables == [("cocreate_schema_version",), ("documents",)]
    assert rows == [("a", None)]


@pytest.mark.postgres
async def test_postgres_with_foreign_tables_is_refused_untouched(pg_url: str) -> None:
    await run_sql(pg_url, "CREATE TABLE invoices (id INTEGER PRIMARY KEY)")
    storage = SqlStorage(pg_url)
    with pytest.raises(SchemaMismatch, match="invoices"):
        await storage.open()
    await storage.close()
    [tables] = await run_sql(pg_url, "SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
    assert tables == [("invoices",)]


@pytest.mark.parametrize("bad", ["\ud800", "a\x00b"])
async def test_unstorable_text_is_a_value_error_on_both_databases(sql_url: str, bad: str) -> None:
    storage = SqlStorage(sql_url)
    await storage.open()
    try:
        doc = await storage.create_document("ok", T0)
        with pytest.raises(ValueError):
            await storage.create_document(bad, T0)
        with pytest.raises(ValueError):
            await storage.rename_document("ok", bad, T0)
        with pytest.raises(ValueError):
            await storage.append_updates(doc.id, [upd(b"x", author=bad)])
        with pytest.raises(ValueError):
            await storage.get_document(bad)
        assert await storage.read_updates(doc.id) == []
        assert [r.name for r in await storage.list_documents()] == ["ok"]
    finally:
        await storage.close()


async def test_in_memory_sqlite_is_refused() -> None:
    for url in ("sqlite+aiosqlite://", "sqlite+aiosqlite:///:memory:"):
        with pytest.raises(ValueError, match="memory"):
            SqlStorage(url)
    with pytest.raises(ValueError, match="unsupported"):
        SqlStorage("mysql+aiomysql://localhost/db")


# -- durability -----------------------------------------------------------------------------------


async def test_sqlite_runs_in_wal_with_synchronous_full(sqlite_url: str, tmp_path: Path) -> None:
    storage = SqlStorage(sqlite_url)
    await storage.open()
    try:
        settings = await storage.durability_settings()
        assert settings["journal_mode"] == "wal"
        assert settings["synchronous"] == "2"  # FULL
        assert int(settings["busy_timeout"]) >= 1000
        assert settings["foreign_keys"] == "1"
        doc = await storage.create_document("doc", T0)
        # Every pooled connection has them, not only the first: use several at once.
        await asyncio.gather(*(storage.append_updates(doc.id, [upd(b"x")]) for _ in range(10)))
        all_settings = await asyncio.gather(*(storage.durability_settings() for _ in range(6)))
        assert {(s["journal_mode"], s["synchronous"]) for s in all_settings} == {("wal", "2")}
    finally:
        await storage.close()
    conn = sqlite3.connect(tmp_path / "cocreate.db")  # WAL is a property of the file
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    conn.close()


@pytest.mark.postgres
async def test_postgres_commits_synchronously(pg_url: str) -> None:
    storage = SqlStorage(pg_url)
    await storage.open()
    try:
        settings = await storage.durability_settings()
        assert settings["synchronous_commit"] == "on"
        assert settings["fsync"] == "on"
    finally:
        await storage.close()


# -- atomicity and concurrency --------------------------------------------------------------------


async def test_a_failed_append_writes_nothing(sql_url: str) -> None:
    storage = SqlStorage(sql_url)
    await storage.open()
    try:
        doc = await storage.create_document("doc", T0)
        await storage.append_updates(doc.id, [upd(b"one")])
        # Plant a row where the batch's second update must go: the batch must fail as a whole.
        await run_sql(
            sql_url,
            "INSERT INTO updates (document_id, seq, created_at, author, data) "
            f"VALUES ('{doc.id}', 3, 0, 'planted', X'00')".replace("X'00'", _blob_literal(sql_url)),
        )
        with pytest.raises(StorageError) as caught:
            await storage.append_updates(doc.id, [upd(b"two"), upd(b"three"), upd(b"four")])
        assert type(caught.value) is StorageError
        record = await storage.get_document("doc")
        assert record is not None and (record.last_seq, record.log_bytes) == (1, 3)
        rows = await storage.read_updates(doc.id)
        assert [(r.seq, r.author) for r in rows] == [(1, "alice"), (3, "planted")]
    finally:
        await storage.close()


def _blob_literal(url: str) -> str:
    return "'\\x00'::bytea" if url.startswith("postgresql") else "X'00'"


async def test_two_engines_append_without_gaps(sql_url: str) -> None:
    """Two storages on one database stand for two server processes."""
    one, two = SqlStorage(sql_url), SqlStorage(sql_url)
    await one.open()
    await two.open()
    try:
        doc = await one.create_document("shared", T0)

        async def writer(storage: SqlStorage, tag: str) -> None:
            for i in range(15):
                batch = [upd(f"{tag}{i}-{k}".encode()) for k in range(1 + i % 3)]
                await storage.append_updates(doc.id, batch)

        await asyncio.gather(*(writer(s, f"{n}{s is one}") for n in range(3) for s in (one, two)))
        rows = await two.read_updates(doc.id)
        assert [r.seq for r in rows] == list(range(1, 6 * sum(1 + i % 3 for i in range(15)) + 1))
        record = await one.get_document("shared")
        assert record is not None and record.last_seq == len(rows)
    finally:
        await one.close()
        await two.close()


async def test_log_reads_are_primary_key_range_scans(sql_url: str) -> None:
    storage = SqlStorage(sql_url)
    await storage.open()
    await storage.close()
    engine = create_async_engine(sql_url)
    plans = []
    try:
        async with engine.connect() as conn:
            for args in [(0, None, None), (10, 20, None), (10, None, 50), (10, 90, 50)]:
                query = read_updates_query("a" * 32, *args)
                compiled = query.compile(engine.sync_engine, compile_kwargs={"literal_binds": True})
                if engine.dialect.name == "sqlite":
                    rows = await conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {compiled}")
                    plans.append(" | ".join(str(r[-1]) for r in rows))
                else:
                    await conn.exec_driver_sql("SET enable_seqscan = off")  # an empty table
                    rows = await conn.exec_driver_sql(f"EXPLAIN {compiled}")
                    plans.append(" | ".join(str(r[0]) for r in rows))
    finally:
        await engine.dispose()
    for plan in plans:
        if sql_url.startswith("sqlite"):
            assert "SEARCH updates USING PRIMARY KEY (document_id=? AND seq>?" in plan, plan
        else:
            assert "Index Scan using pk_updates" in plan, plan
        assert "Sort" not in plan and "TEMP B-TREE" not in plan, plan


# -- errors ---------------------------------------------------------------------------------------


async def test_unreachable_postgres_raises_storage_error_promptly() -> None:
    storage = SqlStorage(f"postgresql+asyncpg://postgres@127.0.0.1:{free_port()}/nothing")
    started = time.monotonic()
    with pytest.raises(StorageError) as caught:
        await storage.open()
    assert type(caught.value) is StorageError and "127.0.0.1" in str(caught.value)
    with pytest.raises(StorageError):
        await storage.append_updates("0" * 32, [upd(b"x")])
    with pytest.raises(StorageError):
        await storage.create_document("doc", T0)
    with pytest.raises(StorageError):
        await storage.read_updates("0" * 32)
    assert time.monotonic() - started < 5
    await storage.close()


async def test_operations_before_open_or_after_close_raise(sqlite_url: str) -> None:
    storage = SqlStorage(sqlite_url)
    with pytest.raises(StorageError, match="not open"):
        await storage.get_document("doc")
    await storage.open()
    await storage.create_document("doc", T0)
    await storage.close()
    with pytest.raises(StorageError, match="not open"):
        await storage.append_updates("0" * 32, [upd(b"x")])
    await storage.open()  # and it can be opened again
    assert await storage.get_document("doc") is not None
    await storage.close()


async def test_sqlite_in_a_missing_folder_raises_storage_error(tmp_path: Path) -> None:
    storage = SqlStorage(f"sqlite+aiosqlite:///{tmp_path / 'missing' / 'x.db'}")
    with pytest.raises(StorageError):
        await storage.open()
    with pytest.raises(StorageError):
        await storage.get_document("doc")
    await storage.close()


@pytest.mark.postgres
async def test_postgres_outage_then_recovery(pg_server: PostgresServer, pg_url: str) -> None:
    storage = SqlStorage(pg_url)
    await storage.open()
    try:
        doc = await storage.create_document("doc", T0)
        await storage.append_updates(doc.id, [upd(b"before")])
        pg_server.stop()
        try:
            with pytest.raises(StorageError) as caught:
                await storage.append_updates(doc.id, [upd(b"during")])
            assert type(caught.value) is StorageError
            with pytest.raises(StorageError):
                await storage.read_updates(doc.id)
            with pytest.raises(StorageError):
                await storage.list_documents()
            with pytest.raises(StorageError):
                await storage.ping()
        finally:
            pg_server.start()
        await storage.ping()
        assert await storage.append_updates(doc.id, [upd(b"after")]) == 2
        assert [r.data for r in await storage.read_updates(doc.id)] == [b"before", b"after"]
    finally:
        await storage.close()
