"""HTTP routes of a document's webhooks (owners only): create, list, delete, and the delivery log."""

from __future__ import annotations

import secrets
import uuid
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from persistence.base import DocumentNotFound, DocumentRecord
from persistence.webhooks import EVENT_GROUPS, Webhook
from server.auth import Identity, Role
from server.http import HTTPError, JSONResponse, document_name, read_json, require
from server.hub import Hub
from server.webhook_rules import SIGNATURE_HEADER, TargetRefused, check_target
from server.webhooks import describe, describe_delivery, webhooks_for

PREFIX = "/api/documents/{name:path}/-/webhooks"
HOOK = PREFIX + "/{webhook}"
MAX_WEBHOOKS_PER_DOCUMENT = 20
MAX_REQUEST_BYTES = 16 * 1024
DEFAULT_PAGE, MAX_PAGE = 50, 500


def routes(hub: Hub) -> list[Route]:
    dispatcher = webhooks_for(hub)
    store = dispatcher.store

    async def enter(request: Request) -> tuple[DocumentRecord, Identity]:
        """Name, then the owner role (401/403 before anything else can be learnt), then the document."""
        name = document_name(request.path_params["name"])
        identity, _ = await require(hub, request, name, Role.OWNER)
        record = await hub.storage.get_document(name)
        if record is None:
            raise HTTPError(404, "document_not_found", f"no document named {name!r}")
        return record, identity

    async def webhook_of(request: Request, record: DocumentRecord) -> Webhook:
        webhook_id = request.path_params["webhook"]
        hook = await store.get_webhook(webhook_id)
        if hook is None or hook.document_id != record.id or not hook.active:
            raise HTTPError(404, "webhook_not_found", f"no webhook {webhook_id!r} on {record.name!r}")
        return hook

    async def create(request: Request) -> JSONResponse:
        record, identity = await enter(request)
        body = await read_json(request, MAX_REQUEST_BYTES)
        url = body.get("url")
        try:
            if not isinstance(url, str):
                raise TargetRefused("'url' must be a string")
            check_target(url, hub.settings.webhook_allow_private)
        except TargetRefused as exc:
            raise HTTPError(422, "invalid_url", str(exc), field="url") from None
        events = _events(body.get("events", list(EVENT_GROUPS)))
        if len(await store.list_webhooks(record.id)) >= MAX_WEBHOOKS_PER_DOCUMENT:
            raise HTTPError(409, "too_many_webhooks", f"at most {MAX_WEBHOOKS_PER_DOCUMENT} per document")
        hook = Webhook(
            uuid.uuid4().hex, record.id, url, events, secrets.token_hex(32), identity.user_id, hub.clock()
        )
        try:
            await store.create_webhook(hook)
        except DocumentNotFound:  # deleted meanwhile
            raise HTTPError(404, "document_not_found", f"no document named {record.name!r}") from None
        dispatcher.added(hook)
        shown = {**describe(hook, record.name), "secret": hook.secret, "signature_header": SIGNATURE_HEADER}
        return JSONResponse(shown, status_code=201)

    async def list_hooks(request: Request) -> JSONResponse:
        record, _ = await enter(request)
        hooks = await store.list_webhooks(record.id)
        return JSONResponse({"document": record.name, "webhooks": [describe(h, record.name) for h in hooks]})

    async def delete(request: Request) -> Response:
        record, _ = await enter(request)
        hook = await webhook_of(request, record)
        await store.deactivate_webhook(hook.id, hub.clock())
        dispatcher.removed(hook.id)
        return Response(status_code=204)

    async def deliveries(request: Request) -> JSONResponse:
        record, _ = await enter(request)
        hook = await webhook_of(request, record)
        query = request.query_params
        limit = _limit(query.get("limit", str(DEFAULT_PAGE)))
        before = _cursor(query.get("before"))
        page = await store.list_deliveries(hook.id, limit + 1, before)
        more = len(page) > limit
        page = page[:limit]
        following = f"{page[-1].created_at!r}_{page[-1].id}" if more else None
        return JSONResponse(
            {
                "document": record.name,
                "webhook": hook.id,
                "deliveries": [describe_delivery(d) for d in page],
                "next": following,
            }
        )

    return [
        Route(PREFIX, create, methods=["POST"]),
        Route(PREFIX, list_hooks, methods=["GET"]),
        Route(HOOK, delete, methods=["DELETE"]),
        Route(HOOK + "/deliveries", deliveries, methods=["GET"]),
    ]


def _events(raw: Any) -> tuple[str, ...]:
    names = ", ".join(EVENT_GROUPS)
    if not isinstance(raw, list) or not raw or not all(isinstance(e, str) and e in EVENT_GROUPS for e in raw):
        raise HTTPError(
            422, "invalid_events", f"'events' must be a non-empty list of: {names}", field="events"
        )
    return tuple(dict.fromkeys(raw))


def _limit(raw: str) -> int:
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_PAGE:
        raise HTTPError(422, "invalid_number", f"'limit' must be 1-{MAX_PAGE}", field="limit")
    return int(raw)


def _cursor(raw: str | None) -> tuple[float, str] | None:
    """The `next` value of the previous page: `<created_at>_<delivery id>`."""
    if raw is None:
        return None
    at, _, last_id = raw.partition("_")
    try:
        moment = float(at)
    except ValueError:
        moment = float("nan")
    if moment != moment or len(last_id) != 32 or not all(c in "0123456789abcdef" for c in last_id):
        raise HTTPError(
            422, "invalid_cursor", "'before' must be the 'next' value of a previous page", field="before"
        )
    return moment, last_id
