"""The import rules of DESIGN.md §1, checked by walking every module's imports with `ast`."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("crdt", "persistence", "server", "client")
# Which first-party packages each package may import (imports point down only).
ALLOWED_FIRST_PARTY = {
    "crdt": {"crdt"},
    "persistence": {"persistence", "crdt"},
    "server": {"server", "persistence", "crdt"},
    "client": {"client", "crdt"},
}
IO_LIBRARIES = {
    "asyncio", "socket", "sqlite3", "websockets", "starlette", "uvicorn", "sqlalchemy",
    "aiosqlite", "asyncpg", "time", "datetime", "threading", "subprocess", "selectors", "ssl",
}  # fmt: skip
# Only these edge modules may import the web/database libraries.
EDGE_ONLY = {
    "websockets",
    "starlette",
    "uvicorn",
    "sqlalchemy",
    "aiosqlite",
    "asyncpg",
    "alembic",
    "h11",
    "redis",
}
# Cluster mode's Redis I/O: the streams node and the compaction lease (pure logic lives beside them).
CLUSTER_EDGES = {"server/cluster/node.py", "server/cluster/lease.py"}


def modules(package: str) -> list[Path]:
    return sorted((ROOT / package).rglob("*.py"))


def imported_roots(path: Path) -> set[str]:
    roots = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            roots.add(node.module.split(".")[0])
    return roots


@pytest.mark.parametrize("package", PACKAGES)
def test_imports_point_down_only(package: str) -> None:
    for path in modules(package):
        first_party = imported_roots(path) & set(PACKAGES)
        assert first_party <= ALLOWED_FIRST_PARTY[package], f"{path}: imports {first_party}"


def test_core_is_sans_io() -> None:
    for path in modules("crdt"):
        found = imported_roots(path) & IO_LIBRARIES
        assert not found, f"{path.relative_to(ROOT)} imports I/O: {found}"


def is_edge(relative: str) -> bool:
    """Edges: the websocket transport, HTTP plumbing and route modules (`*_api.py`), wiring, SQL adapters."""
    return (
        relative
        in {
            "server/transport.py",
            "server/app.py",
            "server/http.py",
            "server/webhook_http.py",
            "server/web.py",
            "client/client.py",
        }
        or relative in CLUSTER_EDGES
        or (relative.startswith("server/") and relative.endswith("_api.py"))
        or relative.startswith("persistence/sql/")
    )


def test_only_edge_modules_import_web_and_database_libraries() -> None:
    for package in PACKAGES:
        for path in modules(package):
            relative = path.relative_to(ROOT).as_posix()
            found = imported_roots(path) & EDGE_ONLY
            assert not found or is_edge(relative), f"{relative} imports {found}"


def test_every_module_states_its_responsibility() -> None:
    for package in PACKAGES:
        for path in modules(package):
            tree = ast.parse(path.read_text())
            doc = ast.get_docstring(tree)
            assert doc, f"{path.relative_to(ROOT)} has no module docstring"


def test_cluster_logic_is_sans_io() -> None:
    """The watermark tracker and the record codec stay pure: Redis and clocks live in the edges."""
    for name in ("watermark.py", "records.py", "__init__.py"):
        path = ROOT / "server" / "cluster" / name
        found = imported_roots(path) & (IO_LIBRARIES | {"redis"})
        assert not found, f"server/cluster/{name} imports I/O: {found}"
