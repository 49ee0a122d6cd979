"""Webhooks and their delivery log: records, the `WebhookStore` protocol, an in-memory backend, its factory.

A webhook belongs to one document (by id: a rename keeps it, a deleted document's hooks go quiet).
A delivery is written before it is sent; senders take due ones with `claim_due`, which pushes their
`next_attempt_at` forward by a lease, so two processes sharing a database never send one delivery
at the same time and a delivery claimed by a process that died is taken again once its lease ends.
"""

from __future__ import annotations

import weakref
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Protocol

PENDING, DELIVERED, FAILED = "pending", "delivered", "failed"
DELIVERY_STATUSES = (PENDING, DELIVERED, FAILED)
#: The event groups an owner may subscribe a webhook to (an event kind starts with its group).
EVENT_GROUPS = ("document.changed", "comment", "session")


@dataclass(frozen=True, slots=True)
class Webhook:
    id: str
    document_id: str
    url: str
    events: tuple[str, ...]  # groups of EVENT_GROUPS
    secret: str  # HMAC-SHA256 key of the signature header; shown once, at creation
    created_by: str
    created_at: float
    active: bool = True

    def wants(self, kind: str) -> bool:
        """True if an event of `kind` (e.g. "comment.added") belongs to a subscribed group."""
        return self.active and any(kind == group or kind.startswith(group + ".") for group in self.events)


@dataclass(frozen=True, slots=True)
class Delivery:
    """One event for one webhook. `payload` is the exact JSON body sent (and signed) on every attempt."""

    id: str
    webhook_id: str
    event: str
    payload: str
    created_at: float
    next_attempt_at: float | None  # None once delivered or failed
    attempts: int = 0
    status: str = PENDING
    last_status: int | None = None  # HTTP status of the last attempt (None: no response)
    last_error: str | None = None
    delivered_at: float | None = None  # when it was delivered (or finally failed)


@dataclass(frozen=True, slots=True)
class Attempt:
    """The outcome of one send: the delivery's new state."""

    status: str  # PENDING (retry at `next_attempt_at`), DELIVERED or FAILED
    last_status: int | None
    last_error: str | None
    next_attempt_at: float | None
    finished_at: float | None


class WebhookStore(Protocol):
    async def create_webhook(self, webhook: Webhook) -> None:
        """Store a new webhook; `DocumentNotFound` (SQL) when its document id is unknown."""

    async def get_webhook(self, webhook_id: str) -> Webhook | None: ...

    async def list_webhooks(self, document_id: str) -> list[Webhook]:
        """The active webhooks of a document, oldest first."""

    async def active_webhooks(self) -> list[Webhook]:
        """Every active webhook of every document (the dispatcher's index)."""

    async def deactivate_webhook(self, webhook_id: str, now: float) -> bool:
        """Switch it off and fail its pending deliveries; False if unknown or already off."""

    async def add_deliveries(self, deliveries: Sequence[Delivery]) -> None:
        """Append pending deliveries, in one transaction."""

    async def claim_due(self, now: float, limit: int, lease_until: float) -> list[Delivery]:
        """Up to `limit` pending deliveries due at `now` (earliest first), atomically moved to
        `next_attempt_at = lease_until` and `attempts + 1`; returned in their claimed state."""

    async def next_due_at(self) -> float | None:
        """The earliest `next_attempt_at` of any pending delivery."""

    async def finish_attempt(self, delivery_id: str, attempt: Attempt) -> None:
        """Record the outcome of the attempt `claim_due` counted."""

    async def get_delivery(self, delivery_id: str) -> Delivery | None: ...

    async def list_deliveries(
        self, webhook_id: str, limit: int, before: tuple[float, str] | None = None
    ) -> list[Delivery]:
        """A page of the log, newest first: (created_at, id) descending, strictly below `before`."""


class MemoryWebhookStore:
    """Dictionaries; same contract as the SQL store (without checking that documents exist)."""

    def __init__(self) -> None:
        self._hooks: dict[str, Webhook] = {}
        self._deliveries: dict[str, Delivery] = {}

    async def create_webhook(self, webhook: Webhook) -> None:
        check_webhook(webhook)
        if webhook.id in self._hooks:
            raise ValueError(f"webhook {webhook.id!r} exists")
        self._hooks[webhook.id] = webhook

    async def get_webhook(self, webhook_id: str) -> Webhook | None:
        return self._hooks.get(webhook_id)

    async def list_webhooks(self, document_id: str) -> list[Webhook]:
        found = [h for h in self._hooks.values() if h.document_id == document_id and h.active]
        return sorted(found, key=lambda h: (h.created_at, h.id))

    async def active_webhooks(self) -> list[Webhook]:
        return sorted((h for h in self._hooks.values() if h.active), key=lambda h: (h.created_at, h.id))

    async def deactivate_webhook(self, webhook_id: str, now: float) -> bool:
        hook = self._hooks.get(webhook_id)
        if hook is None or not hook.active:
            return False
        self._hooks[webhook_id] = replace(hook, active=False)
        for delivery in list(self._deliveries.values()):
            if delivery.webhook_id == webhook_id and delivery.status == PENDING:
                self._deliveries[delivery.id] = replace(delivery, **cancelled(now))  # type: ignore[arg-type]
        return True

    async def add_deliveries(self, deliveries: Sequence[Delivery]) -> None:
        for delivery in deliveries:
            check_delivery(delivery)
            if delivery.id in self._deliveries:
                raise ValueError(f"delivery {delivery.id!r} exists")
        for delivery in deliveries:
            self._deliveries[delivery.id] = delivery

    async def claim_due(self, now: float, limit: int, lease_until: float) -> list[Delivery]:
        due = sorted(
            (
                d
                for d in self._deliveries.values()
                if d.status == PENDING and d.next_attempt_at is not None and d.next_attempt_at <= now
            ),
            key=lambda d: (d.next_attempt_at, d.created_at, d.id),
        )[: max(0, limit)]
        claimed = []
        for delivery in due:
            delivery = replace(delivery, next_attempt_at=lease_until, attempts=delivery.attempts + 1)
            self._deliveries[delivery.id] = delivery
            claimed.append(delivery)
        return claimed

    async def next_due_at(self) -> float | None:
        times = [
            d.next_attempt_at
            for d in self._deliveries.values()
            if d.status == PENDING and d.next_attempt_at is not None
        ]
        return min(times, default=None)

    async def finish_attempt(self, delivery_id: str, attempt: Attempt) -> None:
        check_attempt(attempt)
        delivery = self._deliveries.get(delivery_id)
        if delivery is None or delivery.status != PENDING:
            return
        self._deliveries[delivery_id] = replace(
            delivery,
            status=attempt.status,
            last_status=attempt.last_status,
            last_error=attempt.last_error,
            next_attempt_at=attempt.next_attempt_at,
            delivered_at=attempt.finished_at,
        )

    async def get_delivery(self, delivery_id: str) -> Delivery | None:
        return self._deliveries.get(delivery_id)

    async def list_deliveries(
        self, webhook_id: str, limit: int, before: tuple[float, str] | None = None
    ) -> list[Delivery]:
        found = sorted(
            (
                d
                for d in self._deliveries.values()
                if d.webhook_id == webhook_id and (before is None or (d.created_at, d.id) < before)
            ),
            key=lambda d: (d.created_at, d.id),
            reverse=True,
        )
        return found[: max(0, limit)]


def cancelled(now: float) -> dict[str, object]:
    """The fields of a pending delivery whose webhook was deleted."""
    return {
        "status": FAILED,
        "last_error": "webhook deleted",
        "next_attempt_at": None,
        "delivered_at": now,
    }


def _check_text(value: str, what: str) -> None:
    if "\x00" in value:
        raise ValueError(f"{what} contains a NUL character")
    value.encode("utf-8")  # lone surrogates raise UnicodeEncodeError (a ValueError)


def check_webhook(webhook: Webhook) -> None:
    for group in webhook.events:
        if group not in EVENT_GROUPS:
            raise ValueError(f"unknown event group {group!r}")
    for value, what in ((webhook.url, "url"), (webhook.secret, "secret"), (webhook.created_by, "author")):
        _check_text(value, what)


def check_delivery(delivery: Delivery) -> None:
    if delivery.status not in DELIVERY_STATUSES:
        raise ValueError(f"unknown delivery status {delivery.status!r}")
    _check_text(delivery.event, "event")
    _check_text(delivery.payload, "payload")


def check_attempt(attempt: Attempt) -> None:
    if attempt.status not in DELIVERY_STATUSES:
        raise ValueError(f"unknown delivery status {attempt.status!r}")
    if attempt.last_error is not None:
        _check_text(attempt.last_error, "error")


_MEMORY_STORES: weakref.WeakKeyDictionary[object, WebhookStore] = weakref.WeakKeyDictionary()


def webhook_store_for(storage: object) -> WebhookStore:
    """The webhook store living next to `storage`: in its SQL database, else in memory (one per
    storage object)."""
    import sys

    sql = sys.modules.get("persistence.sql.storage")  # loaded iff a SqlStorage can exist
    if sql is not None and isinstance(storage, sql.SqlStorage):
        from persistence.sql.webhooks import SqlWebhookStore

        return SqlWebhookStore(storage.database)
    store = _MEMORY_STORES.get(storage)
    if store is None:
        store = _MEMORY_STORES[storage] = MemoryWebhookStore()
    return store
