"""Server subprocesses for benchmarks: start on loopback, wait until listening, read CPU/RSS, stop by PID."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TMP_DIR = ROOT / "benchmarks" / "results" / "tmp"  # scratch: data dirs, configs, caches (gitignored)
CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")
_PORT_IN_LINE = re.compile(r"(?:127\.0\.0\.1|localhost):(\d+)")


def free_port() -> int:
    """A loopback port that was free a moment ago (for servers that cannot bind port 0 themselves)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def cpu_seconds(pid: int) -> float:
    """CPU time of a process, all threads: the sum of /proc/PID/task/*/schedstat (nanoseconds).

    Falls back to utime + stime of /proc/PID/stat (clock ticks, 10 ms resolution) when schedstat
    is unavailable. Threads that already exited are only counted by the fallback.
    """
    total = 0
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task}/schedstat") as handle:
                total += int(handle.read().split()[0])
    except (FileNotFoundError, ProcessLookupError, ValueError, IndexError):
        return stat_cpu_seconds(pid)
    return total / 1e9


def user_system_seconds(pid: int) -> tuple[float, float]:
    """(utime, stime) of a process (all its threads, live or exited) from /proc/PID/stat."""
    with open(f"/proc/{pid}/stat") as handle:
        stat = handle.read()
    fields = stat[stat.rindex(")") + 2 :].split()
    return int(fields[11]) / CLK_TCK, int(fields[12]) / CLK_TCK


def stat_cpu_seconds(pid: int) -> float:
    return sum(user_system_seconds(pid))


def rss_bytes(pid: int) -> int:
    with open(f"/proc/{pid}/statm") as handle:
        return int(handle.read().split()[1]) * PAGE_SIZE


def wait_port(port: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.settimeout(0.2)
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return True
        time.sleep(0.05)
    return False


@dataclass
class ServerProcess:
    """One server under test. `port=0` means: learn the port from its 'listening' output line."""

    name: str
    argv: list[str]
    port: int = 0
    cwd: Path = ROOT
    env: dict[str, str] = field(default_factory=dict)
    ready_pattern: str = r"listening on http://127\.0\.0\.1:(\d+)"
    process: subprocess.Popen[str] | None = None
    output: list[str] = field(default_factory=list)

    @property
    def pid(self) -> int:
        assert self.process is not None, "server not started"
        return self.process.pid

    def ws_url(self, path: str) -> str:
        return f"ws://127.0.0.1:{self.port}{path}"

    def start(self, timeout: float = 30.0) -> ServerProcess:
        env = {**os.environ, "PYTHONUNBUFFERED": "1", **self.env}
        self.output = []
        self.process = subprocess.Popen(
            self.argv,
            cwd=self.cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        ready = threading.Event()
        threading.Thread(target=self._pump, args=(self.process, ready), daemon=True).start()
        deadline = time.monotonic() + timeout
        if not self.port:
            ready.wait(timeout)
        elif not wait_port(self.port, timeout):
            ready.clear()
        else:
            ready.set()
        if not ready.is_set() or self.process.poll() is not None or time.monotonic() > deadline:
            self.kill()
            raise RuntimeError(f"{self.name} did not start:\n" + "".join(self.output[-40:]))
        return self

    def _pump(self, process: subprocess.Popen[str], ready: threading.Event) -> None:
        assert process.stdout is not None
        pattern = re.compile(self.ready_pattern)
        for line in process.stdout:
            if len(self.output) < 2000:
                self.output.append(line)
            if not self.port and not ready.is_set():
                match = pattern.search(line) or (_PORT_IN_LINE.search(line) if "listen" in line else None)
                if match:
                    self.port = int(match.group(1))
                    ready.set()

    def cpu(self) -> float:
        return cpu_seconds(self.pid)

    def cpu_ticks(self) -> tuple[float, float]:
        """(user, system) seconds at 10 ms resolution: tells Python work from kernel work."""
        return user_system_seconds(self.pid)

    def rss(self) -> int:
        return rss_bytes(self.pid)

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self, timeout: float = 10.0) -> int | None:
        """SIGTERM to our own child by PID, then SIGKILL if it does not exit in time."""
        process = self.process
        if process is None or process.poll() is not None:
            return None if process is None else process.returncode
        process.send_signal(signal.SIGTERM)
        try:
            return process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            return None

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    def tail(self, lines: int = 20) -> str:
        return "".join(self.output[-lines:])
