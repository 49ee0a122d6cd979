"""Fixtures of the comment tests that need Node: the `yjs` package (npm ci when missing) and a Yjs peer.

Without node and npm the tests are skipped locally and fail when CI=true (as tests/interop does).
"""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.node import node_with_packages

HERE = Path(__file__).resolve().parent
PEER = HERE / "js" / "peer.mjs"
REPLY_TIMEOUT = 10.0


@pytest.fixture(scope="session")
def node_path() -> Iterator[str]:
    """`node`, with tests/comments/node_modules installed from the lockfile."""
    yield node_with_packages(HERE, ("yjs",), "the Node comment tests")


class YjsPeer:
    """One Node process holding a Y.Doc (js/peer.mjs); every reply is awaited with a timeout."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process

    async def call(self, op: str, **args: Any) -> dict[str, Any]:
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write((json.dumps({"op": op, **args}) + "\n").encode())
        await self.process.stdin.drain()
        line = await asyncio.wait_for(self.process.stdout.readline(), REPLY_TIMEOUT)
        if not line:
            raise AssertionError(f"the Yjs peer exited during {op!r}")
        reply: dict[str, Any] = json.loads(line)
        if not reply.pop("ok"):
            raise AssertionError(f"the Yjs peer failed {op!r}: {reply['error']}")
        return reply

    async def apply(self, update: bytes) -> None:
        await self.call("apply", update=base64.b64encode(update).decode())

    async def edit(self, op: str, **args: Any) -> bytes:
        return base64.b64decode((await self.call(op, **args))["update"])


@pytest.fixture
async def yjs_peer(node_path: str) -> AsyncIterator[YjsPeer]:
    process = await asyncio.create_subprocess_exec(
        node_path, str(PEER), stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, cwd=HERE
    )
    try:
        yield YjsPeer(process)
    finally:
        if process.stdin is not None:
            process.stdin.close()
        try:
            await asyncio.wait_for(process.wait(), 5)
        except TimeoutError:
            process.kill()
            await process.wait()
