"""Server-side websocket frames encoded once, to be written as-is to every receiving transport."""

from __future__ import annotations

import struct

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
