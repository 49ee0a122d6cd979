"""What a room needs from a connection, independent of the transport that carries it."""

from __future__ import annotations

from typing import Protocol

from crdt.sync import SyncSession


class Peer(Protocol):
    """One connection to one document, as seen by the room that owns the document."""

    id: int
    author: str
    session: SyncSession
    prefix: bytes  # put before every message on this peer's wire (Hocuspocus: the document name)
    expected_epoch: str | None  # the epoch the client's copy belongs to, if it told us

    @property
    def open(self) -> bool: ...

    def write_frame(self, frame: bytes) -> None:
        """Write one pre-encoded websocket frame; a peer over its outbox limit closes itself (1013)."""

    def flush(self) -> None:
        """Write every frame the session has queued."""

    def close(self, code: int, reason: str) -> None: ...

    def processed(self, nbytes: int) -> None:
        """The room handled `nbytes` of this peer's input (flow control)."""
