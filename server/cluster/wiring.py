"""Joins a server's registry and event bus to a cluster: relays events and evictions between nodes."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import Any

from server.cluster.node import Cluster
from server.cluster.records import AccessChanged, Broadcast, Eviction, RelayedEvent
from server.events import EventBus
from server.guard import AccessGuard
from server.rooms import RoomRegistry

log = logging.getLogger("cocreate.cluster")


def join_cluster(url: str, registry: RoomRegistry, events: EventBus, guard: AccessGuard) -> Cluster:
    """A (not yet started) cluster node wired to `registry`, `events` and the access `guard`."""
    cluster = Cluster(url)
    registry.cluster = cluster
    tasks: set[asyncio.Task[None]] = set()

    def spawn(work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(work)
        tasks.add(task)
        task.add_done_callback(tasks.discard)

    def relay_event(document: str, kind: str, data: dict[str, Any]) -> None:
        try:
            cluster.publish(None, RelayedEvent(document, kind, data, cluster.node_id))
        except TypeError as exc:  # data orjson cannot encode: the event stays on this node
            log.error("event %s of %r not relayed to other nodes: %s", kind, document, exc)

    def relay_eviction(name: str, code: int, reason: str) -> None:
        cluster.publish(None, Eviction(name, code, reason, cluster.node_id))

    def relay_access(document: str) -> None:
        cluster.publish(None, AccessChanged(document, cluster.node_id))

    def on_event(record: Broadcast) -> None:
        if isinstance(record, RelayedEvent):
            events.publish(record.document, record.kind, record.data, relayed=True)
        elif isinstance(record, Eviction):
            spawn(registry.evict(record.document, record.code, record.reason))
        else:
            spawn(guard.changed(record.document, relayed=True))

    events.relay = relay_event
    registry.on_evicted = relay_eviction
    guard.relay = relay_access
    cluster.on_event = on_event
    return cluster
