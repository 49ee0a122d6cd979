"""The y-websocket channel: one socket, one document; the connection is the room's `Peer`."""

from __future__ import annotations

import logging

from crdt.errors import CoreError
from crdt.messages import AuthDenied
from crdt.sync import AwarenessReceived, SyncSession
from crdt.sync import Role as SyncRole
from server.access import stamp_presence
from server.auth import Identity, Role
from server.awareness_rate import connection_pacer
from server.hub import Admission, Hub
from server.limits import awareness_limits
from server.peer import peer_ids
from server.room import Room
from server.transport import WebSocketConnection

log = logging.getLogger("cocreate.ws")


class YWebSocketPeer:
    """A y-websocket client of one document: decodes its frames, feeds the room, writes for the room."""

    prefix = b""  # y-websocket frames carry the message alone

    def __init__(self, connection: WebSocketConnection, admission: Admission, hub: Hub) -> None:
        self.connection = connection
        self.id = next(peer_ids)  # shared with Hocuspocus peers: rooms key awareness by it
        self.author = admission.author
        self.display_name = admission.name
        self.document = admission.document
        self.expected_epoch = admission.query.get("epoch") or None
        self.identity = admission.identity or Identity(admission.author, admission.name)
        self.role = admission.role
        self._stamp_presence = self.identity.expires_at is not None  # token identities only
        self.session = SyncSession(
            SyncRole.SERVER,
            read_only=admission.role < Role.EDITOR,
            acks=admission.acks,
            max_message_size=hub.settings.max_message_size,
        )
        self.room: Room = hub.registry.enter(admission.document)
        self.room.join(self)
        self._guard = hub.guard
        self._awareness_limits = awareness_limits(hub.settings)
        self._awareness = connection_pacer(
            hub.settings,
            hub.limits,
            f"conn={connection.id} doc={admission.document!r}",
            lambda client_id: self.room.awareness.owner_of(client_id),
            self.id,
            self._relay_awareness,
        )
        hub.guard.track(self, admission.generation)

    # -- Channel -------------------------------------------------------------------------
    def receive(self, data: bytes) -> None:
        try:
            event = self.session.receive_data(data)
            if isinstance(event, AwarenessReceived):
                self._awareness.offer(event.payload)  # relayed now, or held while over the rate
                event = None
        except CoreError as exc:
            self._refuse(exc)
            return
        self.flush()  # a read-only session may have queued a refusal
        if event is not None:
            self.connection.received(len(data))
            self.room.submit(self, event, len(data))

    def _relay_awareness(self, payload: bytes) -> None:
        try:
            if self._stamp_presence:
                payload = stamp_presence(payload, self.identity, self._awareness_limits)
        except CoreError as exc:
            self._refuse(exc)
            return
        self.connection.received(len(payload))
        self.room.submit(self, AwarenessReceived(payload), len(payload))

    def _refuse(self, exc: CoreError) -> None:
        self.connection.hub.metrics.rejected(exc)
        log.info("conn=%d: %s", self.connection.id, exc.detail)
        self.close(exc.close_code, exc.detail[:120])

    def closed(self) -> None:
        self._awareness.close()
        self._guard.untrack(self)
        self.room.leave(self)

    def describe(self) -> str:
        return f"doc={self.document!r} user={self.author}"

    # -- Guarded (live access checks) ------------------------------------------------------
    def change_role(self, role: Role) -> None:
        self.role = role
        self.session.read_only = role < Role.EDITOR

    def deny(self, code: int, reason: str) -> None:
        self.session.send(AuthDenied(reason))  # y-websocket's "permission denied" message
        self.flush()
        self.close(code, reason)

    # -- Peer ------------------------------------------------------------------------------
    @property
    def open(self) -> bool:
        return self.connection.open

    def write_frame(self, frame: bytes) -> None:
        self.connection.write(frame)

    def flush(self) -> None:
        self.connection.write_messages(self.session.data_to_send())

    def close(self, code: int, reason: str) -> None:
        self.connection.close(code, reason)

    def processed(self, nbytes: int) -> None:
        self.connection.processed(nbytes)
