"""Comment threads, comments, reactions, mentions and the document event log: records and protocol."""

from __future__ import annotations

import weakref
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

OPEN = "open"
RESOLVED = "resolved"
THREAD_STATUSES = (OPEN, RESOLVED)


class CommentsError(Exception):
    """Base of the comment store's own errors (not storage failures)."""


class ThreadNotFound(CommentsError, LookupError):
    """No thread has that id."""


class CommentNotFound(CommentsError, LookupError):
    """No comment has that id (in that thread)."""


@dataclass(frozen=True, slots=True)
class ThreadRecord:
    """A thread anchored to a range of the root Y.Text `root` (two Yjs relative positions)."""

    id: str
    document_id: str
    root: str
    anchor_start: bytes
    anchor_end: bytes
    quote: str  # the text of the range when the thread was created
    status: str  # OPEN or RESOLVED
    created_by: str
    created_at: float
    updated_at: float
    resolved_by: str | None = None
    resolved_at: float | None = None


@dataclass(frozen=True, slots=True)
class CommentRecord:
    """One comment of a thread; `reply_to` names the comment it answers. A deleted comment stays
    as a tombstone (empty body, `deleted_at` set, no mentions or reactions) so replies keep
    their parent."""

    id: str
    thread_id: str
    author: str
    body: str
    created_at: float
    reply_to: str | None = None
    edited_at: float | None = None
    deleted_at: float | None = None
    mentions: tuple[str, ...] = ()  # user ids, sorted, no duplicates


@dataclass(frozen=True, slots=True)
class Reaction:
    comment_id: str
    user_id: str
    emoji: str
    created_at: float


@dataclass(frozen=True, slots=True)
class Mention:
    """`user_id` was mentioned by `author` in a comment (listable per user, newest first)."""

    user_id: str
    comment_id: str
    thread_id: str
    document_id: str
    author: str
    created_at: float


@dataclass(frozen=True, slots=True)
class NewEvent:
    """A document event to record with a change, in the same transaction. `data` is JSON text."""

    kind: str
    author: str
    created_at: float
    data: str


@dataclass(frozen=True, slots=True)
class StoredEvent:
    """A row of a document's event log: per document, `seq` runs 1, 2, 3, ... without gaps."""

    seq: int
    kind: str
    author: str
    created_at: float
    data: str


class CommentStore(Protocol):
    """Threads and everything hanging off them, and the durable document event log.

    Every change takes a `NewEvent` and writes it in the same transaction; a change returns the
    event's seq, or None when nothing changed (then no event is written). Nothing is half-done:
    a create writes the thread, its first comment, its mentions and its event, or none of them.
    Stores live next to a `Storage` (same database) and are opened and closed with it.
    """

    async def create_thread(self, thread: ThreadRecord, first: CommentRecord, event: NewEvent) -> int:
        """Raises `DocumentNotFound` (SQL) when `thread.document_id` names no document."""

    async def get_thread(self, thread_id: str) -> ThreadRecord | None: ...

    async def list_threads(
        self, document_id: str, status: str | None = None, limit: int = 1000
    ) -> list[ThreadRecord]:
        """The document's threads (one status, or all), oldest first."""

    async def set_status(
        self, thread_id: str, status: str, by: str, now: float, event: NewEvent
    ) -> tuple[ThreadRecord, int | None]:
        """Resolve or reopen; `ThreadNotFound`. Unchanged (already in `status`): no event."""

    async def move_thread(
        self, thread_id: str, anchor_start: bytes, anchor_end: bytes, now: float, event: NewEvent
    ) -> tuple[ThreadRecord, int]:
        """Store new anchors (a range re-found after it was orphaned); `ThreadNotFound`."""

    async def add_comment(self, comment: CommentRecord, event: NewEvent) -> int:
        """`ThreadNotFound`; `CommentNotFound` when `reply_to` is not a comment of the thread."""

    async def get_comment(self, comment_id: str) -> CommentRecord | None: ...

    async def list_comments(self, thread_ids: Sequence[str]) -> list[CommentRecord]:
        """The comments of these threads (tombstones included), oldest first."""

    async def edit_comment(
        self, comment_id: str, body: str, mentions: Sequence[str], now: float, event: NewEvent
    ) -> tuple[CommentRecord, int]:
        """Replace body and mentions; `CommentNotFound` (also for a deleted comment)."""

    async def delete_comment(
        self, comment_id: str, now: float, event: NewEvent
    ) -> tuple[CommentRecord, int | None]:
        """Leave a tombstone; `CommentNotFound`. Already deleted: no event."""

    async def add_reaction(self, reaction: Reaction, event: NewEvent) -> int | None:
        """`CommentNotFound` (also for a deleted comment). Already there: no event."""

    async def remove_reaction(self, comment_id: str, user_id: str, emoji: str, event: NewEvent) -> int | None:
        """Not there: no event."""

    async def list_reactions(self, comment_ids: Sequence[str]) -> list[Reaction]:
        """Oldest first."""

    async def mentions_of(
        self, user_id: str, document_id: str | None = None, limit: int = 100, before: float | None = None
    ) -> list[Mention]:
        """Mentions of `user_id` in live comments (of one document, or all), newest first,
        created before `before`."""

    async def read_events(
        self, document_id: str, after_seq: int = 0, limit: int | None = None
    ) -> list[StoredEvent]:
        """Event rows with seq > `after_seq`, ascending."""


_MEMORY_STORES: weakref.WeakKeyDictionary[object, CommentStore] = weakref.WeakKeyDictionary()


def comment_store_for(storage: object) -> CommentStore:
    """The comment store that lives next to `storage`: in its SQL database, else in memory (one
    per storage object, so every caller sees the same comments)."""
    import sys

    from persistence.comments_memory import MemoryCommentStore

    sql = sys.modules.get("persistence.sql.storage")  # loaded iff a SqlStorage can exist
    if sql is not None and isinstance(storage, sql.SqlStorage):
        from persistence.sql.comments import SqlCommentStore

        return SqlCommentStore(storage.database)
    store = _MEMORY_STORES.get(storage)
    if store is None:
        store = _MEMORY_STORES[storage] = MemoryCommentStore()
    return store
