"""Tests for crdt.strip: removing one client's new structs from a Yjs v1 update."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from pycrdt import Doc, Map, Text, merge_updates

from crdt.errors import InvalidUpdate
from crdt.strip import strip_clients
from crdt.validation import validate_state_vector, validate_update

A, B, C = 11, 22, 33  # B is the client whose new structs are removed

words = st.text("abcxyz0123 ", min_size=1, max_size=6)  # ASCII: pycrdt Text indexes by UTF-8 byte


def _contents(doc: Doc) -> dict[str, object]:
    return {
        "a": str(doc.get("a", type=Text)),
        "b": str(doc.get("b", type=Text)),
        "m": doc.get("m", type=Map).to_py(),
    }


def _copy(update: bytes) -> Doc:
    doc: Doc = Doc()
    doc.apply_update(update)
    return doc


@settings(max_examples=60, deadline=None)
@given(
    base=words,
    a_text=words,
    b_more=st.lists(words, min_size=1, max_size=4),
    b_deletes_new=st.booleans(),
    base_deleted=st.integers(min_value=0, max_value=2),
    c_value=st.integers(min_value=-(2**31), max_value=2**31),
)
def test_stripping_removes_exactly_the_clients_new_structs(
    base: str, a_text: str, b_more: list[str], b_deletes_new: bool, base_deleted: int, c_value: int
) -> None:
    b: Doc = Doc(client_id=B)
    b.get("b", type=Text).insert(0, base)
    server_state = b.get_update()  # the server knows B's base
    c, deleter = Doc(client_id=C), _copy(server_state)
    a_doc: Doc = Doc(client_id=A)
    a_doc.apply_update(server_state)
    a_doc.get("a", type=Text).insert(0, a_text)
    a_doc.get("a", type=Text).insert(0, a_text)
    del a_doc.get("a", type=Text)[0:1]  # a delete range of A
    c.get("m", type=Map)["k"] = c_value
    b_text = b.get("b", type=Text)
    for word in b_more:  # B, offline: new structs past the server's clock
        b_text.insert(len(b_text), word)
    if b_deletes_new:
        del b_text[len(b_text) - 1 :]  # a delete range of B beyond the known clock
    cut = min(base_deleted, len(base))
    if cut:  # deletes of B's known structs (by B and, identically, by a deleter): they stay
        del b_text[0:cut]
        del deleter.get("b", type=Text)[0:cut]
    update = merge_updates(a_doc.get_update(), b.get_update(), c.get_update())
    known = validate_state_vector(_copy(server_state).get_state())
    stripped = strip_clients(update, {B}, known)
    summary = validate_update(stripped)
    assert B not in summary.clients
    assert all(clock + length <= known[B] for clock, length in summary.deleted.get(B, []))
    applied = _copy(server_state)
    applied.apply_update(stripped)
    expected = _copy(server_state)
    for part in (a_doc.get_update(), c.get_update(), deleter.get_update()):
        expected.apply_update(part)
    assert _contents(applied) == _contents(expected)
    assert strip_clients(update, set(), known) == update  # stripping nothing returns the update itself
    untouched = _copy(server_state)
    untouched.apply_update(strip_clients(update, {44}, known))
    reference = _copy(server_state)
    reference.apply_update(update)
    assert _contents(untouched) == _contents(reference)


def test_a_stripped_client_with_nothing_left_gives_an_empty_update() -> None:
    b: Doc = Doc(client_id=B)
    b.get("b", type=Text).insert(0, "offline")
    stripped = strip_clients(b.get_update(), {B}, {})
    assert stripped == b"\x00\x00"
    assert validate_update(stripped).is_empty


def test_malformed_updates_are_refused() -> None:
    try:
        strip_clients(b"\x01\x01", {B}, {})
    except InvalidUpdate:
        return
    raise AssertionError("a truncated update was rewritten")
