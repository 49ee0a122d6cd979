"""How deep shared types nest across all of a document's updates, to refuse chains that crash yrs."""

# Why. The validator caps the nesting of shared types inside ONE update, but a chain can be built
# one level per update (`m["c"] = Map()` on the innermost map, again and again). yrs recurses
# along such a chain when it deletes or encodes it: at ~40,000 levels the process dies with
# SIGSEGV (stack overflow, measured with pycrdt 0.14 on an 8 MiB stack), taking every room along.
#
# How. Every item has a level: 1 for the children of a root type, one more under each shared
# type. An item with an origin (or right origin) is a sibling of it and has its level; an item
# with a parent id sits one level below that type's item. An update that creates shared types
# (rare: the live-edit fast path never does) is checked here before it is applied: its structs
# are resolved against each other and against the document's own structs, which are read from the
# document per client when first needed (`read_client`: the document's structs of one client from
# a clock on) and kept, so the work is proportional to the structs involved, once. An anchor the
# document does not hold yet (yrs keeps such structs pending) counts as level 1; the chain built
# on it is still checked, since admitted structs are kept here too.

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Callable
from typing import Final

from crdt.errors import InvalidUpdate
from crdt.ystructs import GC, ID, TYPE, Struct, decode_update

ReadClient = Callable[[int, int], bytes]
"""(client, from_clock) -> a Yjs update holding the document's structs of that client from the clock."""

_Kept = tuple[int, int, int, int, ID | None, ID | None, str | ID | None]
"""What is kept of a struct: (client, clock, length, kind, origin, right, parent). A plain tuple of
atoms, not an object: the garbage collector stops tracking it, so the millions kept for a large
document add nothing to each full collection (which would otherwise stall the event loop)."""
_CLIENT: Final = 0
_CLOCK: Final = 1
_LENGTH: Final = 2
_KIND: Final = 3
_ORIGIN: Final = 4
_RIGHT: Final = 5
_PARENT: Final = 6


def _kept(struct: Struct) -> _Kept:
    return (
        struct.client,
        struct.clock,
        struct.length,
        struct.kind,
        struct.origin,
        struct.right,
        struct.parent,
    )


class TypeDepths:
    """The levels of the items of one document, learnt lazily; `admit` refuses too deep a chain."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._starts: dict[int, list[int]] = {}  # client -> ascending start clocks of its structs
        self._structs: dict[int, list[_Kept]] = {}  # client -> its structs, in the same order
        self._covered: dict[int, int] = {}  # client -> clock up to which its structs are known
        # (client, start clock) -> level, keyed client << 32 | clock: a dict of ints only, which the
        # garbage collector does not track (client ids < 2^53, clocks < 2^32)
        self._levels: dict[int, int] = {}

    def admit(self, update: bytes, read_client: ReadClient) -> None:
        """Raise InvalidUpdate if the (validated) update puts a shared type deeper than the limit;
        otherwise remember its structs, for the updates that build on them."""
        structs, _ = decode_update(update)
        covered = self._covered
        fresh = [_kept(s) for s in structs if s.kind != GC and s.clock >= covered.get(s.client, 0)]
        overlay: dict[int, list[_Kept]] = {}
        for struct in fresh:
            overlay.setdefault(struct[_CLIENT], []).append(struct)
        levels: dict[int, int] = {}  # id(struct) -> level, for this update's own structs
        for struct in fresh:
            if struct[_KIND] == TYPE and self._level(struct, overlay, levels, read_client) > self.limit:
                raise InvalidUpdate(f"shared types nested deeper than {self.limit} in the document")
        for client, own in overlay.items():
            self._fill(client, own[0][_CLOCK], read_client)
            self._append(client, own)
        for struct in fresh:
            level = levels.get(id(struct))
            if level is not None:
                self._levels[struct[_CLIENT] << 32 | struct[_CLOCK]] = level

    # -- levels -----------------------------------------------------------------------------------
    def _level(
        self, struct: _Kept, overlay: dict[int, list[_Kept]], levels: dict[int, int], read: ReadClient
    ) -> int:
        """The level of `struct`, resolved iteratively along origins and parents (chains of siblings
        can be long). Levels of the document's structs are kept; those of the update's own structs
        go to `levels` until the update is admitted."""
        path: list[tuple[_Kept, int]] = []  # (struct, levels it adds below its anchor)
        current: _Kept | None = struct
        base = 1
        while current is not None:
            known = levels.get(id(current))
            if known is None:
                known = self._levels.get(current[_CLIENT] << 32 | current[_CLOCK])
            if known is not None:
                base = known
                break
            anchor, step = _anchor(current)
            path.append((current, step))
            if anchor is None:
                base = 1
                break
            current = self._find(anchor, overlay, read)
            if current is None:
                base = 1  # not in the document yet: yrs keeps what hangs off it pending
                break
            if len(path) > 1_000_000:
                raise InvalidUpdate("origin chain too long to resolve")
        level = base
        for item, step in reversed(path):
            level = (level + step) if step >= 0 else 1
            if _containing(overlay.get(item[_CLIENT], []), item[_CLOCK]) is item:
                levels[id(item)] = level
            else:
                self._levels[item[_CLIENT] << 32 | item[_CLOCK]] = level
        return level

    def _find(self, target: ID, overlay: dict[int, list[_Kept]], read: ReadClient) -> _Kept | None:
        client, clock = target
        struct = _containing(overlay.get(client, []), clock)
        if struct is not None:
            return struct
        if clock >= self._covered.get(client, 0):
            self._fill(client, clock + 1, read)
        starts = self._starts.get(client, [])
        pos = bisect_right(starts, clock) - 1
        if pos < 0:
            return None
        found = self._structs[client][pos]
        return found if clock < found[_CLOCK] + found[_LENGTH] else None

    # -- the document's structs -------------------------------------------------------------------
    def _fill(self, client: int, until: int, read: ReadClient) -> None:
        """Learn the document's structs of `client` from the covered clock on, if `until` is beyond it."""
        covered = self._covered.get(client, 0)
        if until <= covered:
            return
        structs, _ = decode_update(read(client, covered))
        self._append(client, [_kept(s) for s in structs if s.client == client and s.clock >= covered])

    def _append(self, client: int, structs: list[_Kept]) -> None:
        starts = self._starts.setdefault(client, [])
        kept = self._structs.setdefault(client, [])
        covered = self._covered.get(client, 0)
        for struct in structs:
            clock = struct[_CLOCK]
            if clock < covered:
                continue
            starts.append(clock)
            kept.append(struct)
            covered = clock + struct[_LENGTH]
        self._covered[client] = covered


def _anchor(struct: _Kept) -> tuple[ID | None, int]:
    """(the id this struct's level derives from, levels added): 0 below an origin, 1 below a parent
    type; (None, -1) for the child of a root type."""
    origin, right, parent = struct[_ORIGIN], struct[_RIGHT], struct[_PARENT]
    if origin is not None:
        return origin, 0
    if right is not None:
        return right, 0
    if isinstance(parent, tuple):
        return parent, 1
    return None, -1


def _containing(structs: list[_Kept], clock: int) -> _Kept | None:
    """The struct of one client's run (ascending clocks) that holds `clock`, if any."""
    low, high = 0, len(structs)
    while low < high:
        middle = (low + high) // 2
        if structs[middle][_CLOCK] <= clock:
            low = middle + 1
        else:
            high = middle
    if low and clock < structs[low - 1][_CLOCK] + structs[low - 1][_LENGTH]:
        return structs[low - 1]
    return None
