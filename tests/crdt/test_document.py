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


class PanicException(BaseException):
    """What pyo3 raises for a Rust panic: a BaseException named so (`is_native_failure` goes by it)."""


def panicking(*_: object) -> None:
    raise PanicException("called `Option::unwrap()` on a `None` value")


@pytest.mark.parametrize("fresh", [True, False], ids=["fresh", "overlapping"])
def test_a_native_panic_while_integrating_becomes_apply_failed(
    monkeypatch: pytest.MonkeyPatch, fresh: bool
) -> None:
    updates = edits()
    document = Document()
    known: dict[int, int] = {}
    document.integrate(updates[0], validate_update(updates[0], known_state=known), known)
    full = Doc()
    for update in updates:
        full.apply_update(update)
    update = updates[1] if fresh else full.get_update()  # all of it overlaps: the observing `apply`
    summary = validate_update(update, known_state=known)
    monkeypatch.setattr(Doc, "apply_update", panicking)
    with pytest.raises(ApplyFailed, match="pycrdt refused the update: called `Option::unwrap"):
        document.integrate(update, summary, known)
    assert document._captured == []  # nothing half-captured stays behind for the next apply


def test_a_native_panic_while_encoding_a_diff_becomes_apply_failed(monkeypatch: pytest.MonkeyPatch) -> None:
    document = Document()
    document.apply(edits()[0])
    monkeypatch.setattr(Doc, "get_update", panicking)
    with pytest.raises(ApplyFailed, match="could not encode a diff"):
        document.diff(b"\x00")


def test_other_base_exceptions_are_not_swallowed(monkeypatch: pytest.MonkeyPatch) -> None:
    def interrupted(*_: object) -> None:
        raise KeyboardInterrupt

    document = Document()
    monkeypatch.setattr(Doc, "apply_update", interrupted)
    with pytest.raises(KeyboardInterrupt):
        document.apply_fresh(edits()[0])


def test_state_vector_codec_round_trip() -> None:
    document = Document()
    for update in edits():
        document.apply(update)
    state = document.clock_state()
    assert decode_state_vector(encode_state_vector(state)) == state
    assert sum(state.values()) == 12
