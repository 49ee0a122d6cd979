"""Fixtures of the comment tests that need Node: the `yjs` package (npm ci when missing) and a Yjs peer.

Without node and npm the tests are skipped locally and fail when CI=true (as tests/interop does).
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import shutil
import subprocess
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

HERE = Path(__file__).resolve().parent
PEER = HERE / "js" / "peer.mjs"
NPM_CI_TIMEOUT = 300.0
REPLY_TIMEOUT = 10.0


def _unavailable(reason: str) -> None:
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"the Node comment tests cannot run in CI: {reason}", pytrace=False)
    pytest.skip(f"the Node comment tests need it: {reason}")


def _installed() -> bool:
    return (HERE / "node_modules" / "yjs" / "package.json").is_file()


@pytest.fixture(scope="session")
def node_path() -> Iterator[str]:
    """`node`, with tests/comments/node_modules installed from the lockfile."""
    node = shutil.which("node")
    if node is None:
        _unavailable("`node` is not on PATH")
    assert node is not None
    if not _installed():
        npm = shutil.which("npm")
        if npm is None:
            _unavailable("`npm` is not on PATH and tests/comments/node_modules is missing")
        assert npm is not None
        try:
            result = subprocess.run(
                [npm, "ci", "--no-audit", "--no-fund"],
                cwd=HERE,
                capture_output=True,
                text=True,
                timeout=NPM_CI_TIMEOUT,
            )
        except subprocess.TimeoutExpired:
            _unavailable(f"`npm ci` did not finish within {NPM_CI_TIMEOUT}s")
        else:
            if result.returncode != 0 or not _installed():
                _unavailable(f"`npm ci` failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
    yield node


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
