"""Kill -9 under load: every acknowledged edit survives, nothing is duplicated, the log replays exactly."""

from __future__ import annotations

import asyncio
import random
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from pycrdt import Array, Doc

from client import Client, connect
from crdt.document import decode_state_vector
from persistence.sql.tables import documents, updates
from tests.support.http import request
from tests.support.server_process import ServerProcess

WRITERS = 3
BATCH = 5


class Writer:
    """Appends unique tokens in small batches; a batch counts as acknowledged once `flushed()` returns.

    While `go` is clear the writer stops between batches and sets `parked` (the log can be checked)."""

    def __init__(self, number: int, client: Client, doc: Doc[Any]) -> None:
        self.number = number
        self.client = client
        self.items = doc.get("log", type=Array)
        self.acked: list[str] = []
        self.sent = 0
        self.progress = asyncio.Event()
        self.go = asyncio.Event()
        self.go.set()
        self.parked = asyncio.Event()

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            if not self.go.is_set():
                self.parked.set()
                await self.go.wait()
                self.parked.clear()
                continue
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


def read_log(db_path: Path, name: str) -> list[tuple[int, bytes]]:
    """The document's log rows (seq, update), read through a read-only connection to the database
    while the server runs (WAL mode lets it read the committed state beside the writer)."""
    connection = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, timeout=10)
    try:
        found = connection.execute(
            f"SELECT {documents.c.id.name} FROM {documents.name}"
            f" WHERE {documents.c.name.name} = ? AND {documents.c.deleted_at.name} IS NULL",
            (name,),
        ).fetchone()
        assert found is not None, f"no live document {name!r} in the database"
        rows = connection.execute(
            f"SELECT {updates.c.seq.name}, {updates.c.data.name} FROM {updates.name}"
            f" WHERE {updates.c.document_id.name} = ? ORDER BY {updates.c.seq.name}",
            (found[0],),
        ).fetchall()
    finally:
        connection.close()
    return [(int(seq), bytes(data)) for seq, data in rows]


async def assert_log_replays_to_served_state(
    server: ServerProcess, db_path: Path, name: str, writers: list[Writer]
) -> None:
    """Park the writers once everything they sent is acknowledged, then check that replaying the
    whole log from sequence 1 into a fresh document gives exactly the state the server serves."""
    for writer in writers:
        writer.go.clear()
    async with asyncio.timeout(60):
        for writer in writers:
            await writer.parked.wait()
            await writer.client.flushed(timeout=60)
    try:
        reply = request(server.port, "GET", f"/api/documents/{name}/-/content?format=update")
        assert reply.status == 200
        served: Doc[Any] = Doc()
        served.apply_update(reply.body)
        rows = read_log(db_path, name)
        assert [seq for seq, _ in rows] == list(range(1, len(rows) + 1)), "gap in the log"
        assert int(reply.headers["x-cocreate-seq"]) == len(rows), "served state is not at the log's end"
        replay: Doc[Any] = Doc()
        for _, data in rows:
            replay.apply_update(data)
        assert decode_state_vector(replay.get_state()) == decode_state_vector(served.get_state()), (
            "log replay and served state differ"
        )
        assert replay.get("log", type=Array).to_py() == served.get("log", type=Array).to_py()
        assert sorted(root for root, _ in replay.items()) == sorted(root for root, _ in served.items())
    finally:
        for writer in writers:
            writer.go.set()


@pytest.mark.timeout(600)
async def test_sigkill_at_random_moments_loses_no_acknowledged_edit(
    tmp_path: Path, request_cycles: int
) -> None:
    db_path = tmp_path / "crash.db"
    db_url = f"sqlite+aiosqlite:///{db_path}"
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
                # Replaying the log from sequence 1 reproduces exactly the served state, every time.
                await assert_log_replays_to_served_state(server, db_path, name, writers)
            stop.set()
            for w in writers:
                w.go.set()
            await asyncio.gather(*tasks)
            for client in (c0, c1, c2):
                await client.flushed(timeout=60)
            await assert_log_replays_to_served_state(server, db_path, name, [])
            served_final = await served_tokens(server, name)
    finally:
        server.stop()
    total_acked = [t for w in writers for t in w.acked]
    assert set(total_acked) <= set(served_final) and len(served_final) == len(set(served_final))
