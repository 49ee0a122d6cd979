"""Yjs relative positions (a bounded codec) and text offsets in UTF-16 units or code points."""

# Units. Yjs clients count Y.Text offsets in UTF-16 code units; people and Python count code
# points. pycrdt has two more: `Text` insert/delete/len take UTF-8 byte offsets, while
# `StickyIndex.new` / `get_index` take and return UTF-16 units (the item clocks). Nothing here
# uses bytes: anchors are made and resolved in UTF-16 units and converted at the API boundary.
# Embedded objects (Quill-style embeds, shared types inside a text) count one unit in both units
# and show as U+FFFC in quotes.
#
# Relative position grammar (Yjs `encodeRelativePosition`, yrs `StickyIndex::encode_v1`):
#   varUint(kind) + body + [varInt(assoc)]          assoc absent = 0 (old encoders)
#   kind 0: item id    varUint(client) varUint(clock)   the character the position sticks to
#   kind 1: root type  varString(name)                  start (assoc < 0) or end of a root type
#   kind 2: nested     varUint(client) varUint(clock)   start/end of a type held by an item
# assoc >= 0 sticks to the character on the right of the position, assoc < 0 to the one on its left.

from __future__ import annotations

import re
from bisect import bisect_left, bisect_right
from dataclasses import dataclass
from typing import Literal

from crdt.errors import DecodeError
from crdt.lib0 import (
    MAX_SAFE_INTEGER,
    Decoder,
    encode_var_int,
    encode_var_string,
    encode_var_uint,
)

Unit = Literal["utf16", "codepoint"]
UNITS: tuple[Unit, ...] = ("utf16", "codepoint")

MAX_POSITION_BYTES = 1024
MAX_ROOT_NAME_BYTES = 512
MAX_CLOCK = 2**32 - 1  # yrs keeps clocks in u32
MAX_ASSOC = 2**31 - 1
OBJECT = "\ufffc"  # how an embed shows in a quote

ITEM, ROOT, NESTED = 0, 1, 2
_ASTRAL = re.compile("[\U00010000-\U0010ffff]")


class AnchorError(ValueError):
    """Input that cannot become (or be resolved as) an anchor; `field` names the offending input."""

    def __init__(self, field: str, detail: str) -> None:
        super().__init__(f"{field}: {detail}")
        self.field = field
        self.detail = detail


def parse_unit(value: str, field: str = "unit") -> Unit:
    for unit in UNITS:
        if value == unit:
            return unit
    raise AnchorError(field, f"unknown unit {value!r}; use 'utf16' or 'codepoint'")


@dataclass(frozen=True, slots=True)
class RelativePosition:
    """A decoded relative position: `kind` ITEM/NESTED use (client, clock), ROOT uses `root`."""

    kind: int
    assoc: int
    client: int = 0
    clock: int = 0
    root: str = ""

    @property
    def after(self) -> bool:
        """True when it sticks to the character on its right (Yjs assoc >= 0)."""
        return self.assoc >= 0

    def encode(self) -> bytes:
        """The canonical encoding (assoc always written), readable by Yjs and pycrdt."""
        if self.kind == ROOT:
            body = encode_var_string(self.root)
        else:
            body = encode_var_uint(self.client) + encode_var_uint(self.clock)
        return encode_var_uint(self.kind) + body + encode_var_int(self.assoc)


def item_position(client: int, clock: int, after: bool) -> RelativePosition:
    return RelativePosition(ITEM, 0 if after else -1, client, clock)


def decode_relative_position(data: bytes, field: str = "anchor") -> RelativePosition:
    """Parse `data` fully, with caps; `AnchorError(field)` on anything malformed or out of bounds."""
    if not isinstance(data, bytes | bytearray):
        raise AnchorError(field, "must be bytes")
    if not data:
        raise AnchorError(field, "is empty")
    if len(data) > MAX_POSITION_BYTES:
        raise AnchorError(field, f"longer than {MAX_POSITION_BYTES} bytes")
    dec = Decoder(bytes(data))
    try:
        kind = dec.read_var_uint()
        client = clock = 0
        root = ""
        if kind in (ITEM, NESTED):
            client, clock = dec.read_var_uint(), dec.read_var_uint()
            if client > MAX_SAFE_INTEGER:
                raise AnchorError(field, "client id above 2^53-1")
            if clock > MAX_CLOCK:
                raise AnchorError(field, "clock above 2^32-1")
        elif kind == ROOT:
            root = dec.read_var_string(MAX_ROOT_NAME_BYTES)
        else:
            raise AnchorError(field, f"unknown relative position kind {kind}")
        assoc = 0 if dec.at_end() else dec.read_var_int()
        if not dec.at_end():
            raise AnchorError(field, f"{dec.remaining} trailing bytes")
    except DecodeError as exc:
        raise AnchorError(field, f"not a Yjs relative position: {exc.detail}") from None
    if abs(assoc) > MAX_ASSOC:
        raise AnchorError(field, "assoc out of range")
    return RelativePosition(kind, assoc, client, clock, root)


class TextView:
    """The content of a Y.Text as one string (embeds as U+FFFC) with O(log n) unit conversions."""

    __slots__ = ("_astral", "_pairs", "length16", "text")

    def __init__(self, text: str) -> None:
        self.text = text
        # Code point index of every astral character (a surrogate pair in UTF-16), and its
        # UTF-16 offset: the k-th one starts at cp + k.
        self._astral = [m.start() for m in _ASTRAL.finditer(text)]
        self._pairs = [cp + k for k, cp in enumerate(self._astral)]
        self.length16 = len(text) + len(self._pairs)

    @classmethod
    def from_chunks(cls, chunks: list[str | None]) -> TextView:
        """From text runs, None standing for one embedded object."""
        return cls("".join(OBJECT if chunk is None else chunk for chunk in chunks))

    def length(self, unit: Unit) -> int:
        return self.length16 if unit == "utf16" else len(self.text)

    def splits_pair(self, offset16: int) -> bool:
        """True when a UTF-16 offset falls between the two halves of a surrogate pair."""
        pairs = self._pairs
        at = bisect_left(pairs, offset16 - 1)
        return at < len(pairs) and pairs[at] == offset16 - 1

    def to_utf16(self, offset: int, unit: Unit) -> int:
        """A valid offset in `unit` as UTF-16 units (no range check)."""
        if unit == "utf16" or not self._pairs:
            return offset
        return offset + bisect_left(self._astral, offset)

    def from_utf16(self, offset16: int, unit: Unit) -> int:
        """A UTF-16 offset in `unit`; an offset inside a surrogate pair counts as before the pair."""
        if unit == "utf16" or not self._pairs:
            return offset16
        whole = bisect_right(self._pairs, offset16 - 2)  # pairs ending at or before the offset
        if self.splits_pair(offset16):
            offset16 -= 1
        return offset16 - whole

    def checked_utf16(self, offset: int, unit: Unit, field: str) -> int:
        """Validate an offset given by a client and return it in UTF-16 units."""
        if isinstance(offset, bool) or not isinstance(offset, int):
            raise AnchorError(field, "must be an integer")
        limit = self.length(unit)
        if offset < 0 or offset > limit:
            raise AnchorError(field, f"offset {offset} outside the text (0..{limit} {unit} units)")
        offset16 = self.to_utf16(offset, unit)
        if unit == "utf16" and self.splits_pair(offset16):
            raise AnchorError(field, f"offset {offset} splits a surrogate pair (one character)")
        return offset16

    def quote16(self, start16: int, end16: int) -> str:
        """The text between two UTF-16 offsets."""
        return self.text[self.from_utf16(start16, "codepoint") : self.from_utf16(end16, "codepoint")]
