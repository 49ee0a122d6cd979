"""Bad input closes only the offending connection, with a clear close code, and changes no data."""

from __future__ import annotations

import asyncio
import contextlib
import http.client
import json
import sqlite3

import pytest
from pycrdt import Doc, Text
from websockets.asyncio.client import connect as ws_connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from client import connect
from crdt.messages import SyncUpdate, encode_message
from tests.support.server_process import ServerProcess


async def close_code_after(url: str, frame: bytes | str) -> int | None:
    return (await closed_after(url, frame))[0]


async def closed_after(url: str, frame: bytes | str) -> tuple[int | None, int]:
    """Send `frame` on a new connection: the close code the server answers with, and our local port."""
    async with ws_connect(url, max_size=None, compression=None) as ws:
        port = int(ws.local_address[1])
        await ws.send(frame)
        try:
            async with asyncio.timeout(5):
                while True:
                    await ws.recv()
        except ConnectionClosed:
            pass
        return ws.close_code, port


def log_rows(server: ServerProcess, name: str) -> int:
    """Rows of document `name` in the update log, read straight from the SQLite file."""
    with contextlib.closing(sqlite3.connect(server.db_url.split(":///", 1)[1])) as conn:
        row = conn.execute(
            "SELECT count(*) FROM updates JOIN documents ON documents.id = updates.document_id "
            "WHERE documents.name = ?",
            (name,),
        ).fetchone()
    return int(row[0])


@pytest.mark.parametrize(
    ("frame", "code"),
    [
        (b"\x00\x02\x05ab", 1002),  # length past the end
        (b"\x00\x02" + b"\xff" * 20, 1002),  # varint longer than 10 bytes
        (b"\x09", 1003),  # unknown message type
        (b"\x00\x07\x00", 1003),  # unknown sync sub-type
        (b"\x64\x01", 1003),  # a server-only message (ack) from a client
        ("hello", 1003),  # text frame
        (encode_message(SyncUpdate(b"\x01\x01")), 1007),  # truncated update refused by the validator
    ],
)
async def test_malformed_messages_close_only_that_connection(
    server: ServerProcess, frame: bytes | str, code: int
) -> None:
    url = server.ws("bad/input")
    doc: Doc = Doc()
    async with connect(url, doc) as honest:
        doc.get("t", type=Text).insert(0, "kept")
        await honest.flushed()
        rows = log_rows(server, "bad/input")
        assert rows > 0
        closed_with, port = await closed_after(url, frame)
        assert closed_with == code
        logged = rf"close conn=\d+ doc='bad/input' .*peer=127\.0\.0\.1:{port} code={code}\b"
        assert await asyncio.to_thread(server.wait_for_log, logged), server.log_text()[-2000:]
        assert log_rows(server, "bad/input") == rows  # nothing of the bad frame was stored
        doc.get("t", type=Text).insert(4, " and more")
        await honest.flushed()
        assert honest.connections == 1  # the honest client was never disconnected
    late: Doc = Doc()
    async with connect(url, late):
        assert str(late.get("t", type=Text)) == "kept and more"


async def test_oversized_message_closes_1009(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from tests.support.server_process import running_server

    with running_server(tmp_path, None, "--max-message-size", "65536") as small:
        code = await close_code_after(small.ws("big"), encode_message(SyncUpdate(b"x" * 70_000)))
        assert code == 1009


@pytest.mark.parametrize(
    "path",
    ["/ws/", "/ws/a//b", "/ws/a/../b", "/ws/%00x", "/ws/" + "n" * 300, "/ws/a/%2e%2e/b", "/ws/%ff%fe"],
)
async def test_bad_document_names_are_refused_at_the_handshake(server: ServerProcess, path: str) -> None:
    with pytest.raises(InvalidStatus) as refused:
        async with ws_connect(f"ws://127.0.0.1:{server.port}{path}"):
            pass
    assert refused.value.response.status_code == 400
    assert json.loads(refused.value.response.body)["error"] == "invalid_document_name"


async def test_unknown_websocket_path_is_404(server: ServerProcess) -> None:
    with pytest.raises(InvalidStatus) as refused:
        async with ws_connect(f"ws://127.0.0.1:{server.port}/elsewhere"):
            pass
    assert refused.value.response.status_code == 404


def test_healthz(server: ServerProcess) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
    connection.request("GET", "/healthz")
    response = connection.getresponse()
    assert response.status == 200
    assert json.loads(response.read())["status"] == "ok"
