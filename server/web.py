"""HTTP routes for the browser app: `/` serves its page, `/assets/...` the built files (503 until built)."""

from __future__ import annotations

from pathlib import Path, PurePosixPath

from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, Response
from starlette.routing import Route

from server.http import HTTPError, error
from server.hub import Hub

SOURCE_DIST = Path(__file__).resolve().parents[1] / "client" / "web" / "dist"
CONTENT_TYPES = {
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".map": "application/json; charset=utf-8",
    ".txt": "text/plain; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".ico": "image/x-icon",
    ".woff2": "font/woff2",
}
# Built file names carry a content hash (build.mjs), so a cached copy never goes stale.
IMMUTABLE = "public, max-age=31536000, immutable"
PAGE_HEADERS = {
    "Cache-Control": "no-cache",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",  # invite codes and tokens travel in the fragment; keep URLs private
}
NOT_BUILT_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>cocreate: the browser app is not built</title></head>
<body style="font-family: system-ui, sans-serif; max-width: 40rem; margin: 4rem auto; line-height: 1.5">
<h1>The browser app is not built yet</h1>
<p>The server is running, but the web app's files are missing ({where}).</p>
<p>Build them from the repository root with <code>make web</code> (or <code>make serve</code>,
which builds them first), then reload this page.</p>
</body></html>
"""


def dist_dir(hub: Hub) -> Path:
    configured = hub.settings.web_dir
    return Path(configured) if configured else SOURCE_DIST


def asset_path(assets: Path, raw: str) -> Path:
    """The file under `assets` that `raw` names; 404 for anything else (traversal, hidden, unknown type)."""
    parts = PurePosixPath(raw).parts
    if (
        not parts
        or raw.startswith("/")
        or "\\" in raw
        or "\x00" in raw
        or any(part in ("", ".", "..") or part.startswith(".") for part in parts)
    ):
        raise HTTPError(404, "asset_not_found", f"no asset {raw!r}")
    candidate = assets.joinpath(*parts)
    if candidate.suffix not in CONTENT_TYPES or not candidate.is_file():
        raise HTTPError(404, "asset_not_found", f"no asset {raw!r}")
    resolved, root = candidate.resolve(), assets.resolve()
    if not resolved.is_relative_to(root):  # a symlink pointing out of the folder
        raise HTTPError(404, "asset_not_found", f"no asset {raw!r}")
    return resolved


def accepts_gzip(accept_encoding: str) -> bool:
    """Whether an Accept-Encoding header allows gzip (`gzip;q=0` refuses it)."""
    for item in accept_encoding.lower().split(","):
        coding, _, params = item.strip().partition(";")
        if coding.strip() in ("gzip", "*"):
            quality = params.strip().removeprefix("q=").strip() if params.strip().startswith("q=") else "1"
            return quality.rstrip("0").rstrip(".") not in ("", "0")
    return False


def routes(hub: Hub) -> list[Route]:
    async def page(request: Request) -> Response:
        index = dist_dir(hub) / "index.html"
        if not index.is_file():
            if "text/html" in request.headers.get("accept", ""):
                return HTMLResponse(NOT_BUILT_PAGE.format(where=index.parent), status_code=503)
            return error(503, "web_app_not_built", f"{index} is missing: run `make web` to build the app")
        return FileResponse(index, media_type="text/html; charset=utf-8", headers=PAGE_HEADERS)

    async def asset(request: Request) -> Response:
        path = asset_path(dist_dir(hub) / "assets", request.path_params["path"])
        headers = {"Cache-Control": IMMUTABLE, "X-Content-Type-Options": "nosniff", "Vary": "Accept-Encoding"}
        media_type = CONTENT_TYPES[path.suffix]
        compressed = path.with_name(path.name + ".gz")  # written by build.mjs beside the .js and .css
        if accepts_gzip(request.headers.get("accept-encoding", "")) and compressed.is_file():
            headers["Content-Encoding"] = "gzip"
            return FileResponse(compressed, media_type=media_type, headers=headers)
        return FileResponse(path, media_type=media_type, headers=headers)

    return [
        Route("/", page, methods=["GET"]),
        Route("/assets/{path:path}", asset, methods=["GET"]),
    ]
