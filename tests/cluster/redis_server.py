"""A throwaway redis-server for tests: loopback, free port, temp dir, no persistence, restartable."""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path


class RedisUnavailable(RuntimeError):
    """No redis-server binary on this machine."""


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class RedisServer:
    """`start()` / `stop()` (SIGKILL-free shutdown not needed: nothing is persisted) on one port."""

    binary: str
    root: Path
    port: int = field(default_factory=_free_port)
    process: subprocess.Popen[str] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 10.0) -> None:
        args = [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.root),
                "--save", "", "--appendonly", "no", "--protected-mode", "no"]  # fmt: skip
        process = self.process = subprocess.Popen(
            args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        ready = threading.Event()
        output: list[str] = []

        def pump() -> None:
            assert process.stdout is not None
            for line in process.stdout:
                output.append(line)
                if "Ready to accept connections" in line:
                    ready.set()
            ready.set()  # exited

        threading.Thread(target=pump, daemon=True).start()
        if not ready.wait(timeout) or process.poll() is not None:
            self.stop()
            raise RuntimeError("redis-server did not start:\n" + "".join(output[-20:]))

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)
        self.process = None

    def destroy(self) -> None:
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)


def launch() -> RedisServer:
    binary = shutil.which("redis-server")
    if binary is None:
        raise RedisUnavailable("redis-server not found")
    server = RedisServer(binary, Path(tempfile.mkdtemp(prefix="cocreate-redis-")))
    server.start()
    return server
