"""The websocket transport keeps nothing of a connection once it is closed."""

from __future__ import annotations

import asyncio
import functools
import gc
import weakref
from typing import Any

import uvicorn
from websockets.asyncio.client import connect

from persistence.memory import MemoryStorage
from server.app import FirstRequestTimeout, bind_socket, build, channels
from server.settings import Settings
from server.transport import WebSocketConnection


async def test_a_closed_connection_leaves_nothing_behind() -> None:
    """Closing arms an abort deadline (`close_timeout`) for a peer that never completes the close;
    once the connection is lost the deadline must go, or it keeps the transport (socket, buffers)
    alive for `close_timeout` after every close (soak: ~600 transports at 114 connections/s)."""
    settings = Settings(close_timeout=3600.0, handshake_timeout=3600.0)
    storage = MemoryStorage()
    app, hub = build(settings, storage)
    transports: list[weakref.ref[Any]] = []
    lost = asyncio.Event()

    class Watched(WebSocketConnection):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            transports.append(weakref.ref(transport))
            super().connection_made(transport)

        def connection_lost(self, exc: Exception | None) -> None:
            super().connection_lost(exc)
            lost.set()

    ws = functools.partial(Watched, hub=hub, channels=channels(hub))
    config = uvicorn.Config(
        app,
        http=FirstRequestTimeout,
        ws=ws,
        lifespan="off",
        log_config=None,
        access_log=False,  # type: ignore[arg-type]
    )
    server = uvicorn.Server(config)
    listener = bind_socket("127.0.0.1", 0)
    await storage.open()
    serving = asyncio.create_task(server.serve(sockets=[listener]))
    try:
        async with asyncio.timeout(10):  # the socket listens already: the connection waits in its backlog
            port = listener.getsockname()[1]
            async with connect(f"ws://127.0.0.1:{port}/ws/notes") as client:
                await client.recv()  # joined: the server's first sync message
            await lost.wait()
        gc.collect()
        assert len(transports) == 1
        assert transports[0]() is None, "the closed connection's transport is still referenced"
    finally:
        server.should_exit = True
        await asyncio.wait_for(serving, 10)
        await hub.registry.close()
        await storage.close()
