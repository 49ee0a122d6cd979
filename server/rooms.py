"""The registry of loaded rooms: hands out the live room of a name, starts and retires room tasks."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING

from persistence.base import Storage
from server.committer import CommitHook
from server.events import EventBus
from server.metrics import Metrics
from server.presence import PresenceHook
from server.room import Room
from server.settings import Settings

if TYPE_CHECKING:  # the Redis client is imported only when a cluster is configured
    from server.cluster.node import Cluster

log = logging.getLogger("cocreate.rooms")


class RoomRegistry:
    """Owns every room task. A name has at most one accepting room; a closing one hands over."""

    def __init__(
        self, storage: Storage, settings: Settings, clock: Callable[[], float], events: EventBus | None = None
    ) -> None:
        self.storage = storage
        self.events = events or EventBus()
        self.settings = settings
        self.clock = clock
        self._rooms: dict[str, Room] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._closed = False
        self._blocked: set[str] = set()
        self.presence: PresenceHook | None = None  # handed to every room (presence recording)
        self.on_commit: CommitHook | None = None  # handed to every room's committer (webhooks)
        self.metrics = Metrics()  # the server's metrics (the hub shares them); handed to every room
        self.cluster: Cluster | None = None  # cluster mode: handed to every room
        self.on_evicted: Callable[[str, int, str], None] | None = None  # cluster mode: tell the others

    def __len__(self) -> int:
        return len(self._rooms)

    def loaded(self) -> list[Room]:
        return list(self._rooms.values())

    def get(self, name: str) -> Room | None:
        room = self._rooms.get(name)
        return room if room is not None and room.accepting else None

    def enter(self, name: str) -> Room:
        """The accepting room of `name`, created (and loaded by its own task) if needed."""
        if self._closed:
            raise RuntimeError("the server is shutting down")
        previous = self._rooms.get(name)
        if previous is not None and previous.accepting:
            return previous
        room = Room(name, self.storage, self.settings, self.clock, self.events)
        room.presence = self.presence
        room.on_commit = self.on_commit
        room.metrics = self.metrics
        room.cluster = self.cluster
        self._rooms[name] = room
        task = asyncio.create_task(self._run(room, previous), name=f"room:{name}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return room

    async def _run(self, room: Room, previous: Room | None) -> None:
        try:
            await room.run(previous)
        finally:
            if self._rooms.get(room.name) is room:
                del self._rooms[room.name]

    async def evict(self, name: str, code: int, reason: str) -> None:
        """Close every connection of `name` and wait until its room has committed and stopped."""
        room = self._rooms.get(name)
        if room is not None:
            room.shut(code, reason)
            await room.finished.wait()

    def is_blocked(self, name: str) -> bool:
        return name in self._blocked

    @contextlib.asynccontextmanager
    async def exclusive(self, *names: str, code: int, reason: str) -> AsyncIterator[None]:
        """Evict `names` and keep new connections out of them (admission answers 503) meanwhile."""
        taken = [n for n in names if n not in self._blocked]
        self._blocked.update(taken)
        try:
            for name in names:
                await self.evict(name, code, reason)
                if self.on_evicted is not None:
                    self.on_evicted(name, code, reason)
            yield
        finally:
            self._blocked.difference_update(taken)

    async def close(self) -> None:
        """Stop accepting, let every room flush its commits, wait for all room tasks."""
        self._closed = True
        for room in list(self._rooms.values()):
            room.shut(1012, "server restarting")
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=self.settings.close_timeout * 2)
