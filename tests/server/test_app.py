"""The wiring's socket and HTTP protocol: no Nagle on accepted connections, no state kept past an upgrade."""

from __future__ import annotations

import asyncio
import gc
import socket
import weakref

import uvicorn
from starlette.types import Receive, Scope, Send
from websockets.asyncio.client import connect

from server.app import FirstRequestTimeout, bind_socket


async def test_accepted_connections_have_tcp_nodelay() -> None:
    """Without TCP_NODELAY a second small frame to a client waits for its delayed ACK (~40 ms):
    measured as a p99 of 42 ms instead of 4 ms with 10 typists in one room (benchmarks fanout)."""
    accepted: asyncio.Queue[int] = asyncio.Queue()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        sock = writer.get_extra_info("socket")
        accepted.put_nowait(sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
        writer.close()

    listener = bind_socket("127.0.0.1", 0)
    server = await asyncio.start_server(handle, sock=listener)
    try:
        host, port = listener.getsockname()[:2]
        _, writer = await asyncio.open_connection(host, port)
        assert await asyncio.wait_for(accepted.get(), 5) != 0
        writer.close()
    finally:
        server.close()
        await server.wait_closed()


async def test_a_websocket_upgrade_releases_the_http_protocol_at_once() -> None:
    """The websocket protocol takes the transport over, so the HTTP protocol never hears
    `connection_lost`: its first-request timer must be cancelled at the upgrade, or it keeps every
    closed connection's HTTP state alive for `handshake_timeout` (soak: ~1,100 of them at 114/s)."""
    alive: list[weakref.ref[FirstRequestTimeout]] = []
    closed = asyncio.Event()

    class Tracked(FirstRequestTimeout):
        handshake_timeout = 3600.0

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            alive.append(weakref.ref(self))
            super().connection_made(transport)

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await receive()  # websocket.connect
        await send({"type": "websocket.accept"})
        await receive()  # websocket.disconnect
        closed.set()

    config = uvicorn.Config(
        app, http=Tracked, ws="websockets", lifespan="off", log_config=None, access_log=False
    )
    server = uvicorn.Server(config)
    listener = bind_socket("127.0.0.1", 0)
    serving = asyncio.create_task(server.serve(sockets=[listener]))
    try:
        async with asyncio.timeout(10):  # the socket listens already: the connection waits in its backlog
            port = listener.getsockname()[1]
            async with connect(f"ws://127.0.0.1:{port}/"):
                pass
            await closed.wait()
        gc.collect()
        assert len(alive) == 1
        assert alive[0]() is None, "the upgraded connection's HTTP protocol is still referenced"
    finally:
        server.should_exit = True
        await asyncio.wait_for(serving, 10)
