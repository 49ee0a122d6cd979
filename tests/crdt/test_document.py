"""The document wrapper: deltas, duplicates, failures contained."""

from __future__ import annotations

import pytest
from pycrdt import Doc, Map, Text

from crdt.document import Document, decode_state_vector, encode_state_vector
from crdt.errors import ApplyFailed
from crdt.validation import validate_update


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


def test_integrate_takes_the_fresh_path_and_keeps_the_clock_state_exact() -> None:
    document = Document()
    known: dict[int, int] = {}
    for update in edits():
        delta, exact = document.integrate(update, validate_update(update, known_state=known), known)
        assert (delta, exact) == (update, True)
        assert known == document.clock_state()
    assert str(document.doc.get("t", type=Text)) == "hello world"


def test_integrate_observes_overlapping_and_duplicate_updates() -> None:
    updates = edits()
    document = Document()
    known: dict[int, int] = {}
    document.integrate(updates[0], validate_update(updates[0], known_state=known), known)
    full = Doc()
    for update in updates:
        full.apply_update(update)
    everything = full.get_update()
    delta, exact = document.integrate(everything, validate_update(everything, known_state=known), known)
    assert not exact and b" world" in delta and b"hello" not in delta
    known = document.clock_state()
    again, exact = document.integrate(updates[0], validate_update(updates[0], known_state=known), known)
    assert (again, exact) == (b"", False)
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
