"""Bursts, summaries and diffs over folds, checked against a plain character-list model of the same log."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pycrdt import Doc, Text

from crdt.history import HistoryFold
from crdt.history_views import Activity, BurstBuilder, diff, summarize
from tests.crdt.history_logs import Row, make_log, seeds, texts_after_each

PROPERTY = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@dataclass
class Char:
    ch: str
    author: str
    row: int
    tag: str | None  # whom the run it belongs to was built on


def model(fold: HistoryFold, first: int, end: int) -> dict[str, dict[str, object]]:
    """Participants' numbers by brute force: the text as a list of characters with their writers."""
    chars: list[Char] = []
    people: dict[str, dict[str, object]] = {}

    def person(name: str) -> dict[str, object]:
        return people.setdefault(
            name, {"written": 0, "kept": 0, "deleted_own": 0, "deleted_others": 0, "built_on": {}}
        )

    for row in range(end):
        for change in fold.changes(row):
            if change.kind == "insert":
                left = chars[change.position - 1] if change.position else None
                right = chars[change.position] if change.position < len(chars) else None
                near = left if left is not None else right
                tag = None if near is None else (near.tag if near.author == change.author else near.author)
                new = [Char(ch, change.author, row, tag) for ch in change.text]
                chars[change.position : change.position] = new
                if row >= first:
                    me = person(change.author)
                    me["written"] = int(me["written"]) + len(new)  # type: ignore[call-overload]
                    if tag is not None:
                        built = me["built_on"]
                        assert isinstance(built, dict)
                        built[tag] = built.get(tag, 0) + len(new)
            elif change.kind == "delete":
                gone = chars[change.position : change.position + len(change.text)]
                assert "".join(c.ch for c in gone) == change.text
                del chars[change.position : change.position + len(change.text)]
                if row >= first:
                    for c in gone:
                        key = "deleted_own" if c.author == change.author else "deleted_others"
                        me = person(change.author)
                        me[key] = int(me[key]) + 1  # type: ignore[call-overload]
    for c in chars:
        if c.row >= first:
            person(c.author)["kept"] = int(person(c.author)["kept"]) + 1  # type: ignore[call-overload]
    return people


@PROPERTY
@given(seed=seeds, cut=st.floats(0, 1), stop=st.floats(0, 1))
def test_summaries_match_a_character_model(seed: int, cut: float, stop: float) -> None:
    rows, _ = make_log(seed, 3, 120)
    fold = HistoryFold()
    fold.fold(rows)
    end = round(stop * len(rows))
    first = round(cut * end)
    expected = model(fold, first, end)
    found = {p.author: p for p in summarize(fold, first, end)}
    for name, numbers in expected.items():
        got = found[name]
        assert (got.written, got.kept, got.deleted_own, got.deleted_others) == (
            numbers["written"],
            numbers["kept"],
            numbers["deleted_own"],
            numbers["deleted_others"],
        ), name
        assert got.built_on == numbers["built_on"], name
    assert sum(p.lost_to_others for p in found.values()) == sum(p.deleted_others for p in found.values())
    assert {p.author for p in found.values() if p.updates} == {
        fold.authors[a] for a in fold.row_author[first:end]
    }


def test_summary_counts_comments_replies_and_minutes() -> None:
    rows, _ = make_log(3, 2, 40, start=600.0)
    fold = HistoryFold()
    fold.fold(rows)
    activity = [Activity(60_000.0, "carla", "comment"), Activity(60_030.0, "carla", "reply")]
    found = {p.author: p for p in summarize(fold, 0, len(fold), activity)}
    assert (found["carla"].comments, found["carla"].replies, found["carla"].active_minutes) == (1, 1, 1)
    for person in found.values():
        if person.updates:
            minutes = {int(r.created_at // 60) for r in rows if r.author == person.author}
            assert person.active_minutes == len(minutes)


@PROPERTY
@given(seed=seeds, a=st.floats(0, 1), b=st.floats(0, 1))
def test_diff_turns_one_version_into_the_other(seed: int, a: float, b: float) -> None:
    rows, _ = make_log(seed, 3, 120)
    fold = HistoryFold()
    fold.fold(rows)
    texts = texts_after_each(rows)
    low, high = sorted((round(a * len(rows)) - 1, round(b * len(rows)) - 1))
    old, new = texts[low + 1], texts[high + 1]
    hunks = diff(fold, low, high)
    removed = set()
    for hunk in hunks:
        if hunk.kind == "removed":
            assert old[hunk.at : hunk.at + len(hunk.text)] == hunk.text
            removed.update(range(hunk.at, hunk.at + len(hunk.text)))
    rebuilt = "".join(ch for i, ch in enumerate(old) if i not in removed)
    for hunk in sorted((h for h in hunks if h.kind == "added"), key=lambda h: h.at):
        rebuilt = rebuilt[: hunk.at] + hunk.text + rebuilt[hunk.at :]
    assert rebuilt == new


def test_bursts_split_on_gaps_per_author_and_extend_incrementally() -> None:
    rows, _ = make_log(11, 3, 150)
    fold = HistoryFold()
    fold.fold(rows[:70])
    builder = BurstBuilder(gap=10.0)
    builder.extend(fold)
    fold.fold(rows)
    builder.extend(fold)
    fresh = BurstBuilder(gap=10.0)
    fresh.extend(fold)
    assert builder.bursts() == fresh.bursts()
    bursts = fresh.bursts()
    assert sum(b.updates for b in bursts) == len(rows)
    assert sum(b.inserted for b in bursts) == sum(fold.inserted)
    for author in {r.author for r in rows}:
        times = [r.created_at for r in rows if r.author == author]
        expected = 1 + sum(1 for x, y in itertools.pairwise(times) if y - x > 10.0)
        assert len([b for b in bursts if b.author == author]) == expected
    assert [b.start for b in bursts] == sorted(b.start for b in bursts)


def scripted_log() -> list[Row]:
    """ann writes "Hello world"; bo appends "! Welcome."; bo deletes ann's "world"; ann writes "dear"
    where it was; then bo deletes some of his own text. Each row is one client's update."""
    ann, bo = Doc(client_id=101), Doc(client_id=202)
    rows: list[Row] = []

    def edit(author: str, doc: Doc[Any], change: Callable[[Text], None]) -> None:
        other = bo if doc is ann else ann
        doc.apply_update(other.get_update(doc.get_state()))  # each writes on top of what the other did
        before = doc.get_state()
        change(doc.get("t", type=Text))
        rows.append(Row(len(rows) + 1, doc.get_update(before), author, 1000.0 + len(rows)))

    edit("ann", ann, lambda t: t.insert(0, "Hello world"))
    edit("bo", bo, lambda t: t.insert(11, "! Welcome."))
    edit("bo", bo, lambda t: t.__delitem__(slice(6, 11)))
    edit("ann", ann, lambda t: t.insert(6, "dear"))
    edit("bo", bo, lambda t: t.__delitem__(slice(12, 20)))  # "Welcome." -> ""
    return rows


def test_diff_attributes_added_text_to_its_writer_and_removed_text_to_writer_and_deleter() -> None:
    rows = scripted_log()
    assert texts_after_each(rows)[1:] == [
        "Hello world", "Hello world! Welcome.", "Hello ! Welcome.", "Hello dear! Welcome.", "Hello dear! ",
    ]  # fmt: skip
    fold = HistoryFold()
    fold.fold(rows)
    shape = [(h.kind, h.at, h.text, h.author, h.by) for h in diff(fold, 0, 3)]  # after row 1 .. row 4
    assert shape == [
        ("added", 6, "dear", "ann", "ann"),
        ("removed", 6, "world", "ann", "bo"),  # ann wrote it, bo deleted it
        ("added", 10, "! Welcome.", "bo", "bo"),
    ]
    shape = [(h.kind, h.at, h.text, h.author, h.by) for h in diff(fold, 2, 4)]  # after row 3 .. the end
    assert shape == [("added", 6, "dear", "ann", "ann"), ("removed", 8, "Welcome.", "bo", "bo")]
    everything = [(h.kind, h.text, h.author) for h in diff(fold, -1, 4)]  # deleted-in-window text is absent
    assert everything == [("added", "Hello dear", "ann"), ("added", "! ", "bo")]  # touching runs: one hunk
