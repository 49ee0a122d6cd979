"""Fixtures for the interop tests: the npm packages, and factories for Node and Python clients.

Node and npm are required: without them the tests are skipped locally and fail when CI=true.
`node_modules` is installed with `npm ci` (from the committed package-lock.json) when missing.
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from tests.interop.node_client import INTEROP_DIR, NodeClient
from tests.interop.py_peer import PyPeer, python_peer
from tests.support.node import node_with_packages
from tests.support.server_process import ServerProcess

REQUIRED_PACKAGES = ("yjs", "y-websocket", "y-protocols", "lib0", "ws")


@pytest.fixture(scope="session")
def node_env() -> Iterator[str]:
    """Path of `node`, with tests/interop/node_modules installed."""
    yield node_with_packages(INTEROP_DIR, REQUIRED_PACKAGES, "interop tests")


@dataclass
class Peers:
    """Starts Node and Python clients on `server`; everything is stopped at teardown."""

    server: ServerProcess
    node_path: str
    stack: contextlib.AsyncExitStack
    document: str = "team/interop-doc"  # this test's own document (the default of node() and python())
    nodes: list[NodeClient] = field(default_factory=list)
    tolerate_unknown: set[str] = field(default_factory=set)

    def base_url(self) -> str:
        return self.server.ws("").rstrip("/")

    def url(self, document: str | None = None, query: str = "") -> str:
        return self.server.ws(document or self.document, query)

    async def node(
        self,
        document: str | None = None,
        *,
        name: str | None = None,
        params: dict[str, str] | None = None,
        wait_synced: bool = True,
        expect_unknown_messages: bool = False,
    ) -> NodeClient:
        client = NodeClient(
            self.base_url(),
            document or self.document,
            name=name or f"node{len(self.nodes) + 1}",
            params=params,
            node=self.node_path,
        )
        self.nodes.append(client)
        if expect_unknown_messages:
            self.tolerate_unknown.add(client.name)
        await client.start()
        if wait_synced:
            await client.wait_synced()
        return client

    async def close_all(self) -> None:
        """Stop every client started so far (Node and Python)."""
        for client in self.nodes:
            await client.close()
        await self.stack.aclose()

    async def python(self, document: str | None = None, doc: Any = None, *, reconnect: bool = True) -> PyPeer:
        return await self.stack.enter_async_context(python_peer(self.url(document), doc, reconnect=reconnect))


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[pytest.TestReport]:
    report = yield
    if report.when == "call":
        item.stash[_CALL_FAILED] = report.failed
    return report


_CALL_FAILED = pytest.StashKey[bool]()


@pytest.fixture
async def peers(request: pytest.FixtureRequest, node_env: str, server: ServerProcess) -> AsyncIterator[Peers]:
    """Clients on `server` (whichever `server` fixture applies: a module may share one server between its
    tests, each on its own `peers.document`)."""
    if not server.alive():  # a shared server that an earlier test stopped (and failed to restart)
        server.start()
    document = "interop/" + re.sub(r"[^A-Za-z0-9_]+", "-", request.node.name).strip("-")
    async with contextlib.AsyncExitStack() as stack:
        peers = Peers(server=server, node_path=node_env, stack=stack, document=document)
        try:
            yield peers
        finally:
            for client in peers.nodes:
                await client.close()
    if request.node.stash.get(_CALL_FAILED, False) or os.environ.get("INTEROP_SHOW_LOGS"):
        # Shown with the failure: what the server and the Node clients said.
        print("---- server log ----")
        print("".join(line for line in server.output if "alembic" not in line)[-30000:])
        for client in peers.nodes:
            print(f"---- {client.name} (client id {client.client_id}) stderr ----")
            print(client.stderr_tail(60))
    unexpected = {
        client.name: client.unknown_message_errors()
        for client in peers.nodes
        if client.name not in peers.tolerate_unknown and client.unknown_message_errors()
    }
    if unexpected:
        pytest.fail(f"y-websocket clients received unknown message types: {unexpected}", pytrace=False)
    crashed = {client.name: client.uncaught_errors() for client in peers.nodes if client.uncaught_errors()}
    if crashed:
        pytest.fail(f"uncaught exceptions in Node clients: {crashed}", pytrace=False)
