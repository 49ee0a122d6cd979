"""The owner of one document: a task that validates, applies and fans out; durability is its committer's."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from time import perf_counter
from typing import TYPE_CHECKING

from pycrdt import merge_updates

from crdt.awareness import AwarenessRegistry, decode_awareness, encode_awareness
from crdt.document import Document
from crdt.errors import ApplyFailed, CoreError, DecodeError, InvalidUpdate, UpdateAhead
from crdt.messages import AwarenessMessage, Epoch, Message, SyncStep1, SyncUpdate, encode_message
from crdt.messages import DocumentEvent as EventMessage
from crdt.sync import AwarenessQueried, AwarenessReceived, Event, SyncRequested, UpdateReceived, WriteRefused
from crdt.validation import UpdateLimits, UpdateSummary, validate_state_vector, validate_update
from persistence.base import DocumentExists, DocumentRecord, NewUpdate, Storage, StorageError
from server.cluster.link import Inbound, LogSnapshot, PresenceExpired, RoomLink, is_remote_connection
from server.cluster.records import AwarenessQuery, AwarenessRelay, CommittedUpdates
from server.committer import CommitHook, Committer
from server.epochs import CLOSE_DOCUMENT_GONE, STALE_REASON, is_stale, retired_clocks
from server.events import DocumentEvent, EventBus
from server.frames import binary_frame
from server.loading import load_state
from server.metrics import UNWIRED, Metrics
from server.offload import validate_large_update
from server.peer import Peer
from server.presence import PresenceHook
from server.settings import Settings

if TYPE_CHECKING:  # the Redis client is imported only when a cluster is configured
    from server.cluster.node import Cluster

log = logging.getLogger("cocreate.room")

CLOSE_TRY_AGAIN = 1013
ITEMS_PER_TURN = 32
CLOSE_SERVER_ERROR = 1011


@dataclass(slots=True)
class _Join:
    peer: Peer


@dataclass(slots=True)
class _Leave:
    peer: Peer


@dataclass(slots=True)
class _Incoming:
    peer: Peer
    event: Event
    size: int
    received: float  # perf_counter() when handed to the room (ack latency)


@dataclass(slots=True)
class _Remote:
    """Something another node committed or announced (cluster mode), or a log catch-up."""

    record: Inbound


@dataclass(slots=True)
class _Wake:
    """Makes the owner loop look at its flags (shutdown, a failed commit)."""


_Item = _Join | _Leave | _Incoming | _Remote | _Wake


class DocumentFull(CoreError):
    close_code = 4413
    reason = "the document reached its size limit; only deletions are accepted"


class StaleCopy(CoreError):
    close_code = CLOSE_DOCUMENT_GONE
    reason = STALE_REASON


class Room:
    """One loaded document. Only its own task mutates the document; the committer only reads it."""

    def __init__(
        self,
        name: str,
        storage: Storage,
        settings: Settings,
        clock: Callable[[], float],
        events: EventBus | None = None,
        limits: UpdateLimits | None = None,
    ) -> None:
        self.name = name
        self.storage = storage
        self.settings = settings
        self.clock = clock
        self.events = events
        self.limits = limits or UpdateLimits()
        self.presence: PresenceHook | None = None  # records joins, leaves, awareness (history)
        self.on_commit: CommitHook | None = None  # told of each committed batch (webhooks)
        self.metrics: Metrics = UNWIRED  # the registry hands over the server's
        self._received_at = 0.0  # receipt time of the item being handled
        self.record: DocumentRecord | None = None
        self.document = Document()
        self.awareness = AwarenessRegistry()
        self.peers: set[Peer] = set()
        self.accepting = True  # the registry hands this room out only while True
        self.finished = asyncio.Event()
        self.committer: Committer | None = None
        self.cluster: Cluster | None = None  # cluster mode (set by the registry)
        self.link: RoomLink | None = None
        self._inbox: asyncio.Queue[_Item] = asyncio.Queue()
        self._known_state: dict[int, int] | None = None
        self._retired: dict[int, int] = {}
        self._failed = False
        self._tainted = False
        self._shutdown: tuple[int, str] | None = None
        self._prevalidated: dict[tuple[int, int], UpdateSummary | InvalidUpdate] = {}
        self._writers: dict[int, int] = {}  # client id -> peer that wrote it first since loading

    # -- called by transports and the registry -----------------------------------------
    def join(self, peer: Peer) -> None:
        self._inbox.put_nowait(_Join(peer))

    def leave(self, peer: Peer) -> None:
        self._inbox.put_nowait(_Leave(peer))

    def submit(self, peer: Peer, event: Event, size: int) -> None:
        self._inbox.put_nowait(_Incoming(peer, event, size, perf_counter()))

    def shut(self, code: int, reason: str) -> None:
        """Close every connection, commit what is pending, then stop."""
        self.accepting = False
        self._shutdown = (code, reason)
        self._inbox.put_nowait(_Wake())

    # -- the owner task -------------------------------------------------------------------
    async def run(self, previous: Room | None = None) -> None:
        committer_task: asyncio.Task[None] | None = None
        unlisten: Callable[[], None] = _nothing
        try:
            if previous is not None:
                await previous.finished.wait()
            self.record = await self._resolve_record()
            self.committer = Committer(
                self.name,
                self.record.id,
                self.storage,
                self.settings,
                self.clock,
                self._snapshot_state,
                self._commit_failed,
                self.on_commit,
                self.metrics,
            )
            if self.cluster is not None:
                self.link = RoomLink(
                    self.cluster,
                    self.record.id,
                    self.storage,
                    self._receive,
                    self._has_peers,
                    self.committer.request_compaction,
                )
                self.committer.on_committed = self.link.committed
                self.committer.snapshot_point = self.link.snapshot_seq
                await self.link.attach()  # before loading: nothing committed elsewhere falls between
            await self._load()
            self._retired = await retired_clocks(self.storage, self.name)
            committer_task = asyncio.create_task(self.committer.run(), name=f"commit:{self.name}")
            if self.events is not None:
                unlisten = self.events.listen(self.name, self._forward_event)
            await self._serve()
        except StorageError as exc:
            self.metrics.storage_errors["room"].inc()
            log.error("room %r: storage failed: %s", self.name, exc)
            self._fail(CLOSE_TRY_AGAIN, "storage unavailable, try again")
        except Exception:
            log.exception("room %r crashed", self.name)
            self._fail(CLOSE_SERVER_ERROR, "internal error")
        finally:
            self.accepting = False
            unlisten()
            if self.link is not None:
                self.link.detach()
            if committer_task is not None:
                committer_task.cancel()
                await asyncio.gather(committer_task, return_exceptions=True)
            self.document.close()
            self.finished.set()

    async def _serve(self) -> None:
        inbox = self._inbox
        assert self.committer is not None
        while True:
            item = await inbox.get()
            await self._prevalidate(item)
            self._handle(item)
            handled = 0
            while not self._tainted and not self._failed and not inbox.empty():
                item = inbox.get_nowait()
                await self._prevalidate(item)
                self._handle(item)
                handled += 1
                if handled % ITEMS_PER_TURN == 0:
                    await asyncio.sleep(0)  # let other rooms and sockets run during a burst
            if self._failed:
                return
            if self._tainted:
                await self._rebuild()
                continue
            if self._shutdown is not None:
                if inbox.empty():  # acknowledge what was received before saying goodbye
                    await self.committer.drain()
                for peer in list(self.peers):
                    peer.close(*self._shutdown)
            if (not self.peers or self._shutdown is not None) and inbox.empty():
                self.accepting = False
                await self.committer.drain()
                await self.committer.compact()
                return

    def _handle(self, item: _Item) -> None:
        if isinstance(item, _Incoming):
            peer = item.peer
            if peer in self.peers and peer.open:
                self._received_at = item.received
                try:
                    self._dispatch(peer, item.event)
                except CoreError as exc:
                    self.metrics.rejected(exc)
                    log.info("room %r: closing peer %d: %s", self.name, peer.id, exc.detail)
                    peer.close(exc.close_code, exc.detail[:120])
                peer.flush()
            peer.processed(item.size)
        elif isinstance(item, _Join):
            self._welcome(item.peer)
        elif isinstance(item, _Leave):
            self._farewell(item.peer)
        elif isinstance(item, _Remote):
            self._apply_remote(item.record)

    def _welcome(self, peer: Peer) -> None:
        if not peer.open:
            return
        if self._shutdown is not None:
            peer.close(*self._shutdown)
            return
        assert self.record is not None
        if peer.expected_epoch is not None and peer.expected_epoch != self.record.epoch:
            peer.close(CLOSE_DOCUMENT_GONE, STALE_REASON[:120])
            return
        self.peers.add(peer)
        if self.presence is not None:
            self.presence.joined(self, peer)
        if peer.session.acks:
            peer.session.send(Epoch(self.record.epoch))
        if peer.session.opens_sync:  # y-websocket; Hocuspocus waits for the client's SyncStep1
            peer.session.send(SyncStep1(self.document.state_vector()))
        states = self.awareness.encode_all()
        if states is not None:
            peer.session.send(AwarenessMessage(states))
        peer.flush()

    def _farewell(self, peer: Peer) -> None:
        if peer not in self.peers:
            return
        self.peers.discard(peer)
        for client in [c for c, writer in self._writers.items() if writer == peer.id]:
            del self._writers[client]
        removed = self.awareness.release(peer.id)
        if self.presence is not None:
            self.presence.left(self, peer, removed)
        if removed:
            self._broadcast(AwarenessMessage(encode_awareness(removed)), None)
            if self.link is not None:
                self.link.presence_changed(removed)

    def _dispatch(self, peer: Peer, event: Event) -> None:
        match event:
            case UpdateReceived(update, index, _):
                self._apply(peer, update, index)
            case SyncRequested(state_vector):
                claimed = validate_state_vector(state_vector, self.limits)
                if is_stale(claimed, self._known(), self._retired):
                    raise StaleCopy()
                if not peer.session.opens_sync:  # Hocuspocus: our SyncStep1 answers theirs, then step 2
                    peer.session.send(SyncStep1(self.document.state_vector()))
                peer.session.send_step2(self.document.diff(state_vector))
            case AwarenessReceived(payload):
                entries = decode_awareness(payload)
                if self.link is not None:
                    self.link.take_over_presence(self.awareness, peer.id, entries)
                accepted = self.awareness.apply(peer.id, entries)
                if accepted and self.presence is not None:
                    self.presence.awareness(self, peer, accepted)
                if accepted:
                    self._broadcast(AwarenessMessage(encode_awareness(accepted)), None)
                    if self.link is not None:
                        self.link.presence_changed(accepted)
            case AwarenessQueried():
                states = self.awareness.encode_all()
                if states is not None:
                    peer.session.send(AwarenessMessage(states))
            case WriteRefused(index, reason, update) if update is not None:
                # a read-only peer's step 2 (Hocuspocus): "applied" when it holds nothing new;
                # checked on the event loop, so only up to the size validated here anyway
                small = len(update) <= self.settings.offload_update_size
                if small and self.document.holds(update, self.limits):
                    peer.session.acknowledge(index)
                else:
                    peer.session.refuse(index, reason)
            case WriteRefused():
                pass  # the session already told the peer

    def _known(self) -> dict[int, int]:
        if self._known_state is None:
            self._known_state = self.document.clock_state()
        return self._known_state

    async def _prevalidate(self, item: _Item) -> None:
        """Validate a very large update in a worker process, so other rooms keep being served."""
        if not isinstance(item, _Incoming) or not isinstance(item.event, UpdateReceived):
            return
        update, peer = item.event.update, item.peer
        if len(update) <= self.settings.offload_update_size or peer not in self.peers:
            return
        known = self._known()
        others = _ForeignClients(self.awareness, peer.id, known, self._writers)
        foreign = frozenset(c for c in {*known, *self._writers} if c in others)
        try:
            outcome: UpdateSummary | InvalidUpdate = await validate_large_update(
                update, self._known(), self.awareness.owned_by(peer.id), foreign, self.limits
            )
        except InvalidUpdate as exc:
            outcome = exc
        self._prevalidated[(peer.id, item.event.index)] = outcome

    def _validate(self, peer: Peer, update: bytes, index: int, known: dict[int, int]) -> UpdateSummary:
        outcome = self._prevalidated.pop((peer.id, index), None)
        if isinstance(outcome, InvalidUpdate):
            raise outcome
        if outcome is not None:
            return outcome
        return validate_update(
            update,
            known_state=known,
            owned_clients=self.awareness.owned_by(peer.id),
            foreign_owned=_ForeignClients(self.awareness, peer.id, known, self._writers),
            limits=self.limits,
        )

    def _apply(self, peer: Peer, update: bytes, index: int) -> None:
        assert self.committer is not None
        known = self._known()
        try:
            summary = self._validate(peer, update, index, known)
        except UpdateAhead as exc:
            self.metrics.rejected(exc)
            peer.session.refuse(index, exc.detail)  # benign race: its next step 2 carries it again
            return
        except InvalidUpdate as exc:
            peer.session.refuse(index, exc.detail)
            raise
        if is_stale({c: end for c, (_, end) in summary.clients.items()}, known, self._retired):
            peer.session.refuse(index, STALE_REASON)
            raise StaleCopy()
        if summary.struct_count and self.committer.stored_bytes > self.settings.max_document_size:
            peer.session.refuse(index, DocumentFull.reason)
            raise DocumentFull(f"over {self.settings.max_document_size} bytes")
        try:  # a live edit takes the fresh path: the update itself is exactly what is new
            delta, exact = self.document.integrate(update, summary, known)
        except ApplyFailed as exc:
            peer.session.refuse(index, exc.detail)
            log.warning("room %r tainted by a failed apply; rebuilding it from the log", self.name)
            self._tainted = True
            raise
        if exact:
            for client in summary.clients:
                self._writers.setdefault(client, peer.id)  # first writer of an id owns it while here
        else:  # it overlapped or skipped ahead: the clock state is re-read when next needed
            self._known_state = None
        logged = None
        if delta:
            self.metrics.updates_applied.inc()
            self._broadcast(SyncUpdate(delta), peer)
            logged = NewUpdate(delta, peer.author, self.clock())
        self.committer.submit(logged, peer, index, self._received_at)

    # -- cluster mode ---------------------------------------------------------------------------
    def _receive(self, record: Inbound) -> None:
        self._inbox.put_nowait(_Remote(record))

    def _has_peers(self) -> bool:
        return bool(self.peers)

    def _apply_remote(self, record: Inbound) -> None:
        """Apply what another node committed (never logged again here) and relay it to our peers."""
        link = self.link
        assert link is not None and link.tracker is not None and self.committer is not None
        now = link.cluster.clock()
        try:
            match record:
                case CommittedUpdates(first_seq, updates, _):
                    fresh = [
                        updates[seq - first_seq] for seq in link.tracker.fresh(first_seq, record.last_seq)
                    ]
                    if not fresh:
                        return
                    delta = self.document.apply(fresh[0] if len(fresh) == 1 else merge_updates(*fresh))
                    link.tracker.mark(first_seq, record.last_seq, now)
                    self.committer.tail_bytes += sum(len(update) for update in fresh)
                case LogSnapshot(seq, data):
                    delta = self.document.apply(data)
                    link.tracker.advance_to(seq, now)
                case AwarenessRelay(payload, origin):
                    relayed = link.apply_remote_presence(
                        self.awareness, decode_awareness(payload), origin, now
                    )
                    if relayed:
                        self._broadcast(AwarenessMessage(encode_awareness(relayed)), None)
                    return
                case AwarenessQuery():
                    link.answer_presence_query()
                    return
                case PresenceExpired(connections):
                    gone = [entry for c in connections for entry in self.awareness.release(c)]
                    if gone:
                        self._broadcast(AwarenessMessage(encode_awareness(gone)), None)
                    return
                case _:
                    return
        except ApplyFailed:
            log.warning("room %r tainted by a failed remote apply; rebuilding it from the log", self.name)
            self._tainted = True
            return
        except DecodeError as exc:
            log.warning("room %r: ignoring a malformed remote awareness update: %s", self.name, exc)
            return
        self._known_state = None
        if delta:
            self._broadcast(SyncUpdate(delta), None)

    def _forward_event(self, event: DocumentEvent) -> None:
        """Comment/session events reach the connections that speak cocreate's extensions."""
        payload = encode_message(EventMessage(event.kind, json.dumps(event.data, separators=(",", ":"))))
        for peer in list(self.peers):
            if peer.session.acks:
                peer.write_frame(binary_frame(peer.prefix + payload))

    def _broadcast(self, message: Message, exclude: Peer | None) -> None:
        """Encode once per wire prefix (in practice once), write to every peer but `exclude`."""
        payload = encode_message(message)
        frames: dict[bytes, bytes] = {}
        delivered = 0
        for peer in list(self.peers):
            if peer is not exclude:
                frame = frames.get(peer.prefix)
                if frame is None:
                    frame = frames[peer.prefix] = binary_frame(peer.prefix + payload)
                peer.write_frame(frame)
                delivered += 1
        if delivered:
            self.metrics.fanout_deliveries.inc(delivered)

    # -- loading and failures ---------------------------------------------------------------
    async def _resolve_record(self) -> DocumentRecord:
        record = await self.storage.get_document(self.name)
        if record is None:
            try:
                record = await self.storage.create_document(self.name, self.clock())
            except DocumentExists:
                record = await self.storage.get_document(self.name)
        if record is None:
            raise StorageError(f"document {self.name!r} vanished while being created")
        return record

    async def _load(self) -> None:
        assert self.record is not None and self.committer is not None
        state = await load_state(self.storage, self.record.id, page_size=self.settings.load_page_size)
        self.document.close()
        self.document = state.document
        self.committer.reset(state)
        self._known_state = None
        if self.link is not None:
            self.link.loaded(state.last_seq)

    async def _rebuild(self) -> None:
        """pycrdt failed half-way: the document may differ from the log. Reload it; never snapshot it."""
        assert self.committer is not None
        await self.committer.drain()
        await self._load()
        self._tainted = False

    def _snapshot_state(self) -> bytes | None:
        if self._tainted or self._failed:
            return None
        return self.document.encode_state()

    def _commit_failed(self, exc: StorageError) -> None:
        self.metrics.storage_errors["commit"].inc()
        self._fail(CLOSE_TRY_AGAIN, "storage unavailable, your edits were not saved; retry")
        self._inbox.put_nowait(_Wake())

    def _fail(self, code: int, reason: str) -> None:
        self._failed = True
        self.accepting = False
        for peer in list(self.peers):
            peer.close(code, reason)
        self.peers.clear()
        while not self._inbox.empty():
            item = self._inbox.get_nowait()
            if isinstance(item, _Join):
                item.peer.close(code, reason)
            elif isinstance(item, _Incoming):
                item.peer.processed(item.size)


def _nothing() -> None:
    return None


class _ForeignClients:
    """Client ids whose future `peer_id` may not write (for the validator): those claimed by another
    live connection, through its awareness announcement or by having written them first. An id whose
    client is offline is unclaimed (see the closing note: binding ids to authenticated authors)."""

    __slots__ = ("_awareness", "_known", "_peer_id", "_writers")

    def __init__(
        self, awareness: AwarenessRegistry, peer_id: int, known: dict[int, int], writers: dict[int, int]
    ) -> None:
        self._awareness = awareness
        self._peer_id = peer_id
        self._known = known
        self._writers = writers

    def __contains__(self, client_id: object) -> bool:
        if not isinstance(client_id, int):
            return False
        owner = self._awareness.owner_of(client_id)
        if owner is None or is_remote_connection(owner):  # presence relayed from another node claims nothing
            owner = self._writers.get(client_id)
        return owner is not None and owner != self._peer_id
