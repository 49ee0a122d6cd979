"""Acceptance of cluster mode: real redis-server, real PostgreSQL, several `cocreate serve` processes."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pycrdt import Doc, Text

from client.client import Client, connect
from persistence.sql import SqlStorage
from server.auth import Role
from server.loading import load_state
from server.tokens import issue
from tests.cluster.redis_server import RedisServer
from tests.support.server_process import ServerProcess

pytestmark = [pytest.mark.postgres, pytest.mark.timeout(90)]

DOC = "team/plan"


@contextlib.contextmanager
def nodes(
    count: int, pg_url: str, redis_url: str, tmp_path: Path, *extra: str
) -> Iterator[list[ServerProcess]]:
    started: list[ServerProcess] = []
    try:
        for index in range(count):
            folder = tmp_path / f"node{index}"
            folder.mkdir()
            process = ServerProcess(db_url=pg_url, data_dir=folder, extra_args=["--redis", redis_url, *extra])
            started.append(process.start())
        yield started
    finally:
        for process in started:
            process.kill()


def text_of(client: Client) -> str:
    return str(client.doc.get("t", type=Text))


async def type_into(client: Client, token: str, count: int, pause: float = 0.005) -> None:
    text = client.doc.get("t", type=Text)
    for index in range(count):
        text.insert(len(text), f"<{token}.{index}>")
        if index % 5 == 0:
            await asyncio.sleep(pause)  # interleave with the other writers
    await client.flushed()


async def converged(clients: list[Client], expected_tokens: int, timeout: float = 15.0) -> str:
    async def all_equal() -> None:
        while True:
            texts = {text_of(c) for c in clients}
            if len(texts) == 1 and next(iter(texts)).count("<") == expected_tokens:
                return
            await asyncio.sleep(0.05)

    await asyncio.wait_for(all_equal(), timeout)
    return text_of(clients[0])


def assert_each_once(text: str, tokens: list[str]) -> None:
    for token in tokens:
        assert text.count(f"<{token}>") == 1, f"{token} appears {text.count(f'<{token}>')} times"


async def test_clients_spread_over_three_processes_converge(
    pg_url: str, redis_server: RedisServer, tmp_path: Path
) -> None:
    with nodes(3, pg_url, redis_server.url, tmp_path) as servers:
        async with contextlib.AsyncExitStack() as stack:
            clients = [await stack.enter_async_context(connect(servers[i % 2].ws(DOC))) for i in range(4)]
            typing = asyncio.gather(*(type_into(c, f"c{i}", 40, 0.05) for i, c in enumerate(clients)))
            # the third process loads the document while the others commit (the join race)
            for _ in (4, 5):
                clients.append(await stack.enter_async_context(connect(servers[2].ws(DOC))))
            await asyncio.gather(typing, *(type_into(clients[i], f"c{i}", 40) for i in (4, 5)))
            text = await converged(clients, 6 * 40)
            assert_each_once(text, [f"c{i}.{k}" for i in range(6) for k in range(40)])
        # a late client on any process gets everything from the log
        async with connect(servers[2].ws(DOC)) as late:
            assert text_of(late) == text


async def test_presence_crosses_processes_and_vanishes_when_the_client_leaves(
    pg_url: str, redis_server: RedisServer, tmp_path: Path
) -> None:
    with nodes(2, pg_url, redis_server.url, tmp_path) as (a, b):
        async with connect(b.ws(DOC)) as watcher:
            async with connect(a.ws(DOC)) as alice:
                alice.set_awareness({"user": "alice"})
                await watcher.wait_for(
                    lambda: watcher.remote_states.get(alice.client_id) == {"user": "alice"}
                )
                alice_id = alice.client_id
            await watcher.wait_for(lambda: alice_id not in watcher.remote_states)
            # presence of a client already there reaches a process that loads the document later
            watcher.set_awareness({"user": "walt"})
            async with connect(a.ws(DOC)) as newcomer:
                await newcomer.wait_for(
                    lambda: newcomer.remote_states.get(watcher.client_id) == {"user": "walt"}
                )


def _post(url: str, body: dict[str, Any] | None, method: str = "POST") -> dict[str, Any]:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(
        url, data=data, headers={"content-type": "application/json"}, method=method
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        text = response.read()
        result: dict[str, Any] = json.loads(text) if text else {}
        return result


async def test_a_comment_made_on_one_process_reaches_a_client_on_another(
    pg_url: str, redis_server: RedisServer, tmp_path: Path
) -> None:
    with nodes(2, pg_url, redis_server.url, tmp_path) as (a, b):
        async with connect(b.ws(DOC)) as reader:
            reader.doc.get("t", type=Text).insert(0, "hello world")
            await reader.flushed()
            body = {"root": "t", "range": {"start": 0, "end": 5, "unit": "codepoint"}, "body": "nice"}
            made = await asyncio.to_thread(_post, f"{a.url}/api/documents/{DOC}/-/threads", body)
            kind, data = await asyncio.wait_for(reader.document_events.get(), 10)
            assert kind.startswith("comment") and json.dumps(made["id"]) in json.dumps(data)


async def test_rename_and_delete_on_one_process_close_the_document_on_every_process(
    pg_url: str, redis_server: RedisServer, tmp_path: Path
) -> None:
    with nodes(2, pg_url, redis_server.url, tmp_path) as (a, b):
        async with connect(b.ws(DOC)) as on_b, connect(a.ws(DOC)) as on_a:
            on_b.doc.get("t", type=Text).insert(0, "kept")
            await on_b.flushed()
            await asyncio.to_thread(_post, f"{a.url}/api/documents/{DOC}", {"name": "team/renamed"}, "PATCH")
            await on_a.wait_closed()
            await on_b.wait_closed()
            assert on_b.closed_reason == "closed for good: 4404 renamed to team/renamed"
        async with connect(b.ws("team/renamed")) as moved, connect(a.ws("team/renamed")) as other:
            assert text_of(moved) == "kept"
            await asyncio.to_thread(_post, f"{b.url}/api/documents/team/renamed", None, "DELETE")
            await other.wait_closed()
            assert other.closed_reason == "closed for good: 4404 document deleted"


async def test_compaction_by_the_lease_holder_keeps_every_update(
    pg_url: str, redis_server: RedisServer, tmp_path: Path
) -> None:
    """Small snapshot thresholds: whichever process holds the lease snapshots at its watermark,
    and a document loaded from snapshot + log still holds every edit exactly once."""
    with nodes(2, pg_url, redis_server.url, tmp_path, "--snapshot-min-updates", "15") as (a, b):
        async with connect(a.ws(DOC)) as left, connect(b.ws(DOC)) as right:
            for phase in range(3):
                await asyncio.gather(type_into(left, f"l{phase}", 20), type_into(right, f"r{phase}", 20))
            tokens = [f"{s}{p}.{k}" for s in "lr" for p in range(3) for k in range(20)]
            final = await converged([left, right], len(tokens))
        storage = SqlStorage(pg_url)
        await storage.open()
        try:
            record = await storage.get_document(DOC)
            assert record is not None
            snapshot = await storage.latest_snapshot(record.id)
            assert snapshot is not None and 15 <= snapshot.seq <= record.last_seq
            state = await load_state(storage, record.id)
            assert str(state.document.doc.get("t", type=Text)) == final
            # the snapshot holds exactly rows 1..seq: history views through it match the bare log
            replayed = Doc()
            for row in await storage.read_updates(record.id, 0, snapshot.seq):
                replayed.apply_update(row.data)
            at_snapshot = await load_state(storage, record.id, until_seq=snapshot.seq)
            assert str(at_snapshot.document.doc.get("t", type=Text)) == str(replayed.get("t", type=Text))
            assert_each_once(final, tokens)
        finally:
            await storage.close()


async def test_access_revoked_on_one_process_closes_the_connection_on_another(
    pg_url: str, redis_server: RedisServer, tmp_path: Path
) -> None:
    secret = "cluster-test-secret-" + "x" * 32
    now = time.time()
    owner = issue("olga", "Olga", {"team/*": Role.OWNER}, now=now, ttl=600, secret=secret)
    guest = issue("gus", "Gus", {}, now=now, ttl=600, secret=secret)
    with nodes(2, pg_url, redis_server.url, tmp_path, "--secret", secret) as (a, b):
        access = f"{a.url}/api/documents/{DOC}/-/access/gus?token={owner}"
        await asyncio.to_thread(_post, access, {"role": "editor"}, "PUT")
        async with connect(b.ws(DOC, f"token={guest}")) as on_b:
            await asyncio.to_thread(_post, access, None, "DELETE")
            await on_b.wait_closed()
            assert on_b.closed_reason == "permission denied: your access to this document was revoked"
