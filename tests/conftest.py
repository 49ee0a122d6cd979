"""Shared fixtures: a real server process on a free loopback port."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.server_process import ServerProcess, running_server


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--cycles", type=int, default=20, help="kill -9 cycles in the crash test (default 20)")


@pytest.fixture
def request_cycles(request: pytest.FixtureRequest) -> int:
    return int(request.config.getoption("--cycles"))


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServerProcess]:
    """A `cocreate serve` subprocess on SQLite in a temp dir, stopped after the test."""
    with running_server(tmp_path) as process:
        yield process
