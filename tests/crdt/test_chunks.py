"""Tests for crdt.chunks: a large update cut into small valid updates that apply to the same state."""

from __future__ import annotations

from itertools import pairwise
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pycrdt import Array, Doc, Map, Text

from crdt.chunks import Split, pieces, split_update
from crdt.document import decode_state_vector, encode_state_vector
from crdt.errors import InvalidUpdate, UpdateAhead
from crdt.validation import UpdateLimits, validate_update

CLIENTS = (101, 202, 303)

words = st.text("abcxyz0123 ", min_size=1, max_size=5)  # ASCII: pycrdt Text indexes by UTF-8 byte
op = st.tuples(
    st.sampled_from(CLIENTS),
    st.sampled_from(["text", "text-del", "map", "map-nested", "map-del", "array", "array-nested", "sync"]),
    words,
    st.integers(min_value=0, max_value=1000),
)


def _contents(doc: Doc[Any]) -> dict[str, Any]:
    return {
        "t": str(doc.get("t", type=Text)),
        "m": doc.get("m", type=Map).to_py(),
        "a": doc.get("a", type=Array).to_py(),
    }


def _fingerprint(doc: Doc[Any]) -> tuple[dict[str, Any], bytes, dict[int, list[tuple[int, int]]]]:
    """Contents, state vector and delete set: equal fingerprints, equal documents."""
    deleted = validate_update(doc.get_update()).deleted
    return _contents(doc), doc.get_state(), {c: sorted(r) for c, r in sorted(deleted.items())}


def _edit(doc: Doc[Any], kind: str, word: str, n: int) -> None:
    text, root, array = doc.get("t", type=Text), doc.get("m", type=Map), doc.get("a", type=Array)
    if kind == "text":
        text.insert(n % (len(text) + 1), word)
    elif kind == "text-del" and len(text):
        start = n % len(text)
        del text[start : min(len(text), start + 1 + n % 3)]
    elif kind == "map":
        root[word] = n
    elif kind == "map-nested":
        inner = root.get(word)
        if isinstance(inner, Map):
            inner[str(n % 4)] = Map({"v": word}) if n % 2 else word
        else:
            root[word] = Map({"x": n, "list": Array([word, n])})
    elif kind == "map-del" and len(root):
        del root[sorted(root.keys())[n % len(root)]]
    elif kind == "array":
        array.insert(n % (len(array) + 1), word)
    elif kind == "array-nested":
        array.insert(n % (len(array) + 1), Map({"w": word, "t": Text(word)}))


def _history(ops: list[tuple[int, str, str, int]]) -> tuple[list[Doc[Any]], list[bytes]]:
    """Run the ops on one doc per client (a "sync" op merges all of them); returns the docs and the
    full update of the first one after each op (to cut a prefix from)."""
    docs: dict[int, Doc[Any]] = {client: Doc(client_id=client) for client in CLIENTS}
    states: list[bytes] = []
    for client, kind, word, n in ops:
        if kind == "sync":
            for target in docs.values():
                for source in docs.values():
                    if source is not target:
                        target.apply_update(source.get_update(target.get_state()))
        else:
            _edit(docs[client], kind, word, n)
        states.append(docs[CLIENTS[0]].get_update())
    return list(docs.values()), states


def _full(docs: list[Doc[Any]]) -> Doc[Any]:
    whole: Doc[Any] = Doc()
    for doc in docs:
        whole.apply_update(doc.get_update())
    return whole


@settings(max_examples=80, deadline=None)
@given(
    ops=st.lists(op, min_size=1, max_size=40),
    piece_bytes=st.integers(min_value=1, max_value=120),
    prefix_at=st.integers(min_value=0, max_value=40),
)
def test_pieces_apply_to_the_same_state_as_the_update(
    ops: list[tuple[int, str, str, int]], piece_bytes: int, prefix_at: int
) -> None:
    docs, states = _history(ops)
    update = _full(docs).get_update()
    summary, split = split_update(update, piece_bytes=piece_bytes)
    assert summary == validate_update(update)
    parts = pieces(update, split)
    assert len(parts) == len(split) >= 1
    for part in parts:
        validate_update(part)  # each piece is a valid update on its own
    for part in parts[:-1]:
        assert part.endswith(b"\x00")  # only the last piece carries deletions
    expected: Doc[Any] = Doc()
    expected.apply_update(update)
    fresh: Doc[Any] = Doc()
    for part in parts:
        fresh.apply_update(part)
    assert _fingerprint(fresh) == _fingerprint(expected)
    partial: Doc[Any] = Doc()  # a document that already holds part of it
    partial.apply_update(states[min(prefix_at, len(states) - 1)])
    diff = expected.get_update(partial.get_state())  # deletions of what it holds: in the delete set
    for part in parts:
        partial.apply_update(part)
    assert _fingerprint(partial) == _fingerprint(expected)
    partial = Doc()
    partial.apply_update(states[min(prefix_at, len(states) - 1)])
    for part in pieces(diff, split_update(diff, piece_bytes=piece_bytes)[1]):
        partial.apply_update(part)
    assert _fingerprint(partial) == _fingerprint(expected)


@settings(max_examples=40, deadline=None)
@given(ops=st.lists(op, min_size=1, max_size=30), prefix_at=st.integers(min_value=0, max_value=30))
def test_skipping_known_pieces_but_keeping_the_delete_set_gives_the_same_state(
    ops: list[tuple[int, str, str, int]], prefix_at: int
) -> None:
    docs, states = _history(ops)
    expected = _full(docs)
    partial: Doc[Any] = Doc()
    partial.apply_update(states[min(prefix_at, len(states) - 1)])
    known = _clock_state(partial)
    update = expected.get_update(encode_state_vector({c: k // 2 for c, k in known.items()}))  # overlaps
    _, split = split_update(update, piece_bytes=8)
    for index in range(len(split)):
        partial.apply_update(split.piece(update, index, structs=not split.known_already(index, known)))
    assert _fingerprint(partial) == _fingerprint(expected)


def _clock_state(doc: Doc[Any]) -> dict[int, int]:
    return decode_state_vector(doc.get_state())


def test_runs_are_cut_at_struct_boundaries_near_the_piece_size() -> None:
    doc: Doc[Any] = Doc(client_id=7)
    text = doc.get("t", type=Text)
    for i in range(2000):
        text.insert(0 if i % 2 else len(text), "ab")  # alternating ends: structs that do not merge
    update = doc.get_update()
    _, split = split_update(update, piece_bytes=1024)
    assert len(split) > 5
    clocks = [(first, end) for _c, first, end, *_ in split.runs]
    assert clocks[0][0] == 0 and all(a[1] == b[0] for a, b in pairwise(clocks))
    assert all(end - start < 1024 + 64 for *_, start, end in split.runs)
    assert sum(count for *_, count, _s, _e in split.runs) == validate_update(update).struct_count


def test_a_delete_set_alone_is_one_piece() -> None:
    doc: Doc[Any] = Doc(client_id=9)
    doc.get("t", type=Text).insert(0, "hello")
    before = doc.get_state()
    del doc.get("t", type=Text)[0:2]
    update = doc.get_update(before)  # no structs, one delete range
    _, split = split_update(update)
    assert split.runs == () and pieces(update, split) == [update]


def test_split_refuses_what_validation_refuses() -> None:
    with pytest.raises(InvalidUpdate):
        split_update(b"\x01\x05")
    gc = b"\x01\x01\x05\x00\x00\x03\x00"  # GC of client 5 at clock 0, length 3
    with pytest.raises(UpdateAhead):
        split_update(b"\x00\x01\x05\x01\x00\x02", known_state={})  # deletes clocks nobody has
    with pytest.raises(InvalidUpdate):
        split_update(gc, known_state={}, foreign_owned={5})
    with pytest.raises(ValueError):
        split_update(gc, piece_bytes=0)
    nested = UpdateLimits(max_type_depth=3)
    source: Doc[Any] = Doc(client_id=3)
    inner = source.get("m", type=Map)
    for _ in range(6):
        child: Map[Any] = Map()
        inner["c"] = child
        inner = child
    with pytest.raises(InvalidUpdate, match="nested deeper"):
        split_update(source.get_update(), limits=nested)


def test_a_split_pickles_small() -> None:
    import pickle

    doc: Doc[Any] = Doc(client_id=7)
    text = doc.get("t", type=Text)
    for i in range(20_000):
        text.insert(0 if i % 2 else len(text), "ab")
    update = doc.get_update()
    _, split = split_update(update)
    assert isinstance(split, Split)
    assert len(pickle.dumps(split)) < len(update) // 100


@settings(max_examples=40, deadline=None)
@given(ops=st.lists(op, min_size=1, max_size=30), group_bytes=st.integers(min_value=1, max_value=300))
def test_consecutive_pieces_of_a_client_joined_apply_the_same(
    ops: list[tuple[int, str, str, int]], group_bytes: int
) -> None:
    docs, _ = _history(ops)
    expected = _full(docs)
    update = expected.get_update(b"\x00")
    _, split = split_update(update, piece_bytes=8)
    joined: Doc[Any] = Doc()
    index = 0
    while index < len(split):
        through = split.reach(index, group_bytes)
        assert through >= index and len({run[0] for run in split.runs[index : through + 1]}) <= 1
        part = split.piece(update, index, through=through)
        validate_update(part)
        joined.apply_update(part)
        index = through + 1
    assert _fingerprint(joined) == _fingerprint(expected)
    if len(split.runs) > 1 and split.runs[0][0] != split.runs[-1][0]:
        with pytest.raises(ValueError):
            split.piece(update, 0, through=len(split) - 1)
