"""The owner of one document: a task that validates, applies and fans out; durability is its committer's."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from time import perf_counter
from typing import TYPE_CHECKING

from crdt.awareness import AwarenessRegistry, decode_awareness, encode_awareness
from crdt.document import Document, encode_state_vector
from crdt.errors import ApplyFailed, CoreError, InvalidUpdate, UpdateAhead
from crdt.messages import AwarenessMessage, Epoch, Message, SyncStep1, SyncUpdate, encode_message
from crdt.messages import DocumentEvent as EventMessage
from crdt.sync import AwarenessQueried, AwarenessReceived, Event, SyncRequested, UpdateReceived, WriteRefused
from crdt.type_depth import TypeDepths
from crdt.validation import UpdateLimits, UpdateSummary, validate_state_vector
from persistence.base import DocumentRecord, NewUpdate, Storage, StorageError
from server.chunked import apply_in_pieces
from server.claims import ClientClaims
from server.cluster.link import Inbound, RoomLink
from server.cluster.remote import apply_remote
from server.committer import CommitHook, Committer
from server.epochs import CLOSE_DOCUMENT_GONE, STALE_REASON, StaleCopy, is_stale, retired_clocks
from server.events import DocumentEvent, EventBus
from server.frames import broadcast
from server.limits import DocumentFull, awareness_limits, update_limits
from server.loading import load_state, resolve_record
from server.metrics import UNWIRED, Metrics
from server.peer import Peer
from server.presence import PresenceHook
from server.settings import Settings
from server.write_gate import WriteGate

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
        self.limits = limits or update_limits(settings)
        self.presence: PresenceHook | None = None  # records joins, leaves, awareness (history)
        self.on_commit: CommitHook | None = None  # told of each committed batch (webhooks)
        self.metrics: Metrics = UNWIRED  # the registry hands over the server's
        self._received_at = 0.0  # receipt time of the item being handled
        self.record: DocumentRecord | None = None
        self.document = Document()
        self.awareness = AwarenessRegistry(awareness_limits(settings))
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
        self.applying_in_pieces = False  # a large update is being applied piece by piece (unlogged)
        self._shutdown: tuple[int, str] | None = None
        self.gate = WriteGate(self.awareness, self.limits, user_claims=settings.secret is not None, name=name)
        self.claims = ClientClaims(self.gate, storage, name, self.metrics_storage_error)
        self.type_depths = TypeDepths(self.limits.max_type_depth)

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
            self.record = await resolve_record(self.storage, self.name, self.clock)
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
            await self.claims.load(self.record)
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
            await self.claims.settle()
            self.document.close()
            self.finished.set()

    async def _serve(self) -> None:
        inbox = self._inbox
        assert self.committer is not None
        while True:
            item = await inbox.get()
            await self._take(item)
            handled = 0
            while not self._tainted and not self._failed and not inbox.empty():
                item = inbox.get_nowait()
                await self._take(item)
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

    async def _take(self, item: _Item) -> None:
        """Handle one inbox item; a large update is validated in the worker and applied in pieces,
        the inbox waiting meanwhile (its items keep their order), other rooms served in between."""
        if await self._prevalidate(item):
            assert isinstance(item, _Incoming) and isinstance(item.event, UpdateReceived)
            peer = item.peer
            if peer in self.peers and peer.open:
                self._received_at = item.received
                try:
                    await self._apply_chunked(peer, item.event.update, item.event.index)
                except CoreError as exc:
                    self._refused(peer, exc)
                peer.flush()
            peer.processed(item.size)
        else:
            self._handle(item)

    def _refused(self, peer: Peer, exc: CoreError) -> None:
        self.metrics.rejected(exc)
        log.info("room %r: closing peer %d: %s", self.name, peer.id, exc.detail)
        peer.close(exc.close_code, exc.detail[:120])

    def _handle(self, item: _Item) -> None:
        if isinstance(item, _Incoming):
            peer = item.peer
            if peer in self.peers and peer.open:
                self._received_at = item.received
                try:
                    self._dispatch(peer, item.event)
                except CoreError as exc:
                    self._refused(peer, exc)
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
        self.gate.release(peer.id)
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
                entries = decode_awareness(payload, self.awareness.limits)
                entries = self.claims.presentable(entries, peer.author)
                if self.link is not None:
                    self.link.take_over_presence(self.awareness, peer.id, entries)
                before = self.awareness.owned_by(peer.id)
                accepted = self.awareness.apply(peer.id, entries)
                if self.claims.enabled and accepted and self.record is not None:
                    new = self.awareness.owned_by(peer.id) - before
                    self.claims.announced(self.record, peer.id, peer.author, new, self._known())
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

    def _read_client(self, client: int, from_clock: int) -> bytes:
        """The document's structs of `client` from `from_clock` on, as an update (for type depths)."""
        # mid-way through a chunked apply the cached clock state lags the document: read it afresh
        state = self.document.clock_state() if self.applying_in_pieces else dict(self._known())
        state[client] = from_clock
        return self.document.diff(encode_state_vector(state))

    def _known(self) -> dict[int, int]:
        if self._known_state is None:
            self._known_state = self.document.clock_state()
        return self._known_state

    async def _prevalidate(self, item: _Item) -> bool:
        """A very large update is validated in a worker process, so other rooms keep being served;
        True when it is then to be applied in pieces (`_apply_chunked`)."""
        if isinstance(item, _Incoming) and isinstance(item.event, UpdateReceived):
            peer, update, index = item.peer, item.event.update, item.event.index
            if len(update) > self.settings.offload_update_size and peer in self.peers:
                await self.gate.prevalidate(peer.id, index, update, self._known(), peer.author)
                return self.gate.is_split(peer.id, index)
        return False

    def _apply(self, peer: Peer, update: bytes, index: int) -> None:
        assert self.committer is not None
        known = self._known()
        admitted = self._admit(peer, update, index, known)
        if admitted is None:
            return
        update, summary = admitted
        if summary.type_count:  # shared types: their nesting across updates is bounded too
            try:
                self.type_depths.admit(update, self._read_client)
            except InvalidUpdate as exc:
                peer.session.refuse(index, exc.detail)
                raise
        try:  # a live edit takes the fresh path: the update itself is exactly what is new
            delta, exact = self.document.integrate(update, summary, known)
        except ApplyFailed as exc:
            peer.session.refuse(index, exc.detail)
            log.warning("room %r tainted by a failed apply; rebuilding it from the log", self.name)
            self._tainted = True
            raise
        if exact:
            self.gate.claim(peer.id, summary.clients)
        else:  # it overlapped or skipped ahead: the clock state is re-read when next needed
            self._known_state = None
        self._applied(peer, index, delta)

    def _admit(
        self, peer: Peer, update: bytes, index: int, known: dict[int, int]
    ) -> tuple[bytes, UpdateSummary] | None:
        """The gate's verdict, the stale-copy and document-size checks: the update to apply (claimed
        structs removed) and its summary, None when it is refused without closing the peer."""
        assert self.committer is not None
        try:
            stripped = self.gate.stripped_sections
            update, summary = self.gate.admit(peer.id, peer.author, index, update, known)
            if self.gate.stripped_sections != stripped:
                self.metrics.claimed_structs_removed.inc(self.gate.stripped_sections - stripped)
        except UpdateAhead as exc:
            self.metrics.rejected(exc)
            peer.session.refuse(index, exc.detail)  # benign race: its next step 2 carries it again
            return None
        except InvalidUpdate as exc:
            peer.session.refuse(index, exc.detail)
            raise
        if self._retired and is_stale(
            {c: end for c, (_, end) in summary.clients.items()}, known, self._retired
        ):
            peer.session.refuse(index, STALE_REASON)
            raise StaleCopy()
        if summary.struct_count and self.committer.stored_bytes > self.settings.max_document_size:
            peer.session.refuse(index, DocumentFull.reason)
            raise DocumentFull(f"over {self.settings.max_document_size} bytes")
        return update, summary

    async def _apply_chunked(self, peer: Peer, update: bytes, index: int) -> None:
        """`_apply` for a large prevalidated update, one piece at a time (`crdt.chunks`)."""
        known = self._known()
        admitted = self._admit(peer, update, index, known)
        split = self.gate.take_split(peer.id, index)
        if admitted is None:
            return
        update, summary = admitted
        assert split is not None
        self.applying_in_pieces = True  # the document is ahead of the log: no snapshot of it
        try:
            try:
                outcome = await apply_in_pieces(
                    self.document,
                    update,
                    summary,
                    split,
                    known,
                    self.type_depths if summary.type_count else None,
                    self._read_client,
                    lambda: self._failed,
                    self.settings.offload_update_size,
                )
            except (InvalidUpdate, ApplyFailed) as exc:  # part of it may be in: the document is not the log's
                peer.session.refuse(index, exc.detail)
                log.warning("room %r tainted by a refused piece of a large update; rebuilding it", self.name)
                self._tainted = True
                raise
            if outcome is None or self._failed:
                return
            delta, exact = outcome
            if exact:
                if self._known_state is known:
                    for client, (_, end) in summary.clients.items():
                        known[client] = end
                self.gate.claim(peer.id, summary.clients)
            else:
                self._known_state = None
            self._applied(peer, index, delta)
        finally:
            self.applying_in_pieces = False

    def _applied(self, peer: Peer, index: int, delta: bytes) -> None:
        """Relay and log what an update changed; the committer acknowledges it once stored."""
        assert self.committer is not None
        logged = None
        if delta:
            self.metrics.updates_applied.inc()
            self._broadcast(SyncUpdate(delta), peer)
            logged = NewUpdate(delta, peer.author, self.clock())
        self.committer.submit(logged, peer, index, self._received_at)

    def metrics_storage_error(self) -> None:
        self.metrics.storage_errors["room"].inc()

    # -- cluster mode ---------------------------------------------------------------------------
    def _receive(self, record: Inbound) -> None:
        self._inbox.put_nowait(_Remote(record))

    def _has_peers(self) -> bool:
        return bool(self.peers)

    def _apply_remote(self, record: Inbound) -> None:
        """What another node committed (never logged again here) or announced, relayed to our peers."""
        assert self.link is not None and self.committer is not None
        outcome = apply_remote(self.link, self.document, self.awareness, record, self.name)
        self.committer.tail_bytes += outcome.applied_bytes
        if outcome.tainted:
            self._tainted = True
            return
        if outcome.changed:
            self._known_state = None
        if outcome.delta:
            self._broadcast(SyncUpdate(outcome.delta), None)
        if outcome.presence:
            self._broadcast(AwarenessMessage(encode_awareness(outcome.presence)), None)

    def _forward_event(self, event: DocumentEvent) -> None:
        """Comment/session events reach the connections that speak cocreate's extensions."""
        body = json.dumps(event.data, separators=(",", ":"))
        broadcast([p for p in self.peers if p.session.acks], encode_message(EventMessage(event.kind, body)))

    def _broadcast(self, message: Message, exclude: Peer | None) -> None:
        delivered = broadcast(list(self.peers), encode_message(message), exclude)
        if delivered:
            self.metrics.fanout_deliveries.inc(delivered)

    # -- loading and failures ---------------------------------------------------------------
    async def _load(self) -> None:
        assert self.record is not None and self.committer is not None
        state = await load_state(self.storage, self.record.id, page_size=self.settings.load_page_size)
        self.document.close()
        self.document = state.document
        self.committer.reset(state)
        self._known_state = None
        self.type_depths = TypeDepths(self.limits.max_type_depth)
        if self.link is not None:
            self.link.loaded(state.last_seq)

    async def _rebuild(self) -> None:
        """pycrdt failed half-way: the document may differ from the log. Reload it; never snapshot it."""
        assert self.committer is not None
        await self.committer.drain()
        await self._load()
        self._tainted = False

    def _snapshot_state(self) -> bytes | None:
        if self._tainted or self._failed or self.applying_in_pieces:
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
