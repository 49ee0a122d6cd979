"""Anchors: units, the relative position codec, edge semantics, validation of client positions, orphans."""

from __future__ import annotations

from typing import Any

import pytest
from pycrdt import Array, Assoc, Doc, Map, StickyIndex, Text, UndoManager, XmlFragment, XmlText

from crdt.anchors import Anchor, anchor_positions, anchor_range, reattach, resolve, root_text
from crdt.lib0 import encode_var_uint
from crdt.positions import (
    ITEM,
    ROOT,
    AnchorError,
    RelativePosition,
    TextView,
    decode_relative_position,
    item_position,
    parse_unit,
)
from crdt.shadow import Shadow, asciify_update

EMOJI = "\U0001f600"  # one code point, two UTF-16 units, four UTF-8 bytes


def text_doc(content: str, root: str = "t") -> tuple[Doc[Any], Text]:
    doc: Doc[Any] = Doc()
    text = doc.get(root, type=Text)
    text += content
    return doc, text


def byte_offset(text: Text, codepoint: int) -> int:
    """pycrdt's Text takes UTF-8 byte offsets."""
    return len(str(text)[:codepoint].encode())


def insert(text: Text, codepoint: int, value: str) -> None:
    text.insert(byte_offset(text, codepoint), value)


def delete(text: Text, start: int, end: int) -> None:
    del text[byte_offset(text, start) : byte_offset(text, end)]


def span(doc: Doc[Any], anchor: Anchor) -> tuple[int, int, str]:
    found = resolve(doc, [anchor], "codepoint")[0]
    return found.start, found.end, found.quote


# -- units ------------------------------------------------------------------------------------------


def test_text_view_converts_between_units() -> None:
    view = TextView(f"a{EMOJI}b\u00e9{EMOJI}{EMOJI}c")
    assert (view.length("codepoint"), view.length("utf16")) == (7, 10)
    utf16 = [0, 1, 3, 4, 5, 7, 9, 10]
    for codepoint, offset16 in enumerate(utf16):
        assert view.to_utf16(codepoint, "codepoint") == offset16
        assert view.from_utf16(offset16, "codepoint") == codepoint
        assert view.from_utf16(offset16, "utf16") == offset16
    assert [o for o in range(11) if view.splits_pair(o)] == [2, 6, 8]
    assert view.quote16(1, 5) == f"{EMOJI}b\u00e9"


def test_checked_offsets_name_the_field() -> None:
    view = TextView(f"a{EMOJI}")
    assert view.checked_utf16(2, "codepoint", "range.end") == 3
    for offset, unit in ((4, "utf16"), (3, "codepoint"), (-1, "utf16")):
        with pytest.raises(AnchorError) as caught:
            view.checked_utf16(offset, unit, "range.end")  # type: ignore[arg-type]
        assert caught.value.field == "range.end" and "outside" in caught.value.detail
    with pytest.raises(AnchorError, match="surrogate pair"):
        view.checked_utf16(2, "utf16", "range.start")
    with pytest.raises(AnchorError, match="integer"):
        view.checked_utf16(True, "utf16", "range.start")
    with pytest.raises(AnchorError) as unit_error:
        parse_unit("bytes")
    assert unit_error.value.field == "unit"


# -- relative position codec ---------------------------------------------------------------------------


def test_codec_round_trips_and_matches_pycrdt() -> None:
    doc, text = text_doc("hello")
    made = StickyIndex.new(text, 2, Assoc.BEFORE).encode()
    position = decode_relative_position(made)
    assert (position.kind, position.client, position.clock, position.assoc) == (ITEM, doc.client_id, 1, -1)
    assert position.encode() == made
    root = RelativePosition(ROOT, -1, root="t")
    assert decode_relative_position(root.encode()) == root
    assert decode_relative_position(b"\x00\x05\x07") == item_position(5, 7, after=True)  # no assoc: 0


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\x00",
        b"\x00\x01",
        b"\x07\x00\x00",
        b"\x00\x01\x02\x00\x99",
        b"\x01\x05ab",
        b"\x00" + b"\xff" * 11,
        b"\x00\x01" + encode_var_uint(2**32) + b"\x00",
        b"\x00" + encode_var_uint(2**53) + b"\x01\x00",
        b"\x01" + encode_var_uint(600) + b"x" * 600,
        b"\x01\x02\xff\xfe\x00",
        b"\x00" * 2000,
    ],
)
def test_codec_refuses_malformed_bytes(data: bytes) -> None:
    with pytest.raises(AnchorError) as caught:
        decode_relative_position(data, "anchor.start")
    assert caught.value.field == "anchor.start"


# -- edges and orphans ----------------------------------------------------------------------------------


def test_range_in_both_units_around_emoji() -> None:
    doc, text = text_doc(f"{EMOJI}ab{EMOJI}cd\u00e9")
    made = anchor_range(doc, "t", 3, 7, "utf16")  # "b😀c"
    assert (made.quote, made.offsets("codepoint"), made.offsets("utf16")) == (f"b{EMOJI}c", (2, 5), (3, 7))
    insert(text, 0, f"{EMOJI}\u00e9")
    assert resolve(doc, [made.anchor], "utf16")[0].start == 6
    assert span(doc, made.anchor) == (4, 7, f"b{EMOJI}c")
    same = anchor_range(doc, "t", 4, 7, "codepoint")
    assert same.anchor == made.anchor


def test_text_typed_at_the_edges_stays_out_and_inside_joins() -> None:
    doc, text = text_doc("0123456789")
    anchor = anchor_range(doc, "t", 3, 6, "codepoint").anchor  # "345"
    insert(text, 3, "[")  # at the start edge
    insert(text, 7, "]")  # at the end edge
    assert str(text) == "012[345]6789" and span(doc, anchor) == (4, 7, "345")
    insert(text, 6, "+")  # inside
    assert span(doc, anchor) == (4, 8, "34+5")


def test_concurrent_edits_at_the_edges_converge() -> None:
    doc, text = text_doc("abcdef")
    peer: Doc[Any] = Doc()
    peer.apply_update(doc.get_update())
    anchor = anchor_range(doc, "t", 2, 4, "codepoint").anchor  # "cd"
    insert(text, 2, "<")
    insert(peer.get("t", type=Text), 4, ">")
    insert(peer.get("t", type=Text), 3, "~")
    doc.apply_update(peer.get_update(doc.get_state()))
    peer.apply_update(doc.get_update(peer.get_state()))
    for replica in (doc, peer):
        assert str(replica.get("t", type=Text)) == "ab<c~d>ef"
        assert span(replica, anchor) == (3, 6, "c~d")


def test_deleting_all_of_it_orphans_and_an_undo_elsewhere_brings_it_back() -> None:
    doc, text = text_doc(f"one tw\u00f6 {EMOJI} three")
    made = anchor_range(doc, "t", 4, 9, "codepoint")  # "twö 😀"
    editor: Doc[Any] = Doc()
    editor.apply_update(doc.get_update())
    edited = editor.get("t", type=Text)
    undo = UndoManager(scopes=[edited], capture_timeout_millis=0)
    delete(edited, 4, 9)
    doc.apply_update(editor.get_update(doc.get_state()))
    found = resolve(doc, [made.anchor], "codepoint")[0]
    assert found.orphaned and (found.start, found.end) == (4, 4)
    assert reattach(doc, made.anchor, made.quote) is None  # the text is gone
    undo.undo()  # the editor's undo re-inserts the text as new characters
    doc.apply_update(editor.get_update(doc.get_state()))
    assert resolve(doc, [made.anchor], "codepoint")[0].orphaned  # the old characters stay deleted
    moved = reattach(doc, made.anchor, made.quote)
    assert moved is not None and moved.offsets("codepoint") == (4, 9) and moved.quote == made.quote
    insert(text, 6, "!")
    assert span(doc, moved.anchor) == (4, 10, f"tw!\u00f6 {EMOJI}")


def test_undo_redo_undo_orphans_and_brings_back_the_range_each_time() -> None:
    doc, _ = text_doc(f"keep {EMOJI} this caf\u00e9 part, and the rest")
    made = anchor_range(doc, "t", 7, 21, "codepoint")  # "this café part"
    editor: Doc[Any] = Doc()
    editor.apply_update(doc.get_update())
    edited = editor.get("t", type=Text)
    undo = UndoManager(scopes=[edited], capture_timeout_millis=0)
    delete(edited, 5, 22)  # "😀 this café part," and around: more than the range

    def synced() -> None:
        doc.apply_update(editor.get_update(doc.get_state()))

    synced()
    assert resolve(doc, [made.anchor], "codepoint")[0].orphaned
    assert reattach(doc, made.anchor, made.quote) is None
    assert undo.undo()  # back, as new characters
    synced()
    first = reattach(doc, made.anchor, made.quote)
    assert first is not None and first.offsets("codepoint") == (7, 21) and first.quote == made.quote
    assert span(doc, first.anchor) == (7, 21, made.quote)
    assert undo.redo()  # deleted again: the re-found range is orphaned too, and nothing is re-found
    synced()
    assert str(edited) == "keep  and the rest" == str(doc.get("t", type=Text))
    for anchor in (made.anchor, first.anchor):
        found = resolve(doc, [anchor], "codepoint")[0]
        assert found.orphaned and (found.start, found.end) == (5, 5)
        assert reattach(doc, anchor, made.quote) is None
    assert undo.undo()  # back once more, as other new characters: found again from either anchor
    synced()
    assert resolve(doc, [first.anchor], "codepoint")[0].orphaned  # the first re-found characters stay gone
    for anchor in (made.anchor, first.anchor):
        again = reattach(doc, anchor, made.quote)
        assert again is not None and again.offsets("codepoint") == (7, 21) and again.quote == made.quote


def test_an_undone_larger_deletion_is_re_found_for_long_quotes_only() -> None:
    doc, _ = text_doc(f"A long sentence with a caf\u00e9 {EMOJI} in it. Next.")
    long = anchor_range(doc, "t", 2, 20, "codepoint")  # "long sentence with"
    short = anchor_range(doc, "t", 23, 27, "codepoint")  # "café"
    editor: Doc[Any] = Doc()
    editor.apply_update(doc.get_update())
    edited = editor.get("t", type=Text)
    undo = UndoManager(scopes=[edited], capture_timeout_millis=0)
    delete(edited, 0, 36)  # the whole first sentence
    doc.apply_update(editor.get_update(doc.get_state()))
    undo.undo()
    doc.apply_update(editor.get_update(doc.get_state()))
    moved = reattach(doc, long.anchor, long.quote)
    assert moved is not None and moved.offsets("codepoint") == (2, 20)
    assert reattach(doc, short.anchor, short.quote) is None  # too short to trust away from the point


def test_a_short_quote_is_not_re_found_in_unrelated_text() -> None:
    doc, text = text_doc(f"ab {EMOJI} cd {EMOJI} ef")
    made = anchor_range(doc, "t", 3, 5, "codepoint")  # "😀 "
    delete(text, 3, 5)
    assert reattach(doc, made.anchor, made.quote) is None


def test_partial_deletion_shrinks_the_range() -> None:
    doc, text = text_doc("abcdefgh")
    anchor = anchor_range(doc, "t", 2, 6, "codepoint").anchor  # "cdef"
    delete(text, 1, 3)  # "bc"
    delete(text, 3, 5)  # "fg" (now at 3..5)
    assert str(text) == "adeh" and span(doc, anchor) == (1, 3, "de")


def test_embeds_count_one_unit() -> None:
    doc, text = text_doc("ab")
    text.insert_embed(1, {"image": "x.png"})
    insert(text, 0, EMOJI)
    made = anchor_range(doc, "t", 1, 4, "codepoint")
    assert made.quote == "a\ufffcb" and made.offsets("utf16") == (2, 5)


# -- validation -------------------------------------------------------------------------------------


def test_client_positions_are_checked_and_normalised() -> None:
    doc, text = text_doc(f"x{EMOJI}yz")
    other = doc.get("u", type=Text)
    other += "elsewhere"
    start = StickyIndex.new(text, 3, Assoc.AFTER).encode()  # ASCII prefix of one block: pycrdt is right here
    end_after = StickyIndex.new(text, 4, Assoc.AFTER).encode()  # the end given with assoc 0
    made = anchor_positions(doc, "t", start, end_after)
    assert made.quote == "y" and made.anchor.start == start and made.anchor.end != end_after
    root_end = RelativePosition(ROOT, 0, root="t").encode()
    assert anchor_positions(doc, "t", start, root_end).quote == "yz"
    cases: list[tuple[bytes, bytes, str, str]] = [
        (item_position(12345, 0, True).encode(), root_end, "anchor.start", "does not have"),
        (StickyIndex.new(other, 2, Assoc.AFTER).encode(), root_end, "anchor.start", "live text"),
        (start, RelativePosition(ROOT, 0, root="u").encode(), "anchor.end", "'u'"),
        (start, RelativePosition(2, 0, doc.client_id, 0).encode(), "anchor.end", "nested"),
        (start, start, "anchor.end", "empty"),
        (item_position(doc.client_id, 2, True).encode(), root_end, "anchor.start", "surrogate"),
    ]
    for begin, finish, field, message in cases:
        with pytest.raises(AnchorError) as caught:
            anchor_positions(doc, "t", begin, finish)
        assert caught.value.field == field and message in caught.value.detail, caught.value
    delete(text, 2, 3)  # the "y" the start sticks to
    with pytest.raises(AnchorError, match="deleted"):
        anchor_positions(doc, "t", start, root_end)


def test_only_root_texts_take_anchors() -> None:
    doc: Doc[Any] = Doc()
    doc.get("list", type=Array).append("text in an array")
    doc.get("map", type=Map)["k"] = "v"
    doc.get("xml", type=XmlFragment).children.append(XmlText("hi"))
    copy: Doc[Any] = Doc()
    copy.apply_update(doc.get_update())  # roots of unknown type, as the server sees them
    for root, message in (
        ("list", "not a Y.Text"),
        ("xml", "XML"),
        ("missing", "no shared type"),
        ("", "non-empty"),
    ):
        with pytest.raises(AnchorError) as caught:
            root_text(copy, root)
        assert caught.value.field == "root" and message in caught.value.detail
    with pytest.raises(AnchorError, match="outside"):
        anchor_range(copy, "map", 0, 1, "utf16")  # a map reads as an empty text
    assert "missing" not in set(copy.keys())


def test_a_replica_without_the_content_reports_missing() -> None:
    doc, _ = text_doc("abc")
    anchor = anchor_range(doc, "t", 0, 2, "utf16").anchor
    stranger, _ = text_doc("xyz")
    assert resolve(stranger, [anchor], "utf16")[0].missing
    assert resolve(doc, [Anchor("nope", anchor.start, anchor.end)], "utf16")[0].missing


# -- the ASCII twin ---------------------------------------------------------------------------------------


def test_pycrdt_sticky_offsets_mix_units_which_the_twin_avoids() -> None:
    """The reason for crdt/shadow.py; if pycrdt fixes this, the twin can go (see its notes)."""
    doc, text = text_doc("xyz")
    text.insert(0, "\u00e9\u00e9")  # a second block, of two-byte characters, before "xyz"
    y = item_position(doc.client_id, 1, after=True).encode()  # the "y", at UTF-16 offset 3
    with doc.transaction() as txn:
        assert StickyIndex.decode(y).get_index(txn) == 5  # 4 bytes of "éé" + 1 unit into "xyz"
    made_by_pycrdt = decode_relative_position(StickyIndex.new(text, 3, Assoc.AFTER).encode())
    assert made_by_pycrdt.clock != 1  # not the "y"
    made = anchor_range(doc, "t", 3, 4, "utf16")
    assert made.anchor.start == y and span(doc, made.anchor) == (3, 4, "y")


def test_twin_follows_incrementally_and_rebuilds_for_another_lineage() -> None:
    doc, text = text_doc(f"{EMOJI} caf\u00e9")
    twin = Shadow()
    made = anchor_range(doc, "t", 2, 6, "codepoint", twin)
    for step in range(20):
        insert(text, step % 5, f"{EMOJI}\u00e9"[step % 2])
        assert resolve(doc, [made.anchor], "codepoint", twin)[0].quote == "caf\u00e9"
    other, _ = text_doc("unrelated")
    assert resolve(other, [made.anchor], "codepoint", twin)[0].missing
    assert len(twin.doc.get("t", type=Text)) == len("unrelated")
    assert asciify_update(b"\x00\x00") == b"\x00\x00"
