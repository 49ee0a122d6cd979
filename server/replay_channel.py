"""The websocket channel of replay viewers: y-websocket clients on `/ws/{document}?replay={id}`."""

# Read-only y-websocket: the server opens with SyncStep1 and the presence states; a client's
# SyncStep1 gets the replay document as SyncStep2; its updates are refused (read-only session);
# its awareness is relayed to every viewer, the sender included (y-websocket reconnects when it
# hears nothing for 30 s, and a paused replay is quiet).

from __future__ import annotations

import logging

from crdt.awareness import decode_awareness, encode_awareness
from crdt.errors import CoreError
from crdt.messages import AwarenessMessage, SyncStep1
from crdt.sync import AwarenessQueried, AwarenessReceived, SyncRequested, SyncSession
from crdt.sync import Role as SyncRole
from server.awareness_rate import connection_pacer
from server.history import HistoryProblem
from server.hub import Admission, Hub
from server.peer import peer_ids
from server.replay import ReplayRoom, replays_for
from server.transport import Channel, ChannelFactory, WebSocketConnection

log = logging.getLogger("cocreate.replay")

CLOSE_NO_REPLAY = 4404


class ReplayViewer:
    """One viewer of one replay room."""

    def __init__(self, connection: WebSocketConnection, room: ReplayRoom, admission: Admission) -> None:
        self.connection = connection
        self.room = room
        self.id = next(peer_ids)
        self.author = admission.author
        self.events = admission.acks  # `?acks=1`: speaks cocreate's extensions (replayed comment events)
        self.session = SyncSession(
            SyncRole.SERVER,
            read_only=True,
            acks=self.events,  # refusals of its writes are told to clients that understand them
            max_message_size=connection.hub.settings.max_message_size,
        )
        self._awareness = connection_pacer(
            connection.hub.settings,
            connection.hub.limits,
            f"replay viewer conn={connection.id}",
            room.awareness.owner_of,
            self.id,
            self._relay_awareness,
        )
        room.enter(self)
        self.session.send(SyncStep1(room.mirror.get_state()))
        states = room.awareness_states()
        if states is not None:
            self.session.send(AwarenessMessage(states))
        self.flush()

    # -- Channel ----------------------------------------------------------------------------------
    def receive(self, data: bytes) -> None:
        try:
            event = self.session.receive_data(data)
            match event:
                case SyncRequested(state_vector):
                    self.session.send_step2(self.room.mirror.get_update(state_vector))
                case AwarenessReceived(payload):
                    self._awareness.offer(payload)  # relayed now, or held while over the rate
                case AwarenessQueried():
                    states = self.room.awareness_states()
                    if states is not None:
                        self.session.send(AwarenessMessage(states))
        except CoreError as exc:
            log.info("replay viewer conn=%d: %s", self.connection.id, exc.detail)
            self.close(exc.close_code, exc.detail[:120])
            return
        self.flush()

    def _relay_awareness(self, payload: bytes) -> None:
        entries = decode_awareness(payload, self.room.awareness.limits)  # checked by the pacer already
        accepted = self.room.awareness.apply(self.id, entries)
        if accepted:
            self.room.broadcast(AwarenessMessage(encode_awareness(accepted)))

    def closed(self) -> None:
        self._awareness.close()
        self.room.leave(self)

    def describe(self) -> str:
        return f"replay={self.room.id} doc={self.room.record.name!r} user={self.author}"

    # -- Viewer -----------------------------------------------------------------------------------
    def write_frame(self, frame: bytes) -> None:
        self.connection.write(frame)

    def flush(self) -> None:
        self.connection.write_messages(self.session.data_to_send())

    def close(self, code: int, reason: str) -> None:
        self.connection.close(code, reason)


class _Refused:
    """A socket whose replay does not exist: closed at once with 4404 (the client should not retry)."""

    def __init__(self, connection: WebSocketConnection, reason: str) -> None:
        self.reason = reason
        connection.close(CLOSE_NO_REPLAY, reason[:120])

    def receive(self, data: bytes) -> None:
        return None

    def closed(self) -> None:
        return None

    def describe(self) -> str:
        return f"replay refused: {self.reason}"


def replay_channel(hub: Hub) -> ChannelFactory:
    """The `ChannelFactory` of the "replay" endpoint (`Hub.admit` picks it for `?replay=`)."""

    def open_channel(connection: WebSocketConnection, admission: Admission) -> Channel:
        try:
            room = replays_for(hub).get(admission.query.get("replay", ""), admission.document)
        except HistoryProblem as exc:
            return _Refused(connection, exc.detail)
        return ReplayViewer(connection, room, admission)

    return open_channel
