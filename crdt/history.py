"""History folding core: log rows in, per-update insertions and deletions (code points, authors) out."""

# One streaming pass over the update log (`HistoryFold.fold`), resumable: a fold kept in memory
# only needs the rows logged since (`folded_seq`). No pycrdt: positions come from `crdt.sequence`
# (pycrdt `observe` deltas cost O(document) per update). The result is columnar — one entry per
# row, one per operation — so timeline, diff and summaries (`crdt.history_views`) are plain loops.
#
# Per operation: kind (insert, delete, map key written), the shared type (`keys[op_key]`: a root
# name, or the (client, clock) id of a nested type), position and length in code points, the text,
# and two authors: for an insertion its writer and the author it was *built on* (the writer of the
# visible character just left of it — or, at the start, just right of it — when that is someone
# else; a character typed after one's own text inherits what that text was built on); for a deletion
# the writer of the deleted text (`op_owner`) — the deleter is the row's author.

from __future__ import annotations

from array import array
from bisect import bisect_right
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol

from crdt.errors import DecodeError
from crdt.sequence import Integrator, Keyed, Placed, Removed
from crdt.ystructs import ID, decode_update

INSERT, DELETE, KEY = 1, 2, 3
KIND_NAMES = {INSERT: "insert", DELETE: "delete", KEY: "key"}
BASE_AUTHOR = ""  # content of the snapshot a pruned log starts from: nobody known


class HistoryError(Exception):
    """A log row could not be folded (malformed or inconsistent with the rows before it)."""

    def __init__(self, seq: int, detail: str) -> None:
        super().__init__(f"history fold failed at seq {seq}: {detail}")
        self.seq = seq
        self.detail = detail


class LogRow(Protocol):
    """What the fold reads of a log row (`persistence.base.StoredUpdate` fits)."""

    @property
    def seq(self) -> int: ...

    @property
    def data(self) -> bytes: ...

    @property
    def author(self) -> str: ...

    @property
    def created_at(self) -> float: ...


@dataclass(frozen=True, slots=True)
class Change:
    """One operation of one update, for people: where (code points), what, whose."""

    kind: str  # "insert" | "delete" | "key"
    root: str  # root name; nested types are "client:clock"
    nested: bool
    position: int  # -1 for map keys
    text: str  # inserted/deleted text; for "key" the key name
    author: str  # who made the change (the row's author)
    owner: str  # insert: = author; delete: who had written the text; key: = author
    built_on: str | None  # insert: whose text it continued (None: nobody else's)


class HistoryFold:
    """The folded log of one document; columnar, append-only, resumable."""

    def __init__(self) -> None:
        self.integrator = Integrator()
        self.authors: list[str] = []
        self._author_ids: dict[str, int] = {}
        self.keys: list[str | ID] = []
        self._key_ids: dict[str | ID, int] = {}
        # per row
        self.seqs = array("q")
        self.times = array("d")
        self.row_author = array("i")
        self.inserted = array("q")  # visible characters inserted by the row
        self.deleted = array("q")
        self.op_end = array("q")  # the row's operations end here (start: previous row's end)
        # per operation
        self.op_kind = array("b")
        self.op_key = array("i")
        self.op_pos = array("q")
        self.op_len = array("q")
        self.op_owner = array("i")
        self.op_author = array("i")  # the row's author (a copy, for loops over operations)
        self.op_tag = array("i")  # insert: built-on author or -1
        self.op_client = array("q")  # whose clock range the text is (for survival counts)
        self.op_clock = array("q")
        self.op_text: list[str] = []
        # per client: clock where each of its rows' structs start, and that row's index
        self._client_starts: dict[int, list[int]] = {}
        self._client_rows: dict[int, list[int]] = {}
        self._client_author: dict[int, int] = {}  # the author of a client's rows, while only one
        self._mixed_clients: set[int] = set()  # clients whose rows came from several authors

    # -- reading ---------------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.seqs)

    @property
    def folded_seq(self) -> int:
        return self.seqs[-1] if self.seqs else 0

    def ops_of(self, row: int) -> range:
        return range(self.op_end[row - 1] if row else 0, self.op_end[row])

    def row_of_op(self, op: int) -> int:
        return bisect_right(self.op_end, op)

    def row_of_seq(self, seq: int) -> int:
        """Index of the last row with seq <= `seq` (-1 if none)."""
        return bisect_right(self.seqs, seq) - 1

    def row_at_time(self, moment: float) -> int:
        """Index of the last row logged at or before `moment` (-1 if none); server clocks may step
        back, so this is the last row before the first one that is later than `moment`."""
        lo, hi = 0, len(self.times)
        while lo < hi:
            mid = (lo + hi) // 2
            if self.times[mid] <= moment:
                lo = mid + 1
            else:
                hi = mid
        return lo - 1

    def key_name(self, key: int) -> tuple[str, bool]:
        value = self.keys[key]
        return (value, False) if isinstance(value, str) else (f"{value[0]}:{value[1]}", True)

    def changes(self, row: int) -> list[Change]:
        author = self.authors[self.row_author[row]]
        found = []
        for op in self.ops_of(row):
            root, nested = self.key_name(self.op_key[op])
            tag = self.op_tag[op]
            found.append(
                Change(
                    KIND_NAMES[self.op_kind[op]],
                    root,
                    nested,
                    self.op_pos[op],
                    self.op_text[op],
                    author,
                    self.authors[self.op_owner[op]],
                    self.authors[tag] if tag >= 0 else None,
                )
            )
        return found

    def author_of(self, client: int, clock: int) -> int:
        """The author index of the row that logged item (client, clock), -1 if unknown."""
        starts = self._client_starts.get(client)
        if not starts:
            return -1
        i = bisect_right(starts, clock) - 1
        return self.row_author[self._client_rows[client][i]] if i >= 0 else -1

    def first_clock_from_row(self, client: int, row: int) -> int | None:
        """The first clock of `client` logged at row index >= `row` (None: none was)."""
        rows = self._client_rows.get(client)
        if not rows:
            return None
        i = bisect_right(rows, row - 1)
        return self._client_starts[client][i] if i < len(rows) else None

    # -- folding ---------------------------------------------------------------------------------
    def fold(self, rows: Iterable[LogRow]) -> None:
        """Fold rows with seq > `folded_seq`, in seq order (rows already folded are skipped)."""
        for row in rows:
            if row.seq <= self.folded_seq:
                continue
            try:
                self._fold_row(row.seq, row.created_at, row.author, row.data)
            except (DecodeError, ValueError, AssertionError) as exc:
                raise HistoryError(row.seq, str(exc)) from exc

    def fold_base(self, seq: int, created_at: float, state: bytes) -> None:
        """Start a fold whose log was pruned before `seq`: its snapshot, written by nobody known."""
        if self.seqs:
            raise ValueError("a base state only starts an empty fold")
        try:
            self._fold_row(seq, created_at, BASE_AUTHOR, state)
        except (DecodeError, ValueError, AssertionError) as exc:
            raise HistoryError(seq, str(exc)) from exc

    def _author_id(self, author: str) -> int:
        found = self._author_ids.get(author)
        if found is None:
            found = self._author_ids[author] = len(self.authors)
            self.authors.append(author)
        return found

    def _key_id(self, key: str | ID) -> int:
        found = self._key_ids.get(key)
        if found is None:
            found = self._key_ids[key] = len(self.keys)
            self.keys.append(key)
        return found

    def _fold_row(self, seq: int, created_at: float, author_name: str, data: bytes) -> None:
        structs, deletions = decode_update(data)
        row = len(self.seqs)
        author = self._author_id(author_name)
        self.seqs.append(seq)
        self.times.append(created_at)
        self.row_author.append(author)
        inserted = deleted = 0
        integrator = self.integrator
        last_client = -1
        for struct in structs:  # an update lists its structs client by client, clocks ascending
            client = struct.client
            if client != last_client:
                last_client = client
                starts = self._client_starts.get(client)
                if starts is None:
                    starts = self._client_starts[client] = []
                    self._client_rows[client] = []
                starts.append(struct.clock)
                self._client_rows[client].append(row)
                if self._client_author.setdefault(client, author) != author:
                    self._mixed_clients.add(client)
        for struct, placed in integrator.integrate_all(structs):
            client = struct.client
            if placed.__class__ is Placed:
                assert isinstance(placed, Placed)
                inserted += len(placed.text)
                self._record_insert(placed, author, client, struct.clock)
            elif isinstance(placed, Keyed):
                key = self._key_id(placed.parent)
                self._record(KEY, key, -1, placed.key, author, author, -1, placed.client, placed.clock)
        for client, ranges in deletions.items():
            for clock, length in ranges:
                for removed in integrator.delete(client, clock, length):
                    deleted += len(removed.text)
                    self._record_delete(removed, author)
        self.inserted.append(inserted)
        self.deleted.append(deleted)
        self.op_end.append(len(self.op_kind))

    def _record(
        self,
        kind: int,
        key: int,
        pos: int,
        text: str,
        owner: int,
        author: int,
        tag: int,
        client: int,
        clock: int,
    ) -> None:
        self.op_kind.append(kind)
        self.op_key.append(key)
        self.op_pos.append(pos)
        self.op_len.append(len(text))
        self.op_text.append(text)
        self.op_owner.append(owner)
        self.op_author.append(author)
        self.op_tag.append(tag)
        self.op_client.append(client)
        self.op_clock.append(clock)

    def _record_insert(self, placed: Placed, author: int, client: int, clock: int) -> None:
        tag = self._built_on(placed, author, client)
        seg = placed.seg
        if seg.tag != tag and seg.units > len(placed.text):  # typed on into a run built on another
            seg = self.integrator.split_off(seg, seg.clock + seg.length - clock)
        seg.tag = tag
        key = self._key_id(placed.sequence.key)
        # keystrokes of one row (one transaction) typed one after the other: one operation
        start = self.op_end[-1] if self.op_end else 0
        last = len(self.op_kind) - 1
        if (
            last >= start
            and self.op_kind[last] == INSERT
            and self.op_key[last] == key
            and self.op_tag[last] == tag
            and self.op_client[last] == client
            and self.op_pos[last] + self.op_len[last] == placed.position
        ):
            self.op_text[last] += placed.text
            self.op_len[last] += len(placed.text)
            return
        self._record(INSERT, key, placed.position, placed.text, author, author, tag, client, clock)

    def _built_on(self, placed: Placed, author: int, client: int) -> int:
        neighbour = placed.left if placed.left is not None else self.integrator.right_char(placed)
        if neighbour is None:
            return -1
        seg, clock = neighbour
        if seg.client == client and client not in self._mixed_clients:
            return seg.tag  # typing on one's own text: no lookup needed
        writer = self.author_of(seg.client, clock)
        return writer if writer != author else seg.tag

    def _record_delete(self, removed: Removed, author: int) -> None:
        key = self._key_id(removed.sequence.key)
        client, clock, text = removed.client, removed.clock, removed.text
        pieces = [(clock, text)]
        if client in self._mixed_clients:  # a run of one client may hold several authors' rows
            pieces = self._by_author(client, clock, text)
        for start, part in pieces:
            owner = self.author_of(client, start)
            if owner < 0:
                owner = self._author_id(BASE_AUTHOR)
            self._record(DELETE, key, removed.position, part, owner, author, -1, client, start)

    def _by_author(self, client: int, clock: int, text: str) -> list[tuple[int, str]]:
        """`text` (items of `client` from `clock` on) cut where the author of the rows changes."""
        starts, rows = self._client_starts[client], self._client_rows[client]
        pieces: list[tuple[int, str]] = []
        begin, owner = 0, self.author_of(client, clock)
        units = clock
        for i, ch in enumerate(text):
            if i:
                at = bisect_right(starts, units) - 1
                writer = self.row_author[rows[at]] if at >= 0 else -1
                if writer != owner:
                    pieces.append((units - _utf16(text[begin:i]), text[begin:i]))
                    begin, owner = i, writer
            units += 2 if ord(ch) > 0xFFFF else 1
        pieces.append((units - _utf16(text[begin:]), text[begin:]))
        return pieces

    # -- state ---------------------------------------------------------------------------------
    def texts(self) -> dict[str, str]:
        """The visible content of every root sequence now (text; others as U+FFFC per element)."""
        return {k: s.text() for k, s in self.integrator.sequences.items() if isinstance(k, str)}

    def root_kinds(self) -> dict[str, str]:
        return self.integrator.root_kinds()


def _utf16(text: str) -> int:
    return len(text) + sum(1 for ch in text if ord(ch) > 0xFFFF)
