"""The Hocuspocus channel: one socket, many documents; each authenticated document is a room `Peer`."""

# Rules (what docs/PROTOCOL.md promises a Hocuspocus provider):
# - A document opens with the provider's Auth (token) message: `authorize` decides with the token
#   (or, when it is empty, the credentials of the websocket handshake). The answer is Authenticated
#   ("readonly" below EDITOR, else "read-write") and the document peer joins the room, or
#   PermissionDenied(reason), after which the document's frames are dropped until a new Auth.
# - Frames of a document that has not been authenticated yet are queued and replayed, in order,
#   after the Authenticated. Queues are capped per connection (bytes, messages, documents pending);
#   so is the number of documents one socket may address. Over a cap the socket closes with 1008.
# - Close (from the provider) leaves that document only. A room closing a document peer sends a
#   Close(reason) for that document only, except for retryable codes (1011, 1012, 1013) which close
#   the socket so that the provider reconnects and resyncs every document.
# - Stateless payloads are relayed to the document's other Hocuspocus peers on this server.
# - Providers 4.x (they send their version with the token) get a Ping every `hocuspocus_ping_interval`
#   seconds; older ones would fail to parse it. A Pong needs no answer.
# - Undecodable bytes close the socket (1002, 1009); unknown message types are ignored and logged.

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import Protocol

from crdt.errors import CoreError, UnsupportedMessage
from crdt.hocuspocus import (
    PING_FRAME,
    SCOPE_READ_ONLY,
    SCOPE_READ_WRITE,
    Authenticated,
    Close,
    DocumentMessage,
    Envelope,
    HocuspocusLimits,
    PermissionDenied,
    Sender,
    Token,
    decode_frame,
    encode_address,
    encode_body,
)
from server.auth import AuthError, Credentials, Identity, Role, authorize
from server.frames import binary_frame
from server.hocuspocus_peer import DocumentPeer, Relay
from server.hub import Admission, Hub
from server.names import InvalidName, normalize_name

log = logging.getLogger("cocreate.hocuspocus")

CLOSE_POLICY = 1008
MAX_SESSION_ID_CHARS = 64
BLOCKED_REASON = "the document is being renamed or deleted; retry"


class Wire(Protocol):
    """What the channel needs from its websocket (`server.transport.WebSocketConnection`)."""

    id: int

    @property
    def open(self) -> bool: ...

    def write(self, frame: bytes) -> None: ...

    def write_messages(self, payloads: list[bytes]) -> None: ...

    def close(self, code: int, reason: str) -> None: ...

    def received(self, nbytes: int) -> None: ...

    def processed(self, nbytes: int) -> None: ...


@dataclass(slots=True)
class _Pending:
    """A document whose Auth has not succeeded yet, with the frames that came meanwhile."""

    messages: list[tuple[DocumentMessage, int]] = field(default_factory=list)
    nbytes: int = 0
    authorizing: bool = False


class _Refused:
    """A document refused (or closed by the server) on this connection: its frames are dropped."""


_REFUSED = _Refused()


class HocuspocusEndpoint:
    """The channel factory for `Admission.endpoint == "hocuspocus"`; relays stateless messages."""

    def __init__(self, hub: Hub) -> None:
        self.hub = hub
        self.limits = HocuspocusLimits(max_payload_bytes=hub.settings.max_message_size)
        self.relay = Relay(hub.events)

    def __call__(self, connection: Wire, admission: Admission) -> HocuspocusChannel:
        return HocuspocusChannel(self, connection, admission)


class HocuspocusChannel:
    """One Hocuspocus socket: routes frames by address to document peers, or queues them."""

    def __init__(self, endpoint: HocuspocusEndpoint, connection: Wire, admission: Admission) -> None:
        self.endpoint = endpoint
        self.hub = endpoint.hub
        self.settings = endpoint.hub.settings
        self.connection = connection
        self.admission = admission
        self.documents: dict[str, DocumentPeer | _Pending | _Refused] = {}
        self.pending_bytes = 0
        self.pending_messages = 0
        self.provider_version: str | None = None
        self._ping: asyncio.TimerHandle | None = None
        self._closed = False

    # -- Channel -------------------------------------------------------------------------
    def receive(self, data: bytes) -> None:
        if self._closed:
            return
        try:
            frame = decode_frame(data, Sender.CLIENT, self.endpoint.limits)
        except UnsupportedMessage as exc:
            log.info("conn=%d: ignored: %s", self.connection.id, exc.detail)
            return
        except CoreError as exc:
            self.hub.metrics.rejected(exc)
            self.fail(exc.close_code, exc.detail)
            return
        if isinstance(frame, Envelope):  # else a Pong: the provider is alive, nothing to answer
            self._route(frame.address, frame.message, len(data))

    def closed(self) -> None:
        self._closed = True
        if self._ping is not None:
            self._ping.cancel()
            self._ping = None
        for state in list(self.documents.values()):
            if isinstance(state, DocumentPeer):
                state.detach(refuse=False)
        self.documents.clear()
        self.pending_bytes = self.pending_messages = 0

    def describe(self) -> str:
        opened = sum(isinstance(state, DocumentPeer) for state in self.documents.values())
        version = f" provider={self.provider_version}" if self.provider_version else ""
        return f"hocuspocus docs={opened} addressed={len(self.documents)}{version}"

    # -- routing -------------------------------------------------------------------------
    def _route(self, address: str, message: DocumentMessage, size: int) -> None:
        state = self.documents.get(address)
        if isinstance(message, Close):
            self.forget(address)
        elif isinstance(message, Token):
            self._start_auth(address, message, state)
        elif isinstance(state, DocumentPeer):
            state.receive(message, size)
        elif isinstance(state, _Pending):
            self._queue(state, message, size)
        elif state is None and self._may_open(address):
            pending = self.documents[address] = _Pending()
            self._queue(pending, message, size)
        # else refused: its frames go nowhere until a new Auth

    def forget(self, address: str) -> None:
        """The provider closed `address` (or the server refused it): drop all state of it."""
        state = self.documents.pop(address, None)
        if isinstance(state, DocumentPeer):
            state.detach(refuse=False)
        elif isinstance(state, _Pending):
            self._release(state)

    def refused(self, address: str) -> None:
        """A document the server closed: drop its frames until the provider authenticates again."""
        self.documents[address] = _REFUSED

    def _may_open(self, address: str) -> bool:
        """Whether one more pending document fits the caps (closes the socket when not)."""
        if address not in self.documents and len(self.documents) >= self.settings.hocuspocus_max_documents:
            self.hub.limits.hit("hocuspocus_documents", quiet=True)  # `fail` logs the close
            self.fail(CLOSE_POLICY, f"more than {self.settings.hocuspocus_max_documents} documents")
            return False
        pending = sum(isinstance(state, _Pending) for state in self.documents.values())
        if pending >= self.settings.hocuspocus_pending_documents:
            cap = self.settings.hocuspocus_pending_documents
            self.hub.limits.hit("hocuspocus_pending_documents", quiet=True)
            self.fail(CLOSE_POLICY, f"more than {cap} documents awaiting authentication")
            return False
        return True

    def _queue(self, pending: _Pending, message: DocumentMessage, size: int) -> None:
        if self.pending_bytes + size > self.settings.hocuspocus_pending_bytes:
            cap = self.settings.hocuspocus_pending_bytes
            self.hub.limits.hit("hocuspocus_pending_bytes", quiet=True)
            self.fail(CLOSE_POLICY, f"over {cap} bytes sent for documents awaiting authentication")
        elif self.pending_messages >= self.settings.hocuspocus_pending_messages:
            cap = self.settings.hocuspocus_pending_messages
            self.hub.limits.hit("hocuspocus_pending_messages", quiet=True)
            self.fail(CLOSE_POLICY, f"over {cap} messages sent for documents awaiting authentication")
        else:
            pending.messages.append((message, size))
            pending.nbytes += size
            self.pending_bytes += size
            self.pending_messages += 1

    def _release(self, pending: _Pending) -> None:
        self.pending_bytes -= pending.nbytes
        self.pending_messages -= len(pending.messages)
        pending.nbytes = 0

    # -- authentication --------------------------------------------------------------------
    def _start_auth(
        self, address: str, token: Token, state: DocumentPeer | _Pending | _Refused | None
    ) -> None:
        if isinstance(state, DocumentPeer) or (isinstance(state, _Pending) and state.authorizing):
            return  # already open, or being checked: the token is not checked twice
        if not isinstance(state, _Pending):
            if not self._may_open(address):
                return
            state = self.documents[address] = _Pending()
        state.authorizing = True
        if token.version and self.provider_version is None:
            self._note_version(token.version)
        self.hub.track(asyncio.ensure_future(self._authorize(address, state, token.token)))

    async def _authorize(self, address: str, pending: _Pending, token: str) -> None:
        name, reason = _document_name(address)
        identity: Identity | None = None
        role = Role.NONE
        generation = 0
        if name is not None and self.hub.registry.is_blocked(name):
            reason = BLOCKED_REASON
        elif name is not None:
            generation = self.hub.guard.generation(name)
            credentials = Credentials(token) if token else (self.admission.credentials or Credentials(None))
            try:
                identity, role = await authorize(
                    self.hub.authenticator, credentials, name, Role.VIEWER, self.hub.clock()
                )
            except AuthError as exc:
                reason = exc.detail
            except Exception:
                log.exception("conn=%d: access check of %r failed", self.connection.id, name)
                reason = "the server failed to check access; retry"
        if self._closed or self.documents.get(address) is not pending:
            return  # the socket or the document was closed meanwhile
        self._release(pending)
        if name is None or identity is None:
            log.info("conn=%d: document %r refused: %s", self.connection.id, address[:200], reason)
            self.refused(address)
            self.connection.write_messages([encode_address(address) + encode_body(PermissionDenied(reason))])
            return
        try:
            room = self.hub.registry.enter(name)
        except RuntimeError:
            self.fail(1012, "server restarting")
            return
        peer = DocumentPeer(self, address, name, identity, role, room)
        self.documents[address] = peer
        scope = SCOPE_READ_ONLY if role < Role.EDITOR else SCOPE_READ_WRITE
        log.info("conn=%d: doc=%r user=%s %s", self.connection.id, name, identity.user_id, scope)
        peer.session.send_body(Authenticated(scope))
        peer.flush()
        room.join(peer)
        self.endpoint.relay.add(peer)
        self.hub.guard.track(peer, generation)
        for message, size in pending.messages:  # what came before the Authenticated, in order
            if self.documents.get(address) is peer:
                self._route(address, message, size)
        pending.messages.clear()

    # -- connection ------------------------------------------------------------------------
    def fail(self, code: int, reason: str) -> None:
        log.info("conn=%d: closing: %s", self.connection.id, reason)
        self.connection.close(code, reason[:120])

    def _note_version(self, version: str) -> None:
        self.provider_version = version
        major = version.split(".", 1)[0]
        if major.isdigit() and int(major) >= 4 and self.settings.hocuspocus_ping_interval > 0:
            self._schedule_ping()

    def _schedule_ping(self) -> None:
        loop = asyncio.get_running_loop()
        self._ping = loop.call_later(self.settings.hocuspocus_ping_interval, self._send_ping)

    def _send_ping(self) -> None:
        self._ping = None
        if not self._closed and self.connection.open:
            self.connection.write(binary_frame(PING_FRAME))
            self._schedule_ping()


def _document_name(address: str) -> tuple[str | None, str]:
    """The normalised document name of an address (`name` or `name\\0sessionId`), or why not."""
    document, separator, session_id = address.partition("\0")
    if separator and not (0 < len(session_id) <= MAX_SESSION_ID_CHARS and session_id.isprintable()):
        return None, f"invalid session id (1 to {MAX_SESSION_ID_CHARS} printable characters)"
    try:
        return normalize_name(document), ""
    except InvalidName as exc:
        return None, f"invalid document name: {exc}"
