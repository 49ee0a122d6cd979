"""Wiring: builds storage, rooms, hub, the starlette app and the uvicorn server from `Settings`."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import gc
import logging
import socket
import time
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

import uvicorn
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.routing import Route
from uvicorn.protocols.http.h11_impl import H11Protocol

from persistence.access import access_store_for
from persistence.base import Storage, StorageError
from persistence.factory import open_storage
from persistence.history import history_store_for
from server import (
    access_api,
    comments_api,
    documents_api,
    history_api,
    http,
    offload,
    ops_api,
    web,
    webhooks_api,
)
from server.access import MIN_SECRET_BYTES, TokenAuthenticator
from server.auth import Authenticator, LocalAuthenticator
from server.events import EventBus
from server.hocuspocus import HocuspocusEndpoint
from server.http import HTTPError, JSONResponse, error
from server.hub import Hub
from server.limits import LimitCounters
from server.presence import PresenceRecorder
from server.replay import replays_for
from server.replay_channel import replay_channel
from server.rooms import RoomRegistry
from server.settings import Settings
from server.transport import ChannelFactory, WebSocketConnection
from server.webhooks import webhooks_for
from server.ywebsocket import YWebSocketPeer

if TYPE_CHECKING:
    from server.cluster.node import Cluster

log = logging.getLogger("cocreate")

ROUTE_MODULES = [http, ops_api, documents_api, access_api, comments_api, history_api, webhooks_api, web]


def build(
    settings: Settings, storage: Storage | None = None, *, opened: bool = False
) -> tuple[Starlette, Hub]:
    """The ASGI app and the hub its websocket transport talks to (`opened`: the storage is open
    already, the lifespan does not open it again)."""
    store = storage if storage is not None else open_storage(settings.resolved_database_url())
    events = EventBus()
    registry = RoomRegistry(store, settings, time.time, events)
    presence = registry.presence = PresenceRecorder(history_store_for(store), time.time)
    access = access_store_for(store)
    authenticator: Authenticator
    if settings.secret:
        authenticator = TokenAuthenticator(settings.secret, access)
        if len(settings.secret.encode()) < MIN_SECRET_BYTES:
            log.warning("the secret is shorter than %d bytes: tokens are easier to forge", MIN_SECRET_BYTES)
    else:
        authenticator = LocalAuthenticator()
        log.warning(
            "LOCAL MODE: no secret configured, every connection is a local user with full rights. "
            "Do not expose this server beyond your own machine."
        )
    hub = Hub(registry, settings, store, authenticator, events, time.time, access)
    hub.readiness.add("database", store.ping)
    ops_api.register_server_metrics(hub)
    cluster = _join_cluster(settings, hub)
    if cluster is not None:
        _watch_cluster(cluster, hub)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        if not opened:
            await store.open()
        if cluster is not None:
            await cluster.start()
        freeze_startup_heap()
        sweeper = asyncio.create_task(hub.sweep_forever(), name="sweeper")
        await webhooks_for(hub).start()
        try:
            yield
        finally:
            hub.readiness.shutting_down = True
            sweeper.cancel()
            await registry.close()
            await webhooks_for(hub).close(settings.close_timeout)
            if cluster is not None:
                await cluster.close()
            replays_for(hub).close()
            await presence.drain()
            await store.close()
            offload.shutdown()

    async def http_exception(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, HTTPException)
        return error(exc.status_code, "http_error", str(exc.detail))

    async def route_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, HTTPError)
        return exc.response()

    async def storage_error(request: Request, exc: Exception) -> JSONResponse:
        hub.metrics.storage_errors["http"].inc()
        log.error("storage failed during %s %s: %s", request.method, request.url.path, exc)
        return error(503, "storage_unavailable", "the database is unavailable; try again")

    app = Starlette(
        routes=all_routes(hub),
        lifespan=lifespan,
        exception_handlers={
            HTTPException: http_exception,
            HTTPError: route_error,
            StorageError: storage_error,
        },
    )
    return app, hub


def _join_cluster(settings: Settings, hub: Hub) -> Cluster | None:
    """Cluster mode when a Redis URL is set; the Redis client is not even imported otherwise."""
    if not settings.redis_url:
        return None
    from server.cluster.wiring import join_cluster

    return join_cluster(settings.redis_url, hub.registry, hub.events, hub.guard)


def _watch_cluster(cluster: Cluster, hub: Hub) -> None:
    """Redis in /readyz, and the relay's counters and lag in /metrics."""

    async def redis_answers() -> None:
        if not await cluster.ping():
            raise ConnectionError("redis does not answer")

    hub.readiness.add("redis", redis_answers)
    stats = cluster.stats
    metrics = hub.metrics
    metrics.gauge_from("cocreate_redis_lag_seconds", "age of the last record read from Redis when read",
                       lambda: stats.lag_ms / 1000)  # fmt: skip
    metrics.counter_from("cocreate_redis_published", "committed batches and presence published to Redis",
                         lambda: stats.published)  # fmt: skip
    metrics.counter_from("cocreate_redis_publish_failures", "records that could not be published (the log "
                         "catch-up delivers them)", lambda: stats.publish_failures)  # fmt: skip
    metrics.counter_from("cocreate_redis_received", "records read from other nodes", lambda: stats.received)
    metrics.counter_from("cocreate_redis_outages", "Redis connections lost", lambda: stats.outages)


def freeze_startup_heap() -> None:
    """Move everything alive after start-up (modules, SQLAlchemy's metadata, routes) out of the
    cyclic collector's reach: a full collection then scans only what rooms and connections
    allocate, which keeps its pause (measured ~70-120 ms on a busy server) from stalling every room."""
    gc.collect()
    gc.freeze()


def all_routes(hub: Hub) -> list[Route]:
    """Every module's routes; document sub-resources (`.../{name:path}/-/...`) before the catch-alls."""
    routes = [route for module in ROUTE_MODULES for route in module.routes(hub)]
    return sorted(routes, key=lambda route: "/-/" not in route.path)


def channels(hub: Hub) -> dict[str, ChannelFactory]:
    """The wire protocols the websocket edge speaks, by `Admission.endpoint`."""
    return {
        "y-websocket": lambda connection, admission: YWebSocketPeer(connection, admission, hub),
        "hocuspocus": HocuspocusEndpoint(hub),
        "replay": replay_channel(hub),
    }


class FirstRequestTimeout(H11Protocol):
    """uvicorn's HTTP protocol, plus a deadline for the first request: a client that connects and
    never completes a request (a half-open handshake) is dropped after `handshake_timeout`."""

    handshake_timeout = 10.0
    limits: LimitCounters | None = None  # the hub's counters (set with the timeout in `serve`)

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._first_request = self.loop.call_later(self.handshake_timeout, self._first_request_expired)

    def _first_request_expired(self) -> None:
        transport = self.transport
        idle = self.cycle is None and self.timeout_keep_alive_task is None  # no request ever started
        if idle and transport.get_protocol() is self and not transport.is_closing():
            if self.limits is not None:
                peer = self.client[0] if self.client else "-"
                self.limits.hit(
                    "handshake_timeout", f"no HTTP request within {self.handshake_timeout:g}s peer={peer}"
                )
            transport.abort()

    def handle_websocket_upgrade(self, event: Any) -> None:
        # The websocket protocol takes the transport over: this protocol never hears connection_lost,
        # and an armed timer would keep it (scope, headers, h11 state) alive for `handshake_timeout`.
        self._first_request.cancel()
        super().handle_websocket_upgrade(event)

    def connection_lost(self, exc: Exception | None) -> None:
        self._first_request.cancel()
        super().connection_lost(exc)


class GracefulServer(uvicorn.Server):
    """uvicorn's server, whose shutdown (SIGTERM, SIGINT) first turns readiness off, stops accepting
    and reading, lets every room commit and acknowledge what it received, then closes each websocket
    with 1012 "server restarting" (uvicorn's own shutdown then closes the rest and the lifespan)."""

    def __init__(self, config: uvicorn.Config, hub: Hub) -> None:
        super().__init__(config)
        self.hub = hub

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        hub = self.hub
        hub.readiness.shutting_down = True
        for server in self.servers:
            server.close()
        for sock in sockets or []:
            sock.close()
        connections: list[Any] = list(self.server_state.connections)  # typed as uvicorn's own protocols
        websockets = [c for c in connections if isinstance(c, WebSocketConnection)]
        log.info("shutting down: committing and closing %d websocket connection(s)", len(websockets))
        for connection in websockets:
            connection.stop_reading()
        started = time.monotonic()
        await hub.registry.close()  # each room: commit, acknowledge, close its peers with 1012
        for connection in websockets:
            connection.shutdown()  # Hocuspocus sockets, replays, handshakes in flight
        log.info("rooms flushed in %.3fs", time.monotonic() - started)
        await super().shutdown(sockets)


def bind_socket(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # proto IPPROTO_TCP (not 0): asyncio sets TCP_NODELAY only on sockets that say they are TCP, and
    # accepted sockets inherit it. With Nagle on, a second small frame to a client waits for the
    # client's delayed ACK: ~40 ms stalls whenever several writers type into one room.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(2048)
    sock.setblocking(False)
    return sock


async def serve(settings: Settings, storage: Storage | None = None, **uvicorn_options: Any) -> None:
    """Run the server until SIGINT/SIGTERM; prints the bound address once listening.

    The storage is opened (schema checked or migrated) before anything listens: a database this
    build cannot use raises `StorageError` (`SchemaMismatch` for an unknown schema) from here.
    """
    store = storage if storage is not None else open_storage(settings.resolved_database_url())
    try:
        await store.open()
    except BaseException:
        await store.close()  # its pooled connection too: SQLite then leaves no -wal/-shm behind
        raise
    try:
        app, hub = build(settings, store, opened=True)
    except BaseException:
        await store.close()
        raise
    http_protocol = type(
        "HTTPProtocol",
        (FirstRequestTimeout,),
        {"handshake_timeout": settings.handshake_timeout, "limits": hub.limits},
    )
    config = uvicorn.Config(
        app,
        http=http_protocol,
        ws=functools.partial(WebSocketConnection, hub=hub, channels=channels(hub)),  # type: ignore[arg-type]
        lifespan="on",
        log_config=None,
        access_log=False,
        ws_max_size=settings.max_message_size,
        timeout_graceful_shutdown=max(1, round(settings.close_timeout)),
        **uvicorn_options,
    )
    server = GracefulServer(config, hub)
    sock = bind_socket(settings.host, settings.port)
    host, port = sock.getsockname()[:2]
    log.info("cocreate listening on http://%s:%d (database %s)", host, port, _redact(settings))
    print(f"listening on http://{host}:{port}", flush=True)
    await server.serve(sockets=[sock])


def _redact(settings: Settings) -> str:
    url = settings.resolved_database_url()
    if "@" in url:
        scheme, rest = url.split("://", 1)
        return f"{scheme}://***@{rest.split('@', 1)[1]}"
    return url
