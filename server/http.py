"""Shared HTTP plumbing for the route modules: JSON responses and errors, body limits, role checks."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from server.auth import AuthError, Credentials, Identity, Role, authorize
from server.hub import Hub
from server.names import InvalidName, normalize_name

MAX_JSON_BODY = 256 * 1024


class JSONResponse(Response):
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


class HTTPError(Exception):
    """Raised by route code; rendered as `{"error": code, "detail": ...}` with `status`."""

    def __init__(self, status: int, error: str, detail: str, **extra: Any) -> None:
        super().__init__(detail)
        self.status = status
        self.error = error
        self.detail = detail
        self.extra = extra

    def response(self) -> JSONResponse:
        return JSONResponse(
            {"error": self.error, "detail": self.detail, **self.extra}, status_code=self.status
        )


def error(status: int, code: str, detail: str) -> JSONResponse:
    return HTTPError(status, code, detail).response()


async def read_json(request: Request, max_bytes: int = MAX_JSON_BODY) -> dict[str, Any]:
    """The request's JSON object body; 413 when too big, 422 when not a JSON object."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > max_bytes:
        raise HTTPError(413, "body_too_large", f"request body over {max_bytes} bytes")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > max_bytes:
            raise HTTPError(413, "body_too_large", f"request body over {max_bytes} bytes")
    if not body:
        return {}
    try:
        value = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise HTTPError(422, "invalid_json", f"body is not JSON: {exc}") from None
    if not isinstance(value, dict):
        raise HTTPError(422, "invalid_json", "body must be a JSON object")
    return value


def document_name(raw: str, field: str = "document") -> str:
    try:
        return normalize_name(raw)
    except InvalidName as exc:
        raise HTTPError(422, "invalid_document_name", str(exc), field=field) from None


async def require(hub: Hub, request: Request, document: str, needed: Role) -> tuple[Identity, Role]:
    """Authenticate the request and check it holds `needed` on `document` (401/403 otherwise)."""
    credentials = Credentials.from_request(request.query_params, request.headers, request.cookies)
    try:
        return await authorize(hub.authenticator, credentials, document, needed, hub.clock())
    except AuthError as exc:
        raise HTTPError(exc.status, exc.error, exc.detail) from None


async def identify(hub: Hub, request: Request) -> Identity:
    """Authenticate the request without checking any document (401 when it cannot be)."""
    credentials = Credentials.from_request(request.query_params, request.headers, request.cookies)
    try:
        return hub.authenticator.identify(credentials, hub.clock())
    except AuthError as exc:
        raise HTTPError(exc.status, exc.error, exc.detail) from None


def routes(hub: Hub) -> list[Route]:
    async def healthz(request: Request) -> JSONResponse:
        return JSONResponse(
            {"status": "ok", "documents_loaded": len(hub.registry), "connections": hub.connections}
        )

    return [Route("/healthz", healthz, methods=["GET"])]
