"""The y-websocket channel: one socket, one document; the connection is the room's `Peer`."""

from __future__ import annotations

import itertools
import logging

from crdt.errors import CoreError
from crdt.sync import Role as SyncRole
from crdt.sync import SyncSession
from server.auth import Role
from server.hub import Admission, Hub
from server.room import Room
from server.transport import WebSocketConnection

log = logging.getLogger("cocreate.ws")

_peer_ids = itertools.count(1)


class YWebSocketPeer:
    """A y-websocket client of one document: decodes its frames, feeds the room, writes for the room."""

    prefix = b""  # y-websocket frames carry the message alone

    def __init__(self, connection: WebSocketConnection, admission: Admission, hub: Hub) -> None:
        self.connection = connection
        self.id = next(_peer_ids)
        self.author = admission.author
        self.display_name = admission.name
        self.document = admission.document
        self.expected_epoch = admission.query.get("epoch") or None
        self.session = SyncSession(
            SyncRole.SERVER,
            read_only=admission.role < Role.EDITOR,
            acks=admission.acks,
            max_message_size=hub.settings.max_message_size,
        )
        self.room: Room = hub.registry.enter(admission.document)
        self.room.join(self)

    # -- Channel -------------------------------------------------------------------------
    def receive(self, data: bytes) -> None:
        try:
            event = self.session.receive_data(data)
        except CoreError as exc:
            log.info("conn=%d: %s", self.connection.id, exc.detail)
            self.close(exc.close_code, exc.detail[:120])
            return
        self.flush()  # a read-only session may have queued a refusal
        if event is not None:
            self.connection.received(len(data))
            self.room.submit(self, event, len(data))

    def closed(self) -> None:
        self.room.leave(self)

    def describe(self) -> str:
        return f"doc={self.document!r} user={self.author}"

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
