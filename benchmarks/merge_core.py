"""M2, the merge core in-process: raw pycrdt apply vs cocreate's ingest path, snapshots, compaction."""

from __future__ import annotations

import asyncio
import functools
import gc
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from pycrdt import Doc, Text, merge_updates

from benchmarks.procs import TMP_DIR
from benchmarks.traces import TEXT_NAME, recorded_updates
from benchmarks.wire import UPDATE, sync_message
from crdt.document import Document
from crdt.messages import SyncUpdate, decode_message
from crdt.validation import validate_update
from persistence.base import NewUpdate, Storage
from persistence.factory import open_storage
from persistence.memory import MemoryStorage
from server.frames import message_frame

AUTHOR = "bench:writer"
STAGES = ("decode", "state_vector", "validate", "apply", "frame", "append")


@dataclass
class IngestResult:
    seconds: float
    log_rows: int
    verified: bool
    stages_us: dict[str, float] = field(default_factory=dict)


async def open_sqlite(path: Path) -> Storage:
    """A durable SQLite `Storage` (WAL, synchronous=FULL) through `persistence.factory`."""
    storage = open_storage(f"sqlite+aiosqlite:///{path}")
    await storage.open()
    return storage


async def ingest(
    updates: list[bytes],
    expected_text: str,
    validate: bool = True,
    *,
    storage: Storage | None = None,
    batch: int = 1,
    instrument: bool = False,
) -> IngestResult:
    """Push `updates` through the room's path (see `server.room.Room._apply`); time the whole loop.

    Frames are built before the clock starts. `batch` updates share one `append_updates` call (the
    room's group commit: one per event-loop tick). With `instrument`, each stage is timed separately
    (adds timer overhead; use the plain run for the total).
    """
    store: Storage = storage if storage is not None else MemoryStorage()
    record = await store.create_document(f"bench-{time.monotonic_ns()}", time.time())
    frames = [sync_message(UPDATE, u) for u in updates]
    validator = validate_update if validate else None
    document = Document()
    pending: list[NewUpdate] = []
    stages = dict.fromkeys(STAGES, 0)
    clock = time.perf_counter_ns
    known: dict[int, int] | None = None
    started = time.perf_counter()
    for frame in frames:
        t0 = clock() if instrument else 0
        message = decode_message(frame)
        assert isinstance(message, SyncUpdate)
        update = message.update
        t1 = clock() if instrument else 0
        if validator is not None and known is None:
            known = document.clock_state()  # re-read only after an overlapping apply, as the room does
        ts = clock() if instrument else 0
        summary = validator(update, known_state=known) if validator is not None else None
        t2 = clock() if instrument else 0
        if summary is not None and known is not None:  # the room's path: `Document.integrate`
            delta, exact = document.integrate(update, summary, known)
            if not exact:
                known = None
        else:
            delta = document.apply(update)
        t3 = clock() if instrument else 0
        if delta:
            message_frame(SyncUpdate(delta))
            t4 = clock() if instrument else 0
            pending.append(NewUpdate(delta, AUTHOR, time.time()))
            if len(pending) >= batch:
                await store.append_updates(record.id, pending)
                pending = []
        else:
            t4 = t3
        if instrument:
            t5 = clock()
            marks = (t0, t1, ts, t2, t3, t4, t5)
            for name, begin, end in zip(STAGES, marks[:-1], marks[1:], strict=True):
                stages[name] += end - begin
    if pending:
        await store.append_updates(record.id, pending)
    seconds = time.perf_counter() - started
    text = str(document.doc.get(TEXT_NAME, type=Text))
    rows = await store.read_updates(record.id, after_seq=0)
    replay = Document()
    for row in rows:
        replay.doc.apply_update(row.data)
    verified = text == expected_text and str(replay.doc.get(TEXT_NAME, type=Text)) == expected_text
    document.close()
    replay.close()
    count = max(1, len(updates))
    stages_us = {name: round(ns / count / 1e3, 3) for name, ns in stages.items()} if instrument else {}
    return IngestResult(seconds, len(rows), verified, stages_us)


FULL_TRACES = (
    "automerge-paper",
    "seph-blog1",
    "rustcode",
    "sveltecomponent",
    "json-crdt-patch",
    "json-crdt-blog-post",
    "friendsforever_flat",
    "clownschool_flat",
)
RATIO_TARGET = 3.0


@dataclass(frozen=True)
class MergeConfig:
    traces: tuple[str, ...] = FULL_TRACES
    limit: int | None = None  # first N patches of each trace
    repeat: int = 3  # timed repetitions; the median is reported
    sqlite_updates: int = 20_000  # durable SQLite ingest is capped at this many updates
    sqlite_batch: int = 64  # updates per committed transaction (the room's group commit)
    compaction_trace: str = "automerge-paper"
    merge_sizes: tuple[int, ...] = (1_000, 5_000, 20_000)
    merge_budget_s: float = 60.0  # stop growing the merge size once merging took a quarter of this

    @staticmethod
    def quick() -> MergeConfig:
        return MergeConfig(
            traces=("sveltecomponent",),
            limit=3000,
            repeat=1,
            sqlite_updates=1000,
            compaction_trace="sveltecomponent",
            merge_sizes=(500, 2000),
        )


def _timed(body: Callable[[], Any], repeat: int) -> tuple[float, Any]:
    """Median seconds of `repeat` runs of `body` (gc collected before each), and the last result."""
    times: list[float] = []
    result: Any = None
    for _ in range(max(1, repeat)):
        gc.collect()
        started = time.perf_counter()
        result = body()
        times.append(time.perf_counter() - started)
    return statistics.median(times), result


def raw_apply(updates: list[bytes]) -> Doc[Any]:
    doc: Doc[Any] = Doc()
    apply = doc.apply_update
    for update in updates:
        apply(update)
    return doc


def _apply_encode(updates: list[bytes]) -> bytes:
    return raw_apply(updates).get_update()


def _text(doc: Doc[Any]) -> str:
    return str(doc.get(TEXT_NAME, type=Text))


def snapshot_costs(doc: Doc[Any], expected: str, repeat: int) -> dict[str, Any]:
    """Encode the full state (a snapshot) and load it into a fresh document."""
    encode_s, state = _timed(doc.get_update, max(3, repeat))

    def load() -> Doc[Any]:
        fresh: Doc[Any] = Doc()
        fresh.apply_update(state)
        return fresh

    load_s, loaded = _timed(load, max(3, repeat))
    return {
        "bytes": len(state),
        "encode_ms": round(encode_s * 1e3, 3),
        "load_ms": round(load_s * 1e3, 3),
        "verified": _text(loaded) == expected,
    }


def compaction(updates: list[bytes], sizes: tuple[int, ...], budget_s: float) -> list[dict[str, Any]]:
    """`merge_updates` of the first n updates vs applying them to a document and encoding its state."""
    rows: list[dict[str, Any]] = []
    for n in sizes:
        part = updates[:n]
        gc.collect()
        started = time.perf_counter()
        merged = merge_updates(*part)
        merge_s = time.perf_counter() - started
        apply_encode_s, encoded = _timed(functools.partial(_apply_encode, part), 1)
        same = _text(raw_apply([merged])) == _text(raw_apply([encoded]))
        rows.append(
            {
                "updates": len(part),
                "merge_s": round(merge_s, 4),
                "apply_encode_s": round(apply_encode_s, 4),
                "merge_over_apply": round(merge_s / max(1e-9, apply_encode_s), 1),
                "merged_bytes": len(merged),
                "encoded_bytes": len(encoded),
                "same_text": same,
            }
        )
        if merge_s > budget_s / 4 or len(part) < n:
            break
    return rows


def _ingest_row(result: IngestResult, raw_s: float, count: int) -> dict[str, Any]:
    return {
        "updates": count,
        "seconds": round(result.seconds, 4),
        "us_per_update": round(result.seconds / max(1, count) * 1e6, 2),
        "ratio_vs_raw_apply": round(result.seconds / max(1e-9, raw_s), 2),
        "stages_us_per_update": result.stages_us,
        "log_rows": result.log_rows,
        "verified": result.verified,
    }


def bench_trace(name: str, cfg: MergeConfig, sqlite_dir: Path) -> dict[str, Any]:
    """Every merge-core measurement on one trace."""
    trace, recorded = recorded_updates(name, cfg.limit)
    updates = recorded.updates
    raw_s, doc = _timed(lambda: raw_apply(updates), cfg.repeat)
    row: dict[str, Any] = {
        "trace": name,
        "updates": len(updates),
        "update_bytes": sum(map(len, updates)),
        "final_chars": len(trace.end_content),
        "record_s": round(recorded.seconds, 3),
        "raw_apply_s": round(raw_s, 4),
        "raw_apply_us_per_update": round(raw_s / max(1, len(updates)) * 1e6, 2),
        "raw_verified": _text(doc) == trace.end_content,
        "validator": True,
    }
    validate = row["validator"]
    plain_s, plain = _timed(lambda: asyncio.run(ingest(updates, trace.end_content, validate)), cfg.repeat)
    staged = asyncio.run(ingest(updates, trace.end_content, validate, instrument=True))
    memory = _ingest_row(plain, raw_s, len(updates))
    memory["seconds"] = round(plain_s, 4)
    memory["us_per_update"] = round(plain_s / max(1, len(updates)) * 1e6, 2)
    memory["ratio_vs_raw_apply"] = round(plain_s / max(1e-9, raw_s), 2)
    memory["stages_us_per_update"] = staged.stages_us
    row["ingest_memory"] = memory
    row["ingest_sqlite"] = _sqlite_row(updates, trace.end_content, cfg, sqlite_dir, raw_s, validate)
    row["snapshot"] = snapshot_costs(doc, trace.end_content, cfg.repeat)
    row["verified"] = bool(
        row["raw_verified"]
        and memory["verified"]
        and row["snapshot"]["verified"]
        and row["ingest_sqlite"].get("verified", True)
    )
    return row


def _sqlite_row(
    updates: list[bytes], expected: str, cfg: MergeConfig, sqlite_dir: Path, raw_s: float, validate: bool
) -> dict[str, Any]:
    part = updates[: cfg.sqlite_updates]
    capped = len(part) < len(updates)
    expected_text = _text(raw_apply(part)) if capped else expected
    path = sqlite_dir / f"ingest-{len(part)}.db"

    async def run() -> IngestResult:
        storage = await open_sqlite(path)
        try:
            return await ingest(part, expected_text, validate, storage=storage, batch=cfg.sqlite_batch)
        finally:
            await storage.close()

    result = asyncio.run(run())
    raw_part_s = raw_s * len(part) / max(1, len(updates))
    row = _ingest_row(result, raw_part_s, len(part))
    row |= {"batch": cfg.sqlite_batch, "capped": capped, "durable": "WAL, synchronous=FULL (per engine.py)"}
    return row


def run_merge(cfg: MergeConfig) -> dict[str, Any]:
    TMP_DIR.mkdir(parents=True, exist_ok=True)
    sqlite_dir = Path(tempfile.mkdtemp(dir=TMP_DIR, prefix="merge-sqlite-"))
    try:
        rows = [bench_trace(name, cfg, sqlite_dir) for name in cfg.traces]
    finally:
        shutil.rmtree(sqlite_dir, ignore_errors=True)
    _, recorded = recorded_updates(cfg.compaction_trace, cfg.limit)
    merges = compaction(recorded.updates, cfg.merge_sizes, cfg.merge_budget_s)
    notes: list[str] = []
    return {
        "benchmark": "merge_core",
        "config": asdict(cfg),
        "ratio_target": RATIO_TARGET,
        "traces": rows,
        "compaction": {"trace": cfg.compaction_trace, "rows": merges},
        "notes": notes,
        "verified": all(r["verified"] for r in rows) and all(m["same_text"] for m in merges),
    }
