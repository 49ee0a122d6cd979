"""A real `cocreate serve` subprocess on a free loopback port, stopped gently or with SIGKILL."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
_LISTENING = re.compile(r"listening on http://([\d.]+):(\d+)")


@dataclass
class ServerProcess:
    """A running server; `url` is its http base, `ws(doc)` a websocket URL for a document."""

    db_url: str
    data_dir: Path
    extra_args: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    port: int = 0
    process: subprocess.Popen[str] | None = None
    output: list[str] = field(default_factory=list)
    _new_line: threading.Condition = field(default_factory=threading.Condition)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def ws(self, document: str, query: str = "") -> str:
        return f"ws://127.0.0.1:{self.port}/ws/{document}" + (f"?{query}" if query else "")

    def start(self, timeout: float = 20.0) -> ServerProcess:
        """Start (or restart, on the same port when it had one) and wait for the listening line."""
        args = [
            sys.executable,
            "-m",
            "server.cli",
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--db",
            self.db_url,
            "--data-dir",
            str(self.data_dir),
            *self.extra_args,
        ]
        env = {**os.environ, "PYTHONUNBUFFERED": "1", **self.env}
        self.process = subprocess.Popen(
            args, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        ready = threading.Event()
        threading.Thread(target=self._pump, args=(self.process, ready), daemon=True).start()
        if not ready.wait(timeout):
            self.kill()
            raise RuntimeError("server did not start:\n" + "".join(self.output[-50:]))
        return self

    def _pump(self, process: subprocess.Popen[str], ready: threading.Event) -> None:
        assert process.stdout is not None
        for line in process.stdout:
            with self._new_line:
                self.output.append(line)
                self._new_line.notify_all()
            match = _LISTENING.search(line)
            if match and not ready.is_set():
                self.port = int(match.group(2))
                ready.set()

    def stop(self, timeout: float = 15.0) -> int | None:
        """SIGTERM, then wait for a graceful exit (SIGKILL if it hangs). Returns the exit code."""
        process = self.process
        if process is None or process.poll() is not None:
            return None if process is None else process.returncode
        process.send_signal(signal.SIGTERM)
        try:
            return process.wait(timeout)
        except subprocess.TimeoutExpired as exc:
            process.kill()
            process.wait()
            tail = "".join(self.output[-50:])
            raise RuntimeError(f"server did not stop within the timeout:\n{tail}") from exc

    def kill(self) -> None:
        """SIGKILL: no flush, no goodbye (crash tests)."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def log_text(self) -> str:
        return "".join(self.output)

    def wait_for_log(self, pattern: str, timeout: float = 5.0) -> bool:
        """Wait (on the output condition, no polling) for a log line matching `pattern`."""
        regex = re.compile(pattern)
        deadline = time.monotonic() + timeout
        with self._new_line:
            while not any(regex.search(line) for line in self.output):
                remaining = deadline - time.monotonic()
                if remaining <= 0 or not self._new_line.wait(remaining):
                    return any(regex.search(line) for line in self.output)
            return True


@contextlib.contextmanager
def running_server(tmp_path: Path, db_url: str | None = None, *extra_args: str) -> Iterator[ServerProcess]:
    url = db_url or f"sqlite+aiosqlite:///{tmp_path / 'cocreate.db'}"
    server = ServerProcess(db_url=url, data_dir=tmp_path, extra_args=list(extra_args)).start()
    try:
        yield server
    finally:
        if server.alive():
            server.stop()
