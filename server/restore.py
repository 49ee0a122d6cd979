"""Restore: an earlier moment becomes the current content as a new change by the restorer."""

# Restore: make an earlier moment the current content as a new change by the restorer, never by
# rewriting history. The change is computed against the live room's document and submitted to the
# room like a client's update, so it is validated, applied, logged (authored by the restorer) and
# broadcast to everyone connected; the call returns once it is committed.

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from typing import Any

from pycrdt import Doc

from crdt.messages import Message, SyncStep1
from crdt.restore import converge
from crdt.sync import UpdateReceived
from persistence.base import DocumentRecord
from persistence.comments import NewEvent
from persistence.history import RESTORED
from server.auth import Identity
from server.history import HistoryProblem, HistoryService
from server.peer import Session, peer_ids

RESTORE_TIMEOUT = 30.0


class _Session:
    """The room's view of the restorer: one update-carrying message, index 1."""

    acks = False
    opens_sync = True
    read_only = False

    def __init__(self) -> None:
        loop = asyncio.get_running_loop()
        self.welcomed: asyncio.Future[None] = loop.create_future()
        self.committed: asyncio.Future[None] = loop.create_future()

    def send(self, message: Message) -> None:
        if isinstance(message, SyncStep1) and not self.welcomed.done():
            self.welcomed.set_result(None)  # the room loaded the document and took us in

    def send_step2(self, update: bytes) -> None:
        return None

    def acknowledge(self, index: int) -> None:
        if index >= 1 and not self.committed.done():
            self.committed.set_result(None)

    def refuse(self, index: int, reason: str) -> None:
        if not self.committed.done():
            self.committed.set_exception(HistoryProblem(409, "restore_refused", reason))

    def data_to_send(self) -> list[bytes]:
        return []

    def fail(self, reason: str) -> None:
        for future in (self.welcomed, self.committed):
            if not future.done():
                future.set_exception(HistoryProblem(503, "document_unavailable", reason))


class RestorePeer:
    """A server-side `Peer` of one restore. Not a person: presence does not record it."""

    prefix = b""
    records_presence = False

    def __init__(self, author: str, epoch: str) -> None:
        self.id = next(peer_ids)
        self.author = author
        self.display_name = author
        self.expected_epoch: str | None = epoch
        self._session = _Session()
        self._open = True

    @property
    def session(self) -> Session:
        return self._session

    @property
    def open(self) -> bool:
        return self._open

    def write_frame(self, frame: bytes) -> None:
        return None

    def flush(self) -> None:
        return None

    def close(self, code: int, reason: str) -> None:
        self._open = False
        self._session.fail(f"the room closed ({code}): {reason}")

    def processed(self, nbytes: int) -> None:
        return None


@dataclass(frozen=True, slots=True)
class Restored:
    changed: bool
    to_seq: int
    seq: int  # the log row of the restoring change (the last committed seq when nothing changed)
    skipped_roots: list[str]


async def restore(history: HistoryService, record: DocumentRecord, seq: int, who: Identity) -> Restored:
    """Make the document read as it did after log row `seq`."""
    hub = history.hub
    target = await history.state_at(record, seq)
    if hub.registry.is_blocked(record.name):
        raise HistoryProblem(503, "document_busy", "the document is being renamed or deleted; retry")
    room = hub.registry.enter(record.name)
    peer = RestorePeer(who.user_id, record.epoch)
    session = peer._session
    room.join(peer)
    try:
        await asyncio.wait_for(asyncio.shield(session.welcomed), RESTORE_TIMEOUT)
        work: Doc[Any] = Doc()
        work.apply_update(room.document.encode_state())
        update, skipped = converge(work, target)
        if not update:
            committer = room.committer
            return Restored(False, seq, committer.last_seq if committer is not None else 0, skipped)
        room.submit(peer, UpdateReceived(update, 1, False), len(update))
        await asyncio.wait_for(asyncio.shield(session.committed), RESTORE_TIMEOUT)
        committer = room.committer
        committed = committer.last_seq if committer is not None else 0
        data = {"to_seq": seq, "seq": committed}
        event = NewEvent(RESTORED, who.user_id, hub.clock(), json.dumps(data))
        event_seq = await history.store.append_event(record.id, event)  # durable: timelines show it
        hub.events.publish(record.name, RESTORED, {"event_seq": event_seq, "author": who.user_id, **data})
        return Restored(True, seq, committed, skipped)
    except TimeoutError:
        raise HistoryProblem(503, "document_unavailable", "the document did not answer in time") from None
    finally:
        peer._open = False
        room.leave(peer)
