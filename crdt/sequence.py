"""Yjs item order without pycrdt: YATA integration over runs of items, positions in code points."""

# pycrdt can say where an edit landed only through `observe` deltas, which yrs computes by walking
# the whole text on every event (O(document) per update: 80 s for the 260k-update automerge-paper
# trace). History needs a position for every update, so this module keeps its own copy of each
# shared sequence's item order: runs of consecutive items ("segments"), in blocks, with per-client
# clock indexes. Insertion follows Yjs `Item.integrate` (YATA: origin, right origin, the conflict
# scan ordering concurrent inserts by client id); deletions mark ranges of ids. A segment is a
# union of Yjs items that the scan treats alike (consecutive clocks of one client, each origin the
# previous item), so splitting or merging segments never changes where an item lands.
#
# Units: clocks and split offsets are Yjs clock units (UTF-16 code units for strings); visible
# lengths and positions are code points (embeds and shared types count one, format markers zero).
# Map entries are indexed by id (so deletions and origins resolve) but not ordered.

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass

from crdt.segments import ClockIndex, ClockRanges, Seg, Sequence, Slot, code_point_offset, units_of
from crdt.ystructs import DELETED, EMBED, FORMAT, GC, ID, STRING, TYPE, TYPE_NAMES, Struct, decode_update

SEGMENT_MAX_UNITS = 512  # extending a segment in place copies its text: bound the copy
NEIGHBOUR_SCAN = 64  # segments looked at to find the visible character next to an insertion


def _kind_shown_by(struct: Struct) -> str:
    """The kind of sequence an item's content proves ("" for deleted content: no proof)."""
    if struct.kind in (STRING, EMBED, FORMAT):
        return "text"
    if struct.kind == TYPE and struct.type_ref in (3, 6):
        return "xml"
    if struct.kind in (DELETED, GC):
        return ""
    return "array"


def root_kinds(update: bytes) -> dict[str, str]:
    """The kinds of a document's roots, read off a state update (roots whose every item was
    deleted and collected are missing: nothing tells their kind any more)."""
    structs, _ = decode_update(update)
    integrator = Integrator()
    for _ in integrator.integrate_all(structs):
        pass
    return integrator.root_kinds()


@dataclass(frozen=True, slots=True)
class Placed:
    """Where an integrated item's visible content landed. `left`/`right`: the segments holding the
    visible characters right before and after it (None at an edge or past the scan bound) and the
    clocks of those characters."""

    sequence: Sequence
    position: int
    text: str
    seg: Seg
    left: tuple[Seg, int] | None
    right: tuple[Seg, int] | None


@dataclass(frozen=True, slots=True)
class Removed:
    sequence: Sequence
    position: int
    text: str
    client: int
    clock: int


@dataclass(frozen=True, slots=True)
class Keyed:
    """A map entry was written."""

    parent: str | ID
    key: str
    client: int
    clock: int


class Integrator:
    """Integrates decoded structs in log order; reports where visible content appeared/vanished."""

    def __init__(self) -> None:
        self.sequences: dict[str | ID, Sequence] = {}
        self.clients: dict[int, ClockIndex] = {}
        self.deleted: dict[int, ClockRanges] = {}  # clocks of items known deleted, per client
        self.next_clock: dict[int, int] = {}
        self.types: dict[ID, str] = {}
        self.map_roots: set[str] = set()

    def root_kinds(self) -> dict[str, str]:
        """Root name -> "text" | "map" | "array" | "xml", for the roots whose content told."""
        kinds = {name: "map" for name in self.map_roots}
        kinds.update({k: s.kind for k, s in self.sequences.items() if isinstance(k, str) and s.kind})
        return kinds

    def sequence(self, key: str | ID) -> Sequence:
        found = self.sequences.get(key)
        if found is None:
            found = self.sequences[key] = Sequence(key)
            if not isinstance(key, str):
                found.kind = self.types.get(key, "")
        return found

    def find(self, client: int, clock: int) -> Seg | None:
        index = self.clients.get(client)
        return None if index is None else index.find(clock)

    # -- insertion ---------------------------------------------------------------------------
    def integrate_all(self, structs: list[Struct]) -> Iterator[tuple[Struct, Placed | Keyed | None]]:
        """Integrate an update's structs, each after the items of other clients it refers to (an
        update lists them client by client, not in dependency order): Yjs `integrateStructs`,
        struct by struct — a missing dependency pulls the next struct of the client it is from."""
        if not structs or structs[0].client == structs[-1].client:
            for struct in structs:
                yield struct, self.integrate(struct)
            return
        queues: dict[int, deque[Struct]] = {}
        for struct in structs:
            queues.setdefault(struct.client, deque()).append(struct)
        targets = sorted(queues)  # Yjs starts with the highest client id
        stack: list[Struct] = []
        while targets or stack:
            if stack:
                head = stack.pop()
            else:
                queue = queues[targets[-1]]
                if not queue:
                    targets.pop()
                    continue
                head = queue.popleft()
            while True:
                needed = self._missing(head)
                source = queues.get(needed) if needed is not None else None
                if not source:
                    break  # nothing missing (or it is not in this update: integrate as well as we can)
                stack.append(head)
                head = source.popleft()
            yield head, self.integrate(head)

    def _missing(self, struct: Struct) -> int | None:
        """A client of whose items `struct` needs one not integrated yet (None: nothing missing)."""
        known = self.next_clock
        for ref in (struct.origin, struct.right, struct.parent):
            if isinstance(ref, tuple) and ref[0] != struct.client and ref[1] >= known.get(ref[0], 0):
                return ref[0]
        return None

    def integrate(self, struct: Struct) -> Placed | Keyed | None:
        known = self.next_clock.get(struct.client, 0)
        if struct.clock + struct.length <= known:
            return None  # already integrated
        if struct.clock < known:
            raise ValueError(f"struct {struct} overlaps known clocks of its client (up to {known})")
        self.next_clock[struct.client] = struct.clock + struct.length
        if struct.kind == TYPE:
            self.types[(struct.client, struct.clock)] = TYPE_NAMES.get(struct.type_ref, "array")
        left = self._clean_end(struct.origin) if struct.origin is not None else None
        right = self._clean_start(struct.right) if struct.right is not None else None
        owner = self._owner(struct, left, right)
        if not isinstance(owner, Sequence):
            seg = self._new_seg(struct, owner)
            if isinstance(owner, Slot) and isinstance(owner.parent, str):
                self.map_roots.add(owner.parent)
            if isinstance(owner, Slot) and struct.kind not in (GC, DELETED):
                return Keyed(owner.parent, owner.sub, struct.client, struct.clock)
            return None
        if not owner.kind:
            owner.kind = _kind_shown_by(struct)
        if left is not None:
            block = left.block
            assert block is not None
            i = block.segs.index(left)
            if i + 1 < len(block.segs):
                following: Seg | None = block.segs[i + 1]
            else:
                blocks = owner.blocks
                following = blocks[block.index + 1].segs[0] if block.index + 1 < len(blocks) else None
            if following is right and self._extends(left, struct):  # typing on: grow the run
                added = len(struct.text or "")
                before = left.units
                left.length += struct.length
                left.text = (left.text or "") + (struct.text or "")
                left.units += added
                block.vis[i] += added
                owner.totals[block.index] += added
                position = sum(owner.totals[: block.index]) + sum(block.vis[:i]) + before
                return Placed(owner, position, struct.text or "", left, (left, struct.clock - 1), None)
        else:
            following = owner.first()
        if following is not right:
            left = self._resolve_conflict(struct, owner, left, right)
        seg = self._new_seg(struct, owner)
        owner.insert_after(left, seg)
        if not seg.visible:
            return None
        return Placed(owner, owner.position(seg), seg.content(), seg, self._left_char(owner, seg), None)

    def right_char(self, placed: Placed) -> tuple[Seg, int] | None:
        """The visible character right after `placed` (looked up on demand: rarely needed)."""
        seg = placed.sequence.next_of(placed.seg)
        for _ in range(NEIGHBOUR_SCAN):
            if seg is None:
                return None
            if seg.visible:
                return seg, seg.clock
            seg = placed.sequence.next_of(seg)
        return None

    def _extends(self, left: Seg, struct: Struct) -> bool:
        return (
            struct.kind == STRING
            and left.kind == STRING
            and not left.deleted
            and left.client == struct.client
            and left.clock + left.length == struct.clock
            and left.right == struct.right
            and left.units < SEGMENT_MAX_UNITS
        )

    def _left_char(self, sequence: Sequence, seg: Seg) -> tuple[Seg, int] | None:
        for left, _ in zip(sequence.before(seg), range(NEIGHBOUR_SCAN), strict=False):
            if left.visible:
                return left, left.clock + left.length - 1
        return None

    def _new_seg(self, struct: Struct, owner: Sequence | Slot | None) -> Seg:
        seg = Seg(struct.client, struct.clock, struct.length, struct.kind, struct.text)
        seg.origin, seg.right, seg.owner = struct.origin, struct.right, owner
        if owner is None:
            seg.deleted = True
        index = self.clients.get(struct.client)
        if index is None:
            index = self.clients[struct.client] = ClockIndex()
        index.add(seg)
        return seg

    def _owner(self, struct: Struct, left: Seg | None, right: Seg | None) -> Sequence | Slot | None:
        if struct.kind == GC:
            return None
        neighbour = left if left is not None else right
        if neighbour is not None:
            return neighbour.owner
        if struct.origin is not None or struct.right is not None:
            return None  # its neighbours were garbage-collected: so is it
        parent = struct.parent
        if parent is None:
            return None
        if not isinstance(parent, str) and parent not in self.types:
            return None  # the parent type is unknown or was collected
        if struct.sub is not None:
            return Slot(parent, struct.sub)
        return self.sequence(parent)

    def _resolve_conflict(
        self, struct: Struct, owner: Sequence, left: Seg | None, right: Seg | None
    ) -> Seg | None:
        """Yjs `Item.integrate`: order concurrent insertions between origin and right origin."""
        o = owner.next_of(left) if left is not None else owner.first()
        conflicting: set[int] = set()
        before: set[int] = set()
        while o is not None and o is not right:
            before.add(id(o))
            conflicting.add(id(o))
            if o.origin == struct.origin:
                if o.client < struct.client:
                    left = o
                    conflicting.clear()
                elif o.right == struct.right:
                    break
            else:
                origin = self.find(*o.origin) if o.origin is not None else None
                if origin is None or id(origin) not in before:
                    break
                if id(origin) not in conflicting:
                    left = o
                    conflicting.clear()
            o = owner.next_of(o)
        return left

    # -- splitting ---------------------------------------------------------------------------
    def split_off(self, seg: Seg, length: int) -> Seg:
        """Cut the last `length` clock units of `seg` into a segment of their own (returned)."""
        return self._split(seg, seg.length - length) if 0 < length < seg.length else seg

    def _clean_end(self, at: ID) -> Seg | None:
        """The segment ending exactly at item `at` (split when `at` is inside one)."""
        seg = self.find(*at)
        if seg is not None and at[1] != seg.clock + seg.length - 1:
            self._split(seg, at[1] - seg.clock + 1)
        return seg

    def _clean_start(self, at: ID) -> Seg | None:
        seg = self.find(*at)
        if seg is not None and at[1] != seg.clock:
            return self._split(seg, at[1] - seg.clock)
        return seg

    def _split(self, seg: Seg, offset: int) -> Seg:
        """Cut `seg` after `offset` clock units; return the new right part (placed after it)."""
        text = seg.text
        right_text = None
        if text is not None:
            cut = offset if seg.units == seg.length else code_point_offset(text, offset)
            text, right_text = text[:cut], text[cut:]
        right = Seg(seg.client, seg.clock + offset, seg.length - offset, seg.kind, right_text)
        right.origin = (seg.client, seg.clock + offset - 1)
        right.right, right.owner, right.deleted, right.tag = seg.right, seg.owner, seg.deleted, seg.tag
        seg.length, seg.text = offset, text
        seg.units = units_of(seg.kind, offset, text)
        self.clients[seg.client].add(right)
        if isinstance(seg.owner, Sequence):
            seg.owner.refresh(seg)
            seg.owner.insert_after(seg, right)
        return right

    # -- deletion ----------------------------------------------------------------------------
    def delete(self, client: int, clock: int, length: int) -> list[Removed]:
        """Mark items [clock, clock + length) of `client` deleted; the visible parts removed.
        Clocks already deleted are skipped without a walk: updates made with a state vector
        (`encodeStateAsUpdate(doc, sv)`) repeat their author's whole delete set every time."""
        index = self.clients.get(client)
        removed: list[Removed] = []
        if index is None:
            return removed
        done = self.deleted.get(client)
        if done is None:
            done = self.deleted[client] = ClockRanges()
        for start, end in done.gaps(clock, clock + length):
            self._delete_range(index, done, start, end, removed)
        return removed

    def _delete_range(
        self, index: ClockIndex, done: ClockRanges, clock: int, end: int, removed: list[Removed]
    ) -> None:
        """Walk the known items of [clock, end); record the clocks walked as deleted."""
        while clock < end:
            seg = index.find(clock)
            if seg is None:
                seg = index.following(clock)
                if seg is None or seg.clock >= end:
                    break
            if seg.clock < clock:
                seg = self._split(seg, clock - seg.clock)
            if seg.clock + seg.length > end:
                self._split(seg, end - seg.clock)
            clock = seg.clock + seg.length
            done.add(seg.clock, clock)  # only clocks of known items: later ones may still arrive
            if seg.deleted:
                continue
            owner = seg.owner
            if isinstance(owner, Sequence) and seg.units:
                position = owner.position(seg)
                seg.deleted = True
                owner.refresh(seg)
                removed.append(Removed(owner, position, seg.content(), seg.client, seg.clock))
            else:
                seg.deleted = True
