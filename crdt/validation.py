"""Bounded pure-Python parser of Yjs v1 updates and state vectors, run before pycrdt sees untrusted bytes."""

# What is checked, in one pass over the bytes (work linear in the input, no recursion, nothing
# allocated from a length prefix before it is compared with the bytes that are left):
#
# * The grammar of update v1 (yjs `readClientsStructRefs` / `readItemContent` / `readDeleteSet`,
#   lib0 `readAny`): per client a run of GC, Skip and Item structs, then the delete set; no
#   trailing bytes. Every count must fit in the bytes that are left; varints are at most 10 bytes.
# * Any values (and JSON text in Embed / Format content) nest at most `max_depth` deep: yrs
#   decodes them recursively and a ~26,000-deep value overflows the native stack (SIGSEGV).
# * Nested shared types created by one update nest at most `max_type_depth` deep: deleting a
#   ~40,000-deep chain of Y.Maps crashes yrs the same way (the check is per update, see below).
# * Only what both Yjs and yrs decode the same way is accepted. Refused although well-formed:
#   legacy JSON content (ref 2: yrs reads one string more than Yjs), XmlHook (yrs reads no hook
#   name, Yjs does), yrs-only Move content (ref 11), weak links and type refs Yjs cannot read
#   (7, 9, 15), parent-info values other than 0/1, GC/Skip info bytes with flag bits set,
#   zero-length structs, delete ranges and struct runs (no encoder writes them; yrs panics on an
#   empty run of a client it knows),
#   integers a JavaScript peer would refuse (|n| > 2^53-1), NaN/Infinity in JSON text.
#
# Anti-poisoning rule. yrs (pycrdt 0.14) keeps clocks and struct lengths in u32 and silently
# wraps them: a delete range at clock 2^32+1 deletes clock 1, a struct at 2^32+5 is integrated
# at 5. So, in every mode:
#   R0. client ids <= 2^53-1; every clock, length and clock+length <= 2^32-1.
# With `known_state` (the server document's state vector, K[c] = next clock it expects of c):
#   R1. the struct run of a client c listed in `foreign_owned` (claimed by ANOTHER live
#       connection) and not in `owned_clients` must end at or before K[c]: the sender may resend
#       what the server has (an overlapping sync step 2) but may not author c's future.
#   R2. the run of any other client not in `owned_clients` may end at most `max_clock_advance`
#       past K[c] (a fresh client's offline edits, a relay of a peer's edits the server lacks).
#       Runs of the sender's own clients are bounded by R0 only: poisoning oneself harms no one.
#       In token mode the room passes every id a user claimed as owned: its own user's ids are
#       bounded by R0 only, other users' ids are then stripped past K[c] (`crdt.strip`, see
#       server/write_gate.py), never refused.
#   R3. a delete range of client c must end at or before max(K[c], end of this update's run of
#       c). Deleting clocks nobody has seen yet is the poisoning vector: yrs keeps the range
#       pending and deletes the real edits when they arrive. Honest senders only delete what they
#       have, and they send what the server lacks in the same update or an earlier one (a delete
#       sent in the instant before the client's own step 2 is refused, but step 2 carries the
#       full delete set again, so nothing is lost).
# Without `known_state` only R0 and the structural checks apply.
#
# Not covered here (the room must handle it): errors that need the document, such as a parent id
# naming an item that is not a shared type (the non-atomic repro), pass validation and make
# pycrdt raise part-way through `apply_update` (not atomic: rebuild the room from its log). Type
# nesting is checked per update here; chains built across updates are bounded by the room with
# `crdt.type_depth` (the same `max_type_depth`, document-wide). Struct runs that start past K[c]
# (gaps) are allowed within R2: yrs keeps them pending.

from __future__ import annotations

import json
import re
from array import array
from bisect import bisect_right
from collections.abc import Container, Mapping
from dataclasses import dataclass
from itertools import accumulate

from crdt.common_updates import MAX_CLOCK as MAX_CLOCK
from crdt.common_updates import common_shape
from crdt.errors import DecodeError, InvalidUpdate, UpdateAhead
from crdt.lib0 import MAX_SAFE_INTEGER, Decoder

_ITEM_REFS = frozenset((1, 3, 4, 5, 6, 7, 8, 9))
_REFUSED_REFS = {
    2: "legacy JSON content (yrs and Yjs decode it differently)",
    11: "Move content (yrs only, Yjs peers cannot decode it)",
}
_TYPE_REFS = frozenset((0, 1, 2, 3, 4, 6))  # array, map, text, xml element/fragment/text
_JSON_STRING = re.compile(r'"(?:[^"\\]|\\.)*+"?', re.DOTALL)  # possessive: linear, even unclosed
_JSON_NOT_BRACKET = re.compile(r"[^\[\]{}]+")
_JSON_STEPS = str.maketrans({"[": "\x01", "{": "\x01", "]": "\xff", "}": "\xff"})  # +1 / -1 as int8
_VARINT = re.compile(rb"[\x80-\xff]{0,9}[\x00-\x7f]")
_CLIENT_CACHE: dict[bytes, int] = {}  # varint encoding -> client id: ids repeat, decode once
_SUPPLEMENTARY_LEADS = (b"\xf0", b"\xf1", b"\xf2", b"\xf3", b"\xf4")
_ROOT, _PARENT, _SIBLING = 0, 1, 2


@dataclass(frozen=True, slots=True)
class UpdateLimits:
    max_depth: int = 64  # nesting of Any values / JSON arrays+objects inside one content
    max_type_depth: int = 256  # nesting of shared types (Y.Map in Y.Array ...) built by one update
    max_structs: int = 1_000_000  # total structs in one update
    max_clients: int = 10_000  # distinct client ids in one update (structs + delete set)
    max_delete_ranges: int = 1_000_000
    max_string_bytes: int = 16 * 1024 * 1024  # one string, key or binary value
    max_clock_advance: int = 16 * 1024 * 1024  # rule R2 above


@dataclass(slots=True)  # not frozen: built per update, and a frozen __init__ costs 4x as much
class UpdateSummary:
    clients: dict[int, tuple[int, int]]  # client id -> (first clock, end clock) of its structs
    struct_count: int
    deleted: dict[int, list[tuple[int, int]]]  # delete set: client -> [(clock, length)]
    string_bytes: int = 0  # UTF-8 bytes of inserted text (String content)
    type_count: int = 0  # shared types created
    subdoc_count: int = 0
    delete_range_count: int = 0

    @property
    def is_empty(self) -> bool:
        return self.struct_count == 0 and not self.deleted


def validate_update(
    data: bytes,
    known_state: Mapping[int, int] | None = None,
    owned_clients: Container[int] | frozenset[int] = frozenset(),
    foreign_owned: Container[int] = frozenset(),
    limits: UpdateLimits = UpdateLimits(),
) -> UpdateSummary:
    """Parse a Yjs v1 update fully and apply the bounds above; raise InvalidUpdate if refused."""
    shape = common_shape(data, known_state, owned_clients, foreign_owned, limits)
    if shape is not None:  # a live edit: same verdict and summary as the parser below, cheaper
        runs, structs, deleted, string_bytes, ranges = shape
        return UpdateSummary(runs, structs, deleted, string_bytes, 0, 0, ranges)
    return parse_update(_Parser(data, limits), known_state, owned_clients, foreign_owned)


def parse_update(
    parser: _Parser,
    known_state: Mapping[int, int] | None,
    owned_clients: Container[int],
    foreign_owned: Container[int],
) -> UpdateSummary:
    """`validate_update` with a given parser (one that also records where things are)."""
    data, limits = parser.data, parser.limits
    try:
        summary = parser.parse(known_state, owned_clients, foreign_owned)
        if summary.type_count > limits.max_type_depth:  # only then can types nest too deep
            _Parser(data, limits, record=True).parse(None, owned_clients, foreign_owned)
    except DecodeError as exc:
        raise InvalidUpdate(f"malformed update at byte {parser.dec.pos}: {exc.detail}") from exc
    return summary


def validate_state_vector(data: bytes, limits: UpdateLimits = UpdateLimits()) -> dict[int, int]:
    """Parse a Yjs state vector (client -> next clock); raise InvalidUpdate if malformed."""
    parser = _Parser(data, limits)
    try:
        state: dict[int, int] = {}
        for _ in range(parser.count("state vector entries", limits.max_clients)):
            client = parser.client()
            if client in state:
                raise InvalidUpdate(f"client {client} appears twice in the state vector")
            state[client] = parser.clock()
        parser.expect_end()
    except DecodeError as exc:
        raise InvalidUpdate(f"malformed state vector: {exc.detail}") from exc
    return state


class _Parser:
    def __init__(self, data: bytes, limits: UpdateLimits, record: bool = False, cut: int = 0) -> None:
        self.data = data
        self.dec = Decoder(data)
        self.limits = limits
        self.record = record
        self.string_bytes = 0
        self.type_count = 0
        self.subdoc_count = 0
        # with record=True, one row per Item: where it is and what it hangs off (type depth check)
        self.rows: list[tuple[int, int, int, bool, int, int, int]] = []
        # with record=True, each client's struct section as (client, first byte, end byte), and
        # where the delete set starts (for `crdt.strip`)
        self.sections: list[tuple[int, int, int]] = []
        self.delete_set_at = 0
        # with cut > 0, each client's run cut at struct boundaries into pieces of about `cut` bytes:
        # (client, first clock, end clock, struct count, first byte, end byte) (for `crdt.chunks`)
        self.cut = cut
        self.pieces: list[tuple[int, int, int, int, int, int]] = []

    # -- primitives -------------------------------------------------------------------------
    def uint(self) -> int:
        """A varUint; the one- and two-byte cases inline, the rest (and every error) by Decoder."""
        dec, data = self.dec, self.data
        pos = dec.pos
        if pos + 1 < len(data):
            first, second = data[pos], data[pos + 1]
            if first < 0x80:
                dec.pos = pos + 1
                return first
            if second < 0x80:
                dec.pos = pos + 2
                return (first & 0x7F) | second << 7
        return dec.read_var_uint()

    def count(self, what: str, cap: int) -> int:
        n = self.uint()
        if n > self.dec.remaining:
            raise InvalidUpdate(f"{what}: {n} exceeds the {self.dec.remaining} bytes left")
        if n > cap:
            raise InvalidUpdate(f"{what}: {n} exceeds the limit of {cap}")
        return n

    def client(self) -> int:
        dec = self.dec
        match = _VARINT.match(self.data, dec.pos)
        client = _CLIENT_CACHE.get(match.group()) if match else None
        if client is not None and match:
            dec.pos = match.end()
            return client
        client = dec.read_var_uint()
        if client > MAX_SAFE_INTEGER:
            raise InvalidUpdate(f"client id {client} above 2^53-1")
        if match:
            if len(_CLIENT_CACHE) >= 65_536:
                _CLIENT_CACHE.clear()
            _CLIENT_CACHE[match.group()] = client
        return client

    def clock(self) -> int:
        clock = self.uint()
        if clock > MAX_CLOCK:
            raise InvalidUpdate(f"clock {clock} above 2^32-1 (yrs would wrap it)")
        return clock

    def length(self) -> int:
        length = self.uint()
        if length == 0:
            raise InvalidUpdate("zero-length struct or range")
        if length > MAX_CLOCK:
            raise InvalidUpdate(f"length {length} above 2^32-1 (yrs would wrap it)")
        return length

    def raw(self) -> bytes:
        n = self.uint()
        if n > self.limits.max_string_bytes:
            raise InvalidUpdate(f"string of {n} bytes exceeds max_string_bytes")
        return self.dec.read_bytes(n)

    def text(self) -> str:
        try:
            return self.raw().decode("utf-8")
        except UnicodeDecodeError:
            raise InvalidUpdate("string is not valid UTF-8") from None

    def expect_end(self) -> None:
        if not self.dec.at_end():
            raise InvalidUpdate(f"{self.dec.remaining} trailing bytes")

    # -- values -----------------------------------------------------------------------------
    def any_value(self) -> None:
        """Skip one lib0 Any value, iteratively, refusing nesting deeper than max_depth."""
        dec = self.dec
        stack: list[tuple[int, bool]] = []
        left, keyed = 1, False  # values still to read at this level; are they object entries
        while True:
            if not left:
                if not stack:
                    return
                left, keyed = stack.pop()
                continue
            left -= 1
            if keyed:
                self.text()
            tag = dec.read_uint8()
            if tag == 127 or tag == 126 or tag == 121 or tag == 120:  # undefined null false true
                continue
            if tag == 125:
                if abs(dec.read_var_int()) > MAX_SAFE_INTEGER:
                    raise InvalidUpdate("integer beyond 2^53-1 in Any value")
            elif tag == 119:
                self.text()
            elif tag == 116:
                self.raw()
            elif tag == 124:
                dec.read_bytes(4)
            elif tag == 123 or tag == 122:
                dec.read_bytes(8)
            elif tag == 117 or tag == 118:
                n = self.count("Any array/object length", MAX_CLOCK)
                if len(stack) >= self.limits.max_depth:
                    raise InvalidUpdate(f"nesting deeper than {self.limits.max_depth}")
                stack.append((left, keyed))
                left, keyed = n, tag == 118
            else:
                raise InvalidUpdate(f"unknown Any type tag {tag}")

    def json_text(self) -> None:
        text = self.text()
        max_depth = self.limits.max_depth
        if text.count("[") + text.count("{") > max_depth:  # could nest too deep: measure, in C loops
            brackets = _JSON_NOT_BRACKET.sub("", _JSON_STRING.sub("", text))
            steps = array("b", brackets.translate(_JSON_STEPS).encode("latin-1"))
            if max(accumulate(steps), default=0) > max_depth:
                raise InvalidUpdate(f"nesting deeper than {max_depth}")
        try:
            json.loads(text, parse_int=float, parse_constant=_refuse_constant)
        except (ValueError, RecursionError):
            raise InvalidUpdate("Embed/Format content is not valid JSON") from None

    # -- structs ----------------------------------------------------------------------------
    def item(self, info: int, client: int, clock: int) -> int:
        """Read one Item after its info byte; return its clock length."""
        dec = self.dec
        ref = info & 0x1F
        if ref not in _ITEM_REFS:
            raise InvalidUpdate(_REFUSED_REFS.get(ref, f"unknown struct kind {ref}"))
        kind, ref_client, ref_clock = _ROOT, 0, 0
        if info & 0x80:  # origin: the item was inserted right of it, in the same parent
            kind, ref_client, ref_clock = _SIBLING, self.client(), self.clock()
        if info & 0x40:  # right origin
            right = self.client(), self.clock()
            if kind == _ROOT:
                kind, ref_client, ref_clock = _SIBLING, right[0], right[1]
        if not info & 0xC0:  # no origin: the parent is written out
            parent_info = dec.read_var_uint()
            if parent_info == 1:
                self.text()  # name of a root type
            elif parent_info == 0:
                kind, ref_client, ref_clock = _PARENT, self.client(), self.clock()
            else:
                raise InvalidUpdate(f"parent info {parent_info} is neither 0 nor 1")
            if info & 0x20:
                self.text()  # parentSub: the map key
        length = 1
        if ref == 1:  # Deleted
            length = self.length()
        elif ref == 3:  # Binary
            self.raw()
        elif ref == 4:  # String: the clock length counts UTF-16 code units
            raw = self.raw()
            if raw.isascii():
                length = len(raw)
            else:
                try:
                    length = len(raw.decode("utf-8"))
                except UnicodeDecodeError:
                    raise InvalidUpdate("string is not valid UTF-8") from None
                length += sum(raw.count(lead) for lead in _SUPPLEMENTARY_LEADS)
            if not length:
                raise InvalidUpdate("zero-length struct or range")
            self.string_bytes += len(raw)
        elif ref == 5:  # Embed
            self.json_text()
        elif ref == 6:  # Format: key, JSON value
            self.text()
            self.json_text()
        elif ref == 7:  # Type
            type_ref = dec.read_uint8()
            if type_ref not in _TYPE_REFS:
                raise InvalidUpdate(f"unsupported shared type ref {type_ref}")
            if type_ref == 3:
                self.text()  # XmlElement node name
            self.type_count += 1
        elif ref == 8:  # Any
            length = self.count("Any content length", MAX_CLOCK)
            if not length:
                raise InvalidUpdate("zero-length struct or range")
            for _ in range(length):
                self.any_value()
        else:  # 9: Doc (subdocument): guid, options
            self.text()
            self.any_value()
            self.subdoc_count += 1
        if self.record:
            self.rows.append((client, clock, length, ref == 7, kind, ref_client, ref_clock))
        return length

    def parse(
        self,
        known: Mapping[int, int] | None,
        owned: Container[int],
        foreign: Container[int],
    ) -> UpdateSummary:
        limits = self.limits
        runs: dict[int, tuple[int, int]] = {}
        seen: set[int] = set()
        structs = 0
        for _ in range(self.count("client count", limits.max_clients)):
            section_at = self.dec.pos
            n = self.count("struct count", MAX_CLOCK)
            structs += n
            if structs > limits.max_structs:
                raise InvalidUpdate(f"more than {limits.max_structs} structs")
            client = self.client()
            if client in seen:
                raise InvalidUpdate(f"client {client} appears twice in the struct section")
            seen.add(client)
            if not n:  # no encoder writes one; yrs panics on it for a client it knows
                raise InvalidUpdate(f"empty struct run for client {client}")
            start = clock = self.clock()
            cut, piece_at, piece_clock, piece_structs = self.cut, self.dec.pos, start, 0
            for _ in range(n):
                if cut and self.dec.pos - piece_at >= cut:
                    self.pieces.append((client, piece_clock, clock, piece_structs, piece_at, self.dec.pos))
                    piece_at, piece_clock, piece_structs = self.dec.pos, clock, 0
                piece_structs += 1
                info = self.dec.read_uint8()
                if info == 0 or info == 10:  # GC, Skip
                    clock += self.length()
                else:
                    clock += self.item(info, client, clock)
                if clock > MAX_CLOCK:
                    raise InvalidUpdate(f"clock of client {client} passes 2^32-1")
            if cut:
                self.pieces.append((client, piece_clock, clock, piece_structs, piece_at, self.dec.pos))
            runs[client] = (start, clock)
            if self.record:
                self.sections.append((client, section_at, self.dec.pos))
            if known is not None and client not in owned:
                _check_run(client, clock, known.get(client, 0), foreign, limits)
        self.delete_set_at = self.dec.pos
        deleted: dict[int, list[tuple[int, int]]] = {}
        ranges = 0
        for _ in range(self.count("delete set client count", limits.max_clients)):
            client = self.client()
            seen.add(client)
            if len(seen) > limits.max_clients:
                raise InvalidUpdate(f"more than {limits.max_clients} clients")
            n = self.count("delete range count", MAX_CLOCK)
            ranges += n
            if ranges > limits.max_delete_ranges:
                raise InvalidUpdate(f"more than {limits.max_delete_ranges} delete ranges")
            ceiling = MAX_CLOCK
            if known is not None:
                ceiling = max(known.get(client, 0), runs.get(client, (0, 0))[1])
            target = deleted.setdefault(client, []) if n else []
            for _ in range(n):
                clock, length = self.clock(), self.length()
                if clock + length > ceiling:
                    if ceiling == MAX_CLOCK:
                        raise InvalidUpdate(f"delete range of client {client} passes 2^32-1")
                    raise UpdateAhead(f"delete range beyond known state of client {client}")
                target.append((clock, length))
        self.expect_end()
        if self.record:
            _check_type_depth(self.rows, limits.max_type_depth)
        return UpdateSummary(
            clients=runs,
            struct_count=structs,
            deleted=deleted,
            string_bytes=self.string_bytes,
            type_count=self.type_count,
            subdoc_count=self.subdoc_count,
            delete_range_count=ranges,
        )


def _check_run(client: int, end: int, known: int, foreign: Container[int], limits: UpdateLimits) -> None:
    if client in foreign:
        if end > known:
            raise InvalidUpdate(
                f"structs of client {client}, owned by another connection, beyond its known clock"
            )
    elif end > known + limits.max_clock_advance:
        raise InvalidUpdate(
            f"structs of client {client} advance its clock by {end - known} (limit "
            f"{limits.max_clock_advance})"
        )


def _check_type_depth(rows: list[tuple[int, int, int, bool, int, int, int]], limit: int) -> None:
    """Refuse shared types nested deeper than `limit` inside this update (chains resolved here)."""
    starts: dict[int, list[int]] = {}
    index: dict[int, list[int]] = {}
    for i, (client, clock, *_rest) in enumerate(rows):
        starts.setdefault(client, []).append(clock)
        index.setdefault(client, []).append(i)

    def find(client: int, clock: int) -> int:
        pos = bisect_right(starts.get(client, ()), clock) - 1
        if pos < 0:
            return -1
        i = index[client][pos]
        return i if clock < rows[i][1] + rows[i][2] else -1

    def link(i: int) -> tuple[int, int]:  # (row this one hangs off or -1, levels added)
        _c, _k, _l, _t, kind, ref_client, ref_clock = rows[i]
        if kind == _ROOT:
            return -1, 0
        target = find(ref_client, ref_clock)
        if kind == _SIBLING:
            return target, 0
        if target >= 0 and rows[target][3] and rows[target][1] == ref_clock:
            return target, 1
        return -1, 0

    level = [0] * len(rows)  # 0 unknown, -1 being resolved, else depth (root level = 1)
    for i in range(len(rows)):
        path: list[tuple[int, int, int]] = []
        j = i
        while level[j] == 0:
            level[j] = -1
            target, step = link(j)
            path.append((j, target, step))
            if target < 0:
                break
            j = target
        below = max(level[j], 1)  # a cycle counts as the root level
        for j, target, step in reversed(path):
            below = below + step if target >= 0 else 1
            level[j] = below
            if rows[j][3] and below > limit:
                raise InvalidUpdate(f"shared types nested deeper than {limit}")


def _refuse_constant(name: str) -> None:
    raise ValueError(f"{name} is not JSON")
