"""What a room needs from a connection, independent of the transport that carries it."""

from __future__ import annotations

import itertools
from typing import Protocol

from crdt.messages import Message

peer_ids = itertools.count(1)
"""Every peer of every channel draws its id here: rooms key awareness ownership by peer id."""


class Session(Protocol):
    """A peer's sync state machine as the room drives it (`crdt.sync.SyncSession` for y-websocket,
    `crdt.hocuspocus.HocuspocusSession` for Hocuspocus)."""

    @property
    def acks(self) -> bool:
        """Whether the peer understands cocreate's extension messages (ack, epoch, events)."""

    @property
    def opens_sync(self) -> bool:
        """True: the server sends its SyncStep1 on join. False: in answer to the peer's SyncStep1,
        just before the SyncStep2 (Hocuspocus)."""

    @property
    def read_only(self) -> bool: ...

    def send(self, message: Message) -> None: ...

    def send_step2(self, update: bytes) -> None: ...

    def acknowledge(self, index: int) -> None:
        """Update-carrying messages up to `index` are durably committed."""

    def refuse(self, index: int, reason: str) -> None: ...

    def data_to_send(self) -> list[bytes]: ...


class Peer(Protocol):
    """One connection to one document, as seen by the room that owns the document."""

    id: int
    author: str
    prefix: bytes  # put before every message on this peer's wire (Hocuspocus: the document name)
    expected_epoch: str | None  # the epoch the client's copy belongs to, if it told us

    @property
    def session(self) -> Session: ...

    @property
    def open(self) -> bool: ...

    def write_frame(self, frame: bytes) -> None:
        """Write one pre-encoded websocket frame; a peer over its outbox limit closes itself (1013)."""

    def flush(self) -> None:
        """Write every frame the session has queued."""

    def close(self, code: int, reason: str) -> None: ...

    def processed(self, nbytes: int) -> None:
        """The room handled `nbytes` of this peer's input (flow control)."""
