"""Webhooks end to end: a real server process delivering to a receiver in the test (127.0.0.1)."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import random
import time
import uuid
from collections.abc import AsyncIterator, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from pycrdt import Doc, Text

from client import connect
from persistence.base import NewUpdate, StorageError
from persistence.memory import MemoryStorage
from persistence.webhooks import Delivery, MemoryWebhookStore, Webhook, WebhookStore
from server.events import DocumentEvent
from server.settings import Settings
from server.webhooks import WebhookDispatcher
from tests.support.http import request
from tests.support.receiver import Receiver
from tests.support.server_process import ServerProcess, running_server

DEBOUNCE = 0.5
FAST_RETRIES = [
    "--webhook-allow-private",  # the receiver is on loopback: SSRF protection off, for tests only
    "--webhook-debounce", str(DEBOUNCE),
    "--webhook-backoff", "0.05",
    "--webhook-backoff-max", "0.2",
    "--webhook-timeout", "1",
    "--webhook-connect-timeout", "1",
]  # fmt: skip


@contextlib.contextmanager
def server_with(tmp_path: Path, *args: str) -> Iterator[ServerProcess]:
    with running_server(tmp_path, None, *FAST_RETRIES, *args) as process:
        yield process


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    found = await Receiver().start()
    yield found
    await found.close()


async def api(server: ServerProcess, method: str, path: str, body: Any = None, expect: int = 200) -> Any:
    reply = await asyncio.to_thread(request, server.port, method, path, body)  # the receiver keeps serving
    assert reply.status == expect, reply.body
    return reply.json if reply.body else None


async def register(server: ServerProcess, document: str, url: str, events: list[str]) -> Any:
    return await api(
        server, "POST", f"/api/documents/{document}/-/webhooks", {"url": url, "events": events}, 201
    )


async def deliveries(server: ServerProcess, document: str, hook: Any) -> list[Any]:
    page = await api(server, "GET", f"/api/documents/{document}/-/webhooks/{hook['id']}/deliveries")
    return list(page["deliveries"])


async def wait_for_log(server: ServerProcess, pattern: str, timeout: float = 20.0) -> None:
    assert await asyncio.to_thread(server.wait_for_log, pattern, timeout), server.log_text()[-3000:]


async def thread(server: ServerProcess, document: str, body: str = "look") -> Any:
    spec = {"root": "t", "range": {"start": 0, "end": 4}, "body": body}
    return await api(server, "POST", f"/api/documents/{document}/-/threads", spec, 201)


async def test_document_changes_are_debounced_signed_and_cover_every_seq(
    tmp_path: Path, receiver: Receiver
) -> None:
    with server_with(tmp_path, "--webhook-max-attempts", "3") as server:
        doc: Doc[Any] = Doc()
        text = doc.get("t", type=Text)
        async with connect(server.ws("team/plan"), doc) as client:
            text.insert(0, "plan")
            await client.flushed()
            hook = await register(server, "team/plan", receiver.url(), ["document.changed"])
            start = (await api(server, "GET", "/api/documents/team/plan"))["last_seq"]
            began = time.monotonic()
            edits = 40
            for i in range(edits):
                text.insert(len(str(text)), f" {i}")
                await client.flushed()
            elapsed = time.monotonic() - began
            final = (await api(server, "GET", "/api/documents/team/plan"))["last_seq"]
            assert final == start + edits
            got: list[Any] = []
            while not got or got[-1].json["data"]["last_seq"] < final:
                got.append(await receiver.next())
        for received in got:
            assert received.signed_with(hook["secret"])
            assert not received.signed_with("another secret")
            body = received.json
            assert received.headers["x-cocreate-event"] == body["event"] == "document.changed"
            assert received.headers["x-cocreate-delivery"] == body["id"]
            assert body["document"] == "team/plan" and body["webhook"] == hook["id"]
            assert abs(body["timestamp"] - time.time()) < 60 and body["data"]["authors"]
        ranges = [(r.json["data"]["first_seq"], r.json["data"]["last_seq"]) for r in got]
        assert ranges[0][0] == start + 1 and ranges[-1][1] == final
        assert all(later[0] == earlier[1] + 1 for earlier, later in itertools.pairwise(ranges))
        assert sum(r.json["data"]["updates"] for r in got) == edits
        assert len(got) <= elapsed / DEBOUNCE + 2 and len(got) < edits  # many edits, few deliveries
        log = await deliveries(server, "team/plan", hook)
        assert {d["id"] for d in log} == {r.json["id"] for r in got}
        await wait_for_log(server, f"{log[0]['id']} attempt 1: delivered")


async def test_a_comment_event_is_delivered_and_logged(tmp_path: Path, receiver: Receiver) -> None:
    with server_with(tmp_path, "--webhook-max-attempts", "3") as server:
        doc: Doc[Any] = Doc()
        async with connect(server.ws("team/talk"), doc) as client:
            doc.get("t", type=Text).insert(0, "talk about this")
            await client.flushed()
        hook = await register(server, "team/talk", receiver.url("/in?token=abc"), ["comment"])
        made = await thread(server, "team/talk")
        received = await receiver.next()
        assert received.target == "/in?token=abc" and received.signed_with(hook["secret"])
        body = received.json
        assert body["event"] == "comment.thread_created" and body["data"]["thread"]["id"] == made["id"]
        await wait_for_log(server, f"{body['id']} attempt 1: delivered")
        [logged] = await deliveries(server, "team/talk", hook)
        assert (logged["id"], logged["status"], logged["attempts"], logged["last_status"]) == (
            body["id"], "delivered", 1, 200,
        )  # fmt: skip
        assert logged["payload"] == body


async def test_a_receiver_failing_twice_gets_the_delivery_on_the_third_attempt(
    tmp_path: Path, receiver: Receiver
) -> None:
    receiver.replies = [500, 500]
    with server_with(tmp_path, "--webhook-max-attempts", "3") as server:
        doc: Doc[Any] = Doc()
        async with connect(server.ws("team/retry"), doc) as client:
            doc.get("t", type=Text).insert(0, "try again")
            await client.flushed()
        hook = await register(server, "team/retry", receiver.url(), ["comment"])
        await thread(server, "team/retry")
        attempts = [await receiver.next() for _ in range(3)]
        assert len({a.headers["x-cocreate-delivery"] for a in attempts}) == 1
        assert len({a.body for a in attempts}) == 1 and all(a.signed_with(hook["secret"]) for a in attempts)
        delivery_id = attempts[0].json["id"]
        await wait_for_log(server, f"{delivery_id} attempt 3: delivered")
        [logged] = await deliveries(server, "team/retry", hook)
        assert (logged["status"], logged["attempts"], logged["last_status"], logged["last_error"]) == (
            "delivered", 3, 200, None,
        )  # fmt: skip
        assert "attempt 1: pending: HTTP 500" in server.log_text()


async def test_a_receiver_that_never_answers_slows_nothing_and_ends_failed(
    tmp_path: Path, receiver: Receiver
) -> None:
    receiver.default = None  # accepts the connection, reads the request, never answers
    args = ("--webhook-max-attempts", "2", "--webhook-timeout", "3", "--webhook-concurrency", "1")
    with server_with(tmp_path, *args) as server:
        doc: Doc[Any] = Doc()
        text = doc.get("t", type=Text)
        async with connect(server.ws("team/dead"), doc) as client:
            text.insert(0, "dead")
            await client.flushed()
            hook = await register(server, "team/dead", receiver.url(), ["document.changed", "comment"])
            text.insert(0, "> ")
            await client.flushed()
            await asyncio.wait_for(receiver.hanging.wait(), 10)  # the only sender is stuck now
            first = receiver.log[0].json["id"]
            for i in range(30):  # every edit is acknowledged while the delivery hangs
                text.insert(len(str(text)), f" {i}")
                await client.flushed()
            await thread(server, "team/dead")  # and the HTTP API answers
            assert len(receiver.log) == 1, "the stuck attempt was still the only one"
            assert f"{first} attempt 1" not in server.log_text()
        await wait_for_log(server, f"{first} attempt 2: failed: no answer within 3s", timeout=30)
        log = await deliveries(server, "team/dead", hook)
        failed = next(d for d in log if d["id"] == first)
        assert (failed["status"], failed["attempts"], failed["last_status"]) == ("failed", 2, None)
        assert failed["last_error"] == "no answer within 3s" and failed["next_attempt_at"] is None
        assert {d["event"] for d in log} >= {"document.changed", "comment.thread_created"}
        assert all(d["status"] in ("pending", "failed") for d in log)  # the others wait their turn, in the DB


async def test_pending_deliveries_resume_after_a_restart(tmp_path: Path, receiver: Receiver) -> None:
    receiver.default = 503
    args = ("--webhook-max-attempts", "100", "--webhook-backoff", "0.3", "--webhook-backoff-max", "0.3")
    with server_with(tmp_path, *args) as server:
        doc: Doc[Any] = Doc()
        async with connect(server.ws("team/later"), doc) as client:
            doc.get("t", type=Text).insert(0, "later on")
            await client.flushed()
        hook = await register(server, "team/later", receiver.url(), ["comment"])
        await thread(server, "team/later")
        delivery_id = (await receiver.next()).json["id"]
        server.stop()
        while not receiver.received.empty():  # attempts made before the stop
            receiver.received.get_nowait()
        receiver.default = 200
        server.start()
        assert (await receiver.next(timeout=20)).json["id"] == delivery_id
        await wait_for_log(server, f"{delivery_id} attempt \\d+: delivered")
        [logged] = await deliveries(server, "team/later", hook)
        assert logged["status"] == "delivered" and logged["attempts"] >= 2


# -- the dispatcher in process (memory storage): what becomes a delivery row ------------------------------
async def dispatcher_with(
    settings: Settings, store: WebhookStore | None = None
) -> tuple[WebhookDispatcher, MemoryStorage, str]:
    storage = MemoryStorage()
    record = await storage.create_document("team/a", time.time())
    dispatcher = WebhookDispatcher(store or MemoryWebhookStore(), storage, settings, time.time)
    return dispatcher, storage, record.id


def a_hook(document_id: str, events: tuple[str, ...], url: str = "https://hooks.example.com/in") -> Webhook:
    return Webhook(uuid.uuid4().hex, document_id, url, events, "k", "olga", time.time())


async def rows_of(dispatcher: WebhookDispatcher, hook: Webhook) -> list[Any]:
    return [json.loads(d.payload) for d in reversed(await dispatcher.store.list_deliveries(hook.id, 1000))]


async def test_commits_fold_into_one_window_per_document() -> None:
    dispatcher, _, document_id = await dispatcher_with(Settings(webhook_debounce=3600))
    changes, comments = a_hook(document_id, ("document.changed",)), a_hook(document_id, ("comment",))
    for hook in (changes, comments):
        await dispatcher.store.create_webhook(hook)
        dispatcher.added(hook)
    rng = random.Random(7)
    seq = 10
    for _ in range(50):
        batch = [NewUpdate(b"x", rng.choice(["ann", "bo"]), 0.0) for _ in range(rng.randint(1, 4))]
        seq += len(batch)
        dispatcher.on_commit("team/a", document_id, seq, batch)
    dispatcher.on_commit("team/other", "f" * 32, 3, [NewUpdate(b"x", "cy", 0.0)])  # no webhooks there
    await dispatcher.close()  # closes the open windows and records them
    [changed] = await rows_of(dispatcher, changes)
    assert changed["event"] == "document.changed" and changed["document"] == "team/a"
    data = changed["data"]
    assert (data["first_seq"], data["last_seq"], data["updates"], data["authors"]) == (
        11,
        seq,
        seq - 10,
        ["ann", "bo"],
    )
    assert await rows_of(dispatcher, comments) == []


async def test_only_comment_and_session_events_of_hooked_documents_become_deliveries() -> None:
    dispatcher, storage, document_id = await dispatcher_with(Settings())
    await storage.create_document("team/b", time.time())
    hook = a_hook(document_id, ("comment", "session"))
    await dispatcher.store.create_webhook(hook)
    dispatcher.added(hook)
    for document, kind in [
        ("team/a", "comment.added"),
        ("team/a", "lagged"),
        ("team/a", "bookmark.added"),
        ("team/b", "comment.added"),
        ("team/a", "session.started"),
        ("team/gone", "comment.added"),
    ]:
        dispatcher.on_event(DocumentEvent(document, kind, {"seq": 1}))
    await dispatcher.close()
    assert [(r["event"], r["document"], r["data"]) for r in await rows_of(dispatcher, hook)] == [
        ("comment.added", "team/a", {"seq": 1}),
        ("session.started", "team/a", {"seq": 1}),
    ]
    dispatcher.removed(hook.id)
    dispatcher.on_event(DocumentEvent("team/a", "comment.added", {}))
    assert not dispatcher._intake  # no webhooks at all: nothing is even queued


class FlakyStore(MemoryWebhookStore):
    """Fails the first `add_deliveries`, like a database that is briefly unavailable."""

    def __init__(self) -> None:
        super().__init__()
        self.failures = 1

    async def add_deliveries(self, deliveries: Sequence[Delivery]) -> None:
        if self.failures:
            self.failures -= 1
            raise StorageError("database unavailable")
        await super().add_deliveries(deliveries)


async def test_events_survive_a_storage_failure_and_are_sent(receiver: Receiver) -> None:
    store = FlakyStore()
    settings = Settings(webhook_allow_private=True, webhook_timeout=2)
    dispatcher, _, document_id = await dispatcher_with(settings, store)
    hook = a_hook(document_id, ("comment",), receiver.url())
    await store.create_webhook(hook)
    await dispatcher.start()
    try:
        for n in range(3):
            dispatcher.on_event(DocumentEvent("team/a", "comment.added", {"n": n}))
        got = [(await receiver.next()).json["data"]["n"] for _ in range(3)]
        assert sorted(got) == [0, 1, 2] and store.failures == 0
    finally:
        await dispatcher.close()


async def test_close_stops_every_task_while_deliveries_are_in_flight(receiver: Receiver) -> None:
    settings = Settings(webhook_allow_private=True, webhook_timeout=5, webhook_concurrency=2)
    for round_ in range(15):
        dispatcher, _, document_id = await dispatcher_with(settings)
        hook = a_hook(document_id, ("comment",), receiver.url())
        await dispatcher.store.create_webhook(hook)
        await dispatcher.start()
        tasks = list(dispatcher._tasks)
        for n in range(4):
            dispatcher.on_event(DocumentEvent("team/a", "comment.added", {"n": n}))
        await receiver.next()  # senders are busy (answered, recording, or sending the next)
        await asyncio.wait_for(dispatcher.close(timeout=5), 8)
        assert all(task.done() for task in tasks), round_
