"""Per-connection y-websocket sync state machine: frames in, typed events out, frames to send queued.

Rules (server role):
- The server opens with SyncStep1 (its state vector) and, if any, the awareness states.
- A peer's SyncStep1 is surfaced as `SyncRequested`; the owner answers with `send_step2`.
- Every SyncStep2 and Update is an "update-carrying message", numbered from 1 per connection.
  A read-only session refuses updates itself (`WriteRefused`, never surfaced as an update) and
  leaves its SyncStep2 to the owner (`WriteRefused.update`: acknowledged when nothing is new);
  otherwise they surface as `UpdateReceived` and the owner later calls `acknowledge(index)`
  (after the durable commit) or `refuse(index, reason)`.
- Acks and refusals are only put on the wire for peers that opted in (`acks=True`), since
  stock y-websocket clients log unknown message types.
- Client role: the peer's Ack/Refused/Epoch/AuthDenied surface as events; the first SyncStep2
  marks the session synced.
Nothing here touches a socket, a clock or a document.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Protocol

from crdt.errors import UnsupportedMessage
from crdt.messages import (
    DEFAULT_MAX_MESSAGE_SIZE,
    Ack,
    AuthDenied,
    AwarenessMessage,
    DocumentEvent,
    Epoch,
    Message,
    QueryAwareness,
    Refused,
    SyncStep1,
    SyncStep2,
    SyncUpdate,
    decode_message,
    encode_message,
)


class Role(Enum):
    SERVER = "server"
    CLIENT = "client"


@dataclass(frozen=True, slots=True)
class SyncRequested:
    state_vector: bytes


@dataclass(frozen=True, slots=True)
class UpdateReceived:
    update: bytes
    index: int
    is_step2: bool


@dataclass(frozen=True, slots=True)
class WriteRefused:
    index: int
    reason: str
    # Set when the session left the answer to its owner (a read-only SyncStep2):
    # `acknowledge(index)` if the server already holds everything in it, else `refuse(index, reason)`.
    update: bytes | None = None


@dataclass(frozen=True, slots=True)
class AwarenessReceived:
    payload: bytes


@dataclass(frozen=True, slots=True)
class AwarenessQueried:
    pass


@dataclass(frozen=True, slots=True)
class Acknowledged:
    count: int


@dataclass(frozen=True, slots=True)
class UpdateRefused:
    index: int
    reason: str


@dataclass(frozen=True, slots=True)
class EpochAnnounced:
    epoch: str


@dataclass(frozen=True, slots=True)
class EventReceived:
    kind: str
    data: str  # JSON text


@dataclass(frozen=True, slots=True)
class AccessDenied:
    reason: str


Event = (
    SyncRequested
    | UpdateReceived
    | WriteRefused
    | AwarenessReceived
    | AwarenessQueried
    | Acknowledged
    | UpdateRefused
    | EpochAnnounced
    | EventReceived
    | AccessDenied
)

READ_ONLY_REASON = "this connection may not edit the document"


class ServerSide(Protocol):
    """What `from_client` needs of a server session (y-websocket or Hocuspocus)."""

    read_only: bool
    updates_received: int

    def refuse(self, index: int, reason: str) -> None: ...


def from_client(session: ServerSide, message: object) -> Event | None:
    """The event a server session surfaces for a client's sync or awareness message (None: not one
    of those). Update-carrying messages are numbered from 1; on a read-only session an update is
    refused at once, while a SyncStep2 is left to the owner, which acknowledges it when it holds
    nothing new (a handshake)."""
    match message:
        case SyncUpdate(update) | SyncStep2(update):
            session.updates_received += 1
            index = session.updates_received
            if not session.read_only:
                return UpdateReceived(update, index, isinstance(message, SyncStep2))
            if isinstance(message, SyncStep2):
                return WriteRefused(index, READ_ONLY_REASON, update)
            session.refuse(index, READ_ONLY_REASON)
            return WriteRefused(index, READ_ONLY_REASON)
        case SyncStep1(state_vector):
            return SyncRequested(state_vector)
        case AwarenessMessage(payload):
            return AwarenessReceived(payload)
        case QueryAwareness():
            return AwarenessQueried()
    return None


class SyncSession:
    """The sync protocol of one connection, for either end."""

    opens_sync = True  # server role: send SyncStep1 on join (Hocuspocus answers the client's instead)

    def __init__(
        self,
        role: Role,
        *,
        read_only: bool = False,
        acks: bool = False,
        max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE,
    ) -> None:
        self.role = role
        self.read_only = read_only
        self.acks = acks
        self.max_message_size = max_message_size
        self.synced = False
        self.updates_received = 0
        self.updates_sent = 0
        self.updates_final = 0
        self._refused: set[int] = set()
        self._outgoing: list[bytes] = []

    # -- input -------------------------------------------------------------------------
    def receive_data(self, frame: bytes) -> Event | None:
        """Decode one frame. Raises a `DecodeError` subclass on malformed input."""
        message = decode_message(frame, self.max_message_size)
        return self.receive_message(message)

    def receive_message(self, message: Message) -> Event | None:
        if self.role is Role.SERVER:
            return self._server_receive(message)
        return self._client_receive(message)

    def _server_receive(self, message: Message) -> Event | None:
        if type(message) is SyncUpdate and not self.read_only:  # a live edit: skip the matching
            self.updates_received += 1
            return UpdateReceived(message.update, self.updates_received, False)
        event = from_client(self, message)
        if event is None:
            raise UnsupportedMessage(f"{type(message).__name__} is not accepted from a client")
        return event

    def _client_receive(self, message: Message) -> Event | None:
        match message:
            case SyncUpdate(update):
                return UpdateReceived(update, 0, False)
            case SyncStep2(update):
                self.synced = True
                return UpdateReceived(update, 0, True)
            case SyncStep1(state_vector):
                return SyncRequested(state_vector)
            case AwarenessMessage(payload):
                return AwarenessReceived(payload)
            case QueryAwareness():
                return AwarenessQueried()
            case Ack(count):
                self.updates_final = max(self.updates_final, count)
                return Acknowledged(count)
            case Refused(index, reason):
                return UpdateRefused(index, reason)
            case Epoch(epoch):
                return EpochAnnounced(epoch)
            case DocumentEvent(kind, data):
                return EventReceived(kind, data)
            case AuthDenied(reason):
                return AccessDenied(reason)
        raise UnsupportedMessage(f"{type(message).__name__} is not accepted from a server")

    # -- output ------------------------------------------------------------------------
    def send(self, message: Message) -> None:
        if self.role is Role.CLIENT and isinstance(message, SyncUpdate | SyncStep2):
            self.updates_sent += 1
        self._outgoing.append(encode_message(message))

    def send_step1(self, state_vector: bytes) -> None:
        self.send(SyncStep1(state_vector))

    def send_step2(self, update: bytes) -> None:
        self.send(SyncStep2(update))

    def send_update(self, update: bytes) -> None:
        self.send(SyncUpdate(update))

    def acknowledge(self, index: int) -> None:
        """Server: update-carrying messages up to `index` are durably committed."""
        if index > self.updates_final:
            self.updates_final = index
            self._advance_over_refused()
            if self.acks:
                self.send(Ack(self.updates_final))

    def refuse(self, index: int, reason: str) -> None:
        """Server: message `index` was not applied; it becomes final once all before it are."""
        if self.acks:
            self.send(Refused(index, reason))
        self._refused.add(index)
        if index == self.updates_final + 1:
            self._advance_over_refused()
            if self.acks:
                self.send(Ack(self.updates_final))

    def _advance_over_refused(self) -> None:
        refused = self._refused
        while self.updates_final + 1 in refused:
            self.updates_final += 1
            refused.discard(self.updates_final)
        refused.difference_update([i for i in refused if i <= self.updates_final])

    def data_to_send(self) -> list[bytes]:
        """Frames queued since the last call, one message each."""
        out = self._outgoing
        self._outgoing = []
        return out
