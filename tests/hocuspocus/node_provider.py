"""Drive stock `@hocuspocus/provider` clients (Node, js/client.mjs) from pytest over stdin/stdout.

One `HocuspocusNode` is one Node process holding one socket (`HocuspocusProviderWebsocket`) and a
provider per opened document. Every command is one JSON line answered by one JSON line; every wait
is bounded and raises `NodeProviderError` with the tail of the process's stderr.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import os
import signal
from pathlib import Path
from typing import Any

HOCUSPOCUS_DIR = Path(__file__).resolve().parent
CLIENT_SCRIPT = HOCUSPOCUS_DIR / "js" / "client.mjs"
DEFAULT_TIMEOUT = 10.0


class NodeProviderError(AssertionError):
    """The Node process failed a command, timed out or died."""


class HocuspocusNode:
    """One Node process: one Hocuspocus socket to `url`, many documents."""

    def __init__(self, url: str, *, name: str = "hocuspocus", node: str = "node") -> None:
        self.url = url
        self.name = name
        self.node = node
        self.events: list[dict[str, Any]] = []
        self.stderr: list[str] = []
        self.process: asyncio.subprocess.Process | None = None
        self._ids = itertools.count(1)
        self._pending: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._ready: asyncio.Future[None] | None = None
        self._readers: list[asyncio.Task[None]] = []

    async def start(self, timeout: float = DEFAULT_TIMEOUT) -> HocuspocusNode:
        self._ready = asyncio.get_running_loop().create_future()
        self.process = await asyncio.create_subprocess_exec(
            self.node,
            str(CLIENT_SCRIPT),
            self.url,
            cwd=HOCUSPOCUS_DIR,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env={**os.environ, "NODE_NO_WARNINGS": "1"},
            limit=64 * 1024 * 1024,
        )
        self._readers = [
            asyncio.create_task(self._read_stdout(), name=f"{self.name}:stdout"),
            asyncio.create_task(self._read_stderr(), name=f"{self.name}:stderr"),
        ]
        try:
            await asyncio.wait_for(asyncio.shield(self._ready), timeout)
        except TimeoutError:
            raise NodeProviderError(
                f"{self.name}: not ready within {timeout}s\n{self.stderr_tail()}"
            ) from None
        return self

    async def close(self, timeout: float = 5.0) -> None:
        process = self.process
        if process is not None and process.returncode is None:
            with contextlib.suppress(NodeProviderError, ConnectionError, RuntimeError):
                await self.request("exit", timeout=timeout)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(process.wait(), timeout)
        await self.kill()

    async def kill(self) -> None:
        process = self.process
        if process is not None and process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(signal.SIGKILL)
            await process.wait()
        for reader in self._readers:
            with contextlib.suppress(TimeoutError, asyncio.CancelledError):
                await asyncio.wait_for(reader, 2.0)
        self._fail_pending("the Node process was stopped")

    async def _read_stdout(self) -> None:
        assert self.process is not None and self.process.stdout is not None
        async for raw in self.process.stdout:
            try:
                message = json.loads(raw)
            except ValueError:
                self.events.append({"event": "garbage", "text": raw.decode("utf-8", "replace")})
                continue
            if "event" in message:
                self.events.append(message)
                if message["event"] == "ready" and self._ready is not None and not self._ready.done():
                    self._ready.set_result(None)
                continue
            future = self._pending.pop(message.get("id"), None)
            if future is not None and not future.done():
                future.set_result(message)
        self._fail_pending("the Node process exited")

    async def _read_stderr(self) -> None:
        assert self.process is not None and self.process.stderr is not None
        async for raw in self.process.stderr:
            self.stderr.append(raw.decode("utf-8", "replace"))

    def _fail_pending(self, why: str) -> None:
        error = NodeProviderError(f"{self.name}: {why}\n{self.stderr_tail()}")
        for future in self._pending.values():
            if not future.done():
                future.set_exception(error)
        self._pending.clear()
        if self._ready is not None and not self._ready.done():
            self._ready.set_exception(error)

    def stderr_tail(self, lines: int = 30) -> str:
        return "".join(self.stderr[-lines:])

    def console_errors(self) -> list[str]:
        return [e["text"] for e in self.events if e.get("event") in ("console", "uncaught")]

    async def request(self, op: str, *, timeout: float = DEFAULT_TIMEOUT, **fields: Any) -> dict[str, Any]:
        process = self.process
        if process is None or process.stdin is None or process.returncode is not None:
            raise NodeProviderError(f"{self.name}: not running\n{self.stderr_tail()}")
        command_id = next(self._ids)
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending[command_id] = future
        process.stdin.write(json.dumps({"id": command_id, "op": op, **fields}).encode() + b"\n")
        try:
            await asyncio.wait_for(process.stdin.drain(), timeout)
            reply = await asyncio.wait_for(asyncio.shield(future), timeout)
        except TimeoutError:
            raise NodeProviderError(
                f"{self.name}: no answer to {op} in {timeout}s\n{self.stderr_tail()}"
            ) from None
        finally:
            self._pending.pop(command_id, None)
        if not reply.get("ok"):
            state = json.dumps(reply.get("state"), ensure_ascii=False)
            raise NodeProviderError(
                f"{self.name}: {op} failed: {reply.get('error')}\n{state}\n{self.stderr_tail()}"
            )
        return reply

    # -- commands ------------------------------------------------------------------------------------
    async def open(self, doc: str, token: str | None = None, **options: Any) -> None:
        await self.request("open", doc=doc, token=token, **options)

    async def close_document(self, doc: str) -> None:
        await self.request("close", doc=doc)

    async def insert_text(self, doc: str, text: str, root: str = "t", index: int | None = None) -> None:
        await self.request(
            "insertText", doc=doc, root=root, text=text, **({} if index is None else {"index": index})
        )

    async def map_set(self, doc: str, key: str, value: Any, root: str = "m") -> None:
        await self.request("mapSet", doc=doc, root=root, key=key, value=value)

    async def array_insert(
        self, doc: str, values: list[Any], root: str = "a", index: int | None = None
    ) -> None:
        await self.request(
            "arrayInsert", doc=doc, root=root, values=values, **({} if index is None else {"index": index})
        )

    async def set_awareness(self, doc: str, state: dict[str, Any] | None) -> None:
        await self.request("setAwareness", doc=doc, state=state)

    async def stateless(self, doc: str, payload: str) -> None:
        await self.request("stateless", doc=doc, payload=payload)

    async def dump(self) -> dict[str, Any]:
        return dict((await self.request("dump"))["state"])

    async def document(self, doc: str) -> dict[str, Any]:
        return dict((await self.dump())["docs"][doc])

    async def wait_for(
        self, doc: str | None = None, timeout: float = DEFAULT_TIMEOUT, **until: Any
    ) -> dict[str, Any]:
        """Wait until every condition holds (see js/client.mjs); returns the dump taken then."""
        reply = await self.request(
            "waitFor", doc=doc, until=until, timeoutMs=int(timeout * 1000), timeout=timeout + 2.0
        )
        return dict(reply["state"])

    async def wait_synced(self, doc: str, timeout: float = DEFAULT_TIMEOUT) -> dict[str, Any]:
        """Authenticated, handshake done, and every change (the handshake included) saved."""
        return await self.wait_for(doc, timeout, authenticated=True, synced=True, unsynced=0)
