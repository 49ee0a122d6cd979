"""HTTP routes (starlette): health now; documents, comments and history routes join here as they land."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from server.hub import Hub


class JSONResponse(Response):
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


def error(status: int, code: str, detail: str) -> JSONResponse:
    return JSONResponse({"error": code, "detail": detail}, status_code=status)


def routes(hub: Hub) -> list[Route]:
    async def healthz(request: Request) -> JSONResponse:
        return JSONResponse(
            {"status": "ok", "documents_loaded": len(hub.registry), "connections": hub.connections}
        )

    return [Route("/healthz", healthz, methods=["GET"])]
