"""Runs of Yjs items in document order ("segments"), their blocks and per-client clock indexes."""

# The data structures of `crdt.sequence`: a `Sequence` is the item order of one shared type as
# blocks of segments (a block keeps its segments' visible lengths, the sequence its blocks' totals,
# so a position is two sums); a `ClockIndex` finds the segment holding a client's clock.

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Iterator

from crdt.ystructs import ANY, DELETED, FORMAT, GC, ID

BLOCK_MAX = 128
INDEX_BLOCK_MAX = 512
OBJECT = "\ufffc"  # how an embed or a shared type shows in text


class Seg:
    """A run of items: `length` clock units from (client, clock); `units` code points when visible."""

    __slots__ = (
        "block", "client", "clock", "deleted", "kind", "length",
        "origin", "owner", "right", "tag", "text", "units",
    )  # fmt: skip

    def __init__(self, client: int, clock: int, length: int, kind: int, text: str | None) -> None:
        self.client = client
        self.clock = clock
        self.length = length
        self.kind = kind
        self.text = text
        self.units = units_of(kind, length, text)
        self.origin: ID | None = None
        self.right: ID | None = None
        self.deleted = kind in (DELETED, GC)
        self.owner: Sequence | Slot | None = None
        self.block: Block | None = None
        self.tag = -1  # free for the caller (history: the author this run was built on)

    @property
    def visible(self) -> int:
        return 0 if self.deleted else self.units

    def content(self) -> str:
        return self.text if self.text is not None else OBJECT * self.units

    def __repr__(self) -> str:
        return f"Seg({self.client}:{self.clock}+{self.length} {self.text!r} deleted={self.deleted})"


def units_of(kind: int, length: int, text: str | None) -> int:
    if text is not None:
        return len(text)
    if kind in (FORMAT, DELETED, GC):
        return 0
    return length if kind == ANY else 1


class Block:
    __slots__ = ("index", "segs", "vis")

    def __init__(self, index: int, segs: list[Seg]) -> None:
        self.index = index
        self.segs = segs
        self.vis = [s.visible for s in segs]
        for seg in segs:
            seg.block = self


class Slot:
    """The entries of one map key (`sub`) of a shared type: indexed, not ordered."""

    __slots__ = ("parent", "sub")

    def __init__(self, parent: str | ID, sub: str) -> None:
        self.parent = parent
        self.sub = sub


class Sequence:
    """The item order of one shared type (a root, or a nested type named by its item id)."""

    def __init__(self, key: str | ID) -> None:
        self.key = key
        self.kind = ""  # "text", "array", "xml"; "" until content tells (a root's kind is not on the wire)
        self.blocks: list[Block] = []
        self.totals: list[int] = []

    def __len__(self) -> int:
        return sum(self.totals)

    def first(self) -> Seg | None:
        return self.blocks[0].segs[0] if self.blocks else None

    def position(self, seg: Seg) -> int:
        block = seg.block
        assert block is not None
        return sum(self.totals[: block.index]) + sum(block.vis[: block.segs.index(seg)])

    def next_of(self, seg: Seg) -> Seg | None:
        block = seg.block
        assert block is not None
        i = block.segs.index(seg) + 1
        if i < len(block.segs):
            return block.segs[i]
        return self.blocks[block.index + 1].segs[0] if block.index + 1 < len(self.blocks) else None

    def prev_of(self, seg: Seg) -> Seg | None:
        block = seg.block
        assert block is not None
        i = block.segs.index(seg)
        if i:
            return block.segs[i - 1]
        return self.blocks[block.index - 1].segs[-1] if block.index else None

    def before(self, seg: Seg) -> Iterator[Seg]:
        """The segments before `seg`, nearest first (one index lookup, then steps)."""
        block = seg.block
        assert block is not None
        i = block.segs.index(seg)
        while True:
            segs = block.segs
            for j in range(i - 1, -1, -1):
                yield segs[j]
            if not block.index:
                return
            block = self.blocks[block.index - 1]
            i = len(block.segs)

    def insert_after(self, left: Seg | None, seg: Seg) -> None:
        if left is None:
            if not self.blocks:
                self.blocks.append(Block(0, [seg]))
                self.totals.append(seg.visible)
                return
            block, i = self.blocks[0], 0
        else:
            assert left.block is not None
            block, i = left.block, left.block.segs.index(left) + 1
        block.segs.insert(i, seg)
        block.vis.insert(i, seg.visible)
        self.totals[block.index] += seg.visible
        seg.block = block
        if len(block.segs) > BLOCK_MAX:
            self._split_block(block)

    def refresh(self, seg: Seg) -> None:
        """`seg`'s visible length changed (deleted, extended): update its block's counts."""
        block = seg.block
        assert block is not None
        i = block.segs.index(seg)
        self.totals[block.index] += seg.visible - block.vis[i]
        block.vis[i] = seg.visible

    def _split_block(self, block: Block) -> None:
        half = len(block.segs) // 2
        right = Block(block.index + 1, block.segs[half:])
        del block.segs[half:], block.vis[half:]
        self.blocks.insert(block.index + 1, right)
        self.totals[block.index] = sum(block.vis)
        self.totals.insert(block.index + 1, sum(right.vis))
        for later in self.blocks[block.index + 2 :]:
            later.index += 1

    def segments(self) -> list[Seg]:
        return [seg for block in self.blocks for seg in block.segs]

    def text(self) -> str:
        return "".join(seg.content() for seg in self.segments() if not seg.deleted and seg.units)


class ClockIndex:
    """The segments of one client by clock (a blocked sorted list: splits insert anywhere)."""

    def __init__(self) -> None:
        self.firsts: list[int] = []
        self.starts: list[list[int]] = []
        self.segs: list[list[Seg]] = []

    def find(self, clock: int) -> Seg | None:
        b = bisect_right(self.firsts, clock) - 1
        if b < 0:
            return None
        starts = self.starts[b]
        seg = self.segs[b][bisect_right(starts, clock) - 1]
        return seg if clock < seg.clock + seg.length else None

    def following(self, clock: int) -> Seg | None:
        """The segment with the smallest start above `clock`."""
        b = max(0, bisect_right(self.firsts, clock) - 1)
        while b < len(self.starts):
            i = bisect_right(self.starts[b], clock)
            if i < len(self.starts[b]):
                return self.segs[b][i]
            b += 1
        return None

    def add(self, seg: Seg) -> None:
        clock = seg.clock
        if not self.firsts:
            self.firsts.append(clock)
            self.starts.append([clock])
            self.segs.append([seg])
            return
        b = max(0, bisect_right(self.firsts, clock) - 1)
        starts = self.starts[b]
        i = bisect_right(starts, clock)
        starts.insert(i, clock)
        self.segs[b].insert(i, seg)
        self.firsts[b] = starts[0]
        if len(starts) > INDEX_BLOCK_MAX:
            half = len(starts) // 2
            self.starts.insert(b + 1, starts[half:])
            self.segs.insert(b + 1, self.segs[b][half:])
            del starts[half:], self.segs[b][half:]
            self.firsts.insert(b + 1, self.starts[b + 1][0])


class ClockRanges:
    """Disjoint [start, end) clock ranges of one client, touching ones merged (the deleted ones:
    an update carries its author's whole delete set, so most of it was applied before)."""

    def __init__(self) -> None:
        self.starts: list[int] = []
        self.ends: list[int] = []

    def gaps(self, start: int, end: int) -> list[tuple[int, int]]:
        """The parts of [start, end) outside every range, ascending."""
        out: list[tuple[int, int]] = []
        starts, ends = self.starts, self.ends
        i = bisect_right(starts, start) - 1
        if i >= 0 and ends[i] > start:
            start = ends[i]
        i += 1
        while start < end:
            if i < len(starts) and starts[i] < end:
                if starts[i] > start:
                    out.append((start, starts[i]))
                start = max(start, ends[i])
                i += 1
            else:
                out.append((start, end))
                break
        return out

    def add(self, start: int, end: int) -> None:
        if start >= end:
            return
        i = bisect_left(self.ends, start)  # the first range ending at or after `start`
        j = bisect_right(self.starts, end)  # past the last range starting at or before `end`
        if i < j:
            start, end = min(start, self.starts[i]), max(end, self.ends[j - 1])
        self.starts[i:j] = [start]
        self.ends[i:j] = [end]


def code_point_offset(text: str, units: int) -> int:
    """Code points of `text` spanning `units` UTF-16 code units (a split inside a pair rounds up)."""
    count = 0
    for i, ch in enumerate(text):
        if count >= units:
            return i
        count += 2 if ord(ch) > 0xFFFF else 1
    return len(text)
