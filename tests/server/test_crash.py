"""Kill -9 under load: every acknowledged edit survives, nothing is duplicated, the log replays exactly."""

from __future__ import annotations

import asyncio
import random
from pathlib import Path
from typing import Any

import pytest
from pycrdt import Array, Doc

from client import Client, connect
from persistence.factory import open_storage
from tests.support.http import request
from tests.support.server_process import ServerProcess

WRITERS = 3
BATCH = 5


class Writer:
    """Appends unique tokens in small batches; a batch counts as acknowledged once `flushed()` returns."""

    def __init__(self, number: int, client: Client, doc: Doc[Any]) -> None:
        self.number = number
        self.client = client
        self.items = doc.get("log", type=Array)
        self.acked: list[str] = []
        self.sent = 0
        self.progress = asyncio.Event()

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            batch = [f"w{self.number}-{self.sent + i}" for i in range(BATCH)]
            for token in batch:
                self.items.append(token)
            self.sent += BATCH
            try:
                await self.client.flushed(timeout=60)
            except TimeoutError:
                continue
            self.acked.extend(batch)
            self.progress.set()


async def served_tokens(server: ServerProcess, name: str) -> list[str]:
    probe: Doc[Any] = Doc()
    async with connect(server.ws(name), probe, reconnect=False):
        return [str(t) for t in probe.get("log", type=Array).to_py() or []]


@pytest.mark.timeout(600)
async def test_sigkill_at_random_moments_loses_no_acknowledged_edit(
    tmp_path: Path, request_cycles: int
) -> None:
    db_url = f"sqlite+aiosqlite:///{tmp_path / 'crash.db'}"
    server = ServerProcess(db_url=db_url, data_dir=tmp_path).start()
    name = "crash/doc"
    rng = random.Random(1234)
    docs: list[Doc[Any]] = [Doc() for _ in range(WRITERS)]
    stop = asyncio.Event()
    try:
        async with (
            connect(server.ws(name), docs[0], max_backoff=0.3) as c0,
            connect(server.ws(name), docs[1], max_backoff=0.3) as c1,
            connect(server.ws(name), docs[2], max_backoff=0.3) as c2,
        ):
            writers = [Writer(i, c, d) for i, (c, d) in enumerate(zip((c0, c1, c2), docs, strict=True))]
            tasks = [asyncio.create_task(w.run(stop)) for w in writers]
            for _cycle in range(request_cycles):
                target = sum(len(w.acked) for w in writers) + rng.randint(1, 6) * BATCH
                async with asyncio.timeout(60):
                    while sum(len(w.acked) for w in writers) < target:
                        for w in writers:
                            w.progress.clear()
                        waiters = [asyncio.create_task(w.progress.wait()) for w in writers]
                        await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
                        for waiter in waiters:
                            waiter.cancel()
                await asyncio.sleep(rng.uniform(0, 0.01))  # a random moment, mid-stream
                server.kill()
                server.start()
                acked = [t for w in writers for t in w.acked]
                served = await served_tokens(server, name)
                assert len(served) == len(set(served)), "duplicated content after a restart"
                missing = set(acked) - set(served)
                assert not missing, f"acknowledged edits lost: {sorted(missing)[:10]}"
            stop.set()
            await asyncio.gather(*tasks)
            for client in (c0, c1, c2):
                await client.flushed(timeout=60)
        served_update = request(server.port, "GET", f"/api/documents/{name}/-/content?format=update").body
    finally:
        server.stop()
    # Replaying the log from sequence 1 reproduces exactly the served state.
    storage = open_storage(db_url)
    await storage.open()
    try:
        record = await storage.get_document(name)
        assert record is not None
        replay: Doc[Any] = Doc()
        for seq, row in enumerate(await storage.read_updates(record.id), 1):
            assert row.seq == seq, "gap in the log"
            replay.apply_update(row.data)
    finally:
        await storage.close()
    served_doc: Doc[Any] = Doc()
    served_doc.apply_update(served_update)
    replayed = replay.get("log", type=Array).to_py()
    assert replayed == served_doc.get("log", type=Array).to_py()
    total_acked = [t for w in writers for t in w.acked]
    assert set(total_acked) <= set(replayed) and len(replayed) == len(set(replayed))
