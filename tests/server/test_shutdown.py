"""Graceful shutdown of a real server (SIGTERM): y-websocket and Hocuspocus writers mid-edit get every
ack, then a 1012 close; the restarted server holds exactly the acknowledged edits, none lost or doubled."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path

from pycrdt import Doc, Text
from websockets.asyncio.client import ClientConnection
from websockets.asyncio.client import connect as ws_connect
from websockets.exceptions import ConnectionClosed

from client import connect
from crdt.hocuspocus import Authenticated, Envelope, Sender, SyncStatus, Token, decode_frame, encode_frame
from crdt.messages import Ack, SyncUpdate, decode_message, encode_message
from tests.support.server_process import ServerProcess

MAX_EDITS = 50_000  # per writer: a bound only; writers keep editing until the server closes them
CLOSE_TIMEOUT = 5.0


@dataclass
class Writer:
    """One raw connection sending numbered, uniquely labelled inserts: y-websocket with cocreate's
    cumulative acks, or Hocuspocus (one SyncStatus per update, in order)."""

    label: str
    document: str
    client_id: int
    hocuspocus: bool = False
    authenticated: asyncio.Event = field(default_factory=asyncio.Event)
    sent: int = 0
    acked: int = 0
    first_ack: asyncio.Event = field(default_factory=asyncio.Event)
    close_code: int | None = None
    close_reason: str = ""

    async def run(self, ws: ClientConnection) -> None:
        sender = asyncio.create_task(self._send(ws))
        try:
            async for data in ws:
                assert isinstance(data, bytes)
                if self.hocuspocus:
                    self._hocuspocus_message(data)
                    continue
                message = decode_message(data)
                if isinstance(message, Ack):
                    assert message.count >= self.acked, "acks are cumulative"
                    self.acked = message.count
                    self.first_ack.set()
        except ConnectionClosed:
            pass
        finally:
            sender.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sender
        self.close_code = ws.close_code
        self.close_reason = ws.close_reason or ""

    def _hocuspocus_message(self, data: bytes) -> None:
        frame = decode_frame(data, Sender.SERVER)
        if not isinstance(frame, Envelope):
            return
        if isinstance(frame.message, Authenticated):
            self.authenticated.set()
        elif frame.message == SyncStatus(True):
            self.acked += 1
            self.first_ack.set()
        elif isinstance(frame.message, SyncStatus):
            raise AssertionError(f"{self.label}: an update was refused")

    async def _send(self, ws: ClientConnection) -> None:
        doc = Doc(client_id=self.client_id)
        text = doc.get("t", type=Text)
        with contextlib.suppress(ConnectionClosed):
            if self.hocuspocus:
                await ws.send(encode_frame(Envelope(self.document, Token(""))))
                await self.authenticated.wait()
            for index in range(1, MAX_EDITS + 1):
                before = doc.get_state()
                text.insert(len(text), f"{self.label}-{index};")
                update = SyncUpdate(doc.get_update(before))
                if self.hocuspocus:
                    await ws.send(encode_frame(Envelope(self.document, update)))
                else:
                    await ws.send(encode_message(update))
                self.sent = index
                await asyncio.sleep(0)  # yield: let this client read its acks between sends


async def test_sigterm_commits_and_acks_every_received_edit_then_closes_with_1012(tmp_path: Path) -> None:
    server = ServerProcess(
        db_url=f"sqlite+aiosqlite:///{tmp_path / 'cocreate.db'}",
        data_dir=tmp_path,
        extra_args=["--close-timeout", str(CLOSE_TIMEOUT)],
    ).start()
    try:
        writers = [
            Writer("a1", "shut/a", 1001),
            Writer("a2", "shut/a", 1002),
            Writer("b1", "shut/b", 1003),
            Writer("h1", "shut/a", 1004, hocuspocus=True),
        ]
        hocuspocus_url = f"ws://127.0.0.1:{server.port}/hocuspocus"
        sockets = [
            await ws_connect(
                hocuspocus_url if w.hocuspocus else server.ws(w.document, "acks=1"), max_size=None
            )
            for w in writers
        ]
        idle = await ws_connect(hocuspocus_url)  # a Hocuspocus socket with no document open
        runs = [asyncio.create_task(w.run(ws)) for w, ws in zip(writers, sockets, strict=True)]
        await asyncio.wait_for(asyncio.gather(*(w.first_ack.wait() for w in writers)), 10)
        assert server.process is not None
        signalled = time.monotonic()
        server.process.send_signal(signal.SIGTERM)
        await asyncio.wait_for(asyncio.gather(*runs), CLOSE_TIMEOUT + 5)
        with contextlib.suppress(ConnectionClosed):
            await asyncio.wait_for(idle.recv(), CLOSE_TIMEOUT + 5)
        exit_code = await asyncio.to_thread(server.process.wait, CLOSE_TIMEOUT + 5)
        stopped_in = time.monotonic() - signalled
    finally:
        server.kill()
    log = server.log_text()
    assert exit_code == 0, log[-3000:]
    assert stopped_in < CLOSE_TIMEOUT, f"shutdown took {stopped_in:.2f}s"
    for writer in writers:
        assert (writer.close_code, writer.close_reason) == (1012, "server restarting"), (writer, log[-2000:])
        assert 0 < writer.acked <= writer.sent < MAX_EDITS, writer  # still sending when closed
    assert (idle.close_code, idle.close_reason) == (1012, "server restarting")

    server.start()
    try:
        for document in ("shut/a", "shut/b"):
            doc = Doc()
            async with connect(server.ws(document), doc, reconnect=False):
                tokens = [token for token in str(doc.get("t", type=Text)).split(";") if token]
            for writer in (w for w in writers if w.document == document):
                mine = [token for token in tokens if token.startswith(f"{writer.label}-")]
                # exactly the acknowledged edits: none lost, none twice, none committed without its ack
                assert mine == [f"{writer.label}-{i}" for i in range(1, writer.acked + 1)], writer.label
    finally:
        server.stop()
