"""Durability costs: ack latency, durable trace ingest and cold load, per backend, beside durability off.

`python -m benchmarks.durability [--quick] [--no-postgres]`. In-process through the real `Room` and
its committer (no sockets, so the numbers isolate the durable path): memory (durability off),
SQLite (WAL, synchronous=FULL) and PostgreSQL (synchronous_commit=on, a throwaway local cluster).
- ack latency: one writer submits keystroke updates one at a time while 10 background writers keep
  the room busy (about the fan-out benchmark's typing load); time from submit to the commit ack.
- ingest: the automerge-paper trace submitted as fast as acknowledged (windowed); verified against
  the trace's final text; ratio to raw pycrdt `apply_update` of the same updates in the same run.
- cold load: the document's snapshot + log tail loaded into a fresh process-local document, p50.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pycrdt import Doc, Text

from benchmarks.report import environment, latency_summary, table, write_results
from benchmarks.traces import TEXT_NAME, recorded_updates
from crdt.messages import Ack, SyncUpdate, decode_message, encode_message
from crdt.sync import Role, SyncSession, UpdateReceived
from persistence.base import Storage
from persistence.factory import open_storage
from server.loading import load_state
from server.room import Room
from server.settings import Settings


class BenchPeer:
    """A socket-free peer: records acknowledgements and wakes waiters."""

    prefix = b""
    expected_epoch = None

    def __init__(self, number: int) -> None:
        self.id = 10_000 + number
        self.author = f"bench{number}"
        self.session = SyncSession(Role.SERVER, acks=True)
        self.acked = 0
        self.changed = asyncio.Event()

    @property
    def open(self) -> bool:
        return True

    def write_frame(self, frame: bytes) -> None:
        pass

    def flush(self) -> None:
        for payload in self.session.data_to_send():
            message = decode_message(payload)
            if isinstance(message, Ack):
                self.acked = message.count
                self.changed.set()

    def close(self, code: int, reason: str) -> None:
        raise RuntimeError(f"benchmark peer closed: {code} {reason}")

    def processed(self, nbytes: int) -> None:
        pass

    def submit(self, room: Room, update: bytes) -> int:
        event = self.session.receive_data(encode_message_update(update))
        assert isinstance(event, UpdateReceived)
        room.submit(self, event, len(update))
        return event.index

    async def wait_acked(self, index: int) -> None:
        while self.acked < index:
            self.changed.clear()
            await self.changed.wait()


def encode_message_update(update: bytes) -> bytes:
    return encode_message(SyncUpdate(update))


def keystrokes(count: int, seed: str) -> list[bytes]:
    doc: Doc[Any] = Doc()
    updates: list[bytes] = []
    doc.observe(lambda event: updates.append(event.update))
    text = doc.get(f"t-{seed}", type=Text)
    for i in range(count):
        text.insert(i, seed[i % len(seed)])
    return updates


async def ack_latency(storage: Storage, name: str, samples: int) -> dict[str, Any]:
    room = Room(name, storage, Settings(), time.time)
    task = asyncio.create_task(room.run())
    writer, background = BenchPeer(0), [BenchPeer(i) for i in range(1, 11)]
    for peer in (writer, *background):
        room.join(peer)
    stop = asyncio.Event()

    async def type_slowly(peer: BenchPeer) -> None:  # ~20 keystrokes/s each
        for update in keystrokes(10_000, f"bg{peer.id}"):
            if stop.is_set():
                return
            peer.submit(room, update)
            await asyncio.sleep(0.05)

    typists = [asyncio.create_task(type_slowly(p)) for p in background]
    latencies = []
    for update in keystrokes(samples, "writer"):
        started = time.perf_counter()
        await writer.wait_acked(writer.submit(room, update))
        latencies.append((time.perf_counter() - started) * 1000)
    stop.set()
    await asyncio.gather(*typists)
    for peer in (writer, *background):
        room.leave(peer)
    await asyncio.wait_for(task, 30)
    return latency_summary(latencies)


async def ingest(storage: Storage, name: str, updates: list[bytes], window: int = 256) -> float:
    room = Room(name, storage, Settings(message_rate=0), time.time)
    task = asyncio.create_task(room.run())
    peer = BenchPeer(99)
    room.join(peer)
    started = time.perf_counter()
    for i, update in enumerate(updates, 1):
        peer.submit(room, update)
        if i - peer.acked > window:
            await peer.wait_acked(i - window)
    await peer.wait_acked(len(updates))
    seconds = time.perf_counter() - started
    room.leave(peer)
    await asyncio.wait_for(task, 60)
    return seconds


async def cold_load(storage: Storage, name: str, runs: int) -> tuple[dict[str, Any], str]:
    record = await storage.get_document(name)
    assert record is not None
    times, text = [], ""
    for _ in range(runs):
        started = time.perf_counter()
        state = await load_state(storage, record.id)
        times.append((time.perf_counter() - started) * 1000)
        text = str(state.document.doc.get(TEXT_NAME, type=Text))
    return latency_summary(times), text


async def run_backend(label: str, url: str, updates: list[bytes], final: str, quick: bool) -> dict[str, Any]:
    storage = open_storage(url)
    await storage.open()
    try:
        acks = await ack_latency(storage, "acks", 200 if quick else 1000)
        seconds = await ingest(storage, "trace", updates)
        load, text = await cold_load(storage, "trace", 5 if quick else 20)
    finally:
        await storage.close()
    if text != final:
        raise AssertionError(f"{label}: the ingested document differs from the trace's final text")
    return {"backend": label, "ack": acks, "ingest_seconds": seconds, "cold_load": load}


def raw_apply_seconds(updates: list[bytes]) -> float:
    doc: Doc[Any] = Doc()
    started = time.perf_counter()
    for update in updates:
        doc.apply_update(update)
    return time.perf_counter() - started


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    limit = 20_000 if args.quick else None
    trace, recorded = recorded_updates("automerge-paper", limit)
    updates, final = recorded.updates, recorded.final_text
    raw = statistics.median(raw_apply_seconds(updates) for _ in range(3))
    backends: list[tuple[str, str, Callable[[], None] | None]] = []
    folder = Path(tempfile.mkdtemp(prefix="cocreate-durability-"))
    backends.append(("memory (durability off)", "memory://", None))
    backends.append(("sqlite", f"sqlite+aiosqlite:///{folder / 'bench.db'}", None))
    if not args.no_postgres:
        from tests.persistence.pg_server import start_postgres

        url, stop = start_postgres("bench")
        backends.append(("postgresql", url, stop))
    rows = []
    try:
        for label, url, _ in backends:
            rows.append(await run_backend(label, url, updates, final, args.quick))
    finally:
        for _, _, stop_server in backends:
            if stop_server is not None:
                stop_server()
    for row in rows:
        row["ingest_per_update_us"] = row["ingest_seconds"] / len(updates) * 1e6
        row["ingest_vs_raw_apply"] = row["ingest_seconds"] / raw
    return {"trace": trace.name, "updates": len(updates), "raw_apply_seconds": raw, "rows": rows}


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.durability", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="20k trace updates, fewer samples")
    parser.add_argument("--no-postgres", action="store_true", help="skip the PostgreSQL backend")
    args = parser.parse_args()
    result = asyncio.run(main_async(args))
    headers = ["backend", "ack p50 ms", "ack p99 ms", "ingest s", "µs/update", "x raw apply", "cold p50 ms"]
    lines = [
        [r["backend"], r["ack"]["p50_ms"], r["ack"]["p99_ms"], round(r["ingest_seconds"], 2),
         round(r["ingest_per_update_us"], 1), round(r["ingest_vs_raw_apply"], 1), r["cold_load"]["p50_ms"]]
        for r in result["rows"]
    ]  # fmt: skip
    print(f"{result['trace']}: {result['updates']} updates, raw apply {result['raw_apply_seconds']:.2f} s")
    print(table(headers, lines))
    path = write_results("durability", {"environment": environment(), **result})
    print(f"results: {path}")


if __name__ == "__main__":
    main()
