"""The Python client after the server closed it as a slow consumer (1013): it reconnects and resyncs."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import Any

from pycrdt import Doc, Text

from client import connect
from tests.support.server_process import running_server

OUTBOX_LIMIT = 64 * 1024
CHUNK = "y" * (256 * 1024)
CHUNKS = 48  # 12 MiB relayed to a reader that does not read: more than loopback socket buffers hold


async def test_a_client_closed_1013_as_a_slow_reader_reconnects_and_resyncs(tmp_path: Path) -> None:
    with running_server(tmp_path, None, "--outbox-limit", str(OUTBOX_LIMIT)) as server:
        writer_doc: Doc[Any] = Doc()
        reader_doc: Doc[Any] = Doc()
        async with (
            connect(server.ws("slow/reader"), writer_doc) as writer,
            connect(server.ws("slow/reader"), reader_doc) as reader,
        ):
            assert reader._ws is not None and reader._ws.transport is not None
            transport = reader._ws.transport
            port = transport.get_extra_info("sockname")[1]
            transport.pause_reading()  # the reader stalls: the server's outbox to it grows
            reader_doc.get("mine", type=Text).insert(0, "edited while stalled")  # sent, never acked
            text = writer_doc.get("t", type=Text)
            for _ in range(CHUNKS):
                text.insert(len(text), CHUNK)
            pattern = rf"close conn=\d+ doc='slow/reader' .*peer=127\.0\.0\.1:{port} code=1013"
            closed = await asyncio.to_thread(server.wait_for_log, pattern, 30.0)
            transport.resume_reading()
            assert closed, "the stalled reader was not closed with 1013"
            await writer.flushed(30)
            expected = len(CHUNK) * CHUNKS
            await reader.wait_for(lambda: len(reader_doc.get("t", type=Text)) == expected, timeout=20)
            # once: the resync's step 2 (one 12 MiB message, over the outbox limit) is no slow reader
            assert reader.connections == 2, f"{reader.connections} connections"
            await reader.flushed(10)  # its own edit made during the stall reached the server
            mine = writer_doc.get("mine", type=Text)
            await writer.wait_for(lambda: str(mine) == "edited while stalled")
        assert re.search(r"code=1013", server.log_text())
