"""Drive a stock y-websocket `WebsocketProvider` (Node, js/client.mjs) from pytest over stdin/stdout.

Every command is one JSON line with an id; the Node side answers each with one JSON line (see the
protocol at the top of js/client.mjs). Every wait here is bounded: a reply that does not come in
time raises `NodeClientError` with the tail of the Node process's stderr.
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

INTEROP_DIR = Path(__file__).resolve().parent
CLIENT_SCRIPT = INTEROP_DIR / "js" / "client.mjs"
UNKNOWN_MESSAGE = "Unable to compute message"

DEFAULT_TIMEOUT = 10.0  # seconds, for one command (a waitFor gets its own timeout plus a margin)


class NodeClientError(AssertionError):
    """The Node client failed a command, timed out or died."""


class NodeClient:
    """One Node process with one `WebsocketProvider` on one document."""

    def __init__(
        self,
        server_url: str,
        room: str,
        *,
        name: str = "node",
        params: dict[str, str] | None = None,
        roots: dict[str, str] | None = None,
        connect: bool = True,
        node: str = "node",
    ) -> None:
        self.server_url = server_url
        self.room = room
        self.name = name
        self.node = node
        self.options: dict[str, Any] = {"params": params or {}, "roots": roots or {}, "connect": connect}
        self.client_id: int | None = None
        self.events: list[dict[str, Any]] = []  # unsolicited lines (console output, exceptions)
        self.stderr: list[str] = []
        self.process: asyncio.subprocess.Process | None = None
        self._ids = itertools.count(1)
        self._pending: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._ready: asyncio.Future[dict[str, Any]] | None = None
        self._readers: list[asyncio.Task[None]] = []

    # -- lifecycle ---------------------------------------------------------------------------
    async def start(self, timeout: float = DEFAULT_TIMEOUT) -> NodeClient:
        loop = asyncio.get_running_loop()
        self._ready = loop.create_future()
        self.process = await asyncio.create_subprocess_exec(
            self.node,
            str(CLIENT_SCRIPT),
            self.server_url,
            self.room,
            json.dumps(self.options),
            cwd=INTEROP_DIR,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env={**os.environ, "NODE_NO_WARNINGS": "1"},
            limit=64 * 1024 * 1024,  # a dump of a big document is one line
        )
        self._readers = [
            asyncio.create_task(self._read_stdout(), name=f"{self.name}:stdout"),
            asyncio.create_task(self._read_stderr(), name=f"{self.name}:stderr"),
        ]
        ready = await self._await(self._ready, timeout, "start")
        self.client_id = int(ready["clientID"])
        return self

    async def close(self, timeout: float = 5.0) -> dict[str, Any] | None:
        """Ask the client to exit (destroying its provider); kill it if it does not. Returns the
        final dump when the client answered."""
        final = None
        process = self.process
        if process is not None and process.returncode is None:
            with contextlib.suppress(NodeClientError, ConnectionError, RuntimeError):
                final = (await self.request("exit", timeout=timeout)).get("state")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(process.wait(), timeout)
        await self.kill()
        return final

    async def kill(self) -> None:
        """SIGKILL: the websocket dies without a close frame or an awareness goodbye."""
        process = self.process
        if process is not None and process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(signal.SIGKILL)
            await process.wait()
        for reader in self._readers:
            with contextlib.suppress(TimeoutError, asyncio.CancelledError):
                await asyncio.wait_for(reader, 2.0)
        self._fail_pending("the Node process was stopped")

    # -- I/O ---------------------------------------------------------------------------------
    async def _read_stdout(self) -> None:
        assert self.process is not None and self.process.stdout is not None
        async for raw in self.process.stdout:
            line = raw.decode("utf-8", "replace").strip()
            if not line:
                continue
            try:
                message = json.loads(line)
            except ValueError:
                self.events.append({"event": "garbage", "text": line})
                continue
            if "event" in message:
                self.events.append(message)
                if message["event"] == "ready" and self._ready is not None and not self._ready.done():
                    self._ready.set_result(message)
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
        error = NodeClientError(f"{self.name}: {why}\n{self.stderr_tail()}")
        for future in [*self._pending.values(), self._ready]:
            if future is not None and not future.done():
                future.set_exception(error)
        self._pending.clear()

    def stderr_tail(self, lines: int = 30) -> str:
        return "".join(self.stderr[-lines:])

    async def _await(
        self, future: asyncio.Future[dict[str, Any]], timeout: float, what: str
    ) -> dict[str, Any]:
        try:
            return await asyncio.wait_for(asyncio.shield(future), timeout)
        except TimeoutError:
            future.cancel()
            raise NodeClientError(
                f"{self.name}: no answer to {what} within {timeout}s\n{self.stderr_tail()}"
            ) from None

    async def request(self, op: str, *, timeout: float = DEFAULT_TIMEOUT, **fields: Any) -> dict[str, Any]:
        """Send one command and return its reply; raise `NodeClientError` if it failed."""
        process = self.process
        if process is None or process.stdin is None or process.returncode is not None:
            raise NodeClientError(f"{self.name}: not running\n{self.stderr_tail()}")
        command_id = next(self._ids)
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending[command_id] = future
        process.stdin.write(json.dumps({"id": command_id, "op": op, **fields}).encode() + b"\n")
        try:
            await asyncio.wait_for(process.stdin.drain(), timeout)
        except (ConnectionError, TimeoutError) as exc:
            self._pending.pop(command_id, None)
            raise NodeClientError(f"{self.name}: cannot send {op}: {exc!r}\n{self.stderr_tail()}") from exc
        try:
            reply = await self._await(future, timeout, op)
        finally:
            self._pending.pop(command_id, None)
        if not reply.get("ok"):
            state = reply.get("state")
            detail = f"\nstate: {json.dumps(state, ensure_ascii=False)}" if state is not None else ""
            raise NodeClientError(
                f"{self.name}: {op} failed: {reply.get('error')}{detail}\n{self.stderr_tail()}"
            )
        return reply

    # -- commands ----------------------------------------------------------------------------
    async def insert_text(self, root: str, text: str, index: int | None = None) -> None:
        await self.request("insertText", root=root, text=text, **({} if index is None else {"index": index}))

    async def delete_text(self, root: str, index: int, length: int) -> None:
        await self.request("deleteText", root=root, index=index, length=length)

    async def map_set(self, root: str, key: str, value: Any) -> None:
        await self.request("mapSet", root=root, key=key, value=value)

    async def map_delete(self, root: str, key: str) -> None:
        await self.request("mapDelete", root=root, key=key)

    async def array_insert(self, root: str, values: list[Any], index: int | None = None) -> None:
        await self.request(
            "arrayInsert", root=root, values=values, **({} if index is None else {"index": index})
        )

    async def array_delete(self, root: str, index: int, length: int) -> None:
        await self.request("arrayDelete", root=root, index=index, length=length)

    async def transact(self, *ops: dict[str, Any]) -> None:
        await self.request("transact", ops=list(ops))

    async def disconnect(self) -> None:
        await self.request("disconnect")

    async def connect(self) -> None:
        await self.request("connect")

    async def drop_socket(self) -> None:
        await self.request("dropSocket")

    async def set_awareness(self, state: dict[str, Any] | None) -> None:
        await self.request("setAwareness", state=state)

    async def dump(self) -> dict[str, Any]:
        return dict((await self.request("dump"))["state"])

    async def roots(self) -> dict[str, Any]:
        return dict((await self.dump())["roots"])

    async def wait_for(self, timeout: float = DEFAULT_TIMEOUT, **until: Any) -> dict[str, Any]:
        """Wait until every condition in `until` holds on the Node side (see js/client.mjs);
        returns the dump taken when it did."""
        reply = await self.request(
            "waitFor", until=until, timeoutMs=int(timeout * 1000), timeout=timeout + 2.0
        )
        return dict(reply["state"])

    async def wait_synced(self, timeout: float = DEFAULT_TIMEOUT) -> dict[str, Any]:
        return await self.wait_for(timeout, synced=True, connected=True)

    # -- what the provider printed -----------------------------------------------------------
    def console_errors(self) -> list[str]:
        return [e["text"] for e in self.events if e.get("event") in ("console", "uncaught")]

    def uncaught_errors(self) -> list[str]:
        return [e["text"] for e in self.events if e.get("event") == "uncaught"]

    def unknown_message_errors(self) -> list[str]:
        return [text for text in self.console_errors() if UNKNOWN_MESSAGE in text]
