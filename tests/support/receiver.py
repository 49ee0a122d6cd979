"""A tiny HTTP/1.1 webhook receiver for tests (h11 over asyncio, on 127.0.0.1): records what arrives,
answers each request with the next planned status, or never answers (`None`)."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import ssl
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import h11


@dataclass(frozen=True)
class Received:
    target: str
    headers: dict[str, str]  # lower-case names
    body: bytes

    @property
    def json(self) -> Any:
        return json.loads(self.body)

    def signed_with(self, secret: str) -> bool:
        """What a receiver must do: recompute the HMAC of the raw body, compare in constant time."""
        expected = "sha256=" + hmac.new(secret.encode(), self.body, hashlib.sha256).hexdigest()
        return hmac.compare_digest(expected, self.headers.get("x-cocreate-signature", ""))


class Receiver:
    def __init__(self, replies: Iterable[int | None] = (), default: int | None = 200) -> None:
        self.replies = list(replies)
        self.default = default
        self.received: asyncio.Queue[Received] = asyncio.Queue()
        self.log: list[Received] = []
        self.hanging = asyncio.Event()  # set once a request is being left without an answer
        self._release = asyncio.Event()
        self._server: asyncio.Server | None = None
        self.port = 0

    async def start(self, tls: ssl.SSLContext | None = None) -> Receiver:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0, ssl=tls)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    def url(self, path: str = "/hook", scheme: str = "http", host: str = "127.0.0.1") -> str:
        return f"{scheme}://{host}:{self.port}{path}"

    async def close(self) -> None:
        self._release.set()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def next(self, timeout: float = 10.0) -> Received:
        return await asyncio.wait_for(self.received.get(), timeout)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await self._answer(reader, writer)
        except (ConnectionError, h11.ProtocolError, ssl.SSLError):
            pass
        finally:
            writer.close()

    async def _answer(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connection = h11.Connection(h11.SERVER)
        request: h11.Request | None = None
        body = b""
        while True:
            event = connection.next_event()
            if event is h11.NEED_DATA:
                data = await reader.read(65536)
                if not data:
                    return
                connection.receive_data(data)
            elif isinstance(event, h11.Request):
                request = event
            elif isinstance(event, h11.Data):
                body += bytes(event.data)
            elif isinstance(event, h11.EndOfMessage):
                break
            else:
                return
        assert request is not None
        headers = {name.decode().lower(): value.decode() for name, value in request.headers}
        received = Received(request.target.decode(), headers, body)
        self.log.append(received)
        self.received.put_nowait(received)
        status = self.replies.pop(0) if self.replies else self.default
        if status is None:
            self.hanging.set()
            await self._release.wait()
            return
        extra = [("location", "http://127.0.0.1:1/elsewhere")] if 300 <= status < 400 else []
        content = b"" if status in (204, 304) else b"ok"
        length = [] if status in (204, 304) else [("content-length", str(len(content)))]
        response = h11.Response(status_code=status, headers=[*length, *extra])
        writer.write(connection.send(response) or b"")
        if content:
            writer.write(connection.send(h11.Data(data=content)) or b"")
        writer.write(connection.send(h11.EndOfMessage()) or b"")
        with contextlib.suppress(ConnectionError):
            await writer.drain()
