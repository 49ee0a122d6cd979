"""The seq tracker against a model: the set of applied seqs, whatever order and duplicates arrive in."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from server.cluster.watermark import SeqTracker

# (kind, a, b): "mark" seqs a..a+b, or "advance" to a (everything up to a was read from the log)
operations = st.lists(
    st.tuples(st.sampled_from(["mark", "mark", "mark", "advance"]), st.integers(1, 60), st.integers(0, 5)),
    max_size=80,
)


@given(start=st.integers(0, 10), ops=operations)
def test_tracker_matches_the_set_of_applied_seqs(start: int, ops: list[tuple[str, int, int]]) -> None:
    tracker = SeqTracker(start)
    applied = set(range(1, start + 1))
    for now, (kind, a, b) in enumerate(ops):
        if kind == "mark":
            first, last = a, a + b
            expected_fresh = [s for s in range(first, last + 1) if s not in applied]
            assert tracker.fresh(first, last) == expected_fresh
            tracker.mark(first, last, float(now))
            applied.update(range(first, last + 1))
        else:
            tracker.advance_to(a, float(now))
            applied.update(range(1, a + 1))
        contiguous = 0
        while contiguous + 1 in applied:
            contiguous += 1
        assert tracker.watermark == contiguous
        assert all(tracker.is_applied(s) == (s in applied) for s in range(1, 70))
        gap = any(s > contiguous for s in applied)
        assert (tracker.gap_age(now + 1.0) > 0) == gap
        assert tracker.highest == max(applied, default=0)


def test_gap_age_counts_from_when_the_hole_opened_and_resets_on_progress() -> None:
    tracker = SeqTracker(5)
    tracker.mark(8, 8, now=10.0)  # 6 and 7 missing
    assert tracker.gap_age(10.4) == 0.4 or abs(tracker.gap_age(10.4) - 0.4) < 1e-9
    tracker.mark(6, 6, now=11.0)  # progress, 7 still missing: a new hole, its own age
    assert tracker.watermark == 6 and abs(tracker.gap_age(11.5) - 0.5) < 1e-9
    tracker.mark(7, 7, now=12.0)
    assert tracker.watermark == 8 and tracker.gap_age(20.0) == 0.0
    tracker.mark(3, 8, now=13.0)  # old news changes nothing
    assert tracker.watermark == 8 and tracker.gap_age(20.0) == 0.0
