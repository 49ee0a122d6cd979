"""Per-document event fan-out for non-CRDT changes (comments, sessions, ...): bounded subscriber queues."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class DocumentEvent:
    document: str
    kind: str  # e.g. "comment.created"
    data: dict[str, Any]
    id: int = 0


@dataclass(eq=False)
class Subscription:
    """One listener. If it falls `limit` events behind it is ended with a `lagged` event, never
    silently skipped: the listener reconnects and re-reads current state."""

    document: str
    limit: int
    queue: asyncio.Queue[DocumentEvent | None] = field(default_factory=asyncio.Queue)
    lagged: bool = False

    def offer(self, event: DocumentEvent) -> None:
        if self.lagged:
            return
        if self.queue.qsize() >= self.limit:
            self.lagged = True
            self.queue.put_nowait(DocumentEvent(self.document, "lagged", {"reason": "too slow"}, event.id))
            self.queue.put_nowait(None)
            return
        self.queue.put_nowait(event)

    async def __aiter__(self) -> AsyncIterator[DocumentEvent]:
        while True:
            event = await self.queue.get()
            if event is None:
                return
            yield event


class EventBus:
    """Publish to a document's subscribers; subscribe with `async with bus.subscribe(doc) as events`."""

    def __init__(self, per_subscriber_limit: int = 1000) -> None:
        self.limit = per_subscriber_limit
        self._subscribers: dict[str, set[Subscription]] = defaultdict(set)
        self._listeners: dict[str, list[Callable[[DocumentEvent], None]]] = defaultdict(list)
        self._next_id = 0
        self.observer: Callable[[DocumentEvent], None] | None = None  # every document's events (webhooks)
        self.relay: Callable[[str, str, dict[str, Any]], None] | None = None  # cluster: to other nodes

    def listen(self, document: str, callback: Callable[[DocumentEvent], None]) -> Callable[[], None]:
        """Call `callback` synchronously for each event of `document`; returns the unlisten function."""
        self._listeners[document].append(callback)

        def unlisten() -> None:
            callbacks = self._listeners.get(document)
            if callbacks is not None and callback in callbacks:
                callbacks.remove(callback)
                if not callbacks:
                    del self._listeners[document]

        return unlisten

    def publish(
        self, document: str, kind: str, data: dict[str, Any], *, relayed: bool = False
    ) -> DocumentEvent:
        """Deliver to this process's listeners; and to the other nodes unless it came `relayed` from one."""
        if self.relay is not None and not relayed:
            self.relay(document, kind, data)
        self._next_id += 1
        event = DocumentEvent(document, kind, data, self._next_id)
        for subscription in list(self._subscribers.get(document, ())):
            subscription.offer(event)
        for callback in list(self._listeners.get(document, ())):
            callback(event)
        if self.observer is not None and not relayed:  # webhooks fire once: on the node it happened on
            self.observer(event)
        return event

    def subscribers(self, document: str) -> int:
        return len(self._subscribers.get(document, ()))

    def subscribe(self, document: str) -> _Subscribed:
        return _Subscribed(self, Subscription(document, self.limit))

    def _add(self, subscription: Subscription) -> None:
        self._subscribers[subscription.document].add(subscription)

    def _remove(self, subscription: Subscription) -> None:
        listeners = self._subscribers.get(subscription.document)
        if listeners is not None:
            listeners.discard(subscription)
            if not listeners:
                del self._subscribers[subscription.document]


class _Subscribed:
    def __init__(self, bus: EventBus, subscription: Subscription) -> None:
        self.bus = bus
        self.subscription = subscription

    async def __aenter__(self) -> Subscription:
        self.bus._add(self.subscription)
        return self.subscription

    async def __aexit__(self, *exc: object) -> None:
        self.bus._remove(self.subscription)
