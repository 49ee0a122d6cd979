"""M3 workloads with real clients (Node Yjs providers, cocreate's Python client) against one server."""

from __future__ import annotations

import asyncio
import shutil
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from benchmarks.clients import run_node, ws_base
from benchmarks.procs import ROOT, TMP_DIR, ServerProcess
from benchmarks.report import latency_summary, quantile_sketch
from benchmarks.targets import Target
from benchmarks.traces import load_trace

Shape = tuple[int, int, int]  # rooms, clients per room, typists per room


@dataclass(frozen=True)
class SuiteConfig:
    shapes: tuple[Shape, ...] = ((1, 10, 10), (1, 50, 10), (1, 200, 10), (10, 10, 1))
    keystrokes: int = 60  # per typist
    rate: float = 10.0  # keystrokes per second per typist
    max_sizes: tuple[int, ...] = (10, 50, 200)  # room sizes of the saturating lean-client fan-out
    max_updates: int = 1000
    ingest_trace: str = "sveltecomponent"
    ingest_limit: int | None = None
    window: int = 16  # updates the writer may have ahead of the first observer
    observers: int = 5
    storm_clients: int = 1000
    storm_rooms: int = 20
    join_trace: str = "automerge-paper"
    join_limit: int | None = None
    join_chunk: int = 1000  # the join trace is sent as merged chunks of this many updates
    settle_s: float = 2.5  # after the server went idle, before stopping it (Hocuspocus debounces 2 s)
    timeout: float = 180.0
    drain_s: float = 30.0  # after the typists stop, how long deliveries may take before a run fails
    peer_workloads: tuple[str, ...] = ("fanout", "fanout_max", "ingest", "storm", "coldjoin")
    is_quick: bool = False

    @staticmethod
    def quick() -> SuiteConfig:
        return SuiteConfig(
            shapes=((1, 6, 2),),
            keystrokes=15,
            rate=20.0,
            max_sizes=(),  # the quick M1 fan-out already runs the lean clients against cocreate
            max_updates=200,
            ingest_limit=400,
            observers=3,
            storm_clients=40,
            storm_rooms=4,
            join_trace="sveltecomponent",
            join_limit=800,
            join_chunk=20,
            settle_s=0.5,
            timeout=30.0,
            drain_s=10.0,
            peer_workloads=("fanout", "ingest"),  # cocreate runs all: the smoke test stays < 60 s
            is_quick=True,
        )


def _node_config(target: Target, server: ServerProcess, workload: str, **extra: Any) -> dict[str, Any]:
    base = {
        "workload": workload,
        "provider": target.provider,
        "url": ws_base(server, target.path_prefix, target.hocuspocus),
    }
    return base | {"prefix": f"{workload}-{uuid.uuid4().hex[:6]}"} | extra


async def fanout_real(
    target: Target, server: ServerProcess, cfg: SuiteConfig, shape: Shape
) -> dict[str, Any]:
    """Typists type at `rate` into rooms of real providers; latency of every remote keystroke."""
    rooms, per_room, typists = shape
    config = _node_config(
        target,
        server,
        "fanout",
        rooms=rooms,
        perRoom=per_room,
        typistsPerRoom=typists,
        keystrokes=cfg.keystrokes,
        rate=cfg.rate,
        drainMs=int(cfg.drain_s * 1000),
    )
    result, marks = await run_node(config, server, cfg.timeout)
    latencies: list[float] = result.pop("latenciesMs")
    deliveries = len(latencies)
    cpu = marks.cpu_between()
    span = (int(result["end"]) - int(result["start"])) / 1e9
    errors = list(result["errors"]) + (["timed out"] if result["timedOut"] else [])
    return {
        "workload": "fanout",
        "rooms": rooms,
        "clients_per_room": per_room,
        "typists": typists * rooms,
        "deliveries": deliveries,
        "span_s": round(span, 3),
        "server_cpu_s": round(cpu, 4),
        "server_cpu_us_per_delivery": round(cpu / max(1, deliveries) * 1e6, 2),
        "client_cpu_s": round(marks.node_cpu_s, 2),
        "latency": latency_summary(latencies),
        "latency_quantiles_ms": quantile_sketch(latencies),
        "verified": not errors,
        "errors": errors,
    }


def _write_trace(name: str, limit: int | None) -> tuple[Path, Path, str]:
    trace = load_trace(name, limit)
    TMP_DIR.mkdir(parents=True, exist_ok=True)
    stem = TMP_DIR / f"trace-{name}-{limit or 'all'}"
    patches_file, text_file = stem.with_suffix(".json"), stem.with_suffix(".txt")
    patches_file.write_bytes(orjson.dumps({"patches": trace.patches, "expected": trace.end_content}))
    text_file.write_text(trace.end_content, encoding="utf-8")
    return patches_file, text_file, trace.end_content


async def _python_client(config: dict[str, Any], wait_ready: bool) -> asyncio.subprocess.Process:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "benchmarks.clients",
        orjson.dumps(config).decode(),
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
    )
    if wait_ready:
        assert process.stdout is not None
        line = await asyncio.wait_for(process.stdout.readline(), 30)
        if line.strip() != b"ready":
            raise RuntimeError(f"python observer did not start: {line!r}")
    return process


async def _python_result(process: asyncio.subprocess.Process, timeout: float) -> dict[str, Any]:
    assert process.stdout is not None
    try:
        while True:
            line = await asyncio.wait_for(process.stdout.readline(), timeout + 15)
            if not line:
                return {"errors": ["python client exited without a result"]}
            if line.startswith(b"result "):
                result: dict[str, Any] = orjson.loads(line[7:])
                return result
    finally:
        if process.returncode is None:
            process.kill()
        await process.wait()


async def ingest(
    target: Target,
    server: ServerProcess,
    cfg: SuiteConfig,
    trace: str,
    limit: int | None,
    room: str,
    observers: int | None = None,
    chunk: int = 1,
) -> dict[str, Any]:
    """One writer replays a trace, at most `window` updates ahead of the first observer; time to all final.

    One of the observers is cocreate's Python client when the server speaks y-websocket.
    """
    patches_file, text_file, expected = _write_trace(trace, limit)
    node_observers = observers or cfg.observers
    python = None
    if not target.hocuspocus and node_observers >= 2:  # our Python client speaks y-websocket only
        node_observers -= 1
        url = f"ws://127.0.0.1:{server.port}{target.path(room)}"
        config = {"mode": "observe", "url": url, "expected_file": str(text_file), "timeout": cfg.timeout}
        python = await _python_client(config, wait_ready=True)
    node_config = _node_config(
        target,
        server,
        "ingest",
        room=room,
        observers=node_observers,
        window=cfg.window,
        traceFile=str(patches_file),
        chunk=chunk,
    )
    result, marks = await run_node(node_config, server, cfg.timeout)
    completed = [int(ns) for ns in result["completedNs"]]
    errors = list(result["errors"]) + (["timed out"] if result["timedOut"] else [])
    if python is not None:
        observed = await _python_result(python, cfg.timeout)
        errors += observed["errors"]
        if observed.get("completed_ns"):
            completed.append(int(observed["completed_ns"]))
    start = int(result["start"])
    all_final_s = (max(completed) - start) / 1e9 if completed else None
    cpu = marks.cpu_between()
    updates = int(result["updates"])
    return {
        "workload": "ingest",
        "trace": trace,
        "updates": updates,
        "chunk": chunk,
        "final_chars": len(expected),
        "observers": f"{node_observers} node" + (" + 1 python" if python is not None else ""),
        "send_s": round((int(result["sentAll"]) - start) / 1e9, 3),
        "all_final_s": round(all_final_s, 3) if all_final_s else None,
        "updates_per_s": round(updates / all_final_s, 1) if all_final_s else None,
        "server_cpu_s": round(cpu, 3),
        "server_cpu_us_per_update": round(cpu / max(1, updates) * 1e6, 1),
        "server_rss_mb": round(marks.rss.get("end", 0) / 2**20, 1),
        "verified": not errors,
        "errors": errors,
    }


async def storm(target: Target, server: ServerProcess, cfg: SuiteConfig) -> dict[str, Any]:
    """`storm_clients` providers connect at once over `storm_rooms` rooms; time to all synced, RSS each."""
    per_room = max(1, cfg.storm_clients // cfg.storm_rooms)
    config = _node_config(target, server, "storm", rooms=cfg.storm_rooms, perRoom=per_room)
    result, marks = await run_node(config, server, cfg.timeout)
    clients = int(result["clients"])
    rss_delta = marks.rss.get("steady", 0) - marks.rss.get("start", 0)
    return {
        "workload": "storm",
        "clients": clients,
        "rooms": cfg.storm_rooms,
        "synced": result["synced"],
        "all_synced_s": round((int(result["end"]) - int(result["start"])) / 1e9, 3),
        "server_cpu_s": round(marks.cpu_between("start", "end"), 3),
        "server_cpu_ms_per_connection": round(marks.cpu_between("start", "end") / max(1, clients) * 1e3, 3),
        # RSS can shrink while clients connect (a collection, a reused server): no estimate then
        "rss_kb_per_connection": round(rss_delta / max(1, clients) / 1024, 1) if rss_delta > 0 else None,
        "rss_delta_mb": round(rss_delta / 2**20, 2),
        "server_rss_mb": round(marks.rss.get("steady", 0) / 2**20, 1),
        "verified": not result["errors"] and result["synced"] == clients,
        "errors": result["errors"],
    }


IDLE_WINDOW_S = 0.5
IDLE_SHARE = 0.02  # below 2% of a core over the window counts as idle


async def cold_join(target: Target, cfg: SuiteConfig) -> dict[str, Any]:
    """Replay `join_trace` (durable ingest), stop the server gracefully, restart it, join cold then warm."""
    data_dir = Path(tempfile.mkdtemp(dir=TMP_DIR, prefix=f"coldjoin-{target.name}-"))
    room = f"coldjoin-{uuid.uuid4().hex[:6]}"
    expected_chars = len(load_trace(cfg.join_trace, cfg.join_limit).end_content)
    server = target.start(data_dir, persist=True)
    try:
        built = await ingest(
            target, server, cfg, cfg.join_trace, cfg.join_limit, room, observers=1, chunk=cfg.join_chunk
        )
        built["settle_s"] = await settle(server, cfg.settle_s, cfg.timeout)
    finally:
        stopped = server.stop()
    server = target.start(data_dir, persist=True)
    errors: list[str] = list(built["errors"])
    try:
        idle_rss = server.rss()
        config = _node_config(target, server, "join", room=room, expectedLength=expected_chars, joiners=2)
        result, marks = await run_node(config, server, cfg.timeout)
        loaded_rss = server.rss()
        errors += [f"node join: {e}" for e in result["errors"]]
    finally:
        server.stop()
    node_cold, node_warm = (result["joins"] + [{}, {}])[:2]
    joins: dict[str, Any] = {"node_cold": node_cold, "node_warm_while_held": node_warm}
    joins["server_cpu_ms"] = round(marks.cpu_between("spawned", "result") * 1e3, 2)
    if not target.hocuspocus and not cfg.is_quick:  # cocreate's Python client, cold, after a restart
        server = target.start(data_dir, persist=True)
        try:
            url = f"ws://127.0.0.1:{server.port}{target.path(room)}"
            config = {"mode": "join", "url": url, "expected_chars": expected_chars, "timeout": cfg.timeout}
            joined = await _python_result(await _python_client(config, wait_ready=False), cfg.timeout)
        finally:
            server.stop()
        joins["python_cold"] = {"ms": joined.get("ms"), "sync_ms": joined.get("sync_ms")}
        errors += joined["errors"]
    shutil.rmtree(data_dir, ignore_errors=True)
    return {
        "workload": "coldjoin",
        "storage": target.storage(True),
        "trace": cfg.join_trace,
        "updates": built["updates"],
        "final_chars": expected_chars,
        "durable_ingest": built,
        "first_stop_exit_code": stopped,
        "cold_join_ms": _rounded(node_cold.get("ms")),
        "warm_join_ms": _rounded(node_warm.get("ms")),
        "joins": joins,
        "server_rss_idle_mb": round(idle_rss / 2**20, 1),
        "server_rss_loaded_mb": round(loaded_rss / 2**20, 1),
        "verified": not errors,
        "errors": errors,
    }


async def settle(server: ServerProcess, extra_s: float, timeout: float) -> float:
    """Wait until the server's CPU is idle (background writes done), then `extra_s` (debounce timers)."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        before = server.cpu()
        await asyncio.sleep(IDLE_WINDOW_S)
        if server.cpu() - before < IDLE_WINDOW_S * IDLE_SHARE:
            break
    await asyncio.sleep(extra_s)
    return round(time.monotonic() - started, 2)


def _rounded(value: Any) -> float | None:
    return round(float(value), 2) if isinstance(value, int | float) else None
