"""The real @hocuspocus/provider (4.x, Node) against a real server: sync, three documents on one
socket, read-only, a live downgrade, unsynced changes that clear only after the commit (and survive
a crash before it), awareness, stateless, and one document shared with y-websocket and Python clients."""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

from server.auth import Role
from server.tokens import issue
from tests.hocuspocus.conftest import Providers
from tests.interop.node_client import NodeClient
from tests.interop.py_peer import python_peer
from tests.support.http import request
from tests.support.server_process import ServerProcess, running_server

SECRET = "hocuspocus-tests-secret-0123456789abcdef"


def token(user: str, role: Role) -> str:
    return issue(user, user.title(), {"*": role}, now=time.time(), ttl=3600, secret=SECRET)


def database(server: ServerProcess) -> Path:
    return Path(server.db_url.split(":///", 1)[1])


def log_rows(server: ServerProcess, name: str) -> int:
    """Committed update-log rows of document `name`, read straight from the SQLite file."""
    with contextlib.closing(sqlite3.connect(database(server))) as conn:
        row = conn.execute(
            "SELECT count(*) FROM updates JOIN documents ON documents.id = updates.document_id "
            "WHERE documents.name = ? AND documents.deleted_at IS NULL",
            (name,),
        ).fetchone()
    return int(row[0])


@contextlib.contextmanager
def write_lock(server: ServerProcess) -> Iterator[None]:
    """Hold SQLite's write lock from outside: the server's next commit waits (busy timeout, 10 s)."""
    conn = sqlite3.connect(database(server), isolation_level=None)
    try:
        conn.execute("BEGIN IMMEDIATE")
        yield
    finally:
        conn.execute("ROLLBACK")
        conn.close()


async def test_two_providers_sync_through_the_server(providers: Providers) -> None:
    ana, bob = await providers.start("ana"), await providers.start("bob")
    await ana.open("notes")
    await ana.wait_synced("notes")
    await ana.insert_text("notes", "hello")
    await ana.wait_for("notes", unsynced=0)
    await bob.open("notes")
    await bob.wait_for("notes", roots={"t": "hello"}, synced=True)
    await bob.insert_text("notes", " world")
    await ana.wait_for("notes", roots={"t": "hello world"})
    await bob.wait_for("notes", unsynced=0)


async def test_three_documents_multiplexed_on_one_socket(providers: Providers, server: ServerProcess) -> None:
    writer, reader = await providers.start("writer"), await providers.start("reader")
    documents = ["multi/a", "multi/b", "multi/c"]
    for name in documents:
        await writer.open(name)
    for name in documents:
        await writer.wait_synced(name)
        await writer.insert_text(name, f"text of {name}")
    for name in documents:
        await writer.wait_for(name, unsynced=0)
        await reader.open(name)
    for name in documents:
        await reader.wait_for(name, roots={"t": f"text of {name}"})
    opened = [line for line in server.output if re.search(r"open conn=\d+ hocuspocus", line)]
    assert len(opened) == 2  # one socket per Node process, whatever the number of documents
    await writer.close_document("multi/b")  # Close: that document only
    await writer.insert_text("multi/c", "!")
    await reader.wait_for("multi/c", roots={"t": "text of multi/c!"})
    await writer.wait_for("multi/c", unsynced=0)


async def test_read_only_provider(tmp_path: Path, hocuspocus_env: str) -> None:
    with running_server(tmp_path, None, "--secret", SECRET) as server:
        made = Providers(server=server, node_path=hocuspocus_env)
        try:
            editor, viewer, stranger = [await made.start(n) for n in ("editor", "viewer", "stranger")]
            await editor.open("ro", token("ed", Role.EDITOR))
            await editor.wait_synced("ro")
            await editor.insert_text("ro", "base")
            await editor.wait_for("ro", unsynced=0)
            await viewer.open("ro", token("vi", Role.VIEWER))
            # the viewer's handshake holds nothing new: acknowledged, so no phantom unsynced change
            await viewer.wait_for("ro", roots={"t": "base"}, scope="readonly", synced=True, unsynced=0)
            await viewer.insert_text("ro", "vandal ", index=0)
            await viewer.open("barrier", token("vi", Role.VIEWER))  # same socket, frames in order
            await viewer.wait_synced("barrier")
            assert (await viewer.document("ro"))["unsynced"] == 1  # refused: SyncStatus(0)
            await editor.insert_text("ro", "!")
            await viewer.wait_for("ro", roots={"t": "vandal base!"})  # the viewer keeps its copy...
            await editor.wait_for("ro", roots={"t": "base!"}, unsynced=0)  # ...nobody else gets it
            await stranger.open("ro", "not-a-token")
            await stranger.wait_for("ro", denied="token")
            assert log_rows(server, "ro") == 2
        finally:
            for node in made.started:
                await node.close()
            assert not [n.console_errors() for n in made.started if n.console_errors()]


async def test_unsynced_changes_clear_only_after_the_commit(
    providers: Providers, server: ServerProcess
) -> None:
    ana, bob = await providers.start("ana"), await providers.start("bob")
    for node in (ana, bob):
        await node.open("durable")
        await node.wait_synced("durable")
    before = log_rows(server, "durable")
    with write_lock(server):
        await ana.insert_text("durable", "saved?")
        await bob.wait_for("durable", roots={"t": "saved?"})  # applied and relayed, not committed
        assert (await ana.document("durable"))["unsynced"] == 1
        assert log_rows(server, "durable") == before
    await ana.wait_for("durable", unsynced=0)
    assert log_rows(server, "durable") == before + 1


async def test_unsynced_changes_survive_a_crash_before_the_commit(
    providers: Providers, server: ServerProcess
) -> None:
    ana, bob = await providers.start("ana"), await providers.start("bob")
    for node in (ana, bob):
        await node.open("crash")
        await node.wait_synced("crash")
    before = log_rows(server, "crash")
    with write_lock(server):
        await ana.insert_text("crash", "in flight")
        await bob.wait_for("crash", roots={"t": "in flight"})
        server.kill()  # SIGKILL while the commit waits for the lock
    await ana.wait_for("crash", status="disconnected")
    assert (await ana.document("crash"))["unsynced"] == 1  # the provider knows it is not saved
    assert log_rows(server, "crash") == before
    server.start()  # same port: the provider reconnects and its step 2 carries the edit again
    await ana.wait_for("crash", timeout=20, authenticated=True, unsynced=0)
    assert log_rows(server, "crash") == before + 1
    async with python_peer(server.ws("crash")) as late:
        await late.wait_content({"t": "in flight", "m": {}, "a": [], "barrier": {}})


async def test_awareness_and_stateless(providers: Providers) -> None:
    ana, bob = await providers.start("ana"), await providers.start("bob")
    for node in (ana, bob):
        await node.open("presence")
        await node.wait_synced("presence")
    ana_id = (await ana.document("presence"))["clientID"]
    await ana.set_awareness("presence", {"user": {"name": "Ana"}})
    await bob.wait_for("presence", awarenessHas=[ana_id])
    assert (await bob.document("presence"))["awareness"][str(ana_id)] == {"user": {"name": "Ana"}}
    await ana.stateless("presence", '{"ping":1}')
    await bob.wait_for("presence", stateless='{"ping":1}')
    assert (await ana.document("presence"))["stateless"] == []  # not echoed to the sender
    await ana.close_document("presence")
    await bob.wait_for("presence", awarenessLacks=[ana_id])


async def test_comment_events_reach_the_provider_as_stateless(
    providers: Providers, server: ServerProcess
) -> None:
    ana = await providers.start("ana")
    await ana.open("commented")
    await ana.open("uncommented")
    await ana.wait_synced("commented")
    await ana.wait_synced("uncommented")
    await ana.insert_text("commented", "a sentence to discuss")
    await ana.wait_for("commented", unsynced=0)
    base = "/api/documents/commented/-"
    reply = await asyncio.to_thread(
        request,
        server.port,
        "POST",
        f"{base}/threads",
        {"root": "t", "range": {"start": 2, "end": 10}, "body": "?"},
    )
    assert reply.status == 201, reply
    made = reply.json
    state = await ana.wait_for("commented", timeout=5, statelessHas='"cocreate":"event"')
    events = [json.loads(p) for p in state["docs"]["commented"]["stateless"]]
    assert [(e["cocreate"], e["kind"]) for e in events] == [("event", "comment.thread_created")]
    assert events[0]["data"]["thread"]["id"] == made["id"]
    reply = await asyncio.to_thread(
        request, server.port, "POST", f"{base}/threads/{made['id']}/comments", {"body": "!"}
    )
    assert reply.status == 201, reply
    await ana.wait_for("commented", timeout=5, statelessHas='"comment.added"')
    assert (await ana.document("uncommented"))["stateless"] == []  # another document's events: not here


async def test_hocuspocus_y_websocket_and_python_on_one_document(
    providers: Providers, server: ServerProcess, node_env: str
) -> None:
    name = "mixed/doc"
    hocus = await providers.start("hocus")
    await hocus.open(name, roots={"a": "array"})
    await hocus.wait_synced(name)
    ywebsocket = NodeClient(server.ws("").rstrip("/"), name, name="y-websocket", node=node_env)
    try:
        await ywebsocket.start()
        await ywebsocket.wait_synced()
        async with python_peer(server.ws(name)) as python:
            hocus_id = (await hocus.document(name))["clientID"]
            assert ywebsocket.client_id is not None
            await asyncio.gather(
                hocus.map_set(name, "hocus", 1),
                ywebsocket.map_set("m", "ywebsocket", 2),
            )
            python.map["python"] = 3
            expected = {"hocus": 1, "ywebsocket": 2, "python": 3}
            await hocus.wait_for(name, roots={"m": expected})
            await ywebsocket.wait_for(roots={"m": expected})
            await python.until(lambda: python.map.to_py() == expected, what="the merged map")
            # concurrent inserts at the same position of a Y.Text and a Y.Array, from all three
            await asyncio.gather(
                hocus.insert_text(name, "[hocus]", index=0),
                ywebsocket.insert_text("t", "[ywebsocket]", index=0),
                hocus.array_insert(name, ["hocus", {"n": "one"}], index=0),
                ywebsocket.array_insert("a", ["ywebsocket", ["two"]], index=0),
            )
            python.insert_text_at_char(0, "[python]")
            python.array.insert(0, "python")
            fragments = ("[hocus]", "[ywebsocket]", "[python]")
            await python.until(
                lambda: all(f in str(python.text) for f in fragments) and len(python.array) == 5,
                what="every insert at the Python client",
            )
            merged = {"t": str(python.text), "a": python.array.to_py()}
            assert len(merged["t"]) == sum(map(len, fragments))
            assert sorted(map(str, merged["a"])) == sorted(
                map(str, ["hocus", {"n": "one"}, "ywebsocket", ["two"], "python"])
            )
            await hocus.wait_for(name, roots=merged)
            await ywebsocket.wait_for(roots=merged)
            assert python.content()["t"] == merged["t"] and python.content()["a"] == merged["a"]
            await hocus.set_awareness(name, {"user": "hocus"})
            await ywebsocket.set_awareness({"user": "ywebsocket"})
            python.client.set_awareness({"user": "python"})
            everyone = [hocus_id, ywebsocket.client_id, python.client_id]
            await hocus.wait_for(name, awarenessHas=everyone)
            await ywebsocket.wait_for(awarenessHas=everyone)
            await python.until(
                lambda: {hocus_id, ywebsocket.client_id} <= set(python.client.remote_states),
                what="the others' presence",
            )
            await hocus.wait_for(name, unsynced=0)
    finally:
        await ywebsocket.close()
    assert not ywebsocket.unknown_message_errors()


async def test_a_downgrade_closes_that_document_of_the_provider(tmp_path: Path, hocuspocus_env: str) -> None:
    """An access-list downgrade reaches the provider within a second (timed from before the HTTP
    call): that document is denied and closed; the socket's other document stays writable."""
    with running_server(tmp_path, None, "--secret", SECRET) as server:
        made = Providers(server=server, node_path=hocuspocus_env)
        try:
            owner = token("olga", Role.OWNER)
            dana = issue("dana", "Dana", {"kept": Role.EDITOR}, now=time.time(), ttl=3600, secret=SECRET)
            grant = await asyncio.to_thread(
                request, server.port, "PUT", "/api/documents/down/-/access/dana", {"role": "editor"},
                {"Authorization": f"Bearer {owner}"},
            )  # fmt: skip
            assert grant.status == 200, grant.body
            node = await made.start("dana")
            for name in ("down", "kept"):
                await node.open(name, dana)
                await node.wait_for(name, scope="read-write", synced=True, unsynced=0)
            await node.insert_text("down", "by dana")
            await node.wait_for("down", unsynced=0)

            started = time.monotonic()
            lowered = await asyncio.to_thread(
                request, server.port, "PUT", "/api/documents/down/-/access/dana", {"role": "viewer"},
                {"Authorization": f"Bearer {owner}"},
            )  # fmt: skip
            assert lowered.status == 200, lowered.body
            await node.wait_for("down", denied="your role on this document changed to viewer", timeout=5)
            latency = time.monotonic() - started
            assert latency < 1.0, latency
            print(f"downgrade: the provider's document denied {latency * 1000:.0f} ms after the request")
            assert not (await node.document("down"))["authenticated"]
            await node.insert_text("kept", "still writable")  # same socket, another document
            await node.wait_for("kept", unsynced=0)
            assert log_rows(server, "kept") == 1
        finally:
            for started_node in made.started:
                await started_node.close()
