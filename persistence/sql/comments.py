"""`SqlCommentStore`: comment threads and the document event log in the `SqlStorage` database.

Tables (revision 0003) are in `comment_tables`, on the shared `metadata`. The store shares the storage's
engine (and on SQLite its writer lock) and lives as long as it. Each change is one transaction
that also appends its row to `document_events`; the row's seq is max+1 per document, and on
PostgreSQL a concurrent writer that took the same seq makes the loser retry the whole change.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from persistence.base import DocumentNotFound
from persistence.comments import (
    OPEN,
    THREAD_STATUSES,
    CommentNotFound,
    CommentRecord,
    Mention,
    NewEvent,
    Reaction,
    StoredEvent,
    ThreadNotFound,
    ThreadRecord,
)
from persistence.sql.comment_tables import comments, events, mentions, reactions, threads
from persistence.sql.engine import Database, write_retrying
from persistence.sql.errors import translated
from persistence.sql.storage import _check_text
from persistence.sql.tables import documents

_ATTEMPTS = 8  # PostgreSQL: tries of a change whose event seq another writer took first
_IN_CHUNK = 500  # ids per IN (...) list
_THREAD = tuple(threads.c)
_COMMENT = tuple(comments.c)
T = TypeVar("T")


def _thread(row: Any) -> ThreadRecord:
    values = dict(row._mapping)  # column names are the field names
    values.update(anchor_start=bytes(row.anchor_start), anchor_end=bytes(row.anchor_end))
    return ThreadRecord(**values)


def _comment(row: Any, mentioned: tuple[str, ...] = ()) -> CommentRecord:
    return CommentRecord(**row._mapping, mentions=mentioned)


def _chunks(ids: Sequence[str]) -> list[list[str]]:
    unique = list(dict.fromkeys(ids))
    return [unique[i : i + _IN_CHUNK] for i in range(0, len(unique), _IN_CHUNK)]


class SqlCommentStore:
    """The `CommentStore` on the database of an opened `SqlStorage` (`SqlStorage.database`)."""

    def __init__(self, database: Database) -> None:
        self._db = database
        self.where = database.where

    async def _change(self, action: str, body: Callable[[AsyncConnection], Awaitable[T]]) -> T:
        return await write_retrying(self._db, action, body)

    async def _log(self, conn: AsyncConnection, document_id: str, event: NewEvent) -> int:
        _check_text(event.kind, "event kind")
        _check_text(event.author, "event author")
        last = await conn.execute(
            select(func.coalesce(func.max(events.c.seq), 0)).where(events.c.document_id == document_id)
        )
        seq = int(last.scalar_one()) + 1
        await conn.execute(insert(events).values(document_id=document_id, seq=seq, **_asdict(event)))
        return seq

    async def _insert_comment(self, conn: AsyncConnection, comment: CommentRecord) -> None:
        for value, what in ((comment.author, "author"), (comment.body, "comment body")):
            _check_text(value, what)
        row = _asdict(comment)
        del row["mentions"]
        await conn.execute(insert(comments).values(**row))
        await self._put_mentions(conn, comment.id, comment.mentions, comment.created_at)

    async def _put_mentions(
        self, conn: AsyncConnection, comment_id: str, users: Sequence[str], at: float
    ) -> None:
        await conn.execute(delete(mentions).where(mentions.c.comment_id == comment_id))
        unique = sorted(set(users))
        for user in unique:
            _check_text(user, "mentioned user")
        if unique:
            await conn.execute(
                insert(mentions), [{"comment_id": comment_id, "user_id": u, "created_at": at} for u in unique]
            )

    async def _document_of(self, conn: AsyncConnection, thread_id: str) -> ThreadRecord:
        row = (await conn.execute(select(*_THREAD).where(threads.c.id == thread_id))).first()
        if row is None:
            raise ThreadNotFound(thread_id)
        return _thread(row)

    async def _comment_row(self, conn: AsyncConnection, comment_id: str, live: bool) -> CommentRecord:
        row = (await conn.execute(select(*_COMMENT).where(comments.c.id == comment_id))).first()
        if row is None or (live and row[7] is not None):
            raise CommentNotFound(comment_id)
        return _comment(row)

    # -- threads ------------------------------------------------------------------------------
    async def create_thread(self, thread: ThreadRecord, first: CommentRecord, event: NewEvent) -> int:
        if thread.status not in THREAD_STATUSES:
            raise ValueError(f"unknown thread status {thread.status!r}")
        if first.thread_id != thread.id or first.reply_to is not None:
            raise ValueError("the first comment must belong to the thread and answer nothing")
        for value, what in ((thread.root, "root"), (thread.quote, "quote"), (thread.created_by, "author")):
            _check_text(value, what)

        async def body(conn: AsyncConnection) -> int:
            found = await conn.execute(select(documents.c.id).where(documents.c.id == thread.document_id))
            if found.first() is None:
                raise DocumentNotFound(thread.document_id)
            await conn.execute(insert(threads).values(**_asdict(thread)))
            await self._insert_comment(conn, first)
            return await self._log(conn, thread.document_id, event)

        return await self._change("creating a thread", body)

    async def get_thread(self, thread_id: str) -> ThreadRecord | None:
        with translated("reading a thread", self.where):
            async with self._db.read() as conn:
                row = (await conn.execute(select(*_THREAD).where(threads.c.id == thread_id))).first()
        return None if row is None else _thread(row)

    async def list_threads(
        self, document_id: str, status: str | None = None, limit: int = 1000
    ) -> list[ThreadRecord]:
        query = select(*_THREAD).where(threads.c.document_id == document_id)
        if status is not None:
            query = query.where(threads.c.status == status)
        query = query.order_by(threads.c.created_at, threads.c.id).limit(max(0, limit))
        with translated("listing threads", self.where):
            async with self._db.read() as conn:
                rows = (await conn.execute(query)).all()
        return [_thread(row) for row in rows]

    async def set_status(
        self, thread_id: str, status: str, by: str, now: float, event: NewEvent
    ) -> tuple[ThreadRecord, int | None]:
        if status not in THREAD_STATUSES:
            raise ValueError(f"unknown thread status {status!r}")
        _check_text(by, "user")

        async def body(conn: AsyncConnection) -> tuple[ThreadRecord, int | None]:
            thread = await self._document_of(conn, thread_id)
            if thread.status == status:
                return thread, None
            resolved_by, resolved_at = (None, None) if status == OPEN else (by, now)
            values = {
                "status": status,
                "updated_at": now,
                "resolved_by": resolved_by,
                "resolved_at": resolved_at,
            }
            await conn.execute(update(threads).where(threads.c.id == thread_id).values(**values))
            seq = await self._log(conn, thread.document_id, event)
            return await self._document_of(conn, thread_id), seq

        return await self._change("changing a thread's status", body)

    async def move_thread(
        self, thread_id: str, anchor_start: bytes, anchor_end: bytes, now: float, event: NewEvent
    ) -> tuple[ThreadRecord, int]:
        async def body(conn: AsyncConnection) -> tuple[ThreadRecord, int]:
            thread = await self._document_of(conn, thread_id)
            values = {"anchor_start": anchor_start, "anchor_end": anchor_end, "updated_at": now}
            await conn.execute(update(threads).where(threads.c.id == thread_id).values(**values))
            seq = await self._log(conn, thread.document_id, event)
            return await self._document_of(conn, thread_id), seq

        return await self._change("moving a thread", body)

    # -- comments -----------------------------------------------------------------------------
    async def add_comment(self, comment: CommentRecord, event: NewEvent) -> int:
        async def body(conn: AsyncConnection) -> int:
            thread = await self._document_of(conn, comment.thread_id)
            if comment.reply_to is not None:
                parent = await self._comment_row(conn, comment.reply_to, live=False)
                if parent.thread_id != thread.id:
                    raise CommentNotFound(comment.reply_to)
            await self._insert_comment(conn, comment)
            bump = (
                func.max(threads.c.updated_at, comment.created_at)
                if self._db.is_sqlite
                else func.greatest(threads.c.updated_at, comment.created_at)
            )
            await conn.execute(update(threads).where(threads.c.id == thread.id).values(updated_at=bump))
            return await self._log(conn, thread.document_id, event)

        return await self._change("adding a comment", body)

    async def get_comment(self, comment_id: str) -> CommentRecord | None:
        found = await self._comments_where([comment_id], comments.c.id)
        return found[0] if found else None

    async def list_comments(self, thread_ids: Sequence[str]) -> list[CommentRecord]:
        return await self._comments_where(thread_ids, comments.c.thread_id)

    async def _comments_where(self, ids: Sequence[str], column: Any) -> list[CommentRecord]:
        rows: list[Sequence[Any]] = []
        mentioned: dict[str, list[str]] = {}
        with translated("reading comments", self.where):
            async with self._db.read() as conn:
                for chunk in _chunks(ids):
                    rows += (await conn.execute(select(*_COMMENT).where(column.in_(chunk)))).all()
                for chunk in _chunks([row[0] for row in rows]):
                    query = select(mentions.c.comment_id, mentions.c.user_id).where(
                        mentions.c.comment_id.in_(chunk)
                    )
                    for comment_id, user in (await conn.execute(query)).all():
                        mentioned.setdefault(comment_id, []).append(user)
        found = [_comment(row, tuple(sorted(mentioned.get(row[0], ())))) for row in rows]
        return sorted(found, key=lambda c: (c.created_at, c.id))

    async def edit_comment(
        self, comment_id: str, body: str, mentioned: Sequence[str], now: float, event: NewEvent
    ) -> tuple[CommentRecord, int]:
        _check_text(body, "comment body")

        async def change(conn: AsyncConnection) -> tuple[CommentRecord, int]:
            comment = await self._comment_row(conn, comment_id, live=True)
            await conn.execute(
                update(comments).where(comments.c.id == comment_id).values(body=body, edited_at=now)
            )
            await self._put_mentions(conn, comment_id, mentioned, comment.created_at)
            thread = await self._document_of(conn, comment.thread_id)
            seq = await self._log(conn, thread.document_id, event)
            users = tuple(sorted(set(mentioned)))
            return CommentRecord(
                **{**_asdict(comment), "body": body, "edited_at": now, "mentions": users}
            ), seq

        return await self._change("editing a comment", change)

    async def delete_comment(
        self, comment_id: str, now: float, event: NewEvent
    ) -> tuple[CommentRecord, int | None]:
        async def body(conn: AsyncConnection) -> tuple[CommentRecord, int | None]:
            comment = await self._comment_row(conn, comment_id, live=False)
            if comment.deleted_at is not None:
                return comment, None
            await conn.execute(
                update(comments).where(comments.c.id == comment_id).values(body="", deleted_at=now)
            )
            await conn.execute(delete(mentions).where(mentions.c.comment_id == comment_id))
            await conn.execute(delete(reactions).where(reactions.c.comment_id == comment_id))
            thread = await self._document_of(conn, comment.thread_id)
            seq = await self._log(conn, thread.document_id, event)
            return CommentRecord(**{**_asdict(comment), "body": "", "deleted_at": now, "mentions": ()}), seq

        return await self._change("deleting a comment", body)

    # -- reactions and mentions ---------------------------------------------------------------
    async def add_reaction(self, reaction: Reaction, event: NewEvent) -> int | None:
        _check_text(reaction.user_id, "user")
        _check_text(reaction.emoji, "emoji")

        async def body(conn: AsyncConnection) -> int | None:
            comment = await self._comment_row(conn, reaction.comment_id, live=True)
            key = (
                reactions.c.comment_id == reaction.comment_id,
                reactions.c.user_id == reaction.user_id,
                reactions.c.emoji == reaction.emoji,
            )
            if (await conn.execute(select(reactions.c.emoji).where(*key))).first() is not None:
                return None
            await conn.execute(insert(reactions).values(**_asdict(reaction)))
            thread = await self._document_of(conn, comment.thread_id)
            return await self._log(conn, thread.document_id, event)

        return await self._change("adding a reaction", body)

    async def remove_reaction(self, comment_id: str, user_id: str, emoji: str, event: NewEvent) -> int | None:
        async def body(conn: AsyncConnection) -> int | None:
            result = await conn.execute(
                delete(reactions).where(
                    reactions.c.comment_id == comment_id,
                    reactions.c.user_id == user_id,
                    reactions.c.emoji == emoji,
                )
            )
            if not result.rowcount:
                return None
            comment = await self._comment_row(conn, comment_id, live=False)
            thread = await self._document_of(conn, comment.thread_id)
            return await self._log(conn, thread.document_id, event)

        return await self._change("removing a reaction", body)

    async def list_reactions(self, comment_ids: Sequence[str]) -> list[Reaction]:
        found: list[Reaction] = []
        columns = (reactions.c.comment_id, reactions.c.user_id, reactions.c.emoji, reactions.c.created_at)
        with translated("reading reactions", self.where):
            async with self._db.read() as conn:
                for chunk in _chunks(comment_ids):
                    query = select(*columns).where(reactions.c.comment_id.in_(chunk))
                    found += [
                        Reaction(r[0], r[1], r[2], float(r[3])) for r in (await conn.execute(query)).all()
                    ]
        return sorted(found, key=lambda r: (r.created_at, r.comment_id, r.user_id, r.emoji))

    async def mentions_of(
        self, user_id: str, document_id: str | None = None, limit: int = 100, before: float | None = None
    ) -> list[Mention]:
        query = (
            select(
                mentions.c.comment_id,
                comments.c.thread_id,
                threads.c.document_id,
                comments.c.author,
                mentions.c.created_at,
            )
            .join(comments, comments.c.id == mentions.c.comment_id)
            .join(threads, threads.c.id == comments.c.thread_id)
            .where(mentions.c.user_id == user_id)
            .order_by(mentions.c.created_at.desc(), mentions.c.comment_id.desc())
            .limit(max(0, limit))
        )
        if before is not None:
            query = query.where(mentions.c.created_at < before)
        if document_id is not None:
            query = query.where(threads.c.document_id == document_id)
        with translated("listing mentions", self.where):
            async with self._db.read() as conn:
                rows = (await conn.execute(query)).all()
        return [Mention(user_id, r[0], r[1], r[2], r[3], float(r[4])) for r in rows]

    # -- events -------------------------------------------------------------------------------
    async def read_events(
        self, document_id: str, after_seq: int = 0, limit: int | None = None
    ) -> list[StoredEvent]:
        query = (
            select(events.c.seq, events.c.kind, events.c.author, events.c.created_at, events.c.data)
            .where(events.c.document_id == document_id, events.c.seq > after_seq)
            .order_by(events.c.seq)
        )
        if limit is not None:
            query = query.limit(max(0, limit))
        with translated("reading document events", self.where):
            async with self._db.read() as conn:
                rows = (await conn.execute(query)).all()
        return [StoredEvent(int(r[0]), r[1], r[2], float(r[3]), r[4]) for r in rows]


def _asdict(record: Any) -> dict[str, Any]:
    return {name: getattr(record, name) for name in record.__slots__}
