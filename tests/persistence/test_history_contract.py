"""The `HistoryStore` contract on every backend: presence samples and session/bookmark event rows."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import pytest

from persistence.base import DocumentNotFound
from persistence.comments import NewEvent, comment_store_for
from persistence.history import (
    BOOKMARK_ADDED,
    JOIN,
    LEAVE,
    SESSION_STARTED,
    STATE,
    HistoryStore,
    NewPresence,
    history_store_for,
)
from persistence.history_memory import MemoryHistoryStore
from persistence.sql import history_tables
from persistence.sql.tables import metadata
from tests.persistence.conftest import StoreEnv, store_env

T0 = 1_700_000_000.25


Env = StoreEnv[HistoryStore]


@pytest.fixture
async def env(storage_url: str) -> AsyncIterator[Env]:
    async with store_env(storage_url, history_store_for, T0) as opened:
        yield opened


def sample(kind: str, at: float, client: int | None = None, data: str = "{}") -> NewPresence:
    return NewPresence(at, "ann", kind, 7, client, 3, data)


async def test_presence_is_appended_in_order_and_read_by_time_and_kind(env: Env) -> None:
    first = await env.store.append_presence(
        env.document_id,
        [sample(JOIN, T0, data='{"name": "Ann"}'), sample(STATE, T0 + 1, 42, '{"cursor": {"anchor": 1}}')],
    )
    assert first == 2
    assert (
        await env.store.append_presence(env.document_id, [sample(LEAVE, T0 + 5, data='{"clients": [42]}')])
        == 3
    )
    rows = await env.store.read_presence(env.document_id)
    assert [(r.seq, r.kind, r.client_id, r.connection, r.log_seq) for r in rows] == [
        (1, JOIN, None, 7, 3),
        (2, STATE, 42, 7, 3),
        (3, LEAVE, None, 7, 3),
    ]
    assert json.loads(rows[1].data) == {"cursor": {"anchor": 1}}
    assert [r.seq for r in await env.store.read_presence(env.document_id, since=T0 + 0.5, until=T0 + 2)] == [
        2
    ]
    assert [r.seq for r in await env.store.read_presence(env.document_id, kinds=(JOIN, LEAVE))] == [1, 3]
    assert [r.seq for r in await env.store.read_presence(env.document_id, after_seq=1, limit=1)] == [2]
    assert await env.store.append_presence(env.document_id, []) == 3


async def test_presence_refuses_unknown_kinds_and_unstorable_text(env: Env) -> None:
    with pytest.raises(ValueError):
        await env.store.append_presence(env.document_id, [sample("dance", T0)])
    with pytest.raises(ValueError):
        await env.store.append_presence(env.document_id, [sample(STATE, T0, 1, "nul \x00")])
    assert await env.store.read_presence(env.document_id) == []


async def test_sql_presence_needs_a_document(env: Env) -> None:
    if isinstance(env.store, MemoryHistoryStore):
        pytest.skip("the memory store does not know the documents")
    with pytest.raises(DocumentNotFound):
        await env.store.append_presence("0" * 32, [sample(JOIN, T0)])


async def test_events_share_the_document_event_log_with_comments(env: Env) -> None:
    seq = await env.store.append_event(
        env.document_id, NewEvent(SESSION_STARTED, "olga", T0, '{"session": "s"}')
    )
    await env.store.append_event(env.document_id, NewEvent(BOOKMARK_ADDED, "olga", T0 + 1, '{"label": "x"}'))
    rows = await env.store.read_events(env.document_id)
    assert [(r.kind, r.author) for r in rows] == [(SESSION_STARTED, "olga"), (BOOKMARK_ADDED, "olga")]
    assert rows[0].seq == seq
    assert [r.kind for r in await env.store.read_events(env.document_id, prefixes=("bookmark.",))] == [
        BOOKMARK_ADDED
    ]
    if not isinstance(env.store, MemoryHistoryStore):  # SQL: one table, one sequence, read by both stores
        comments = await comment_store_for(env.storage).read_events(env.document_id)
        assert [r.seq for r in comments] == [1, 2]


def test_the_presence_table_is_declared() -> None:
    assert set(metadata.tables) >= history_tables.HISTORY_TABLES


async def test_presence_of_several_documents_is_appended_in_one_batch(env: Env) -> None:
    other = (await env.storage.create_document("other", T0)).id
    await env.store.append_presence(env.document_id, [sample(JOIN, T0)])
    stored = await env.store.append_presence_batch(
        {env.document_id: [sample(LEAVE, T0 + 1)], other: [sample(JOIN, T0), sample(LEAVE, T0 + 2)]}
    )
    assert stored == {env.document_id: 2, other: 2}
    assert [r.kind for r in await env.store.read_presence(env.document_id)] == [JOIN, LEAVE]
    assert [(r.seq, r.kind) for r in await env.store.read_presence(other)] == [(1, JOIN), (2, LEAVE)]
    assert await env.store.append_presence_batch({}) == {}


async def test_a_presence_batch_with_an_unstorable_row_stores_nothing(env: Env) -> None:
    other = (await env.storage.create_document("other", T0)).id
    with pytest.raises(ValueError):
        await env.store.append_presence_batch(
            {env.document_id: [sample(JOIN, T0)], other: [sample(STATE, T0, 1, "nul \x00")]}
        )
    assert await env.store.read_presence(env.document_id) == []


async def test_sql_presence_batch_skips_unknown_documents(env: Env) -> None:
    if isinstance(env.store, MemoryHistoryStore):
        pytest.skip("the memory store does not know the documents")
    stored = await env.store.append_presence_batch(
        {"0" * 32: [sample(JOIN, T0)], env.document_id: [sample(JOIN, T0)]}
    )
    assert stored == {env.document_id: 1}
