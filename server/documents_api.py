"""HTTP routes for documents: list, create, describe, rename, delete, and the current content."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from persistence.base import DocumentExists, DocumentNotFound, DocumentRecord
from server import documents
from server.auth import Role
from server.http import HTTPError, JSONResponse, document_name, identify, read_json, require
from server.hub import Hub

MAX_PAGE = 500


def routes(hub: Hub) -> list[Route]:
    async def record_of(name: str) -> DocumentRecord:
        record = await hub.storage.get_document(name)
        if record is None:
            raise HTTPError(404, "document_not_found", f"no document named {name!r}")
        return record

    async def list_documents(request: Request) -> JSONResponse:
        prefix = request.query_params.get("prefix", "")
        after = request.query_params.get("after", "")
        limit = _int_param(request, "limit", 100, 1, MAX_PAGE)
        identity = await identify(hub, request)
        visible: list[DocumentRecord] = []
        cursor, exhausted = after, False
        while len(visible) <= limit and not exhausted:  # only what the caller may view
            batch = await hub.storage.list_documents(prefix=prefix, after=cursor, limit=limit + 1)
            exhausted = len(batch) <= limit
            for record in batch:
                if await hub.authenticator.role(identity, record.name) >= Role.VIEWER:
                    visible.append(record)
            if batch:
                cursor = batch[-1].name
        page = visible[:limit]
        more = len(visible) > limit
        return JSONResponse(
            {"documents": [documents.describe(hub, r) for r in page], "next": page[-1].name if more else None}
        )

    async def create_document(request: Request) -> JSONResponse:
        body = await read_json(request)
        raw = body.get("name")
        if not isinstance(raw, str):
            raise HTTPError(422, "invalid_field", "'name' must be a string", field="name")
        name = document_name(raw, "name")
        await require(hub, request, name, Role.EDITOR)
        try:
            record = await hub.storage.create_document(name, hub.clock())
        except DocumentExists:
            raise HTTPError(409, "document_exists", f"a document named {name!r} exists") from None
        return JSONResponse(documents.describe(hub, record), status_code=201)

    async def get_document(request: Request) -> JSONResponse:
        name = document_name(request.path_params["name"])
        await require(hub, request, name, Role.VIEWER)
        return JSONResponse(documents.describe(hub, await record_of(name)))

    async def rename_document(request: Request) -> JSONResponse:
        name = document_name(request.path_params["name"])
        body = await read_json(request)
        raw = body.get("name")
        if not isinstance(raw, str):
            raise HTTPError(422, "invalid_field", "'name' must be a string", field="name")
        new_name = document_name(raw, "name")
        await require(hub, request, name, Role.OWNER)
        await require(hub, request, new_name, Role.OWNER)
        await record_of(name)
        try:
            record = await documents.rename(hub, name, new_name)
        except DocumentNotFound:
            raise HTTPError(404, "document_not_found", f"no document named {name!r}") from None
        except DocumentExists:
            raise HTTPError(409, "document_exists", f"a document named {new_name!r} exists") from None
        return JSONResponse(documents.describe(hub, record))

    async def delete_document(request: Request) -> Response:
        name = document_name(request.path_params["name"])
        await require(hub, request, name, Role.OWNER)
        try:
            await documents.delete(hub, name)
        except DocumentNotFound:
            raise HTTPError(404, "document_not_found", f"no document named {name!r}") from None
        return Response(status_code=204)

    async def content(request: Request) -> Response:
        name = document_name(request.path_params["name"])
        await require(hub, request, name, Role.VIEWER)
        record = await record_of(name)
        update, seq = await documents.current_state(hub, record)
        headers = {"X-Cocreate-Seq": str(seq), "X-Cocreate-Epoch": record.epoch}
        fmt = request.query_params.get("format", "json")
        if fmt == "update":
            return Response(update, media_type="application/octet-stream", headers=headers)
        if fmt != "json":
            raise HTTPError(422, "invalid_parameter", "format must be 'json' or 'update'", field="format")
        kinds = {}
        for item in request.query_params.getlist("root"):
            root, _, kind = item.partition(":")
            if kind not in documents.ROOT_TYPES:
                raise HTTPError(422, "invalid_parameter", "root=NAME:text|map|array|xml", field="root")
            kinds[root] = kind
        return JSONResponse(
            {"name": name, "epoch": record.epoch, "seq": seq, "roots": documents.content_of(update, kinds)},
            headers=headers,
        )

    return [
        Route("/api/documents", list_documents, methods=["GET"]),
        Route("/api/documents", create_document, methods=["POST"]),
        Route("/api/documents/{name:path}/-/content", content, methods=["GET"]),
        Route("/api/documents/{name:path}", get_document, methods=["GET"]),
        Route("/api/documents/{name:path}", rename_document, methods=["PATCH"]),
        Route("/api/documents/{name:path}", delete_document, methods=["DELETE"]),
    ]


def _int_param(request: Request, key: str, default: int, low: int, high: int) -> int:
    raw = request.query_params.get(key)
    if raw is None:
        return default
    if not raw.isdigit() or not low <= int(raw) <= high:
        raise HTTPError(422, "invalid_parameter", f"{key} must be an integer in [{low}, {high}]", field=key)
    return int(raw)
