"""`SqlHistoryStore`: presence samples and session/bookmark rows of the shared document event log."""

# `SqlHistoryStore`: presence samples (`document_presence`, revision 0004) and session/bookmark rows of
# the shared `document_events` log (revision 0003, written the way `SqlCommentStore` writes it:
# seq = max + 1 per document in the write transaction; on PostgreSQL a writer that lost the race
# for a seq retries).

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import TypeVar

from sqlalchemy import func, insert, or_, select
from sqlalchemy.ext.asyncio import AsyncConnection

from persistence.base import DocumentNotFound
from persistence.comments import NewEvent, StoredEvent
from persistence.history import HISTORY_EVENT_PREFIXES, PRESENCE_KINDS, NewPresence, StoredPresence
from persistence.sql.comment_tables import events
from persistence.sql.engine import Database, write_retrying
from persistence.sql.errors import translated
from persistence.sql.history_tables import presence
from persistence.sql.storage import _check_text
from persistence.sql.tables import documents

_ATTEMPTS = 8
T = TypeVar("T")


def _check_rows(rows: Sequence[NewPresence]) -> None:
    for row in rows:
        if row.kind not in PRESENCE_KINDS:
            raise ValueError(f"unknown presence kind {row.kind!r}")
        _check_text(row.author, "author")
        _check_text(row.data, "presence data")


class SqlHistoryStore:
    """The `HistoryStore` on the database of an opened `SqlStorage` (`SqlStorage.database`)."""

    def __init__(self, database: Database) -> None:
        self._db = database
        self.where = database.where

    async def _change(self, action: str, body: Callable[[AsyncConnection], Awaitable[T]]) -> T:
        return await write_retrying(self._db, action, body)

    async def _require(self, conn: AsyncConnection, document_id: str) -> None:
        found = await conn.execute(select(documents.c.id).where(documents.c.id == document_id))
        if found.first() is None:
            raise DocumentNotFound(document_id)

    async def append_presence(self, document_id: str, rows: Sequence[NewPresence]) -> int:
        _check_rows(rows)

        async def body(conn: AsyncConnection) -> int:
            await self._require(conn, document_id)
            last = await conn.execute(
                select(func.coalesce(func.max(presence.c.seq), 0)).where(
                    presence.c.document_id == document_id
                )
            )
            first = int(last.scalar_one()) + 1
            if rows:
                values = [
                    {"document_id": document_id, "seq": first + i, **_presence_values(row)}
                    for i, row in enumerate(rows)
                ]
                await conn.execute(insert(presence), values)
            return first + len(rows) - 1

        return await self._change("recording presence", body)

    async def append_presence_batch(self, batch: Mapping[str, Sequence[NewPresence]]) -> dict[str, int]:
        """One transaction for every document of `batch`: a busy server writes presence at the pace
        it arrives (a transaction per document could not keep up with rooms opening, and the rows
        waiting in memory grew without end)."""
        for rows in batch.values():
            _check_rows(rows)
        wanted = [document_id for document_id, rows in batch.items() if rows]
        if not wanted:
            return {}

        async def body(conn: AsyncConnection) -> dict[str, int]:
            found = await conn.execute(select(documents.c.id).where(documents.c.id.in_(wanted)))
            known = {row[0] for row in found}
            c = presence.c
            lasts = await conn.execute(
                select(c.document_id, func.max(c.seq)).where(c.document_id.in_(known)).group_by(c.document_id)
            )
            last_seq = {row[0]: int(row[1]) for row in lasts}
            values: list[dict[str, object]] = []
            stored: dict[str, int] = {}
            for document_id in wanted:
                if document_id not in known:
                    continue
                first = last_seq.get(document_id, 0) + 1
                rows = batch[document_id]
                values += [
                    {"document_id": document_id, "seq": first + i, **_presence_values(row)}
                    for i, row in enumerate(rows)
                ]
                stored[document_id] = first + len(rows) - 1
            if values:
                await conn.execute(insert(presence), values)
            return stored

        return await self._change("recording presence", body)

    async def read_presence(
        self,
        document_id: str,
        since: float | None = None,
        until: float | None = None,
        after_seq: int = 0,
        limit: int | None = None,
        kinds: Sequence[str] | None = None,
    ) -> list[StoredPresence]:
        c = presence.c
        query = (
            select(c.seq, c.created_at, c.author, c.kind, c.connection, c.client_id, c.log_seq, c.data)
            .where(c.document_id == document_id, c.seq > after_seq)
            .order_by(c.seq)
        )
        if since is not None:
            query = query.where(c.created_at >= since)
        if until is not None:
            query = query.where(c.created_at <= until)
        if kinds is not None:
            query = query.where(c.kind.in_(list(kinds)))
        if limit is not None:
            query = query.limit(max(0, limit))
        with translated("reading presence", self.where):
            async with self._db.read() as conn:
                rows = (await conn.execute(query)).all()
        return [
            StoredPresence(
                int(r[0]),
                float(r[1]),
                r[2],
                r[3],
                int(r[4]),
                None if r[5] is None else int(r[5]),
                int(r[6]),
                r[7],
            )
            for r in rows
        ]

    async def append_event(self, document_id: str, event: NewEvent) -> int:
        _check_text(event.kind, "event kind")
        _check_text(event.author, "event author")

        async def body(conn: AsyncConnection) -> int:
            await self._require(conn, document_id)
            last = await conn.execute(
                select(func.coalesce(func.max(events.c.seq), 0)).where(events.c.document_id == document_id)
            )
            seq = int(last.scalar_one()) + 1
            await conn.execute(
                insert(events).values(
                    document_id=document_id,
                    seq=seq,
                    kind=event.kind,
                    author=event.author,
                    created_at=event.created_at,
                    data=event.data,
                )
            )
            return seq

        return await self._change("logging a document event", body)

    async def read_events(
        self, document_id: str, prefixes: Sequence[str] = HISTORY_EVENT_PREFIXES, after_seq: int = 0
    ) -> list[StoredEvent]:
        c = events.c
        query = (
            select(c.seq, c.kind, c.author, c.created_at, c.data)
            .where(c.document_id == document_id, c.seq > after_seq)
            .where(or_(*(c.kind.startswith(prefix, autoescape=True) for prefix in prefixes)))
            .order_by(c.seq)
        )
        with translated("reading document events", self.where):
            async with self._db.read() as conn:
                rows = (await conn.execute(query)).all()
        return [StoredEvent(int(r[0]), r[1], r[2], float(r[3]), r[4]) for r in rows]


def _presence_values(row: NewPresence) -> dict[str, object]:
    return {
        "created_at": row.created_at,
        "author": row.author,
        "kind": row.kind,
        "connection": row.connection,
        "client_id": row.client_id,
        "log_seq": row.log_seq,
        "data": row.data,
    }
