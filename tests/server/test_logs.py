"""Log output: the JSON formatter's fields, and a real server logging one JSON line per open and close."""

from __future__ import annotations

import io
import json
import logging
import sys
from pathlib import Path

from pycrdt import Doc, Text

from client import connect
from server.logs import JsonFormatter, configure
from tests.support.server_process import running_server


def record(message: str, *args: object, **extra: object) -> logging.LogRecord:
    entry = logging.LogRecord("cocreate.ws", logging.INFO, __file__, 1, message, args, None)
    for key, value in extra.items():
        setattr(entry, key, value)
    return entry


def test_json_lines_carry_the_standard_and_the_extra_fields() -> None:
    line = JsonFormatter().format(
        record("close conn=%d", 7, conn=7, peer="127.0.0.1:5", code=1000, duration=1.5)
    )
    entry = json.loads(line)
    assert "\n" not in line
    assert entry.pop("ts").endswith("+00:00")
    assert entry == {
        "level": "info",
        "logger": "cocreate.ws",
        "message": "close conn=7",
        "conn": 7,
        "peer": "127.0.0.1:5",
        "code": 1000,
        "duration": 1.5,
    }


def test_exceptions_stay_on_one_line() -> None:
    try:
        raise ValueError("boom")
    except ValueError:
        entry = logging.LogRecord("cocreate", logging.ERROR, __file__, 1, "failed", (), None)
        entry.exc_info = sys.exc_info()
    line = JsonFormatter().format(entry)
    assert "\n" not in line
    assert "ValueError: boom" in json.loads(line)["exception"]


def test_configure_switches_every_logger_to_the_chosen_format() -> None:
    stream = io.StringIO()
    root = logging.getLogger()
    saved = (list(root.handlers), root.level)
    try:
        configure("info", "json", stream)
        logging.getLogger("uvicorn.error").info("from %s", "uvicorn")
        configure("warning", "text", stream)
        logging.getLogger("cocreate").info("hidden")
        logging.getLogger("cocreate").warning("shown")
    finally:
        root.handlers[:] = saved[0]
        root.setLevel(saved[1])
    first, second = stream.getvalue().splitlines()
    assert json.loads(first)["message"] == "from uvicorn"
    assert second.endswith("WARNING cocreate: shown")


async def test_a_real_server_logs_one_json_line_per_connection_open_and_close(tmp_path: Path) -> None:
    with running_server(tmp_path, None, "--log-format", "json") as server:
        doc = Doc()
        async with connect(server.ws("logs/doc"), doc, reconnect=False) as client:
            doc.get("t", type=Text).insert(0, "hello")
            await client.flushed()
        assert server.wait_for_log(r'"message":"close conn=')
        assert server.stop() == 0
    lines = [line for line in server.output if not line.startswith("listening on ")]
    entries = [json.loads(line) for line in lines]  # every line is one JSON object
    assert all({"ts", "level", "logger", "message"} <= entry.keys() for entry in entries)
    opens = [e for e in entries if e["message"].startswith("open conn=")]
    closes = [e for e in entries if e["message"].startswith("close conn=")]
    assert len(opens) == 1 and len(closes) == 1, lines
    assert opens[0]["document"] == "logs/doc" and opens[0]["endpoint"] == "y-websocket"
    assert closes[0]["conn"] == opens[0]["conn"] and closes[0]["peer"] == opens[0]["peer"]
    assert closes[0]["code"] == 1000 and closes[0]["duration"] >= 0
