"""M3 orchestration: every workload against every available server, interleaved, failures recorded."""

from __future__ import annotations

import dataclasses
import functools
import re
import shutil
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks.fanout import FanoutConfig, run_fanout
from benchmarks.procs import TMP_DIR, ServerProcess
from benchmarks.targets import PEERS, Target, available, missing_reason, node_clients_ready
from benchmarks.workloads import SuiteConfig, cold_join, fanout_real, ingest, storm

DEFAULT_SERVERS = ("cocreate", *PEERS)
SECTIONS = ("fanout", "fanout_max", "ingest", "storm", "coldjoin")
_WARNING = re.compile(r"WARNING|ERROR|Error|limit ")

Body = Callable[[ServerProcess], Awaitable[dict[str, Any]]]


@dataclass(frozen=True)
class Job:
    """One workload against one server; `body` None means the job manages its own servers."""

    section: str
    target: Target
    body: Body | None
    extra: dict[str, Any]
    own_servers: Callable[[], Awaitable[dict[str, Any]]] | None = None


async def _guarded(label: str, body: Callable[[], Awaitable[dict[str, Any]]]) -> dict[str, Any]:
    """Run one workload; a crash becomes a failed row (so one broken peer does not stop the suite)."""
    started = time.monotonic()
    try:
        row = await body()
    except Exception as exc:
        row = {"workload": label, "verified": False, "errors": [f"{type(exc).__name__}: {exc}"[:500]]}
    row["elapsed_s"] = round(time.monotonic() - started, 2)
    print(f"  {label}: {row['elapsed_s']} s{'' if row.get('verified') else ' (NOT VERIFIED)'}", flush=True)
    return row


def _jobs(targets: list[Target], cfg: SuiteConfig) -> list[Job]:
    """Workload-major order: each workload runs against every server before the next one starts."""

    def wanted(target: Target, section: str) -> bool:
        return target.name.startswith("cocreate") or section in cfg.peer_workloads

    jobs: list[Job] = []
    for shape in cfg.shapes:
        label = f"{shape[0]}x{shape[1]} ({shape[0] * shape[2]} typing)"
        for t in targets:
            body = functools.partial(_fanout_real, t, cfg, shape)
            jobs += [Job("fanout", t, body, {"shape": label})] if wanted(t, "fanout") else []
    for size in cfg.max_sizes:
        fan = FanoutConfig(clients=size, updates=cfg.max_updates, mode="window", window=cfg.window)
        fan = dataclasses.replace(fan, receiver_procs=1, idle_s=0.2) if cfg.is_quick else fan
        for t in targets:
            body = functools.partial(_fanout_max, t, fan)
            jobs += [Job("fanout_max", t, body, {"room_size": size})] if wanted(t, "fanout_max") else []
    for t in targets:
        jobs += [Job("ingest", t, functools.partial(_ingest, t, cfg), {})] if wanted(t, "ingest") else []
    for t in targets:
        jobs += [Job("storm", t, functools.partial(storm, t, cfg=cfg), {})] if wanted(t, "storm") else []
    for t in targets:
        own = functools.partial(cold_join, t, cfg)
        jobs += [Job("coldjoin", t, None, {}, own_servers=own)] if wanted(t, "coldjoin") else []
    return jobs


async def _fanout_real(
    target: Target, cfg: SuiteConfig, shape: tuple[int, int, int], server: ServerProcess
) -> dict[str, Any]:
    return await fanout_real(target, server, cfg, shape)


async def _fanout_max(target: Target, fan: FanoutConfig, server: ServerProcess) -> dict[str, Any]:
    return await run_fanout(target, server, fan)


async def _ingest(target: Target, cfg: SuiteConfig, server: ServerProcess) -> dict[str, Any]:
    room = f"ingest-{uuid.uuid4().hex[:6]}"
    return await ingest(target, server, cfg, cfg.ingest_trace, cfg.ingest_limit, room)


class _Servers:
    """Fresh server per job (full runs: one broken workload cannot poison the next), or one per target."""

    def __init__(self, fresh: bool) -> None:
        self.fresh = fresh
        self.running: dict[str, tuple[ServerProcess, Path]] = {}
        self.warnings: dict[str, list[str]] = {}

    def get(self, target: Target) -> ServerProcess:
        if target.name in self.running and not self.fresh:
            return self.running[target.name][0]
        self.release(target.name)
        data_dir = Path(tempfile.mkdtemp(dir=TMP_DIR, prefix=f"suite-{target.name}-"))
        self.running[target.name] = (target.start(data_dir), data_dir)
        return self.running[target.name][0]

    def done(self, target: Target) -> None:
        if self.fresh:
            self.release(target.name)

    def release(self, name: str) -> None:
        server, data_dir = self.running.pop(name, (None, None))
        if server is None or data_dir is None:
            return
        server.stop()
        shutil.rmtree(data_dir, ignore_errors=True)
        lines = [line.strip() for line in server.output if _WARNING.search(line)]
        self.warnings.setdefault(name, []).extend(lines[:5])

    def close(self) -> None:
        for name in list(self.running):
            self.release(name)


async def _on_server(servers: _Servers, job: Job) -> dict[str, Any]:
    """Start (or reuse) the job's server inside the guard: a server that fails to start fails the row."""
    assert job.body is not None
    return await job.body(servers.get(job.target))


async def run_suite(names: list[str], cfg: SuiteConfig) -> dict[str, Any]:
    """Every workload against each of `names` that is installed; the rest are listed as missing."""
    TMP_DIR.mkdir(parents=True, exist_ok=True)
    targets, missing = available(names)
    if not node_clients_ready():
        missing = {
            t.name: "node clients not installed (python -m benchmarks setup)" for t in targets
        } | missing
        targets = []
    results: dict[str, list[dict[str, Any]]] = {section: [] for section in SECTIONS}
    servers = _Servers(fresh=not cfg.is_quick)
    try:
        for job in _jobs(targets, cfg):
            print(f"{job.section} {job.extra or ''} on {job.target.name}:", flush=True)
            storage = job.target.storage(job.section == "coldjoin")
            if job.own_servers is not None:
                row = await _guarded(job.section, job.own_servers)
            else:
                row = await _guarded(job.section, functools.partial(_on_server, servers, job))
                servers.done(job.target)
            results[job.section].append({"server": job.target.name, "storage": storage, **row, **job.extra})
    finally:
        servers.close()
    verified = all(r.get("verified", False) for rows in results.values() for r in rows)
    return {
        "benchmark": "servers",
        "config": dataclasses.asdict(cfg),
        "servers": [t.name for t in targets],
        "missing": missing,
        "peer_status": {name: missing_reason(name) or "ok" for name in names},
        "results": results,
        "server_warnings": servers.warnings,
        "verified": verified,
        "order": "workload-major: each workload runs against every server before the next one",
        "note": "clients and servers share the machine's cores: Node clients and the server compete for CPU",
    }
