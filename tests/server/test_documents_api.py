"""Documents API against a real server: list, create, describe, rename, delete, content; error cases."""

from __future__ import annotations

from typing import Any

from pycrdt import Array, Doc, Map, Text
from websockets.asyncio.client import connect as ws_connect
from websockets.exceptions import ConnectionClosed

from client import connect
from tests.support.http import Reply, request
from tests.support.server_process import ServerProcess


async def test_create_list_describe(server: ServerProcess) -> None:
    port = server.port
    for name in ("team/b", "team/a", "other/x"):
        assert request(port, "POST", "/api/documents", {"name": name}).status == 201
    assert request(port, "POST", "/api/documents", {"name": "team/a"}).status == 409
    listed = request(port, "GET", "/api/documents?prefix=team/").json
    assert [d["name"] for d in listed["documents"]] == ["team/a", "team/b"]
    assert listed["next"] is None
    page = request(port, "GET", "/api/documents?limit=1").json
    assert [d["name"] for d in page["documents"]] == ["other/x"] and page["next"] == "other/x"
    rest = request(port, "GET", "/api/documents?limit=5&after=other/x").json
    assert [d["name"] for d in rest["documents"]] == ["team/a", "team/b"]
    described = request(port, "GET", "/api/documents/team/a").json
    assert described["name"] == "team/a" and described["last_seq"] == 0 and described["epoch"]


async def test_content_as_json_and_as_update(server: ServerProcess) -> None:
    doc: Doc = Doc()
    async with connect(server.ws("notes/1"), doc) as client:
        doc.get("body", type=Text).insert(0, "héllo 😀")
        doc.get("meta", type=Map)["title"] = "Notes"
        doc.get("items", type=Array).append("one")
        await client.flushed()
        reply = request(server.port, "GET", "/api/documents/notes/1/-/content")
        assert reply.status == 200
        roots = reply.json["roots"]
        assert roots["body"] == {"type": "text", "value": "héllo 😀"}
        assert roots["meta"] == {"type": "map", "value": {"title": "Notes"}}
        assert roots["items"] == {"type": "array", "value": ["one"]}
        assert int(reply.headers["x-cocreate-seq"]) >= 1
    # unloaded now: the same content comes from storage
    update = request(server.port, "GET", "/api/documents/notes/1/-/content?format=update")
    assert update.headers["content-type"] == "application/octet-stream"
    copy = Doc()
    copy.apply_update(update.body)
    assert str(copy.get("body", type=Text)) == "héllo 😀"


async def test_rename_moves_document_and_closes_its_connections(server: ServerProcess) -> None:
    doc: Doc = Doc()
    async with ws_connect(server.ws("old/name")) as raw:
        await raw.recv()
        async with connect(server.ws("old/name"), doc) as client:
            doc.get("t", type=Text).insert(0, "kept")
            await client.flushed()
            reply = request(server.port, "PATCH", "/api/documents/old/name", {"name": "new/name"})
            assert reply.status == 200 and reply.json["name"] == "new/name"
        try:
            while True:
                await raw.recv()
        except ConnectionClosed:
            assert raw.close_code == 4404
    assert request(server.port, "GET", "/api/documents/old/name").status == 404
    content = request(server.port, "GET", "/api/documents/new/name/-/content").json
    assert content["roots"]["t"]["value"] == "kept"


async def test_delete_then_recreate_gets_a_new_epoch_and_empty_content(server: ServerProcess) -> None:
    doc: Doc = Doc()
    async with connect(server.ws("gone"), doc) as client:
        doc.get("t", type=Text).insert(0, "old text")
        await client.flushed()
        epoch = request(server.port, "GET", "/api/documents/gone").json["epoch"]
    assert request(server.port, "DELETE", "/api/documents/gone").status == 204
    assert request(server.port, "GET", "/api/documents/gone").status == 404
    assert request(server.port, "DELETE", "/api/documents/gone").status == 404
    created = request(server.port, "POST", "/api/documents", {"name": "gone"}).json
    assert created["epoch"] != epoch
    # The old copy, reconnecting, is refused for good instead of merging its stale text back in.
    async with connect(server.ws("gone"), doc, wait_synced=False) as stale:
        await stale.wait_closed(timeout=10)
        assert stale.closed_reason is not None and "4404" in stale.closed_reason
    content = request(server.port, "GET", "/api/documents/gone/-/content").json
    assert content["roots"] == {}


BAD_NAMES = ["a%00b", "x" * 201, "a/./b", "a/%20b"]


def assert_error(reply: Reply, status: int, error: str, field: str | None = None) -> None:
    assert reply.status == status, (reply.status, reply.body)
    assert reply.headers["content-type"].startswith("application/json")
    assert reply.json["error"] == error and reply.json["detail"]
    if field is not None:
        assert reply.json["field"] == field


async def test_error_cases(server: ServerProcess) -> None:
    port = server.port
    for method, path in [
        ("GET", "/api/documents/nope"),
        ("GET", "/api/documents/nope/-/content"),
        ("GET", "/api/documents/nope/-/content?format=update"),
        ("DELETE", "/api/documents/nope"),
    ]:
        assert_error(request(port, method, path), 404, "document_not_found")
    assert_error(request(port, "PATCH", "/api/documents/nope", {"name": "x"}), 404, "document_not_found")
    for name in BAD_NAMES:
        for method, path in [
            ("GET", f"/api/documents/{name}"),
            ("GET", f"/api/documents/{name}/-/content"),
            ("DELETE", f"/api/documents/{name}"),
        ]:
            assert_error(request(port, method, path), 422, "invalid_document_name", "document")
        patch = request(port, "PATCH", f"/api/documents/{name}", {"name": "fine"})
        assert_error(patch, 422, "invalid_document_name", "document")
    bad = request(port, "POST", "/api/documents", {"name": "a//b"})
    assert_error(bad, 422, "invalid_document_name", "name")
    assert request(port, "POST", "/api/documents", {"name": 5}).json["field"] == "name"
    assert_error(request(port, "POST", "/api/documents", {"name": "x" * 201}), 422, "invalid_document_name")
    assert request(port, "POST", "/api/documents", raw=b"{not json").status == 422
    assert request(port, "POST", "/api/documents", raw=b"[1]").status == 422
    assert request(port, "POST", "/api/documents", raw=b"x" * 300_000).status == 413
    assert request(port, "GET", "/api/documents?limit=0").status == 422
    assert request(port, "GET", "/api/documents?limit=abc").json["field"] == "limit"
    assert request(port, "GET", "/api/documents/a/../b").status in (404, 422)
    request(port, "POST", "/api/documents", {"name": "exists"})
    request(port, "POST", "/api/documents", {"name": "taken"})
    assert_error(request(port, "PATCH", "/api/documents/exists", {"name": "taken"}), 409, "document_exists")
    for new_name in ["a\x00b", "x" * 201, "a//b", " lead", "a/-/b"]:
        patch = request(port, "PATCH", "/api/documents/exists", {"name": new_name})
        assert_error(patch, 422, "invalid_document_name", "name")
    assert_error(request(port, "PATCH", "/api/documents/exists", {"name": 5}), 422, "invalid_field", "name")
    assert_error(request(port, "PATCH", "/api/documents/exists", {}), 422, "invalid_field", "name")
    assert_error(
        request(port, "PATCH", "/api/documents/nope", {"name": "a//b"}), 422, "invalid_document_name", "name"
    )
    assert request(port, "GET", "/api/documents/exists").status == 200  # nothing renamed it
    assert request(port, "GET", "/api/documents/exists/-/content?format=xml").status == 422
    assert request(port, "GET", "/api/documents/exists/-/content?root=t:bogus").status == 422


def listed(port: int, name: str) -> dict[str, Any]:
    documents = request(port, "GET", f"/api/documents?prefix={name}").json["documents"]
    return next(d for d in documents if d["name"] == name)


async def test_the_listing_shows_size_last_author_and_last_change_after_an_edit(
    server: ServerProcess,
) -> None:
    port = server.port
    created = request(port, "POST", "/api/documents", {"name": "edited"}).json
    before = listed(port, "edited")
    assert (before["size"], before["last_seq"], before["last_author"]) == (0, 0, None)
    assert before["updated_at"] == before["created_at"] == created["created_at"]
    assert not before["loaded"] and before["connections"] == 0
    doc: Doc = Doc()
    async with connect(server.ws("edited"), doc) as client:
        doc.get("t", type=Text).insert(0, "some words")
        await client.flushed()
        during = listed(port, "edited")
        assert during["loaded"] and during["connections"] == 1
        assert during["last_seq"] >= 1 and during["size"] > 0 and during["last_author"]
        assert during["updated_at"] > before["updated_at"] and during["created_at"] == before["created_at"]
        doc.get("t", type=Text).insert(0, "more ")
        await client.flushed()
    after = listed(port, "edited")
    assert after["last_seq"] > during["last_seq"] and after["size"] > during["size"]
    assert after["updated_at"] > during["updated_at"] and after["last_author"] == during["last_author"]
    assert after == request(port, "GET", "/api/documents/edited").json  # the listing and describe agree


async def test_a_deleted_document_is_unloaded_and_its_name_recreated_with_a_new_epoch(
    server: ServerProcess,
) -> None:
    port = server.port
    doc: Doc = Doc()
    async with connect(server.ws("short/lived"), doc) as client:
        doc.get("t", type=Text).insert(0, "old")
        await client.flushed()
        old = request(port, "GET", "/api/documents/short/lived").json
        assert old["loaded"] and request(port, "GET", "/healthz").json["documents_loaded"] == 1
        assert request(port, "DELETE", "/api/documents/short/lived").status == 204
        assert request(port, "GET", "/healthz").json["documents_loaded"] == 0  # no room kept
        await client.wait_closed(timeout=10)
    assert "short/lived" not in [d["name"] for d in request(port, "GET", "/api/documents").json["documents"]]
    fresh: Doc = Doc()
    async with connect(server.ws("short/lived"), fresh):  # a connection re-creates the name
        recreated = request(port, "GET", "/api/documents/short/lived").json
        assert recreated["epoch"] != old["epoch"] and recreated["id"] != old["id"]
        assert recreated["loaded"] and recreated["last_seq"] == 0 and str(fresh.get("t", type=Text)) == ""
    assert request(port, "GET", "/api/documents/short/lived/-/content").json["roots"] == {}


async def test_content_of_a_text_whose_first_characters_were_deleted(server: ServerProcess) -> None:
    doc: Doc = Doc()
    async with connect(server.ws("trimmed"), doc) as client:
        text = doc.get("t", type=Text)
        text.insert(0, "abc")
        del text[0:1]
        await client.flushed()
    roots = request(server.port, "GET", "/api/documents/trimmed/-/content").json["roots"]
    assert roots == {"t": {"type": "text", "value": "bc"}}
