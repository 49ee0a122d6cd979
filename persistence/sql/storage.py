"""`SqlStorage`: the `Storage` protocol on SQLite or PostgreSQL through SQLAlchemy's asyncio API."""

from __future__ import annotations

import sys
import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy import ColumnElement, Select, delete, func, insert, select, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from persistence.base import (
    DocumentExists,
    DocumentNotFound,
    DocumentRecord,
    NewUpdate,
    RetiredEpoch,
    Snapshot,
    StorageError,
    StoredUpdate,
)
from persistence.sql.claims import claim, read_claims
from persistence.sql.engine import Database, normalize_url
from persistence.sql.epochs import read_retired_epochs, renew_epoch
from persistence.sql.errors import translated
from persistence.sql.schema import ensure_schema
from persistence.sql.tables import documents, snapshots
from persistence.sql.tables import updates as log

_RECORD_COLUMNS = (
    documents.c.id,
    documents.c.name,
    documents.c.epoch,
    documents.c.created_at,
    documents.c.updated_at,
    documents.c.last_seq,
    documents.c.log_bytes,
    documents.c.last_author,
)
_LIVE = documents.c.deleted_at.is_(None)
# The append on SQLite, run on the driver connection (see `Database.sqlite_write`).
_SQLITE_BUMP = (
    f"UPDATE {documents.name} SET last_seq = last_seq + ?, log_bytes = log_bytes + ?, updated_at = ?, "
    "last_author = ? WHERE id = ? AND deleted_at IS NULL RETURNING last_seq"
)
_SQLITE_INSERT = f"INSERT INTO {log.name} (document_id, seq, created_at, author, data) VALUES (?, ?, ?, ?, ?)"


def _check_text(value: str, what: str) -> None:
    """`ValueError` unless both databases can store `value` (UTF-8 encodable, no NUL)."""
    if "\x00" in value:
        raise ValueError(f"{what} contains a NUL character: {value!r}")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ValueError(f"{what} is not valid Unicode text (lone surrogate): {value!r}") from exc


def _record(row: Sequence[Any]) -> DocumentRecord:
    return DocumentRecord(
        id=row[0],
        name=row[1],
        epoch=row[2],
        created_at=float(row[3]),
        updated_at=float(row[4]),
        last_seq=int(row[5]),
        log_bytes=int(row[6]),
        last_author=row[7],
    )


def _successor(prefix: str) -> str | None:
    """The smallest string above every string starting with `prefix` (code point order)."""
    while prefix:
        last = ord(prefix[-1])
        if last < sys.maxunicode:
            following = 0xE000 if last == 0xD7FF else last + 1  # skip the surrogates
            return prefix[:-1] + chr(following)
        prefix = prefix[:-1]
    return None


def _name_filters(prefix: str, after: str) -> list[ColumnElement[bool]]:
    """Range conditions on the live-name index for `list_documents`."""
    name = documents.c.name
    filters: list[ColumnElement[bool]] = [_LIVE]
    if after:
        filters.append(name > after)
    if prefix:
        filters.append(name >= prefix)
        upper = _successor(prefix)
        if upper is not None:
            filters.append(name < upper)
    return filters


def read_updates_query(
    document_id: str, after_seq: int, until_seq: int | None, limit: int | None
) -> Select[int, bytes, str, float]:
    """The log range query: a range scan of the (document_id, seq) primary key, in key order."""
    query = (
        select(log.c.seq, log.c.data, log.c.author, log.c.created_at)
        .where(log.c.document_id == document_id, log.c.seq > after_seq)
        .order_by(log.c.seq)
    )
    if until_seq is not None:
        query = query.where(log.c.seq <= until_seq)
    if limit is not None:
        query = query.limit(max(0, limit))
    return query


class SqlStorage:
    """Documents, update logs and snapshots in a SQLite file or a PostgreSQL database.

    `url`: `sqlite+aiosqlite:///path.db` or `postgresql+asyncpg://user@host/db` (the plain
    `sqlite://` and `postgresql://` spellings are accepted too). Every failure of the database
    or its driver is raised as `StorageError`; the engine reconnects once the database is back.
    Names and authors must be storable text (no NUL, no lone surrogate): `ValueError` otherwise.
    """

    def __init__(self, url: str) -> None:
        self._db = Database(normalize_url(url))
        self._open = False

    @property
    def where(self) -> str:
        """The database URL, password hidden."""
        return self._db.where

    @property
    def database(self) -> Database:
        """The engine, for stores that live in the same database (access lists, ...)."""
        return self._db

    async def open(self) -> None:
        """Create or upgrade the schema; `SchemaMismatch` leaves the storage closed."""
        await ensure_schema(self._db)
        self._open = True

    async def close(self) -> None:
        self._open = False
        with translated("closing", self.where):
            await self._db.dispose()

    async def ping(self) -> None:
        """One `SELECT 1` on a pooled connection (reconnecting if the database came back)."""
        self._require_open()
        with translated("ping", self.where):
            async with self._db.read() as conn:
                await conn.exec_driver_sql("SELECT 1")

    def _require_open(self) -> None:
        # Working on a database whose schema was not checked could write into a foreign or
        # newer schema, and on SQLite outside WAL mode: refuse instead.
        if not self._open:
            raise StorageError(f"storage on {self.where} is not open (await storage.open() first)")

    async def durability_settings(self) -> dict[str, str]:
        """Settings in effect on a live connection (SQLite pragmas / PostgreSQL `SHOW`)."""
        self._require_open()
        with translated("reading settings", self.where):
            return await self._db.settings()

    async def create_document(self, name: str, now: float) -> DocumentRecord:
        self._require_open()
        _check_text(name, "document name")
        record = DocumentRecord(
            id=uuid.uuid4().hex,
            name=name,
            epoch=uuid.uuid4().hex,
            created_at=now,
            updated_at=now,
            last_seq=0,
            log_bytes=0,
            last_author=None,
        )
        with translated("creating a document", self.where):
            try:
                async with self._db.write() as conn:
                    taken = await conn.execute(select(documents.c.id).where(documents.c.name == name, _LIVE))
                    if taken.first() is not None:
                        raise DocumentExists(name)
                    await conn.execute(
                        insert(documents).values(
                            id=record.id,
                            name=name,
                            epoch=record.epoch,
                            created_at=now,
                            updated_at=now,
                            deleted_at=None,
                            last_seq=0,
                            log_bytes=0,
                            last_author=None,
                        )
                    )
            except IntegrityError as exc:  # a concurrent creator won the race for the name
                raise DocumentExists(name) from exc
        return record

    async def get_document(self, name: str) -> DocumentRecord | None:
        self._require_open()
        _check_text(name, "document name")
        with translated("reading a document", self.where):
            async with self._db.read() as conn:
                result = await conn.execute(select(*_RECORD_COLUMNS).where(documents.c.name == name, _LIVE))
                row = result.first()
        return None if row is None else _record(row)

    async def live_documents_by_id(self, document_ids: Sequence[str]) -> dict[str, DocumentRecord]:
        self._require_open()
        wanted = sorted(set(document_ids))
        if not wanted:
            return {}
        with translated("reading documents", self.where):
            async with self._db.read() as conn:
                result = await conn.execute(select(*_RECORD_COLUMNS).where(documents.c.id.in_(wanted), _LIVE))
                records = [_record(row) for row in result]
        return {record.id: record for record in records}

    async def list_documents(
        self, prefix: str = "", after: str = "", limit: int = 100
    ) -> list[DocumentRecord]:
        self._require_open()
        _check_text(prefix, "prefix")
        _check_text(after, "after")
        query = (
            select(*_RECORD_COLUMNS)
            .where(*_name_filters(prefix, after))
            .order_by(documents.c.name)
            .limit(max(0, limit))
        )
        with translated("listing documents", self.where):
            async with self._db.read() as conn:
                rows = (await conn.execute(query)).all()
        return [_record(row) for row in rows]

    async def rename_document(self, name: str, new_name: str, now: float) -> DocumentRecord:
        self._require_open()
        _check_text(name, "document name")
        _check_text(new_name, "new document name")
        with translated("renaming a document", self.where):
            try:
                async with self._db.write() as conn:
                    found = await conn.execute(select(documents.c.id).where(documents.c.name == name, _LIVE))
                    document_id = found.scalar_one_or_none()
                    if document_id is None:
                        raise DocumentNotFound(name)
                    taken = await conn.execute(
                        select(documents.c.id).where(documents.c.name == new_name, _LIVE)
                    )
                    if taken.first() is not None:
                        raise DocumentExists(new_name)
                    result = await conn.execute(
                        update(documents)
                        .where(documents.c.id == document_id, _LIVE)
                        .values(name=new_name, updated_at=now)
                        .returning(*_RECORD_COLUMNS)
                    )
                    row = result.first()
                    if row is None:  # deleted between the two statements (PostgreSQL)
                        raise DocumentNotFound(name)
            except IntegrityError as exc:
                raise DocumentExists(new_name) from exc
        return _record(row)

    async def delete_document(self, name: str, now: float) -> None:
        self._require_open()
        _check_text(name, "document name")
        with translated("deleting a document", self.where):
            async with self._db.write() as conn:
                result = await conn.execute(
                    update(documents)
                    .where(documents.c.name == name, _LIVE)
                    .values(deleted_at=now, updated_at=now)
                    .returning(documents.c.id)
                )
                if result.first() is None:
                    raise DocumentNotFound(name)

    async def retired_documents(self, name: str) -> list[DocumentRecord]:
        self._require_open()
        _check_text(name, "document name")
        query = (
            select(*_RECORD_COLUMNS)
            .where(documents.c.name == name, documents.c.deleted_at.is_not(None))
            .order_by(documents.c.deleted_at.desc())
        )
        with translated("listing retired documents", self.where):
            async with self._db.read() as conn:
                rows = (await conn.execute(query)).all()
        return [_record(row) for row in rows]

    async def renew_epoch(
        self, document_id: str, seq: int, state_vector: bytes, now: float
    ) -> DocumentRecord:
        self._require_open()
        return _record(await renew_epoch(self._db, document_id, seq, state_vector, now, _RECORD_COLUMNS))

    async def retired_epochs(self, document_id: str) -> list[RetiredEpoch]:
        self._require_open()
        return await read_retired_epochs(self._db, document_id)

    async def client_claims(self, document_id: str, epoch: str) -> dict[int, str]:
        self._require_open()
        return await read_claims(self._db, document_id, epoch)

    async def claim_client(self, document_id: str, epoch: str, client_id: int, user_id: str) -> str:
        self._require_open()
        _check_text(user_id, "user id")
        return await claim(self._db, document_id, epoch, client_id, user_id)

    async def append_updates(self, document_id: str, updates: Sequence[NewUpdate]) -> int:
        self._require_open()
        for author in {u.author for u in updates}:
            _check_text(author, "author")
        with translated("appending updates", self.where):
            if updates and self._db.is_sqlite:
                return await self._append_sqlite(document_id, updates)
            async with self._db.write() as conn:
                if not updates:
                    result = await conn.execute(
                        select(documents.c.last_seq).where(documents.c.id == document_id, _LIVE)
                    )
                    last_seq = result.scalar_one_or_none()
                    if last_seq is None:
                        raise DocumentNotFound(document_id)
                    return int(last_seq)
                last = updates[-1]
                # Bumping last_seq first takes the row lock (PostgreSQL) before the seqs are
                # chosen, so concurrent appenders queue here and the log stays gap-free.
                result = await conn.execute(
                    update(documents)
                    .where(documents.c.id == document_id, _LIVE)
                    .values(
                        last_seq=documents.c.last_seq + len(updates),
                        log_bytes=documents.c.log_bytes + sum(len(u.data) for u in updates),
                        updated_at=last.created_at,
                        last_author=last.author,
                    )
                    .returning(documents.c.last_seq)
                )
                new_last = result.scalar_one_or_none()
                if new_last is None:
                    raise DocumentNotFound(document_id)
                first = int(new_last) - len(updates) + 1
                await conn.execute(
                    insert(log),
                    [
                        {
                            "document_id": document_id,
                            "seq": first + offset,
                            "created_at": u.created_at,
                            "author": u.author,
                            "data": u.data,
                        }
                        for offset, u in enumerate(updates)
                    ],
                )
        return int(new_last)

    async def _append_sqlite(self, document_id: str, updates: Sequence[NewUpdate]) -> int:
        """`append_updates` on SQLite: the same two statements in one transaction, in 4 thread hops."""
        last = updates[-1]
        added = sum(len(u.data) for u in updates)
        async with self._db.sqlite_write() as driver:
            rows = await driver.execute_fetchall(
                _SQLITE_BUMP, (len(updates), added, last.created_at, last.author, document_id)
            )
            if not rows:
                raise DocumentNotFound(document_id)
            new_last = int(rows[0][0])
            first = new_last - len(updates) + 1
            await driver.executemany(
                _SQLITE_INSERT,
                [(document_id, first + i, u.created_at, u.author, u.data) for i, u in enumerate(updates)],
            )
        return new_last

    async def read_updates(
        self, document_id: str, after_seq: int = 0, until_seq: int | None = None, limit: int | None = None
    ) -> list[StoredUpdate]:
        self._require_open()
        query = read_updates_query(document_id, after_seq, until_seq, limit)
        with translated("reading updates", self.where):
            async with self._db.read() as conn:
                rows = (await conn.execute(query)).all()
                if not rows:
                    await self._require(conn, document_id)
        # Columns in field order, values already int/bytes/str/float: no per-row conversion.
        return [StoredUpdate(*row) for row in rows]

    async def save_snapshot(self, document_id: str, snapshot: Snapshot) -> None:
        self._require_open()
        upsert = (sqlite_insert if self._db.is_sqlite else postgresql_insert)(snapshots).values(
            document_id=document_id, seq=snapshot.seq, created_at=snapshot.created_at, data=snapshot.data
        )
        upsert = upsert.on_conflict_do_update(
            index_elements=[snapshots.c.document_id, snapshots.c.seq],
            set_={"created_at": upsert.excluded.created_at, "data": upsert.excluded.data},
        )
        with translated("saving a snapshot", self.where):
            async with self._db.write() as conn:
                await self._require(conn, document_id)
                await conn.execute(upsert)

    async def latest_snapshot(self, document_id: str, at_most_seq: int | None = None) -> Snapshot | None:
        self._require_open()
        query = (
            select(snapshots.c.seq, snapshots.c.data, snapshots.c.created_at)
            .where(snapshots.c.document_id == document_id)
            .order_by(snapshots.c.seq.desc())
            .limit(1)
        )
        if at_most_seq is not None:
            query = query.where(snapshots.c.seq <= at_most_seq)
        with translated("reading a snapshot", self.where):
            async with self._db.read() as conn:
                row = (await conn.execute(query)).first()
                if row is None:
                    await self._require(conn, document_id)
                    return None
        return Snapshot(seq=int(row[0]), data=bytes(row[1]), created_at=float(row[2]))

    async def prune_updates(self, document_id: str, up_to_seq: int, older_than: float) -> int:
        self._require_open()
        with translated("pruning the log", self.where):
            async with self._db.write() as conn:
                await self._require(conn, document_id)
                latest = await conn.execute(
                    select(func.max(snapshots.c.seq)).where(snapshots.c.document_id == document_id)
                )
                limit = min(up_to_seq, int(latest.scalar() or 0))
                first_kept = await conn.execute(
                    select(func.min(log.c.seq)).where(
                        log.c.document_id == document_id, log.c.seq <= limit, log.c.created_at >= older_than
                    )
                )
                kept = first_kept.scalar()
                if kept is not None:
                    limit = int(kept) - 1
                result = await conn.execute(
                    delete(log).where(log.c.document_id == document_id, log.c.seq <= limit)
                )
        return int(result.rowcount or 0)

    async def _require(self, conn: AsyncConnection, document_id: str) -> None:
        """`DocumentNotFound` unless a document (live or deleted) has that id."""
        result = await conn.execute(select(documents.c.id).where(documents.c.id == document_id))
        if result.first() is None:
            raise DocumentNotFound(document_id)
