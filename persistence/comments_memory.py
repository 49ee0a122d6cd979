"""An in-memory `CommentStore`, for tests and the memory backend; same contract as the SQL one."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import replace

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


def _check_text(*values: str) -> None:
    """The SQL stores' rule, kept here too: text must be storable (no NUL, no lone surrogate)."""
    for value in values:
        if "\x00" in value:
            raise ValueError(f"text contains a NUL character: {value!r}")
        value.encode("utf-8")  # UnicodeEncodeError (a ValueError) for a lone surrogate


class MemoryCommentStore:
    """Dictionaries; every method changes them without awaiting, so each change is atomic."""

    def __init__(self) -> None:
        self._threads: dict[str, ThreadRecord] = {}
        self._comments: dict[str, CommentRecord] = {}
        self._by_thread: dict[str, list[str]] = defaultdict(list)
        self._reactions: dict[str, list[Reaction]] = defaultdict(list)
        self._events: dict[str, list[StoredEvent]] = defaultdict(list)

    # -- threads ------------------------------------------------------------------------------
    async def create_thread(self, thread: ThreadRecord, first: CommentRecord, event: NewEvent) -> int:
        if thread.status not in THREAD_STATUSES:
            raise ValueError(f"unknown thread status {thread.status!r}")
        if thread.id in self._threads or first.id in self._comments:
            raise ValueError("thread or comment id already used")
        if first.thread_id != thread.id or first.reply_to is not None:
            raise ValueError("the first comment must belong to the thread and answer nothing")
        _check_text(thread.root, thread.quote, thread.created_by, first.author, first.body, *first.mentions)
        self._threads[thread.id] = thread
        self._put_comment(first)
        return self._log(thread.document_id, event)

    async def get_thread(self, thread_id: str) -> ThreadRecord | None:
        return self._threads.get(thread_id)

    async def list_threads(
        self, document_id: str, status: str | None = None, limit: int = 1000
    ) -> list[ThreadRecord]:
        found = [
            t
            for t in self._threads.values()
            if t.document_id == document_id and (status is None or t.status == status)
        ]
        found.sort(key=lambda t: (t.created_at, t.id))
        return found[: max(0, limit)]

    async def set_status(
        self, thread_id: str, status: str, by: str, now: float, event: NewEvent
    ) -> tuple[ThreadRecord, int | None]:
        if status not in THREAD_STATUSES:
            raise ValueError(f"unknown thread status {status!r}")
        thread = self._thread(thread_id)
        if thread.status == status:
            return thread, None
        resolved = (None, None) if status == OPEN else (by, now)
        thread = replace(
            thread, status=status, updated_at=now, resolved_by=resolved[0], resolved_at=resolved[1]
        )
        self._threads[thread_id] = thread
        return thread, self._log(thread.document_id, event)

    async def move_thread(
        self, thread_id: str, anchor_start: bytes, anchor_end: bytes, now: float, event: NewEvent
    ) -> tuple[ThreadRecord, int]:
        thread = replace(
            self._thread(thread_id), anchor_start=anchor_start, anchor_end=anchor_end, updated_at=now
        )
        self._threads[thread_id] = thread
        return thread, self._log(thread.document_id, event)

    # -- comments -----------------------------------------------------------------------------
    async def add_comment(self, comment: CommentRecord, event: NewEvent) -> int:
        thread = self._thread(comment.thread_id)
        if comment.id in self._comments:
            raise ValueError("comment id already used")
        _check_text(comment.author, comment.body, *comment.mentions)
        if comment.reply_to is not None:
            parent = self._comments.get(comment.reply_to)
            if parent is None or parent.thread_id != thread.id:
                raise CommentNotFound(comment.reply_to)
        self._put_comment(comment)
        self._threads[thread.id] = replace(thread, updated_at=max(thread.updated_at, comment.created_at))
        return self._log(thread.document_id, event)

    async def get_comment(self, comment_id: str) -> CommentRecord | None:
        return self._comments.get(comment_id)

    async def list_comments(self, thread_ids: Sequence[str]) -> list[CommentRecord]:
        found = [self._comments[c] for t in dict.fromkeys(thread_ids) for c in self._by_thread.get(t, ())]
        return sorted(found, key=lambda c: (c.created_at, c.id))

    async def edit_comment(
        self, comment_id: str, body: str, mentions: Sequence[str], now: float, event: NewEvent
    ) -> tuple[CommentRecord, int]:
        _check_text(body, *mentions)
        comment = self._live_comment(comment_id)
        comment = replace(comment, body=body, edited_at=now, mentions=tuple(sorted(set(mentions))))
        self._comments[comment_id] = comment
        return comment, self._log(self._thread(comment.thread_id).document_id, event)

    async def delete_comment(
        self, comment_id: str, now: float, event: NewEvent
    ) -> tuple[CommentRecord, int | None]:
        comment = self._comments.get(comment_id)
        if comment is None:
            raise CommentNotFound(comment_id)
        if comment.deleted_at is not None:
            return comment, None
        comment = replace(comment, body="", deleted_at=now, mentions=())
        self._comments[comment_id] = comment
        self._reactions.pop(comment_id, None)
        return comment, self._log(self._thread(comment.thread_id).document_id, event)

    # -- reactions and mentions ---------------------------------------------------------------
    async def add_reaction(self, reaction: Reaction, event: NewEvent) -> int | None:
        comment = self._live_comment(reaction.comment_id)
        reactions = self._reactions[reaction.comment_id]
        if any(r.user_id == reaction.user_id and r.emoji == reaction.emoji for r in reactions):
            return None
        reactions.append(reaction)
        return self._log(self._thread(comment.thread_id).document_id, event)

    async def remove_reaction(self, comment_id: str, user_id: str, emoji: str, event: NewEvent) -> int | None:
        reactions = self._reactions.get(comment_id, [])
        kept = [r for r in reactions if not (r.user_id == user_id and r.emoji == emoji)]
        if len(kept) == len(reactions):
            return None
        self._reactions[comment_id] = kept
        comment = self._comments[comment_id]
        return self._log(self._thread(comment.thread_id).document_id, event)

    async def list_reactions(self, comment_ids: Sequence[str]) -> list[Reaction]:
        found = [r for c in dict.fromkeys(comment_ids) for r in self._reactions.get(c, ())]
        return sorted(found, key=lambda r: (r.created_at, r.comment_id, r.user_id, r.emoji))

    async def mentions_of(
        self, user_id: str, document_id: str | None = None, limit: int = 100, before: float | None = None
    ) -> list[Mention]:
        found = [
            Mention(user_id, c.id, c.thread_id, thread.document_id, c.author, c.created_at)
            for c in self._comments.values()
            if user_id in c.mentions and (before is None or c.created_at < before)
            for thread in (self._threads[c.thread_id],)
            if document_id is None or thread.document_id == document_id
        ]
        found.sort(key=lambda m: (m.created_at, m.comment_id), reverse=True)
        return found[: max(0, limit)]

    # -- events -------------------------------------------------------------------------------
    async def read_events(
        self, document_id: str, after_seq: int = 0, limit: int | None = None
    ) -> list[StoredEvent]:
        rows = self._events.get(document_id, [])[max(0, after_seq) :]
        return rows if limit is None else rows[: max(0, limit)]

    # -- helpers ------------------------------------------------------------------------------
    def _put_comment(self, comment: CommentRecord) -> None:
        self._comments[comment.id] = replace(comment, mentions=tuple(sorted(set(comment.mentions))))
        self._by_thread[comment.thread_id].append(comment.id)

    def _log(self, document_id: str, event: NewEvent) -> int:
        rows = self._events[document_id]
        rows.append(StoredEvent(len(rows) + 1, event.kind, event.author, event.created_at, event.data))
        return len(rows)

    def _thread(self, thread_id: str) -> ThreadRecord:
        thread = self._threads.get(thread_id)
        if thread is None:
            raise ThreadNotFound(thread_id)
        return thread

    def _live_comment(self, comment_id: str) -> CommentRecord:
        comment = self._comments.get(comment_id)
        if comment is None or comment.deleted_at is not None:
            raise CommentNotFound(comment_id)
        return comment
