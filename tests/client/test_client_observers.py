"""The Python client keeps syncing when the application's own document observer raises."""

from __future__ import annotations

from typing import Any

from pycrdt import Doc, Text

from client import connect
from tests.support.server_process import ServerProcess


async def test_a_raising_observer_does_not_stop_syncing(server: ServerProcess) -> None:
    writer_doc: Doc[Any] = Doc()
    reader_doc: Doc[Any] = Doc()

    def broken(event: Any) -> None:
        raise ValueError("application bug")

    async with (
        connect(server.ws("observers"), writer_doc) as writer,
        connect(server.ws("observers"), reader_doc) as reader,
    ):
        reader_doc.observe(broken)
        text = writer_doc.get("t", type=Text)
        text.insert(0, "one")
        await writer.flushed()
        await reader.wait_for(lambda: str(reader_doc.get("t", type=Text)) == "one")
        text.insert(3, " two")
        await reader.wait_for(lambda: str(reader_doc.get("t", type=Text)) == "one two")
