"""Fixtures for the Hocuspocus tests: the npm packages, and a factory of Node provider processes.

Node and npm are required: without them the tests are skipped locally and fail when CI=true.
`node_modules` is installed with `npm ci` (from the committed package-lock.json) when missing.
The y-websocket clients of the mixed tests come from tests/interop (its `node_env` fixture).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field

import pytest

from tests.hocuspocus.node_provider import HOCUSPOCUS_DIR, HocuspocusNode
from tests.interop.conftest import node_env  # noqa: F401  (the y-websocket clients' packages)
from tests.support.server_process import ServerProcess

NPM_CI_TIMEOUT = 300.0
REQUIRED_PACKAGES = ("@hocuspocus/provider", "@hocuspocus/common", "yjs", "y-protocols", "ws")


def _unavailable(reason: str) -> None:
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"Hocuspocus tests cannot run in CI: {reason}", pytrace=False)
    pytest.skip(f"Hocuspocus tests need it: {reason}")


def _installed() -> bool:
    modules = HOCUSPOCUS_DIR / "node_modules"
    return all((modules / name / "package.json").is_file() for name in REQUIRED_PACKAGES)


@pytest.fixture(scope="session")
def hocuspocus_env() -> Iterator[str]:
    """Path of `node`, with tests/hocuspocus/node_modules installed."""
    node = shutil.which("node")
    if node is None:
        _unavailable("`node` is not on PATH")
    assert node is not None
    if not _installed():
        npm = shutil.which("npm")
        if npm is None:
            _unavailable("`npm` is not on PATH and tests/hocuspocus/node_modules is missing")
        assert npm is not None
        try:
            result = subprocess.run(
                [npm, "ci", "--no-audit", "--no-fund"],
                cwd=HOCUSPOCUS_DIR,
                capture_output=True,
                text=True,
                timeout=NPM_CI_TIMEOUT,
            )
        except subprocess.TimeoutExpired:
            _unavailable(f"`npm ci` did not finish within {NPM_CI_TIMEOUT}s")
        else:
            if result.returncode != 0 or not _installed():
                _unavailable(f"`npm ci` failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
            (HOCUSPOCUS_DIR / "node_modules" / ".installed").touch()  # the Makefile's stamp
    yield node


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
