"""HTTP routes of history, sessions and replays under `/api/documents/{name}/-/...`."""

# Roles: viewers read history (timeline, document at a moment, changes, diff, summaries, frames)
# and open replays (controlled by who opened them, or an owner); editors and owners restore (it is an
# edit); owners are the facilitators: they start and end sessions and drop bookmarks.

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from crdt.history import HistoryFold
from crdt.replay import UPDATE, Frame, story_times
from crdt.sequence import root_kinds
from persistence.base import DocumentRecord
from server import documents
from server.auth import Identity, Role
from server.history import HistoryProblem, HistoryService, history_for, parse_moment
from server.history_reports import (
    EVENT_KINDS,
    change_view,
    diff_view,
    frame_view,
    recording,
    summary_view,
    timeline,
)
from server.http import HTTPError, JSONResponse, document_name, read_json, require
from server.hub import Hub
from server.replay import ReplayRoom, replays_for
from server.restore import restore
from server.sessions import Sessions, check_label

PREFIX = "/api/documents/{name:path}/-"
HISTORY = PREFIX + "/history"
REPLAY = PREFIX + "/replays/{id}"
Handler = Callable[[Request], Awaitable[Response]]


def routes(hub: Hub) -> list[Route]:
    history = history_for(hub)
    sessions = Sessions(history)

    async def enter(request: Request, needed: Role) -> tuple[DocumentRecord, Identity, Role]:
        name = document_name(request.path_params["name"])
        identity, role = await require(hub, request, name, needed)
        return await history.record(name), identity, role

    async def moment(record: DocumentRecord, query: dict[str, Any], seq_key: str, time_key: str) -> int:
        return await history.resolve(
            record, _opt_int(query.get(seq_key), seq_key), _opt_moment(query.get(time_key), time_key)
        )

    async def window(record: DocumentRecord, query: dict[str, Any]) -> tuple[int, int]:
        """(after, until] from from_seq/from and to_seq/to, or a session's."""
        if query.get("session"):
            session = await sessions.get(record, str(query["session"]))
            return session.start_seq, session.end_seq if session.end_seq is not None else record.last_seq
        after = (
            await moment(record, query, "from_seq", "from") if ("from_seq" in query or "from" in query) else 0
        )
        until = await moment(record, query, "to_seq", "to")
        if until < after:
            raise HistoryProblem(422, "invalid_parameter", "the end of the window is before its start")
        return after, until

    async def get_timeline(request: Request) -> Response:
        record, _, _ = await enter(request, Role.VIEWER)
        q = request.query_params
        kinds = q.get("kinds", ",".join(EVENT_KINDS)).split(",")
        if not set(kinds) <= set(EVENT_KINDS):
            raise HistoryProblem(
                422, "invalid_parameter", f"kinds: a comma-separated subset of {EVENT_KINDS}"
            )
        view = await timeline(
            history, record, _float(q.get("gap", "60"), "gap", 0.0, 86400.0),
            _opt_moment(q.get("from"), "from"), _opt_moment(q.get("to"), "to"), kinds,
            _int(q.get("offset", "0"), "offset", 0), _int(q.get("limit", "100"), "limit", 1, 1000),
        )  # fmt: skip
        return JSONResponse(view)

    async def get_at(request: Request) -> Response:
        record, _, _ = await enter(request, Role.VIEWER)
        q = request.query_params
        seq = await moment(record, dict(q), "seq", "at")
        update = await history.update_at(record, seq)
        headers = {"X-Cocreate-Seq": str(seq)}
        fmt = q.get("format", "json")
        if fmt == "update":
            return Response(update, media_type="application/octet-stream", headers=headers)
        roots = documents.content_of(update, root_kinds(update))
        if fmt == "text":  # a root named but not created yet reads as empty, like in Yjs
            texts = [name for name, root in roots.items() if root["type"] == "text"]
            name = q.get("root") or (texts[0] if texts else "")
            found = roots.get(name, {"type": "text", "value": ""} if q.get("root") else {})
            if found.get("type") != "text":
                raise HistoryProblem(404, "root_not_found", f"no text root {name!r} at seq {seq}")
            return Response(found["value"], media_type="text/plain; charset=utf-8", headers=headers)
        if fmt != "json":
            raise HistoryProblem(422, "invalid_parameter", "format must be json, text or update")
        when = await history.time_of(record, seq)
        return JSONResponse(
            {"document": record.name, "seq": seq, "at": _iso(when), "roots": roots}, headers=headers
        )

    async def get_changes(request: Request) -> Response:
        record, _, _ = await enter(request, Role.VIEWER)
        after, until = await window(record, dict(request.query_params))
        limit = _int(request.query_params.get("limit", "1000"), "limit", 1, 10_000)
        fold = await history.fold(record)
        first, end = fold.row_of_seq(after) + 1, fold.row_of_seq(until) + 1
        rows = [
            {"seq": fold.seqs[r], "at": _iso(fold.times[r]), "author": fold.authors[fold.row_author[r]],
             "changes": [change_view(c) for c in fold.changes(r)]}
            for r in range(first, min(end, first + limit))
        ]  # fmt: skip
        more = fold.seqs[first + limit - 1] if end > first + limit else None
        return JSONResponse(
            {"document": record.name, "unit": "codepoint", "updates": rows, "next_from_seq": more}
        )

    async def get_diff(request: Request) -> Response:
        record, _, _ = await enter(request, Role.VIEWER)
        after, until = await window(record, dict(request.query_params))
        return JSONResponse(await diff_view(history, record, after, until))

    async def get_summary(request: Request) -> Response:
        record, _, _ = await enter(request, Role.VIEWER)
        after, until = await window(record, dict(request.query_params))
        return JSONResponse(await summary_view(history, record, after, until))

    async def get_frames(request: Request) -> Response:
        record, _, _ = await enter(request, Role.VIEWER)
        q = request.query_params
        after, until = await window(record, dict(q))
        speed = _float(q.get("speed", "1"), "speed", 1e-3, 1e4)
        max_gap = _float(q.get("max_gap", "5"), "max_gap", 0.0, 86400.0)
        recorded = await recording(history, record, after, until)
        fold = await history.fold(record) if q.get("changes") in ("1", "true") else None
        offsets = [story / speed for story in story_times([f.at for f in recorded.frames], max_gap)]
        views = (
            *(frame_view(f, 0.0) | {"initial": True} for f in recorded.initial),
            *(
                frame_view(f, offset, _changes(fold, f))
                for f, offset in zip(recorded.frames, offsets, strict=True)
            ),
        )
        if q.get("format", "json") == "ndjson":

            async def lines() -> AsyncIterator[bytes]:
                for view in views:
                    yield orjson.dumps(view) + b"\n"

            return StreamingResponse(lines(), media_type="application/x-ndjson")
        meta = {
            "document": record.name,
            "from_seq": after,
            "to_seq": until,
            "speed": speed,
            "max_gap": max_gap,
        }
        return JSONResponse(meta | {"frames": list(views)})

    async def post_restore(request: Request) -> Response:
        record, who, _ = await enter(request, Role.EDITOR)
        body = await read_json(request)
        seq = await history.resolve(
            record, _opt_int(body.get("seq"), "seq"), _opt_moment(body.get("at"), "at")
        )
        done = await restore(history, record, seq, who)
        view = {"document": record.name, "restored_to_seq": done.to_seq, "changed": done.changed}
        return JSONResponse(view | {"seq": done.seq, "skipped_roots": done.skipped_roots})

    async def list_sessions(request: Request) -> Response:
        record, _, _ = await enter(request, Role.VIEWER)
        found, loose = await sessions.list(record)
        return JSONResponse({"document": record.name, "sessions": [s.view() for s in found],
                             "bookmarks": [b.view() for b in loose]})  # fmt: skip

    async def start_session(request: Request) -> Response:
        record, who, _ = await enter(request, Role.OWNER)
        body = await read_json(request)
        session = await sessions.start(record, who, check_label(body.get("name"), "name"))
        return JSONResponse(session.view(), status_code=201)

    async def end_session(request: Request) -> Response:
        record, who, _ = await enter(request, Role.OWNER)
        return JSONResponse((await sessions.end(record, who, request.path_params["id"])).view())

    async def session_summary(request: Request) -> Response:
        record, _, _ = await enter(request, Role.VIEWER)
        session = await sessions.get(record, request.path_params["id"])
        until = (
            session.end_seq if session.end_seq is not None else (await history.record(record.name)).last_seq
        )
        view = await summary_view(
            history, record, session.start_seq, until, (session.started_at, session.ended_at)
        )
        return JSONResponse({"session": session.view(), **view})

    async def add_bookmark(request: Request) -> Response:
        record, who, _ = await enter(request, Role.OWNER)
        body = await read_json(request)
        session = body.get("session")
        if session is not None and not isinstance(session, str):
            raise HistoryProblem(422, "invalid_field", "'session' must be a session id")
        mark = await sessions.bookmark(record, who, check_label(body.get("label"), "label"), session)
        return JSONResponse(mark.view(), status_code=201)

    async def create_replay(request: Request) -> Response:
        record, who, _ = await enter(request, Role.VIEWER)
        body = await read_json(request)
        after, until = await window(record, body)
        speed = _float(body.get("speed", 1), "speed", 1e-3, 1e4)
        max_gap = _float(body.get("max_gap", 5), "max_gap", 0.0, 86400.0)
        room = await replays_for(hub).create(record, after, until, speed, max_gap, who.user_id)
        if body.get("play"):
            room.play()
        view = room.view() | {"websocket": f"{hub.settings.ws_path}{record.name}?replay={room.id}"}
        return JSONResponse(view, status_code=201)

    async def replay_of(request: Request, control: bool) -> ReplayRoom:
        record, who, role = await enter(request, Role.VIEWER)
        room = replays_for(hub).get(request.path_params["id"], record.name)
        if control and who.user_id != room.owner and role < Role.OWNER:
            raise HistoryProblem(403, "forbidden", "only who opened the replay, or an owner, may control it")
        return room

    async def get_replay(request: Request) -> Response:
        return JSONResponse((await replay_of(request, False)).view())

    def control(action: str) -> Handler:
        async def act(request: Request) -> Response:
            room = await replay_of(request, True)
            body = await read_json(request) if action in ("seek", "speed") else {}
            if action == "play":
                room.play()
            elif action == "pause":
                room.pause()
            elif action == "speed":
                room.set_speed(_float(body.get("speed"), "speed", 1e-3, 1e4))
            else:
                await room.seek(await _frame_index(history, room, body))
            return JSONResponse(room.view())

        return act

    async def delete_replay(request: Request) -> Response:
        room = await replay_of(request, True)
        replays_for(hub).drop(room.id)
        return Response(status_code=204)

    return [
        Route(HISTORY + "/timeline", _guarded(get_timeline), methods=["GET"]),
        Route(HISTORY + "/at", _guarded(get_at), methods=["GET"]),
        Route(HISTORY + "/changes", _guarded(get_changes), methods=["GET"]),
        Route(HISTORY + "/diff", _guarded(get_diff), methods=["GET"]),
        Route(HISTORY + "/summary", _guarded(get_summary), methods=["GET"]),
        Route(HISTORY + "/frames", _guarded(get_frames), methods=["GET"]),
        Route(HISTORY + "/restore", _guarded(post_restore), methods=["POST"]),
        Route(PREFIX + "/sessions", _guarded(list_sessions), methods=["GET"]),
        Route(PREFIX + "/sessions", _guarded(start_session), methods=["POST"]),
        Route(PREFIX + "/sessions/{id}/end", _guarded(end_session), methods=["POST"]),
        Route(PREFIX + "/sessions/{id}/summary", _guarded(session_summary), methods=["GET"]),
        Route(PREFIX + "/bookmarks", _guarded(add_bookmark), methods=["POST"]),
        Route(PREFIX + "/replays", _guarded(create_replay), methods=["POST"]),
        Route(REPLAY, _guarded(get_replay), methods=["GET"]),
        Route(REPLAY + "/play", _guarded(control("play")), methods=["POST"]),
        Route(REPLAY + "/pause", _guarded(control("pause")), methods=["POST"]),
        Route(REPLAY + "/seek", _guarded(control("seek")), methods=["POST"]),
        Route(REPLAY + "/speed", _guarded(control("speed")), methods=["POST"]),
        Route(REPLAY, _guarded(delete_replay), methods=["DELETE"]),
    ]


async def _frame_index(history: HistoryService, room: ReplayRoom, body: dict[str, Any]) -> int:
    """The frame a seek goes to: {"frame": i}, or the first frame after {"seq": n} / {"at": time}."""
    if "frame" in body:
        return _int(body["frame"], "frame", 0, len(room.frames))
    if "seq" in body:
        seq = _int(body["seq"], "seq", 0)
        played = [i for i, f in enumerate(room.frames) if f.kind == "update" and f.seq <= seq]
        return played[-1] + 1 if played else 0
    moment = _opt_moment(body.get("at"), "at")
    if moment is None:
        raise HistoryProblem(422, "invalid_field", "give 'frame', 'seq' or 'at'")
    return next((i for i, f in enumerate(room.frames) if f.at > moment), len(room.frames))


def _changes(fold: HistoryFold | None, frame: Frame) -> list[dict[str, Any]] | None:
    if fold is None or frame.kind != UPDATE:
        return None
    return [change_view(c) for c in fold.changes(fold.row_of_seq(frame.seq))]


def _iso(moment: float | None) -> str | None:
    return documents.iso(moment) if moment is not None else None


def _guarded(handler: Handler) -> Handler:
    """HistoryProblem and bad parameters -> the shared JSON error shape."""

    async def guarded(request: Request) -> Response:
        try:
            return await handler(request)
        except HistoryProblem as exc:
            raise HTTPError(exc.status, exc.code, exc.detail) from None

    return guarded


def _int(raw: object, key: str, low: int, high: int | None = None) -> int:
    try:
        value = int(str(raw))
    except ValueError:
        raise HistoryProblem(422, "invalid_parameter", f"{key} must be an integer") from None
    if value < low or (high is not None and value > high):
        raise HistoryProblem(422, "invalid_parameter", f"{key} must be in [{low}, {high}]")
    return value


def _opt_int(raw: object, key: str) -> int | None:
    return None if raw is None else _int(raw, key, 0)


def _float(raw: object, key: str, low: float, high: float) -> float:
    try:
        value = float(str(raw))
    except ValueError:
        raise HistoryProblem(422, "invalid_parameter", f"{key} must be a number") from None
    if not low <= value <= high:
        raise HistoryProblem(422, "invalid_parameter", f"{key} must be in [{low:g}, {high:g}]")
    return value


def _opt_moment(raw: object, key: str) -> float | None:
    if raw is None:
        return None
    try:
        return parse_moment(str(raw))
    except ValueError:
        raise HistoryProblem(
            422, "invalid_parameter", f"{key} must be an ISO 8601 time or Unix seconds"
        ) from None
