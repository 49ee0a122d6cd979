"""A `pycrdt.Doc` wrapper: applies updates, reports the integrated delta, contains native panics."""

from __future__ import annotations

from typing import Any

from pycrdt import Doc, TransactionEvent, merge_updates

from crdt.errors import ApplyFailed, DecodeError
from crdt.lib0 import Decoder, encode_var_uint

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

    __slots__ = ("_captured", "_subscription", "doc")

    def __init__(self, doc: Doc[Any] | None = None) -> None:
        self.doc: Doc[Any] = doc if doc is not None else Doc()
        self._captured: list[bytes] = []
        self._subscription = self.doc.observe(self._capture)

    def _capture(self, event: TransactionEvent) -> None:
        self._captured.append(event.update)

    def apply(self, update: bytes) -> bytes:
        """Integrate `update`; return what it changed as an update (b"" when nothing was new).

        Raises `ApplyFailed` when pycrdt fails; the document may then be partly changed
        and must be rebuilt by its owner from durable state.
        """
        captured = self._captured
        captured.clear()
        try:
            self.doc.apply_update(update)
        except BaseException as exc:
            if not is_native_failure(exc):
                raise
            captured.clear()
            raise ApplyFailed(f"pycrdt refused the update: {exc}") from None
        if not captured:
            return b""
        delta = captured[0] if len(captured) == 1 else _merge(captured)
        captured.clear()
        return b"" if delta == EMPTY_UPDATE else delta

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

    def close(self) -> None:
        self.doc.unobserve(self._subscription)


def _merge(updates: list[bytes]) -> bytes:
    return merge_updates(*updates)
