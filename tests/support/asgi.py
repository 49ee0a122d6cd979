"""A tiny in-process HTTP client for the starlette app (no sockets, no extra dependency)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlsplit

import orjson
from starlette.types import ASGIApp, Message


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes = b""

    def json(self) -> Any:
        return orjson.loads(self.body) if self.body else None


async def call(
    app: ASGIApp,
    method: str,
    target: str,
    *,
    json: Any = None,
    body: bytes | None = None,
    token: str | None = None,
    headers: dict[str, str] | None = None,
) -> Reply:
    """Send one request through the ASGI app; `target` is a (percent-encoded) path and optional query."""
    parts = urlsplit(target)
    payload = orjson.dumps(json) if json is not None else (body or b"")
    raw_headers = [(b"host", b"testserver")]
    if payload:
        raw_headers += [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(payload)).encode()),
        ]
    if token is not None:
        raw_headers.append((b"authorization", f"Bearer {token}".encode()))
    for name, value in (headers or {}).items():
        raw_headers.append((name.lower().encode(), value.encode()))
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
        "headers": raw_headers,
        "client": ("127.0.0.1", 50000),
        "server": ("testserver", 80),
    }
    sent = False

    async def receive() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": payload, "more_body": False}
        return {"type": "http.disconnect"}

    reply = Reply(0, {})

    async def send(message: Message) -> None:
        if message["type"] == "http.response.start":
            reply.status = message["status"]
            reply.headers = {k.decode().lower(): v.decode() for k, v in message.get("headers", [])}
        elif message["type"] == "http.response.body":
            reply.body += message.get("body", b"")

    await app(scope, receive, send)
    return reply
