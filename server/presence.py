"""Presence recording: joins, leaves and sampled awareness states of every room, written in batches."""

# Presence recording: the joins, leaves and awareness states (cursor, selection, name) every room sees,
# sampled at most once a second per awareness client and written in batches next to the update log.
#
# The room calls the `PresenceHook` methods from its own task; they only buffer. One writer task,
# started when rows are waiting, appends them: one transaction for the rows of up to
# `BATCH_DOCUMENTS` documents, so the writer keeps pace with rooms opening (a transaction per
# document did not, and its backlog grew with every room); what arrives meanwhile forms the next
# batch. At most `max_pending` rows wait in memory: past that, new rows are dropped and counted.
# A sample that comes less than `interval` after the previous one of its client waits for its slot
# and is replaced by any newer one (the last state of a burst of cursor moves is the one kept); a
# cleared state ("null") and a leave go out at once.
# Presence is best effort: a failed write is logged and dropped, the room is never slowed.

from __future__ import annotations

import asyncio
import itertools
import json
import logging
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Protocol

from crdt.awareness import NULL_STATE, AwarenessEntry
from persistence.base import StorageError
from persistence.history import JOIN, LEAVE, STATE, HistoryStore, NewPresence
from server.peer import Peer

if TYPE_CHECKING:
    from server.room import Room

log = logging.getLogger("cocreate.presence")

SAMPLE_INTERVAL = 1.0
MAX_PENDING_ROWS = 20_000  # rows waiting to be written; more are dropped (the database is behind)
BATCH_DOCUMENTS = 256  # documents per write transaction


class PresenceHook(Protocol):
    """What a room reports about its connections (optional: `Room.presence`)."""

    def joined(self, room: Room, peer: Peer) -> None: ...

    def left(self, room: Room, peer: Peer, removed: Sequence[AwarenessEntry]) -> None: ...

    def awareness(self, room: Room, peer: Peer, entries: Sequence[AwarenessEntry]) -> None: ...


class PresenceRecorder:
    """The `PresenceHook` that stores what it hears through a `HistoryStore`."""

    def __init__(
        self,
        store: HistoryStore,
        clock: Callable[[], float],
        interval: float = SAMPLE_INTERVAL,
        max_pending: int = MAX_PENDING_ROWS,
    ) -> None:
        self.store = store
        self.clock = clock
        self.interval = interval
        self.max_pending = max_pending
        self._rows: dict[str, list[NewPresence]] = {}
        self._pending = 0  # rows in `_rows`
        self._overflowing = False  # dropping rows since the backlog reached `max_pending`
        self._last: dict[tuple[str, int], float] = {}  # (document id, client) -> time of its last sample
        self._waiting: dict[tuple[str, int], tuple[NewPresence, asyncio.TimerHandle]] = {}
        self._writer: asyncio.Task[None] | None = None
        self.written = 0
        self.dropped = 0

    # -- PresenceHook --------------------------------------------------------------------------
    def joined(self, room: Room, peer: Peer) -> None:
        if not getattr(peer, "records_presence", True):
            return  # the server's own peers (a restore) are not people
        name = getattr(peer, "display_name", peer.author)
        data = json.dumps({"name": name}, ensure_ascii=False)
        self._add(room, NewPresence(self.clock(), peer.author, JOIN, peer.id, None, _log_seq(room), data))

    def left(self, room: Room, peer: Peer, removed: Sequence[AwarenessEntry]) -> None:
        if not getattr(peer, "records_presence", True):
            return
        document = _document_id(room)
        clients = sorted(entry.client_id for entry in removed)
        for client in clients:
            self._last.pop((document, client), None)
            self._release((document, client))
        data = json.dumps({"clients": clients})
        self._add(room, NewPresence(self.clock(), peer.author, LEAVE, peer.id, None, _log_seq(room), data))

    def awareness(self, room: Room, peer: Peer, entries: Sequence[AwarenessEntry]) -> None:
        document = _document_id(room)
        now = self.clock()
        for entry in entries:
            key = (document, entry.client_id)
            row = NewPresence(now, peer.author, STATE, peer.id, entry.client_id, _log_seq(room), entry.state)
            last = self._last.get(key)
            if entry.state == NULL_STATE or last is None or now - last >= self.interval:
                self._cancel(key)
                self._last[key] = now
                self._add_row(document, row)
                continue
            waiting = self._waiting.get(key)
            if waiting is not None:
                self._waiting[key] = (row, waiting[1])  # keep the slot, take the newer state
            else:
                timer = asyncio.get_running_loop().call_later(
                    self.interval - (now - last), self._release, key
                )
                self._waiting[key] = (row, timer)

    # -- buffering and writing ------------------------------------------------------------------
    def _cancel(self, key: tuple[str, int]) -> None:
        waiting = self._waiting.pop(key, None)
        if waiting is not None:
            waiting[1].cancel()

    def _release(self, key: tuple[str, int]) -> None:
        """A waiting sample's slot came (or its client left): record it now, stamped now."""
        waiting = self._waiting.pop(key, None)
        if waiting is None:
            return
        row, timer = waiting
        timer.cancel()
        now = self.clock()
        if key in self._last:
            self._last[key] = now
        self._add_row(key[0], NewPresence(now, *_fields_after_time(row)))

    def _add(self, room: Room, row: NewPresence) -> None:
        self._add_row(_document_id(room), row)

    def _add_row(self, document: str, row: NewPresence) -> None:
        if not document:
            return
        if self._pending >= self.max_pending:
            self.dropped += 1
            if not self._overflowing:
                self._overflowing = True
                log.warning("presence not recorded: %d rows already wait for the database", self._pending)
            return
        self._rows.setdefault(document, []).append(row)
        self._pending += 1
        if self._writer is None or self._writer.done():
            self._writer = asyncio.get_running_loop().create_task(self._write(), name="presence-writer")

    def pending(self) -> int:
        """Rows waiting to be written."""
        return self._pending

    async def _write(self) -> None:
        while self._rows:
            batch = self._take_batch()
            try:
                stored = await self.store.append_presence_batch(batch)
                unknown = [document for document in batch if document not in stored]
                if unknown:
                    log.warning(
                        "presence of %d unknown document(s) not recorded, e.g. %s", len(unknown), unknown[0]
                    )
            except ValueError:  # a row the store refuses: write document by document to keep the rest
                stored = await self._write_each(batch)
            except StorageError as exc:
                stored = {}
                log.warning("presence of %d document(s) not recorded: %s", len(batch), exc)
            for document, rows in batch.items():
                if document in stored:
                    self.written += len(rows)
                else:
                    self.dropped += len(rows)

    def _take_batch(self) -> dict[str, list[NewPresence]]:
        batch: dict[str, list[NewPresence]] = {}
        for document in list(itertools.islice(self._rows, BATCH_DOCUMENTS)):
            batch[document] = rows = self._rows.pop(document)
            self._pending -= len(rows)
        if self._pending < self.max_pending // 2:
            self._overflowing = False
        return batch

    async def _write_each(self, batch: dict[str, list[NewPresence]]) -> dict[str, int]:
        stored: dict[str, int] = {}
        for document, rows in batch.items():
            try:
                stored[document] = await self.store.append_presence(document, rows)
            except (StorageError, ValueError) as exc:
                log.warning("presence of document %s not recorded (%d rows): %s", document, len(rows), exc)
        return stored

    async def drain(self) -> None:
        """Record the samples still waiting for their slot, then wait until everything is written."""
        for key in list(self._waiting):
            self._release(key)
        while self._writer is not None and not self._writer.done():
            await asyncio.shield(self._writer)


def _document_id(room: Room) -> str:
    return room.record.id if room.record is not None else ""


def _log_seq(room: Room) -> int:
    return room.committer.last_seq if room.committer is not None else 0


def _fields_after_time(row: NewPresence) -> tuple[str, str, int, int | None, int, str]:
    return row.author, row.kind, row.connection, row.client_id, row.log_seq, row.data
