"""Fast path of the update validator for the overwhelmingly common shape of a live edit."""

# A keystroke is one of: one client's run of Items with an origin and String or Deleted content
# (an insertion, possibly with a small delete set), or an empty struct section and a delete set
# (a deletion). `common_shape` parses exactly those with straight-line code and returns what
# `crdt.validation._Parser.parse` would return for them. On anything else - another struct kind,
# a parent written out, several clients, multi-byte counts, and EVERY condition the general parser
# refuses - it returns None and the caller runs the general parser, which then gives the verdict
# and the error message. So this path never refuses anything and only accepts what the general
# parser accepts with the same summary (property-tested in tests/crdt/test_common_updates.py).

from __future__ import annotations

from collections.abc import Container, Mapping
from typing import TYPE_CHECKING

from crdt.lib0 import MAX_SAFE_INTEGER

if TYPE_CHECKING:
    from crdt.validation import UpdateLimits

MAX_CLOCK = 2**32 - 1
"""yrs stores clocks and lengths as u32 and wraps past this silently."""

_SUPPLEMENTARY_LEADS = (b"\xf0", b"\xf1", b"\xf2", b"\xf3", b"\xf4")

Runs = dict[int, tuple[int, int]]
Deleted = dict[int, list[tuple[int, int]]]
Shape = tuple[Runs, int, Deleted, int, int]
"""(runs, struct count, delete set, string bytes, delete range count)."""


class _Uncommon(Exception):
    """Not the common shape (or not valid): leave it to the general parser."""


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    """A varUint of at most 10 bytes at `pos`: (value, position after it); IndexError past the end."""
    byte = data[pos]
    if byte < 0x80:
        return byte, pos + 1
    value = byte & 0x7F
    shift = 7
    limit = pos + 10
    pos += 1
    while pos < limit:
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, pos
        shift += 7
    raise _Uncommon


_last_client: tuple[bytes, int] = (b"\x00", 0)
"""The varUint bytes of the client id read last, and the id: live edits repeat one writer's id."""


def _client(data: bytes, pos: int) -> tuple[int, int]:
    """A client id varUint at `pos`, decoded once per writer (a varint is self-delimiting: its bytes
    at `pos` are the remembered ones exactly when `data` has them there)."""
    global _last_client
    encoded, client = _last_client
    if data.startswith(encoded, pos):
        return client, pos + len(encoded)
    client, end = _varint(data, pos)
    _last_client = (data[pos:end], client)
    return client, end


def common_shape(
    data: bytes,
    known: Mapping[int, int] | None,
    owned: Container[int],
    foreign: Container[int],
    limits: UpdateLimits,
) -> Shape | None:
    """What the general parser returns for `data` when it has the common shape and is valid, else None."""
    try:
        return _parse(data, known, owned, foreign, limits)
    except (_Uncommon, IndexError):
        return None


def _parse(
    data: bytes,
    known: Mapping[int, int] | None,
    owned: Container[int],
    foreign: Container[int],
    limits: UpdateLimits,
) -> Shape | None:
    end = len(data)
    runs: Runs = {}
    structs = 0
    string_bytes = 0
    client_count = data[0]
    pos = 1
    if client_count == 1:
        structs = data[1]
        if not 0 < structs < 0x80 or structs > end - 2 or structs > limits.max_structs:
            return None
        client, pos = _client(data, 2)
        client_bytes = data[2:pos]
        if client > MAX_SAFE_INTEGER:
            return None
        clock, pos = _varint(data, pos)
        if clock > MAX_CLOCK:
            return None
        start = clock
        max_string = limits.max_string_bytes
        for _ in range(structs):
            info = data[pos]
            pos += 1
            ref = info & 0x1F
            if not info & 0xC0 or (ref != 4 and ref != 1):
                return None
            if info & 0x80:  # origin
                pos = _skip_id(data, pos, client_bytes)
            if info & 0x40:  # right origin
                pos = _skip_id(data, pos, client_bytes)
            if ref == 1:  # Deleted
                length, pos = _varint(data, pos)
                if not 0 < length <= MAX_CLOCK:
                    return None
            else:  # String
                size, pos = _varint(data, pos)
                if size > max_string or pos + size > end:
                    return None
                raw = data[pos : pos + size]
                pos += size
                if raw.isascii():
                    length = size
                else:
                    try:
                        length = len(raw.decode("utf-8"))
                    except UnicodeDecodeError:
                        return None
                    length += sum(raw.count(lead) for lead in _SUPPLEMENTARY_LEADS)
                if not length:
                    return None
                string_bytes += size
            clock += length
            if clock > MAX_CLOCK:
                return None
        runs[client] = (start, clock)
        if known is not None and client not in owned:
            ceiling = known.get(client, 0)
            if client in foreign:
                if clock > ceiling:
                    return None
            elif clock > ceiling + limits.max_clock_advance:
                return None
    elif client_count != 0:
        return None
    deleted: Deleted = {}
    clients = data[pos]
    pos += 1
    if clients >= 0x80 or clients > end - pos or len(runs) + clients > limits.max_clients:
        return None
    ranges = 0
    for _ in range(clients):
        client, pos = _client(data, pos)
        if client > MAX_SAFE_INTEGER:
            return None
        count = data[pos]
        pos += 1
        if count >= 0x80 or count > end - pos:
            return None
        ranges += count
        if ranges > limits.max_delete_ranges:
            return None
        ceiling = MAX_CLOCK
        if known is not None:
            run = runs.get(client)
            ceiling = max(known.get(client, 0), run[1] if run is not None else 0)
        target = deleted.setdefault(client, []) if count else []
        for _ in range(count):
            clock, pos = _varint(data, pos)
            length, pos = _varint(data, pos)
            if clock > MAX_CLOCK or not 0 < length <= MAX_CLOCK or clock + length > ceiling:
                return None
            target.append((clock, length))
    if pos != end:
        return None
    return runs, structs, deleted, string_bytes, ranges


def _skip_id(data: bytes, pos: int, client_bytes: bytes) -> int:
    """Skip an ID (client, clock) after checking its bounds; usually the run's own client."""
    if data.startswith(client_bytes, pos):
        pos += len(client_bytes)
    else:
        client, pos = _varint(data, pos)
        if client > MAX_SAFE_INTEGER:
            raise _Uncommon
    clock, pos = _varint(data, pos)
    if clock > MAX_CLOCK:
        raise _Uncommon
    return pos
