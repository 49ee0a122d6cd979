"""Joins a server's registry and event bus to a cluster: relays events and evictions between nodes."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from server.cluster.node import Cluster
from server.cluster.records import Eviction, RelayedEvent
from server.events import EventBus
from server.rooms import RoomRegistry

log = logging.getLogger("cocreate.cluster")


def join_cluster(url: str, registry: RoomRegistry, events: EventBus) -> Cluster:
    """A (not yet started) cluster node wired to `registry` and `events`."""
    cluster = Cluster(url)
    registry.cluster = cluster
    evictions: set[asyncio.Task[None]] = set()

    def relay_event(document: str, kind: str, data: dict[str, Any]) -> None:
        try:
            cluster.publish(None, RelayedEvent(document, kind, data, cluster.node_id))
        except TypeError as exc:  # data orjson cannot encode: the event stays on this node
            log.error("event %s of %r not relayed to other nodes: %s", kind, document, exc)

    def relay_eviction(name: str, code: int, reason: str) -> None:
        cluster.publish(None, Eviction(name, code, reason, cluster.node_id))

    def on_event(record: RelayedEvent | Eviction) -> None:
        if isinstance(record, RelayedEvent):
            events.publish(record.document, record.kind, record.data, relayed=True)
        else:
            task = asyncio.create_task(registry.evict(record.document, record.code, record.reason))
            evictions.add(task)
            task.add_done_callback(evictions.discard)

    events.relay = relay_event
    registry.on_evicted = relay_eviction
    cluster.on_event = on_event
    return cluster
