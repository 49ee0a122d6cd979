"""Hostile Hocuspocus sockets against a real server: bad document names, frames for documents never
authenticated, floods of pending documents. Each gets a clear error; the server and others go on."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from pycrdt import Doc, Text
from websockets.asyncio.client import ClientConnection
from websockets.asyncio.client import connect as ws_connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from client import connect
from crdt.hocuspocus import (
    Authenticated,
    DocumentMessage,
    Envelope,
    PermissionDenied,
    Sender,
    SyncStatus,
    Token,
    decode_frame,
    encode_body,
    encode_frame,
)
from crdt.messages import SyncStep1, SyncStep2, SyncUpdate
from server.auth import Role
from server.settings import Settings
from server.tokens import issue
from tests.support.server_process import ServerProcess, running_server

PENDING_DOCUMENTS_CAP = Settings().hocuspocus_pending_documents


class Raw:
    """A hand-driven Hocuspocus socket."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.received: list[Envelope] = []

    async def send(self, address: str, message: DocumentMessage) -> None:
        await self.ws.send(encode_frame(Envelope(address, message)))

    async def expect(self, predicate: Callable[[Envelope], bool], timeout: float = 5.0) -> Envelope:
        async with asyncio.timeout(timeout):
            while True:
                for envelope in self.received:
                    if predicate(envelope):
                        return envelope
                frame = decode_frame(await self.ws.recv(decode=False), Sender.SERVER)
                if isinstance(frame, Envelope):
                    self.received.append(frame)

    async def close_code(self, timeout: float = 5.0) -> int | None:
        with contextlib.suppress(ConnectionClosed):
            async with asyncio.timeout(timeout):
                while True:
                    await self.ws.recv()
        return self.ws.close_code


@contextlib.asynccontextmanager
async def raw(server: ServerProcess) -> AsyncIterator[Raw]:
    async with ws_connect(f"ws://127.0.0.1:{server.port}/hocuspocus", max_size=None) as ws:
        yield Raw(ws)


def update(text: str) -> bytes:
    doc: Doc[Any] = Doc()
    doc.get("t", type=Text).insert(0, text)
    return doc.get_update()


async def open_document(client: Raw, name: str) -> None:
    await client.send(name, Token(""))
    await client.send(name, SyncStep1(b"\x00"))
    await client.expect(lambda e: e.address == name and isinstance(e.message, SyncStep2))


@pytest.mark.parametrize(
    ("address", "code", "reason"),
    [
        (b"\x90\x0f" + b"n" * 2000, 1009, "document name too long"),  # over the 1024-byte cap
        (b"\x03\xff\xfe\xfd", 1002, "UTF-8"),
        (b"\x85", 1002, "past the end"),  # a length past the end of the frame
    ],
)
async def test_undecodable_addresses_close_the_socket(
    server: ServerProcess, address: bytes, code: int, reason: str
) -> None:
    async with raw(server) as honest:
        await open_document(honest, "honest")
        async with raw(server) as hostile:
            await hostile.ws.send(address + encode_body(Token("")))
            assert await hostile.close_code() == code
            assert reason in (hostile.ws.close_reason or "")
        await honest.send("honest", SyncUpdate(update("still here")))
        await honest.expect(lambda e: e.message == SyncStatus(True))


@pytest.mark.parametrize("name", ["", "a//b", "../etc", "x" * 300, "bell\x07", "doc\x00"])
async def test_invalid_names_get_permission_denied(server: ServerProcess, name: str) -> None:
    async with raw(server) as client:
        await client.send(name, Token(""))
        denied = await client.expect(lambda e: e.address == name)
        assert isinstance(denied.message, PermissionDenied) and "invalid" in denied.message.reason
        await open_document(client, "valid/after")  # the socket is still usable


async def test_frames_for_unauthenticated_documents_are_never_applied(server: ServerProcess) -> None:
    async with raw(server) as sneaky:
        for i in range(20):
            await sneaky.send("target", SyncUpdate(update(f"sneaky {i}")))
        await open_document(sneaky, "other")  # frames in order: the sneaky ones were seen by now
    doc: Doc[Any] = Doc()
    async with connect(server.ws("target"), doc):
        assert str(doc.get("t", type=Text)) == ""


async def test_a_flood_of_pending_documents_closes_only_that_socket(server: ServerProcess) -> None:
    doc: Doc[Any] = Doc()
    async with connect(server.ws("bystander"), doc) as bystander:
        async with raw(server) as flooder:
            for i in range(PENDING_DOCUMENTS_CAP + 1):  # no more: a closed socket resets on more input
                await flooder.send(f"pending/{i}", SyncStep1(b"\x00"))
            assert await flooder.close_code() == 1008
            assert "awaiting authentication" in (flooder.ws.close_reason or "")
        doc.get("t", type=Text).insert(0, "unaffected")
        await bystander.flushed()
        assert bystander.connections == 1
    assert server.alive()


async def test_auth_then_queued_frames_apply_in_order(server: ServerProcess) -> None:
    async with raw(server) as client:
        await client.send("ordered", Token(""))
        await client.send("ordered", SyncStep1(b"\x00"))
        await client.send("ordered", SyncUpdate(update("queued")))
        first = await client.expect(lambda e: True)
        assert first.message == Authenticated("read-write")
        await client.expect(lambda e: e.message == SyncStatus(True))


async def test_paths_other_than_the_endpoint_are_not_hocuspocus(server: ServerProcess) -> None:
    with pytest.raises(InvalidStatus) as refused:
        async with ws_connect(f"ws://127.0.0.1:{server.port}/hocuspocus/doc"):
            pass
    assert refused.value.response.status_code == 404
    async with ws_connect(f"ws://127.0.0.1:{server.port}/hocuspocus/") as ws:  # trailing slash: same
        await ws.send(encode_frame(Envelope("slash", Token(""))))
        assert decode_frame(await ws.recv(decode=False), Sender.SERVER) == Envelope(
            "slash", Authenticated("read-write")
        )


async def test_an_edit_is_logged_with_the_authenticated_user_as_author(tmp_path: Path) -> None:
    secret = "hocuspocus-author-secret-0123456789abcdef"
    with running_server(tmp_path, None, "--secret", secret) as server:
        token = issue("ada", "Ada", {"*": Role.EDITOR}, now=time.time(), ttl=600, secret=secret)
        async with raw(server) as client:
            await client.send("authored", Token(token))
            await client.send("authored", SyncStep1(b"\x00"))
            await client.expect(lambda e: e.message == Authenticated("read-write"))
            await client.send("authored", SyncUpdate(update("by ada")))
            await client.expect(lambda e: e.message == SyncStatus(True))  # committed
        path = server.db_url.split(":///", 1)[1]
        with contextlib.closing(sqlite3.connect(path)) as db:
            rows = db.execute(
                "SELECT author FROM updates JOIN documents ON documents.id = updates.document_id "
                "WHERE documents.name = 'authored'"
            ).fetchall()
        assert rows == [("ada",)]
