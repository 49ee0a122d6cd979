"""Every HTTP route enforces its minimum role: walks `app.routes`, fails on a route missing from the table.

With a secret set, each (method, path) is requested (1) without credentials: 401; (2) with a token
one role below its minimum: 403; (3) with exactly its minimum: neither 401 nor 403. A new route
must be added to `RULES` (with the role it needs), or this test fails. `/healthz` and `/readyz`
are public; `/metrics` needs the owner role on `*` (or the `metrics_token` setting, tested in
tests/server/test_ops_api.py); `POST /api/invites/redeem` is public too (the invite code is the credential).
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from starlette.routing import Route

from persistence.memory import MemoryStorage
from server.app import build
from server.auth import Role
from server.settings import Settings
from server.tokens import issue
from tests.support.asgi import call

SECRET = "route-permissions-secret-0123456789"
PUBLIC = "public"  # no credentials needed
IDENTITY = "identity"  # any valid token, no role on a document


@dataclass(frozen=True)
class Rule:
    needs: Role | str
    grant: str = "team/*"  # the pattern the test tokens grant on (the route's document)
    body: dict[str, Any] = field(default_factory=dict)
    query: str = ""


_COMMENT = "/api/documents/{name:path}/-/threads/{id}/comments/{comment}"
_HISTORY = "/api/documents/{name:path}/-/history"
_REPLAY = "/api/documents/{name:path}/-/replays/{id}"
_WEBHOOKS = "/api/documents/{name:path}/-/webhooks"

RULES: dict[tuple[str, str], Rule] = {
    ("GET", "/healthz"): Rule(PUBLIC),
    ("GET", "/readyz"): Rule(PUBLIC),
    ("GET", "/metrics"): Rule(Role.OWNER, grant="*"),  # owners of everything, or the metrics token
    ("GET", "/"): Rule(PUBLIC),  # the browser app's page (server/web.py)
    ("GET", "/assets/{path:path}"): Rule(PUBLIC),  # its built files
    ("GET", "/api/me"): Rule(IDENTITY),
    ("POST", "/api/invites/redeem"): Rule(PUBLIC, body={"code": "not-an-invite-code"}),
    # documents
    ("GET", "/api/documents"): Rule(IDENTITY),  # lists only what the caller may view
    ("POST", "/api/documents"): Rule(Role.EDITOR, body={"name": "team/new"}),
    ("GET", "/api/documents/{name:path}"): Rule(Role.VIEWER),
    ("PATCH", "/api/documents/{name:path}"): Rule(Role.OWNER, body={"name": "team/renamed"}),
    ("DELETE", "/api/documents/{name:path}"): Rule(Role.OWNER),
    ("GET", "/api/documents/{name:path}/-/content"): Rule(Role.VIEWER),
    # access
    ("GET", "/api/documents/{name:path}/-/access"): Rule(Role.OWNER),
    ("PUT", "/api/documents/{name:path}/-/access/{user}"): Rule(Role.OWNER, body={"role": "viewer"}),
    ("DELETE", "/api/documents/{name:path}/-/access/{user}"): Rule(Role.OWNER),
    ("GET", "/api/documents/{name:path}/-/invites"): Rule(Role.OWNER),
    ("POST", "/api/documents/{name:path}/-/invites"): Rule(Role.OWNER, body={"role": "viewer"}),
    ("DELETE", "/api/documents/{name:path}/-/invites/{invite}"): Rule(Role.OWNER),
    # comments
    ("GET", "/api/documents/{name:path}/-/threads"): Rule(Role.VIEWER),
    ("POST", "/api/documents/{name:path}/-/threads"): Rule(Role.COMMENTER, body={"body": "hi"}),
    ("GET", "/api/documents/{name:path}/-/threads/{id}"): Rule(Role.VIEWER),
    ("POST", "/api/documents/{name:path}/-/threads/{id}/resolve"): Rule(Role.COMMENTER),
    ("POST", "/api/documents/{name:path}/-/threads/{id}/reopen"): Rule(Role.COMMENTER),
    ("POST", "/api/documents/{name:path}/-/threads/{id}/comments"): Rule(Role.COMMENTER, body={"body": "hi"}),
    ("PATCH", _COMMENT): Rule(Role.COMMENTER, body={"body": "hi"}),
    ("DELETE", _COMMENT): Rule(Role.COMMENTER),
    ("PUT", f"{_COMMENT}/reactions/{{emoji}}"): Rule(Role.COMMENTER),
    ("DELETE", f"{_COMMENT}/reactions/{{emoji}}"): Rule(Role.COMMENTER),
    ("GET", "/api/documents/{name:path}/-/mentions"): Rule(Role.VIEWER),
    ("GET", "/api/mentions"): Rule(IDENTITY),  # the caller's own, in documents they may read
    ("GET", "/api/documents/{name:path}/-/events"): Rule(Role.VIEWER),  # SSE; 404 here: no document
    # history, sessions, replays (viewers read history; restoring is an edit; owners facilitate)
    **{("GET", f"{_HISTORY}/{view}"): Rule(Role.VIEWER) for view in ("timeline", "at", "changes", "diff")},
    **{("GET", f"{_HISTORY}/{view}"): Rule(Role.VIEWER) for view in ("summary", "frames")},
    ("POST", f"{_HISTORY}/restore"): Rule(Role.EDITOR, body={"seq": 0}),
    ("GET", "/api/documents/{name:path}/-/sessions"): Rule(Role.VIEWER),
    ("POST", "/api/documents/{name:path}/-/sessions"): Rule(Role.OWNER, body={"name": "warm-up"}),
    ("POST", "/api/documents/{name:path}/-/sessions/{id}/end"): Rule(Role.OWNER),
    ("GET", "/api/documents/{name:path}/-/sessions/{id}/summary"): Rule(Role.VIEWER),
    ("POST", "/api/documents/{name:path}/-/bookmarks"): Rule(Role.OWNER, body={"label": "here"}),
    ("POST", "/api/documents/{name:path}/-/replays"): Rule(Role.VIEWER),
    ("GET", _REPLAY): Rule(Role.VIEWER),
    ("DELETE", _REPLAY): Rule(Role.VIEWER),  # then: only who opened it, or an owner
    **{("POST", f"{_REPLAY}/{action}"): Rule(Role.VIEWER) for action in ("play", "pause", "seek", "speed")},
    # webhooks (owners only: a webhook sends the document's events to any URL)
    ("POST", _WEBHOOKS): Rule(
        Role.OWNER, body={"url": "https://hooks.example.com/in", "events": ["comment"]}
    ),
    ("GET", _WEBHOOKS): Rule(Role.OWNER),
    ("DELETE", f"{_WEBHOOKS}/{{webhook}}"): Rule(Role.OWNER),
    ("GET", f"{_WEBHOOKS}/{{webhook}}/deliveries"): Rule(Role.OWNER),
}

#: Values for path parameters, by name; a parameter not listed here fails the test (add it).
PARAMS = {
    "name": "team/doc",
    "user": "bo",
    "invite": "0" * 32,
    "id": "0" * 32,
    "comment": "0" * 32,
    "emoji": "%F0%9F%91%8D",
    "webhook": "0" * 32,
    "path": "app.js",
}

app, hub = build(Settings(secret=SECRET), MemoryStorage())


def endpoints() -> Iterator[tuple[str, str]]:
    for route in app.routes:
        if isinstance(route, Route) and route.methods:
            for method in sorted(route.methods - {"HEAD"}):
                yield method, route.path
        else:  # a Mount, a WebSocketRoute, ...: needs a rule under "ANY"
            yield "ANY", getattr(route, "path", repr(route))


ENDPOINTS = sorted(set(endpoints()))


def test_every_route_has_a_rule() -> None:
    missing = [f"{method} {path}" for method, path in ENDPOINTS if (method, path) not in RULES]
    assert not missing, (
        "routes without an entry in RULES (add each with the minimum role it enforces): " + ", ".join(missing)
    )


def test_no_rule_for_a_route_that_is_gone() -> None:
    stale = set(RULES) - set(ENDPOINTS)
    assert not stale, f"RULES lists routes the app does not have: {sorted(stale)}"


def url_of(path: str, rule: Rule) -> str:
    def value(match: re.Match[str]) -> str:
        name = match.group(1)
        assert name in PARAMS, f"no test value for path parameter {name!r}: add it to PARAMS"
        return PARAMS[name]

    url = re.sub(r"\{(\w+)(?::\w+)?\}", value, path)
    return f"{url}?{rule.query}" if rule.query else url


def token(grant: str, role: Role) -> str:
    grants = {} if role == Role.NONE else {grant: role}
    return issue("tester", "Tester", grants, now=time.time(), ttl=600, secret=SECRET)


@pytest.mark.parametrize(("method", "path"), [e for e in ENDPOINTS if e in RULES])
async def test_route_enforces_its_minimum_role(method: str, path: str) -> None:
    rule = RULES[(method, path)]
    url = url_of(path, rule)
    body = rule.body or None
    anonymous = await call(app, method, url, json=body)
    if rule.needs == PUBLIC:
        assert anonymous.status not in (401, 403), anonymous.json()
        return
    assert anonymous.status == 401, (
        f"{method} {url} without credentials: {anonymous.status} {anonymous.body!r}"
    )
    assert anonymous.json()["error"] == "unauthorized"
    forged = issue("tester", "T", {"*": Role.OWNER}, now=time.time(), ttl=600, secret="another-secret")
    assert (await call(app, method, url, json=body, token=forged)).status == 401
    expired = issue("tester", "T", {"*": Role.OWNER}, now=time.time() - 700, ttl=600, secret=SECRET)
    assert (await call(app, method, url, json=body, token=expired)).status == 401
    if rule.needs == IDENTITY:
        accepted = await call(app, method, url, json=body, token=token(rule.grant, Role.NONE))
        assert accepted.status not in (401, 403), accepted.body
        return
    assert isinstance(rule.needs, Role)
    below = await call(app, method, url, json=body, token=token(rule.grant, Role(rule.needs - 1)))
    assert below.status == 403, (
        f"{method} {url} with {Role(rule.needs - 1).name}: {below.status} {below.body!r}"
    )
    enough = await call(app, method, url, json=body, token=token(rule.grant, rule.needs))
    assert enough.status not in (401, 403), f"{method} {url} with {rule.needs.name}: {enough.body!r}"
