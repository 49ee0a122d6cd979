"""A real `yjs` peer makes relative positions; the server anchors a thread on them and, after edits
around and inside the range, resolves it (UTF-16) exactly where Yjs itself does."""

from __future__ import annotations

import asyncio
from typing import Any

from pycrdt import Doc, Text

from client import connect
from tests.comments.conftest import YjsPeer
from tests.support.http import request
from tests.support.server_process import ServerProcess

EMOJI, PARTY = "\U0001f600", "\U0001f389"
BASE = "/api/documents/node/anchor/-"


def utf16(text: str, codepoint: int) -> int:
    return len(text[:codepoint].encode("utf-16-le")) // 2


async def resolved_by_yjs(peer: YjsPeer, position: str) -> int:
    found = await peer.call("resolve", position=position)
    assert found["root"] == "t"
    index: int = found["index"]
    return index


async def test_server_resolves_yjs_positions_like_yjs(server: ServerProcess, yjs_peer: YjsPeer) -> None:
    doc: Doc[Any] = Doc()
    text = doc.get("t", type=Text)
    async with connect(server.ws("node/anchor"), doc) as bridge:
        text.insert(0, f"Intro {EMOJI} caf\u00e9: the {EMOJI}{EMOJI} part to discuss, then more.")
        await bridge.flushed()
        await yjs_peer.apply(doc.get_update())
        content = (await yjs_peer.call("text", root="t"))["text"]
        assert content == str(text)
        start = utf16(content, content.index("the"))
        end = utf16(content, content.index(" to discuss"))
        begin = (await yjs_peer.call("relpos", root="t", index=start, assoc=0))["position"]
        finish = (await yjs_peer.call("relpos", root="t", index=end, assoc=-1))["position"]
        body = {"root": "t", "anchor": {"start": begin, "end": finish}, "body": "from a Yjs client"}
        made = (await asyncio.to_thread(request, server.port, "POST", f"{BASE}/threads", body)).json
        assert made["anchor"] == {"start": begin, "end": finish}  # recommended assoc: kept byte for byte
        assert made["range"] == {"start": start, "end": end, "unit": "utf16"}
        assert made["quote"] == f"the {EMOJI}{EMOJI} part"

        async def js_edit(index: int, value: str) -> None:
            doc.apply_update(await yjs_peer.edit("insert", root="t", index=index, text=value))  # relayed

        await js_edit(0, f"{PARTY}{PARTY} A new first line \u00e9\n")  # before the range
        here = await resolved_by_yjs(yjs_peer, begin)
        await js_edit(here, "[")  # at the start edge: stays out
        there = await resolved_by_yjs(yjs_peer, finish)
        await js_edit(there, "]")  # at the end edge: stays out
        await js_edit(here + 3, f"+{EMOJI}")  # inside: joins
        text.insert(0, "\u00e9\u00e9 ")  # and a concurrent edit by the Python side, before it all
        await bridge.flushed()
        await yjs_peer.apply(doc.get_update())
        assert (await yjs_peer.call("text", root="t"))["text"] == str(text)

        reply = request(server.port, "GET", f"{BASE}/threads/{made['id']}?unit=utf16")
        assert reply.status == 200
        thread = reply.json
        js_start, js_end = await resolved_by_yjs(yjs_peer, begin), await resolved_by_yjs(yjs_peer, finish)
        assert thread["range"] == {"start": js_start, "end": js_end, "unit": "utf16"}
        assert thread["quote"] == f"th+{EMOJI}e {EMOJI}{EMOJI} part"
        final = str(text)
        assert final[final.index(thread["quote"]) - 1] == "[" and "part]" in final

        # Yjs also resolves the anchors the server returns (the same bytes here) to the same place.
        assert await resolved_by_yjs(yjs_peer, thread["anchor"]["start"]) == js_start
        assert await resolved_by_yjs(yjs_peer, thread["anchor"]["end"]) == js_end


async def test_positions_from_another_document_are_refused(server: ServerProcess, yjs_peer: YjsPeer) -> None:
    doc: Doc[Any] = Doc()
    async with connect(server.ws("node/anchor"), doc) as bridge:
        doc.get("t", type=Text).insert(0, "server side text")
        await bridge.flushed()
    await yjs_peer.edit("insert", root="t", index=0, text="a Yjs-only document")
    begin = (await yjs_peer.call("relpos", root="t", index=2, assoc=0))["position"]
    finish = (await yjs_peer.call("relpos", root="t", index=6, assoc=-1))["position"]
    body = {"root": "t", "anchor": {"start": begin, "end": finish}, "body": "?"}
    reply = request(server.port, "POST", f"{BASE}/threads", body)
    assert reply.status == 422 and reply.json["field"] == "anchor.start"
