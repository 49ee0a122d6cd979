"""The services every edge shares (rooms, storage, auth, events, clock) and websocket handshake admission."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Protocol
from urllib.parse import parse_qsl, unquote, urlsplit

from persistence.access import AccessStore, MemoryAccessStore
from persistence.base import Storage
from server.auth import Authenticator, AuthError, Credentials, Identity, Role, authorize
from server.events import EventBus
from server.guard import AccessGuard
from server.limits import LimitCounters
from server.metrics import Metrics
from server.names import InvalidName, normalize_name
from server.readiness import Readiness
from server.rooms import RoomRegistry
from server.settings import Settings


@dataclass(frozen=True, slots=True)
class Admission:
    endpoint: str  # which channel speaks on this socket: "y-websocket", "hocuspocus" or "replay"
    document: str
    role: Role
    acks: bool
    author: str
    name: str
    query: dict[str, str]
    identity: Identity | None = None  # who (token claims included); None: Identity(author, name)
    generation: int = 0  # the document's access generation before the check (`AccessGuard.track`)
    credentials: Credentials | None = None  # Hocuspocus: the handshake's, used when Auth has no token


class Swept(Protocol):
    """An open websocket the hub checks periodically for idleness."""

    def sweep(self, now: float) -> None: ...


@dataclass(frozen=True, slots=True)
class Rejection:
    status: int
    error: str
    detail: str


class Hub:
    """Everything the edges (websocket transport, HTTP routes) need from the server, in one object."""

    def __init__(
        self,
        registry: RoomRegistry,
        settings: Settings,
        storage: Storage,
        authenticator: Authenticator,
        events: EventBus,
        clock: Callable[[], float],
        access: AccessStore | None = None,
    ) -> None:
        self.registry = registry
        self.settings = settings
        self.storage = storage
        self.authenticator = authenticator
        self.events = events
        self.clock = clock
        self.access: AccessStore = access if access is not None else MemoryAccessStore()
        self.guard = AccessGuard(authenticator, clock)  # live re-checks of open connections
        self.connections = 0
        self.limits = LimitCounters()
        self.metrics: Metrics = registry.metrics
        self.readiness = Readiness(settings.readiness_timeout)  # `/readyz`; false once shutting down
        self.per_address: Counter[str] = Counter()
        self.sockets: set[Swept] = set()
        self._tasks: set[asyncio.Future[None]] = set()

    def check_address(self, address: str) -> Rejection | None:
        """Refuse a handshake from an address that already has too many open websockets."""
        limit = self.settings.connections_per_address
        if limit > 0 and self.per_address[address] >= limit:
            self.limits.hit("connections_per_address", address)
            return Rejection(429, "too_many_connections", f"at most {limit} connections per address")
        return None

    def opened(self, address: str, connection: Swept) -> None:
        self.per_address[address] += 1
        self.sockets.add(connection)

    def closed(self, address: str, connection: Swept) -> None:
        self.per_address[address] -= 1
        if self.per_address[address] <= 0:
            del self.per_address[address]
        self.sockets.discard(connection)

    async def sweep_forever(self) -> None:
        """Ping quiet connections and close idle ones (no input, not even a pong, for `idle_timeout`)."""
        settings = self.settings
        every = min(2.0, settings.idle_timeout / 4, settings.ping_interval / 2 or 2.0)
        while True:
            await asyncio.sleep(every)
            now = asyncio.get_running_loop().time()
            for connection in list(self.sockets):
                connection.sweep(now)

    def track(self, task: asyncio.Future[None]) -> None:
        """Keep a reference to a background task until it ends (no fire-and-forget)."""
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def admit(self, target: str, headers: Mapping[str, str]) -> Admission | Rejection:
        """Decide on a websocket handshake for request-target `target` (path and query)."""
        if self.readiness.shutting_down:
            return Rejection(503, "shutting_down", "the server is restarting; connect again")
        parts = urlsplit(target)
        hocuspocus = self.settings.hocuspocus_path.rstrip("/")
        if hocuspocus and parts.path.rstrip("/") == hocuspocus:  # documents are named in each frame
            query = dict(parse_qsl(parts.query))
            credentials = Credentials.from_request(query, headers, parse_cookies(headers.get("cookie", "")))
            return Admission("hocuspocus", "", Role.NONE, False, "", "", query, credentials=credentials)
        prefix = self.settings.ws_path
        if not parts.path.startswith(prefix):
            return Rejection(404, "not_found", f"websocket endpoint is {prefix}{{document}}")
        try:
            name = normalize_name(unquote(parts.path[len(prefix) :], errors="strict"))
        except (InvalidName, UnicodeDecodeError) as exc:
            return Rejection(400, "invalid_document_name", str(exc))
        query = dict(parse_qsl(parts.query))
        generation = self.guard.generation(name)
        try:
            identity, role = await authorize(
                self.authenticator,
                Credentials.from_request(query, headers, parse_cookies(headers.get("cookie", ""))),
                name,
                Role.VIEWER,
                self.clock(),
            )
        except AuthError as exc:
            return Rejection(exc.status, exc.error, exc.detail)
        if self.registry.is_blocked(name):  # checked after authorizing: says nothing to strangers
            return Rejection(503, "document_busy", "the document is being renamed or deleted; retry")
        if self.readiness.shutting_down:  # again: the shutdown may have begun while authorizing
            return Rejection(503, "shutting_down", "the server is restarting; connect again")
        acks = query.get("acks", "0") in ("1", "true")
        endpoint = "replay" if "replay" in query else "y-websocket"  # `?replay=ID`: a read-only replay room
        return Admission(
            endpoint, name, role, acks, identity.user_id, identity.name, query, identity, generation
        )


def parse_cookies(header: str) -> dict[str, str]:
    cookies = {}
    for part in header.split(";"):
        name, _, value = part.strip().partition("=")
        if name:
            cookies[name] = value
    return cookies
