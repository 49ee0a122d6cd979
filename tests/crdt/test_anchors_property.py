"""Property: under random concurrent edits on several replicas, every anchor covers exactly its members.

Every character in these documents is unique, so the test can tell where each one went. A range's
members are its original characters plus the text typed inside it. Which side of a range new
text lands on follows from how Yjs/yrs place an insertion: right before the visible character on
its right R (after any deleted characters in between). So new text joins R's side, except that
text typed right before the range's own first character stays out; text typed at the very end
of the document is after every range. The oracle applies that rule at each insertion, on the
inserting replica's own view; after all replicas sync, each one must resolve each anchor to
exactly its surviving members (in code points and UTF-16 units), or to an orphan when none
survive.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pycrdt import Doc, Text

from crdt.anchors import Anchor, anchor_range, resolve
from crdt.shadow import Shadow

BEFORE, INSIDE, AFTER = -1, 0, 1


def alphabet() -> Iterator[str]:
    """Unique characters of every UTF-8 and UTF-16 width, interleaved."""
    pools = [range(0x21, 0x7F), range(0x100, 0x800), range(0x4E00, 0x9FFF), range(0x1F300, 0x1FAFF)]
    for chars in itertools.zip_longest(*pools):
        yield from (chr(c) for c in chars if c is not None)


@dataclass
class World:
    replicas: list[Doc[Any]]
    fresh: Iterator[str] = field(default_factory=alphabet)
    # per anchored range: its anchor, its first original character, each character's side
    anchors: list[Anchor] = field(default_factory=list)
    firsts: list[str] = field(default_factory=list)
    sides: list[dict[str, int]] = field(default_factory=list)

    def text(self, i: int) -> Text:
        return self.replicas[i].get("t", type=Text)

    def insert(self, i: int, at: int, count: int) -> None:
        text = self.text(i)
        content = str(text)
        at = min(at, len(content))
        new = "".join(next(self.fresh) for _ in range(count))
        right = content[at] if at < len(content) else None
        for first, sides in zip(self.firsts, self.sides, strict=True):
            side = AFTER if right is None else BEFORE if right == first else sides[right]
            sides.update(dict.fromkeys(new, side))
        text.insert(len(content[:at].encode()), new)

    def delete(self, i: int, at: int, length: int) -> None:
        text = self.text(i)
        content = str(text)
        at = min(at, len(content))
        end = min(len(content), at + length)
        del text[len(content[:at].encode()) : len(content[:end].encode())]

    def sync(self, source: int, target: int) -> None:
        a, b = self.replicas[source], self.replicas[target]
        b.apply_update(a.get_update(b.get_state()))


operations = st.lists(
    st.tuples(
        st.sampled_from(["insert", "insert", "delete", "sync"]),
        st.integers(0, 3),  # replica
        st.integers(0, 40),  # position
        st.integers(1, 4),  # count / length / other replica
    ),
    max_size=30,
)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    replica_count=st.integers(2, 4),
    initial=st.integers(1, 16),
    ranges=st.lists(st.tuples(st.integers(0, 15), st.integers(1, 6)), min_size=1, max_size=3),
    ops=operations,
)
def test_anchors_cover_exactly_their_members(
    replica_count: int, initial: int, ranges: list[tuple[int, int]], ops: list[tuple[str, int, int, int]]
) -> None:
    world = World([Doc() for _ in range(replica_count)])
    origin = world.text(0)
    origin += "".join(next(world.fresh) for _ in range(initial))
    for i in range(1, replica_count):
        world.sync(0, i)
    content = str(origin)
    for start, length in ranges:
        start = min(start, len(content) - 1)
        end = min(len(content), start + length)
        world.anchors.append(anchor_range(world.replicas[0], "t", start, end, "codepoint").anchor)
        world.firsts.append(content[start])
        world.sides.append(
            {c: BEFORE if k < start else INSIDE if k < end else AFTER for k, c in enumerate(content)}
        )
    twins = [Shadow() for _ in world.replicas]  # kept across checks: exercises incremental syncs
    for kind, replica, position, count in ops:
        replica %= replica_count
        if kind == "insert":
            world.insert(replica, position, count)
        elif kind == "delete":
            world.delete(replica, position, count)
        else:
            world.sync(replica, (replica + count) % replica_count)
        if kind != "sync":  # mid-way resolutions must not disturb anything
            resolve(world.replicas[replica], world.anchors, "utf16", twins[replica])
    for _ in range(2):
        for a, b in itertools.permutations(range(replica_count), 2):
            world.sync(a, b)
    final = str(world.text(0))
    for i, doc in enumerate(world.replicas):
        assert str(world.text(i)) == final
        by_cp = resolve(doc, world.anchors, "codepoint", twins[i])
        by_16 = resolve(doc, world.anchors, "utf16")
        for k, sides in enumerate(world.sides):
            members = [p for p, c in enumerate(final) if sides[c] == INSIDE]
            found, found16 = by_cp[k], by_16[k]
            assert not found.missing
            if not members:
                assert found.orphaned and found.start == found.end and found.quote == ""
            else:
                assert (found.start, found.end) == (members[0], members[-1] + 1), (final, k)
                assert len(members) == members[-1] + 1 - members[0]  # contiguous, as the rule implies
                assert found.quote == final[members[0] : members[-1] + 1]
            assert (found16.start, found16.end) == (utf16(final, found.start), utf16(final, found.end))
            assert found16.quote == found.quote


def utf16(text: str, codepoint: int) -> int:
    return len(text[:codepoint].encode("utf-16-le")) // 2
