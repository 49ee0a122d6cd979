"""Our Python client (`client.connect`) on a pycrdt Doc with the interop roots, plus bounded waits.

`PyPeer.until(predicate)` re-checks its predicate whenever the document changes or the client has
handled a message from the server (awareness included), so nothing here sleeps to wait.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Any

from pycrdt import Array, Doc, Map, Text

from client import Client, connect
from crdt.sync import UpdateReceived

ROOTS = ("t", "m", "a", "barrier")


class Signal:
    """Wakes every waiter when something may have changed (no lost wake-ups: single event loop)."""

    def __init__(self) -> None:
        self._waiters: set[asyncio.Future[None]] = set()

    def fire(self) -> None:
        for waiter in self._waiters:
            if not waiter.done():
                waiter.set_result(None)
        self._waiters.clear()

    async def until(self, predicate: Callable[[], bool], timeout: float, what: str) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not predicate():
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise AssertionError(f"timed out after {timeout}s waiting for {what}")
            waiter: asyncio.Future[None] = loop.create_future()
            self._waiters.add(waiter)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(waiter, remaining)


def new_doc() -> Doc[Any]:
    doc: Doc[Any] = Doc()
    doc.get("t", type=Text)
    doc.get("m", type=Map)
    doc.get("a", type=Array)
    doc.get("barrier", type=Map)
    return doc


class PyPeer:
    """A connected `client.Client` and its document."""

    def __init__(self, client: Client, signal: Signal) -> None:
        self.client = client
        self.doc = client.doc
        self.signal = signal
        self.step2_received = 0  # SyncStep2 messages handled (one per (re)connection)
        self.text: Text = self.doc.get("t", type=Text)
        self.map: Map[Any] = self.doc.get("m", type=Map)
        self.array: Array[Any] = self.doc.get("a", type=Array)
        self.barrier: Map[Any] = self.doc.get("barrier", type=Map)

    @property
    def client_id(self) -> int:
        return self.client.client_id

    def content(self) -> dict[str, Any]:
        """The same shape as the Node client's `roots` dump."""
        return {
            "t": str(self.text),
            "m": self.map.to_py(),
            "a": self.array.to_py(),
            "barrier": self.barrier.to_py(),
        }

    def insert_text_at_char(self, char_index: int, value: str) -> None:
        """Insert at a *character* index: pycrdt 0.14 Text indices are UTF-8 byte offsets."""
        current = str(self.text)
        self.text.insert(len(current[:char_index].encode("utf-8")), value)

    async def until(
        self, predicate: Callable[[], bool], timeout: float = 10.0, what: str = "a condition"
    ) -> None:
        await self.signal.until(predicate, timeout, what)

    async def wait_barrier(self, names: list[str], timeout: float = 10.0) -> None:
        await self.until(lambda: set(names) <= set(self.barrier.keys()), timeout, f"barrier keys {names}")

    async def wait_content(self, expected: dict[str, Any], timeout: float = 10.0) -> None:
        await self.until(lambda: self.content() == expected, timeout, f"content {expected!r}")

    async def wait_disconnected(self, timeout: float = 10.0) -> None:
        await self.until(lambda: not self.client.connected.is_set(), timeout, "the connection to close")

    async def wait_resynced(self, after_step2: int, timeout: float = 15.0) -> None:
        """Wait until a SyncStep2 beyond the `after_step2`-th one arrived (a reconnection synced)."""
        await self.until(lambda: self.step2_received > after_step2, timeout, "a new sync step 2")


@contextlib.asynccontextmanager
async def python_peer(
    url: str, doc: Doc[Any] | None = None, *, reconnect: bool = True, timeout: float = 10.0
) -> AsyncIterator[PyPeer]:
    """`client.connect` on `doc` (a fresh one with the interop roots by default)."""
    doc = doc if doc is not None else new_doc()
    signal = Signal()
    subscription = doc.observe(lambda _event: signal.fire())
    try:
        async with connect(url, doc, reconnect=reconnect, timeout=timeout, max_backoff=0.5) as client:
            peer = PyPeer(client, signal)
            _watch_messages(peer)
            yield peer
    finally:
        doc.unobserve(subscription)
        signal.fire()


class _SignalingEvent(asyncio.Event):
    """An `asyncio.Event` that also fires a `Signal` when set or cleared."""

    def __init__(self, signal: Signal, initial: bool) -> None:
        super().__init__()
        self._signal = signal
        if initial:
            super().set()

    def set(self) -> None:
        super().set()
        self._signal.fire()

    def clear(self) -> None:
        super().clear()
        self._signal.fire()


def _watch_messages(peer: PyPeer) -> None:
    """Fire the peer's signal after the client handled any message and when its connection opens
    or closes. The client has no public hook for awareness or connection changes, so this wraps
    its per-message handler and its `connected` event, on this instance only."""
    client = peer.client
    client.connected = _SignalingEvent(peer.signal, client.connected.is_set())
    handle = client._handle

    async def handle_and_signal(session: Any, event: object) -> None:
        try:
            await handle(session, event)
        finally:
            if isinstance(event, UpdateReceived) and event.is_step2:
                peer.step2_received += 1
            peer.signal.fire()

    client._handle = handle_and_signal  # type: ignore[method-assign]
