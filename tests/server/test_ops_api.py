"""`/metrics` access rules (local mode, secret, metrics token) and `/readyz` answers, in process."""

from __future__ import annotations

import time

from persistence.base import StorageError
from persistence.memory import MemoryStorage
from server.app import build
from server.auth import Role
from server.settings import Settings
from server.tokens import issue
from tests.support.asgi import call

SECRET = "ops-api-secret-0123456789abcdef0123"


def owner_token(pattern: str) -> str:
    return issue("ops", "Ops", {pattern: Role.OWNER}, now=time.time(), ttl=600, secret=SECRET)


async def test_metrics_are_open_in_local_mode() -> None:
    app, _ = build(Settings(), MemoryStorage())
    reply = await call(app, "GET", "/metrics")
    assert reply.status == 200
    assert b"cocreate_updates_applied_total" in reply.body


async def test_with_a_secret_metrics_need_the_metrics_token_or_an_owner_of_everything() -> None:
    app, _ = build(Settings(secret=SECRET, metrics_token="scraper-token-123"), MemoryStorage())
    assert (await call(app, "GET", "/metrics")).status == 401
    assert (await call(app, "GET", "/metrics", headers={"authorization": "Bearer wrong"})).status == 401
    scraper = await call(app, "GET", "/metrics", headers={"authorization": "Bearer scraper-token-123"})
    assert scraper.status == 200 and b"cocreate_connections" in scraper.body
    assert (await call(app, "GET", "/metrics", token=owner_token("*"))).status == 200
    folder_owner = await call(app, "GET", "/metrics", token=owner_token("team/*"))
    assert folder_owner.status == 403, folder_owner.body


async def test_without_a_metrics_token_the_bearer_header_is_just_a_token() -> None:
    app, _ = build(Settings(secret=SECRET), MemoryStorage())
    assert (await call(app, "GET", "/metrics", headers={"authorization": "Bearer None"})).status == 401
    assert (await call(app, "GET", "/metrics", headers={"authorization": "Bearer "})).status == 401


async def test_readyz_reports_every_check() -> None:
    app, hub = build(Settings(), MemoryStorage())
    reply = await call(app, "GET", "/readyz")
    assert (reply.status, reply.json()) == (200, {"ready": True, "checks": {"database": "ok"}})

    async def broken() -> None:
        raise StorageError("redis is down")

    hub.readiness.add("redis", broken)
    reply = await call(app, "GET", "/readyz")
    assert reply.status == 503
    assert reply.json() == {
        "ready": False,
        "checks": {"database": "ok", "redis": "StorageError: redis is down"},
    }


async def test_readyz_is_false_while_shutting_down_and_handshakes_are_refused() -> None:
    app, hub = build(Settings(), MemoryStorage())
    hub.readiness.shutting_down = True
    reply = await call(app, "GET", "/readyz")
    assert reply.status == 503
    assert reply.json()["checks"] == {"database": "ok", "shutdown": "shutting down"}
    decision = await hub.admit("/ws/team/doc", {})
    assert getattr(decision, "status", None) == 503
    assert getattr(decision, "error", None) == "shutting_down"
