"""Soak: the server's RSS stays flat over many websocket connect/disconnect cycles and rooms opened, left."""

# python -m benchmarks.soak [--quick] [--cycles N] [--rooms N] [--results-dir DIR]
#
# Starts `cocreate serve` (SQLite in a temporary folder, on tmpfs when there is one) on loopback,
# warms it up, reads its RSS from /proc/PID/status, then runs two phases with a bounded number of
# operations each (and a wall-clock cap):
#   cycles  N websocket connections, each: handshake, wait for the server's SyncStep1, close
#           (spread over a few rooms, so rooms are loaded, joined and left all the time);
#   rooms   N new rooms, each: connect, one small edit, wait for its acknowledgement (committed),
#           close (the room task ends and the document is dropped from memory).
# RSS is sampled at every tenth of each phase. The run passes when the RSS at the end of each phase
# is within `--bound` (default 20%) of the RSS after warm-up. A table goes to stdout and the JSON
# to `<results-dir>/soak-<timestamp>.json`. `--quick` runs 1,000 cycles and 300 rooms (< 60 s).

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from pycrdt import Doc, Text
from websockets.asyncio.client import connect

from crdt.messages import SyncUpdate, encode_message

ROOT = Path(__file__).resolve().parents[1]
RESULTS_DIR = ROOT / "benchmarks" / "results"
MIB = 1024 * 1024
Work = Callable[[int], Awaitable[None]]
_LISTENING = re.compile(r"listening on http://127\.0\.0\.1:(\d+)")


@dataclass(frozen=True)
class SoakConfig:
    cycles: int = 10_000
    rooms: int = 5_000
    concurrency: int = 16
    cycle_rooms: int = 20  # the connect/disconnect cycles rotate over this many rooms
    warmup_cycles: int = 300
    warmup_rooms: int = 200
    bound: float = 0.20  # allowed RSS growth over the post-warm-up baseline, as a fraction
    max_seconds: float = 900.0  # wall-clock cap of the whole run (the phases stop early past it)
    samples: int = 10  # RSS samples per phase

    @classmethod
    def quick(cls) -> SoakConfig:
        return cls(cycles=1_000, rooms=300, warmup_cycles=200, warmup_rooms=100, max_seconds=55.0)


@dataclass
class Sample:
    phase: str
    done: int
    seconds: float
    rss_mib: float


@dataclass
class PhaseResult:
    name: str
    planned: int
    done: int
    seconds: float
    per_second: float
    rss_start_mib: float
    rss_end_mib: float
    growth_vs_baseline: float  # (end - baseline) / baseline
    within_bound: bool


@dataclass
class SoakResult:
    config: dict[str, Any]
    baseline_rss_mib: float
    phases: list[PhaseResult] = field(default_factory=list)
    samples: list[Sample] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    passed: bool = False
    seconds: float = 0.0


class Server:
    """`python -m server.cli serve` on a free loopback port; RSS from /proc."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.process: subprocess.Popen[str] | None = None
        self.port = 0
        self.tail: list[str] = []

    def start(self, timeout: float = 30.0) -> Server:
        db = f"sqlite+aiosqlite:///{self.data_dir / 'soak.db'}"
        argv = [sys.executable, "-m", "server.cli", "serve", "--host", "127.0.0.1", "--port", "0"]
        argv += ["--db", db, "--data-dir", str(self.data_dir), "--log-level", "warning"]
        self.process = subprocess.Popen(
            argv,
            cwd=ROOT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        ready = threading.Event()
        threading.Thread(target=self._pump, args=(ready,), daemon=True).start()
        if not ready.wait(timeout):
            self.stop()
            raise RuntimeError("server did not start:\n" + "".join(self.tail))
        return self

    def _pump(self, ready: threading.Event) -> None:
        assert self.process is not None and self.process.stdout is not None
        for line in self.process.stdout:
            self.tail = [*self.tail[-40:], line]
            match = _LISTENING.search(line)
            if match and not ready.is_set():
                self.port = int(match.group(1))
                ready.set()

    def url(self, room: str, query: str = "") -> str:
        return f"ws://127.0.0.1:{self.port}/ws/{room}" + (f"?{query}" if query else "")

    def rss(self) -> int:
        assert self.process is not None
        with open(f"/proc/{self.process.pid}/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
        raise RuntimeError("no VmRSS")

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self, timeout: float = 15.0) -> None:
        process = self.process
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


# -- the load -------------------------------------------------------------------------------
_OPTIONS: dict[str, Any] = {"compression": None, "max_size": None, "open_timeout": 20, "close_timeout": 5}


def small_edit() -> bytes:
    doc: Doc[Any] = Doc()
    doc.get("soak", type=Text).insert(0, "soak")
    return encode_message(SyncUpdate(doc.get_update()))


async def cycle(server: Server, i: int, rooms: int) -> None:
    """Connect, wait for the server's first message (the room is joined), disconnect."""
    async with connect(server.url(f"soak/cycle/{i % rooms}"), **_OPTIONS) as ws:
        await ws.recv()


async def room_visit(server: Server, i: int, edit: bytes, prefix: str) -> None:
    """A new room: connect, one edit, wait for its acknowledgement (it is committed), leave."""
    async with connect(server.url(f"soak/{prefix}/{i}", "acks=1"), **_OPTIONS) as ws:
        await ws.send(edit)
        while True:
            message = await ws.recv()
            if isinstance(message, bytes) and message[:1] == b"\x64":  # ack
                return


async def run_phase(
    name: str,
    count: int,
    work: Work,
    config: SoakConfig,
    server: Server,
    result: SoakResult,
    deadline: float,
) -> PhaseResult:
    """`count` operations, `config.concurrency` at a time, RSS sampled every tenth; stops at the deadline."""
    started = time.monotonic()
    rss_start = server.rss()
    step = max(1, count // config.samples)
    next_index = 0
    done = 0
    lock = asyncio.Lock()

    async def worker() -> None:
        nonlocal next_index, done
        while True:
            async with lock:
                if next_index >= count or time.monotonic() > deadline or len(result.errors) > 20:
                    return
                index = next_index
                next_index += 1
            try:
                await asyncio.wait_for(work(index), 30)
            except Exception as exc:
                result.errors.append(f"{name} #{index}: {type(exc).__name__}: {exc}")
            done += 1
            if done % step == 0:
                result.samples.append(
                    Sample(name, done, round(time.monotonic() - started, 2), round(server.rss() / MIB, 1))
                )

    await asyncio.gather(*(worker() for _ in range(config.concurrency)))
    seconds = time.monotonic() - started
    rss_end = server.rss()
    baseline = result.baseline_rss_mib * MIB
    growth = (rss_end - baseline) / baseline
    return PhaseResult(
        name,
        count,
        done,
        round(seconds, 2),
        round(done / seconds, 1) if seconds else 0.0,
        round(rss_start / MIB, 1),
        round(rss_end / MIB, 1),
        round(growth, 4),
        growth <= config.bound and done == count,
    )


async def soak(config: SoakConfig, data_dir: Path) -> SoakResult:
    started = time.monotonic()
    deadline = started + config.max_seconds
    server = Server(data_dir).start()
    result = SoakResult(asdict(config), 0.0)
    edit = small_edit()
    try:
        rooms = config.cycle_rooms
        warm = SoakConfig(concurrency=config.concurrency, samples=1)
        result.baseline_rss_mib = round(server.rss() / MIB, 1)  # provisional, for the warm-up rows
        cycle_work: Work = lambda i: cycle(server, i, rooms)  # noqa: E731
        await run_phase("warmup-cycles", config.warmup_cycles, cycle_work, warm, server, result, deadline)
        warm_rooms: Work = lambda i: room_visit(server, i, edit, "warm")  # noqa: E731
        await run_phase("warmup-rooms", config.warmup_rooms, warm_rooms, warm, server, result, deadline)
        result.samples.clear()
        result.errors.clear()
        result.baseline_rss_mib = round(server.rss() / MIB, 1)
        result.phases.append(
            await run_phase("cycles", config.cycles, cycle_work, config, server, result, deadline)
        )
        rooms_work: Work = lambda i: room_visit(server, i, edit, "room")  # noqa: E731
        result.phases.append(
            await run_phase("rooms", config.rooms, rooms_work, config, server, result, deadline)
        )
        if not server.alive():
            result.errors.append("the server exited:\n" + "".join(server.tail))
    finally:
        server.stop()
    result.seconds = round(time.monotonic() - started, 2)
    result.passed = not result.errors and all(p.within_bound for p in result.phases)
    return result


# -- output ---------------------------------------------------------------------------------
def table(result: SoakResult) -> str:
    lines = [
        f"baseline RSS after warm-up: {result.baseline_rss_mib:.1f} MiB "
        f"(bound +{result.config['bound']:.0%})",
        f"{'phase':<8} {'done':>7} {'/planned':>9} {'seconds':>8} {'ops/s':>7} "
        f"{'RSS start':>10} {'RSS end':>8} {'growth':>7}  ok",
    ]
    for p in result.phases:
        lines.append(
            f"{p.name:<8} {p.done:>7} {'/' + str(p.planned):>9} {p.seconds:>8.1f} {p.per_second:>7.1f} "
            f"{p.rss_start_mib:>10.1f} {p.rss_end_mib:>8.1f} {p.growth_vs_baseline:>+7.1%}  "
            f"{'yes' if p.within_bound else 'NO'}"
        )
    lines.append("RSS samples (MiB): " + "  ".join(f"{s.phase}@{s.done}={s.rss_mib}" for s in result.samples))
    for error in result.errors[:5]:
        lines.append(f"error: {error}")
    lines.append(f"{'PASS' if result.passed else 'FAIL'} in {result.seconds:.1f} s")
    return "\n".join(lines)


def write_json(result: SoakResult, results_dir: Path) -> Path:
    results_dir.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%dT%H%M%S")
    path = results_dir / f"soak-{stamp}.json"
    path.write_text(json.dumps(asdict(result), indent=1))
    return path


def _scratch_dir() -> Path:
    shm = Path("/dev/shm")
    parent = shm if shm.is_dir() and os.access(shm, os.W_OK) else None
    return Path(tempfile.mkdtemp(prefix="cocreate-soak-", dir=parent))


def run(argv: Sequence[str] | None = None) -> tuple[SoakResult, Path]:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.soak", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="1,000 cycles and 300 rooms (< 60 s)")
    parser.add_argument("--cycles", type=int, default=None, help="connect/disconnect cycles")
    parser.add_argument("--rooms", type=int, default=None, help="rooms created and left")
    parser.add_argument("--concurrency", type=int, default=None, help="operations in flight")
    parser.add_argument("--bound", type=float, default=None, help="allowed RSS growth (0.2 = 20%%)")
    parser.add_argument("--max-seconds", type=float, default=None, help="wall-clock cap of the run")
    parser.add_argument("--results-dir", type=Path, default=RESULTS_DIR)
    args = parser.parse_args(argv)
    config = SoakConfig.quick() if args.quick else SoakConfig()
    overrides = {
        "cycles": args.cycles,
        "rooms": args.rooms,
        "concurrency": args.concurrency,
        "bound": args.bound,
        "max_seconds": args.max_seconds,
    }
    config = SoakConfig(**{**asdict(config), **{k: v for k, v in overrides.items() if v is not None}})
    data_dir = _scratch_dir()
    try:
        result = asyncio.run(soak(config, data_dir))
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)
    return result, write_json(result, args.results_dir)


def main(argv: Sequence[str] | None = None) -> int:
    result, path = run(argv)
    print(table(result))
    print(f"results: {path}")
    return 0 if result.passed else 1


if __name__ == "__main__":
    sys.exit(main())
