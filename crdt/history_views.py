"""What facilitators read off a folded history: edit bursts, summaries, attributed diffs."""

# All of it is loops over `HistoryFold`'s columns, rows [first, end) (row indexes, not seqs).
# Definitions (also in docs/HISTORY.md):
# - burst: an author's updates, each within `gap` seconds of that author's previous one (other
#   authors' updates in between do not break it);
# - written: visible characters a participant inserted; kept: those still there at the end of the
#   window; deleted_others: characters of someone else's text the participant deleted;
# - built_on[B]: characters the participant inserted next to B's text (see `crdt.history`);
# - active minutes: distinct wall-clock minutes with at least one edit or comment.

from __future__ import annotations

from bisect import bisect_right
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from itertools import accumulate, compress, repeat
from operator import floordiv

from crdt.history import DELETE, INSERT, HistoryFold

_CHUNK = 256


@dataclass(slots=True)
class Burst:
    author: str
    first_seq: int
    last_seq: int
    start: float
    end: float
    updates: int
    inserted: int
    deleted: int


class BurstBuilder:
    """Bursts of a fold for one `gap`, extended incrementally as the fold grows."""

    def __init__(self, gap: float) -> None:
        self.gap = gap
        self.next_row = 0
        self._closed: list[Burst] = []
        self._open: dict[int, Burst] = {}
        self._sorted: list[Burst] | None = None

    def extend(self, fold: HistoryFold) -> None:
        if self.next_row >= len(fold):
            return
        gap, opened, closed = self.gap, self._open, self._closed
        seqs, times, authors = fold.seqs, fold.times, fold.row_author
        inserted, deleted = fold.inserted, fold.deleted
        for row in range(self.next_row, len(fold)):
            author, moment = authors[row], times[row]
            burst = opened.get(author)
            if burst is not None and moment - burst.end <= gap:
                burst.last_seq, burst.end = seqs[row], max(burst.end, moment)
                burst.updates += 1
                burst.inserted += inserted[row]
                burst.deleted += deleted[row]
                continue
            if burst is not None:
                closed.append(burst)
            opened[author] = Burst(
                fold.authors[author], seqs[row], seqs[row], moment, moment, 1, inserted[row], deleted[row]
            )
        self.next_row = len(fold)
        self._sorted = None

    def bursts(self) -> list[Burst]:
        """Every burst (the open ones as they stand), by start time."""
        if self._sorted is None:
            self._sorted = sorted([*self._closed, *self._open.values()], key=lambda b: (b.start, b.first_seq))
        return self._sorted


@dataclass(slots=True)
class Participant:
    author: str
    updates: int = 0
    written: int = 0
    kept: int = 0
    deleted_own: int = 0
    deleted_others: int = 0
    lost_to_others: int = 0  # characters of theirs that others deleted
    comments: int = 0
    replies: int = 0
    active_minutes: int = 0
    built_on: dict[str, int] = field(default_factory=dict)
    first: float | None = None
    last: float | None = None


@dataclass(frozen=True, slots=True)
class Activity:
    """A non-edit event counted in summaries: kind "comment" or "reply"."""

    time: float
    author: str
    kind: str


def summarize(
    fold: HistoryFold, first: int, end: int, activity: Iterable[Activity] = ()
) -> list[Participant]:
    """Per participant: edits of rows [first, end), plus `activity` (comments of the same window)."""
    names = fold.authors
    people: dict[str, Participant] = {}

    def who(name: str) -> Participant:
        found = people.get(name)
        if found is None:
            found = people[name] = Participant(name)
        return found

    authors, moments = fold.row_author[first:end], fold.times[first:end]
    firsts = dict(zip(reversed(authors), reversed(moments), strict=True))  # first edit, in log order
    lasts = dict(zip(authors, moments, strict=True))
    for author, count in Counter(authors).items():
        person = who(names[author])
        person.first, person.last, person.updates = firsts[author], lasts[author], count
    minutes: dict[str, set[int]] = defaultdict(set)
    for author, minute in set(zip(authors, map(int, map(floordiv, moments, repeat(60.0))), strict=True)):
        minutes[names[author]].add(minute)
    start = fold.op_end[first - 1] if first else 0
    stop = fold.op_end[end - 1] if end else 0
    kinds = fold.op_kind[start:stop]
    written: Counter[int] = Counter()
    built: Counter[tuple[int, int]] = Counter()
    inserts = zip(fold.op_author[start:stop], fold.op_len[start:stop], fold.op_tag[start:stop], strict=True)
    for author, length, tag in compress(inserts, map(INSERT.__eq__, kinds)):
        written[author] += length
        if tag >= 0 and tag != author:
            built[author, tag] += length
    own: Counter[int] = Counter()
    others: Counter[int] = Counter()
    lost: Counter[int] = Counter()
    unkept: Counter[int] = Counter()
    boundaries: dict[int, int | None] = {}  # client -> its first clock written in the window
    columns = (fold.op_author, fold.op_owner, fold.op_len, fold.op_client, fold.op_clock)
    deletes = zip(range(start, stop), *(column[start:stop] for column in columns), strict=True)
    for op, author, owner, length, client, clock in compress(deletes, map(DELETE.__eq__, kinds)):
        if owner == author:
            own[author] += length
        else:
            others[author] += length
            lost[owner] += length
        boundary = boundaries.get(client, -1)
        if boundary == -1:
            boundary = boundaries[client] = fold.first_clock_from_row(client, first)
        if boundary is not None:  # some of this client's text was written in the window
            unkept[owner] += length if boundary <= clock else _written_from(fold, op, boundary)
    for author in {*written, *own, *others, *lost, *unkept}:
        person = who(names[author])
        person.written, person.deleted_own, person.deleted_others = (
            written[author],
            own[author],
            others[author],
        )
        person.lost_to_others = lost[author]
        person.kept = written[author] - unkept[author]
    for (author, tag), count in built.items():
        who(names[author]).built_on[names[tag]] = count
    for event in activity:  # the caller picked the events of the window
        person = who(event.author)
        person.first = event.time if person.first is None else min(person.first, event.time)
        person.last = event.time if person.last is None else max(person.last, event.time)
        minutes[person.author].add(int(event.time // 60))
        if event.kind == "comment":
            person.comments += 1
        elif event.kind == "reply":
            person.replies += 1
    for name, person in people.items():
        person.active_minutes = len(minutes[name])
    return sorted(people.values(), key=lambda p: (-p.written, p.author))


def _written_from(fold: HistoryFold, op: int, boundary: int) -> int:
    """How many characters of delete `op` are at clocks >= `boundary` (written in the window)."""
    clock, text = fold.op_clock[op], fold.op_text[op]
    if boundary <= clock:
        return len(text)
    cut = boundary - clock
    if text.isascii():
        return max(0, len(text) - cut)
    units = 0
    for i, ch in enumerate(text):
        if units >= cut:
            return len(text) - i
        units += 2 if ord(ch) > 0xFFFF else 1
    return 0


@dataclass(frozen=True, slots=True)
class Hunk:
    """Added text: `at` is its position in the later version, `author` wrote it. Removed text:
    `at` is its position in the earlier version, `author` had written it, `by` deleted it."""

    root: str
    kind: str
    at: int
    text: str
    author: str
    by: str


_OLD, _NEW = 0, 1


def diff(fold: HistoryFold, base: int, end: int) -> list[Hunk]:
    """What rows (base, end] changed in root sequences (row indexes; base -1: from nothing).
    Text added and removed again inside the window does not show."""
    lengths: dict[int, int] = defaultdict(int)
    for op in range(0, fold.op_end[base] if base >= 0 else 0):
        kind = fold.op_kind[op]
        if kind == INSERT:
            lengths[fold.op_key[op]] += fold.op_len[op]
        elif kind == DELETE:
            lengths[fold.op_key[op]] -= fold.op_len[op]
    runs: dict[int, _Runs] = {}
    removed: list[Hunk] = []
    names = fold.authors
    for row in range(base + 1, end + 1):
        by = names[fold.row_author[row]]
        for op in fold.ops_of(row):
            kind, key = fold.op_kind[op], fold.op_key[op]
            if kind not in (INSERT, DELETE) or not isinstance(fold.keys[key], str):
                continue
            seq = runs.get(key)
            if seq is None:
                seq = runs[key] = _Runs(lengths.get(key, 0))
            if kind == INSERT:
                seq.insert(fold.op_pos[op], [fold.op_len[op], _NEW, op, 0])
                continue
            text, offset = fold.op_text[op], 0
            for piece in seq.delete(fold.op_pos[op], fold.op_len[op]):
                if piece[1] == _OLD:
                    part = text[offset : offset + piece[0]]
                    removed.append(
                        Hunk(str(fold.keys[key]), "removed", piece[2], part, names[fold.op_owner[op]], by)
                    )
                offset += piece[0]
    hunks = _merge(removed)
    for key, seq in runs.items():
        position, added = 0, []
        for length, kind, a, b in seq.runs():
            if kind == _NEW:
                writer = names[fold.row_author[fold.row_of_op(a)]]
                added.append(
                    Hunk(
                        str(fold.keys[key]),
                        "added",
                        position,
                        fold.op_text[a][b : b + length],
                        writer,
                        writer,
                    )
                )
            position += length
        hunks.extend(_merge(added))
    return sorted(hunks, key=lambda h: (h.root, h.at, h.kind))


def _merge(hunks: list[Hunk]) -> list[Hunk]:
    """Join touching hunks of the same root, kind and people."""
    merged: list[Hunk] = []
    for hunk in sorted(hunks, key=lambda h: (h.root, h.at)):
        last = merged[-1] if merged else None
        if (
            last is not None
            and (last.root, last.kind, last.author, last.by) == (hunk.root, hunk.kind, hunk.author, hunk.by)
            and last.at + len(last.text) == hunk.at
        ):
            merged[-1] = Hunk(last.root, last.kind, last.at, last.text + hunk.text, last.author, last.by)
        else:
            merged.append(hunk)
    return merged


class _Runs:
    """A text as runs [length, kind, a, b] in chunks: _OLD (a = position in the base text) or _NEW
    (a = insert operation, b = offset in its text). Lookups bisect running sums (C loops)."""

    def __init__(self, length: int) -> None:
        self.chunks: list[list[list[int]]] = [[[length, _OLD, 0, 0]]] if length else [[]]
        self.lengths: list[list[int]] = [[length]] if length else [[]]
        self.totals = [length]

    def runs(self) -> list[list[int]]:
        return [run for chunk in self.chunks for run in chunk]

    def _locate(self, pos: int) -> tuple[int, int, int]:
        """(chunk, run, offset in run) of position `pos` (at the end: one past the last run)."""
        sums = list(accumulate(self.totals))
        c = min(bisect_right(sums, pos), len(sums) - 1)
        pos -= sums[c - 1] if c else 0
        inner = list(accumulate(self.lengths[c]))
        r = bisect_right(inner, pos)
        return c, r, pos - (inner[r - 1] if r else 0)

    def _cut(self, c: int, r: int, offset: int) -> int:
        """Split run r of chunk c at `offset`; return the index of the run starting there."""
        if offset == 0:
            return r
        run = self.chunks[c][r]
        old = run[1] == _OLD
        right = [
            run[0] - offset,
            run[1],
            run[2] + offset if old else run[2],
            run[3] if old else run[3] + offset,
        ]
        run[0] = offset
        self.chunks[c].insert(r + 1, right)
        self.lengths[c][r] = offset
        self.lengths[c].insert(r + 1, right[0])
        return r + 1

    def insert(self, pos: int, run: list[int]) -> None:
        c, r, offset = self._locate(pos)
        r = self._cut(c, r, offset)
        self.chunks[c].insert(r, run)
        self.lengths[c].insert(r, run[0])
        self.totals[c] += run[0]
        if len(self.chunks[c]) > 2 * _CHUNK:
            for column in (self.chunks, self.lengths):
                column.insert(c + 1, column[c][_CHUNK:])  # type: ignore[arg-type]
                del column[c][_CHUNK:]
            self.totals[c] = sum(self.lengths[c])
            self.totals.insert(c + 1, sum(self.lengths[c + 1]))

    def delete(self, pos: int, length: int) -> list[list[int]]:
        pieces: list[list[int]] = []
        while length > 0:
            c, r, offset = self._locate(pos)
            r = self._cut(c, r, offset)
            chunk = self.chunks[c]
            if r >= len(chunk):
                break  # past the end (cannot happen on a consistent fold)
            if chunk[r][0] > length:
                self._cut(c, r, length)
            taken = chunk.pop(r)
            del self.lengths[c][r]
            self.totals[c] -= taken[0]
            length -= taken[0]
            pieces.append(taken)
        return pieces
