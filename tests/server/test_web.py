"""The browser app's routes: the page, its assets (types, caching, no traversal), 503 until built."""

from __future__ import annotations

import gzip
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import anyio
import pytest

from persistence.memory import MemoryStorage
from server.app import build
from server.settings import Settings
from server.web import accepts_gzip, asset_path
from tests.support.asgi import Reply


async def call(app: Any, method: str, target: str, headers: dict[str, str] | None = None) -> Reply:
    """One request through the ASGI app. Unlike `tests.support.asgi.call`, the client stays
    connected until the body is sent (FileResponse stops streaming on an early `http.disconnect`)."""
    parts = urlsplit(target)
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": unquote(parts.path),
        "raw_path": parts.path.encode(),
        "query_string": parts.query.encode(),
        "root_path": "",
        "headers": [(b"host", b"testserver")]
        + [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()],
        "client": ("127.0.0.1", 50000),
        "server": ("testserver", 80),
    }
    done = anyio.Event()
    requested = False
    reply = Reply(0, {})

    async def receive() -> dict[str, Any]:
        nonlocal requested
        if not requested:
            requested = True
            return {"type": "http.request", "body": b"", "more_body": False}
        await done.wait()
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            reply.status = message["status"]
            reply.headers = {k.decode().lower(): v.decode() for k, v in message.get("headers", [])}
        elif message["type"] == "http.response.body":
            reply.body += message.get("body", b"")
            if not message.get("more_body"):
                done.set()

    await app(scope, receive, send)
    return reply


@pytest.fixture
def dist(tmp_path: Path) -> Path:
    folder = tmp_path / "dist"
    (folder / "assets" / "sub").mkdir(parents=True)
    (folder / "index.html").write_text("<!doctype html><title>cocreate</title>")
    (folder / "assets" / "app-ABC.js").write_text("console.log(1)")
    (folder / "assets" / "app-ABC.js.gz").write_bytes(gzip.compress(b"console.log(1)"))
    (folder / "assets" / "styles-ABC.css").write_text("body{}")
    (folder / "assets" / "app-ABC.js.map").write_text("{}")
    (folder / "assets" / "sub" / "x.svg").write_text("<svg/>")
    (folder / "assets" / ".hidden.js").write_text("secret")
    (folder / "assets" / "notes.md").write_text("not served")
    (tmp_path / "outside.js").write_text("outside")
    (folder / "assets" / "link.js").symlink_to(tmp_path / "outside.js")
    return folder


def app_for(web_dir: Path) -> Any:
    app, _ = build(Settings(web_dir=str(web_dir)), MemoryStorage())
    return app


async def test_page_and_assets_with_types_and_cache_headers(dist: Path) -> None:
    app = app_for(dist)
    page = await call(app, "GET", "/")
    assert page.status == 200 and b"<title>cocreate</title>" in page.body
    assert page.headers["content-type"].startswith("text/html")
    assert page.headers["cache-control"] == "no-cache"
    expected = {
        "app-ABC.js": "text/javascript",
        "styles-ABC.css": "text/css",
        "app-ABC.js.map": "application/json",
        "sub/x.svg": "image/svg+xml",
    }
    for name, kind in expected.items():
        reply = await call(app, "GET", f"/assets/{name}")
        assert reply.status == 200, name
        assert reply.headers["content-type"].startswith(kind)
        assert "immutable" in reply.headers["cache-control"]
        assert reply.headers["x-content-type-options"] == "nosniff"


@pytest.mark.parametrize(
    "target",
    [
        "/assets/missing.js",
        "/assets/.hidden.js",
        "/assets/notes.md",
        "/assets/link.js",  # a symlink out of the folder
        "/assets/%2E%2E/index.html",
        "/assets/sub/%2E%2E/%2E%2E/index.html",
        "/assets/..%2F..%2Foutside.js",
        "/assets/sub%5Cx.svg",
        "/assets/%00.js",
        "/assets/",
    ],
)
async def test_assets_outside_the_folder_or_unknown_are_404(dist: Path, target: str) -> None:
    reply = await call(app_for(dist), "GET", target)
    assert reply.status == 404, target
    assert reply.json()["error"] in ("asset_not_found", "http_error")


async def test_missing_build_answers_503_saying_how_to_build(tmp_path: Path) -> None:
    app = app_for(tmp_path / "nothing-here")
    as_json = await call(app, "GET", "/")
    assert as_json.status == 503
    assert as_json.json()["error"] == "web_app_not_built"
    assert "make web" in as_json.json()["detail"]
    as_html = await call(app, "GET", "/", headers={"Accept": "text/html,application/xhtml+xml"})
    assert as_html.status == 503 and b"make web" in as_html.body
    assert as_html.headers["content-type"].startswith("text/html")


async def test_api_routes_are_not_shadowed(dist: Path) -> None:
    app = app_for(dist)
    assert (await call(app, "GET", "/healthz")).json()["status"] == "ok"
    assert (await call(app, "GET", "/api/documents")).status == 200


def test_asset_path_refuses_traversal_without_touching_disk(tmp_path: Path) -> None:
    for raw in ("../x.js", "a/../../x.js", "/etc/passwd", "a//b.js", "./a.js"):
        with pytest.raises(Exception, match="no asset"):
            asset_path(tmp_path, raw)


async def test_precompressed_assets_for_browsers_that_accept_gzip(dist: Path) -> None:
    app = app_for(dist)
    zipped = await call(app, "GET", "/assets/app-ABC.js", headers={"Accept-Encoding": "gzip, deflate, br"})
    assert zipped.headers["content-encoding"] == "gzip"
    assert zipped.headers["content-type"].startswith("text/javascript")
    assert gzip.decompress(zipped.body) == b"console.log(1)"
    plain = await call(app, "GET", "/assets/app-ABC.js", headers={"Accept-Encoding": "gzip;q=0"})
    assert "content-encoding" not in plain.headers and plain.body == b"console.log(1)"
    css = await call(app, "GET", "/assets/styles-ABC.css", headers={"Accept-Encoding": "gzip"})
    assert "content-encoding" not in css.headers and css.body == b"body{}"  # no .gz beside it
    assert (await call(app, "GET", "/assets/app-ABC.js.gz")).status == 404


@pytest.mark.parametrize(
    ("header", "accepted"),
    [("gzip", True), ("deflate, gzip;q=0.5", True), ("*", True), ("gzip;q=0", False), ("gzip;q=0.000", False),
     ("br", False), ("", False), ("identity", False)],
)  # fmt: skip
def test_accept_encoding_parsing(header: str, accepted: bool) -> None:
    assert accepts_gzip(header) is accepted
