"""Kill -9 between a broadcast and its commit, in token mode: the relay of the lost edit is not closed."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path
from typing import Any

from pycrdt import Doc, Text

from client import connect
from server.auth import Role
from server.tokens import issue
from tests.support.server_process import ServerProcess

SECRET = "claims-crash-secret-0123456789abcdef"
DOC = "team/crash"


def url(server: ServerProcess, user: str) -> str:
    token = issue(user, user.title(), {"*": Role.EDITOR}, now=time.time(), ttl=600, secret=SECRET)
    return server.ws(DOC, f"token={token}")


async def test_a_relay_of_an_edit_lost_in_a_crash_is_not_closed(tmp_path: Path) -> None:
    db = tmp_path / "cocreate.db"
    server = ServerProcess(f"sqlite+aiosqlite:///{db}", tmp_path, ["--secret", SECRET]).start()
    try:
        ana_doc: Doc[Any] = Doc(client_id=4242)
        bo_doc: Doc[Any] = Doc(client_id=77)
        async with (
            connect(url(server, "ana"), ana_doc, reconnect=False) as ana,
            connect(url(server, "bo"), bo_doc, reconnect=False) as bo,
        ):
            ana_doc.get("t", type=Text).insert(0, "x")
            bo_doc.get("notes", type=Text).insert(0, "y")
            await ana.flushed()  # after the claims of 4242 and 77 (their awareness came first)
            await bo.flushed()
            with sqlite3.connect(db) as check:
                assert dict(check.execute("SELECT client_id, user_id FROM client_claims")) == {
                    4242: "ana",
                    77: "bo",
                }
            lock = sqlite3.connect(db, isolation_level=None)
            lock.execute("BEGIN IMMEDIATE")  # the next commit waits: the edit is relayed, not saved
            ana_doc.get("t", type=Text).insert(1, " ana's line")
            await bo.wait_for(lambda: str(bo_doc.get("t", type=Text)) == "x ana's line")
            server.kill()
            lock.rollback()
            lock.close()
        server.start()
        async with connect(url(server, "bo"), bo_doc, reconnect=False) as bo:  # its step 2 carries ana's line
            bo_doc.get("notes", type=Text).insert(1, " bo's own")
            await bo.flushed()
            assert bo.refusals == [] and bo.connected.is_set()
            carol_doc: Doc[Any] = Doc()
            async with connect(url(server, "carol"), carol_doc, reconnect=False) as carol:
                assert str(carol_doc.get("notes", type=Text)) == "y bo's own"
                assert str(carol_doc.get("t", type=Text)) == "x"  # ana's line waits for ana
                async with connect(url(server, "ana"), ana_doc, reconnect=False):  # her step 2 sends it
                    await carol.wait_for(lambda: str(carol_doc.get("t", type=Text)) == "x ana's line")
        converged: Doc[Any] = Doc()
        async with connect(url(server, "carol"), converged, reconnect=False):
            assert str(converged.get("t", type=Text)) == "x ana's line"
            assert str(converged.get("notes", type=Text)) == "y bo's own"
        assert server.wait_for_log(r"left out structs of client 4242, claimed by user 'ana'")
    finally:
        if server.alive():
            server.stop()
