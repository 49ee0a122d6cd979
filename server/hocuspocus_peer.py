"""One authenticated document of a Hocuspocus socket, as the room (`Peer`) and the guard see it."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

from crdt.errors import CoreError
from crdt.hocuspocus import (
    SCOPE_READ_ONLY,
    SCOPE_READ_WRITE,
    Authenticated,
    Close,
    DocumentMessage,
    HocuspocusSession,
    PermissionDenied,
    Stateless,
    Token,
    claims_cocreate,
    encode_body,
    event_payload,
)
from crdt.sync import AwarenessReceived
from server.access import stamp_presence
from server.auth import Identity, Role
from server.awareness_rate import connection_pacer
from server.events import DocumentEvent, EventBus
from server.frames import broadcast
from server.limits import awareness_limits
from server.peer import peer_ids
from server.room import Room

if TYPE_CHECKING:
    from server.hocuspocus import HocuspocusChannel

log = logging.getLogger("cocreate.hocuspocus")

RETRYABLE_CODES = frozenset({1011, 1012, 1013})
"""Closing a document with one of these closes the socket: the provider reconnects every document."""


class DocumentPeer:
    """A document opened by a Hocuspocus provider: its frames carry `prefix = varString(address)`."""

    expected_epoch: str | None = None  # Hocuspocus has no epochs

    def __init__(
        self,
        channel: HocuspocusChannel,
        address: str,
        document: str,
        identity: Identity,
        role: Role,
        room: Room,
    ) -> None:
        self.channel = channel
        self.connection = channel.connection
        self.id = next(peer_ids)
        self.address = address
        self.document = document
        self.identity = identity
        self.role = role
        self.author = identity.user_id
        self.display_name = identity.name
        self.session = HocuspocusSession(address, read_only=role < Role.EDITOR)
        self.prefix = self.session.prefix
        self.room = room
        self.detached = False
        self._stamp_presence = identity.expires_at is not None  # token identities only
        self._awareness_limits = awareness_limits(channel.hub.settings)
        self._awareness = connection_pacer(
            channel.hub.settings,
            channel.hub.limits,
            f"conn={self.connection.id} doc={document!r}",
            lambda client_id: self.room.awareness.owner_of(client_id),
            self.id,
            self._relay_awareness,
        )

    def receive(self, message: DocumentMessage, size: int) -> None:
        """One decoded message for this document (the channel handled Close and Token)."""
        if isinstance(message, Stateless):
            if claims_cocreate(message.payload):  # a spoofed server event: not relayed
                log.info(
                    "conn=%d: doc=%r: stateless claiming to be cocreate's dropped",
                    self.connection.id,
                    self.document,
                )
            else:
                self.channel.endpoint.relay.stateless(self, message.payload)
            return
        if isinstance(message, Token | Close):
            return
        try:
            event = self.session.receive_message(message)
            if isinstance(event, AwarenessReceived):
                self._awareness.offer(event.payload)  # relayed now, or held while over the rate
                event = None
        except CoreError as exc:
            self.close(exc.close_code, exc.detail)
            return
        self.flush()  # a read-only session may have queued a refusal
        if event is not None:
            self.connection.received(size)
            self.room.submit(self, event, size)

    def _relay_awareness(self, payload: bytes) -> None:
        try:
            if self._stamp_presence:
                payload = stamp_presence(payload, self.identity, self._awareness_limits)
        except CoreError as exc:
            self.close(exc.close_code, exc.detail)
            return
        self.connection.received(len(payload))
        self.room.submit(self, AwarenessReceived(payload), len(payload))

    def detach(self, *, refuse: bool) -> None:
        """Leave the room; with `refuse`, drop this address's frames until a new Auth."""
        if self.detached:
            return
        self.detached = True
        self._awareness.close()
        if self.channel.documents.get(self.address) is self:
            if refuse:
                self.channel.refused(self.address)
            else:
                del self.channel.documents[self.address]
        self.channel.endpoint.relay.discard(self)
        self.channel.hub.guard.untrack(self)
        self.room.leave(self)

    # -- Peer ------------------------------------------------------------------------------
    @property
    def open(self) -> bool:
        return not self.detached and self.connection.open

    def write_frame(self, frame: bytes) -> None:
        if not self.detached:
            self.connection.write(frame)

    def flush(self) -> None:
        frames = self.session.data_to_send()
        if not self.detached:
            self.connection.write_messages(frames)

    def close(self, code: int, reason: str) -> None:
        """Close this document: Close(reason) to the provider, or the socket for retryable codes."""
        if self.detached:
            return
        if code in RETRYABLE_CODES:
            self.channel.fail(code, reason)
            return
        log.info("conn=%d: closing doc=%r (%d): %s", self.connection.id, self.document, code, reason)
        self.session.send_body(Close(reason[:120]))
        self.flush()
        self.detach(refuse=True)

    def processed(self, nbytes: int) -> None:
        self.connection.processed(nbytes)

    # -- Guarded (live access checks) ------------------------------------------------------
    def change_role(self, role: Role) -> None:
        self.role = role
        self.session.read_only = role < Role.EDITOR
        self.session.send_body(Authenticated(SCOPE_READ_ONLY if self.session.read_only else SCOPE_READ_WRITE))
        self.flush()

    def deny(self, code: int, reason: str) -> None:
        self.session.send_body(PermissionDenied(reason))
        self.close(code, reason)


class Relay:
    """The open Hocuspocus document peers of this server by document, for stateless messages and the
    document's events (comments, sessions), which reach them as Stateless `event_payload` messages."""

    def __init__(self, events: EventBus) -> None:
        self.events = events
        self._peers: dict[str, set[DocumentPeer]] = {}
        self._unlisten: dict[str, Callable[[], None]] = {}

    def add(self, peer: DocumentPeer) -> None:
        peers = self._peers.setdefault(peer.document, set())
        if not peers:
            self._unlisten[peer.document] = self.events.listen(peer.document, self._forward)
        peers.add(peer)

    def discard(self, peer: DocumentPeer) -> None:
        peers = self._peers.get(peer.document)
        if peers is not None:
            peers.discard(peer)
            if not peers:
                del self._peers[peer.document]
                self._unlisten.pop(peer.document)()

    def stateless(self, sender: DocumentPeer, payload: str) -> None:
        """Send `payload` to every other Hocuspocus peer of the sender's document, encoded once
        per distinct address."""
        receivers = [peer for peer in self._peers.get(sender.document, ()) if peer.open]
        broadcast(receivers, encode_body(Stateless(payload)), exclude=sender)

    def _forward(self, event: DocumentEvent) -> None:
        receivers = [peer for peer in self._peers.get(event.document, ()) if peer.open]
        data = json.dumps(event.data, separators=(",", ":"))
        broadcast(receivers, encode_body(Stateless(event_payload(event.kind, data))))
