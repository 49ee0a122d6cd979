"""Comments against a real server: live events (websocket extension and SSE), live documents, restarts."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from pycrdt import Doc, Text, UndoManager

from client import connect
from tests.support.http import request
from tests.support.server_process import ServerProcess

EMOJI = "\U0001f600"
LIVE_DEADLINE = 0.1  # seconds from the POST to the event at another client


@dataclass
class SseEvent:
    id: str | None
    kind: str
    data: dict[str, Any]


class SseStream:
    """A minimal text/event-stream reader over HTTP/1.1 chunked encoding (stdlib only)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self._buffer = b""

    async def _chunk(self) -> bytes:
        size = int((await self.reader.readline()).strip(), 16)
        data = await self.reader.readexactly(size + 2)
        return data[:-2]

    async def _line(self) -> bytes:
        while b"\n" not in self._buffer:
            self._buffer += await self._chunk()
        line, _, self._buffer = self._buffer.partition(b"\n")
        return line

    async def comment(self, timeout: float = 5.0) -> str:
        """The next `: comment` line (the stream announces its subscription with one)."""
        while True:
            line = await asyncio.wait_for(self._line(), timeout)
            if line.startswith(b":"):
                return line[1:].strip().decode()

    async def next(self, timeout: float = 5.0) -> SseEvent:
        fields: dict[str, str] = {}
        while True:
            line = (await asyncio.wait_for(self._line(), timeout)).decode()
            if not line:
                if "data" in fields:
                    return SseEvent(
                        fields.get("id"), fields.get("event", "message"), json.loads(fields["data"])
                    )
                continue
            if line.startswith(":"):
                continue
            name, _, value = line.partition(":")
            fields[name] = value.removeprefix(" ")


@contextlib.asynccontextmanager
async def sse(port: int, path: str, headers: dict[str, str] | None = None) -> AsyncIterator[SseStream]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    extra = "".join(f"{k}: {v}\r\n" for k, v in (headers or {}).items())
    writer.write(f"GET {path} HTTP/1.1\r\nHost: test\r\nAccept: text/event-stream\r\n{extra}\r\n".encode())
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
    assert head.startswith(b"HTTP/1.1 200"), head
    assert b"text/event-stream" in head.lower() and b"chunked" in head.lower()
    stream = SseStream(reader, writer)
    assert await stream.comment() == "subscribed"
    try:
        yield stream
    finally:
        writer.close()
        with contextlib.suppress(Exception):
            await writer.wait_closed()


async def post(port: int, path: str, body: dict[str, Any]) -> Any:
    reply = await asyncio.to_thread(request, port, "POST", path, body)
    assert reply.status == 201, reply.body
    return reply.json


def get(port: int, path: str) -> Any:
    reply = request(port, "GET", path)
    assert reply.status == 200, reply.body
    return reply.json


async def test_a_new_comment_reaches_other_clients_within_100_ms(server: ServerProcess) -> None:
    base = "/api/documents/live/doc/-"
    doc: Doc[Any] = Doc()
    async with connect(server.ws("live/doc"), doc) as author:
        doc.get("t", type=Text).insert(0, f"Some {EMOJI} text to discuss")
        await author.flushed()
        made = await post(
            server.port, f"{base}/threads", {"root": "t", "range": {"start": 5, "end": 11}, "body": "?"}
        )
        kind, data = await asyncio.wait_for(author.document_events.get(), 5)
        assert kind == "comment.thread_created" and data["thread"]["id"] == made["id"]
        watcher_doc: Doc[Any] = Doc()
        async with (
            connect(server.ws("live/doc"), watcher_doc) as watcher,
            sse(server.port, f"{base}/events") as stream,
        ):
            await watcher.wait_synced()
            started = time.perf_counter()
            comment = await post(server.port, f"{base}/threads/{made['id']}/comments", {"body": "an answer"})
            kind, data = await asyncio.wait_for(watcher.document_events.get(), LIVE_DEADLINE)
            by_websocket = time.perf_counter() - started
            event = await stream.next(timeout=LIVE_DEADLINE)
            by_sse = time.perf_counter() - started
            assert kind == "comment.added" and data["comment"]["id"] == comment["id"]
            assert event.kind == "comment.added" and event.data["comment"]["id"] == comment["id"]
            assert event.id is not None and int(event.id) == data["seq"] == 2
            assert by_websocket < LIVE_DEADLINE and by_sse < LIVE_DEADLINE, (by_websocket, by_sse)


async def test_sse_replays_logged_events_after_last_event_id(server: ServerProcess) -> None:
    base = "/api/documents/replay/-"
    doc: Doc[Any] = Doc()
    async with connect(server.ws("replay"), doc) as client:
        doc.get("t", type=Text).insert(0, "abcdefghij")
        await client.flushed()
        made = await post(
            server.port, f"{base}/threads", {"root": "t", "range": {"start": 1, "end": 4}, "body": "a"}
        )
        for body in ("b", "c"):
            await post(server.port, f"{base}/threads/{made['id']}/comments", {"body": body})
    async with sse(server.port, f"{base}/events", {"Last-Event-ID": "1"}) as stream:
        replayed = [await stream.next(), await stream.next()]
        assert [(e.id, e.kind, e.data["comment"]["body"]) for e in replayed] == [
            ("2", "comment.added", "b"),
            ("3", "comment.added", "c"),
        ]
        await asyncio.to_thread(request, server.port, "POST", f"{base}/threads/{made['id']}/resolve")
        live = await stream.next()
        assert (live.id, live.kind, live.data["thread"]) == ("4", "comment.thread_resolved", made["id"])
    assert request(server.port, "GET", f"{base}/events?after=x").status == 422


async def test_orphaned_by_an_edit_and_back_after_the_editors_undo(server: ServerProcess) -> None:
    base = "/api/documents/undo/-"
    doc: Doc[Any] = Doc()
    text = doc.get("t", type=Text)
    async with connect(server.ws("undo"), doc) as client:
        text.insert(0, f"keep caf\u00e9 {EMOJI} keep")
        await client.flushed()
        made = await post(
            server.port,
            f"{base}/threads",
            {"root": "t", "range": {"start": 5, "end": 11, "unit": "codepoint"}, "body": "x"},
        )
        undo = UndoManager(scopes=[text], capture_timeout_millis=0)
        del text[len(b"keep ") : len(f"keep caf\u00e9 {EMOJI}".encode())]
        await client.flushed()
        orphaned = get(server.port, f"{base}/threads?status=orphaned")["threads"]
        assert [(t["id"], t["orphaned"], t["range"]) for t in orphaned] == [
            (made["id"], True, {"start": 5, "end": 5, "unit": "utf16"})
        ]
        async with sse(server.port, f"{base}/events") as stream:
            undo.undo()
            await client.flushed()
            back = get(server.port, f"{base}/threads/{made['id']}?unit=codepoint")
            assert (back["state"], back["quote"], back["range"]["start"], back["range"]["end"]) == (
                "open",
                f"caf\u00e9 {EMOJI}",
                5,
                11,
            )
            event = await stream.next()
            assert event.kind == "comment.thread_reattached" and event.data["thread"] == made["id"]
        text.insert(len(b"keep ca"), "++")  # typed inside the re-found range: it follows the new text
        await client.flushed()
        assert get(server.port, f"{base}/threads/{made['id']}")["quote"] == f"ca++f\u00e9 {EMOJI}"


async def test_threads_survive_a_restart_and_resolve_from_storage(server: ServerProcess) -> None:
    base = "/api/documents/durable/-"
    doc: Doc[Any] = Doc()
    async with connect(server.ws("durable"), doc) as client:
        doc.get("t", type=Text).insert(0, f"{EMOJI}{EMOJI} stays here")
        await client.flushed()
        made = await post(
            server.port,
            f"{base}/threads",
            {"root": "t", "range": {"start": 3, "end": 8, "unit": "codepoint"}, "body": "y"},
        )
    server.stop()
    server.start()
    again = get(server.port, f"{base}/threads/{made['id']}?unit=utf16")
    assert (again["quote"], again["range"]) == ("stays", {"start": 5, "end": 10, "unit": "utf16"})
    assert [c["body"] for c in again["comments"]] == ["y"]
