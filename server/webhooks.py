"""Webhook dispatcher (an I/O edge): events -> persisted deliveries -> a bounded pool of signed HTTP senders.

Flow, and why nothing here can slow a room:
- The hooks (`on_event` from the EventBus, `on_commit` from every committer) are synchronous and
  O(1): an event of a document without webhooks costs a dict lookup; otherwise it is appended to
  the intake. Commits are folded into one open window per document that closes `webhook_debounce`
  seconds after it opened: at most one `document.changed` per document per window.
- The intake task writes a delivery row per (event, webhook) before anything is sent.
- The scheduler claims due rows (`WebhookStore.claim_due`, a lease) only for idle senders, so the
  in-memory queue never holds more than `webhook_concurrency` deliveries: a backlog waits in the
  database, never in memory, and is never dropped.
- `webhook_concurrency` sender tasks POST with connect and total timeouts, then record the outcome:
  delivered (2xx), retry after exponential backoff with jitter, or failed after the last attempt.
- A restart (or another process sharing the database) resumes pending rows once their lease ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
import weakref
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from persistence.base import NewUpdate, Storage, StorageError
from persistence.webhooks import DELIVERED, FAILED, PENDING, Attempt, Delivery, Webhook, WebhookStore
from persistence.webhooks import webhook_store_for as _store_for
from server.events import DocumentEvent
from server.hub import Hub
from server.settings import Settings
from server.webhook_http import SendFailed, Timeouts, post
from server.webhook_rules import (
    DELIVERY_HEADER,
    DOCUMENT_CHANGED,
    EVENT_HEADER,
    SIGNATURE_HEADER,
    TargetRefused,
    backoff,
    check_target,
    is_forwarded,
    payload,
    signature,
)

log = logging.getLogger("cocreate.webhooks")

INTAKE_BATCH = 200  # events turned into delivery rows per transaction
POLL_SECONDS = 5.0  # the scheduler looks at the database at least this often (leases, other processes)
REFRESH_SECONDS = 10.0  # webhooks created by another process are seen within this
RETRY_STORAGE_SECONDS = 1.0
CONTENDED_SECONDS = 0.5  # due rows another process is claiming right now
LEASE_MARGIN_SECONDS = 5.0


@dataclass(slots=True)
class _Occurrence:
    """An event waiting to become delivery rows."""

    kind: str
    document: str
    document_id: str | None  # None: resolve the name (EventBus events carry names only)
    data: dict[str, Any]
    at: float


@dataclass(slots=True)
class _Window:
    """The commits of one document since its debounce window opened."""

    document: str
    first_seq: int
    last_seq: int
    opened_at: float
    updates: int = 0
    authors: set[str] = field(default_factory=set)
    timer: asyncio.TimerHandle | None = None


class WebhookDispatcher:
    def __init__(self, store: WebhookStore, storage: Storage, settings: Settings, clock: Callable[[], float]):
        self.store = store
        self.storage = storage
        self.settings = settings
        self.clock = clock
        self.concurrency = max(1, settings.webhook_concurrency)
        self.timeouts = Timeouts(settings.webhook_connect_timeout, settings.webhook_timeout)
        self._hooks: dict[str, list[Webhook]] = {}  # document id -> its active webhooks
        self._by_id: dict[str, Webhook] = {}
        self._intake: deque[_Occurrence] = deque()
        self._windows: dict[str, _Window] = {}
        self._wake_intake = asyncio.Event()
        self._wake_scheduler = asyncio.Event()
        self._idle = self.concurrency
        self._queue: asyncio.Queue[Delivery] = asyncio.Queue(self.concurrency)
        self._tasks: list[asyncio.Task[None]] = []

    # -- lifecycle -----------------------------------------------------------------------------------
    async def start(self) -> None:
        try:
            self.index(await self.store.active_webhooks())
        except StorageError as exc:  # the refresher tries again
            log.error("could not load webhooks: %s", exc)
        self._tasks = [
            asyncio.create_task(self._intake_loop(), name="webhooks:intake"),
            asyncio.create_task(self._schedule_loop(), name="webhooks:scheduler"),
            asyncio.create_task(self._refresh_loop(), name="webhooks:refresh"),
            *(
                asyncio.create_task(self._send_loop(), name=f"webhooks:sender{i}")
                for i in range(self.concurrency)
            ),
        ]

    async def close(self, timeout: float = 5.0) -> None:
        """Close open debounce windows, persist the intake (bounded by `timeout`), stop the tasks.
        Deliveries in flight are retried after their lease by the next process."""
        for document_id in list(self._windows):
            self._close_window(document_id)
        with contextlib.suppress(TimeoutError, StorageError):
            async with asyncio.timeout(timeout):
                while self._intake:
                    await self._persist_some()
        if self._intake:
            log.error("shutdown: %d webhook events could not be recorded", len(self._intake))
        for task in self._tasks:
            task.cancel()
        if self._tasks:
            _, stuck = await asyncio.wait(self._tasks, timeout=timeout)
            if stuck:  # never block the shutdown on ourselves
                log.error("shutdown: %d webhook tasks did not stop", len(stuck))
        self._tasks = []

    # -- the index of active webhooks ----------------------------------------------------------------
    def index(self, hooks: Sequence[Webhook]) -> None:
        by_document: dict[str, list[Webhook]] = {}
        for hook in hooks:
            if hook.active:
                by_document.setdefault(hook.document_id, []).append(hook)
        self._hooks = by_document
        self._by_id = {hook.id: hook for hook in hooks if hook.active}

    def added(self, hook: Webhook) -> None:
        self.index([*self._by_id.values(), hook])

    def removed(self, webhook_id: str) -> None:
        self.index([h for h in self._by_id.values() if h.id != webhook_id])

    # -- hooks: synchronous, O(1), never raise ---------------------------------------------------------
    def on_event(self, event: DocumentEvent) -> None:
        """EventBus observer: comment and session events of documents that may have webhooks."""
        if self._hooks and is_forwarded(event.kind):
            self._intake.append(_Occurrence(event.kind, event.document, None, dict(event.data), self.clock()))
            self._wake_intake.set()

    def on_commit(self, name: str, document_id: str, last_seq: int, batch: Sequence[NewUpdate]) -> None:
        """Committer hook: fold the batch into the document's open window (opening one if needed)."""
        hooks = self._hooks.get(document_id)
        if not hooks or not any(hook.wants(DOCUMENT_CHANGED) for hook in hooks):
            return
        window = self._windows.get(document_id)
        if window is None:
            window = _Window(name, last_seq - len(batch) + 1, last_seq, self.clock())
            loop = asyncio.get_running_loop()
            window.timer = loop.call_later(self.settings.webhook_debounce, self._close_window, document_id)
            self._windows[document_id] = window
        window.document = name
        window.last_seq = last_seq
        window.updates += len(batch)
        window.authors.update(update.author for update in batch)

    def _close_window(self, document_id: str) -> None:
        window = self._windows.pop(document_id, None)
        if window is None:
            return
        if window.timer is not None:
            window.timer.cancel()
        data = {
            "first_seq": window.first_seq,
            "last_seq": window.last_seq,
            "updates": window.updates,
            "authors": sorted(window.authors),
            "since": round(window.opened_at, 3),
        }
        self._intake.append(_Occurrence(DOCUMENT_CHANGED, window.document, document_id, data, self.clock()))
        self._wake_intake.set()

    # -- intake: events -> delivery rows ---------------------------------------------------------------
    async def _intake_loop(self) -> None:
        while True:
            await self._wake_intake.wait()
            self._wake_intake.clear()
            while self._intake:
                try:
                    await self._persist_some()
                except StorageError as exc:
                    log.error("could not record webhook deliveries (will retry): %s", exc)
                    await asyncio.sleep(RETRY_STORAGE_SECONDS)
                except Exception:  # a bug, not an outage: retrying cannot help (`_persist_some` dropped it)
                    log.exception("dropped webhook events that could not be turned into deliveries")

    async def _persist_some(self) -> None:
        batch = [self._intake.popleft() for _ in range(min(INTAKE_BATCH, len(self._intake)))]
        try:
            rows = await self._deliveries_for(batch)
            await self.store.add_deliveries(rows)
        except BaseException as exc:
            if isinstance(exc, StorageError) or not isinstance(exc, Exception):  # outage, cancellation
                self._intake.extendleft(reversed(batch))  # kept, in order, for the next try
            raise
        if rows:
            self._wake_scheduler.set()

    async def _deliveries_for(self, batch: list[_Occurrence]) -> list[Delivery]:
        ids: dict[str, str | None] = {}
        rows = []
        for occurrence in batch:
            document_id = occurrence.document_id
            if document_id is None:
                if occurrence.document not in ids:
                    record = await self.storage.get_document(occurrence.document)
                    ids[occurrence.document] = None if record is None else record.id
                document_id = ids[occurrence.document]
            for hook in self._hooks.get(document_id or "", ()):
                if hook.wants(occurrence.kind):
                    delivery_id = uuid.uuid4().hex
                    body = payload(
                        delivery_id,
                        hook.id,
                        occurrence.kind,
                        occurrence.document,
                        occurrence.at,
                        occurrence.data,
                    )
                    rows.append(
                        Delivery(delivery_id, hook.id, occurrence.kind, body, occurrence.at, occurrence.at)
                    )
        return rows

    # -- scheduler: due rows -> idle senders -------------------------------------------------------------
    async def _schedule_loop(self) -> None:
        while True:
            self._wake_scheduler.clear()
            delay = POLL_SECONDS
            try:
                if self._idle > 0:  # else a sender that finishes wakes us
                    due = await self.store.next_due_at()  # a read: no write lock while idle
                    if due is not None and due <= self.clock():
                        now = self.clock()
                        lease = now + self.settings.webhook_timeout + LEASE_MARGIN_SECONDS
                        claimed = await self.store.claim_due(now, self._idle, lease)
                        for delivery in claimed:
                            self._idle -= 1
                            self._queue.put_nowait(delivery)
                        if claimed:
                            continue  # more may be due
                        delay = CONTENDED_SECONDS  # another process holds them
                    elif due is not None:
                        delay = min(POLL_SECONDS, max(0.01, due - self.clock()))
            except StorageError as exc:
                log.error("could not read the webhook queue: %s", exc)
            # not `asyncio.wait_for`: on Python 3.11 it can swallow a cancellation that arrives as the
            # event is set (a sender cancelled at shutdown sets it), leaving this loop running forever
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(delay):
                    await self._wake_scheduler.wait()

    async def _refresh_loop(self) -> None:
        while True:
            await asyncio.sleep(REFRESH_SECONDS)
            try:
                self.index(await self.store.active_webhooks())
            except StorageError as exc:
                log.warning("could not refresh webhooks: %s", exc)

    # -- senders -------------------------------------------------------------------------------------
    async def _send_loop(self) -> None:
        while True:
            delivery = await self._queue.get()
            try:
                attempt = await self._attempt(delivery)
                await self.store.finish_attempt(delivery.id, attempt)
                outcome = (
                    attempt.status
                    if attempt.last_error is None
                    else f"{attempt.status}: {attempt.last_error}"
                )
                log.info("webhook delivery %s attempt %d: %s", delivery.id, delivery.attempts, outcome)
            except StorageError as exc:  # the lease ends and the delivery is tried again
                log.error("could not record webhook delivery %s: %s", delivery.id, exc)
            except Exception:  # keep the sender alive; the lease ends and the delivery is tried again
                log.exception("webhook delivery %s: unexpected error", delivery.id)
            finally:
                self._idle += 1
                self._wake_scheduler.set()

    async def _attempt(self, delivery: Delivery) -> Attempt:
        settings = self.settings
        hook = self._by_id.get(delivery.webhook_id) or await self.store.get_webhook(delivery.webhook_id)
        if hook is None or not hook.active:
            return Attempt(FAILED, None, "webhook deleted", None, self.clock())
        body = delivery.payload.encode()
        headers = [
            (SIGNATURE_HEADER, signature(hook.secret, body)),
            (EVENT_HEADER, delivery.event),
            (DELIVERY_HEADER, delivery.id),
        ]
        status: int | None = None
        error: str | None = None
        try:
            target = check_target(hook.url, settings.webhook_allow_private)
            status = await post(target, body, headers, self.timeouts, settings.webhook_allow_private)
        except (SendFailed, TargetRefused) as exc:
            error = str(exc)[:500]
        now = self.clock()
        if status is not None and 200 <= status < 300:
            return Attempt(DELIVERED, status, None, None, now)
        if status is not None:
            error = f"HTTP {status}" + (" (redirects are not followed)" if 300 <= status < 400 else "")
        if delivery.attempts >= settings.webhook_max_attempts:
            return Attempt(FAILED, status, error, None, now)
        wait = backoff(delivery.attempts, settings.webhook_backoff, settings.webhook_backoff_max)
        return Attempt(PENDING, status, error, now + wait, None)


_DISPATCHERS: weakref.WeakKeyDictionary[Hub, WebhookDispatcher] = weakref.WeakKeyDictionary()


def webhooks_for(hub: Hub) -> WebhookDispatcher:
    """The hub's dispatcher, created on first use and attached to its EventBus and room registry."""
    found = _DISPATCHERS.get(hub)
    if found is None:
        found = _DISPATCHERS[hub] = WebhookDispatcher(
            _store_for(hub.storage), hub.storage, hub.settings, hub.clock
        )
        hub.events.observer = found.on_event
        hub.registry.on_commit = found.on_commit
    return found


def describe(hook: Webhook, document: str) -> dict[str, Any]:
    """A webhook as the API shows it (never its secret)."""
    return {
        "id": hook.id,
        "document": document,
        "url": hook.url,
        "events": list(hook.events),
        "created_by": hook.created_by,
        "created_at": hook.created_at,
        "active": hook.active,
    }


def describe_delivery(delivery: Delivery) -> dict[str, Any]:
    return {
        "id": delivery.id,
        "webhook": delivery.webhook_id,
        "event": delivery.event,
        "status": delivery.status,
        "attempts": delivery.attempts,
        "last_status": delivery.last_status,
        "last_error": delivery.last_error,
        "next_attempt_at": delivery.next_attempt_at if delivery.status == PENDING else None,
        "created_at": delivery.created_at,
        "delivered_at": delivery.delivered_at,
        "payload": orjson.loads(delivery.payload),
    }
