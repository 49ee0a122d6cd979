"""The wiring: no Nagle on accepted connections, no HTTP state kept past an upgrade, and `serve`
refusing an unusable database before listening."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import socket
import sqlite3
import subprocess
import sys
import weakref
from pathlib import Path

import uvicorn
from starlette.types import Receive, Scope, Send
from websockets.asyncio.client import connect

from persistence.sql import SqlStorage
from persistence.sql.schema import head_revision
from persistence.sql.tables import VERSION_TABLE
from server.app import FirstRequestTimeout, bind_socket
from tests.support.server_process import ROOT


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


def test_serve_refuses_a_newer_schema_in_one_line_before_listening(tmp_path: Path) -> None:
    """No "listening on" and no traceback: one line saying what was found, what this build
    supports and that nothing changed; exit status 2; the file's bytes untouched."""
    path = tmp_path / "cocreate.db"
    asyncio.run(_cocreate_database(path))
    with contextlib.closing(sqlite3.connect(path)) as db, db:
        db.execute(f"UPDATE {VERSION_TABLE} SET version_num = '9999_from_the_future'")
    before = path.read_bytes()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cocreate.db"]

    args = ["serve", "--host", "127.0.0.1", "--port", "0", "--data-dir", str(tmp_path)]
    result = subprocess.run(
        [sys.executable, "-m", "server.cli", *args, "--db", f"sqlite:///{path}"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    lines = [line for line in (result.stdout + result.stderr).splitlines() if line.strip()]
    assert result.returncode == 2, lines
    assert len(lines) == 1, lines
    assert "9999_from_the_future" in lines[0]
    assert f"supports schema versions up to {head_revision()}" in lines[0]
    assert "Nothing was changed" in lines[0]
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cocreate.db"]


async def _cocreate_database(path: Path) -> None:
    storage = SqlStorage(f"sqlite+aiosqlite:///{path}")
    await storage.open()
    await storage.create_document("kept", 1.0)
    await storage.close()


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
