"""Timings of the SQL backend (not a test): `python -m tests.persistence.bench_sql [--postgres]`.

Appends 1,000 single updates one per transaction and in batches of 50 (every commit durable:
WAL + synchronous=FULL), then reads a 260,000-row log in one call and in pages of 10,000.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import time
from pathlib import Path

from persistence.base import NewUpdate
from persistence.sql import SqlStorage

ROWS = 260_000


async def bench(url: str) -> dict[str, float]:
    storage = SqlStorage(url)
    await storage.open()
    figures: dict[str, float] = {}
    try:
        for batch in (1, 50):
            doc = await storage.create_document(f"append-{batch}", time.time())
            updates = [NewUpdate(os.urandom(24), "bench", time.time()) for _ in range(1000)]
            started = time.perf_counter()
            for start in range(0, 1000, batch):
                await storage.append_updates(doc.id, updates[start : start + batch])
            figures[f"append 1000 updates, batches of {batch} (ms)"] = (time.perf_counter() - started) * 1e3

        doc = await storage.create_document("big-log", time.time())
        started = time.perf_counter()
        for _ in range(ROWS // 2000):
            await storage.append_updates(doc.id, [NewUpdate(os.urandom(24), "bench", 0.0)] * 2000)
        figures[f"write {ROWS} rows in batches of 2000 (s)"] = time.perf_counter() - started

        started = time.perf_counter()
        rows = await storage.read_updates(doc.id)
        figures[f"read {ROWS} rows in one call (s)"] = time.perf_counter() - started
        assert len(rows) == ROWS
        del rows

        started = time.perf_counter()
        count, after = 0, 0
        while page := await storage.read_updates(doc.id, after_seq=after, limit=10_000):
            count += len(page)
            after = page[-1].seq
        figures[f"read {ROWS} rows in pages of 10000 (s)"] = time.perf_counter() - started
        assert count == ROWS

        started = time.perf_counter()
        for after in range(0, ROWS, ROWS // 100):
            await storage.read_updates(doc.id, after_seq=after, limit=50)
        figures["100 random-offset reads of 50 rows (ms)"] = (time.perf_counter() - started) * 1e3
    finally:
        await storage.close()
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--postgres", action="store_true", help="also run on a throwaway PostgreSQL")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        results = {"sqlite": asyncio.run(bench(f"sqlite+aiosqlite:///{Path(folder) / 'bench.db'}"))}
    if args.postgres:
        from tests.persistence.pg_server import start_postgres

        url, stop = start_postgres()
        try:
            results["postgres"] = asyncio.run(bench(url))
        finally:
            stop()
    for backend, figures in results.items():
        for name, value in figures.items():
            print(f"{backend:9} {name:48} {value:10.2f}")


if __name__ == "__main__":
    main()
