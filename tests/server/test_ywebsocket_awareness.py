"""/ws awareness (y-websocket behaviour): a connection's awareness is relayed to everyone, the sender
included, and so is its removal."""

from __future__ import annotations

import asyncio
import json

from websockets.asyncio.client import ClientConnection
from websockets.asyncio.client import connect as ws_connect

from crdt.awareness import NULL_STATE, AwarenessEntry, decode_awareness, encode_awareness
from crdt.messages import AwarenessMessage, SyncStep1, decode_message, encode_message
from tests.support.server_process import ServerProcess


async def awareness_entries(ws: ClientConnection, timeout: float = 5.0) -> list[AwarenessEntry]:
    """The entries of the next awareness message on `ws` (other messages are skipped)."""
    async with asyncio.timeout(timeout):
        while True:
            message = decode_message(await ws.recv(decode=False))
            if isinstance(message, AwarenessMessage):
                return decode_awareness(message.payload)


async def welcomed(ws: ClientConnection) -> None:
    async with asyncio.timeout(5):
        while not isinstance(decode_message(await ws.recv(decode=False)), SyncStep1):
            pass


async def test_awareness_is_echoed_to_the_sender_and_relayed(server: ServerProcess) -> None:
    url = server.ws("presence/echo")
    async with ws_connect(url) as sender, ws_connect(url) as other:
        await welcomed(sender)
        await welcomed(other)
        state = json.dumps({"user": "me"})
        await sender.send(
            encode_message(AwarenessMessage(encode_awareness([AwarenessEntry(4242, 1, state)])))
        )
        for ws in (sender, other):
            entries = await awareness_entries(ws)
            assert [(e.client_id, e.clock, json.loads(e.state)) for e in entries] == [
                (4242, 1, {"user": "me"})
            ]
        removal = AwarenessEntry(4242, 2, NULL_STATE)
        await sender.send(encode_message(AwarenessMessage(encode_awareness([removal]))))
        for ws in (sender, other):
            assert [(e.client_id, e.state) for e in await awareness_entries(ws)] == [(4242, NULL_STATE)]
