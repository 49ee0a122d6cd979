"""Which log rows of a document a node has applied: a contiguous watermark plus what arrived above it.

Sans-I/O: times are passed in. Rows arrive from the node's own commits, from other nodes through
Redis (possibly out of order, possibly twice, possibly never) and from reading the log; the tracker
says what is new, and how long a gap above the watermark has been open (then the owner reads the log).
"""

from __future__ import annotations


class SeqTracker:
    """Every seq <= `watermark` is applied here; `above` holds applied seqs beyond a gap."""

    __slots__ = ("_above", "_gap_since", "watermark")

    def __init__(self, watermark: int = 0) -> None:
        self.watermark = watermark
        self._above: set[int] = set()
        self._gap_since: float | None = None

    def is_applied(self, seq: int) -> bool:
        return seq <= self.watermark or seq in self._above

    def fresh(self, first_seq: int, last_seq: int) -> list[int]:
        """The seqs in first_seq..last_seq not applied yet, ascending."""
        start = max(first_seq, self.watermark + 1)
        return [seq for seq in range(start, last_seq + 1) if seq not in self._above]

    def mark(self, first_seq: int, last_seq: int, now: float) -> None:
        """Seqs first_seq..last_seq are applied now."""
        if last_seq <= self.watermark:
            return
        above = self._above
        for seq in range(max(first_seq, self.watermark + 1), last_seq + 1):
            above.add(seq)
        self._settle(now)

    def advance_to(self, seq: int, now: float) -> None:
        """Everything up to `seq` is applied (read from the log or a snapshot)."""
        if seq > self.watermark:
            self.watermark = seq
            self._above = {s for s in self._above if s > seq}
        self._settle(now)

    def _settle(self, now: float) -> None:
        above = self._above
        moved = False
        while self.watermark + 1 in above:
            self.watermark += 1
            above.discard(self.watermark)
            moved = True
        if not above:
            self._gap_since = None
        elif moved or self._gap_since is None:
            self._gap_since = now  # a (new) gap opened right above the watermark

    @property
    def highest(self) -> int:
        """The highest seq known to exist (applied here)."""
        return max(self._above, default=self.watermark)

    def gap_age(self, now: float) -> float:
        """Seconds the current gap above the watermark has been open; 0 when there is none."""
        return 0.0 if self._gap_since is None else now - self._gap_since
