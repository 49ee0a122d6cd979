"""An ASCII twin of a document (same items, ids and order) in which pycrdt's sticky indices count right."""

# Why. pycrdt 0.14 (yrs, OffsetKind::Bytes) counts StickyIndex offsets in two units at once:
# `get_index` adds the UTF-8 byte length of every block left of the position's block to the
# UTF-16 offset inside that block, and `StickyIndex.new` walks blocks by byte length but lands
# inside a block by UTF-16 units (it returns ids that do not exist once a non-ASCII block
# precedes the index). Both are right when every character is one byte and one UTF-16 unit.
#
# So the twin holds the same structs with each String content replaced by as many "x" as it has
# UTF-16 units: ids, origins, clock lengths, deletions and hence the YATA order are unchanged,
# and every unit (bytes, UTF-16, clocks) coincides. Offsets taken there are UTF-16 offsets of
# the real document; relative positions made there are valid for it (and for Yjs clients).
#
# `Shadow.sync(doc)` feeds it `doc.get_update(its state vector)` rewritten: the missing structs
# plus the whole delete set, so keeping it current costs the size of the change. The rewriter
# parses Yjs update v1 completely (it must find every string); it runs on our own document's
# state, which passed the validator on the way in.

from __future__ import annotations

from typing import Any

from pycrdt import Doc

from crdt.document import decode_state_vector, is_native_failure
from crdt.errors import CoreError, DecodeError
from crdt.lib0 import Decoder, encode_var_string

_XML_ELEMENT, _XML_HOOK = 3, 5


class ShadowError(CoreError):
    """The document's state could not be mirrored (a grammar this rewriter does not know)."""

    close_code = 1011
    reason = "anchor index failed"


def asciify_update(update: bytes) -> bytes:
    """`update` (Yjs v1) with every non-ASCII String content replaced by "x" per UTF-16 unit."""
    rewriter = _Rewriter(update)
    try:
        return rewriter.run()
    except DecodeError as exc:
        raise ShadowError(
            f"cannot mirror the document state at byte {rewriter.dec.pos}: {exc.detail}"
        ) from exc


class Shadow:
    """The ASCII twin of one document; call `sync(doc)` before each use."""

    __slots__ = ("doc", "syncs")

    def __init__(self) -> None:
        self.doc: Doc[Any] = Doc()
        self.syncs = 0

    def sync(self, source: Doc[Any]) -> None:
        """Bring the twin up to `source`'s state (rebuilt when `source` is not its continuation)."""
        mine = decode_state_vector(self.doc.get_state())
        theirs = decode_state_vector(source.get_state())
        if any(clock > theirs.get(client, 0) for client, clock in mine.items()):
            self.doc = Doc()  # another lineage (a rebuilt or restored document): start again
        try:
            self.doc.apply_update(asciify_update(source.get_update(self.doc.get_state())))
        except BaseException as exc:
            if not is_native_failure(exc) or isinstance(exc, ShadowError):
                raise
            self.doc = Doc()  # not atomic: never keep a half-applied twin
            raise ShadowError(f"pycrdt refused the mirrored state: {exc}") from None
        self.syncs += 1


class _Rewriter:
    __slots__ = ("data", "dec", "last", "out")

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.dec = Decoder(data)
        self.out: list[bytes] = []
        self.last = 0  # bytes before this offset are already in `out`

    def run(self) -> bytes:
        dec = self.dec
        for _ in range(self._count()):
            structs = self._count()
            dec.read_var_uint()  # client
            dec.read_var_uint()  # first clock
            for _ in range(structs):
                info = dec.read_uint8()
                if info == 0 or info == 10:  # GC, Skip: a length
                    dec.read_var_uint()
                else:
                    self._item(info)
        for _ in range(self._count()):  # delete set: copied as is
            dec.read_var_uint()
            for _ in range(self._count()):
                dec.read_var_uint()
                dec.read_var_uint()
        if not dec.at_end():
            raise DecodeError(f"{dec.remaining} trailing bytes")
        if not self.out:
            return self.data
        self.out.append(self.data[self.last :])
        return b"".join(self.out)

    def _count(self) -> int:
        n = self.dec.read_var_uint()
        if n > self.dec.remaining:
            raise DecodeError(f"count {n} exceeds the {self.dec.remaining} bytes left")
        return n

    def _item(self, info: int) -> None:
        dec = self.dec
        if info & 0x80:  # origin
            dec.read_var_uint()
            dec.read_var_uint()
        if info & 0x40:  # right origin
            dec.read_var_uint()
            dec.read_var_uint()
        if not info & 0xC0:  # parent written out
            if dec.read_var_uint() == 1:
                dec.read_var_bytes()  # root name
            else:
                dec.read_var_uint()
                dec.read_var_uint()
            if info & 0x20:
                dec.read_var_bytes()  # map key
        ref = info & 0x1F
        if ref == 4:  # String: the one content we change
            self._string()
        elif ref == 1:  # Deleted: a length
            dec.read_var_uint()
        elif ref == 2:  # JSON (legacy): strings
            for _ in range(self._count()):
                dec.read_var_bytes()
        elif ref == 3 or ref == 5:  # Binary, Embed (JSON text)
            dec.read_var_bytes()
        elif ref == 6:  # Format: key, JSON value
            dec.read_var_bytes()
            dec.read_var_bytes()
        elif ref == 7:  # Type
            if dec.read_var_uint() in (_XML_ELEMENT, _XML_HOOK):
                dec.read_var_bytes()
        elif ref == 8:  # Any
            for _ in range(self._count()):
                self._any()
        elif ref == 9:  # Doc: guid, options
            dec.read_var_bytes()
            self._any()
        else:
            raise DecodeError(f"unknown content kind {ref}")

    def _string(self) -> None:
        start = self.dec.pos
        raw = self.dec.read_var_bytes()
        if raw.isascii():
            return
        try:
            units = len(raw.decode("utf-8", "surrogatepass").encode("utf-16-le", "surrogatepass")) // 2
        except UnicodeError:
            raise DecodeError("string content is not UTF-8") from None
        self.out.append(self.data[self.last : start])
        self.out.append(encode_var_string("x" * units))
        self.last = self.dec.pos

    def _any(self) -> None:
        """Skip one lib0 Any value, iteratively."""
        dec = self.dec
        pending = [1]  # values left to read per open container level
        keyed = [False]
        while pending:
            if not pending[-1]:
                pending.pop()
                keyed.pop()
                continue
            pending[-1] -= 1
            if keyed[-1]:
                dec.read_var_bytes()
            tag = dec.read_uint8()
            if tag in (127, 126, 121, 120):  # undefined, null, false, true
                continue
            if tag == 125:
                dec.read_var_int()
            elif tag == 119 or tag == 116:  # string, Uint8Array
                dec.read_var_bytes()
            elif tag == 124:
                dec.read_bytes(4)
            elif tag == 123 or tag == 122:
                dec.read_bytes(8)
            elif tag == 118 or tag == 117:  # object, array
                pending.append(self._count())
                keyed.append(tag == 118)
            else:
                raise DecodeError(f"unknown Any tag {tag}")
