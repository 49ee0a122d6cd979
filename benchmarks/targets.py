"""Servers under test: peer installation, start commands (memory or persistent), URLs and dialects."""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from benchmarks.procs import ServerProcess, free_port
from benchmarks.wire import Dialect

PEERS_DIR = Path(__file__).resolve().parent / "peers"
PEER_VENV = PEERS_DIR / ".venv"
PEER_PYTHON = PEER_VENV / "bin" / "python"
NODE_MODULES = PEERS_DIR / "node_modules"
PYTHON_PEER_PACKAGES = ["pycrdt-websocket>=0.16,<0.17", "uvicorn>=0.30", "websockets>=14"]
_NODE_NEEDS = {
    "y-websocket-server": ["@y/websocket-server", "y-leveldb"],
    "hocuspocus": ["@hocuspocus/server", "@hocuspocus/provider", "@hocuspocus/extension-database"],
}
CLIENT_PACKAGES = ["yjs", "y-websocket", "ws"]
INSTALL_TIMEOUT = 600


def node_package_installed(name: str) -> bool:
    return (NODE_MODULES / name / "package.json").exists()


def node_clients_ready() -> bool:
    return shutil.which("node") is not None and all(node_package_installed(p) for p in CLIENT_PACKAGES)


def missing_reason(target: str) -> str | None:
    """None when `target` can run; otherwise what is missing (run `python -m benchmarks setup`)."""
    if target.startswith("cocreate"):
        return None
    if target in _NODE_NEEDS:
        if shutil.which("node") is None:
            return "node not found"
        absent = [p for p in _NODE_NEEDS[target] if not node_package_installed(p)]
        return f"npm packages missing: {', '.join(absent)} (python -m benchmarks setup)" if absent else None
    if target == "pycrdt-websocket":
        return None if PEER_PYTHON.exists() else "peer venv missing (python -m benchmarks setup)"
    return "unknown target"


def setup_peers(log: bool = True) -> dict[str, str]:
    """Install the peers (npm ci from the lock file if present, else npm install; pip into the venv)."""
    status: dict[str, str] = {}
    npm = shutil.which("npm")
    if npm is None:
        status["npm"] = "npm not found: Node peers and clients skipped"
    else:
        command = "ci" if (PEERS_DIR / "package-lock.json").exists() else "install"
        done = _run([npm, command, "--no-audit", "--no-fund", "--loglevel=error"], log)
        status["npm"] = "ok" if done else "npm install failed"
    if not PEER_PYTHON.exists():
        _run([sys.executable, "-m", "venv", str(PEER_VENV)], log)
    if PEER_PYTHON.exists():
        done = _run([str(PEER_PYTHON), "-m", "pip", "install", "-q", *PYTHON_PEER_PACKAGES], log)
        status["pip"] = "ok" if done else "pip install failed"
    else:
        status["pip"] = "could not create the peer venv"
    return status


def _run(argv: list[str], log: bool) -> bool:
    if log:
        print("$", " ".join(argv), flush=True)
    try:
        subprocess.run(argv, cwd=PEERS_DIR, check=True, timeout=INSTALL_TIMEOUT)
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired, OSError) as exc:
        print(f"  failed: {exc}", flush=True)
        return False
    return True


Starter = Callable[[Path, int, bool], ServerProcess]


@dataclass(frozen=True)
class Target:
    """One server implementation; `storages` names its (in-memory, persistent) configurations."""

    name: str
    starter: Starter
    path_prefix: str
    storages: tuple[str, str]
    hocuspocus: bool = False
    acks: bool = False
    always_persistent: bool = False
    provider: str = "y-websocket"  # the Node provider class its clients use

    def start(self, data_dir: Path, port: int = 0, persist: bool = False) -> ServerProcess:
        data_dir.mkdir(parents=True, exist_ok=True)
        return self.starter(data_dir, port, persist or self.always_persistent).start()

    def storage(self, persist: bool) -> str:
        return self.storages[1 if persist or self.always_persistent else 0]

    def path(self, room: str) -> str:
        """URL path a client opens for `room` (Hocuspocus: one endpoint, the room is in each message)."""
        base = self.path_prefix if self.hocuspocus else self.path_prefix + room
        return base + ("?acks=1" if self.acks else "")

    def dialect(self, room: str) -> Dialect:
        return Dialect(self.hocuspocus, room)


def _cocreate(data_dir: Path, port: int, persist: bool) -> ServerProcess:
    url = f"sqlite+aiosqlite:///{data_dir / 'cocreate.db'}" if persist else "memory://"
    argv = [sys.executable, "-m", "server.cli", "serve", "--host", "127.0.0.1"]
    argv += ["--port", str(port), "--db", url, "--data-dir", str(data_dir), "--log-level", "warning"]
    argv += ["--message-rate", "0"]  # the peers have no per-connection rate limit; trace replays exceed ours
    return ServerProcess(name="cocreate", argv=argv, port=port)


def _y_websocket_server(data_dir: Path, port: int, persist: bool) -> ServerProcess:
    port = port or free_port()
    env = {"HOST": "127.0.0.1", "PORT": str(port)}
    if persist:
        env["YPERSISTENCE"] = str(data_dir / "leveldb")
    script = NODE_MODULES / "@y" / "websocket-server" / "src" / "server.js"
    return ServerProcess(name="y-websocket-server", argv=["node", str(script)], port=port, env=env)


def _hocuspocus(data_dir: Path, port: int, persist: bool) -> ServerProcess:
    port = port or free_port()
    argv = ["node", str(PEERS_DIR / "hocuspocus_server.mjs"), str(port)]
    argv += [str(data_dir)] if persist else []
    return ServerProcess(name="hocuspocus", argv=argv, port=port, cwd=PEERS_DIR)


def _pycrdt_websocket(data_dir: Path, port: int, persist: bool) -> ServerProcess:
    port = port or free_port()
    argv = [str(PEER_PYTHON), str(PEERS_DIR / "pycrdt_server.py"), str(port)]
    argv += [str(data_dir / "ystore.db")] if persist else []
    return ServerProcess(name="pycrdt-websocket", argv=argv, port=port, cwd=PEERS_DIR)


TARGETS = {
    t.name: t
    for t in (
        Target("cocreate", _cocreate, "/ws/", ("memory", "sqlite"), acks=True),
        Target("cocreate-sqlite", _cocreate, "/ws/", ("sqlite", "sqlite"), acks=True, always_persistent=True),
        Target("y-websocket-server", _y_websocket_server, "/", ("memory", "leveldb")),
        Target("hocuspocus", _hocuspocus, "/", ("memory", "files"), hocuspocus=True, provider="hocuspocus"),
        Target("pycrdt-websocket", _pycrdt_websocket, "/", ("memory", "sqlite-ystore")),
    )
}
PEERS = ("y-websocket-server", "hocuspocus", "pycrdt-websocket")


def all_targets() -> dict[str, Target]:
    return dict(TARGETS)


def available(names: list[str]) -> tuple[list[Target], dict[str, str]]:
    """The targets among `names` that can run here, and why each other one cannot."""
    usable: list[Target] = []
    missing: dict[str, str] = {}
    for name in names:
        target = TARGETS.get(name)
        reason = "unknown target" if target is None else missing_reason(name)
        if reason or target is None:
            missing[name] = reason or "unknown target"
        else:
            usable.append(target)
    return usable, missing
