"""A `pycrdt.Doc` wrapper: applies updates, reports the integrated delta, contains native panics."""

from __future__ import annotations

from bisect import bisect_right
from typing import Any

from pycrdt import Doc, TransactionEvent, merge_updates

from crdt.errors import ApplyFailed, DecodeError, InvalidUpdate
from crdt.lib0 import Decoder, encode_var_uint
from crdt.validation import UpdateLimits, UpdateSummary, validate_update

EMPTY_UPDATE = b"\x00\x00"
"""An update with no structs and an empty delete set."""


def is_native_failure(exc: BaseException) -> bool:
    """pycrdt raises ordinary exceptions and, for Rust panics, `PanicException` (a BaseException)."""
    return isinstance(exc, Exception) or type(exc).__name__ == "PanicException"


def decode_state_vector(data: bytes) -> dict[int, int]:
    """Decode a Yjs state vector (client id -> next expected clock)."""
    decoder = Decoder(data)
    count = decoder.read_var_uint()
    if count > decoder.remaining // 2:
        raise DecodeError("state vector entry count exceeds its length")
    state: dict[int, int] = {}
    for _ in range(count):
        client = decoder.read_var_uint()
        state[client] = decoder.read_var_uint()
    return state


def encode_state_vector(state: dict[int, int]) -> bytes:
    parts = [encode_var_uint(len(state))]
    for client, clock in state.items():
        parts.append(encode_var_uint(client))
        parts.append(encode_var_uint(clock))
    return b"".join(parts)


class Document:
    """One replica of a Yjs document. Updates must have passed the validator before `apply`."""

    __slots__ = ("_captured", "doc")

    def __init__(self, doc: Doc[Any] | None = None) -> None:
        self.doc: Doc[Any] = doc if doc is not None else Doc()
        self._captured: list[bytes] = []

    def _capture(self, event: TransactionEvent) -> None:
        self._captured.append(event.update)

    def apply(self, update: bytes) -> bytes:
        """Integrate `update`; return what it changed as an update (b"" when nothing was new).

        Observing the transaction costs about as much as the apply itself, so only use this when
        the update may overlap what the document holds (a reconnecting client's step 2); for fresh
        edits use `apply_fresh`. Raises `ApplyFailed` when pycrdt fails; the document may then be
        partly changed and must be rebuilt by its owner from durable state.
        """
        captured = self._captured
        captured.clear()
        subscription = self.doc.observe(self._capture)
        try:
            self._integrate(update)
        finally:
            self.doc.unobserve(subscription)
        if not captured:
            return b""
        delta = captured[0] if len(captured) == 1 else _merge(captured)
        captured.clear()
        return b"" if delta == EMPTY_UPDATE else delta

    def apply_fresh(self, update: bytes) -> None:
        """Integrate an update whose structs all start where the document's clocks end (nothing
        in it is known yet), without observing: the update itself is what changed."""
        self._integrate(update)

    def integrate(self, update: bytes, summary: UpdateSummary, known: dict[int, int]) -> tuple[bytes, bool]:
        """Apply a validated `update` the cheapest correct way: `apply_fresh` when every run starts at
        the clock `known` (the document's clock state) ends, else the observing `apply`.

        Returns what changed and whether `known` is still exact (advanced in place on the fresh path;
        stale after an overlapping apply, when the owner must re-read `clock_state()`).
        """
        runs = summary.clients
        if len(runs) == 1:  # a live edit: one writer (a deletion alone has no runs)
            ((client, (first, end)),) = runs.items()
            fresh = first == known.get(client, 0)
        else:
            fresh = all(first == known.get(client, 0) for client, (first, _) in runs.items())
        if fresh:
            self._integrate(update)
            for client, (_, end) in runs.items():
                known[client] = end
            return (update if (summary.struct_count or summary.deleted) else b""), True
        return self.apply(update), False

    def _integrate(self, update: bytes) -> None:
        try:
            self.doc.apply_update(update)
        except BaseException as exc:
            if not is_native_failure(exc):
                raise
            self._captured.clear()
            raise ApplyFailed(f"pycrdt refused the update: {exc}") from None

    def state_vector(self) -> bytes:
        return self.doc.get_state()

    def clock_state(self) -> dict[int, int]:
        return decode_state_vector(self.doc.get_state())

    def diff(self, state_vector: bytes | None = None) -> bytes:
        """The update a peer with `state_vector` lacks (everything when None)."""
        try:
            if state_vector is None:
                return self.doc.get_update()
            return self.doc.get_update(state_vector)
        except BaseException as exc:
            if not is_native_failure(exc):
                raise
            raise ApplyFailed(f"could not encode a diff: {exc}") from None

    def encode_state(self) -> bytes:
        return self.diff(None)

    def holds(self, update: bytes, limits: UpdateLimits) -> bool:
        """Whether applying `update` (untrusted; validated here) would change nothing: every struct
        is known and every deletion already made (Yjs `snapshotContainsUpdate`)."""
        try:
            summary = validate_update(update, limits=limits)
            known = self.clock_state()
            if any(end > known.get(client, 0) for client, (_, end) in summary.clients.items()):
                return False
            if not summary.deleted:
                return True
            done = validate_update(self.diff(self.state_vector()), limits=limits).deleted  # delete set
        except (InvalidUpdate, ApplyFailed):
            return False
        return all(_covered(ranges, done.get(client, [])) for client, ranges in summary.deleted.items())

    def close(self) -> None:
        """Nothing to release any more (kept so owners can end a document's life explicitly)."""


def _merge(updates: list[bytes]) -> bytes:
    return merge_updates(*updates)


def _covered(ranges: list[tuple[int, int]], within: list[tuple[int, int]]) -> bool:
    """Whether every (clock, length) range lies inside the union of the `within` ranges."""
    merged: list[list[int]] = []
    for clock, length in sorted(within):
        if merged and clock <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], clock + length)
        else:
            merged.append([clock, clock + length])
    starts = [start for start, _ in merged]
    for clock, length in ranges:
        i = bisect_right(starts, clock) - 1
        if i < 0 or clock + length > merged[i][1]:
            return False
    return True
