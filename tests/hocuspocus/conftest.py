"""Fixtures for the Hocuspocus tests: the npm packages, and a factory of Node provider processes.

Node and npm are required: without them the tests are skipped locally and fail when CI=true.
`node_modules` is installed with `npm ci` (from the committed package-lock.json) when missing.
The y-websocket clients of the mixed tests come from tests/interop (its `node_env` fixture).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field

import pytest

from tests.hocuspocus.node_provider import HOCUSPOCUS_DIR, HocuspocusNode
from tests.interop.conftest import node_env  # noqa: F401  (the y-websocket clients' packages)
from tests.support.node import node_with_packages
from tests.support.server_process import ServerProcess

REQUIRED_PACKAGES = ("@hocuspocus/provider", "@hocuspocus/common", "yjs", "y-protocols", "ws")


@pytest.fixture(scope="session")
def hocuspocus_env() -> Iterator[str]:
    """Path of `node`, with tests/hocuspocus/node_modules installed."""
    yield node_with_packages(HOCUSPOCUS_DIR, REQUIRED_PACKAGES, "Hocuspocus tests")


@dataclass
class Providers:
    """Starts Node provider processes on `server`; all are stopped at teardown."""

    server: ServerProcess
    node_path: str
    started: list[HocuspocusNode] = field(default_factory=list)

    def url(self, server: ServerProcess | None = None) -> str:
        return f"ws://127.0.0.1:{(server or self.server).port}/hocuspocus"

    async def start(self, name: str | None = None) -> HocuspocusNode:
        node = HocuspocusNode(self.url(), name=name or f"hp{len(self.started) + 1}", node=self.node_path)
        self.started.append(node)
        return await node.start()


@pytest.fixture
async def providers(
    request: pytest.FixtureRequest, hocuspocus_env: str, server: ServerProcess
) -> AsyncIterator[Providers]:
    made = Providers(server=server, node_path=hocuspocus_env)
    try:
        yield made
    finally:
        for node in made.started:
            with contextlib.suppress(Exception):
                await node.close()
    errors = {node.name: node.console_errors() for node in made.started if node.console_errors()}
    if errors or os.environ.get("INTEROP_SHOW_LOGS"):
        print("---- server log ----")
        print("".join(line for line in server.output if "alembic" not in line)[-20000:])
        for node in made.started:
            print(f"---- {node.name} stderr ----")
            print(node.stderr_tail(60))
    if errors:
        pytest.fail(f"Hocuspocus providers reported errors: {errors}", pytrace=False)
