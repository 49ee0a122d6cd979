"""The records servers exchange through Redis Streams, and their field codec (sans-I/O)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from crdt.errors import DecodeError
from crdt.lib0 import Decoder, encode_var_bytes, encode_var_uint


class RecordError(ValueError):
    """A stream entry that is not a record of ours (or a corrupt one)."""


@dataclass(frozen=True, slots=True)
class CommittedUpdates:
    """Log rows first_seq, first_seq + 1, ... of one document, all already durable."""

    first_seq: int
    updates: tuple[bytes, ...]
    origin: str

    @property
    def last_seq(self) -> int:
        return self.first_seq + len(self.updates) - 1


@dataclass(frozen=True, slots=True)
class AwarenessRelay:
    """An awareness update its origin accepted from its own clients (never persisted)."""

    payload: bytes
    origin: str


@dataclass(frozen=True, slots=True)
class AwarenessQuery:
    """A node that just loaded the document asks the others for their clients' presence."""

    origin: str


@dataclass(frozen=True, slots=True)
class RelayedEvent:
    """A document event (comment, session, history) published on `origin`."""

    document: str
    kind: str
    data: dict[str, Any]
    origin: str


@dataclass(frozen=True, slots=True)
class Eviction:
    """`document` was renamed or deleted on `origin`: every node closes its room with `code`."""

    document: str
    code: int
    reason: str
    origin: str


@dataclass(frozen=True, slots=True)
class AccessChanged:
    """`document`'s access list or invites changed on `origin`: every node re-checks its connections."""

    document: str
    origin: str


Record = CommittedUpdates | AwarenessRelay | AwarenessQuery | RelayedEvent | Eviction | AccessChanged
Broadcast = RelayedEvent | Eviction | AccessChanged  # the records of the global events stream

_UPDATES, _AWARENESS, _QUERY, _EVENT, _EVICT, _ACCESS = b"u", b"a", b"q", b"e", b"x", b"c"


def encode_record(record: Record) -> dict[bytes, bytes]:
    """The field map of a stream entry (`XADD key * field value ...`)."""
    fields = {b"o": record.origin.encode()}
    match record:
        case CommittedUpdates(first_seq, updates, _):
            fields[b"k"] = _UPDATES
            fields[b"s"] = str(first_seq).encode()
            fields[b"d"] = _pack(updates)
        case AwarenessRelay(payload, _):
            fields[b"k"] = _AWARENESS
            fields[b"d"] = payload
        case AwarenessQuery():
            fields[b"k"] = _QUERY
        case RelayedEvent(document, kind, data, _):
            fields[b"k"] = _EVENT
            fields[b"d"] = orjson.dumps({"document": document, "kind": kind, "data": data})
        case Eviction(document, code, reason, _):
            fields[b"k"] = _EVICT
            fields[b"d"] = orjson.dumps({"document": document, "code": code, "reason": reason})
        case AccessChanged(document, _):
            fields[b"k"] = _ACCESS
            fields[b"d"] = document.encode()
    return fields


def decode_record(fields: dict[bytes, bytes]) -> Record:
    """The record of a stream entry; raises `RecordError` for anything malformed."""
    try:
        kind, origin = fields[b"k"], fields[b"o"].decode()
        if kind == _UPDATES:
            first_seq = int(fields[b"s"])
            updates = _unpack(fields[b"d"])
            if first_seq < 1 or not updates:
                raise RecordError("committed updates need a seq >= 1 and at least one update")
            return CommittedUpdates(first_seq, updates, origin)
        if kind == _AWARENESS:
            return AwarenessRelay(fields[b"d"], origin)
        if kind == _QUERY:
            return AwarenessQuery(origin)
        if kind == _EVENT:
            body = orjson.loads(fields[b"d"])
            return RelayedEvent(str(body["document"]), str(body["kind"]), dict(body["data"]), origin)
        if kind == _EVICT:
            body = orjson.loads(fields[b"d"])
            return Eviction(str(body["document"]), int(body["code"]), str(body["reason"]), origin)
        if kind == _ACCESS:
            return AccessChanged(fields[b"d"].decode(), origin)
    except (KeyError, ValueError, TypeError, UnicodeDecodeError, DecodeError, orjson.JSONDecodeError) as exc:
        raise RecordError(f"malformed stream record: {exc}") from None
    raise RecordError(f"unknown record kind {kind!r}")


def _pack(updates: tuple[bytes, ...]) -> bytes:
    parts = [encode_var_uint(len(updates))]
    parts.extend(encode_var_bytes(update) for update in updates)
    return b"".join(parts)


def _unpack(data: bytes) -> tuple[bytes, ...]:
    decoder = Decoder(data)
    count = decoder.read_var_uint()
    if count > len(data):
        raise RecordError("update count exceeds the record size")
    updates = tuple(decoder.read_var_bytes() for _ in range(count))
    if not decoder.at_end():
        raise RecordError("trailing bytes after the updates")
    return updates
