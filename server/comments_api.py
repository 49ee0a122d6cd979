"""HTTP routes of comment threads under `/api/documents/{name}/-/...`, and the document event stream (SSE)."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from crdt.positions import AnchorError, Unit, parse_unit
from persistence.base import DocumentRecord
from persistence.comments import OPEN, RESOLVED, comment_store_for
from server.auth import Identity, Role
from server.comment_shapes import (
    CommentError,
    PositionsInput,
    RangeInput,
    check_body,
    check_emoji,
    decode_position,
)
from server.comments import Comments
from server.events import DocumentEvent
from server.http import HTTPError, JSONResponse, document_name, identify, read_json, require
from server.hub import Hub

MAX_REQUEST_BYTES = 64 * 1024
HEARTBEAT_SECONDS = 15.0
REPLAY_LIMIT = 1000
PREFIX = "/api/documents/{name:path}/-"
THREAD = PREFIX + "/threads/{id}"
COMMENT = THREAD + "/comments/{comment}"

Handler = Callable[[Request], Awaitable[Response]]


def routes(hub: Hub) -> list[Route]:
    comments = Comments(hub, comment_store_for(hub.storage))

    async def enter(request: Request, needed: Role) -> tuple[DocumentRecord, Identity, Role]:
        """Name, then role (401/403 before anything else can be learnt), then the document (404)."""
        name = document_name(request.path_params["name"])
        identity, role = await require(hub, request, name, needed)
        return await comments.record(name), identity, role

    async def create_thread(request: Request) -> Response:
        record, who, _ = await enter(request, Role.COMMENTER)
        payload = await read_json(request, MAX_REQUEST_BYTES)
        body = check_body(payload.get("body"))
        if ("range" in payload) == ("anchor" in payload):
            raise CommentError(422, "invalid_anchor", "give either 'range' or 'anchor'", "range")
        where: RangeInput | PositionsInput
        if "range" in payload:
            spec = _object(payload["range"], "range")
            unit = _unit(spec.get("unit", "utf16"), "range.unit")
            where = RangeInput(
                _int(spec.get("start"), "range.start"), _int(spec.get("end"), "range.end"), unit
            )
        else:
            spec = _object(payload["anchor"], "anchor")
            where = PositionsInput(
                decode_position(spec.get("start"), "anchor.start"),
                decode_position(spec.get("end"), "anchor.end"),
            )
        view = await comments.create_thread(record, who, payload.get("root"), where, body)
        return JSONResponse(view, status_code=201)

    async def list_threads(request: Request) -> Response:
        record, _, _ = await enter(request, Role.VIEWER)
        unit = _unit(request.query_params.get("unit", "utf16"), "unit")
        state = request.query_params.get("status", "all")
        threads = await comments.list_threads(record, state, unit)
        return JSONResponse({"document": record.name, "unit": unit, "threads": threads})

    async def get_thread(request: Request) -> Response:
        record, _, _ = await enter(request, Role.VIEWER)
        unit = _unit(request.query_params.get("unit", "utf16"), "unit")
        return JSONResponse(await comments.get_thread(record, request.path_params["id"], unit))

    def status_change(status: str) -> Handler:
        async def change(request: Request) -> Response:
            record, who, _ = await enter(request, Role.COMMENTER)
            return JSONResponse(await comments.set_status(record, who, request.path_params["id"], status))

        return change

    async def add_comment(request: Request) -> Response:
        record, who, _ = await enter(request, Role.COMMENTER)
        payload = await read_json(request, MAX_REQUEST_BYTES)
        body = check_body(payload.get("body"))
        view = await comments.add_comment(
            record, who, request.path_params["id"], body, payload.get("reply_to")
        )
        return JSONResponse(view, status_code=201)

    async def edit_comment(request: Request) -> Response:
        record, who, _ = await enter(request, Role.COMMENTER)
        body = check_body((await read_json(request, MAX_REQUEST_BYTES)).get("body"))
        params = request.path_params
        return JSONResponse(await comments.edit_comment(record, who, params["id"], params["comment"], body))

    async def delete_comment(request: Request) -> Response:
        record, who, role = await enter(request, Role.COMMENTER)
        params = request.path_params
        return JSONResponse(await comments.delete_comment(record, who, role, params["id"], params["comment"]))

    def reaction(add: bool) -> Handler:
        async def react(request: Request) -> Response:
            record, who, _ = await enter(request, Role.COMMENTER)
            params = request.path_params
            emoji = check_emoji(params["emoji"])
            return JSONResponse(
                await comments.react(record, who, params["id"], params["comment"], emoji, add)
            )

        return react

    async def mentions(request: Request) -> Response:
        record, who, role = await enter(request, Role.VIEWER)
        query = request.query_params
        user = query.get("user", who.user_id)
        if user != who.user_id and role < Role.OWNER:
            raise CommentError(403, "forbidden", "only an owner may list another user's mentions", "user")
        limit = _int(query.get("limit", "100"), "limit", 1, 1000, text=True)
        before = _moment(query.get("before"), "before")
        found = await comments.mentions(record, user, limit, before)
        return JSONResponse({"document": record.name, "user": user, "mentions": found})

    async def my_mentions(request: Request) -> Response:
        """The caller's own mentions across the documents they may read, newest first, paged by `before`."""
        who = await identify(hub, request)
        query = request.query_params
        limit = _int(query.get("limit", "100"), "limit", 1, 1000, text=True)
        found, more = await comments.mentions_everywhere(who, limit, _moment(query.get("before"), "before"))
        return JSONResponse({"user": who.user_id, "mentions": found, "next_before": more})

    async def events(request: Request) -> Response:
        record, _, _ = await enter(request, Role.VIEWER)
        raw = request.headers.get("last-event-id") or request.query_params.get("after")
        after = None if raw is None else _int(raw, "after", 0, text=True)
        headers = {"cache-control": "no-cache", "x-accel-buffering": "no"}
        stream = _event_stream(hub, comments, record, after)
        return StreamingResponse(stream, media_type="text/event-stream", headers=headers)

    return [
        Route(PREFIX + "/threads", _guarded(create_thread), methods=["POST"]),
        Route(PREFIX + "/threads", _guarded(list_threads), methods=["GET"]),
        Route(THREAD, _guarded(get_thread), methods=["GET"]),
        Route(THREAD + "/resolve", _guarded(status_change(RESOLVED)), methods=["POST"]),
        Route(THREAD + "/reopen", _guarded(status_change(OPEN)), methods=["POST"]),
        Route(THREAD + "/comments", _guarded(add_comment), methods=["POST"]),
        Route(COMMENT, _guarded(edit_comment), methods=["PATCH"]),
        Route(COMMENT, _guarded(delete_comment), methods=["DELETE"]),
        Route(COMMENT + "/reactions/{emoji}", _guarded(reaction(True)), methods=["PUT"]),
        Route(COMMENT + "/reactions/{emoji}", _guarded(reaction(False)), methods=["DELETE"]),
        Route(PREFIX + "/mentions", _guarded(mentions), methods=["GET"]),
        Route("/api/mentions", _guarded(my_mentions), methods=["GET"]),
        Route(PREFIX + "/events", _guarded(events), methods=["GET"]),
    ]


async def _event_stream(
    hub: Hub, comments: Comments, record: DocumentRecord, after: int | None
) -> AsyncIterator[bytes]:
    """Live events of the document as SSE; with `after` (Last-Event-ID), the logged comment events
    after that seq first. `id:` is the durable seq of comment events."""
    async with hub.events.subscribe(record.name) as subscription:
        yield b"retry: 2000\n: subscribed\n\n"  # the subscription is live once this arrives
        last = after
        if after is not None:
            for row in await comments.store.read_events(record.id, after_seq=after, limit=REPLAY_LIMIT):
                yield _frame(row.kind, {"seq": row.seq, **orjson.loads(row.data)}, row.seq)
                last = row.seq
        while True:
            try:
                event: DocumentEvent | None = await asyncio.wait_for(
                    subscription.queue.get(), HEARTBEAT_SECONDS
                )
            except TimeoutError:
                yield b": ping\n\n"
                continue
            if event is None:
                return
            seq = event.data.get("seq") if event.kind.startswith("comment.") else None
            if isinstance(seq, int) and last is not None and seq <= last:
                continue  # already sent from the log
            yield _frame(event.kind, event.data, seq if isinstance(seq, int) else None)


def _frame(kind: str, data: dict[str, Any], seq: int | None) -> bytes:
    head = f"id: {seq}\n" if seq is not None else ""
    return f"{head}event: {kind}\ndata: ".encode() + orjson.dumps(data) + b"\n\n"


def _guarded(handler: Handler) -> Handler:
    """CommentError -> the shared JSON error shape (`field` names the offending input)."""

    async def guarded(request: Request) -> Response:
        try:
            return await handler(request)
        except CommentError as exc:
            extra = {} if exc.field is None else {"field": exc.field}
            raise HTTPError(exc.status, exc.code, exc.detail, **extra) from None

    return guarded


def _object(value: object, field: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise CommentError(422, "invalid_anchor", "must be a JSON object", field)
    return value


def _unit(value: object, field: str) -> Unit:
    try:
        return parse_unit(value if isinstance(value, str) else repr(value), field)
    except AnchorError as exc:
        raise CommentError(422, "invalid_unit", exc.detail, field) from None


def _int(
    value: object, field: str, low: int | None = None, high: int | None = None, text: bool = False
) -> int:
    """An integer from JSON, or (`text`) from a query string or header."""
    if text and isinstance(value, str) and value.strip().lstrip("-").isdigit():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise CommentError(422, "invalid_number", "must be an integer", field)
    if (low is not None and value < low) or (high is not None and value > high):
        raise CommentError(422, "invalid_number", f"must be between {low} and {high}", field)
    return value


def _moment(value: str | None, field: str) -> float | None:
    """A time as epoch seconds or ISO 8601 (the API's own format)."""
    if value is None:
        return None
    try:
        return float(value)
    except ValueError:
        pass
    try:
        moment = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise CommentError(422, "invalid_time", "must be ISO 8601 or epoch seconds", field) from None
    return (moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)).timestamp()
