"""The `CommentStore` contract, run against every backend: memory, SQLite, PostgreSQL."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

from persistence.base import DocumentNotFound
from persistence.comments import (
    OPEN,
    RESOLVED,
    CommentNotFound,
    CommentRecord,
    CommentStore,
    NewEvent,
    Reaction,
    ThreadNotFound,
    ThreadRecord,
    comment_store_for,
)
from persistence.comments_memory import MemoryCommentStore
from persistence.sql import comment_tables
from persistence.sql.schema import head_revision
from persistence.sql.tables import VERSION_TABLE, metadata
from tests.persistence.conftest import StoreEnv, make_storage, store_env

T0 = 1_700_000_000.5


Env = StoreEnv[CommentStore]


@pytest.fixture
async def env(storage_url: str) -> AsyncIterator[Env]:
    async with store_env(storage_url, comment_store_for, T0) as opened:
        yield opened


def uid() -> str:
    return uuid.uuid4().hex


def event(kind: str, author: str = "ann", at: float = T0, **data: object) -> NewEvent:
    return NewEvent(kind, author, at, json.dumps(data))


def thread_of(document_id: str, at: float = T0, **changes: object) -> ThreadRecord:
    fields: dict[str, object] = {
        "id": uid(),
        "document_id": document_id,
        "root": "t",
        "anchor_start": b"\x00\x01\x02\x00",
        "anchor_end": b"\x00\x01\x05\x41",
        "quote": "héllo 😀",
        "status": OPEN,
        "created_by": "ann",
        "created_at": at,
        "updated_at": at,
    }
    fields.update(changes)
    return ThreadRecord(**fields)  # type: ignore[arg-type]


def comment_of(thread: ThreadRecord, body: str = "first", at: float = T0, **changes: object) -> CommentRecord:
    fields: dict[str, object] = {
        "id": uid(),
        "thread_id": thread.id,
        "author": "ann",
        "body": body,
        "created_at": at,
    }
    fields.update(changes)
    return CommentRecord(**fields)  # type: ignore[arg-type]


async def new_thread(
    env: Env, at: float = T0, mentions: tuple[str, ...] = ()
) -> tuple[ThreadRecord, CommentRecord]:
    thread = thread_of(env.document_id, at)
    first = comment_of(thread, at=at, mentions=mentions)
    await env.store.create_thread(thread, first, event("comment.thread_created", at=at))
    return thread, first


async def test_create_and_read_a_thread(env: Env) -> None:
    thread, first = await new_thread(env, mentions=("bo", "cy", "bo"))
    assert await env.store.get_thread(thread.id) == thread
    assert await env.store.get_thread(uid()) is None
    [stored] = await env.store.list_comments([thread.id])
    assert stored.body == "first" and stored.mentions == ("bo", "cy") and stored.reply_to is None
    assert await env.store.get_comment(first.id) == stored
    assert await env.store.get_comment(uid()) is None
    [row] = await env.store.read_events(env.document_id)
    assert (row.seq, row.kind, row.author, row.created_at) == (1, "comment.thread_created", "ann", T0)


async def test_list_threads_by_status_oldest_first(env: Env) -> None:
    made = [(await new_thread(env, at=T0 + i))[0] for i in range(4)]
    await env.store.set_status(made[1].id, RESOLVED, "bo", T0 + 10, event("comment.thread_resolved"))
    listed = await env.store.list_threads(env.document_id)
    assert [t.id for t in listed] == [t.id for t in made]
    assert [t.id for t in await env.store.list_threads(env.document_id, OPEN)] == [
        made[0].id,
        made[2].id,
        made[3].id,
    ]
    [resolved] = await env.store.list_threads(env.document_id, RESOLVED)
    assert (resolved.id, resolved.resolved_by, resolved.resolved_at) == (made[1].id, "bo", T0 + 10)
    assert len(await env.store.list_threads(env.document_id, limit=2)) == 2
    assert await env.store.list_threads(uid()) == []


async def test_resolve_and_reopen_write_events_only_on_change(env: Env) -> None:
    thread, _ = await new_thread(env)
    updated, seq = await env.store.set_status(thread.id, RESOLVED, "bo", T0 + 1, event("r"))
    assert (updated.status, seq) == (RESOLVED, 2)
    same, seq = await env.store.set_status(thread.id, RESOLVED, "bo", T0 + 2, event("r"))
    assert seq is None and same.resolved_at == T0 + 1
    reopened, seq = await env.store.set_status(thread.id, OPEN, "cy", T0 + 3, event("o"))
    assert (reopened.status, reopened.resolved_by, reopened.resolved_at, seq) == (OPEN, None, None, 3)
    with pytest.raises(ThreadNotFound):
        await env.store.set_status(uid(), RESOLVED, "bo", T0, event("r"))
    assert [e.kind for e in await env.store.read_events(env.document_id)] == [
        "comment.thread_created",
        "r",
        "o",
    ]


async def test_move_thread_replaces_anchors(env: Env) -> None:
    thread, _ = await new_thread(env)
    moved, seq = await env.store.move_thread(
        thread.id, b"\x00\x07\x01\x00", b"\x00\x07\x03\x41", T0 + 5, event("m")
    )
    assert (moved.anchor_start, moved.anchor_end, moved.updated_at, seq) == (
        b"\x00\x07\x01\x00",
        b"\x00\x07\x03\x41",
        T0 + 5,
        2,
    )
    assert await env.store.get_thread(thread.id) == moved
    with pytest.raises(ThreadNotFound):
        await env.store.move_thread(uid(), b"", b"", T0, event("m"))


async def test_replies_edits_and_tombstones(env: Env) -> None:
    thread, first = await new_thread(env)
    reply = comment_of(thread, "a reply @bo", at=T0 + 1, reply_to=first.id, author="bo", mentions=("bo",))
    assert await env.store.add_comment(reply, event("comment.added")) == 2
    edited, seq = await env.store.edit_comment(reply.id, "edited @cy", ["cy", "cy"], T0 + 2, event("e"))
    assert (edited.body, edited.edited_at, edited.mentions, seq) == ("edited @cy", T0 + 2, ("cy",), 3)
    await env.store.add_reaction(Reaction(reply.id, "ann", "👍", T0 + 3), event("rx"))
    deleted, seq = await env.store.delete_comment(reply.id, T0 + 4, event("d"))
    assert (deleted.body, deleted.deleted_at, deleted.mentions, seq) == ("", T0 + 4, (), 5)
    again, seq = await env.store.delete_comment(reply.id, T0 + 5, event("d"))
    assert seq is None and again.deleted_at == T0 + 4
    assert await env.store.list_reactions([reply.id]) == []
    assert await env.store.mentions_of("cy") == []
    listed = await env.store.list_comments([thread.id])
    assert [(c.id, c.body, c.reply_to) for c in listed] == [
        (first.id, "first", None),
        (reply.id, "", first.id),
    ]
    with pytest.raises(CommentNotFound):
        await env.store.edit_comment(reply.id, "x", [], T0, event("e"))
    with pytest.raises(CommentNotFound):
        await env.store.add_reaction(Reaction(reply.id, "ann", "👍", T0), event("rx"))
    with pytest.raises(CommentNotFound):
        await env.store.delete_comment(uid(), T0, event("d"))


async def test_add_comment_to_unknown_thread_or_parent_writes_nothing(env: Env) -> None:
    thread, _ = await new_thread(env)
    other, other_first = await new_thread(env)
    ghost = thread_of(env.document_id)
    with pytest.raises(ThreadNotFound):
        await env.store.add_comment(comment_of(ghost), event("comment.added"))
    with pytest.raises(CommentNotFound):
        await env.store.add_comment(comment_of(thread, reply_to=other_first.id), event("comment.added"))
    with pytest.raises(CommentNotFound):
        await env.store.add_comment(comment_of(thread, reply_to=uid()), event("comment.added"))
    assert len(await env.store.list_comments([thread.id, other.id])) == 2
    assert len(await env.store.read_events(env.document_id)) == 2


async def test_reactions_are_a_set_per_user_and_emoji(env: Env) -> None:
    _, first = await new_thread(env)
    assert await env.store.add_reaction(Reaction(first.id, "bo", "👍", T0 + 1), event("rx")) == 2
    assert await env.store.add_reaction(Reaction(first.id, "bo", "👍", T0 + 2), event("rx")) is None
    assert await env.store.add_reaction(Reaction(first.id, "bo", "🎉", T0 + 3), event("rx")) == 3
    assert await env.store.add_reaction(Reaction(first.id, "cy", "👍", T0 + 4), event("rx")) == 4
    listed = await env.store.list_reactions([first.id, first.id])
    assert [(r.user_id, r.emoji) for r in listed] == [("bo", "👍"), ("bo", "🎉"), ("cy", "👍")]
    assert await env.store.remove_reaction(first.id, "bo", "👍", event("ux")) == 5
    assert await env.store.remove_reaction(first.id, "bo", "👍", event("ux")) is None
    assert [(r.user_id, r.emoji) for r in await env.store.list_reactions([first.id])] == [
        ("bo", "🎉"),
        ("cy", "👍"),
    ]


async def test_mentions_per_user_newest_first(env: Env) -> None:
    thread, first = await new_thread(env, at=T0, mentions=("bo",))
    second = comment_of(thread, "@bo again", at=T0 + 5, mentions=("bo", "cy"))
    await env.store.add_comment(second, event("comment.added"))
    found = await env.store.mentions_of("bo")
    assert [(m.comment_id, m.thread_id, m.document_id, m.author) for m in found] == [
        (second.id, thread.id, env.document_id, "ann"),
        (first.id, thread.id, env.document_id, "ann"),
    ]
    assert [m.comment_id for m in await env.store.mentions_of("bo", before=T0 + 5)] == [first.id]
    assert [m.comment_id for m in await env.store.mentions_of("bo", limit=1)] == [second.id]
    await env.store.edit_comment(first.id, "no one", [], T0 + 6, event("e"))
    assert [m.comment_id for m in await env.store.mentions_of("bo")] == [second.id]
    assert [m.comment_id for m in await env.store.mentions_of("cy")] == [second.id]
    assert [m.comment_id for m in await env.store.mentions_of("cy", document_id=env.document_id)] == [
        second.id
    ]
    assert await env.store.mentions_of("cy", document_id=uid()) == []


async def test_event_log_is_per_document_and_gap_free(env: Env) -> None:
    other = (await env.storage.create_document("other", T0)).id
    await new_thread(env)
    thread = thread_of(other)
    await env.store.create_thread(
        thread, comment_of(thread), event("comment.thread_created", thread=thread.id)
    )
    await new_thread(env)
    assert [e.seq for e in await env.store.read_events(env.document_id)] == [1, 2]
    [row] = await env.store.read_events(other)
    assert row.seq == 1 and json.loads(row.data) == {"thread": thread.id}
    assert [e.seq for e in await env.store.read_events(env.document_id, after_seq=1)] == [2]
    assert len(await env.store.read_events(env.document_id, limit=1)) == 1


async def test_concurrent_changes_get_distinct_sequence_numbers(env: Env) -> None:
    _, first = await new_thread(env)
    results = await asyncio.gather(
        *(env.store.add_reaction(Reaction(first.id, f"u{i}", "👍", T0 + i), event("rx")) for i in range(12))
    )
    assert sorted(r for r in results if r is not None) == list(range(2, 14))
    assert [e.seq for e in await env.store.read_events(env.document_id)] == list(range(1, 14))


async def test_unicode_text_round_trips(env: Env) -> None:
    thread = thread_of(env.document_id, quote="\U0001f600 e\u0301 \u05d0 \u200d", root="\u03bd\u03b1\u03b9")
    first = comment_of(thread, body="multi\nline \U0001f9d1\u200d\U0001f4bb")
    await env.store.create_thread(thread, first, event("comment.thread_created"))
    assert await env.store.get_thread(thread.id) == thread
    assert (await env.store.get_comment(first.id)) == first


async def test_sql_refuses_a_thread_of_an_unknown_document(env: Env) -> None:
    if isinstance(env.store, MemoryCommentStore):
        pytest.skip("the memory store does not know the documents")
    thread = thread_of(uid())
    with pytest.raises(DocumentNotFound):
        await env.store.create_thread(thread, comment_of(thread), event("comment.thread_created"))
    assert await env.store.get_thread(thread.id) is None
    assert await env.store.list_comments([thread.id]) == []


async def test_a_failed_create_leaves_nothing(env: Env) -> None:
    thread = thread_of(env.document_id)
    bad = comment_of(thread, body="nul \x00 byte")  # refused after the thread row is written (SQL)
    with pytest.raises(ValueError):
        await env.store.create_thread(thread, bad, event("comment.thread_created"))
    assert await env.store.get_thread(thread.id) is None
    assert await env.store.read_events(env.document_id) == []


async def test_migrations_create_exactly_the_declared_tables(sql_url: str) -> None:
    assert set(metadata.tables) >= comment_tables.COMMENT_TABLES
    storage = make_storage(sql_url)
    await storage.open()
    await storage.close()

    def diff(conn: Connection) -> list[object]:
        context = MigrationContext.configure(
            conn, opts={"version_table": VERSION_TABLE, "compare_type": True}
        )
        return list(compare_metadata(context, metadata))

    engine = create_async_engine(sql_url)
    try:
        async with engine.connect() as conn:
            assert await conn.run_sync(diff) == []
            version = (await conn.execute(text(f"SELECT version_num FROM {VERSION_TABLE}"))).scalar()
            assert version == head_revision()
    finally:
        await engine.dispose()
