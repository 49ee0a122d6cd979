"""Event-loop stall of one compaction of a ~5 MB document: the snapshot test-load on the loop (before)
vs in the worker process (after). Run: `.venv/bin/python -m benchmarks.compaction_stall`."""

import asyncio
import statistics
import time
from typing import Any

from pycrdt import Array, Doc, Map

from benchmarks.report import environment, loop_stall, table, write_results
from crdt.document import Document
from persistence.base import NewUpdate
from persistence.memory import MemoryStorage
from server.committer import Committer
from server.offload import reloads, reloads_off_loop, shutdown
from server.settings import Settings


def build(maps: int = 55_000) -> Doc:
    doc = Doc()  # ~5 MB of many small structs: 55k maps in an array (cards of a board, rows of a table)
    arr = doc.get("a", type=Array)
    for start in range(0, maps, 5000):
        with doc.transaction():
            for i in range(start, min(maps, start + 5000)):
                arr.append(Map({"x": i, "name": f"user{i}", "pos": [i, i + 1]}))
    return doc


async def main() -> None:
    doc = build()
    document = Document(doc)
    t = time.perf_counter()
    state = document.encode_state()
    encode = time.perf_counter() - t
    t = time.perf_counter()
    assert reloads(state)
    reload = time.perf_counter() - t
    print(
        f"state {len(state) / 1e6:.2f} MB: encode {encode * 1000:.1f} ms, reload check {reload * 1000:.1f} ms"
    )
    assert await reloads_off_loop(state)  # start the worker (spawn) once, as a server does on first use

    rows: list[dict[str, Any]] = []
    for label, offload in (("all on the loop", 1 << 40), ("reload check in the worker", 256 * 1024)):
        stalls = []
        for _ in range(3):
            storage = MemoryStorage()
            record = await storage.create_document("big", time.time())
            settings = Settings(snapshot_min_updates=1, offload_update_size=offload)
            committer = Committer(
                "big", record.id, storage, settings, time.time, document.encode_state, print
            )
            committer.last_seq = await storage.append_updates(record.id, [NewUpdate(state, "u", time.time())])
            stalls.append(await loop_stall(committer.compact))
            assert committer.snapshot_seq == committer.last_seq
        rows.append(
            {
                "mode": label,
                "worst_stall_ms": max(s for s, _ in stalls),
                "compact_wall_ms": statistics.median(w for _, w in stalls),
            }
        )
    shutdown()
    headers = ["mode", "worst loop stall ms (3 runs)", "compaction wall ms (median)"]
    cells = [[r["mode"], round(r["worst_stall_ms"], 1), round(r["compact_wall_ms"], 1)] for r in rows]
    print(table(headers, cells))
    data = {
        "environment": environment(),
        "state_bytes": len(state),
        "encode_ms": encode * 1000,
        "reload_check_ms": reload * 1000,
        "rows": rows,
    }
    print(f"results: {write_results('compaction', data)}")


if __name__ == "__main__":
    asyncio.run(main())
