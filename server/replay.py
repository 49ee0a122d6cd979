"""Replay rooms: a read-only live document re-playing a stretch of history to y-websocket clients."""

# Replay rooms: a read-only live document that re-plays a stretch of a document's history to any
# y-websocket client (`/ws/{document}?replay={id}`), paced at real time x speed with idle gaps cut,
# with the recorded participants' presence; play, pause, seek and speed are driven over HTTP.
#
# What viewers hold (the "mirror") starts as the document just before the stretch. Playing forward
# sends the logged updates themselves, so the mirror stays the same CRDT as the history (cursor
# positions recorded in awareness states resolve). A backward seek cannot take updates back from a
# stock client: the mirror is then edited into the earlier content with new operations
# (`crdt.restore.converge`, as a restore would) and from there on follows the history by content.

from __future__ import annotations

import asyncio
import uuid
import weakref
from typing import Any, Protocol

from pycrdt import Doc

from crdt.awareness import (
    NULL_STATE,
    AwarenessEntry,
    AwarenessLimits,
    AwarenessRegistry,
    decode_awareness,
    encode_awareness,
)
from crdt.messages import AwarenessMessage, DocumentEvent, Message, SyncUpdate, encode_message
from crdt.replay import EVENT, LEAVE, STATE, UPDATE, Frame, Playhead, check_speed
from crdt.restore import converge
from persistence.base import DocumentRecord
from server.documents import iso
from server.frames import binary_frame
from server.history import HistoryProblem, HistoryService, history_for
from server.history_reports import Recording, recording
from server.hub import Hub
from server.limits import awareness_limits

MAX_REPLAYS = 64
MAX_FRAMES = 1_000_000
IDLE_SECONDS = 600.0  # a replay nobody watches or plays is dropped after this
_ALL = AwarenessLimits(max_entries=1_000_000)  # re-reading our own encoding: no cap


class Viewer(Protocol):
    id: int
    events: bool  # speaks cocreate's extension messages: gets the replayed comment events

    def write_frame(self, frame: bytes) -> None: ...

    def close(self, code: int, reason: str) -> None: ...


class ReplayRoom:
    """One replay: its frames, playhead, the document viewers hold, and the viewers."""

    def __init__(
        self, replays: Replays, record: DocumentRecord, recorded: Recording, start: Doc[Any], start_seq: int,
        speed: float, max_gap: float, owner: str,
    ) -> None:  # fmt: skip
        self.id = uuid.uuid4().hex
        self.replays = replays
        self.record = record
        self.frames = recorded.frames
        self.initial = {f.client_id: f.state for f in recorded.initial if f.client_id is not None and f.state}
        self.playhead = Playhead([f.at for f in self.frames], speed, max_gap)
        self.max_gap = max_gap
        self.owner = owner
        self.start_seq = start_seq
        self.source = start  # the history as of the frames played so far
        self.mirror = start  # what viewers hold: the same object while in lineage
        self.seq = start_seq
        self.viewers: set[Viewer] = set()
        self.awareness = AwarenessRegistry(awareness_limits(replays.hub.settings))  # the viewers' own states
        self.replayed: dict[int, AwarenessEntry] = {}  # recorded participants' states, by client id
        self._clocks: dict[int, int] = {}
        self._timer: asyncio.TimerHandle | None = None
        self._idle: asyncio.TimerHandle | None = None
        self._seeking = asyncio.Lock()
        self._loop = asyncio.get_running_loop()
        self._set_presence(dict(self.initial))  # the presence standing when the stretch begins
        self._arm_idle()

    # -- state --------------------------------------------------------------------------------
    @property
    def lineage(self) -> bool:
        return self.mirror is self.source

    def view(self) -> dict[str, Any]:
        head = self.playhead
        state = "playing" if head.playing else "ended" if head.ended else "paused"
        current = self.frames[head.position - 1].at if head.position else None
        return {
            "id": self.id,
            "document": self.record.name,
            "state": state,
            "position": head.position,
            "frames": len(self.frames),
            "seq": self.seq,
            "from_seq": self.start_seq,
            "to_seq": max((f.seq for f in self.frames if f.kind == UPDATE), default=self.start_seq),
            "at": iso(current) if current is not None else None,
            "speed": head.speed,
            "max_gap": self.max_gap,
            "duration": round(head.duration, 3),
            "viewers": len(self.viewers),
            "owner": self.owner,
        }

    def awareness_states(self) -> bytes | None:
        """Every presence state a viewer should see: the replayed participants' and the viewers'."""
        viewers = self.awareness.encode_all()
        entries = [*self.replayed.values(), *(decode_awareness(viewers, _ALL) if viewers is not None else ())]
        return encode_awareness(entries) if entries else None

    # -- viewers ------------------------------------------------------------------------------
    def enter(self, viewer: Viewer) -> None:
        self.viewers.add(viewer)
        self._arm_idle()

    def leave(self, viewer: Viewer) -> None:
        self.viewers.discard(viewer)
        removed = self.awareness.release(viewer.id)
        if removed:
            self.broadcast(AwarenessMessage(encode_awareness(removed)))
        self._arm_idle()

    def broadcast(self, message: Message, events_only: bool = False) -> None:
        frame = binary_frame(encode_message(message))
        for viewer in list(self.viewers):
            if viewer.events or not events_only:
                viewer.write_frame(frame)

    # -- control ------------------------------------------------------------------------------
    def play(self) -> None:
        self.playhead.play(self._loop.time())
        self._schedule()

    def pause(self) -> None:
        self.playhead.pause(self._loop.time())
        self._schedule()

    def set_speed(self, speed: float) -> None:
        self.playhead.set_speed(check_speed(speed), self._loop.time())
        self._schedule()

    async def seek(self, index: int) -> None:
        """Continue from frame `index`: viewers get the document and presence as of just before it."""
        async with self._seeking:
            playing = self.playhead.playing
            self.playhead.pause(self._loop.time())
            index = max(0, min(index, len(self.frames)))
            target = max((f.seq for f in self.frames[:index] if f.kind == UPDATE), default=self.start_seq)
            if target >= self.seq:
                before = self.source.get_state()
                for frame in self.frames[self.playhead.position : index]:
                    if frame.kind == UPDATE:
                        self.source.apply_update(frame.update)
                self._send_document(self.source.get_update(before) if self.lineage else None)
            else:
                self.source = await self.replays.history.state_at(self.record, target)  # mirror detached
                self._send_document(None)
            self.seq = target
            self.playhead.seek(index, self._loop.time())
            self._reset_presence(index)
            if playing:
                self.playhead.play(self._loop.time())
            self._schedule()

    def close(self) -> None:
        for handle in (self._timer, self._idle):
            if handle is not None:
                handle.cancel()
        self._timer = self._idle = None
        self.playhead.pause(self._loop.time())
        for viewer in list(self.viewers):
            viewer.close(4404, "replay closed")
        self.viewers.clear()

    # -- playing ------------------------------------------------------------------------------
    def _schedule(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        wake = self.playhead.wake_at()
        if wake is not None:
            self._timer = self._loop.call_at(wake, self._tick)
        self._arm_idle()

    def _tick(self) -> None:
        self._timer = None
        if self._seeking.locked():
            return  # the seek reschedules when it is done
        for index in self.playhead.due(self._loop.time()):
            self._emit(self.frames[index])
        self._schedule()

    def _emit(self, frame: Frame) -> None:
        if frame.kind == UPDATE:
            self.source.apply_update(frame.update)
            self.seq = frame.seq
            self._send_document(frame.update if self.lineage else None)
        elif frame.kind == STATE and frame.client_id is not None:
            self._set_presence({frame.client_id: frame.state or NULL_STATE})
        elif frame.kind == LEAVE:
            self._set_presence(dict.fromkeys(frame.clients, NULL_STATE))
        elif frame.kind == EVENT:
            self.broadcast(DocumentEvent(frame.event, frame.data), events_only=True)

    def _send_document(self, update: bytes | None) -> None:
        """Send viewers `update`, or (detached) the edits that make the mirror read like the source."""
        if update is None:
            update, _ = converge(self.mirror, self.source)
        if update:
            self.broadcast(SyncUpdate(update))

    def _set_presence(self, states: dict[int, str]) -> None:
        changed = []
        for client, state in states.items():
            known = self.replayed.get(client)
            if state == NULL_STATE and known is None:
                continue
            clock = self._clocks[client] = self._clocks.get(client, 0) + 1
            entry = AwarenessEntry(client, clock, state)
            changed.append(entry)
            if state == NULL_STATE:
                del self.replayed[client]
            else:
                self.replayed[client] = entry
        if changed:
            self.broadcast(AwarenessMessage(encode_awareness(changed)))

    def _reset_presence(self, index: int) -> None:
        """The recorded presence as it stood just before frame `index`."""
        states: dict[int, str] = dict(self.initial)
        for frame in self.frames[:index]:
            if frame.kind == STATE and frame.client_id is not None:
                states[frame.client_id] = frame.state or NULL_STATE
            elif frame.kind == LEAVE:
                states.update(dict.fromkeys(frame.clients, NULL_STATE))
        wanted = {c: s for c, s in states.items() if s != NULL_STATE}
        changes = {c: NULL_STATE for c in self.replayed if c not in wanted}
        changes.update(
            {c: s for c, s in wanted.items() if c not in self.replayed or self.replayed[c].state != s}
        )
        self._set_presence(changes)

    def _arm_idle(self) -> None:
        if self._idle is not None:
            self._idle.cancel()
            self._idle = None
        if not self.viewers and not self.playhead.playing:
            self._idle = self._loop.call_later(IDLE_SECONDS, self.replays.drop, self.id)


class Replays:
    """The replay rooms of one hub, by id."""

    def __init__(self, hub: Hub, history: HistoryService) -> None:
        self.hub = hub
        self.history = history
        self.rooms: dict[str, ReplayRoom] = {}

    def get(self, replay_id: str, document: str | None = None) -> ReplayRoom:
        room = self.rooms.get(replay_id)
        if room is None or (document is not None and room.record.name != document):
            raise HistoryProblem(404, "replay_not_found", f"no replay {replay_id!r} of this document")
        return room

    async def create(
        self, record: DocumentRecord, after_seq: int, until_seq: int, speed: float, max_gap: float, owner: str
    ) -> ReplayRoom:
        if len(self.rooms) >= MAX_REPLAYS:
            raise HistoryProblem(429, "too_many_replays", f"at most {MAX_REPLAYS} replays at once")
        if until_seq - after_seq > MAX_FRAMES:
            raise HistoryProblem(413, "range_too_long", f"at most {MAX_FRAMES} updates per replay")
        check_speed(speed)
        recorded = await recording(self.history, record, after_seq, until_seq)
        start = await self.history.state_at(record, after_seq)
        room = ReplayRoom(self, record, recorded, start, after_seq, speed, max(0.0, max_gap), owner)
        self.rooms[room.id] = room
        return room

    def drop(self, replay_id: str) -> None:
        room = self.rooms.pop(replay_id, None)
        if room is not None:
            room.close()

    def close(self) -> None:
        for replay_id in list(self.rooms):
            self.drop(replay_id)


_REPLAYS: weakref.WeakKeyDictionary[Hub, Replays] = weakref.WeakKeyDictionary()


def replays_for(hub: Hub) -> Replays:
    """The hub's replay rooms (one registry per hub, shared by the routes and the websocket edge)."""
    found = _REPLAYS.get(hub)
    if found is None:
        found = _REPLAYS[hub] = Replays(hub, history_for(hub))
    return found
