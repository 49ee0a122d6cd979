"""The `WebhookStore` contract on every backend: webhooks, the delivery log, claiming and leases."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest

from persistence.base import DocumentNotFound
from persistence.sql import webhook_tables
from persistence.sql.tables import metadata
from persistence.webhooks import (
    DELIVERED,
    FAILED,
    PENDING,
    Attempt,
    Delivery,
    MemoryWebhookStore,
    Webhook,
    WebhookStore,
    webhook_store_for,
)
from tests.persistence.conftest import StoreEnv, make_storage, store_env

T0 = 1_700_000_000.5


Env = StoreEnv[WebhookStore]


@pytest.fixture
async def env(storage_url: str) -> AsyncIterator[Env]:
    async with store_env(storage_url, webhook_store_for, T0) as opened:
        yield opened


def hook(
    document_id: str, at: float = T0, events: tuple[str, ...] = ("comment", "document.changed")
) -> Webhook:
    return Webhook(uuid.uuid4().hex, document_id, "https://example.com/hook", events, "s3cret", "olga", at)


def delivery(webhook_id: str, at: float, due: float | None = None) -> Delivery:
    return Delivery(uuid.uuid4().hex, webhook_id, "comment.added", '{"x": 1}', at, at if due is None else due)


async def test_webhooks_are_created_listed_and_deactivated(env: Env) -> None:
    first, second = hook(env.document_id), hook(env.document_id, T0 + 1, ("session",))
    await env.store.create_webhook(second)
    await env.store.create_webhook(first)
    assert await env.store.list_webhooks(env.document_id) == [first, second]
    assert await env.store.active_webhooks() == [first, second]
    assert await env.store.get_webhook(second.id) == second
    assert await env.store.get_webhook("0" * 32) is None
    assert first.wants("comment.added") and first.wants("document.changed")
    assert not second.wants("comment.added") and second.wants("session.started")
    assert await env.store.deactivate_webhook(first.id, T0 + 2)
    assert not await env.store.deactivate_webhook(first.id, T0 + 3)
    assert not await env.store.deactivate_webhook("0" * 32, T0 + 3)
    assert await env.store.list_webhooks(env.document_id) == [second]
    assert await env.store.active_webhooks() == [second]
    stored = await env.store.get_webhook(first.id)
    assert stored is not None and not stored.active and not stored.wants("comment.added")


async def test_webhooks_refuse_unknown_groups_and_unstorable_text(env: Env) -> None:
    with pytest.raises(ValueError):
        await env.store.create_webhook(hook(env.document_id, events=("everything",)))
    with pytest.raises(ValueError):
        await env.store.create_webhook(
            hook(env.document_id, events=("comment",)).__class__(
                "a" * 32, env.document_id, "https://x/\x00", ("comment",), "s", "olga", T0
            )
        )
    assert await env.store.list_webhooks(env.document_id) == []


async def test_sql_webhooks_need_a_document(env: Env) -> None:
    if isinstance(env.store, MemoryWebhookStore):
        pytest.skip("the memory store does not know the documents")
    with pytest.raises(DocumentNotFound):
        await env.store.create_webhook(hook("0" * 32))


async def test_due_deliveries_are_claimed_once_until_their_lease_ends(env: Env) -> None:
    webhook = hook(env.document_id)
    await env.store.create_webhook(webhook)
    early, late, future = (
        delivery(webhook.id, T0),
        delivery(webhook.id, T0 + 1),
        delivery(webhook.id, T0, T0 + 60),
    )
    await env.store.add_deliveries([late, early, future])
    assert await env.store.next_due_at() == T0
    claimed = await env.store.claim_due(T0 + 5, 10, lease_until=T0 + 35)
    assert [d.id for d in claimed] == [early.id, late.id]
    assert all(d.attempts == 1 and d.next_attempt_at == T0 + 35 and d.status == PENDING for d in claimed)
    assert await env.store.claim_due(T0 + 5, 10, lease_until=T0 + 35) == []  # leased
    assert await env.store.next_due_at() == T0 + 35
    again = await env.store.claim_due(T0 + 36, 1, lease_until=T0 + 70)  # a lease ran out: taken again
    assert [(d.id, d.attempts) for d in again] == [(early.id, 2)]
    assert await env.store.claim_due(T0 + 36, 0, lease_until=T0 + 70) == []


async def test_attempts_retry_deliver_or_fail(env: Env) -> None:
    webhook = hook(env.document_id)
    await env.store.create_webhook(webhook)
    ok, bad = delivery(webhook.id, T0), delivery(webhook.id, T0 + 0.5)
    await env.store.add_deliveries([ok, bad])
    await env.store.claim_due(T0, 10, T0 + 30)
    await env.store.finish_attempt(ok.id, Attempt(PENDING, 500, "HTTP 500", T0 + 2, None))
    await env.store.finish_attempt(bad.id, Attempt(FAILED, None, "connection refused", None, T0 + 1))
    retried = await env.store.get_delivery(ok.id)
    assert retried is not None
    assert (retried.status, retried.attempts, retried.last_status, retried.next_attempt_at) == (
        PENDING, 1, 500, T0 + 2,
    )  # fmt: skip
    await env.store.claim_due(T0 + 2, 10, T0 + 40)
    await env.store.finish_attempt(ok.id, Attempt(DELIVERED, 200, None, None, T0 + 3))
    done = await env.store.get_delivery(ok.id)
    assert done is not None and (done.status, done.attempts, done.delivered_at) == (DELIVERED, 2, T0 + 3)
    failed = await env.store.get_delivery(bad.id)
    assert failed is not None and (failed.status, failed.last_error) == (FAILED, "connection refused")
    await env.store.finish_attempt(bad.id, Attempt(DELIVERED, 200, None, None, T0 + 9))  # final stays final
    assert (await env.store.get_delivery(bad.id)) == failed
    assert await env.store.next_due_at() is None
    assert await env.store.get_delivery("0" * 32) is None


async def test_the_delivery_log_is_paged_newest_first(env: Env) -> None:
    webhook, other = hook(env.document_id), hook(env.document_id)
    await env.store.create_webhook(webhook)
    await env.store.create_webhook(other)
    made = [delivery(webhook.id, T0 + i // 2) for i in range(7)]  # pairs share a created_at
    await env.store.add_deliveries(made)
    await env.store.add_deliveries([delivery(other.id, T0)])
    expected = sorted(made, key=lambda d: (d.created_at, d.id), reverse=True)
    pages, before = [], None
    while True:
        page = await env.store.list_deliveries(webhook.id, 3, before)
        if not page:
            break
        pages.append(page)
        before = (page[-1].created_at, page[-1].id)
    assert [len(p) for p in pages] == [3, 3, 1]
    assert [d for p in pages for d in p] == expected


async def test_deleting_a_webhook_fails_its_pending_deliveries(env: Env) -> None:
    webhook = hook(env.document_id)
    await env.store.create_webhook(webhook)
    waiting = delivery(webhook.id, T0)
    await env.store.add_deliveries([waiting])
    assert await env.store.deactivate_webhook(webhook.id, T0 + 1)
    gone = await env.store.get_delivery(waiting.id)
    assert gone is not None and (gone.status, gone.last_error, gone.next_attempt_at) == (
        FAILED, "webhook deleted", None,
    )  # fmt: skip
    assert await env.store.claim_due(T0 + 10, 10, T0 + 40) == []


async def test_deliveries_refuse_bad_status_and_duplicates(env: Env) -> None:
    webhook = hook(env.document_id)
    await env.store.create_webhook(webhook)
    with pytest.raises(ValueError):
        await env.store.add_deliveries(
            [Delivery("b" * 32, webhook.id, "comment.added", "{}", T0, T0, status="lost")]
        )
    with pytest.raises(ValueError):
        await env.store.finish_attempt("b" * 32, Attempt("lost", None, None, None, None))
    await env.store.add_deliveries([])


def test_the_webhook_tables_are_declared() -> None:
    assert set(metadata.tables) >= webhook_tables.WEBHOOK_TABLES


async def test_concurrent_claims_from_two_connections_never_share_a_delivery(
    env: Env, storage_url: str
) -> None:
    webhook = hook(env.document_id)
    await env.store.create_webhook(webhook)
    made = [delivery(webhook.id, T0 + i / 100) for i in range(40)]
    await env.store.add_deliveries(made)
    other_storage = None
    other = env.store
    if storage_url != "memory://":  # a second process would have its own engine and connections
        other_storage = make_storage(storage_url)
        await other_storage.open()
        other = webhook_store_for(other_storage)
    try:
        rounds = await asyncio.gather(
            *(store.claim_due(T0 + 10, 7, T0 + 60) for store in [env.store, other] * 4)
        )
    finally:
        if other_storage is not None:
            await other_storage.close()
    claimed = [d.id for batch in rounds for d in batch]
    assert len(claimed) == len(set(claimed)) and claimed  # disjoint
    assert all(d.attempts == 1 for batch in rounds for d in batch)
    rest = await env.store.claim_due(T0 + 10, 100, T0 + 60)
    assert sorted(claimed + [d.id for d in rest]) == sorted(d.id for d in made)  # none lost, none twice
