"""Server-side websocket frames encoded once, to be written as-is to every receiving transport."""

from __future__ import annotations

import struct
from collections.abc import Iterable
from typing import Protocol

from crdt.messages import Message, encode_message

_OP_BINARY = 0x82  # FIN + binary opcode


def binary_frame(payload: bytes) -> bytes:
    """An unmasked, unfragmented binary frame (RFC 6455 §5.2) carrying `payload`."""
    length = len(payload)
    if length < 126:
        return bytes((_OP_BINARY, length)) + payload
    if length < 65536:
        return struct.pack("!BBH", _OP_BINARY, 126, length) + payload
    return struct.pack("!BBQ", _OP_BINARY, 127, length) + payload


def message_frame(message: Message) -> bytes:
    return binary_frame(encode_message(message))


class FrameSink(Protocol):
    """A connection as fan-out sees it: the prefix its protocol puts before each message, and a writer."""

    @property
    def prefix(self) -> bytes: ...

    def write_frame(self, frame: bytes) -> None: ...


def broadcast(peers: Iterable[FrameSink], payload: bytes, exclude: object = None) -> int:
    """Write `payload` to every peer but `exclude`, framed once per distinct prefix (in practice once);
    returns how many peers it was written to."""
    frames: dict[bytes, bytes] = {}
    delivered = 0
    for peer in peers:
        if peer is not exclude:
            frame = frames.get(peer.prefix)
            if frame is None:
                frame = frames[peer.prefix] = binary_frame(peer.prefix + payload)
            peer.write_frame(frame)
            delivered += 1
    return delivered
