"""Replay, sans-I/O: the frames of a recorded stretch of history and a playhead that says which are due."""

# Pacing: frames keep their recorded spacing divided by `speed`, except that a gap longer than
# `max_gap` recorded seconds (nobody typing, a coffee break) is cut to `max_gap`. The playhead works
# in those compressed recorded seconds ("story time"): playing maps wall time to story time
# (`speed` story seconds per wall second), pausing freezes it, seeking jumps to a frame. It never
# reads a clock: every call gets `now`.

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Sequence
from dataclasses import dataclass

UPDATE, JOIN, LEAVE, STATE, EVENT = "update", "join", "leave", "state", "event"
MAX_SPEED = 10_000.0


@dataclass(frozen=True, slots=True)
class Frame:
    """One recorded thing to re-play. `seq`: the log row (updates) or the last committed row when
    the presence sample was taken. STATE frames carry an awareness state (JSON text, "null" when
    the client cleared it); LEAVE frames the awareness clients the closing connection held; EVENT
    frames a comment event (`event`: its kind, `data`: its JSON object as sent live)."""

    at: float
    seq: int
    author: str
    kind: str
    update: bytes = b""
    client_id: int | None = None
    state: str | None = None
    clients: tuple[int, ...] = ()
    event: str = ""
    data: str = ""


def story_times(times: Sequence[float], max_gap: float) -> list[float]:
    """Seconds from the first frame, with every gap cut to at most `max_gap`."""
    out: list[float] = []
    story = 0.0
    previous: float | None = None
    for moment in times:
        if previous is not None:
            story += min(max(0.0, moment - previous), max_gap)
        out.append(story)
        previous = moment
    return out


def check_speed(speed: float) -> float:
    if not 0 < speed <= MAX_SPEED:
        raise ValueError(f"speed must be in (0, {MAX_SPEED:g}]")
    return speed


class Playhead:
    """Which frames are due when. `position` is the index of the next frame to emit."""

    def __init__(self, times: Sequence[float], speed: float = 1.0, max_gap: float = 5.0) -> None:
        self.story = story_times(times, max_gap)
        self.speed = check_speed(speed)
        self.position = 0
        self.playing = False
        self._story_anchor = 0.0  # story time at `_wall_anchor` (or, paused, the frozen story time)
        self._wall_anchor = 0.0

    def __len__(self) -> int:
        return len(self.story)

    @property
    def ended(self) -> bool:
        return self.position >= len(self.story)

    @property
    def duration(self) -> float:
        """Wall seconds from the first frame to the last at the current speed."""
        return (self.story[-1] if self.story else 0.0) / self.speed

    def story_now(self, now: float) -> float:
        if not self.playing:
            return self._story_anchor
        return self._story_anchor + (now - self._wall_anchor) * self.speed

    def play(self, now: float) -> None:
        if not self.playing and not self.ended:
            self._wall_anchor = now
            self.playing = True

    def pause(self, now: float) -> None:
        if self.playing:
            self._story_anchor = self.story_now(now)
            self.playing = False

    def set_speed(self, speed: float, now: float) -> None:
        self._story_anchor = self.story_now(now)
        self._wall_anchor = now
        self.speed = check_speed(speed)

    def seek(self, index: int, now: float) -> None:
        """Continue with frame `index` next (0: from the start); frames before it count as played."""
        self.position = max(0, min(index, len(self.story)))
        self._story_anchor = self.story[min(self.position, len(self.story) - 1)] if self.story else 0.0
        self._wall_anchor = now

    def due(self, now: float) -> range:
        """Frames due by `now`; the position moves past them. Ends playing after the last one."""
        if not self.playing:
            return range(self.position, self.position)
        until = bisect_right(self.story, self.story_now(now), lo=self.position)
        due = range(self.position, until)
        self.position = until
        if self.ended:
            self.pause(now)
        return due

    def wake_at(self) -> float | None:
        """Wall time when the next frame is due (None: paused or ended)."""
        if not self.playing or self.ended:
            return None
        return self._wall_anchor + (self.story[self.position] - self._story_anchor) / self.speed
