"""A storage outage end to end: a real server on a real PostgreSQL that is stopped and restarted
under a connected Python client. Unsaved edits are never acknowledged, the room closes 1013 with a
storage reason, the client keeps its edits and saves them once the database is back, exactly once."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from pycrdt import Doc, Text
from websockets.asyncio.client import connect as ws_connect
from websockets.exceptions import ConnectionClosed

from client.client import connect
from tests.persistence.pg_server import PostgresServer, create_database
from tests.support.server_process import running_server
from tests.support.services import own_postgres

pytestmark = [pytest.mark.postgres, pytest.mark.timeout(120)]

DOC = "outage/notes"
NO_ACK_WINDOW = 1.5  # seconds the unsaved edit must stay unacknowledged while PostgreSQL is down


@pytest.fixture(scope="module")
def postgres() -> Iterator[PostgresServer]:
    """A PostgreSQL server of our own (the test stops it); skipped without binaries unless CI=true."""
    yield from own_postgres()


def text_of(doc: Doc[Any]) -> str:
    return str(doc.get("t", type=Text))


async def close_of(ws: Any) -> tuple[int | None, str | None]:
    """Read (and drop) frames until the server closes the socket."""
    with contextlib.suppress(ConnectionClosed):
        async with asyncio.timeout(30):
            async for _frame in ws:
                pass
    return ws.close_code, ws.close_reason


async def test_an_outage_loses_nothing_and_duplicates_nothing(
    postgres: PostgresServer, tmp_path: Path
) -> None:
    url = await create_database(postgres)
    with running_server(tmp_path, url) as server:
        doc: Doc[Any] = Doc()
        text = doc.get("t", type=Text)
        async with (
            connect(server.ws(DOC), doc, max_backoff=0.2) as client,
            ws_connect(server.ws(DOC), open_timeout=10) as observer,  # sees the room's close
        ):
            text.insert(0, "saved before.")
            await client.flushed()
            connections = client.connections

            await asyncio.to_thread(postgres.stop)
            try:
                text.insert(len(text_of(doc)), " typed during.")
                code, reason = await close_of(observer)
                assert (code, reason) == (1013, "storage unavailable, your edits were not saved; retry")
                with pytest.raises(TimeoutError):
                    await client.flushed(timeout=NO_ACK_WINDOW)  # never acknowledged while down
                assert client.has_unsaved_changes
                assert text_of(doc) == "saved before. typed during."  # the client keeps its edit
            finally:
                await asyncio.to_thread(postgres.start)
            started = time.monotonic()
            await client.flushed(timeout=30)  # reconnected, resent, committed, acknowledged
            print(f"saved {time.monotonic() - started:.2f} s after PostgreSQL was back")
            assert client.connections > connections
            text.insert(len(text_of(doc)), " typed after.")
            await client.flushed()

        fresh: Doc[Any] = Doc()
        async with connect(server.ws(DOC), fresh, reconnect=False):
            assert text_of(fresh) == "saved before. typed during. typed after."
    with running_server(tmp_path, url) as restarted:  # and from the log alone, after a restart
        replayed: Doc[Any] = Doc()
        async with connect(restarted.ws(DOC), replayed, reconnect=False):
            assert text_of(replayed) == "saved before. typed during. typed after."
    # each edit was committed once: the failed commit wrote nothing, the resend was logged once
    counts = await log_rows_holding(postgres, url, [b"saved before.", b" typed during.", b" typed after."])
    assert counts == [1, 1, 1]


async def log_rows_holding(postgres: PostgresServer, url: str, needles: list[bytes]) -> list[int]:
    """For each byte string, how many update-log rows contain it."""
    conn = await asyncpg.connect(postgres.dsn(url.rsplit("/", 1)[1]))
    try:
        rows = [bytes(r["data"]) for r in await conn.fetch("SELECT data FROM updates")]
    finally:
        await conn.close()
    return [sum(needle in row for row in rows) for needle in needles]
