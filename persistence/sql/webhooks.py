"""`SqlWebhookStore`: webhooks and their delivery log (revision 0005) on SQLite or PostgreSQL.

`claim_due` selects due rows `FOR UPDATE SKIP LOCKED` on PostgreSQL (two processes claim disjoint
rows); SQLite write transactions are serialised (BEGIN IMMEDIATE), so select-then-update is atomic.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import and_, insert, or_, select, update

from persistence.base import DocumentNotFound
from persistence.sql.engine import Database
from persistence.sql.errors import translated
from persistence.sql.tables import documents
from persistence.sql.webhook_tables import deliveries, webhooks
from persistence.webhooks import (
    PENDING,
    Attempt,
    Delivery,
    Webhook,
    cancelled,
    check_attempt,
    check_delivery,
    check_webhook,
)

_DELIVERY_COLUMNS = (
    deliveries.c.id,
    deliveries.c.webhook_id,
    deliveries.c.event,
    deliveries.c.payload,
    deliveries.c.created_at,
    deliveries.c.next_attempt_at,
    deliveries.c.attempts,
    deliveries.c.status,
    deliveries.c.last_status,
    deliveries.c.last_error,
    deliveries.c.delivered_at,
)


class SqlWebhookStore:
    """The `WebhookStore` on the database of an opened `SqlStorage` (`SqlStorage.database`)."""

    def __init__(self, database: Database) -> None:
        self._db = database
        self.where = database.where

    async def _read(self, action: str, query: Any) -> list[Any]:
        with translated(action, self.where):
            async with self._db.read() as conn:
                return list((await conn.execute(query)).all())

    async def create_webhook(self, webhook: Webhook) -> None:
        check_webhook(webhook)
        with translated("creating a webhook", self.where):
            async with self._db.write() as conn:
                found = await conn.execute(
                    select(documents.c.id).where(documents.c.id == webhook.document_id)
                )
                if found.first() is None:
                    raise DocumentNotFound(webhook.document_id)
                await conn.execute(
                    insert(webhooks).values(
                        id=webhook.id,
                        document_id=webhook.document_id,
                        url=webhook.url,
                        events=",".join(webhook.events),
                        secret=webhook.secret,
                        created_by=webhook.created_by,
                        created_at=webhook.created_at,
                        active=webhook.active,
                    )
                )

    async def get_webhook(self, webhook_id: str) -> Webhook | None:
        rows = await self._read("reading a webhook", select(webhooks).where(webhooks.c.id == webhook_id))
        return _webhook(rows[0]) if rows else None

    async def list_webhooks(self, document_id: str) -> list[Webhook]:
        query = (
            select(webhooks)
            .where(webhooks.c.document_id == document_id, webhooks.c.active.is_(True))
            .order_by(webhooks.c.created_at, webhooks.c.id)
        )
        return [_webhook(row) for row in await self._read("listing webhooks", query)]

    async def active_webhooks(self) -> list[Webhook]:
        query = (
            select(webhooks).where(webhooks.c.active.is_(True)).order_by(webhooks.c.created_at, webhooks.c.id)
        )
        return [_webhook(row) for row in await self._read("listing webhooks", query)]

    async def deactivate_webhook(self, webhook_id: str, now: float) -> bool:
        with translated("deleting a webhook", self.where):
            async with self._db.write() as conn:
                changed = await conn.execute(
                    update(webhooks)
                    .where(webhooks.c.id == webhook_id, webhooks.c.active.is_(True))
                    .values(active=False)
                )
                if changed.rowcount == 0:
                    return False
                await conn.execute(
                    update(deliveries)
                    .where(deliveries.c.webhook_id == webhook_id, deliveries.c.status == PENDING)
                    .values(**cancelled(now))
                )
                return True

    async def add_deliveries(self, items: Sequence[Delivery]) -> None:
        for delivery in items:
            check_delivery(delivery)
        if not items:
            return
        with translated("recording webhook deliveries", self.where):
            async with self._db.write() as conn:
                await conn.execute(insert(deliveries), [_delivery_values(d) for d in items])

    async def claim_due(self, now: float, limit: int, lease_until: float) -> list[Delivery]:
        if limit <= 0:
            return []
        c = deliveries.c
        due = (
            select(c.id)
            .where(c.status == PENDING, c.next_attempt_at <= now)
            .order_by(c.next_attempt_at, c.created_at, c.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        with translated("claiming webhook deliveries", self.where):
            async with self._db.write() as conn:
                ids = [row[0] for row in (await conn.execute(due)).all()]
                if not ids:
                    return []
                await conn.execute(
                    update(deliveries)
                    .where(c.id.in_(ids))
                    .values(next_attempt_at=lease_until, attempts=c.attempts + 1)
                )
                rows = (await conn.execute(select(*_DELIVERY_COLUMNS).where(c.id.in_(ids)))).all()
        claimed = [_delivery(row) for row in rows]
        return sorted(claimed, key=lambda d: ids.index(d.id))

    async def next_due_at(self) -> float | None:
        c = deliveries.c
        query = select(c.next_attempt_at).where(c.status == PENDING).order_by(c.next_attempt_at).limit(1)
        rows = await self._read("reading the webhook queue", query)
        return None if not rows or rows[0][0] is None else float(rows[0][0])

    async def finish_attempt(self, delivery_id: str, attempt: Attempt) -> None:
        check_attempt(attempt)
        with translated("recording a webhook attempt", self.where):
            async with self._db.write() as conn:
                await conn.execute(
                    update(deliveries)
                    .where(deliveries.c.id == delivery_id, deliveries.c.status == PENDING)
                    .values(
                        status=attempt.status,
                        last_status=attempt.last_status,
                        last_error=attempt.last_error,
                        next_attempt_at=attempt.next_attempt_at,
                        delivered_at=attempt.finished_at,
                    )
                )

    async def get_delivery(self, delivery_id: str) -> Delivery | None:
        query = select(*_DELIVERY_COLUMNS).where(deliveries.c.id == delivery_id)
        rows = await self._read("reading a webhook delivery", query)
        return _delivery(rows[0]) if rows else None

    async def list_deliveries(
        self, webhook_id: str, limit: int, before: tuple[float, str] | None = None
    ) -> list[Delivery]:
        c = deliveries.c
        query = select(*_DELIVERY_COLUMNS).where(c.webhook_id == webhook_id)
        if before is not None:
            at, last_id = before
            query = query.where(or_(c.created_at < at, and_(c.created_at == at, c.id < last_id)))
        query = query.order_by(c.created_at.desc(), c.id.desc()).limit(max(0, limit))
        return [_delivery(row) for row in await self._read("reading the webhook delivery log", query)]


def _webhook(row: Any) -> Webhook:
    events = tuple(group for group in row.events.split(",") if group)
    return Webhook(
        row.id,
        row.document_id,
        row.url,
        events,
        row.secret,
        row.created_by,
        float(row.created_at),
        bool(row.active),
    )


def _delivery(row: Any) -> Delivery:
    return Delivery(
        id=row.id,
        webhook_id=row.webhook_id,
        event=row.event,
        payload=row.payload,
        created_at=float(row.created_at),
        next_attempt_at=None if row.next_attempt_at is None else float(row.next_attempt_at),
        attempts=int(row.attempts),
        status=row.status,
        last_status=None if row.last_status is None else int(row.last_status),
        last_error=row.last_error,
        delivered_at=None if row.delivered_at is None else float(row.delivered_at),
    )


def _delivery_values(delivery: Delivery) -> dict[str, Any]:
    return {
        "id": delivery.id,
        "webhook_id": delivery.webhook_id,
        "event": delivery.event,
        "payload": delivery.payload,
        "attempts": delivery.attempts,
        "status": delivery.status,
        "last_status": delivery.last_status,
        "last_error": delivery.last_error,
        "next_attempt_at": delivery.next_attempt_at,
        "created_at": delivery.created_at,
        "delivered_at": delivery.delivered_at,
    }
