"""M1, the fan-out benchmark: one writer, N lean receivers in subprocesses, server CPU per delivery."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import shutil
import signal
import sys
import tempfile
import time
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import orjson

from benchmarks.lean import Receiver, Writer, connect_receivers
from benchmarks.procs import ROOT, TMP_DIR, ServerProcess, cpu_seconds
from benchmarks.report import latency_summary, quantile_sketch
from benchmarks.targets import Target
from benchmarks.traces import load_trace, record_updates
from benchmarks.wire import primary_key


class BenchmarkFailed(Exception):
    """A run whose results cannot be trusted: lost, duplicated or reordered updates, wrong text."""


@dataclass(frozen=True)
class FanoutConfig:
    clients: int = 50  # receivers (one of them, the probe, lives in this process)
    updates: int = 2000
    mode: str = "paced"  # "paced": fixed rate; "window": at most `window` updates ahead of the probe
    rate: float = 1000.0  # updates per second in paced mode
    window: int = 16
    receiver_procs: int = 2
    trace: str = "automerge-paper"
    timeout: float = 120.0  # bound on the measured phase
    profile: str | None = None  # write py-spy collapsed stacks of the server's measured window here
    idle_s: float = 0.5  # the server's idle CPU is measured this long before the window

    def scaled(self, quick: bool) -> FanoutConfig:
        if not quick:
            return self
        small = {"clients": min(self.clients, 20), "updates": 400, "receiver_procs": 1, "idle_s": 0.2}
        return FanoutConfig(**(asdict(self) | small))


async def _spawn(config: dict[str, Any]) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "benchmarks.lean",
        orjson.dumps(config).decode(),
        stdout=asyncio.subprocess.PIPE,
        cwd=ROOT,
    )


async def _expect_line(process: asyncio.subprocess.Process, wanted: str, timeout: float) -> str:
    assert process.stdout is not None
    line = (await asyncio.wait_for(process.stdout.readline(), timeout)).decode().strip()
    if line != wanted and not (wanted == "done" and line == "timeout"):
        raise BenchmarkFailed(f"receiver process said {line!r}, expected {wanted!r}")
    return line


async def _spawn_receivers(
    target: Target, server: ServerProcess, cfg: FanoutConfig, room: str, workdir: Path
) -> tuple[list[asyncio.subprocess.Process], list[Path]]:
    """Start the receiver processes (clients - 1 receivers split over them) and wait until all synced."""
    remote = max(0, cfg.clients - 1)
    procs = max(1, min(cfg.receiver_procs, remote)) if remote else 0
    children: list[asyncio.subprocess.Process] = []
    outputs: list[Path] = []
    for i in range(procs):
        count = remote // procs + (1 if i < remote % procs else 0)
        out = workdir / f"receivers-{i}.json"
        outputs.append(out)
        config = {"port": server.port, "path": target.path(room), "document": room, "count": count}
        config |= {"expect": cfg.updates, "hocuspocus": target.hocuspocus, "timeout": cfg.timeout}
        config["out"] = str(out)
        children.append(await _spawn(config))
    for child in children:
        await _expect_line(child, "ready", 60)
    return children, outputs


async def run_fanout(
    target: Target, server: ServerProcess, cfg: FanoutConfig, persist: bool = False
) -> dict[str, Any]:
    """Run one fan-out measurement against an already started server; raise BenchmarkFailed if wrong.

    The in-process probe receiver joins first and alone: pycrdt-websocket deadlocks when several
    clients open a room that does not exist yet.
    """
    recorded = record_updates(load_trace(cfg.trace, limit=cfg.updates))
    room = f"fanout-{uuid.uuid4().hex[:8]}"
    path, dialect = target.path(room), target.dialect(room)
    TMP_DIR.mkdir(parents=True, exist_ok=True)
    workdir = Path(tempfile.mkdtemp(dir=TMP_DIR, prefix="fanout-"))
    children: list[asyncio.subprocess.Process] = []
    try:
        probe = (await connect_receivers(server.port, path, 1, cfg.updates, dialect))[0]
        children, outputs = await _spawn_receivers(target, server, cfg, room, workdir)
        writer = Writer(dialect, recorded.updates)
        await writer.connect(server.port, path)
        idle0, idle_t0 = server.cpu(), time.monotonic()
        await asyncio.sleep(cfg.idle_s)
        idle_rate = (server.cpu() - idle0) / (time.monotonic() - idle_t0)
        client_cpu0 = _client_cpu(children)
        profiler = await start_profiler(server.pid, cfg.profile) if cfg.profile else None
        cpu0, ticks0, t0 = server.cpu(), server.cpu_ticks(), time.monotonic()
        deadline = t0 + cfg.timeout
        if cfg.mode == "paced":
            await writer.paced(cfg.rate, deadline)
        else:
            progress = _ProbeProgress(probe)
            await writer.windowed(cfg.window, progress.count, progress.event, deadline)
        lines = await asyncio.gather(*(_expect_line(c, "done", cfg.timeout + 5) for c in children))
        complete = all(line == "done" for line in lines)
        remaining = max(0.1, deadline - time.monotonic())
        try:
            await asyncio.wait_for(probe.done.wait(), remaining)
        except TimeoutError:
            complete = False
        cpu1, ticks1, t1 = server.cpu(), server.cpu_ticks(), time.monotonic()
        client_cpu = _client_cpu(children) - client_cpu0
        if profiler is not None:
            await stop_profiler(profiler)
        acked = await writer.wait_acked(10) if target.acks else None
        for child in children:
            await _expect_line(child, "written", 60)
            await child.wait()
        await asyncio.sleep(0.3)
        results = [probe.result()] + [
            r for out in outputs for r in orjson.loads(out.read_bytes())["receivers"]
        ]
        writer.close()
        if probe.socket is not None:
            probe.socket.close()
    finally:
        for child in children:
            if child.returncode is None:
                child.kill()
                await child.wait()
        shutil.rmtree(workdir, ignore_errors=True)
    expected_keys = [primary_key(u) for u in recorded.updates]
    errors = _verify(results, expected_keys, recorded.final_text, complete, acked)
    deliveries = sum(len(r["arrivals_ns"]) for r in results)
    latencies = _latencies(results, writer.sent_ns, expected_keys)
    first_send = writer.sent_ns[0] if writer.sent_ns else 0
    last_arrival = max((r["arrivals_ns"][-1] for r in results if r["arrivals_ns"]), default=first_send)
    span = max(1e-9, (last_arrival - first_send) / 1e9)
    server_cpu = cpu1 - cpu0
    return {
        "benchmark": "fanout",
        "server": target.name,
        "storage": target.storage(persist),
        "config": asdict(cfg),
        "receivers": len(results),
        "updates_sent": len(writer.sent_ns),
        "update_bytes_mean": round(sum(map(len, recorded.updates)) / max(1, len(recorded.updates)), 1),
        "deliveries": deliveries,
        "window_s": round(t1 - t0, 4),
        "delivery_span_s": round(span, 4),
        "deliveries_per_s": round(deliveries / span, 1),
        "server_cpu_s": round(server_cpu, 4),
        "server_cpu_us_per_delivery": round(server_cpu / max(1, deliveries) * 1e6, 3),
        "server_user_s": round(ticks1[0] - ticks0[0], 2),  # /proc stat utime, 10 ms ticks
        "server_system_s": round(ticks1[1] - ticks0[1], 2),  # stime: syscalls, loopback TCP, wakeups
        "server_cpu_share": round(server_cpu / max(1e-9, t1 - t0), 3),
        "server_idle_cpu_share": round(idle_rate, 4),
        "client_cpu_s": round(client_cpu, 3),
        "server_rss_mb": round(server.rss() / 2**20, 1),
        "latency": latency_summary(latencies),
        "latency_quantiles_ms": quantile_sketch(latencies),
        "writer_acked": acked,
        "verified": not errors,
        "errors": errors[:20],
    }


async def start_profiler(pid: int, out: str) -> asyncio.subprocess.Process | None:
    """py-spy sampling the server (needs py-spy on PATH and ptrace rights); None if unavailable."""
    if shutil.which("py-spy") is None:
        print("py-spy not found: no profile", file=sys.stderr)
        return None
    argv = ["py-spy", "record", "-p", str(pid), "--format", "raw", "-o", out, "--rate", "1000"]
    process = await asyncio.create_subprocess_exec(
        *argv, "--nonblocking", stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL
    )
    await asyncio.sleep(1.0)  # py-spy attaches and starts sampling
    return process


async def stop_profiler(process: asyncio.subprocess.Process) -> None:
    if process.returncode is None:
        process.send_signal(signal.SIGINT)
        try:
            await asyncio.wait_for(process.wait(), 20)
        except TimeoutError:
            process.kill()
            await process.wait()


class _ProbeProgress:
    """Deliveries seen by the in-process probe receiver, with an event the windowed writer waits on."""

    def __init__(self, probe: Receiver) -> None:
        self.probe = probe
        self.event = asyncio.Event()
        original = probe.on_message

        def observed(message: bytes) -> None:
            original(message)
            self.event.set()

        probe.on_message = observed  # type: ignore[method-assign]
        if probe.socket is not None:
            probe.socket.on_message = observed

    def count(self) -> int:
        return len(self.probe.arrivals)


def _client_cpu(children: list[asyncio.subprocess.Process]) -> float:
    total = 0.0
    for child in children:
        with contextlib.suppress(FileNotFoundError, ProcessLookupError):
            total += cpu_seconds(child.pid)
    return total + time.process_time()


def _verify(
    results: list[dict[str, Any]],
    expected_keys: list[Any],
    final_text: str,
    complete: bool,
    acked: bool | None,
) -> list[str]:
    """Every receiver got every update exactly once, in order, and holds the writer's final text."""
    errors: list[str] = []
    if not complete:
        errors.append("not every receiver got every update before the timeout")
    if acked is False:
        errors.append("the server did not acknowledge every update of the writer")
    expected = [list(k) if k is not None else None for k in expected_keys]
    digest = hashlib.sha256(final_text.encode()).hexdigest()
    for i, result in enumerate(results):
        keys = result["keys"]
        if keys != expected:
            missing = len({tuple(k) for k in expected if k} - {tuple(k) for k in keys if k})
            duplicates = len(keys) - len({tuple(k) for k in keys if k})
            errors.append(
                f"receiver {i}: got {len(keys)} updates, expected {len(expected)} "
                f"(missing {missing}, duplicated {duplicates}, or out of order)"
            )
        if result["text_sha256"] != digest:
            errors.append(f"receiver {i}: final text differs ({result['text_chars']} chars)")
    return errors


def _latencies(results: list[dict[str, Any]], sent_ns: list[int], keys: list[Any]) -> list[float]:
    send_time = {tuple(k): t for k, t in zip(keys, sent_ns, strict=False) if k is not None}
    out: list[float] = []
    for result in results:
        for key, arrival in zip(result["keys"], result["arrivals_ns"], strict=True):
            sent = send_time.get(tuple(key)) if key else None
            if sent is not None:
                out.append((arrival - sent) / 1e6)
    return out
