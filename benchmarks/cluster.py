"""Cluster fan-out: one room, one writer typing, receivers split over 2 processes (Redis) vs 1 process.

`python -m benchmarks.cluster [--quick]`. Starts its own PostgreSQL and redis-server (temp dirs,
loopback), then for each layout: server processes on the shared database, receivers connected
round-robin to the processes, the writer on process 0 sending a recorded typing trace at a fixed
rate. Reports keystroke latency (local vs remote receivers), server CPU per delivery from /proc
(and redis-server's), verifies every receiver got every update exactly once with the final text.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from benchmarks.fanout import _verify
from benchmarks.lean import Receiver, Writer, connect_receivers, wait_all
from benchmarks.procs import ServerProcess, cpu_seconds
from benchmarks.report import RESULTS_DIR, environment, latency_summary, write_results
from benchmarks.traces import load_trace, record_updates
from benchmarks.wire import Dialect, primary_key
from crdt.validation import UpdateLimits, validate_update

LIMITS = UpdateLimits()


@dataclass(frozen=True)
class ClusterBenchConfig:
    receivers: int = 60
    updates: int = 3000
    rate: float = 500.0  # keystrokes per second of the writer
    trace: str = "automerge-paper"
    timeout: float = 120.0

    def scaled(self, quick: bool) -> ClusterBenchConfig:
        return ClusterBenchConfig(20, 600, 200.0, self.trace, 60.0) if quick else self


def _server(db_url: str, data_dir: Path, redis_url: str | None) -> ServerProcess:
    argv = [sys.executable, "-m", "server.cli", "serve", "--port", "0", "--db", db_url,
            "--data-dir", str(data_dir), "--log-level", "warning", "--message-rate", "0"]  # fmt: skip
    if redis_url:
        argv += ["--redis", redis_url]
    return ServerProcess("cocreate", argv)


async def run_layout(
    processes: int, db_url: str, redis_url: str | None, workdir: Path, cfg: ClusterBenchConfig, redis_pid: int
) -> dict[str, Any]:
    recorded = record_updates(load_trace(cfg.trace, limit=cfg.updates))
    room = f"cluster-{uuid.uuid4().hex[:8]}"
    path, dialect = f"/ws/{room}", Dialect(False, room)
    servers = [_server(db_url, workdir / f"p{processes}-{i}", redis_url) for i in range(processes)]
    for index, server in enumerate(servers):
        (workdir / f"p{processes}-{index}").mkdir()
        server.start()
    try:
        # the writer's process loads the room first; the others join it
        groups: list[list[Receiver]] = [[] for _ in servers]
        for index in range(cfg.receivers):
            node = index % processes
            groups[node] += await connect_receivers(
                servers[node].port, path, 1, len(recorded.updates), dialect
            )
        writer = Writer(dialect, recorded.updates)
        await writer.connect(servers[0].port, path)
        await asyncio.sleep(0.5)  # lease, stream registration and presence queries settle
        cpu0 = [s.cpu() for s in servers]
        redis0 = cpu_seconds(redis_pid) if redis_url else 0.0
        t0 = time.monotonic()
        await writer.paced(cfg.rate, t0 + cfg.timeout)
        receivers = [r for group in groups for r in group]
        complete = await wait_all(groups[0], cfg.timeout) and await _settled(receivers, cfg.timeout)
        elapsed = time.monotonic() - t0
        cpu = [s.cpu() - c for s, c in zip(servers, cpu0, strict=True)]
        redis_cpu = cpu_seconds(redis_pid) - redis0 if redis_url else 0.0
        await asyncio.sleep(0.3)  # late duplicates would show up in the verification
        results_by_node = [[r.result() for r in group] for group in groups]
        keys = [primary_key(u) for u in recorded.updates]
        coverage = [[_coverage(r, dialect, keys, writer.sent_ns) for r in group] for group in groups]
        writer.close()
        for receiver in receivers:
            if receiver.socket is not None:
                receiver.socket.close()
    finally:
        for server in servers:
            server.stop()
    results = [r for group in results_by_node for r in group]
    # text equality from the fan-out verifier; "every keystroke exactly once" from the coverage
    # (a process relaying a committed batch merges it into one message: fewer, larger deliveries)
    errors = [
        e for e in _verify(results, keys, recorded.final_text, complete, None) if "updates, expected" not in e
    ]
    errors += [e for group in coverage for _, problems in group for e in problems]
    deliveries = sum(len(r["arrivals_ns"]) for r in results)
    last_arrival = max((r["arrivals_ns"][-1] for r in results if r["arrivals_ns"]), default=0)
    span = (last_arrival - writer.sent_ns[0]) / 1e9 if writer.sent_ns else 0.0
    local = [x for latencies, _ in coverage[0] for x in latencies]
    remote = [x for group in coverage[1:] for latencies, _ in group for x in latencies]
    return {
        "processes": processes,
        "receivers": len(results),
        "updates": len(writer.sent_ns),
        "deliveries": deliveries,
        "keystrokes_delivered": len(local) + len(remote),
        "elapsed_s": round(elapsed, 3),  # includes the final quiet period of receivers
        "last_arrival_after_first_send_s": round(span, 3),
        "server_cpu_s": [round(c, 3) for c in cpu],
        "server_cpu_us_per_delivery": round(sum(cpu) / max(1, deliveries) * 1e6, 2),
        "redis_cpu_s": round(redis_cpu, 3),
        "latency_local_ms": latency_summary(local),
        "latency_remote_ms": latency_summary(remote),
        "verified": not errors,
        "errors": errors[:10],
    }


async def _settled(receivers: list[Receiver], timeout: float, quiet: float = 0.3) -> bool:
    """Receivers on other processes may get a committed batch as one merged message, so their
    message count is no completion signal: wait until nothing arrived for `quiet` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        last = max((r.arrivals[-1] for r in receivers if r.arrivals), default=0) / 1e9
        if time.monotonic() - last > quiet:
            return True
        await asyncio.sleep(quiet / 3)
    return False


def _coverage(
    receiver: Receiver, dialect: Dialect, keys: list[Any], sent_ns: list[int]
) -> tuple[list[float], list[str]]:
    """Latency of each keystroke at this receiver (arrival of the first message holding it) and
    errors for keystrokes never or repeatedly delivered."""
    inserts: list[tuple[int, int, int, int]] = []  # (client, first, end, arrival)
    deletes: list[tuple[int, int, int, int]] = []
    for frame, arrival in zip(receiver.frames, receiver.arrivals, strict=True):
        summary = validate_update(dialect.parse(frame)[2], limits=LIMITS)
        inserts += [(c, first, end, arrival) for c, (first, end) in summary.clients.items()]
        deletes += [
            (c, clock, clock + n, arrival) for c, ranges in summary.deleted.items() for clock, n in ranges
        ]
    latencies: list[float] = []
    errors: list[str] = []
    for key, sent in zip(keys, sent_ns, strict=False):
        if key is None:
            continue
        kind, client, clock = key
        spans = inserts if kind == 0 else deletes
        hits = [arrival for c, first, end, arrival in spans if c == client and first <= clock < end]
        if not hits or (kind == 0 and len(hits) > 1):
            errors.append(f"keystroke {key} delivered {len(hits)} times")
        else:
            latencies.append((min(hits) - sent) / 1e6)
    return latencies, errors[:3]


async def main_async(quick: bool) -> dict[str, Any]:
    from tests.cluster.redis_server import launch as launch_redis
    from tests.persistence.pg_server import create_database
    from tests.persistence.pg_server import launch as launch_postgres

    cfg = ClusterBenchConfig().scaled(quick)
    postgres = launch_postgres()
    redis = launch_redis()
    workdir = Path(tempfile.mkdtemp(prefix="cocreate-cluster-bench-"))
    try:
        assert redis.process is not None
        runs = []
        for processes, redis_url in ((1, None), (2, redis.url)):
            db_url = await create_database(postgres)
            runs.append(await run_layout(processes, db_url, redis_url, workdir, cfg, redis.process.pid))
    finally:
        redis.destroy()
        postgres.destroy()
    return {"benchmark": "cluster", "config": asdict(cfg), "environment": environment(), "runs": runs}


def table(data: dict[str, Any]) -> str:
    head = f"{'layout':<22}{'deliv':>7}{'p50 loc':>9}{'p99 loc':>9}{'p50 rem':>9}{'p99 rem':>9}"
    head += f"{'us/deliv':>10}{'redis s':>9}  ok"
    lines = [head]
    for run in data["runs"]:
        local, remote = run["latency_local_ms"], run["latency_remote_ms"]
        layout = "1 process" if run["processes"] == 1 else f"{run['processes']} processes + redis"
        lines.append(
            f"{layout:<22}{run['deliveries']:>7}{local.get('p50_ms', 0):>9.2f}{local.get('p99_ms', 0):>9.2f}"
            f"{remote.get('p50_ms', float('nan')):>9.2f}{remote.get('p99_ms', float('nan')):>9.2f}"
            f"{run['server_cpu_us_per_delivery']:>10.2f}{run['redis_cpu_s']:>9.3f}  {run['verified']}"
        )
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.cluster", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="20 receivers, 600 keystrokes at 200/s")
    args = parser.parse_args()
    data = asyncio.run(main_async(args.quick))
    print(table(data))
    path = write_results("cluster", data, RESULTS_DIR / "cluster")
    print(f"written {path}")
    return 0 if all(run["verified"] for run in data["runs"]) else 1


if __name__ == "__main__":
    sys.exit(main())
