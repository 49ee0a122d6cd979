"""Cutting a large Yjs v1 update into small valid updates, applied one by one between other rooms' work."""

# Why. pycrdt applies an update in one call that holds the GIL: a 5 MB update of small structs
# takes ~200 ms, during which no other room is served. Applied as pieces of 16-64 KiB, with the
# event loop running in between, the same update stalls nobody for more than a few milliseconds.
#
# How. In v1 every struct is self-contained (its info byte, origins, parent and content are
# written out; only its clock is implicit, the previous struct's clock plus its length). So any run
# of consecutive structs of one client, prefixed by (1 client, struct count, client id, clock of
# its first struct), is itself a v1 update. The validator's parser records where it cuts each
# client's run (`_Parser(cut=...)`), so the worker that validates a large update also returns the
# cuts: a few integers per piece, not the pieces. Every piece but the last has an empty delete set;
# the last carries the original one, so deletions apply once every struct is in. Structs that
# depend on a later piece (an origin of another client) stay pending in yrs until it arrives,
# exactly as they would across two updates sent one after the other.

from __future__ import annotations

from collections.abc import Container, Mapping
from dataclasses import dataclass

from crdt.lib0 import encode_var_uint
from crdt.validation import UpdateLimits, UpdateSummary, _Parser, parse_update

PIECE_BYTES = 16 * 1024
"""Struct bytes per piece (a piece holds at least one struct, however large). Small enough that the
room's pure-Python type-depth check of one piece stays short; consecutive pieces of a client are
applied together (`Split.reach`) when there is no such check."""

_EMPTY_DELETE_SET = b"\x00"
_DEFAULT_LIMITS = UpdateLimits()


@dataclass(frozen=True, slots=True)
class Split:
    """Where a validated update is cut: per piece (client, first clock, end clock, struct count,
    first byte, end byte) in the update's bytes, and where its delete set starts."""

    runs: tuple[tuple[int, int, int, int, int, int], ...]
    delete_set_at: int

    def __len__(self) -> int:
        """How many pieces the update makes (a delete set alone makes one)."""
        return max(len(self.runs), 1)

    def piece(self, data: bytes, index: int, structs: bool = True, through: int | None = None) -> bytes:
        """Piece `index` of `data` (with `through`, pieces `index` to `through` of one client
        together) as a v1 update: its structs (left out when `structs` is False), and the update's
        delete set if it ends with the last piece (else an empty one)."""
        through = index if through is None else through
        last = through == len(self) - 1
        deletes = data[self.delete_set_at :] if last else _EMPTY_DELETE_SET
        if not structs or not self.runs:
            return b"\x00" + deletes
        client, clock, _end, count, start, end = self.runs[index]
        for more in self.runs[index + 1 : through + 1]:
            if more[0] != client:
                raise ValueError("pieces of different clients cannot be joined")
            count, end = count + more[3], more[5]
        head = b"\x01" + encode_var_uint(count) + encode_var_uint(client) + encode_var_uint(clock)
        return b"".join((head, data[start:end], deletes))

    def reach(self, index: int, max_bytes: int) -> int:
        """The last piece to apply together with piece `index`: following pieces of the same
        client, while their struct bytes stay within `max_bytes` (at least piece `index`)."""
        runs = self.runs
        if not runs:
            return index
        client, start = runs[index][0], runs[index][4]
        through = index
        while through + 1 < len(runs) and runs[through + 1][0] == client:
            if runs[through + 1][5] - start > max_bytes:
                break
            through += 1
        return through

    def known_already(self, index: int, known: Mapping[int, int]) -> bool:
        """Whether every struct of piece `index` lies below the `known` clock of its client (a
        document with that clock state holds them all)."""
        if not self.runs:
            return False
        client, _clock, end, *_ = self.runs[index]
        return end <= known.get(client, 0)


def split_update(
    data: bytes,
    known_state: Mapping[int, int] | None = None,
    owned_clients: Container[int] = frozenset(),
    foreign_owned: Container[int] = frozenset(),
    limits: UpdateLimits = _DEFAULT_LIMITS,
    piece_bytes: int = PIECE_BYTES,
) -> tuple[UpdateSummary, Split]:
    """`validate_update` (same arguments, same errors), also returning where to cut the update into
    pieces of about `piece_bytes` struct bytes."""
    if piece_bytes <= 0:
        raise ValueError("piece_bytes must be positive")
    parser = _Parser(data, limits, cut=piece_bytes)
    summary = parse_update(parser, known_state, owned_clients, foreign_owned)
    return summary, Split(tuple(parser.pieces), parser.delete_set_at)


def pieces(data: bytes, split: Split) -> list[bytes]:
    """Every piece of `data`, in order (for tests and small updates; the room builds them one by one)."""
    return [split.piece(data, index) for index in range(len(split))]
