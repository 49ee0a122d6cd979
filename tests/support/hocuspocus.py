"""In-process Hocuspocus harness: the real hub, rooms and channel over a fake socket, with a storage
whose commits can be held, and a token authenticator; every wait is on a signal, with a timeout."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import struct
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from crdt.hocuspocus import DocumentMessage, Envelope, Frame, Ping, Sender, decode_frame, encode_frame
from persistence.base import NewUpdate
from persistence.memory import MemoryStorage
from server.auth import AuthError, Credentials, Identity, Role
from server.events import EventBus
from server.hocuspocus import HocuspocusChannel, HocuspocusEndpoint
from server.hub import Admission, Hub
from server.rooms import RoomRegistry
from server.settings import Settings

_ids = itertools.count(1)


class Signal:
    """Wakes every waiter whenever something may have changed (single event loop, no lost wake-ups)."""

    def __init__(self) -> None:
        self._waiters: list[asyncio.Future[None]] = []

    def fire(self) -> None:
        for waiter in self._waiters:
            if not waiter.done():
                waiter.set_result(None)
        self._waiters.clear()

    async def until(self, predicate: Callable[[], bool], timeout: float = 5.0, what: str = "") -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not predicate():
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise AssertionError(f"timed out after {timeout}s waiting for {what or predicate}")
            waiter: asyncio.Future[None] = loop.create_future()
            self._waiters.append(waiter)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(waiter, remaining)


def split_frames(data: bytes) -> list[bytes]:
    """The payloads of the unmasked binary websocket frames in `data` (as `server.frames` writes)."""
    out, pos = [], 0
    while pos < len(data):
        length, pos = data[pos + 1] & 0x7F, pos + 2
        if length == 126:
            (length,), pos = struct.unpack_from("!H", data, pos), pos + 2
        elif length == 127:
            (length,), pos = struct.unpack_from("!Q", data, pos), pos + 8
        out.append(data[pos : pos + length])
        pos += length
    return out


class FakeWire:
    """Stands in for `WebSocketConnection`: records what the channel writes, and the close."""

    def __init__(self, signal: Signal) -> None:
        self.id = next(_ids)
        self.signal = signal
        self.raw: list[bytes] = []  # every `write` argument, as given (to compare identities)
        self.frames: list[Frame] = []
        self.close_code: int | None = None
        self.close_reason = ""
        self.unprocessed = 0

    @property
    def open(self) -> bool:
        return self.close_code is None

    def write(self, frame: bytes) -> None:
        if self.open:
            self.raw.append(frame)
            self._record(split_frames(frame))

    def write_messages(self, payloads: list[bytes]) -> None:
        if self.open:
            self._record(payloads)

    def _record(self, payloads: Sequence[bytes]) -> None:
        self.frames.extend(decode_frame(payload, Sender.SERVER) for payload in payloads)
        self.signal.fire()

    def close(self, code: int, reason: str) -> None:
        if self.open:
            self.close_code, self.close_reason = code, reason
            self.signal.fire()

    def received(self, nbytes: int) -> None:
        self.unprocessed += nbytes

    def processed(self, nbytes: int) -> None:
        self.unprocessed -= nbytes
        self.signal.fire()


@dataclass
class Client:
    """One fake Hocuspocus socket on the in-process server."""

    wire: FakeWire
    channel: HocuspocusChannel
    signal: Signal

    def send(self, address: str, *messages: DocumentMessage) -> None:
        for message in messages:
            self.channel.receive(encode_frame(Envelope(address, message)))

    def messages(self, address: str) -> list[DocumentMessage]:
        return [f.message for f in self.wire.frames if isinstance(f, Envelope) and f.address == address]

    def pings(self) -> int:
        return sum(isinstance(f, Ping) for f in self.wire.frames)

    async def wait_for(
        self, address: str, predicate: Callable[[DocumentMessage], bool], what: str = ""
    ) -> None:
        await self.signal.until(lambda: any(predicate(m) for m in self.messages(address)), what=what)

    async def wait_closed(self) -> None:
        await self.signal.until(lambda: not self.wire.open, what="the socket to close")

    def disconnect(self) -> None:
        self.wire.close(1000, "bye")
        self.channel.closed()


class HeldStorage(MemoryStorage):
    """Memory storage whose commits wait while `gate` is clear; `appending` tells one has started."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = asyncio.Event()
        self.gate.set()
        self.appending = asyncio.Event()

    async def append_updates(self, document_id: str, updates: Sequence[NewUpdate]) -> int:
        self.appending.set()
        await self.gate.wait()
        return await super().append_updates(document_id, updates)

    async def rows(self, name: str) -> int:
        record = await self.get_document(name)
        return 0 if record is None else len(await self.read_updates(record.id))


class TokenAuthenticator:
    """Token = user id; `roles[user][document]` (or `roles[user]["*"]`) is the role; others: 401."""

    def __init__(self, roles: dict[str, dict[str, Role]]) -> None:
        self.roles = roles

    def identify(self, credentials: Credentials, now: float) -> Identity:
        if credentials.token not in self.roles:
            raise AuthError(401, "unauthorized", "unknown token")
        return Identity(credentials.token, credentials.token.title())

    async def role(self, identity: Identity, document: str) -> Role:
        grants = self.roles.get(identity.user_id, {})
        return grants.get(document, grants.get("*", Role.NONE))


@dataclass
class InProcessServer:
    hub: Hub
    endpoint: HocuspocusEndpoint
    storage: HeldStorage
    signal: Signal = field(default_factory=Signal)

    def connect(self, credentials: Credentials | None = None) -> Client:
        wire = FakeWire(self.signal)
        admission = Admission("hocuspocus", "", Role.NONE, False, "", "", {}, credentials=credentials)
        return Client(wire, self.endpoint(wire, admission), self.signal)

    async def close(self) -> None:
        await self.hub.registry.close()


def start_server(roles: dict[str, dict[str, Role]], **settings: Any) -> InProcessServer:
    """Call inside a running event loop; `await server.close()` at the end."""
    configured = replace(Settings(), **settings)
    storage = HeldStorage()
    events = EventBus()
    registry = RoomRegistry(storage, configured, time.time, events)
    hub = Hub(registry, configured, storage, TokenAuthenticator(roles), events, time.time)
    return InProcessServer(hub, HocuspocusEndpoint(hub), storage)
