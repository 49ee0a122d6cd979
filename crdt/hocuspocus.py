"""The Hocuspocus wire protocol (provider 2-4): a capped frame codec and the per-document server session."""

# Grammar (see docs/PROTOCOL.md, "Hocuspocus"): a frame is `varString(address) varUint(type) body`,
# where the address is the document name (a v4 provider with `sessionAwareness` appends
# `"\0" + sessionId`). Bodies of types 0, 1 and 3 are the y-websocket ones (`crdt.messages`), so a
# broadcast is `prefix + encode_message(message)` for both protocols. Ping and Pong are one byte
# (9, 10) with no address; only v4 providers understand them.
#
# The session mirrors `crdt.sync.SyncSession` (server role) so the room drives both alike, except:
# - the server's SyncStep1 answers the client's SyncStep1 (followed by the SyncStep2), never on join
#   (`opens_sync = False`);
# - every update-carrying message (SyncStep2, Update) gets exactly one `SyncStatus`, in order, once
#   final: 1 after `acknowledge` (the commit), 0 after `refuse`. The provider's unsynced-changes
#   counter only goes down on a 1;
# - a read-only session refuses an Update itself but leaves a SyncStep2 to its owner
#   (`WriteRefused.update`): acknowledged when the server already holds everything in it (the
#   handshake of a viewer), refused otherwise, like the reference server.
# Nothing here touches a socket, a clock or a document.

from __future__ import annotations

import json
from dataclasses import dataclass
from enum import Enum

from crdt.errors import DecodeError, MessageTooLarge, UnsupportedMessage
from crdt.lib0 import Decoder, encode_var_string, encode_var_uint
from crdt.messages import (
    DEFAULT_MAX_MESSAGE_SIZE,
    AuthDenied,
    AwarenessMessage,
    DocumentEvent,
    Message,
    QueryAwareness,
    SyncStep1,
    SyncStep2,
    SyncUpdate,
    decode_message,
    encode_message,
)
from crdt.sync import (
    Event,
    from_client,
)

MESSAGE_SYNC = 0
MESSAGE_AWARENESS = 1
MESSAGE_AUTH = 2
MESSAGE_QUERY_AWARENESS = 3
MESSAGE_STATELESS = 5
MESSAGE_CLOSE = 7
MESSAGE_SYNC_STATUS = 8
MESSAGE_PING = 9
MESSAGE_PONG = 10
# 4 (SyncReply) and 6 (BroadcastStateless) exist only between Hocuspocus servers: refused here.

AUTH_TOKEN = 0  # client: here is my token; server (no body): send your token again
AUTH_PERMISSION_DENIED = 1
AUTH_AUTHENTICATED = 2

SCOPE_READ_ONLY = "readonly"
SCOPE_READ_WRITE = "read-write"
PING_FRAME = bytes((MESSAGE_PING,))
PONG_FRAME = bytes((MESSAGE_PONG,))


@dataclass(frozen=True, slots=True)
class HocuspocusLimits:
    """Caps on every length prefix of a frame (bytes); a larger one is `MessageTooLarge` (1009)."""

    max_address_bytes: int = 1024
    max_token_bytes: int = 16 * 1024
    max_version_bytes: int = 64
    max_reason_bytes: int = 4096
    max_stateless_bytes: int = 256 * 1024
    max_payload_bytes: int = DEFAULT_MAX_MESSAGE_SIZE  # update, state vector, awareness


@dataclass(frozen=True, slots=True)
class Token:
    """Client: authenticate me for this document. `version` is sent by providers 4.x only."""

    token: str
    version: str | None = None


@dataclass(frozen=True, slots=True)
class TokenRequest:
    """Server: send your token again (the provider answers with a `Token`)."""


@dataclass(frozen=True, slots=True)
class Authenticated:
    """Server: the document is open for this connection, with scope "readonly" or "read-write"."""

    scope: str


@dataclass(frozen=True, slots=True)
class PermissionDenied:
    """Server: the document stays closed for this connection, with the reason."""

    reason: str


@dataclass(frozen=True, slots=True)
class Stateless:
    """An application payload (a string) that is not part of the document."""

    payload: str


@dataclass(frozen=True, slots=True)
class Close:
    """Client (no reason): close this document only. Server (a reason): the document was closed."""

    reason: str | None = None


@dataclass(frozen=True, slots=True)
class SyncStatus:
    """Server: the oldest unanswered update-carrying message was saved (True) or refused (False)."""

    applied: bool


@dataclass(frozen=True, slots=True)
class Ping:
    """Server: are you there? (one byte, no address; providers 4.x answer `Pong`)."""


@dataclass(frozen=True, slots=True)
class Pong:
    """Client: the answer to a `Ping`."""


DocumentMessage = (
    SyncStep1
    | SyncStep2
    | SyncUpdate
    | AwarenessMessage
    | QueryAwareness
    | Token
    | TokenRequest
    | Authenticated
    | PermissionDenied
    | Stateless
    | Close
    | SyncStatus
)


@dataclass(frozen=True, slots=True)
class Envelope:
    """One message for the document (or provider session) named by `address`."""

    address: str
    message: DocumentMessage


Frame = Envelope | Ping | Pong


class Sender(Enum):
    CLIENT = "client"
    SERVER = "server"


_FROM_CLIENT_ONLY = (Token, Pong)
_FROM_SERVER_ONLY = (TokenRequest, Authenticated, PermissionDenied, SyncStatus, Ping)
_SYNC_BODIES = (MESSAGE_SYNC, MESSAGE_AWARENESS, MESSAGE_QUERY_AWARENESS)


def decode_frame(data: bytes, sender: Sender, limits: HocuspocusLimits = HocuspocusLimits()) -> Frame:
    """Decode one frame sent by `sender`. Raises `UnsupportedMessage` for a type this direction does
    not carry (the address was valid), another `DecodeError` for malformed or oversized bytes."""
    if len(data) == 1 and data[0] in (MESSAGE_PING, MESSAGE_PONG):
        ping = data[0] == MESSAGE_PING
        if ping != (sender is Sender.SERVER):
            raise UnsupportedMessage(f"{'Ping' if ping else 'Pong'} is not sent by the {sender.value}")
        return Ping() if ping else Pong()
    decoder = Decoder(data)
    try:
        address = decoder.read_var_string(limits.max_address_bytes)
    except MessageTooLarge as exc:
        raise MessageTooLarge(f"document name too long: {exc.detail}") from None
    start = decoder.pos
    kind = decoder.read_var_uint()
    message: DocumentMessage
    if kind in _SYNC_BODIES:
        decoded = decode_message(data[start:], limits.max_payload_bytes)
        assert isinstance(decoded, SyncStep1 | SyncStep2 | SyncUpdate | AwarenessMessage | QueryAwareness)
        return Envelope(address, decoded)
    if kind == MESSAGE_AUTH:
        message = _decode_auth(decoder, sender, limits)
    elif kind == MESSAGE_STATELESS:
        message = Stateless(decoder.read_var_string(limits.max_stateless_bytes))
    elif kind == MESSAGE_CLOSE:
        reason = None if decoder.at_end() else decoder.read_var_string(limits.max_reason_bytes)
        if reason is None and sender is Sender.SERVER:
            raise DecodeError("a server Close carries a reason")
        message = Close(reason)
    elif kind == MESSAGE_SYNC_STATUS and sender is Sender.SERVER:
        message = SyncStatus(decoder.read_var_uint() == 1)
    else:
        raise UnsupportedMessage(f"Hocuspocus message type {kind} is not sent by the {sender.value}")
    if not decoder.at_end():
        raise DecodeError(f"{decoder.remaining} trailing bytes after the message")
    return Envelope(address, message)


def _decode_auth(decoder: Decoder, sender: Sender, limits: HocuspocusLimits) -> DocumentMessage:
    sub = decoder.read_var_uint()
    if sub == AUTH_TOKEN and sender is Sender.CLIENT:
        token = decoder.read_var_string(limits.max_token_bytes)
        version = None if decoder.at_end() else decoder.read_var_string(limits.max_version_bytes)
        return Token(token, version)
    if sender is Sender.SERVER:
        if sub == AUTH_TOKEN:
            return TokenRequest()
        if sub == AUTH_PERMISSION_DENIED:
            return PermissionDenied(decoder.read_var_string(limits.max_reason_bytes))
        if sub == AUTH_AUTHENTICATED:
            return Authenticated(decoder.read_var_string(limits.max_reason_bytes))
    raise UnsupportedMessage(f"auth message sub-type {sub} is not sent by the {sender.value}")


def encode_address(address: str) -> bytes:
    """The prefix of every frame of one document: `varString(address)`."""
    return encode_var_string(address)


def encode_body(message: DocumentMessage) -> bytes:
    """Everything after the address."""
    match message:
        case SyncStep1() | SyncStep2() | SyncUpdate() | AwarenessMessage() | QueryAwareness():
            return encode_message(message)
        case Token(token, version):
            body = bytes((MESSAGE_AUTH, AUTH_TOKEN)) + encode_var_string(token)
            return body if version is None else body + encode_var_string(version)
        case TokenRequest():
            return bytes((MESSAGE_AUTH, AUTH_TOKEN))
        case Authenticated(scope):
            return bytes((MESSAGE_AUTH, AUTH_AUTHENTICATED)) + encode_var_string(scope)
        case PermissionDenied(reason):
            return bytes((MESSAGE_AUTH, AUTH_PERMISSION_DENIED)) + encode_var_string(_clip(reason))
        case Stateless(payload):
            return bytes((MESSAGE_STATELESS,)) + encode_var_string(payload)
        case Close(reason):
            return bytes((MESSAGE_CLOSE,)) + (b"" if reason is None else encode_var_string(_clip(reason)))
        case SyncStatus(applied):
            return bytes((MESSAGE_SYNC_STATUS,)) + encode_var_uint(1 if applied else 0)
    raise TypeError(f"not a Hocuspocus message: {message!r}")


def encode_frame(frame: Frame) -> bytes:
    """The bytes of one websocket message."""
    match frame:
        case Ping():
            return PING_FRAME
        case Pong():
            return PONG_FRAME
        case Envelope(address, message):
            return encode_address(address) + encode_body(message)
    raise TypeError(f"not a Hocuspocus frame: {frame!r}")


def allowed_from(sender: Sender, message: DocumentMessage | Ping | Pong) -> bool:
    """Whether `sender` may send `message` (what `decode_frame` accepts from it)."""
    if isinstance(message, Close):
        return sender is Sender.CLIENT or message.reason is not None
    forbidden = _FROM_SERVER_ONLY if sender is Sender.CLIENT else _FROM_CLIENT_ONLY
    return not isinstance(message, forbidden)


def event_payload(kind: str, data: str) -> str:
    """The Stateless payload carrying a cocreate document event (a comment, a session change):
    `{"cocreate":"event","kind":kind,"data":data}`, where `data` is JSON text, embedded as is."""
    return '{"cocreate":"event","kind":' + json.dumps(kind) + ',"data":' + data + "}"


def claims_cocreate(payload: str) -> bool:
    """Whether a client's Stateless payload is a JSON object with a "cocreate" key: it would pass for
    a server event at the other providers, so it is not relayed."""
    if '"cocreate"' not in payload:
        return False
    try:
        decoded = json.loads(payload)
    except ValueError:
        return False
    return isinstance(decoded, dict) and "cocreate" in decoded


def _clip(reason: str, limit: int = 4096) -> str:
    """A reason that fits the cap in UTF-8 (cut on a character boundary)."""
    return reason.encode("utf-8")[:limit].decode("utf-8", "ignore")


class HocuspocusSession:
    """The sync protocol of one document on one Hocuspocus connection, server side."""

    acks = False  # cocreate's extension messages (ack, epoch, events) do not exist in this protocol
    opens_sync = False  # the server's SyncStep1 answers the client's, just before the SyncStep2

    def __init__(self, address: str, *, read_only: bool = False) -> None:
        self.address = address
        self.prefix = encode_address(address)
        self.read_only = read_only
        self.updates_received = 0
        self.updates_final = 0
        self._refused: set[int] = set()
        self._outgoing: list[bytes] = []

    # -- input -------------------------------------------------------------------------
    def receive_message(self, message: DocumentMessage) -> Event | None:
        """Sync, awareness and awareness queries; the channel handles auth, stateless and close."""
        event = from_client(self, message)
        if event is None:
            raise UnsupportedMessage(f"{type(message).__name__} is not a document message from a client")
        return event

    # -- output ------------------------------------------------------------------------
    def send(self, message: Message) -> None:
        """Queue a room message. A document event becomes a Stateless message (`event_payload`); the
        other cocreate extensions (ack, refused, epoch) have no Hocuspocus form and are dropped."""
        if isinstance(message, SyncStep1 | SyncStep2 | SyncUpdate | AwarenessMessage | QueryAwareness):
            self._outgoing.append(self.prefix + encode_message(message))
        elif isinstance(message, AuthDenied):
            self.send_body(PermissionDenied(message.reason))
        elif isinstance(message, DocumentEvent):
            self.send_body(Stateless(event_payload(message.kind, message.data)))

    def send_body(self, message: DocumentMessage) -> None:
        self._outgoing.append(self.prefix + encode_body(message))

    def send_step1(self, state_vector: bytes) -> None:
        self.send(SyncStep1(state_vector))

    def send_step2(self, update: bytes) -> None:
        self.send(SyncStep2(update))

    def send_update(self, update: bytes) -> None:
        self.send(SyncUpdate(update))

    def acknowledge(self, index: int) -> None:
        """Messages up to `index` are final (committed, or refused earlier): one SyncStatus each."""
        while self.updates_final < min(index, self.updates_received):
            self.updates_final += 1
            refused = self.updates_final in self._refused
            self._refused.discard(self.updates_final)
            self.send_body(SyncStatus(not refused))
        self._advance_over_refused()

    def refuse(self, index: int, reason: str) -> None:
        """Message `index` was not applied: SyncStatus(0), once every message before it is final."""
        if index > self.updates_final:
            self._refused.add(index)
            self._advance_over_refused()

    def _advance_over_refused(self) -> None:
        while self.updates_final + 1 in self._refused:
            self.updates_final += 1
            self._refused.discard(self.updates_final)
            self.send_body(SyncStatus(False))

    def data_to_send(self) -> list[bytes]:
        """Frames queued since the last call (each already prefixed with the address)."""
        out = self._outgoing
        self._outgoing = []
        return out
