"""Typed y-websocket messages (plus cocreate's extensions) and their byte codec; one message per frame."""

from __future__ import annotations

from dataclasses import dataclass

from crdt.errors import DecodeError, UnsupportedMessage
from crdt.lib0 import Decoder, encode_var_bytes, encode_var_string, encode_var_uint

# Top-level message types (y-protocols / y-websocket).
MESSAGE_SYNC = 0
MESSAGE_AWARENESS = 1
MESSAGE_AUTH = 2
MESSAGE_QUERY_AWARENESS = 3
# cocreate extensions: outside the y-websocket range, only sent to clients that ask (see PROTOCOL.md).
MESSAGE_ACK = 100
MESSAGE_REFUSED = 101
MESSAGE_EPOCH = 102
MESSAGE_EVENT = 103

# Sync sub-types.
SYNC_STEP1 = 0
SYNC_STEP2 = 1
SYNC_UPDATE = 2

AUTH_PERMISSION_DENIED = 0


@dataclass(frozen=True, slots=True)
class SyncStep1:
    """Here is my state vector: send me what I am missing."""

    state_vector: bytes


@dataclass(frozen=True, slots=True)
class SyncStep2:
    """The answer to a SyncStep1: an update holding everything the asker lacks."""

    update: bytes


@dataclass(frozen=True, slots=True)
class SyncUpdate:
    """An incremental document update."""

    update: bytes


@dataclass(frozen=True, slots=True)
class AwarenessMessage:
    """An encoded awareness update (presence: cursors, names)."""

    payload: bytes


@dataclass(frozen=True, slots=True)
class AuthDenied:
    """Server to client: permission denied, followed by a close."""

    reason: str


@dataclass(frozen=True, slots=True)
class QueryAwareness:
    """Client asks for every known awareness state."""


@dataclass(frozen=True, slots=True)
class Ack:
    """cocreate: the first `count` update-carrying messages of this connection are final."""

    count: int


@dataclass(frozen=True, slots=True)
class Refused:
    """cocreate: update-carrying message number `index` (1-based) was refused, with the reason."""

    index: int
    reason: str


@dataclass(frozen=True, slots=True)
class Epoch:
    """cocreate: the document's epoch id; a client holding state of another epoch must discard it."""

    epoch: str


@dataclass(frozen=True, slots=True)
class DocumentEvent:
    """cocreate: a non-CRDT change of the document (comment, session, ...): a kind and a JSON object."""

    kind: str
    data: str  # JSON text


Message = (
    SyncStep1
    | SyncStep2
    | SyncUpdate
    | AwarenessMessage
    | AuthDenied
    | QueryAwareness
    | Ack
    | Refused
    | Epoch
    | DocumentEvent
)
UpdateMessage = SyncStep2 | SyncUpdate

DEFAULT_MAX_MESSAGE_SIZE = 64 * 1024 * 1024
MAX_REASON_BYTES = 4096


def decode_message(frame: bytes, max_payload: int = DEFAULT_MAX_MESSAGE_SIZE) -> Message:
    """Decode exactly one message from a frame; raise a `DecodeError` subclass on anything else."""
    if len(frame) > 3 and frame[0] == MESSAGE_SYNC and frame[2] < 0x80:  # a short sync message
        size, sub = frame[2], frame[1]
        if len(frame) == 3 + size and size <= max_payload:
            if sub == SYNC_UPDATE:
                return SyncUpdate(frame[3:])
            if sub == SYNC_STEP2:
                return SyncStep2(frame[3:])
    decoder = Decoder(frame)
    kind = decoder.read_var_uint()
    message: Message
    if kind == MESSAGE_SYNC:
        sub = decoder.read_var_uint()
        payload = decoder.read_var_bytes(max_payload)
        if sub == SYNC_STEP1:
            message = SyncStep1(payload)
        elif sub == SYNC_STEP2:
            message = SyncStep2(payload)
        elif sub == SYNC_UPDATE:
            message = SyncUpdate(payload)
        else:
            raise UnsupportedMessage(f"unknown sync message sub-type {sub}")
    elif kind == MESSAGE_AWARENESS:
        message = AwarenessMessage(decoder.read_var_bytes(max_payload))
    elif kind == MESSAGE_QUERY_AWARENESS:
        message = QueryAwareness()
    elif kind == MESSAGE_AUTH:
        sub = decoder.read_var_uint()
        if sub != AUTH_PERMISSION_DENIED:
            raise UnsupportedMessage(f"unknown auth message sub-type {sub}")
        message = AuthDenied(decoder.read_var_string(MAX_REASON_BYTES))
    elif kind == MESSAGE_ACK:
        message = Ack(decoder.read_var_uint())
    elif kind == MESSAGE_REFUSED:
        message = Refused(decoder.read_var_uint(), decoder.read_var_string(MAX_REASON_BYTES))
    elif kind == MESSAGE_EPOCH:
        message = Epoch(decoder.read_var_string(MAX_REASON_BYTES))
    elif kind == MESSAGE_EVENT:
        message = DocumentEvent(
            decoder.read_var_string(MAX_REASON_BYTES), decoder.read_var_string(max_payload)
        )
    else:
        raise UnsupportedMessage(f"unknown message type {kind}")
    if not decoder.at_end():
        raise DecodeError(f"{decoder.remaining} trailing bytes after the message")
    return message


def encode_message(message: Message) -> bytes:
    """Encode one message as the bytes of one frame."""
    if type(message) is SyncUpdate:  # the message of every live edit
        update = message.update
        size = len(update)
        return (b"\x00\x02" + bytes((size,)) if size < 0x80 else b"\x00\x02" + encode_var_uint(size)) + update
    match message:
        case SyncUpdate(update):
            return b"\x00\x02" + encode_var_bytes(update)
        case SyncStep1(state_vector):
            return b"\x00\x00" + encode_var_bytes(state_vector)
        case SyncStep2(update):
            return b"\x00\x01" + encode_var_bytes(update)
        case AwarenessMessage(payload):
            return b"\x01" + encode_var_bytes(payload)
        case QueryAwareness():
            return b"\x03"
        case AuthDenied(reason):
            return b"\x02\x00" + encode_var_string(reason)
        case Ack(count):
            return encode_var_uint(MESSAGE_ACK) + encode_var_uint(count)
        case Refused(index, reason):
            return (
                encode_var_uint(MESSAGE_REFUSED)
                + encode_var_uint(index)
                + encode_var_string(reason[: MAX_REASON_BYTES // 4])
            )
        case Epoch(epoch):
            return encode_var_uint(MESSAGE_EPOCH) + encode_var_string(epoch)
        case DocumentEvent(kind, data):
            return encode_var_uint(MESSAGE_EVENT) + encode_var_string(kind) + encode_var_string(data)
    raise TypeError(f"not a message: {message!r}")
