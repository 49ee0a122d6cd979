"""Raw websocket and HTTP bytes for adversarial tests: hand-built frames, handshakes and close codes."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import socket
import struct
from dataclasses import dataclass

OP_CONT, OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA


def frame(
    payload: bytes,
    opcode: int = OP_BINARY,
    *,
    fin: bool = True,
    masked: bool = True,
    rsv: int = 0,
    declared_length: int | None = None,
) -> bytes:
    """A client frame; `declared_length` lies about the payload length in the header."""
    length = len(payload) if declared_length is None else declared_length
    head = (0x80 if fin else 0) | (rsv & 0x7) << 4 | opcode
    mask_bit = 0x80 if masked else 0
    if length < 126:
        header = struct.pack("!BB", head, mask_bit | length)
    elif length < 65536:
        header = struct.pack("!BBH", head, mask_bit | 126, length)
    else:
        header = struct.pack("!BBQ", head, mask_bit | 127, length)
    if not masked:
        return header + payload
    key = os.urandom(4)
    return header + key + _mask(payload, key)


def _mask(payload: bytes, key: bytes) -> bytes:
    n = len(payload)
    if not n:
        return b""
    repeated = (key * (n // 4 + 1))[:n]
    return (int.from_bytes(payload, "big") ^ int.from_bytes(repeated, "big")).to_bytes(n, "big")


def upgrade_request(target: bytes | str, host: str = "127.0.0.1") -> bytes:
    if isinstance(target, str):
        target = target.encode()
    key = base64.b64encode(os.urandom(16))
    return (
        b"GET " + target + b" HTTP/1.1\r\nHost: " + host.encode() + b"\r\nUpgrade: websocket\r\n"
        b"Connection: Upgrade\r\nSec-WebSocket-Key: " + key + b"\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )


@dataclass
class HttpReply:
    status: int
    headers: dict[str, str]
    body: bytes


async def http_exchange(port: int, request: bytes, timeout: float = 5.0) -> HttpReply:
    """Send raw request bytes, read the response head and (unless it is a 101) its body."""
    async with asyncio.timeout(timeout):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            status, headers = _parse_head(head)
            body = b""
            if status != 101:
                length = headers.get("content-length")
                body = await (reader.readexactly(int(length)) if length else reader.read())
            return HttpReply(status, headers, body)
        finally:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()


def _parse_head(head: bytes) -> tuple[int, dict[str, str]]:
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    headers = {}
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if sep:
            headers[name.strip().lower()] = value.strip()
    return status, headers


class RawWebSocket:
    """A websocket over asyncio streams with full control of the bytes (and of not reading)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @property
    def local_port(self) -> int:
        return int(self.writer.get_extra_info("sockname")[1])

    @classmethod
    async def open(cls, port: int, path: str, *, receive_buffer: int | None = None) -> RawWebSocket:
        """Handshake on `path`; `receive_buffer` shrinks SO_RCVBUF (a reader that stalls sooner)."""
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if receive_buffer is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
        sock.setblocking(False)
        loop = asyncio.get_running_loop()
        try:
            await loop.sock_connect(sock, ("127.0.0.1", port))
        except BaseException:
            sock.close()
            raise
        reader, writer = await asyncio.open_connection(sock=sock, limit=1 << 22)
        writer.write(upgrade_request(path))
        head = await reader.readuntil(b"\r\n\r\n")
        status, _ = _parse_head(head)
        if status != 101:
            writer.close()
            raise ConnectionError(f"handshake refused with HTTP {status}")
        return cls(reader, writer)

    async def send(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def send_message(self, payload: bytes) -> None:
        await self.send(frame(payload))

    async def read_frame(self) -> tuple[int, bytes]:
        """(opcode, payload) of the next server frame (servers do not mask)."""
        first, second = await self.reader.readexactly(2)
        length = second & 0x7F
        if length == 126:
            (length,) = struct.unpack("!H", await self.reader.readexactly(2))
        elif length == 127:
            (length,) = struct.unpack("!Q", await self.reader.readexactly(8))
        return first & 0x0F, await self.reader.readexactly(length)

    async def close_code(self, timeout: float = 10.0) -> int | None:
        """Read until the server's close frame; its code (None: the connection ended without one)."""
        try:
            async with asyncio.timeout(timeout):
                while True:
                    opcode, payload = await self.read_frame()
                    if opcode == OP_CLOSE:
                        return int(struct.unpack("!H", payload[:2])[0]) if len(payload) >= 2 else 1005
        except (asyncio.IncompleteReadError, ConnectionError):
            return None

    async def wait_ended(self, timeout: float = 10.0) -> bool:
        """Whether the server ended the TCP connection (EOF or reset) within `timeout`."""
        try:
            async with asyncio.timeout(timeout):
                while await self.reader.read(1 << 20):
                    pass
        except ConnectionError:
            return True
        except TimeoutError:
            return False
        return True

    async def aclose(self) -> None:
        self.writer.close()
        with contextlib.suppress(OSError):
            await self.writer.wait_closed()


class SilentSocket:
    """A websocket client that completes the handshake and then never reads (a stalled reader).

    Built on a bare non-blocking socket: no asyncio stream buffers what the server sends, so only
    the (shrunken) kernel receive buffer does, and the server's own outbox must absorb the rest.
    """

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock

    @property
    def local_port(self) -> int:
        return int(self.sock.getsockname()[1])

    @classmethod
    async def open(cls, port: int, path: str, receive_buffer: int = 4096) -> SilentSocket:
        loop = asyncio.get_running_loop()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
        sock.setblocking(False)
        try:
            await loop.sock_connect(sock, ("127.0.0.1", port))
            await loop.sock_sendall(sock, upgrade_request(path))
            head = b""
            while b"\r\n\r\n" not in head:  # byte by byte: nothing after the head is consumed
                chunk = await loop.sock_recv(sock, 1)
                if not chunk:
                    raise ConnectionError("closed during the handshake")
                head += chunk
        except BaseException:
            sock.close()
            raise
        status, _ = _parse_head(head)
        if status != 101:
            sock.close()
            raise ConnectionError(f"handshake refused with HTTP {status}")
        return cls(sock)

    async def send(self, data: bytes) -> None:
        await asyncio.get_running_loop().sock_sendall(self.sock, data)

    async def wait_ended(self, timeout: float = 10.0) -> bool:
        """Start reading at last: whether the server ended the connection (EOF/reset) in time."""
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(timeout):
                while await loop.sock_recv(self.sock, 1 << 20):
                    pass
        except ConnectionError:
            return True
        except TimeoutError:
            return False
        return True

    def close(self) -> None:
        self.sock.close()
