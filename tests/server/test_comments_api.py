"""Comment routes in process (memory storage, signed tokens): every route, its role, and its errors."""

from __future__ import annotations

import base64
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest
from pycrdt import Array, Assoc, Doc, StickyIndex, Text
from starlette.applications import Starlette

from persistence.base import NewUpdate
from persistence.comments import comment_store_for
from persistence.memory import MemoryStorage
from server.app import build
from server.auth import Role
from server.hub import Hub
from server.settings import Settings
from server.tokens import issue
from tests.support.asgi import Reply, call

SECRET = "comments-test-secret-0123456789abcdef"
DOC = "team/notes"
BASE = f"/api/documents/{DOC}/-"
EMOJI = "\U0001f600"
TEXT = f"Hello {EMOJI} w\u00f6rld, caf\u00e9 {EMOJI}{EMOJI} end"


def tok(user: str, role: Role) -> str:
    return issue(user, user.title(), {"team/*": role}, now=time.time(), ttl=3600, secret=SECRET)


OWNER, ANN, BO = tok("olga", Role.OWNER), tok("ann", Role.COMMENTER), tok("bo", Role.COMMENTER)
VIEWER = tok("vic", Role.VIEWER)
STRANGER = issue("x", "X", {"other/*": Role.OWNER}, now=time.time(), ttl=3600, secret=SECRET)


@dataclass
class Api:
    app: Starlette
    hub: Hub
    doc: Doc[Any]

    async def __call__(self, method: str, path: str, token: str | None = ANN, **kw: Any) -> Reply:
        return await call(self.app, method, path, token=token, **kw)

    async def thread(self, start: int = 6, end: int = 13, unit: str = "codepoint", body: str = "hi") -> Any:
        reply = await self(
            "POST",
            f"{BASE}/threads",
            json={"root": "t", "range": {"start": start, "end": end, "unit": unit}, "body": body},
        )
        assert reply.status == 201, reply.body
        return reply.json()

    async def edit(self, change: Any) -> None:
        """Change the stored document (no room is loaded in these tests)."""
        before = self.doc.get_state()
        change(self.doc.get("t", type=Text))
        record = await self.hub.storage.get_document(DOC)
        assert record is not None
        await self.hub.storage.append_updates(
            record.id, [NewUpdate(self.doc.get_update(before), "ann", time.time())]
        )


@pytest.fixture
async def api() -> AsyncIterator[Api]:
    storage = MemoryStorage()
    app, hub = build(Settings(secret=SECRET), storage)
    record = await storage.create_document(DOC, time.time())
    doc: Doc[Any] = Doc()
    doc.get("t", type=Text).insert(0, TEXT)
    doc.get("list", type=Array).append("not text")
    await storage.append_updates(record.id, [NewUpdate(doc.get_update(), "ann", time.time())])
    yield Api(app, hub, doc)


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


async def test_create_and_read_in_both_units(api: Api) -> None:
    made = await api.thread(6, 13, "codepoint", "look @bo and @cy.")
    assert made["quote"] == f"{EMOJI} w\u00f6rld" and made["range"] == {
        "start": 6,
        "end": 13,
        "unit": "codepoint",
    }
    assert made["state"] == "open" and made["created_by"] == "ann"
    assert made["comments"][0]["mentions"] == ["bo", "cy"]
    got = (await api("GET", f"{BASE}/threads/{made['id']}?unit=utf16", token=VIEWER)).json()
    assert got["range"] == {"start": 6, "end": 14, "unit": "utf16"} and got["quote"] == made["quote"]
    await api.edit(lambda t: t.insert(0, f"{EMOJI}\u00e9 "))  # 3 code points, 4 UTF-16 units before it
    moved = (await api("GET", f"{BASE}/threads/{made['id']}?unit=utf16")).json()
    assert moved["range"]["start"] == 10 and moved["quote"] == made["quote"]
    listed = (await api("GET", f"{BASE}/threads?unit=codepoint", token=VIEWER)).json()
    assert [(t["id"], t["range"]["start"]) for t in listed["threads"]] == [(made["id"], 9)]


async def test_create_from_client_positions(api: Api) -> None:
    text = api.doc.get("t", type=Text)
    start = StickyIndex.new(text, 0, Assoc.AFTER).encode()  # one block: pycrdt's indices are right here
    end = StickyIndex.new(text, 5, Assoc.BEFORE).encode()
    made = (
        await api(
            "POST",
            f"{BASE}/threads",
            json={"root": "t", "anchor": {"start": b64(start), "end": b64(end)}, "body": "x"},
        )
    ).json()
    assert made["quote"] == "Hello" and made["anchor"] == {"start": b64(start), "end": b64(end)}
    foreign: Doc[Any] = Doc()
    foreign.get("t", type=Text).insert(0, "another document")
    alien = StickyIndex.new(foreign.get("t", type=Text), 1, Assoc.AFTER).encode()
    for anchor, field in (
        ({"start": b64(alien), "end": b64(end)}, "anchor.start"),
        ({"start": b64(start), "end": "!!notbase64"}, "anchor.end"),
        ({"start": b64(b"\x09\x01"), "end": b64(end)}, "anchor.start"),
        ({"start": b64(start)}, "anchor.end"),
        ("nope", "anchor"),
    ):
        reply = await api("POST", f"{BASE}/threads", json={"root": "t", "anchor": anchor, "body": "x"})
        assert reply.status == 422 and reply.json()["field"] == field, reply.body


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"root": "t", "range": {"start": 0, "end": 999}, "body": "x"}, "range.end"),
        ({"root": "t", "range": {"start": -1, "end": 2}, "body": "x"}, "range.start"),
        ({"root": "t", "range": {"start": 3, "end": 3}, "body": "x"}, "range.end"),
        ({"root": "t", "range": {"start": 7, "end": 9, "unit": "utf16"}, "body": "x"}, "range.start"),
        ({"root": "t", "range": {"start": "1", "end": 2}, "body": "x"}, "range.start"),
        ({"root": "t", "range": {"start": 1, "end": 2, "unit": "bytes"}, "body": "x"}, "range.unit"),
        ({"root": "list", "range": {"start": 0, "end": 1}, "body": "x"}, "root"),
        ({"root": "nope", "range": {"start": 0, "end": 1}, "body": "x"}, "root"),
        ({"root": 7, "range": {"start": 0, "end": 1}, "body": "x"}, "root"),
        ({"root": "t", "body": "x"}, "range"),
        ({"root": "t", "range": {"start": 0, "end": 1}, "body": "  "}, "body"),
        ({"root": "t", "range": {"start": 0, "end": 1}, "body": 5}, "body"),
        ({"root": "t", "range": {"start": 0, "end": 1}, "body": "bell\x07"}, "body"),
    ],
)
async def test_bad_thread_input_is_422_naming_the_field(
    api: Api, payload: dict[str, Any], field: str
) -> None:
    reply = await api("POST", f"{BASE}/threads", json=payload)
    assert reply.status == 422 and reply.json()["field"] == field, reply.body


async def test_size_caps(api: Api) -> None:
    too_long = await api(
        "POST", f"{BASE}/threads", json={"root": "t", "range": {"start": 0, "end": 1}, "body": "x" * 10_001}
    )
    assert too_long.status == 413 and too_long.json()["field"] == "body"
    huge = await api(
        "POST", f"{BASE}/threads", json={"root": "t", "range": {"start": 0, "end": 1}, "body": "x" * 70_000}
    )
    assert huge.status == 413 and huge.json()["error"] == "body_too_large"
    made = await api.thread()
    reply = await api("POST", f"{BASE}/threads/{made['id']}/comments", json={"body": "y" * 100_000})
    assert reply.status == 413


async def test_comments_replies_edits_and_deletes(api: Api) -> None:
    made = await api.thread(body="first")
    thread = f"{BASE}/threads/{made['id']}"
    first = made["comments"][0]["id"]
    reply = (
        await api("POST", f"{thread}/comments", token=BO, json={"body": "answer @ann", "reply_to": first})
    ).json()
    assert (reply["author"], reply["reply_to"], reply["mentions"]) == ("bo", first, ["ann"])
    bad_parent = await api("POST", f"{thread}/comments", json={"body": "x", "reply_to": "0" * 32})
    assert bad_parent.status == 422 and bad_parent.json()["field"] == "reply_to"
    assert (await api("PATCH", f"{thread}/comments/{reply['id']}", json={"body": "hijack"})).status == 403
    edited = (
        await api("PATCH", f"{thread}/comments/{reply['id']}", token=BO, json={"body": "better"})
    ).json()
    assert edited["body"] == "better" and edited["edited_at"] and edited["mentions"] == []
    assert (await api("DELETE", f"{thread}/comments/{reply['id']}", token=ANN)).status == 403
    deleted = (await api("DELETE", f"{thread}/comments/{reply['id']}", token=OWNER)).json()
    assert deleted["deleted"] and deleted["body"] == ""
    assert (
        await api("PATCH", f"{thread}/comments/{reply['id']}", token=BO, json={"body": "z"})
    ).status == 404
    own = (await api("DELETE", f"{thread}/comments/{first}")).json()
    assert own["deleted"]
    got = (await api("GET", thread)).json()
    assert [(c["id"], c["deleted"]) for c in got["comments"]] == [(first, True), (reply["id"], True)]


async def test_resolve_reopen_and_status_filters(api: Api) -> None:
    one, two = await api.thread(0, 5), await api.thread(6, 8)
    resolved = (await api("POST", f"{BASE}/threads/{one['id']}/resolve", token=BO)).json()
    assert (resolved["status"], resolved["state"], resolved["resolved_by"]) == ("resolved", "resolved", "bo")
    await api.edit(lambda t: t.__delitem__(slice(len(b"Hello "), len(f"Hello {EMOJI} ".encode()))))
    states = {
        s: [t["id"] for t in (await api("GET", f"{BASE}/threads?status={s}")).json()["threads"]]
        for s in ("open", "resolved", "orphaned", "all")
    }
    assert states == {
        "open": [],
        "resolved": [one["id"]],
        "orphaned": [two["id"]],
        "all": [one["id"], two["id"]],
    }
    reopened = (await api("POST", f"{BASE}/threads/{one['id']}/reopen")).json()
    assert (reopened["status"], reopened["resolved_by"]) == ("open", None)
    bad = await api("GET", f"{BASE}/threads?status=closed")
    assert bad.status == 422 and bad.json()["field"] == "status"
    assert (await api("GET", f"{BASE}/threads?unit=bytes")).json()["field"] == "unit"


async def test_reactions_and_mentions(api: Api) -> None:
    made = await api.thread(body="ping @bo")
    path = f"{BASE}/threads/{made['id']}/comments/{made['comments'][0]['id']}/reactions"
    for token in (ANN, BO, BO):
        assert (await api("PUT", f"{path}/{EMOJI}", token=token)).status == 200
    after = (await api("PUT", f"{path}/\U0001f44d\U0001f3fd", token=BO)).json()
    assert after["reactions"] == [
        {"emoji": EMOJI, "users": ["ann", "bo"], "count": 2},
        {"emoji": "\U0001f44d\U0001f3fd", "users": ["bo"], "count": 1},
    ]
    removed = (await api("DELETE", f"{path}/{EMOJI}", token=ANN)).json()
    assert removed["reactions"][0] == {"emoji": EMOJI, "users": ["bo"], "count": 1}
    for emoji in ("a%20b", "x" * 17, "%00"):
        reply = await api("PUT", f"{path}/{emoji}")
        assert reply.status == 422 and reply.json()["field"] == "emoji"
    mentions = (await api("GET", f"{BASE}/mentions", token=BO)).json()
    assert [(m["user"], m["author"], m["thread"]) for m in mentions["mentions"]] == [
        ("bo", "ann", made["id"])
    ]
    assert (await api("GET", f"{BASE}/mentions?user=cy", token=OWNER)).json()["mentions"] == []
    for token in (ANN, VIEWER):  # only their own mentions, unless owner
        refused = await api("GET", f"{BASE}/mentions?user=bo", token=token)
        assert refused.status == 403 and refused.json()["field"] == "user"
    assert (await api("GET", f"{BASE}/mentions?user=ann", token=ANN)).json()["mentions"] == []
    by_owner = (await api("GET", f"{BASE}/mentions?user=bo", token=OWNER)).json()
    assert by_owner["mentions"] == mentions["mentions"]
    assert (await api("GET", f"{BASE}/mentions?before=2000-01-01T00:00:00Z", token=BO)).json()[
        "mentions"
    ] == []
    assert (await api("GET", f"{BASE}/mentions?limit=0")).json()["field"] == "limit"


async def test_my_mentions_across_documents_paged(api: Api) -> None:
    """`GET /api/mentions`: the caller's own, newest first, only in live documents they may read."""
    stranger_doc = "other/secret"
    for name in ("team/plan", "team/gone", stranger_doc):
        record = await api.hub.storage.create_document(name, time.time())
        await api.hub.storage.append_updates(record.id, [NewUpdate(api.doc.get_update(), "ann", time.time())])
    made = [await api.thread(body="first @bo")]
    for name, token in (("team/plan", ANN), (stranger_doc, STRANGER), ("team/gone", ANN), ("team/plan", ANN)):
        body = {"root": "t", "range": {"start": 0, "end": 2, "unit": "codepoint"}, "body": f"in {name} @bo"}
        reply = await api("POST", f"/api/documents/{name}/-/threads", token=token, json=body)
        assert reply.status == 201, reply.body
        made.append(reply.json())
    await api.hub.storage.delete_document("team/gone", time.time())
    whole = (await api("GET", "/api/mentions", token=BO)).json()
    assert whole["user"] == "bo" and whole["next_before"] is None
    expected = [("team/plan", made[4]["id"]), ("team/plan", made[1]["id"]), (DOC, made[0]["id"])]
    assert [(m["document"], m["thread"]) for m in whole["mentions"]] == expected
    pages, before = [], ""
    while True:
        page = (await api("GET", f"/api/mentions?limit=1{before}", token=BO)).json()
        pages += page["mentions"]
        if page["next_before"] is None:
            break
        before = f"&before={page['next_before']}"
    assert pages == whole["mentions"]
    assert (await api("GET", "/api/mentions", token=ANN)).json()["mentions"] == []  # nobody named ann
    assert (await api("GET", "/api/mentions?limit=5000", token=BO)).status == 422
    assert (await api("GET", "/api/mentions", token=None)).status == 401


async def test_not_found(api: Api) -> None:
    made = await api.thread()
    missing = "0" * 32
    assert (await api("GET", f"{BASE}/threads/{missing}")).json()["error"] == "thread_not_found"
    assert (await api("POST", f"{BASE}/threads/{missing}/comments", json={"body": "x"})).status == 404
    assert (await api("POST", f"{BASE}/threads/{missing}/resolve")).status == 404
    comment = f"{BASE}/threads/{made['id']}/comments/{missing}"
    for method in ("PATCH", "DELETE"):
        reply = await api(method, comment, json={"body": "x"})
        assert reply.status == 404 and reply.json()["error"] == "comment_not_found"
    assert (await api("PUT", f"{comment}/reactions/{EMOJI}")).status == 404
    other = "/api/documents/team/absent/-/threads"
    assert (await api("GET", other)).json()["error"] == "document_not_found"
    await api.hub.storage.create_document("team/other", time.time())
    elsewhere = await api("GET", f"/api/documents/team/other/-/threads/{made['id']}")
    assert elsewhere.status == 404  # a thread is only reachable through its own document


async def test_roles(api: Api) -> None:
    made = await api.thread()
    thread = f"{BASE}/threads/{made['id']}"
    assert (await api("GET", f"{BASE}/threads", token=None)).status == 401
    assert (await api("GET", f"{BASE}/threads", token=STRANGER)).status == 403
    assert (await api("GET", thread, token=VIEWER)).status == 200
    for method, path, body in (
        ("POST", f"{BASE}/threads", {"root": "t", "range": {"start": 0, "end": 1}, "body": "x"}),
        ("POST", f"{thread}/comments", {"body": "x"}),
        ("POST", f"{thread}/resolve", None),
        ("PUT", f"{thread}/comments/{made['comments'][0]['id']}/reactions/{EMOJI}", None),
    ):
        assert (await api(method, path, token=VIEWER, json=body)).status == 403


async def test_every_change_is_logged_in_order(api: Api) -> None:
    made = await api.thread(body="one")
    thread = f"{BASE}/threads/{made['id']}"
    await api("POST", f"{thread}/comments", json={"body": "two"})
    await api("POST", f"{thread}/resolve")
    await api("POST", f"{thread}/resolve")  # no change, no event
    record = await api.hub.storage.get_document(DOC)
    assert record is not None
    rows = await comment_store_for(api.hub.storage).read_events(record.id)
    assert [(r.seq, r.kind, r.author) for r in rows] == [
        (1, "comment.thread_created", "ann"),
        (2, "comment.added", "ann"),
        (3, "comment.thread_resolved", "ann"),
    ]
