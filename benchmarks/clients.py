"""Real clients for M3: Node Yjs providers (peers/clients.mjs) and cocreate's Python client, driven here."""

from __future__ import annotations

import asyncio
import contextlib
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from pycrdt import Doc, Text

from benchmarks.procs import TMP_DIR, ServerProcess, cpu_seconds
from benchmarks.targets import PEERS_DIR
from benchmarks.traces import TEXT_NAME
from client.client import connect


class ClientsFailed(Exception):
    """The Node clients failed (could not connect or sync, or crashed)."""


@dataclass
class Marks:
    """Server CPU and RSS at the workload's `start` / `end` lines (and `connected` for storms)."""

    cpu: dict[str, float] = field(default_factory=dict)
    rss: dict[str, int] = field(default_factory=dict)
    wall: dict[str, float] = field(default_factory=dict)
    node_cpu_s: float = 0.0

    def cpu_between(self, a: str = "start", b: str = "end") -> float:
        return self.cpu.get(b, 0.0) - self.cpu.get(a, 0.0)


def _sample(server: ServerProcess, marks: Marks, name: str) -> None:
    marks.wall[name] = time.monotonic()
    with contextlib.suppress(FileNotFoundError, ProcessLookupError):
        marks.cpu[name] = server.cpu()
        marks.rss[name] = server.rss()


async def run_node(
    config: dict[str, Any], server: ServerProcess, timeout: float
) -> tuple[dict[str, Any], Marks]:
    """Run one workload of clients.mjs against `server`; bounded by `timeout` seconds overall."""
    TMP_DIR.mkdir(parents=True, exist_ok=True)
    stem = TMP_DIR / f"node-{config['workload']}-{uuid.uuid4().hex[:8]}"
    config_path, out_path = stem.with_suffix(".json"), stem.with_suffix(".out.json")
    config = {**config, "out": str(out_path), "timeoutMs": int(config.get("timeoutMs", timeout * 1000))}
    config_path.write_bytes(orjson.dumps(config))
    process = await asyncio.create_subprocess_exec(
        "node",
        str(PEERS_DIR / "clients.mjs"),
        str(config_path),
        cwd=PEERS_DIR,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    marks = Marks()
    _sample(server, marks, "spawned")
    try:
        result = await asyncio.wait_for(_follow(process, server, marks), timeout + 30)
    except TimeoutError:
        raise ClientsFailed(f"node clients ({config['workload']}) exceeded {timeout + 30:.0f} s") from None
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
        config_path.unlink(missing_ok=True)
    return result, marks


async def _follow(process: asyncio.subprocess.Process, server: ServerProcess, marks: Marks) -> dict[str, Any]:
    assert process.stdout is not None and process.stdin is not None

    while True:
        raw = await process.stdout.readline()
        if not raw:
            err = b""
            if process.stderr is not None:
                err = await process.stderr.read()
            raise ClientsFailed(f"node clients exited: {err.decode(errors='replace')[-1500:]}")
        line = raw.decode().strip()
        word, _, rest = line.partition(" ")
        if word in ("start", "end", "ready"):
            _sample(server, marks, word)
        elif word == "connected":
            _sample(server, marks, word)
            await asyncio.sleep(1.0)  # let the server settle before reading its steady RSS
            _sample(server, marks, "steady")
            process.stdin.write(b"close\n")
            await process.stdin.drain()
        elif word == "result":
            _sample(server, marks, "result")
            with contextlib.suppress(FileNotFoundError, ProcessLookupError):
                marks.node_cpu_s = cpu_seconds(process.pid)
            await process.wait()
            return _load_result(rest)
        elif word == "error":
            raise ClientsFailed(f"node clients failed: {rest}")


def ws_base(server: ServerProcess, path_prefix: str, hocuspocus: bool) -> str:
    """The `url` the Node providers take: y-websocket appends /room, Hocuspocus takes the endpoint."""
    base = f"ws://127.0.0.1:{server.port}{path_prefix}"
    return base if hocuspocus else base.rstrip("/")


def _load_result(path_text: str) -> dict[str, Any]:
    path = Path(path_text)
    data: dict[str, Any] = orjson.loads(path.read_bytes())
    path.unlink(missing_ok=True)
    return data


async def _until_text(doc: Doc[Any], done: Callable[[Text], bool], timeout: float) -> int | None:
    """monotonic_ns when `done(text)` first holds after a change (None on timeout).

    pycrdt forbids reading the document inside its own observer, so the observer only wakes
    this loop, which checks outside the transaction.
    """
    text = doc.get(TEXT_NAME, type=Text)
    changed = asyncio.Event()
    subscription = doc.observe(lambda _: changed.set())
    deadline = time.monotonic() + timeout
    try:
        while not done(text):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(changed.wait(), remaining)
            changed.clear()
        return time.monotonic_ns()
    finally:
        doc.unobserve(subscription)


async def observe(url: str, expected: str, timeout: float) -> dict[str, Any]:
    """Connect, say `ready`, then time the moment the document holds `expected` (monotonic ns)."""
    doc: Doc[Any] = Doc()
    expected_bytes = len(expected.encode())

    def final(text: Text) -> bool:
        return len(text) == expected_bytes and str(text) == expected

    async with connect(url, doc, reconnect=False, timeout=timeout):
        print("ready", flush=True)
        completed = await _until_text(doc, final, timeout)
    chars = len(str(doc.get(TEXT_NAME, type=Text)))
    errors = [] if completed else [f"python observer holds {chars} chars, not the final text"]
    return {"completed_ns": completed, "errors": errors}


async def join(url: str, expected_chars: int, timeout: float) -> dict[str, Any]:
    """Time connect-to-synced of a fresh replica, and until it holds `expected_chars` characters."""
    doc: Doc[Any] = Doc()
    started = time.monotonic_ns()
    try:
        async with connect(url, doc, reconnect=False, timeout=timeout):
            synced = time.monotonic_ns()
            content = await _until_text(doc, lambda text: len(str(text)) == expected_chars, timeout)
    except (ConnectionError, OSError) as exc:
        return {"sync_ms": None, "ms": None, "errors": [f"python client could not join: {exc}"]}
    chars = len(str(doc.get(TEXT_NAME, type=Text)))
    errors = [] if content else [f"python client joined with {chars} chars, not {expected_chars}"]
    return {
        "sync_ms": round((synced - started) / 1e6, 3),
        "ms": round((content - started) / 1e6, 3) if content else None,
        "chars": chars,
        "errors": errors,
    }


def main() -> int:
    """`python -m benchmarks.clients '<json>'`: {"mode": "observe"|"join", "url", ...}; prints JSON."""
    config = orjson.loads(sys.argv[1])
    if config["mode"] == "observe":
        expected = Path(config["expected_file"]).read_text(encoding="utf-8")
        result = asyncio.run(observe(config["url"], expected, float(config["timeout"])))
    else:
        result = asyncio.run(join(config["url"], int(config["expected_chars"]), float(config["timeout"])))
    print("result " + orjson.dumps(result).decode(), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
