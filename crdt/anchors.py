"""Comment anchors: a range of a root Y.Text held by two Yjs relative positions, made and resolved."""

# Edge semantics. A range [s, e) is held by
#   start = the character at s, assoc >= 0 (the position sticks to the character on its right),
#   end   = the character at e-1, assoc < 0 (sticks to the character on its left),
# so it always covers exactly the live characters between its first and last original
# character, in document order:
# * text typed at the start edge (just before the first character) and at the end edge (just
#   after the last) stays outside; text typed between two characters of the range joins it;
# * concurrent edits converge: every replica resolves the same anchor to the same characters;
# * when every character of the range is deleted, both ends meet: the range is orphaned
#   (start == end, at the place where the text was).
# Two consequences of how Yjs and yrs place new text (after any deleted characters at the
# insertion point): once the first character of a range is deleted, text typed just before its
# first surviving character lands after that tombstone and joins the range; text typed after
# the last surviving character never does. A deletion undone by another replica comes back as
# new characters just before the tombstones: the range stays orphaned there, and `reattach`
# finds the original quote at that point (or, for quotes of REATTACH_MIN_CHARS or more, within
# REATTACH_WINDOW characters of it). The ASCII twin carries no "redone" links (they are not part
# of updates), so an undo made on the server's own replica behaves the same; yrs would resolve
# positions inside a run restored by its own UndoManager to the run's first character anyway
# (it drops the offset Yjs's `followRedone` keeps).
#
# pycrdt traps handled here: its StickyIndex offsets mix UTF-8 bytes and UTF-16 units (see
# crdt/shadow.py: every sticky index is made and resolved on an ASCII twin of the document);
# `StickyIndex.new` panics at the end of a text with assoc >= 0 and at 0 with assoc < 0 and
# returns garbage past the end; `decode`/`get_index` panic on malformed bytes or on items the
# document does not have; and a decoded position resolves against whatever shared type holds its
# item. So positions are parsed by our own codec, checked against the state vector, and proven
# to sit in the named text (the same item found again at the resolved offset).

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from pycrdt import Assoc, Doc, StickyIndex, Text, XmlElement, XmlFragment, XmlText

from crdt.document import decode_state_vector, is_native_failure
from crdt.positions import (
    ITEM,
    NESTED,
    AnchorError,
    RelativePosition,
    TextView,
    Unit,
    decode_relative_position,
)
from crdt.shadow import Shadow, ShadowError

MAX_QUOTE_CHARS = 10_000
REATTACH_WINDOW = 2_000  # characters between a returned quote and the orphan point
REATTACH_MIN_CHARS = 12  # shorter quotes are only re-found right at the orphan point


@dataclass(frozen=True, slots=True)
class Anchor:
    """What is stored: the root text's name and the two encoded relative positions."""

    root: str
    start: bytes
    end: bytes


@dataclass(frozen=True, slots=True)
class Placement:
    """A new anchor and the range it holds now (UTF-16 units) with its text."""

    anchor: Anchor
    start16: int
    end16: int
    quote: str
    view: TextView

    def offsets(self, unit: Unit) -> tuple[int, int]:
        return self.view.from_utf16(self.start16, unit), self.view.from_utf16(self.end16, unit)


@dataclass(frozen=True, slots=True)
class Resolution:
    """Where an anchor's range is in one replica, in the unit asked for.

    `orphaned`: none of its characters is left (start == end, where they were). `missing`: the
    anchor refers to content or a text this replica does not have (offsets are then 0).
    """

    start: int
    end: int
    quote: str
    orphaned: bool
    missing: bool = False


def root_text(doc: Doc[Any], root: str, field: str = "root", strict: bool = True) -> TextView:
    """The content of the root Y.Text `root` of `doc`; `AnchorError(field)` when there is none.

    Never creates a root (an existing one of unknown type is read as a text, as Yjs
    `doc.getText` would). With `strict`, a root holding anything but text and embeds (an array,
    an XML fragment) is refused; a map root looks like an empty text.
    """
    if not isinstance(root, str) or not root:
        raise AnchorError(field, "must be the non-empty name of a root Y.Text")
    if root not in set(doc.keys()):
        raise AnchorError(field, f"the document has no shared type named {root!r}")
    text = doc.get(root, type=Text)
    chunks: list[str | None] = []
    size = 0  # what pycrdt's len() counts: UTF-8 bytes, one per embed
    for insert, _attributes in text.diff():
        if isinstance(insert, str):
            chunks.append(insert)
            size += len(insert.encode("utf-8", "surrogatepass")) if strict else 0
        elif isinstance(insert, XmlElement | XmlFragment | XmlText):
            raise AnchorError(field, f"{root!r} is an XML fragment, not a Y.Text")
        else:
            chunks.append(None)
            size += 1
    if strict and size != len(text):
        raise AnchorError(field, f"{root!r} is not a Y.Text (it holds array or map content)")
    return TextView.from_chunks(chunks)


def anchor_range(
    doc: Doc[Any], root: str, start: int, end: int, unit: Unit, shadow: Shadow | None = None
) -> Placement:
    """Anchor the range [start, end) of `root`, offsets in `unit`; it must hold one character."""
    view = root_text(doc, root)
    twin = _twin(doc, root, view, shadow)
    start16 = view.checked_utf16(start, unit, "range.start")
    end16 = view.checked_utf16(end, unit, "range.end")
    if end16 <= start16:
        raise AnchorError("range.end", "the range is empty: end must be greater than start")
    return _place(twin, view, root, start16, end16)


def anchor_positions(
    doc: Doc[Any], root: str, start: bytes, end: bytes, shadow: Shadow | None = None
) -> Placement:
    """Anchor the range between two encoded relative positions made by a client (Yjs
    `encodeRelativePosition`). Each must point into `root` of this document; any assoc is
    accepted, and the range is re-anchored with our edge semantics (identical bytes when the
    client used assoc 0 for the start and -1 for the end, as recommended)."""
    begin = decode_relative_position(start, "anchor.start")
    finish = decode_relative_position(end, "anchor.end")
    view = root_text(doc, root)
    twin = _twin(doc, root, view, shadow)
    known = decode_state_vector(doc.get_state())
    start16 = _locate(twin, view, root, begin, known, "anchor.start")
    end16 = _locate(twin, view, root, finish, known, "anchor.end")
    if end16 <= start16:
        raise AnchorError("anchor.end", "the range is empty: the end is not after the start")
    return _place(twin, view, root, start16, end16)


def resolve(
    doc: Doc[Any], anchors: Sequence[Anchor], unit: Unit, shadow: Shadow | None = None
) -> list[Resolution]:
    """Resolve many anchors against one replica: one pass over each root text, one transaction."""
    known = decode_state_vector(doc.get_state())
    views: dict[str, TextView | None] = {}
    for root in {anchor.root for anchor in anchors}:
        try:
            views[root] = root_text(doc, root, strict=False)
        except AnchorError:
            views[root] = None
    twin = shadow or Shadow()
    for root, view in views.items():
        if view is not None:
            _twin(doc, root, view, twin)
    results: list[Resolution] = []
    with twin.doc.transaction() as txn:
        for anchor in anchors:
            view = views[anchor.root]
            start = _offset(txn, anchor.start, known)
            end = _offset(txn, anchor.end, known)
            if view is None or start is None or end is None:
                results.append(Resolution(0, 0, "", orphaned=False, missing=True))
                continue
            start = min(max(start, 0), view.length16)
            end = min(max(end, start), view.length16)
            results.append(
                Resolution(
                    view.from_utf16(start, unit),
                    view.from_utf16(end, unit),
                    view.quote16(start, end)[:MAX_QUOTE_CHARS],
                    orphaned=start == end,
                )
            )
    return results


def reattach(
    doc: Doc[Any], anchor: Anchor, quote: str, shadow: Shadow | None = None, window: int = REATTACH_WINDOW
) -> Placement | None:
    """A fresh anchor for an orphaned range whose original `quote` is back at the point where it
    vanished; None otherwise. An undo by another replica re-inserts the deleted run as new
    characters just before that point, so the quote ending right there (or starting right there)
    is taken. When more than the range was deleted, the quote sits inside the restored run: a
    quote of at least REATTACH_MIN_CHARS characters is also looked for up to `window` characters
    before (then after) the point; shorter quotes would match unrelated text too easily."""
    twin = shadow or Shadow()
    resolution = resolve(doc, [anchor], "codepoint", twin)[0]
    if not quote or resolution.missing or not resolution.orphaned:
        return None
    text = root_text(doc, anchor.root, strict=False)
    point, size = resolution.start, len(quote)
    if text.text[max(0, point - size) : point] == quote:
        start = point - size
    elif text.text[point : point + size] == quote:
        start = point
    elif size >= REATTACH_MIN_CHARS:
        start = text.text.rfind(quote, max(0, point - size - window), point)
        if start < 0:
            start = text.text.find(quote, point, point + size + window)
    else:
        start = -1
    if start < 0:
        return None
    start16, end16 = text.to_utf16(start, "codepoint"), text.to_utf16(start + size, "codepoint")
    return _place(_twin(doc, anchor.root, text, twin), text, anchor.root, start16, end16)


def _twin(doc: Doc[Any], root: str, view: TextView, shadow: Shadow | None) -> Text:
    """The root text of the (synced) ASCII twin; it must be exactly as long as the real one."""
    twin = shadow or Shadow()
    for attempt in range(2):
        twin.sync(doc)
        text: Text = twin.doc.get(root, type=Text)
        if len(text) == view.length16:
            return text
        if attempt == 0:
            twin.doc = Doc()  # out of step (should not happen): rebuild it once
    raise ShadowError(f"the anchor index of {root!r} disagrees with the document")


def _place(twin: Text, view: TextView, root: str, start16: int, end16: int) -> Placement:
    start = _sticky(twin, start16, Assoc.AFTER)
    end = _sticky(twin, end16, Assoc.BEFORE)
    quote = view.quote16(start16, end16)[:MAX_QUOTE_CHARS]
    return Placement(Anchor(root, start, end), start16, end16, quote, view)


def _sticky(twin: Text, index16: int, assoc: Assoc) -> bytes:
    """Callers guarantee 0 <= index16 < len for AFTER and 0 < index16 <= len for BEFORE."""
    try:
        return StickyIndex.new(twin, index16, assoc).encode()
    except BaseException as exc:
        if not is_native_failure(exc):
            raise
        raise ShadowError(f"pycrdt could not anchor offset {index16}: {exc}") from None


def _item_at(twin: Text, index16: int, after: bool) -> tuple[int, int] | None:
    position = decode_relative_position(_sticky(twin, index16, Assoc.AFTER if after else Assoc.BEFORE))
    return (position.client, position.clock) if position.kind == ITEM else None


def _locate(
    twin: Text, view: TextView, root: str, position: RelativePosition, known: dict[int, int], field: str
) -> int:
    """The UTF-16 offset of a client's position, proven to be in `root` of this document."""
    if position.kind == NESTED:
        raise AnchorError(field, "points into a nested shared type; only root texts take comments")
    if position.kind != ITEM:
        if position.root != root:
            raise AnchorError(field, f"points into the shared type {position.root!r}, not {root!r}")
        return view.length16 if position.after else 0
    if position.clock >= known.get(position.client, 0):
        raise AnchorError(
            field, "refers to content this document does not have (another document, or unsynced edits)"
        )
    with twin.doc.transaction() as txn:
        offset = _offset(txn, position.encode(), known)
    item = (position.client, position.clock)
    if offset is None:
        found = False
    elif position.after:
        found = offset < view.length16 and _item_at(twin, offset, True) == item
    else:
        found = offset > 0 and _item_at(twin, offset, False) == item
    if not found or offset is None:
        raise AnchorError(
            field, f"does not point at live text of {root!r} (deleted, or in another shared type)"
        )
    if view.splits_pair(offset):
        raise AnchorError(field, "points between the two halves of a surrogate pair")
    return offset


def _offset(txn: Any, data: bytes, known: dict[int, int]) -> int | None:
    """The UTF-16 offset of position bytes in the twin, None when the document lacks its item."""
    try:
        position = decode_relative_position(data)
    except AnchorError:
        return None
    if position.kind == NESTED or (position.kind == ITEM and position.clock >= known.get(position.client, 0)):
        return None
    try:
        return int(StickyIndex.decode(position.encode()).get_index(txn))
    except BaseException as exc:
        if not is_native_failure(exc):
            raise
        return None
