"""Durability of one room: group commit to the log, acknowledgements after the commit, compaction."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from time import perf_counter

from persistence.base import NewUpdate, Snapshot, Storage, StorageError
from server.loading import LoadedState
from server.metrics import UNWIRED, Metrics
from server.offload import reloads, reloads_off_loop
from server.peer import Peer
from server.settings import Settings

log = logging.getLogger("cocreate.commit")

#: Told after each committed batch: (document name, document id, last seq, the batch). Must not block.
CommitHook = Callable[[str, str, int, Sequence[NewUpdate]], None]


class Committer:
    """Appends what the room applied, in batches (one transaction per batch), then acknowledges.

    Whatever arrives while a commit is in flight forms the next batch: group commit without a timer.
    Snapshots are taken only when the document equals the log (nothing pending) and is not tainted.
    """

    def __init__(
        self,
        name: str,
        document_id: str,
        storage: Storage,
        settings: Settings,
        clock: Callable[[], float],
        encode_state: Callable[[], bytes | None],
        on_failure: Callable[[StorageError], None],
        on_commit: CommitHook | None = None,
        metrics: Metrics = UNWIRED,
    ) -> None:
        self.name = name
        self.document_id = document_id
        self.storage = storage
        self.settings = settings
        self.clock = clock
        self.encode_state = encode_state  # None when the document may not be snapshotted
        self.on_failure = on_failure
        self.on_commit = on_commit
        self.metrics = metrics
        self.last_seq = 0
        self.snapshot_seq = 0
        self.snapshot_bytes = 0
        self.tail_bytes = 0
        self.failed = False
        self._pending: list[NewUpdate] = []
        self._acks: list[tuple[Peer, int, float]] = []
        self._wanted = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._snapshot_broken_at = -1
        # cluster mode: told of each committed batch (its last seq); says which seq a snapshot may
        # claim (None: another node compacts this document)
        self.on_committed: Callable[[int, list[NewUpdate]], None] | None = None
        self.snapshot_point: Callable[[], int | None] | None = None

    def reset(self, state: LoadedState) -> None:
        """Take over the counters of a freshly loaded document."""
        self.last_seq = state.last_seq
        self.snapshot_seq = state.snapshot_seq
        self.snapshot_bytes = state.snapshot_bytes
        self.tail_bytes = state.tail_bytes

    def submit(self, update: NewUpdate | None, peer: Peer, index: int, received: float = 0.0) -> None:
        """Log `update` (None: nothing new) and acknowledge `peer`'s message `index` once committed;
        `received`: its `perf_counter()` receipt time (0: unknown, not measured)."""
        if update is not None:
            self._pending.append(update)
        self._acks.append((peer, index, received))
        self._idle.clear()
        self._wanted.set()

    @property
    def stored_bytes(self) -> int:
        """Approximate size of the document in storage: its snapshot plus the log after it."""
        return self.snapshot_bytes + self.tail_bytes

    @property
    def has_uncommitted(self) -> bool:
        return bool(self._pending)

    async def run(self) -> None:
        while True:
            await self._wanted.wait()
            self._wanted.clear()
            batch, self._pending = self._pending, []
            acks, self._acks = self._acks, []
            try:
                if batch:
                    started = perf_counter()
                    self.last_seq = await self.storage.append_updates(self.document_id, batch)
                    self.metrics.commit_latency.observe(perf_counter() - started)
                    self.metrics.commit_batch.observe(len(batch))
                    self.tail_bytes += sum(len(u.data) for u in batch)
                    if self.on_committed is not None:
                        self.on_committed(self.last_seq, batch)
            except StorageError as exc:
                log.error("room %r: commit of %d updates failed: %s", self.name, len(batch), exc)
                self.failed = True
                self._idle.set()
                self.on_failure(exc)
                return
            if batch and self.on_commit is not None:
                try:
                    self.on_commit(self.name, self.document_id, self.last_seq, batch)
                except Exception:  # an observer never breaks durability
                    log.exception("room %r: commit hook failed", self.name)
            highest: dict[Peer, int] = {}
            oldest: dict[Peer, float] = {}
            for peer, index, received in acks:  # acknowledgements are cumulative: one per peer and batch
                highest[peer] = max(index, highest.get(peer, 0))
                if received and peer not in oldest:
                    oldest[peer] = received
            now = perf_counter()
            for peer, index in highest.items():
                if peer.open:
                    peer.session.acknowledge(index)
                    peer.flush()
                    if peer in oldest:  # one sample per ack sent: from its oldest update's receipt
                        self.metrics.ack_latency.observe(now - oldest[peer])
            if not self._pending and not self._acks:
                self._idle.set()
                await self.compact()

    def request_compaction(self) -> None:
        """Check the compaction policy soon, from the committer's own task (cluster mode: the lease
        holder compacts what other nodes committed, too)."""
        self._wanted.set()

    async def drain(self) -> None:
        """Wait until everything submitted so far is committed and acknowledged (or failed)."""
        while not self.failed and (self._pending or self._acks or not self._idle.is_set()):
            self._wanted.set()
            await self._idle.wait()
            await asyncio.sleep(0)  # let a batch that arrived meanwhile start

    async def compact(self) -> None:
        """Snapshot the state at `last_seq` when the log tail outgrew the policy."""
        seq = self.last_seq if self.snapshot_point is None else self.snapshot_point()
        if self.failed or self._pending or seq is None or seq <= self.snapshot_seq:
            return
        rows_since = seq - self.snapshot_seq
        settings = self.settings
        due = rows_since >= settings.snapshot_min_updates or (
            rows_since >= settings.snapshot_ratio_min_updates
            and self.tail_bytes > self.snapshot_bytes * settings.snapshot_log_ratio
        )
        if not due or self._snapshot_broken_at == seq:
            return
        data = self.encode_state()  # on the loop: the room's document, exactly at `seq`
        if data is None:
            return
        large = len(data) > settings.offload_update_size  # checked in the worker: the loop keeps serving
        if not (await reloads_off_loop(data) if large else reloads(data)):
            # Some histories (e.g. a JS client deleting half a surrogate pair) apply fine but encode a
            # state yrs cannot load again: keep serving from the log, never store such a snapshot.
            log.error("room %r: state at seq %d does not reload; snapshot skipped", self.name, seq)
            self._snapshot_broken_at = seq
            return
        await self.storage.save_snapshot(self.document_id, Snapshot(seq, data, self.clock()))
        self.snapshot_seq = seq
        self.snapshot_bytes = len(data)
        self.tail_bytes = 0
        if settings.log_retention_seconds > 0:
            pruned = await self.storage.prune_updates(
                self.document_id, seq, older_than=self.clock() - settings.log_retention_seconds
            )
            if pruned:
                log.info("room %r: retention pruned %d log rows up to seq %d", self.name, pruned, seq)
