"""The history fold against pycrdt: positions, texts and authors of every update, on random logs."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pycrdt import Array, Doc, Map, Text

from crdt.history import HistoryError, HistoryFold
from crdt.sequence import root_kinds
from crdt.ystructs import decode_update
from tests.crdt.history_logs import Row, make_log, seeds, text_of, texts_after_each

PROPERTY = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def replay_changes(fold: HistoryFold, row: int, text: str) -> str:
    for change in fold.changes(row):
        assert change.root == "t"
        if change.kind == "insert":
            text = text[: change.position] + change.text + text[change.position :]
        else:
            assert text[change.position : change.position + len(change.text)] == change.text
            text = text[: change.position] + text[change.position + len(change.text) :]
    return text


@PROPERTY
@given(seed=seeds, clients=st.integers(1, 4), steps=st.integers(1, 120))
def test_changes_rebuild_the_text_after_every_update(seed: int, clients: int, steps: int) -> None:
    rows, server = make_log(seed, clients, steps)
    expected = texts_after_each(rows)
    fold = HistoryFold()
    text = ""
    for i, row in enumerate(rows):
        fold.fold([row])
        text = replay_changes(fold, i, text)
        assert text == expected[i + 1]
        assert fold.inserted[i] - fold.deleted[i] == len(expected[i + 1]) - len(expected[i])
    assert fold.texts().get("t", "") == text_of(server)


@PROPERTY
@given(seed=seeds, split=st.integers(0, 200))
def test_folding_in_pieces_equals_folding_at_once(seed: int, split: int) -> None:
    rows, _ = make_log(seed, 3, 90)
    whole, pieces = HistoryFold(), HistoryFold()
    whole.fold(rows)
    pieces.fold(rows[:split])
    pieces.fold(rows)  # rows already folded are skipped
    assert list(pieces.op_pos) == list(whole.op_pos)
    assert pieces.op_text == whole.op_text
    assert [pieces.changes(i) for i in range(len(rows))] == [whole.changes(i) for i in range(len(rows))]


@PROPERTY
@given(seed=seeds)
def test_a_fold_can_start_from_a_full_state(seed: int) -> None:
    rows, server = make_log(seed, 3, 100)
    fold = HistoryFold()
    fold.fold_base(len(rows), rows[-1].created_at if rows else 0.0, server.get_update())
    assert fold.texts().get("t", "") == text_of(server)
    assert fold.authors == [""]


def test_authors_deletions_and_built_on() -> None:
    ann: Doc[Any] = Doc(client_id=1)
    text = ann.get("t", type=Text)
    updates: list[bytes] = []
    ann.observe(lambda event: updates.append(event.update))
    text.insert(0, "hello world")
    bob: Doc[Any] = Doc(client_id=2)
    bob.observe(lambda event: updates.append(event.update))
    bob.apply_update(ann.get_update())
    updates.clear()
    btext = bob.get("t", type=Text)
    btext.insert(5, ",")  # inside ann's text
    btext.insert(6, " dear")  # right after his own comma: still built on ann
    del btext[0:1]  # deletes ann's "h"
    rows = [Row(1, ann.get_update(), "ann", 1.0)] + [
        Row(i + 2, u, "bob", 2.0 + i) for i, u in enumerate(updates)
    ]
    fold = HistoryFold()
    fold.fold(rows)
    changes = [c for row in range(len(rows)) for c in fold.changes(row)]
    assert [(c.kind, c.position, c.text, c.author, c.owner, c.built_on) for c in changes] == [
        ("insert", 0, "hello world", "ann", "ann", None),
        ("insert", 5, ",", "bob", "bob", "ann"),
        ("insert", 6, " dear", "bob", "bob", "ann"),
        ("delete", 0, "h", "bob", "ann", None),
    ]
    assert fold.texts() == {"t": "ello, dear world"}


def test_maps_arrays_and_nested_types_are_followed() -> None:
    doc: Doc[Any] = Doc()
    updates: list[bytes] = []
    doc.observe(lambda event: updates.append(event.update))
    doc.get("m", type=Map)["k"] = 1
    doc.get("a", type=Array).extend([1, 2, 3])
    doc.get("m", type=Map)["inner"] = Text("nested")
    del doc.get("a", type=Array)[0]
    fold = HistoryFold()
    fold.fold(Row(i + 1, u, "ann", float(i)) for i, u in enumerate(updates))
    kinds = [[(c.kind, c.root, c.text) for c in fold.changes(i)] for i in range(len(updates))]
    assert kinds[0] == [("key", "m", "k")]
    assert [k for k, _, _ in kinds[1]] == ["insert"]
    assert ("key", "m", "inner") in kinds[2] and any(c[0] == "insert" and c[2] == "nested" for c in kinds[2])
    assert kinds[3] and kinds[3][0][0] == "delete"
    assert root_kinds(doc.get_update()) == {"m": "map", "a": "array"}
    assert fold.root_kinds() == {"m": "map", "a": "array"}


def test_root_kinds_survive_a_deleted_first_item() -> None:
    doc: Doc[Any] = Doc()
    text = doc.get("t", type=Text)
    text.insert(0, "abc")
    text.insert(3, "def")
    del text[0:3]
    assert root_kinds(doc.get_update()) == {"t": "text"}


def test_a_malformed_row_is_a_history_error() -> None:
    with pytest.raises(HistoryError) as caught:
        HistoryFold().fold([Row(1, b"\x01\x05", "ann", 0.0)])
    assert caught.value.seq == 1


def test_moments_map_to_rows() -> None:
    rows, _ = make_log(7, 2, 60)
    fold = HistoryFold()
    fold.fold(rows)
    assert fold.row_at_time(rows[0].created_at - 1) == -1
    assert fold.row_at_time(rows[-1].created_at) == len(rows) - 1
    middle = rows[len(rows) // 2]
    assert fold.seqs[fold.row_at_time(middle.created_at)] >= middle.seq
    assert fold.row_of_seq(0) == -1 and fold.row_of_seq(middle.seq) == middle.seq - 1


def test_the_keystroke_fast_path_decodes_like_the_general_one() -> None:
    doc: Doc[Any] = Doc(client_id=123456789012)
    updates: list[bytes] = []
    doc.observe(lambda event: updates.append(event.update))
    text = doc.get("t", type=Text)
    for ch in "ab\u00e9\U0001f600":
        text.insert(len(str(text).encode()), ch)
    del text[0:1]
    for update in updates:
        structs, deleted = decode_update(update)
        assert all(s.client == 123456789012 for s in structs)
        assert bool(structs) != bool(deleted)
    assert [s.length for u in updates[:4] for s in decode_update(u)[0]] == [1, 1, 1, 2]  # UTF-16 units
