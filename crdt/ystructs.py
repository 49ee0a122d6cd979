"""Decode a (trusted, already validated) Yjs v1 update into structs and delete set, for history folding."""

# The grammar is Yjs `readClientsStructRefs` / `readItemContent` / `readDeleteSet`; the bounded
# parser that guards untrusted input is `crdt.validation`. Here the bytes come from the update
# log, so they passed that validator once; a malformed row still raises `DecodeError`, never
# anything worse. Only what history needs is kept: ids, origins, parents, lengths, the text of
# String content and the kind of shared types. Clock lengths of strings count UTF-16 code units.

from __future__ import annotations

import re

from crdt.errors import DecodeError

GC, DELETED, JSON, BINARY, STRING, EMBED, FORMAT, TYPE, ANY, DOC, SKIP = 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10
TYPE_NAMES = {0: "array", 1: "map", 2: "text", 3: "xml", 4: "xml", 5: "xml", 6: "text"}
_SUPPLEMENTARY_LEADS = (b"\xf0", b"\xf1", b"\xf2", b"\xf3", b"\xf4")
_VARINT = re.compile(rb"[\x80-\xff]{0,9}[\x00-\x7f]")
_V = rb"([\x80-\xff]{0,9}[\x00-\x7f])"
# one client, one struct: client, clock, then an info byte of String content with origin (0x84),
# right origin (0x44) or both (0xC4); then 2 or 4 varints of ids and the string's byte length
_KEYSTROKE_HEAD = re.compile(rb"\x01\x01" + _V + _V + rb"[\x84\x44\xc4]", re.DOTALL)
_ONE_ORIGIN = re.compile(_V + _V + _V, re.DOTALL)
_ORIGIN_AND_RIGHT = re.compile(_V + _V + _V + _V + _V, re.DOTALL)
_CLIENTS: dict[bytes, int] = {}

ID = tuple[int, int]


class Struct:
    """One struct of an update. `parent` is a root name, the id of the shared type's item, or None
    when the item names an origin (its parent is the origin's)."""

    __slots__ = ("client", "clock", "kind", "length", "origin", "parent", "right", "sub", "text", "type_ref")

    def __init__(
        self,
        client: int,
        clock: int,
        kind: int,
        length: int,
        origin: ID | None = None,
        right: ID | None = None,
        parent: str | ID | None = None,
        sub: str | None = None,
        text: str | None = None,
        type_ref: int = -1,
    ) -> None:
        self.client = client
        self.clock = clock
        self.kind = kind
        self.length = length
        self.origin = origin
        self.right = right
        self.parent = parent
        self.sub = sub
        self.text = text
        self.type_ref = type_ref

    def __repr__(self) -> str:
        return f"Struct({self.client}:{self.clock}+{self.length} kind={self.kind} text={self.text!r})"


def utf16_length(text: str, raw: bytes) -> int:
    """Yjs clock length of a string: UTF-16 code units (astral characters count two)."""
    if raw.isascii():
        return len(raw)
    return len(text) + sum(raw.count(lead) for lead in _SUPPLEMENTARY_LEADS)


class _Reader:
    __slots__ = ("data", "end", "pos")

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0
        self.end = len(data)

    def uint(self) -> int:
        data, pos = self.data, self.pos
        if pos < self.end:
            byte = data[pos]
            if byte < 0x80:
                self.pos = pos + 1
                return byte
        value = shift = 0
        while True:
            if pos >= self.end or shift > 63:
                raise DecodeError("bad varint in update")
            byte = data[pos]
            pos += 1
            value |= (byte & 0x7F) << shift
            if byte < 0x80:
                self.pos = pos
                return value
            shift += 7

    def byte(self) -> int:
        if self.pos >= self.end:
            raise DecodeError("unexpected end of update")
        self.pos += 1
        return self.data[self.pos - 1]

    def raw(self) -> bytes:
        n = self.uint()
        pos = self.pos
        if n > self.end - pos:
            raise DecodeError("length prefix past the end of the update")
        self.pos = pos + n
        return self.data[pos : pos + n]

    def string(self) -> str:
        try:
            return self.raw().decode("utf-8")
        except UnicodeDecodeError:
            raise DecodeError("string is not UTF-8") from None

    def skip(self, n: int) -> None:
        if n > self.end - self.pos:
            raise DecodeError("unexpected end of update")
        self.pos += n

    def var_int(self) -> None:
        while self.byte() & 0x80:
            pass

    def any_value(self) -> None:
        """Skip one lib0 Any value (iteratively: nesting was bounded by the validator)."""
        left = 1
        stack: list[int] = []
        keyed: list[bool] = [False]
        while True:
            if not left:
                if not stack:
                    return
                left = stack.pop()
                keyed.pop()
                continue
            left -= 1
            if keyed[-1]:
                self.raw()
            tag = self.byte()
            if tag in (127, 126, 121, 120):
                continue
            if tag == 125:
                self.var_int()
            elif tag in (119, 116):
                self.raw()
            elif tag == 124:
                self.skip(4)
            elif tag in (123, 122):
                self.skip(8)
            elif tag in (117, 118):
                stack.append(left)
                keyed.append(tag == 118)
                left = self.uint()
            else:
                raise DecodeError(f"unknown Any tag {tag}")


def decode_update(data: bytes) -> tuple[list[Struct], dict[int, list[tuple[int, int]]]]:
    """The structs (in update order: per client, ascending clocks) and the delete set
    (client -> [(clock, length)]) of a Yjs v1 update."""
    if data[:2] == b"\x01\x01":
        quick = _single_string(data)  # one keystroke: one client, one String item, no deletions
        if quick is not None:
            return [quick], {}
    elif len(data) > 4 and data[0] == 0 and data[1] == 1:
        deletion = _single_range(data)  # one deletion: no structs, one range of one client
        if deletion is not None:
            return [], deletion
    r = _Reader(data)
    structs: list[Struct] = []
    for _ in range(r.uint()):
        count = r.uint()
        client = r.uint()
        clock = r.uint()
        for _ in range(count):
            info = r.byte()
            ref = info & 0x1F
            if ref in (GC, SKIP):
                length = r.uint()
                if ref == GC:
                    structs.append(Struct(client, clock, GC, length))
                clock += length
                continue
            struct = _item(r, info, ref, client, clock)
            structs.append(struct)
            clock += struct.length
    deleted: dict[int, list[tuple[int, int]]] = {}
    for _ in range(r.uint()):
        client = r.uint()
        ranges = deleted.setdefault(client, [])
        for _ in range(r.uint()):
            ranges.append((r.uint(), r.uint()))
    return structs, deleted


def _uint(data: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, pos
        shift += 7
        if shift > 63:
            raise DecodeError("bad varint in update")


def _single_range(data: bytes) -> dict[int, list[tuple[int, int]]] | None:
    try:
        client, pos = _client(data, 2)
        if data[pos] != 1:
            return None
        clock, pos = _uint(data, pos + 1)
        length, pos = _uint(data, pos)
    except IndexError:
        return None
    return {client: [(clock, length)]} if pos == len(data) else None


def _client(data: bytes, pos: int) -> tuple[int, int]:
    """A client id varint (7-8 bytes, repeated in every row of a client): decoded once, then cached."""
    match = _VARINT.match(data, pos)
    if match is None:
        raise IndexError("truncated varint")
    return _cached_client(match.group()), match.end()


def _varint(raw: bytes) -> int:
    """A varint matched whole by `_VARINT` (short ones inline)."""
    size = len(raw)
    if size == 1:
        return raw[0]
    if size == 2:
        return (raw[0] & 0x7F) | raw[1] << 7
    if size == 3:
        return (raw[0] & 0x7F) | (raw[1] & 0x7F) << 7 | raw[2] << 14
    return _uint(raw, 0)[0]


def _cached_client(raw: bytes) -> int:
    client = _CLIENTS.get(raw)
    if client is None:
        client = _varint(raw)
        if len(_CLIENTS) >= 65_536:
            _CLIENTS.clear()
        _CLIENTS[raw] = client
    return client


def _single_string(data: bytes) -> Struct | None:
    """Regex decoding of the commonest row: `1 client, 1 struct` holding one String item with an
    origin and/or right origin, then an empty delete set. None: take the general path."""
    head = _KEYSTROKE_HEAD.match(data)
    if head is None:
        return None
    info = data[head.end() - 1]
    tail = (_ORIGIN_AND_RIGHT if info == 0xC4 else _ONE_ORIGIN).match(data, head.end())
    if tail is None:
        return None
    groups = tail.groups()
    start = tail.end()
    size = _varint(groups[-1])
    if start + size + 1 != len(data) or data[-1] != 0:
        return None
    raw = data[start : start + size]
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return None
    first = (_cached_client(groups[0]), _varint(groups[1]))
    second = (_cached_client(groups[2]), _varint(groups[3])) if info == 0xC4 else None
    origin, right = (first, second) if info & 0x80 else (None, first)
    client, clock = _cached_client(head.group(1)), _varint(head.group(2))
    return Struct(client, clock, STRING, utf16_length(text, raw), origin, right, None, None, text)


def _item(r: _Reader, info: int, ref: int, client: int, clock: int) -> Struct:
    origin = (r.uint(), r.uint()) if info & 0x80 else None
    right = (r.uint(), r.uint()) if info & 0x40 else None
    parent: str | ID | None = None
    sub = None
    if not info & 0xC0:
        parent = r.string() if r.uint() == 1 else (r.uint(), r.uint())
        if info & 0x20:
            sub = r.string()
    struct = Struct(client, clock, ref, 1, origin, right, parent, sub)
    if ref == STRING:
        raw = r.raw()
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise DecodeError("string is not UTF-8") from None
        struct.text = text
        struct.length = utf16_length(text, raw)
    elif ref == DELETED:
        struct.length = r.uint()
    elif ref in (BINARY, EMBED):
        r.raw()
    elif ref == FORMAT:
        r.raw()
        r.raw()
    elif ref == TYPE:
        struct.type_ref = r.byte()
        if struct.type_ref == 3:
            r.raw()  # XmlElement node name
    elif ref == ANY:
        struct.length = r.uint()
        for _ in range(struct.length):
            r.any_value()
    elif ref == JSON:
        struct.length = r.uint()
        for _ in range(struct.length):
            r.raw()
    elif ref == DOC:
        r.raw()
        r.any_value()
    else:
        raise DecodeError(f"unknown struct kind {ref}")
    if struct.length <= 0:
        raise DecodeError("zero-length struct")
    return struct
