"""Converging a document onto an earlier version with new operations (restore, backward replay seeks)."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pycrdt import Array, Doc, Map, Text, XmlFragment, XmlText

from crdt.document import decode_state_vector
from crdt.restore import converge, text_edits
from tests.crdt.history_logs import make_log, seeds, text_of

PROPERTY = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def state_after(rows: list[Any], count: int) -> Doc[Any]:
    doc: Doc[Any] = Doc()
    for row in rows[:count]:
        doc.apply_update(row.data)
    return doc


@PROPERTY
@given(seed=seeds, back=st.floats(0, 1))
def test_converge_reaches_the_old_text_and_only_appends(seed: int, back: float) -> None:
    rows, server = make_log(seed, 3, 100)
    old = state_after(rows, round(back * len(rows)))
    work: Doc[Any] = Doc()
    work.apply_update(server.get_update())
    before = work.get_state()
    update, skipped = converge(work, old)
    assert skipped == []
    live: Doc[Any] = Doc()  # another replica of the current document receives the change
    live.apply_update(server.get_update())
    if update:
        live.apply_update(update)
    assert text_of(live) == text_of(old)
    # nothing is rewritten: the edits are a new client's, every existing client's clock is unchanged
    after = decode_state_vector(live.get_state())
    assert all(after[client] == clock for client, clock in decode_state_vector(before).items())


@given(
    old=st.text(alphabet="ab\n\u00e9\U0001f600", max_size=40),
    new=st.text(alphabet="ab\n\u00e9\U0001f600", max_size=40),
)
def test_text_edits_rewrite_old_into_new(old: str, new: str) -> None:
    result = old
    for position, length, insert in reversed(text_edits(old, new)):
        result = result[:position] + insert + result[position + length :]
    assert result == new


def test_unchanged_text_keeps_its_identity() -> None:
    doc: Doc[Any] = Doc()
    text = doc.get("t", type=Text)
    text.insert(0, "one two three four five")
    old: Doc[Any] = Doc()
    old.apply_update(doc.get_update())
    text.insert(8, "and a half ")
    update, _ = converge(doc, old)
    assert str(text) == "one two three four five" and update
    assert len(update) < 80  # a deletion of the inserted words, not a rewrite of the text


def test_maps_and_arrays_converge_and_xml_is_reported() -> None:
    old: Doc[Any] = Doc()
    old.get("m", type=Map).update({"a": 1, "nested": Text("x")})
    old.get("a", type=Array).extend([1, 2, 3])
    work: Doc[Any] = Doc()
    work.apply_update(old.get_update())
    m, a = work.get("m", type=Map), work.get("a", type=Array)
    del m["a"]
    m["b"] = {"deep": [1]}
    a.insert(1, 9)
    del a[2]
    converge(work, old)
    assert work.get("m", type=Map).to_py() == {"a": 1, "nested": "x"}
    assert work.get("a", type=Array).to_py() == [1, 2, 3]
    work.get("x", type=XmlFragment).children.append(XmlText("hi"))
    assert converge(work, old)[1] == ["x"]
