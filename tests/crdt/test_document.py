"""The document wrapper: deltas, duplicates, failures contained."""

from __future__ import annotations

import pytest
from pycrdt import Doc, Map, Text

from crdt.document import Document, decode_state_vector, encode_state_vector
from crdt.errors import ApplyFailed


def edits() -> list[bytes]:
    doc: Doc = Doc()
    updates: list[bytes] = []
    doc.observe(lambda event: updates.append(event.update))
    text = doc.get("t", type=Text)
    text.insert(0, "hello")
    text.insert(5, " world")
    doc.get("m", type=Map)["k"] = 1
    return updates


def test_apply_returns_the_integrated_delta_and_nothing_for_duplicates() -> None:
    document = Document()
    first, *_ = edits()
    delta = document.apply(first)
    assert delta
    assert document.apply(first) == b""


def test_delta_of_an_overlapping_update_holds_only_what_is_new() -> None:
    updates = edits()
    document = Document()
    document.apply(updates[0])
    full = Doc()
    for update in updates:
        full.apply_update(update)
    delta = document.apply(full.get_update())
    assert b" world" in delta
    assert b"hello" not in delta
    assert str(document.doc.get("t", type=Text)) == "hello world"


def test_pycrdt_failure_surfaces_as_apply_failed() -> None:
    document = Document()
    with pytest.raises(ApplyFailed):
        document.apply(bytes.fromhex("010207002801016d016b017d0108000700017d0200"))


def test_state_vector_codec_round_trip() -> None:
    document = Document()
    for update in edits():
        document.apply(update)
    state = document.clock_state()
    assert decode_state_vector(encode_state_vector(state)) == state
    assert sum(state.values()) == 12
