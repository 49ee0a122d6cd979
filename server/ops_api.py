"""Operations routes: `/metrics` (Prometheus text) and `/readyz` (dependencies answer, not shutting down).

Who may read `/metrics`: anyone in local mode (no secret). With a secret: a request carrying the
`metrics_token` setting as `Authorization: Bearer ...` (for a scraper), or a token granting the owner
role on `*` (every document: a server-wide operator). Counts reveal activity, not content.
"""

from __future__ import annotations

import hmac

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from server.auth import Role
from server.http import JSONResponse, require
from server.hub import Hub
from server.metrics import CONTENT_TYPE

#: No document can have this name (`-` segments are reserved), so only a token grant of `*`
#: reaches it: an access-list entry or a grant on one document or folder never does.
SERVER_WIDE = "-"


def routes(hub: Hub) -> list[Route]:
    metrics = hub.metrics

    async def scrape(request: Request) -> Response:
        token = hub.settings.metrics_token
        presented = request.headers.get("authorization", "")
        if not (token and hmac.compare_digest(presented.encode(), f"Bearer {token}".encode())):
            await require(hub, request, SERVER_WIDE, Role.OWNER)
        return Response(metrics.render(), media_type=CONTENT_TYPE)

    async def readyz(request: Request) -> JSONResponse:
        ready, checks = await hub.readiness.evaluate()
        return JSONResponse({"ready": ready, "checks": checks}, status_code=200 if ready else 503)

    return [Route("/metrics", scrape, methods=["GET"]), Route("/readyz", readyz, methods=["GET"])]


def register_server_metrics(hub: Hub) -> None:
    """The metrics read from the hub at scrape time (once per hub)."""
    hub.metrics.gauge_from(
        "cocreate_documents_loaded", "Documents loaded in memory", lambda: len(hub.registry)
    )
    hub.metrics.counter_from(
        "cocreate_limit_triggered",
        "How often each limit triggered (per-address connection cap, message rate, idle timeout)",
        lambda: dict(hub.limits.counts),
        label="limit",
    )
