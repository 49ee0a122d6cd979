"""History engine: folds cached per document, time travel through checkpoints, moments <-> log seqs."""

# Folds are kept per document (only the log tail is folded again on the next request).
# Checkpoints are snapshots (the `snapshots` table: a cache, the log stays the truth) at chosen seqs:
# a seek loads the newest snapshot at or before its target and applies the log rows after it; while
# doing so it stores a new snapshot every `history_checkpoint_rows` rows, so the first seek into a
# long stretch without snapshots pays once and later seeks there apply at most that many rows. The
# room's own compaction snapshots (every `snapshot_min_updates` rows) serve as checkpoints too.

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import gc
import weakref
from collections import OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from pycrdt import Doc

from crdt.document import is_native_failure
from crdt.history import HistoryError, HistoryFold
from crdt.history_views import BurstBuilder
from persistence.base import DocumentRecord, Snapshot
from persistence.comments import comment_store_for
from persistence.history import HistoryStore, history_store_for
from server.hub import Hub
from server.offload import reloads, reloads_off_loop

CACHED_FOLDS = 8  # documents whose fold stays in memory (least recently used first out)
CACHED_GAPS = 4  # burst builders kept per document (one per gap asked for)
FOLD_SLICE = 1000  # rows folded between two turns of the event loop (~10-40 ms)

Progress = Callable[[int, int], None]  # (rows done, rows in all)


class HistoryProblem(Exception):
    """A refused history request: HTTP `status`, a machine `code`."""

    def __init__(self, status: int, code: str, detail: str) -> None:
        super().__init__(detail)
        self.status, self.code, self.detail = status, code, detail


@dataclass(slots=True)
class _Cached:
    fold: HistoryFold
    bursts: OrderedDict[float, BurstBuilder]
    lock: asyncio.Lock


@contextlib.contextmanager
def _collector_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector for one slice of folding (about 40% of a fold's time goes
    to collections that find nothing to free); it catches up when it is back on."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def parse_moment(raw: str) -> float:
    """An ISO 8601 time (naive = UTC) or Unix seconds -> Unix seconds; `ValueError` otherwise."""
    text = raw.strip()
    try:
        return float(text)
    except ValueError:
        pass
    moment = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return moment.timestamp()


class HistoryService:
    """Reads history of the hub's documents; the only writer here is the checkpoint cache."""

    def __init__(self, hub: Hub, store: HistoryStore | None = None, save_checkpoints: bool = True) -> None:
        self.hub = hub
        self.storage = hub.storage
        self.store = store if store is not None else history_store_for(hub.storage)
        self.comments = comment_store_for(hub.storage)
        self.save_checkpoints = save_checkpoints
        self._cache: OrderedDict[str, _Cached] = OrderedDict()

    @property
    def checkpoint_rows(self) -> int:
        return self.hub.settings.history_checkpoint_rows

    async def record(self, name: str) -> DocumentRecord:
        record = await self.storage.get_document(name)
        if record is None:
            raise HistoryProblem(404, "document_not_found", f"no document named {name!r}")
        return record

    # -- folding ---------------------------------------------------------------------------------
    def _entry(self, record: DocumentRecord) -> _Cached:
        cached = self._cache.get(record.id)
        if cached is None:
            cached = self._cache[record.id] = _Cached(HistoryFold(), OrderedDict(), asyncio.Lock())
            while len(self._cache) > CACHED_FOLDS:
                self._cache.popitem(last=False)
        self._cache.move_to_end(record.id)
        return cached

    async def fold(self, record: DocumentRecord, progress: Progress | None = None) -> HistoryFold:
        """The document's fold, brought up to its last committed row (only new rows are read)."""
        cached = self._entry(record)
        async with cached.lock:
            fold = cached.fold
            try:
                await self._extend(record, fold, progress)
            except HistoryError as exc:
                self._cache.pop(record.id, None)  # half-folded: never reuse it
                raise HistoryProblem(500, "history_unreadable", str(exc)) from exc
            return fold

    async def _extend(self, record: DocumentRecord, fold: HistoryFold, progress: Progress | None) -> None:
        page = self.hub.settings.load_page_size
        total = max(record.last_seq, fold.folded_seq)
        while True:
            rows = await self.storage.read_updates(record.id, after_seq=fold.folded_seq, limit=page)
            if not rows:
                return
            if not len(fold) and rows[0].seq > 1:  # retention pruned the start: begin at a snapshot
                base = await self.storage.latest_snapshot(record.id, at_most_seq=rows[0].seq - 1)
                if base is None or base.seq != rows[0].seq - 1:
                    raise HistoryError(rows[0].seq, "the log starts after a gap no snapshot covers")
                fold.fold_base(base.seq, base.created_at, base.data)
            for start in range(0, len(rows), FOLD_SLICE):
                with _collector_paused():  # a fold allocates much and frees little: skip the scans
                    fold.fold(rows[start : start + FOLD_SLICE])
                if progress is not None:
                    progress(fold.folded_seq, max(total, fold.folded_seq))
                await asyncio.sleep(0)  # a long fold shares the event loop, a slice at a time

    async def bursts(self, record: DocumentRecord, gap: float) -> tuple[HistoryFold, BurstBuilder]:
        fold = await self.fold(record)
        cached = self._entry(record)
        builder = cached.bursts.get(gap)
        if builder is None:
            builder = cached.bursts[gap] = BurstBuilder(gap)
            while len(cached.bursts) > CACHED_GAPS:
                cached.bursts.popitem(last=False)
        cached.bursts.move_to_end(gap)
        builder.extend(fold)
        return fold, builder

    # -- moments ---------------------------------------------------------------------------------
    async def seq_at(self, record: DocumentRecord, moment: float) -> int:
        """The last log seq committed at or before `moment` (0: before the first row)."""
        cached = self._cache.get(record.id)
        if cached is not None and cached.fold.folded_seq >= record.last_seq:
            row = cached.fold.row_at_time(moment)
            return cached.fold.seqs[row] if row >= 0 else 0
        lo, hi = 0, record.last_seq  # invariant: row lo is at or before `moment`, rows after hi are not
        while lo < hi:
            mid = (lo + hi + 1) // 2
            rows = await self.storage.read_updates(record.id, after_seq=mid - 1, limit=1)
            if rows and rows[0].created_at <= moment:
                lo = max(mid, min(rows[0].seq, hi))
            else:
                hi = mid - 1
        return lo

    async def time_of(self, record: DocumentRecord, seq: int) -> float | None:
        if seq <= 0:
            return None
        rows = await self.storage.read_updates(record.id, after_seq=seq - 1, limit=1)
        return rows[0].created_at if rows else None

    async def resolve(self, record: DocumentRecord, seq: int | None, moment: float | None) -> int:
        """A position given as a seq or a moment (neither: now), clamped to the log."""
        if seq is not None and moment is not None:
            raise HistoryProblem(422, "invalid_parameter", "give a seq or a time, not both")
        if seq is not None:
            if seq < 0:
                raise HistoryProblem(422, "invalid_parameter", "seq must be >= 0")
            return min(seq, record.last_seq)
        if moment is not None:
            return await self.seq_at(record, moment)
        return record.last_seq

    # -- time travel -----------------------------------------------------------------------------
    async def state_at(self, record: DocumentRecord, seq: int, progress: Progress | None = None) -> Doc[Any]:
        """The document after log rows 1..seq, from the nearest checkpoint; `progress` hears
        (rows applied, rows to apply) after each page of the log."""
        doc: Doc[Any] = Doc()
        snapshot = await self.storage.latest_snapshot(record.id, at_most_seq=seq)
        at = mark = 0
        if snapshot is not None:
            _apply(doc, snapshot.data, snapshot.seq)
            at = mark = snapshot.seq
        every = self.checkpoint_rows if self.save_checkpoints else 0
        page = self.hub.settings.load_page_size
        base = at
        if progress is not None:
            progress(0, seq - base)
        while at < seq:
            rows = await self.storage.read_updates(record.id, after_seq=at, until_seq=seq, limit=page)
            if not rows:
                raise HistoryProblem(410, "history_pruned", f"log rows {at + 1}..{seq} were pruned")
            for row in rows:
                _apply(doc, row.data, row.seq)
                at = row.seq
                if every and at - mark >= every and seq - at >= every // 4:
                    await self._checkpoint(record, doc, row.seq, row.created_at)
                    mark = at
            if progress is not None:
                progress(at - base, seq - base)
            await asyncio.sleep(0)
        return doc

    async def _checkpoint(self, record: DocumentRecord, doc: Doc[Any], seq: int, created_at: float) -> None:
        data = doc.get_update()
        large = len(data) > self.hub.settings.offload_update_size
        if await reloads_off_loop(data) if large else reloads(data):
            await self.storage.save_snapshot(record.id, Snapshot(seq, data, created_at))

    async def update_at(self, record: DocumentRecord, seq: int, progress: Progress | None = None) -> bytes:
        return (await self.state_at(record, seq, progress)).get_update()


def _apply(doc: Doc[Any], data: bytes, seq: int) -> None:
    try:
        doc.apply_update(data)
    except BaseException as exc:
        if not is_native_failure(exc):
            raise
        raise HistoryProblem(500, "history_unreadable", f"replaying the log failed at seq {seq}") from exc


_SERVICES: weakref.WeakKeyDictionary[Hub, HistoryService] = weakref.WeakKeyDictionary()


def history_for(hub: Hub) -> HistoryService:
    """The hub's history service (one per hub: the routes, replays and CLI share its fold cache)."""
    found = _SERVICES.get(hub)
    if found is None:
        found = _SERVICES[hub] = HistoryService(hub)
    return found
