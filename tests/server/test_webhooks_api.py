"""Webhook routes in process (memory storage, signed tokens): owners only, validation, the delivery log."""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest
from starlette.applications import Starlette

from persistence.memory import MemoryStorage
from persistence.webhooks import Delivery, WebhookStore, webhook_store_for
from server.app import build
from server.auth import Role
from server.hub import Hub
from server.settings import Settings
from server.tokens import issue
from server.webhooks import webhooks_for
from tests.support.asgi import Reply, call

SECRET = "webhooks-test-secret-0123456789abcdef"
DOC = "team/notes"
BASE = f"/api/documents/{DOC}/-/webhooks"
URL = "https://hooks.example.com/in"


def tok(user: str, role: Role) -> str:
    return issue(user, user.title(), {"team/*": role}, now=time.time(), ttl=3600, secret=SECRET)


OWNER, EDITOR = tok("olga", Role.OWNER), tok("ed", Role.EDITOR)


@dataclass
class Api:
    app: Starlette
    hub: Hub
    store: WebhookStore
    document_id: str

    async def __call__(self, method: str, path: str, token: str | None = OWNER, **kw: Any) -> Reply:
        return await call(self.app, method, path, token=token, **kw)

    async def create(self, **body: Any) -> Any:
        reply = await self("POST", BASE, json={"url": URL, **body})
        assert reply.status == 201, reply.body
        return reply.json()


@pytest.fixture
async def api() -> AsyncIterator[Api]:
    storage = MemoryStorage()
    app, hub = build(Settings(secret=SECRET), storage)
    record = await storage.create_document(DOC, time.time())
    yield Api(app, hub, webhook_store_for(storage), record.id)


async def test_create_shows_the_secret_once_then_list_and_delete(api: Api) -> None:
    made = await api.create(events=["comment", "document.changed", "comment"])
    assert made["url"] == URL and made["events"] == ["comment", "document.changed"]
    assert made["created_by"] == "olga" and made["active"] and made["document"] == DOC
    assert len(made["secret"]) == 64 and made["signature_header"] == "X-Cocreate-Signature"
    everything = await api.create()
    assert everything["events"] == ["document.changed", "comment", "session"]
    listed = (await api("GET", BASE)).json()
    assert [h["id"] for h in listed["webhooks"]] == [made["id"], everything["id"]]
    assert all("secret" not in h for h in listed["webhooks"])
    assert (await api("DELETE", f"{BASE}/{made['id']}")).status == 204
    gone = await api("DELETE", f"{BASE}/{made['id']}")
    assert (gone.status, gone.json()["error"]) == (404, "webhook_not_found")
    assert [h["id"] for h in (await api("GET", BASE)).json()["webhooks"]] == [everything["id"]]
    assert (await api("GET", f"{BASE}/{made['id']}/deliveries")).status == 404


async def test_the_dispatcher_index_follows_the_routes(api: Api) -> None:
    made = await api.create(events=["comment"])
    dispatcher = webhooks_for(api.hub)
    assert [h.id for h in dispatcher._hooks[api.document_id]] == [made["id"]]
    await api("DELETE", f"{BASE}/{made['id']}")
    assert api.document_id not in dispatcher._hooks


async def test_non_owners_get_403_and_strangers_401(api: Api) -> None:
    for method, path, body in (
        ("POST", BASE, {"url": URL}),
        ("GET", BASE, None),
        ("DELETE", f"{BASE}/{'0' * 32}", None),
        ("GET", f"{BASE}/{'0' * 32}/deliveries", None),
    ):
        below = await api(method, path, token=EDITOR, json=body)
        assert (below.status, below.json()["error"]) == (403, "forbidden"), (method, path)
        assert (await api(method, path, token=None, json=body)).status == 401
    assert await api.store.list_webhooks(api.document_id) == []


@pytest.mark.parametrize(
    ("body", "error", "field"),
    [
        ({"url": "ftp://example.com/x"}, "invalid_url", "url"),
        ({"url": 42}, "invalid_url", "url"),
        ({}, "invalid_url", "url"),
        ({"url": "https://example.com/" + "x" * 3000}, "invalid_url", "url"),
        ({"url": "http://127.0.0.1:8080/hook"}, "invalid_url", "url"),  # SSRF rule, setting off
        ({"url": "http://[::1]/hook"}, "invalid_url", "url"),
        ({"url": "http://169.254.169.254/latest/meta-data"}, "invalid_url", "url"),
        ({"url": "http://localhost/hook"}, "invalid_url", "url"),
        ({"url": URL, "events": []}, "invalid_events", "events"),
        ({"url": URL, "events": ["everything"]}, "invalid_events", "events"),
        ({"url": URL, "events": "comment"}, "invalid_events", "events"),
    ],
)
async def test_bad_input_is_a_json_error(api: Api, body: dict[str, Any], error: str, field: str) -> None:
    reply = await api("POST", BASE, json=body)
    assert reply.status == 422, reply.body
    assert (reply.json()["error"], reply.json()["field"]) == (error, field)


async def test_other_bad_requests(api: Api) -> None:
    missing = await api("POST", "/api/documents/team/none/-/webhooks", json={"url": URL})
    assert (missing.status, missing.json()["error"]) == (404, "document_not_found")
    assert (await api("POST", BASE, body=b"[1]")).status == 422
    assert (await api("POST", BASE, body=b"x" * 20_000)).status == 413
    made = await api.create()
    for query in (
        "limit=0",
        "limit=501",
        "limit=x",
        "before=nope",
        "before=1.5_xyz",
        f"before=nan_{'a' * 32}",
    ):
        reply = await api("GET", f"{BASE}/{made['id']}/deliveries?{query}")
        assert reply.status == 422, query
    for _ in range(19):  # 20 in all
        await api.create()
    assert (await api("POST", BASE, json={"url": URL})).json()["error"] == "too_many_webhooks"


async def test_the_delivery_log_is_paged_newest_first(api: Api) -> None:
    made = await api.create()
    t0 = 1_700_000_000.0
    rows = [
        Delivery(uuid.uuid4().hex, made["id"], "comment.added", f'{{"n": {i}}}', t0 + i, t0 + i)
        for i in range(7)
    ]
    await api.store.add_deliveries(rows)
    seen, cursor = [], None
    while True:
        query = "limit=3" + (f"&before={cursor}" if cursor else "")
        page = (await api("GET", f"{BASE}/{made['id']}/deliveries?{query}")).json()
        seen += [(d["payload"]["n"], d["status"], d["attempts"]) for d in page["deliveries"]]
        cursor = page["next"]
        if cursor is None:
            break
    assert seen == [(n, "pending", 0) for n in range(6, -1, -1)]
