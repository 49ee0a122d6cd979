"""This process's membership in a cluster: publishes records to Redis Streams, reads the streams of
the documents it has loaded (one reader connection for all of them), holds compaction leases."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from collections import deque
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any, Protocol

from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from server.cluster.lease import Leases
from server.cluster.records import (
    AccessChanged,
    Broadcast,
    Eviction,
    Record,
    RecordError,
    RelayedEvent,
    decode_record,
    encode_record,
)

log = logging.getLogger("cocreate.cluster")

DOC_PREFIX = "cocreate:doc:"
EVENTS_STREAM = "cocreate:events"
BLOCK_MS = 2000  # the reader's XREAD block; a changed stream set unblocks it at once
READ_COUNT = 512
PUBLISH_BATCH = 256
MAX_QUEUED = 20_000  # records waiting for Redis; beyond, they are dropped (all are durable or transient)
TICK_SECONDS = 0.25
LEASE_TTL = 15.0
LEASE_EVERY = 3.0
STREAM_IDLE_MS = 24 * 3600 * 1000
ATTACH_TIMEOUT = 1.0  # a slow Redis does not hold up loading: the position is resolved later


class Subscriber(Protocol):
    """What the cluster drives for one loaded document (a room's link)."""

    def deliver(self, record: Record, now: float) -> None: ...
    def resync(self) -> None: ...
    def tick(self, now: float) -> None: ...


@dataclass
class ClusterStats:
    published: int = 0
    publish_failures: int = 0
    dropped: int = 0
    received: int = 0
    malformed: int = 0
    outages: int = 0
    lag_ms: float = 0.0  # of the last record received: now - its stream id's time


def stream_key(document_id: str) -> str:
    return DOC_PREFIX + document_id


class Cluster:
    """One node. `start()` inside the event loop, `close()` at shutdown."""

    def __init__(self, url: str, node_id: str | None = None, stream_max_len: int = 2000) -> None:
        self.url = url
        self.node_id = node_id or secrets.token_hex(6)
        self.stream_max_len = stream_max_len
        self.stats = ClusterStats()
        self.on_event: Callable[[Broadcast], None] | None = None
        self.clock = time.monotonic
        self._redis: Redis | None = None
        self._leases: Leases | None = None
        self._subscribers: dict[str, Subscriber] = {}  # stream key -> the room's link
        self._positions: dict[str, str | None] = {EVENTS_STREAM: None}  # None: resolve, then resync
        self._unresolved: set[str] = {EVENTS_STREAM}  # the keys whose position is None
        self._held: dict[str, float] = {}  # document id -> lease valid until (monotonic)
        self._queue: deque[tuple[str, dict[bytes, bytes]]] = deque()
        self._queued = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._side_tasks: set[asyncio.Task[None]] = set()
        self._drained = asyncio.Event()
        self._reader_id: int | None = None
        self._version = 0  # bumped when the set of streams changes
        self._reading_version = -1
        self._nudging = False
        self._down = False
        self._closing = False

    # -- lifecycle -----------------------------------------------------------------------
    async def start(self) -> None:
        self._redis = Redis.from_url(self.url, socket_connect_timeout=2, socket_timeout=5)
        self._leases = Leases(self._redis, LEASE_TTL)
        log.info("cluster node %s joining through redis %s", self.node_id, _redact(self.url))
        for name, work in (("read", self._read_forever), ("publish", self._publish_forever),
                           ("tick", self._tick_forever), ("lease", self._lease_forever)):  # fmt: skip
            self._tasks.append(asyncio.create_task(work(), name=f"cluster-{name}"))

    async def close(self) -> None:
        """Publish what is queued (briefly), stop the tasks, give back the leases; bounded in time."""
        await self._flush(timeout=2.0)
        self._closing = True
        if self._tasks and self._reader_id is not None and self._redis is not None:
            # a cancelled XREAD BLOCK may keep waiting inside the client: end it from outside first
            with contextlib.suppress(RedisError, OSError, TimeoutError):
                await asyncio.wait_for(self._redis.client_unblock(self._reader_id), 1.0)
                await asyncio.wait([self._tasks[0]], timeout=1.0)
        if self._side_tasks:  # lease releases of rooms that just closed
            await asyncio.wait(set(self._side_tasks), timeout=1.0)
        tasks = [*self._tasks, *self._side_tasks]
        for task in tasks:
            task.cancel()
        if tasks:
            _, stuck = await asyncio.wait(tasks, timeout=3.0)
            if stuck:
                log.warning("cluster tasks did not stop: %s", sorted(t.get_name() for t in stuck))
        self._tasks.clear()
        if self._redis is not None:
            with contextlib.suppress(RedisError, OSError, TimeoutError):
                await asyncio.wait_for(self._release_all(), 3.0)
            with contextlib.suppress(RedisError, OSError, TimeoutError):
                await asyncio.wait_for(self._redis.aclose(), 3.0)

    async def _release_all(self) -> None:
        assert self._leases is not None
        for document_id in list(self._held):
            await self._leases.release(document_id, self.node_id)
        self._held.clear()

    async def ping(self) -> bool:
        """Whether Redis answers now (for readiness)."""
        if self._redis is None:
            return False
        try:
            return bool(await self._redis.ping())
        except (RedisError, OSError):
            return False

    # -- documents -----------------------------------------------------------------------
    async def attach(self, document_id: str, subscriber: Subscriber) -> None:
        """Start reading `document_id`'s stream from its current end (call before loading the log)."""
        key = stream_key(document_id)
        self._subscribers[key] = subscriber
        position = None
        if not self._down:  # while Redis is away, loading must not wait for it
            with contextlib.suppress(TimeoutError):
                position = await asyncio.wait_for(self._stream_end(key), ATTACH_TIMEOUT)
        self._positions[key] = position
        if position is None:
            self._unresolved.add(key)
        else:
            self._unresolved.discard(key)
        self._nudge()
        self._spawn(self._take_lease(document_id))

    def detach(self, document_id: str, subscriber: Subscriber) -> None:
        key = stream_key(document_id)
        if self._subscribers.get(key) is subscriber:
            del self._subscribers[key]
            self._positions.pop(key, None)
            self._unresolved.discard(key)
            self._nudge()
            if self._held.pop(document_id, None) is not None:
                self._spawn(self._release(document_id))

    def holds_lease(self, document_id: str) -> bool:
        return self._held.get(document_id, 0.0) > self.clock()

    def publish(self, document_id: str | None, record: Record) -> None:
        """Queue `record` for the document's stream (None: the events stream); never blocks."""
        if len(self._queue) >= MAX_QUEUED:
            self.stats.dropped += 1
            return
        key = EVENTS_STREAM if document_id is None else stream_key(document_id)
        self._queue.append((key, encode_record(record)))
        self._queued.set()

    # -- publishing ------------------------------------------------------------------------
    async def _publish_forever(self) -> None:
        assert self._redis is not None
        while True:
            await self._queued.wait()
            self._queued.clear()
            while self._queue:
                count = min(PUBLISH_BATCH, len(self._queue))
                batch = [self._queue.popleft() for _ in range(count)]
                try:
                    pipe = self._redis.pipeline(transaction=False)
                    for key, fields in batch:
                        pipe.xadd(key, fields, maxlen=self.stream_max_len, approximate=True)  # type: ignore[arg-type]
                    for key in {key for key, _ in batch}:  # streams of documents nobody edits go away
                        pipe.pexpire(key, STREAM_IDLE_MS)
                    await pipe.execute()
                    self.stats.published += count
                    self._recovered()
                except (RedisError, OSError) as exc:
                    # Everything queued is durable already (or transient presence): readers catch up
                    # from the log, so drop the backlog rather than replay it late.
                    failed = count + len(self._queue)
                    self._queue.clear()
                    self.stats.publish_failures += failed
                    self._outage("publishing", exc)
            self._drained.set()

    async def _flush(self, timeout: float) -> None:
        if self._queue and self._tasks:
            self._drained.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._drained.wait(), timeout)

    # -- reading ---------------------------------------------------------------------------
    async def _read_forever(self) -> None:
        backoff = 0.1
        while not self._closing:
            reader = Redis.from_url(
                self.url, single_connection_client=True, socket_connect_timeout=2,
                socket_timeout=BLOCK_MS / 1000 + 5, retry=Retry(NoBackoff(), 0),
            )  # fmt: skip
            try:
                self._reader_id = int(await reader.client_id())
                backoff = 0.1
                while not self._closing:
                    if self._unresolved:
                        await self._resolve_positions()
                    streams = {key: position for key, position in self._positions.items() if position}
                    self._reading_version = self._version
                    response = await reader.xread(streams, count=READ_COUNT, block=BLOCK_MS)  # type: ignore[arg-type]
                    self._reading_version = -1
                    self._recovered()
                    if response:
                        self._dispatch(list(response))
            except (RedisError, OSError) as exc:
                self._outage("reading", exc)
                for key in self._positions:  # entries may be gone (a restarted Redis): log catch-up
                    self._positions[key] = None
                self._unresolved.update(self._positions)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)
            finally:
                self._reader_id = None
                self._reading_version = -1
                with contextlib.suppress(RedisError, OSError):
                    await reader.aclose()

    async def _resolve_positions(self) -> None:
        for key in list(self._unresolved):
            end = await self._stream_end(key, strict=True)
            self._unresolved.discard(key)
            if key in self._positions and self._positions[key] is None:
                self._positions[key] = end
            subscriber = self._subscribers.get(key)
            if subscriber is not None:
                subscriber.resync()

    async def _stream_end(self, key: str, strict: bool = False) -> str | None:
        """The id of the last entry of `key` ("0-0" for an empty stream); None if Redis is down."""
        assert self._redis is not None
        try:
            last = await self._redis.xrevrange(key, "+", "-", count=1)
        except (RedisError, OSError):
            if strict:
                raise
            return None
        return _text(last[0][0]) if last else "0-0"

    def _dispatch(self, response: list[Any]) -> None:
        now = self.clock()
        wall_ms = time.time() * 1000
        for raw_key, entries in response:
            key = _text(raw_key)
            if key not in self._positions:
                continue  # detached meanwhile
            subscriber = self._subscribers.get(key)
            for raw_id, fields in entries:
                entry_id = _text(raw_id)
                self._positions[key] = entry_id
                try:
                    record = decode_record(fields)
                except RecordError as exc:
                    self.stats.malformed += 1
                    log.warning("skipping stream entry %s of %s: %s", entry_id, key, exc)
                    continue
                if record.origin == self.node_id:
                    continue
                self.stats.received += 1
                self.stats.lag_ms = max(0.0, wall_ms - int(entry_id.split("-", 1)[0]))
                if key == EVENTS_STREAM:
                    if self.on_event is not None and isinstance(
                        record, RelayedEvent | Eviction | AccessChanged
                    ):
                        self.on_event(record)
                elif subscriber is not None:
                    subscriber.deliver(record, now)

    def _nudge(self) -> None:
        """The set of streams changed: unblock the reader's XREAD so it reads the new set."""
        self._version += 1
        if not self._nudging and self._tasks:
            self._nudging = True
            self._spawn(self._unblock())

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(work)
        self._side_tasks.add(task)
        task.add_done_callback(self._side_tasks.discard)

    async def _unblock(self) -> None:
        try:
            for _ in range(200):  # the XREAD may not have reached Redis yet: retry briefly
                reader_id = self._reader_id
                if reader_id is None or self._reading_version in (-1, self._version):
                    return
                assert self._redis is not None
                if await self._redis.client_unblock(reader_id):
                    return
                await asyncio.sleep(0.005)
        except (RedisError, OSError):
            return  # the reader will notice the outage itself
        finally:
            self._nudging = False

    # -- timers ----------------------------------------------------------------------------
    async def _tick_forever(self) -> None:
        while True:
            await asyncio.sleep(TICK_SECONDS)
            now = self.clock()
            for subscriber in list(self._subscribers.values()):
                subscriber.tick(now)

    async def _lease_forever(self) -> None:
        while True:
            for key in list(self._subscribers):
                await self._take_lease(key[len(DOC_PREFIX) :])
            await asyncio.sleep(LEASE_EVERY)

    async def _take_lease(self, document_id: str) -> None:
        """Take or renew the document's lease; we trust it for 80% of its ttl from before the call."""
        assert self._leases is not None
        started = self.clock()
        try:
            held = await self._leases.hold(document_id, self.node_id)
        except (RedisError, OSError):
            held = False
        if held and stream_key(document_id) in self._subscribers:
            self._held[document_id] = started + LEASE_TTL * 0.8
            return
        self._held.pop(document_id, None)
        if held:  # the room closed while we were asking
            await self._release(document_id)

    async def _release(self, document_id: str) -> None:
        assert self._leases is not None
        with contextlib.suppress(RedisError, OSError):
            await self._leases.release(document_id, self.node_id)

    # -- outages ---------------------------------------------------------------------------
    def _outage(self, doing: str, exc: BaseException) -> None:
        if not self._down:
            self._down = True
            self.stats.outages += 1
            log.warning("redis unavailable while %s (%s); editing continues on this node", doing, exc)

    def _recovered(self) -> None:
        if self._down:
            self._down = False
            log.info("redis is reachable again; rooms catch up from the log")


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _redact(url: str) -> str:
    if "@" in url:
        scheme, rest = url.split("://", 1)
        return f"{scheme}://***@{rest.split('@', 1)[1]}"
    return url
