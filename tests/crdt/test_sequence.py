"""Deletions in the item order: repeated delete sets are skipped, not walked again (and fold the same)."""

from __future__ import annotations

import itertools
import time
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pycrdt import Doc, Text

from crdt.history import HistoryFold
from crdt.segments import ClockRanges
from tests.crdt.history_logs import Row, make_log, seeds, texts_after_each

ranges = st.lists(st.tuples(st.integers(0, 60), st.integers(0, 12)), max_size=25)


@settings(max_examples=200, deadline=None)
@given(added=ranges, asked=st.tuples(st.integers(0, 70), st.integers(0, 30)))
def test_clock_ranges_merge_and_report_gaps_like_a_set(
    added: list[tuple[int, int]], asked: tuple[int, int]
) -> None:
    found = ClockRanges()
    model: set[int] = set()
    for start, length in added:
        found.add(start, start + length)
        model.update(range(start, start + length))
    pairs = list(zip(found.starts, found.ends, strict=True))
    assert all(a < b for a, b in pairs) and pairs == sorted(pairs)
    assert all(end < next_start for (_, end), (next_start, _) in itertools.pairwise(pairs))
    assert {c for a, b in pairs for c in range(a, b)} == model
    start, length = asked
    gaps = found.gaps(start, start + length)
    assert {c for a, b in gaps for c in range(a, b)} == set(range(start, start + length)) - model
    assert all(a < b for a, b in gaps) and gaps == sorted(gaps)


def with_whole_delete_sets(rows: list[Row]) -> list[Row]:
    """The same history written the way `encodeStateAsUpdate(doc, sv)` writes it: each row the
    new items and the writer's whole delete set so far."""
    doc: Doc[Any] = Doc()
    out = []
    for row in rows:
        before = doc.get_state()
        doc.apply_update(row.data)
        out.append(Row(row.seq, doc.get_update(before), row.author, row.created_at))
    return out


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=seeds)
def test_rows_repeating_the_delete_set_fold_like_the_room_log(seed: int) -> None:
    rows, _ = make_log(seed, 3, 150)
    plain, repeated = HistoryFold(), HistoryFold()
    plain.fold(rows)
    repeated.fold(with_whole_delete_sets(rows))
    assert repeated.texts() == plain.texts() and repeated.texts().get("t", "") == texts_after_each(rows)[-1]
    assert list(repeated.inserted) == list(plain.inserted)
    assert list(repeated.deleted) == list(plain.deleted)
    for row in range(len(rows)):
        assert repeated.changes(row) == plain.changes(row)


def test_thirty_thousand_rows_each_with_the_whole_delete_set_fold_in_linear_time() -> None:
    """Type a character and delete it, 15,000 times; each row carries every deletion so far.
    Walking the deleted items again for every row took about 500 s; skipping them, a few."""
    doc: Doc[Any] = Doc(client_id=7)
    text = doc.get("t", type=Text)
    text += "hello "
    rows, state = [], b"\x00"
    for i in range(30_000):
        if i % 2:
            del text[6:7]
        else:
            text.insert(6, "x")
        rows.append(Row(i + 1, doc.get_update(state), "ann", 1000.0 + i))
        state = doc.get_state()
    fold = HistoryFold()
    started = time.perf_counter()
    for page in range(0, len(rows), 1000):
        fold.fold(rows[page : page + 1000])
        assert time.perf_counter() - started < 60, f"over a minute for {page + 1000} rows: quadratic again"
    assert fold.texts() == {"t": "hello "}
    assert sum(fold.inserted) == 6 + 15_000 and sum(fold.deleted) == 15_000
