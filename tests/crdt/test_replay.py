"""The replay playhead: pacing, idle gaps cut, pause, seek and speed, all on a fake wall clock."""

from __future__ import annotations

import pytest

from crdt.replay import Playhead, check_speed, story_times


def test_story_time_cuts_long_gaps() -> None:
    assert story_times([100.0, 101.0, 131.0, 131.5], max_gap=5.0) == [0.0, 1.0, 6.0, 6.5]
    assert story_times([], 5.0) == []


def test_frames_come_due_at_speed() -> None:
    head = Playhead([0.0, 1.0, 2.0, 10.0], speed=2.0, max_gap=4.0)  # story 0, 1, 2, 6
    assert head.wake_at() is None and list(head.due(0.0)) == []
    head.play(100.0)
    assert list(head.due(100.0)) == [0]
    assert head.wake_at() == pytest.approx(100.5)
    assert list(head.due(100.9)) == [1]
    assert list(head.due(103.0)) == [2, 3] and head.ended and not head.playing
    assert head.duration == pytest.approx(3.0)


def test_pause_freezes_and_play_resumes_where_it_stopped() -> None:
    head = Playhead([0.0, 1.0, 2.0, 3.0])
    head.play(0.0)
    assert list(head.due(1.5)) == [0, 1]
    head.pause(1.5)
    assert list(head.due(50.0)) == [] and head.wake_at() is None
    head.play(50.0)
    assert head.wake_at() == pytest.approx(50.5)
    assert list(head.due(50.5)) == [2]


def test_seek_and_speed_change() -> None:
    head = Playhead([0.0, 1.0, 2.0, 3.0, 4.0])
    head.seek(3, now=10.0)
    head.play(10.0)
    assert list(head.due(10.0)) == [3]
    head.set_speed(4.0, now=10.0)
    assert head.wake_at() == pytest.approx(10.25)
    head.seek(0, now=11.0)
    assert list(head.due(11.0)) == [0]
    head.seek(99, now=12.0)
    assert head.ended and list(head.due(13.0)) == []


def test_speed_is_bounded() -> None:
    with pytest.raises(ValueError):
        check_speed(0.0)
    with pytest.raises(ValueError):
        Playhead([0.0], speed=1e9)
