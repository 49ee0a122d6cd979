"""Just enough websocket (RFC 6455 client) and y-websocket / Hocuspocus framing for lean load clients."""

from __future__ import annotations

import asyncio
import base64
import os
import struct
from collections.abc import Callable

SYNC, AWARENESS, AUTH, QUERY_AWARENESS = 0, 1, 2, 3
STEP1, STEP2, UPDATE = 0, 1, 2
COCREATE_ACK = 100
HOCUSPOCUS_SYNC_STATUS = 8
EMPTY_UPDATE = b"\x00\x00"
EMPTY_STATE_VECTOR = b"\x00"

UpdateKey = tuple[int, int, int]
"""(kind, client, clock): kind 0 = first struct of the update, 1 = first delete range."""


def var_uint(value: int) -> bytes:
    out = bytearray()
    while value > 0x7F:
        out.append(0x80 | (value & 0x7F))
        value >>= 7
    out.append(value)
    return bytes(out)


def var_bytes(data: bytes) -> bytes:
    return var_uint(len(data)) + data


def read_var_uint(data: bytes, pos: int) -> tuple[int, int]:
    """(value, next position); at most 10 bytes, raises ValueError past the end."""
    value = shift = 0
    for i in range(pos, min(len(data), pos + 10)):
        byte = data[i]
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, i + 1
        shift += 7
    raise ValueError("truncated or overlong varint")


def sync_message(sub: int, payload: bytes) -> bytes:
    return bytes((SYNC, sub)) + var_bytes(payload)


class Dialect:
    """Message bodies for one protocol; Hocuspocus prefixes every message with the document name."""

    def __init__(self, hocuspocus: bool = False, document: str = "") -> None:
        self.hocuspocus = hocuspocus
        self.prefix = var_bytes(document.encode()) if hocuspocus else b""

    def wrap(self, body: bytes) -> bytes:
        return self.prefix + body

    def hello(self) -> list[bytes]:
        """What a client sends first: (Hocuspocus auth +) SyncStep1 with an empty state vector."""
        out = []
        if self.hocuspocus:
            out.append(self.wrap(bytes((AUTH, 0)) + var_bytes(b"")))
        out.append(self.wrap(sync_message(STEP1, EMPTY_STATE_VECTOR)))
        return out

    def update(self, update: bytes) -> bytes:
        return self.wrap(sync_message(UPDATE, update))

    def step2(self, update: bytes) -> bytes:
        return self.wrap(sync_message(STEP2, update))

    def parse(self, message: bytes) -> tuple[int, int, bytes]:
        """(type, sync sub-type or -1, payload) of one incoming message; payload is the rest."""
        pos = 0
        if self.hocuspocus:
            if len(message) == 1:  # ping/pong carry no document name
                return message[0], -1, b""
            length, pos = read_var_uint(message, 0)
            pos += length
        kind, pos = read_var_uint(message, pos)
        if kind == SYNC:
            sub, pos = read_var_uint(message, pos)
            length, pos = read_var_uint(message, pos)
            return kind, sub, message[pos : pos + length]
        return kind, -1, message[pos:]

    def reply(self, message: bytes) -> tuple[list[bytes], bytes | None]:
        """(messages to answer with, update payload carried if any) for one incoming message."""
        kind, sub, payload = self.parse(message)
        if kind == SYNC and sub == STEP1:
            return [self.step2(EMPTY_UPDATE)], None
        if kind == SYNC and sub in (STEP2, UPDATE):
            return [], payload
        if self.hocuspocus and len(message) == 1 and kind == 9:  # ping -> pong
            return [bytes((10,))], None
        return [], None


def primary_key(update: bytes) -> UpdateKey | None:
    """Identity of an update: its first struct id, else its first delete range (None if empty).

    A keystroke from one writer carries one struct or one delete range, so its key is unique in a
    run; a server may re-encode an update, but ids and delete ranges survive re-encoding.
    """
    clients, pos = read_var_uint(update, 0)
    if clients:
        _structs, pos = read_var_uint(update, pos)
        client, pos = read_var_uint(update, pos)
        clock, pos = read_var_uint(update, pos)
        return (0, client, clock)
    clients, pos = read_var_uint(update, pos)
    if not clients:
        return None
    client, pos = read_var_uint(update, pos)
    _ranges, pos = read_var_uint(update, pos)
    clock, pos = read_var_uint(update, pos)
    return (1, client, clock)


_OP_CONT, _OP_TEXT, _OP_BINARY, _OP_CLOSE, _OP_PING, _OP_PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA
MAX_MESSAGE = 64 * 1024 * 1024

MessageHandler = Callable[[bytes], None]


def mask(payload: bytes, key: bytes) -> bytes:
    """XOR `payload` with the 4-byte masking `key` (one big-int operation, fast for any size)."""
    n = len(payload)
    if not n:
        return b""
    repeated = (key * (n // 4 + 1))[:n]
    return (int.from_bytes(payload, "big") ^ int.from_bytes(repeated, "big")).to_bytes(n, "big")


def client_frame(payload: bytes, opcode: int = _OP_BINARY) -> bytes:
    """One masked, unfragmented client frame; callers may build these ahead of a timed window."""
    key = os.urandom(4)
    length = len(payload)
    head = 0x80 | opcode
    if length < 126:
        header = struct.pack("!BB", head, 0x80 | length)
    elif length < 65536:
        header = struct.pack("!BBH", head, 0x80 | 126, length)
    else:
        header = struct.pack("!BBQ", head, 0x80 | 127, length)
    return header + key + mask(payload, key)


class RawWebSocket(asyncio.Protocol):
    """Client end of one websocket. `on_message` gets each complete binary message's payload."""

    def __init__(self, host: str, path: str, on_message: MessageHandler) -> None:
        self.request = (
            f"GET {path} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {base64.b64encode(os.urandom(16)).decode()}\r\n"
            "Sec-WebSocket-Version: 13\r\n\r\n"
        ).encode()
        self.on_message = on_message
        self.transport: asyncio.Transport | None = None
        self.opened: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.closed: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self._buffer = bytearray()
        self._handshaken = False
        self._fragments: list[bytes] = []

    # -- asyncio.Protocol ------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        transport.write(self.request)

    def data_received(self, data: bytes) -> None:
        buffer = self._buffer
        buffer += data
        if not self._handshaken:
            end = buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            status = bytes(buffer[: buffer.find(b"\r\n")])
            del buffer[: end + 4]
            if b" 101 " not in status + b" ":
                self._fail(ConnectionError(f"handshake refused: {status.decode(errors='replace')}"))
                return
            self._handshaken = True
            self.opened.set_result(None)
        self._parse_frames(buffer)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.opened.done():
            self.opened.set_exception(exc or ConnectionError("closed during the handshake"))
        if not self.closed.done():
            self.closed.set_result(1006)

    # -- framing ---------------------------------------------------------------------
    def _parse_frames(self, buffer: bytearray) -> None:
        pos = 0
        size = len(buffer)
        while size - pos >= 2:
            b0 = buffer[pos]
            length = buffer[pos + 1] & 0x7F
            header = 2
            if length == 126:
                if size - pos < 4:
                    break
                length = (buffer[pos + 2] << 8) | buffer[pos + 3]
                header = 4
            elif length == 127:
                if size - pos < 10:
                    break
                length = struct.unpack_from("!Q", buffer, pos + 2)[0]
                header = 10
            if length > MAX_MESSAGE:
                self._fail(ConnectionError(f"frame of {length} bytes"))
                return
            end = pos + header + length
            if end > size:
                break
            payload = bytes(buffer[pos + header : end])
            pos = end
            self._frame(b0 & 0x80, b0 & 0x0F, payload)
        if pos:
            del buffer[:pos]

    def _frame(self, fin: int, opcode: int, payload: bytes) -> None:
        if opcode in (_OP_BINARY, _OP_TEXT):
            if fin:
                self.on_message(payload)
            else:
                self._fragments = [payload]
        elif opcode == _OP_CONT:
            self._fragments.append(payload)
            if fin:
                message, self._fragments = b"".join(self._fragments), []
                self.on_message(message)
        elif opcode == _OP_PING:
            self.send(payload, _OP_PONG)
        elif opcode == _OP_CLOSE:
            code = struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else 1005
            if not self.closed.done():
                self.closed.set_result(code)
                self.send(payload[:2], _OP_CLOSE)
            if self.transport is not None:
                self.transport.close()

    # -- output ----------------------------------------------------------------------
    def send(self, payload: bytes, opcode: int = _OP_BINARY) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(client_frame(payload, opcode))

    def write_prebuilt(self, frame: bytes) -> None:
        """Write a frame made earlier by `client_frame` (keeps masking out of a timed window)."""
        if self.transport is not None:
            self.transport.write(frame)

    def close(self, code: int = 1000) -> None:
        if self.transport is None or self.transport.is_closing():
            return
        if not self.closed.done():
            self.closed.set_result(code)
        self.send(struct.pack("!H", code), _OP_CLOSE)
        self.transport.close()

    def _fail(self, exc: Exception) -> None:
        if not self.opened.done():
            self.opened.set_exception(exc)
        if self.transport is not None:
            self.transport.abort()


async def open_websocket(
    host: str,
    port: int,
    path: str,
    on_message: MessageHandler,
    timeout: float = 10.0,
    bind: Callable[[RawWebSocket], None] | None = None,
) -> RawWebSocket:
    """Connect to ws://host:port/path (loopback only) and complete the opening handshake.

    `bind` gets the protocol before any byte arrives, so a handler can answer the server's first
    message even when it comes in the same segment as the handshake response.
    """
    if host not in ("127.0.0.1", "localhost", "::1"):
        raise ValueError("benchmark clients connect to loopback only")
    loop = asyncio.get_running_loop()

    def factory() -> RawWebSocket:
        protocol = RawWebSocket(f"{host}:{port}", path, on_message)
        if bind is not None:
            bind(protocol)
        return protocol

    _, protocol = await asyncio.wait_for(loop.create_connection(factory, host, port), timeout)
    await asyncio.wait_for(protocol.opened, timeout)
    return protocol
