"""`async with connect(url, doc)`: a pycrdt.Doc kept in sync over y-websocket, with reconnects and acks."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
from collections.abc import AsyncIterator, Callable
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from pycrdt import Doc, TransactionEvent
from websockets.asyncio.client import ClientConnection
from websockets.asyncio.client import connect as ws_connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus

from crdt.awareness import NULL_STATE, AwarenessEntry, decode_awareness, encode_awareness
from crdt.errors import CoreError
from crdt.messages import AwarenessMessage
from crdt.sync import (
    AccessDenied,
    Acknowledged,
    AwarenessQueried,
    AwarenessReceived,
    EpochAnnounced,
    EventReceived,
    Role,
    SyncRequested,
    SyncSession,
    UpdateReceived,
    UpdateRefused,
)

log = logging.getLogger("cocreate.client")

AWARENESS_RENEW_SECONDS = 15.0
FIRST_BACKOFF = 0.05  # seconds before the first reconnection attempt (before jitter), doubled each time
PERMANENT_CLOSE_CODES = range(4400, 4500)


class ClientClosed(Exception):
    """The server refused this client for good (4xxx close, or a refused handshake)."""


class Client:
    """One document replica connected to a server. Create it with `connect()`."""

    def __init__(self, url: str, doc: Doc[Any] | None, *, reconnect: bool, max_backoff: float) -> None:
        self.url = _with_query(url, "acks=1")
        self.doc: Doc[Any] = doc if doc is not None else Doc()
        self.reconnect = reconnect
        self.max_backoff = max_backoff
        self.rng = random.Random()  # the reconnection jitter (tests seed their own)
        self.synced = asyncio.Event()  # set once the first server state has been applied
        self.connected = asyncio.Event()
        self.epoch: str | None = None
        self.refusals: list[str] = []
        self.remote_states: dict[int, dict[str, Any]] = {}
        self.document_events: asyncio.Queue[tuple[str, dict[str, Any]]] = asyncio.Queue()
        self.closed_reason: str | None = None
        self._local_state: dict[str, Any] | None = {}  # like y-protocols: present until cleared
        self._awareness_clock = 0
        self._session: SyncSession | None = None
        self._ws: ClientConnection | None = None
        self._outbox: asyncio.Queue[bytes] | None = None
        self._applying_remote = False
        self._dirty = False  # local changes not yet sent in any message
        self._last_local_index = 0  # update-carrying message that carried the latest local change
        self._acked = asyncio.Condition()
        self._changed = asyncio.Condition()
        self._subscription = self.doc.observe(self._on_local_change)
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self.connections = 0

    # -- public API --------------------------------------------------------------------
    @property
    def client_id(self) -> int:
        return int(self.doc.client_id)

    async def wait_synced(self, timeout: float = 10.0) -> None:
        await asyncio.wait_for(self.synced.wait(), timeout)

    async def flushed(self, timeout: float | None = 10.0) -> None:
        """Wait until every local change made so far is acknowledged as committed by the server."""

        async def done() -> None:
            async with self._acked:
                await self._acked.wait_for(self._all_acknowledged)

        await asyncio.wait_for(done(), timeout)

    async def wait_for(self, predicate: Callable[[], bool], timeout: float = 10.0) -> None:
        """Wait until `predicate()` holds; re-checked after each update or awareness change received."""

        async def check() -> None:
            async with self._changed:
                await self._changed.wait_for(predicate)

        await asyncio.wait_for(check(), timeout)

    async def wait_closed(self, timeout: float = 10.0) -> None:
        """Wait until the client gave up for good (a refused handshake or a 44xx close)."""
        if self._task is not None:
            await asyncio.wait_for(asyncio.shield(self._task), timeout)

    @property
    def has_unsaved_changes(self) -> bool:
        return not self._all_acknowledged()

    def set_awareness(self, state: dict[str, Any] | None) -> None:
        """Set (or clear with None) this client's presence state and send it."""
        self._local_state = state
        self._awareness_clock += 1
        self._send_awareness()

    def interrupt(self) -> None:
        """Drop the current connection abruptly (as a network failure would); it reconnects."""
        ws = self._ws
        if ws is not None and ws.transport is not None:
            ws.transport.abort()

    async def close(self) -> None:
        self._stopping = True
        outbox = self._outbox
        if outbox is not None and self._local_state is not None:
            self._local_state = None
            self._awareness_clock += 1
            self._send_awareness()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(outbox.join(), 1.0)
        ws = self._ws
        if ws is not None:  # a clean close (1000) first; the run loop then ends by itself
            with contextlib.suppress(Exception):
                await asyncio.wait_for(ws.close(), 2.0)
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
        self.doc.unobserve(self._subscription)

    # -- internals ---------------------------------------------------------------------
    def _all_acknowledged(self) -> bool:
        session = self._session
        if self._dirty:
            return False
        if self._last_local_index == 0:
            return True
        return session is not None and session.updates_final >= self._last_local_index

    def _on_local_change(self, event: TransactionEvent) -> None:
        if self._applying_remote:
            return
        update = event.update
        if update == b"\x00\x00":
            return
        session = self._session
        if session is None or self._outbox is None:
            self._dirty = True
            return
        session.send_update(update)
        self._last_local_index = session.updates_sent
        self._send_queued()

    def _send_queued(self) -> None:
        if self._session is None or self._outbox is None:
            return
        for frame in self._session.data_to_send():
            self._outbox.put_nowait(frame)

    async def _write(self, ws: ClientConnection, outbox: asyncio.Queue[bytes]) -> None:
        """The one writer of a connection: frames leave in the order they were queued."""
        while True:
            frame = await outbox.get()
            try:
                await ws.send(frame)
            except ConnectionClosed:
                return
            finally:
                outbox.task_done()

    def _send_awareness(self) -> None:
        if self._session is None:
            return
        state = NULL_STATE if self._local_state is None else json.dumps(self._local_state)
        entry = AwarenessEntry(self.client_id, self._awareness_clock, state)
        self._session.send(AwarenessMessage(encode_awareness([entry])))
        self._send_queued()

    async def _run(self) -> None:
        attempt = 0
        while not self._stopping:
            try:
                url = self.url if self.epoch is None else _with_query(self.url, f"epoch={self.epoch}")
                async with ws_connect(url, max_size=None, compression=None, open_timeout=10) as ws:
                    attempt = 0
                    await self._serve(ws)
            except InvalidStatus as exc:
                status = exc.response.status_code
                if status in (400, 401, 403, 404, 422):
                    self.closed_reason = f"handshake refused with HTTP {status}"
                    break
            except ClientClosed as exc:
                self.closed_reason = str(exc)
                break
            except ConnectionClosed as exc:
                received = exc.rcvd
                if received is not None and received.code in PERMANENT_CLOSE_CODES:
                    self.closed_reason = f"closed for good: {received.code} {received.reason}"
                    break
                log.debug("connection to %s lost: %s", self.url, exc)
            except (OSError, InvalidHandshake, TimeoutError) as exc:
                log.debug("connection to %s lost: %s", self.url, exc)
            finally:
                if not self._all_acknowledged():
                    # Unconfirmed edits travel again in the next connection's step 2.
                    self._dirty = True
                self._last_local_index = 0  # message indexes are per connection
                self._ws = None
                self._session = None
                self._outbox = None
                self.connected.clear()
                self.remote_states.clear()
            if not self.reconnect or self._stopping:
                break
            attempt += 1
            await asyncio.sleep(backoff_delay(attempt, self.max_backoff, self.rng))
        self.connected.clear()

    async def _serve(self, ws: ClientConnection) -> None:
        session = SyncSession(Role.CLIENT, acks=True, max_message_size=1 << 30)
        outbox: asyncio.Queue[bytes] = asyncio.Queue()
        self._ws = ws
        self._session = session
        self._outbox = outbox
        self.connections += 1
        session.send_step1(self.doc.get_state())
        if self._local_state is not None:
            self._awareness_clock += 1
        self.connected.set()
        self._send_awareness()
        self._send_queued()
        writer = asyncio.create_task(self._write(ws, outbox))
        renew = asyncio.create_task(self._renew_awareness())
        try:
            async for frame in ws:
                if isinstance(frame, str):
                    continue
                try:
                    event = session.receive_data(frame)
                except CoreError as exc:
                    log.warning("malformed message from server: %s", exc)
                    continue
                await self._handle(session, event)
                self._send_queued()
        finally:
            renew.cancel()
            writer.cancel()
        code = ws.close_code
        if code is not None and code in PERMANENT_CLOSE_CODES:
            raise ClientClosed(f"server closed the connection for good: {code} {ws.close_reason}")

    async def _handle(self, session: SyncSession, event: object) -> None:
        match event:
            case SyncRequested():
                # The server asks for what it lacks: our offline edits travel in this step 2.
                session.send_step2(self.doc.get_update(event.state_vector))
                if self._dirty:
                    self._dirty = False
                    self._last_local_index = session.updates_sent
            case UpdateReceived(update, _, is_step2):
                self._applying_remote = True
                try:
                    self.doc.apply_update(update)
                except Exception:  # the update is applied; a user's own observer raised
                    log.exception("an observer of the document raised while a remote update was applied")
                finally:
                    self._applying_remote = False
                if is_step2:
                    self.synced.set()
                async with self._changed:
                    self._changed.notify_all()
            case Acknowledged():
                async with self._acked:
                    self._acked.notify_all()
            case UpdateRefused(_, reason):
                self.refusals.append(reason)
            case AwarenessReceived(payload):
                for entry in decode_awareness(payload):
                    if entry.client_id == self.client_id:
                        continue
                    if entry.state == NULL_STATE:
                        self.remote_states.pop(entry.client_id, None)
                    else:
                        self.remote_states[entry.client_id] = json.loads(entry.state)
                async with self._changed:
                    self._changed.notify_all()
            case AwarenessQueried():
                self._send_awareness()
            case EpochAnnounced(epoch):
                self.epoch = epoch
            case EventReceived(kind, data):
                self.document_events.put_nowait((kind, json.loads(data)))
            case AccessDenied(reason):
                raise ClientClosed(f"permission denied: {reason}")

    async def _renew_awareness(self) -> None:
        while True:
            await asyncio.sleep(AWARENESS_RENEW_SECONDS)
            if self._local_state is not None:
                self._awareness_clock += 1
                self._send_awareness()


@contextlib.asynccontextmanager
async def connect(
    url: str,
    doc: Doc[Any] | None = None,
    *,
    reconnect: bool = True,
    wait_synced: bool = True,
    timeout: float = 10.0,
    max_backoff: float = 5.0,
) -> AsyncIterator[Client]:
    """Connect `doc` to the document at `url` (e.g. ws://host:1234/ws/team/notes)."""
    client = Client(url, doc, reconnect=reconnect, max_backoff=max_backoff)
    client._task = asyncio.create_task(client._run(), name=f"cocreate-client:{url}")
    try:
        if wait_synced:
            waiter = asyncio.ensure_future(client.synced.wait())
            await asyncio.wait({waiter, client._task}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
            waiter.cancel()
            if not client.synced.is_set():
                raise ConnectionError(client.closed_reason or f"could not sync with {url} in {timeout}s")
        yield client
    finally:
        await client.close()


def backoff_delay(attempt: int, max_backoff: float, rng: random.Random) -> float:
    """Seconds to wait before reconnection `attempt` (1, 2, ...): exponential from FIRST_BACKOFF,
    capped at `max_backoff`, times a jitter in [0.5, 1] so that clients dropped together do not
    come back together. Any number of attempts (a long outage) stays within the cap."""
    exponent = min(max(attempt, 0), 64)  # 2**attempt as a float overflows after ~1024 attempts
    ceiling: float = min(max_backoff, FIRST_BACKOFF * 2**exponent)
    return ceiling * rng.uniform(0.5, 1.0)


def _with_query(url: str, param: str) -> str:
    parts = urlsplit(url)
    query = f"{parts.query}&{param}" if parts.query else param
    return urlunsplit((parts.scheme, parts.netloc, parts.path, query, parts.fragment))
