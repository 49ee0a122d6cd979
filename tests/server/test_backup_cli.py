"""`cocreate backup` / `restore-backup` / `new-epochs` against a real server on a SQLite file: a backup taken
live, edits after it held by clients, a restore; clients from the lost future are refused (4404)."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from pycrdt import Doc, Text
from websockets.asyncio.client import connect as ws_connect
from websockets.exceptions import ConnectionClosed

from client.client import connect
from crdt.messages import SyncStep1, encode_message
from crdt.sync import Role, SyncSession, UpdateReceived
from server.epochs import CLOSE_DOCUMENT_GONE, STALE_REASON
from tests.support.server_process import ROOT, running_server

pytestmark = pytest.mark.timeout(90)

DOC = "team/minutes"


def cocreate(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "server.cli", *args], cwd=ROOT, capture_output=True, text=True, timeout=60
    )


def text_of(doc: Doc[Any]) -> str:
    return str(doc.get("t", type=Text))


def live_epochs(path: Path) -> dict[str, str]:
    with contextlib.closing(sqlite3.connect(path)) as db:
        return dict(db.execute("SELECT name, epoch FROM documents WHERE deleted_at IS NULL").fetchall())


async def stock_client(url: str, state_vector: bytes) -> tuple[int | None, str | None]:
    """A y-websocket client without epochs (no ?acks) sends its SyncStep1: (None, None) when the
    server answers with its step 2, else the close code and reason."""
    session = SyncSession(Role.CLIENT)
    async with ws_connect(url, open_timeout=10) as ws:
        await ws.send(encode_message(SyncStep1(state_vector)))
        with contextlib.suppress(ConnectionClosed):
            async with asyncio.timeout(10):
                async for frame in ws:
                    event = session.receive_data(frame if isinstance(frame, bytes) else frame.encode())
                    if isinstance(event, UpdateReceived) and event.is_step2:
                        return None, None
        return ws.close_code, ws.close_reason


async def test_restore_refuses_clients_holding_edits_made_after_the_backup(tmp_path: Path) -> None:
    database = tmp_path / "cocreate.db"
    url = f"sqlite+aiosqlite:///{database}"
    backup = tmp_path / "backup.db"
    with running_server(tmp_path, url) as server:
        other = Doc()
        async with connect(server.ws("team/other"), other, max_backoff=0.2) as untouched:
            other.get("t", type=Text).insert(0, "another document")
            await untouched.flushed()
        held: Doc[Any] = Doc()
        text = held.get("t", type=Text)
        async with connect(server.ws(DOC), held, max_backoff=0.2) as holder:
            text.insert(0, "agreed before the backup.")
            await holder.flushed()
            made = cocreate("backup", str(backup), "--db", url)  # online, while the server runs
            assert made.returncode == 0, made.stderr
            assert "backed up" in made.stdout and backup.stat().st_size > 0
            again = cocreate("backup", str(backup), "--db", url)
            assert again.returncode == 1 and "refusing to overwrite" in again.stderr

            text.insert(len(text_of(held)), " Changed after it.")
            await holder.flushed()  # committed, then lost by the restore: the holder keeps it
            before = live_epochs(database)
            refused = cocreate("restore-backup", str(backup), "--db", url)
            assert refused.returncode == 1 and "in use" in refused.stderr, refused.stderr
            assert live_epochs(database) == before  # nothing changed while the server held it

            server.stop()
            restored = cocreate("restore-backup", str(backup), "--db", url)
            assert restored.returncode == 0, restored.stderr
            assert "gave 2 documents a new epoch" in restored.stdout
            after = live_epochs(database)
            assert after.keys() == before.keys() and not set(after.values()) & set(before.values())

            server.start()  # same port: the holder reconnects with ?epoch=<old> and is refused
            await holder.wait_closed(timeout=20)
            assert holder.closed_reason is not None and f"{CLOSE_DOCUMENT_GONE}" in holder.closed_reason
        assert text_of(held) == "agreed before the backup. Changed after it."

        # A stock client (no epoch) holding the same state is recognised by its clocks.
        code, reason = await stock_client(server.ws(DOC), held.get_state())
        assert (code, reason) == (CLOSE_DOCUMENT_GONE, STALE_REASON)

        fresh: Doc[Any] = Doc()
        async with connect(server.ws(DOC), fresh, reconnect=False) as reader:
            assert text_of(fresh) == "agreed before the backup."
            fresh.get("t", type=Text).insert(0, "New: ")  # the restored document takes new edits
            await reader.flushed()
        later: Doc[Any] = Doc()
        async with connect(server.ws(DOC), later, reconnect=False):
            assert text_of(later) == "New: agreed before the backup."
        # nothing was lost in the other document: its clients hold no more than the restored clocks
        assert await stock_client(server.ws("team/other"), other.get_state()) == (None, None)

    history = cocreate("export", DOC, "--at", "1", "--db", url)  # the log is the restored one
    assert (history.returncode, history.stdout) == (0, "agreed before the backup."), history.stderr


async def test_backup_and_restore_of_postgres_point_to_pg_dump(tmp_path: Path) -> None:
    url = "postgresql+asyncpg://nobody@127.0.0.1:9/none"
    for command in (["backup", str(tmp_path / "out.db")], ["restore-backup", str(tmp_path / "in.db")]):
        result = cocreate(*command, "--db", url)
        assert result.returncode == 1 and "pg_dump" in result.stderr, result.stderr
    assert not (tmp_path / "out.db").exists()


def test_restore_of_a_missing_or_foreign_file_changes_nothing(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'cocreate.db'}"
    missing = cocreate("restore-backup", str(tmp_path / "nope.db"), "--db", url)
    assert missing.returncode == 1 and "no backup at" in missing.stderr
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"not a database at all" * 100)
    foreign = cocreate("restore-backup", str(junk), "--db", url)
    assert foreign.returncode == 1 and "not a SQLite database" in foreign.stderr, foreign.stderr
