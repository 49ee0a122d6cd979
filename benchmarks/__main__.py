"""Command line: `python -m benchmarks {fanout,merge,servers,setup,all} [--quick]` (see README.md)."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import shutil
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from benchmarks.fanout import BenchmarkFailed, FanoutConfig, run_fanout
from benchmarks.figures import all_plots, comparison, comparison_table
from benchmarks.merge_core import RATIO_TARGET, MergeConfig, run_merge
from benchmarks.procs import TMP_DIR, ServerProcess
from benchmarks.report import (
    RESULTS_DIR,
    compaction_table,
    cost_fit,
    environment,
    fanout_table,
    merge_table,
    stages_table,
    write_results,
)
from benchmarks.suite import DEFAULT_SERVERS, run_suite
from benchmarks.targets import Target, all_targets, missing_reason, setup_peers
from benchmarks.workloads import SuiteConfig

CPU_TARGET_US = 6.0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    fanout = sub.add_parser("fanout", help="M1: one writer, N lean receivers, server CPU per delivery")
    merge = sub.add_parser("merge", help="M2: merge core in-process (traces), snapshots, compaction")
    servers = sub.add_parser("servers", help="M3: real clients against cocreate and the peers")
    everything = sub.add_parser("all", help="M1 + M2 + M3, one JSON, the tables and the plots")
    sub.add_parser("setup", help="install the peers and Node clients under benchmarks/peers/")
    defaults = FanoutConfig()
    fanout.add_argument(
        "--clients", default=str(defaults.clients), help="receivers; a list (1,10,50) fits a cost model"
    )
    fanout.add_argument("--updates", type=int, default=defaults.updates, help="keystroke updates to send")
    fanout.add_argument("--mode", choices=["paced", "window"], default=defaults.mode)
    fanout.add_argument("--rate", type=float, default=defaults.rate, help="updates/s in paced mode")
    fanout.add_argument(
        "--window", type=int, default=defaults.window, help="updates ahead of the probe (window)"
    )
    fanout.add_argument("--receiver-procs", type=int, default=defaults.receiver_procs)
    fanout.add_argument("--server", default="cocreate", choices=sorted(all_targets()))
    fanout.add_argument("--persist", action="store_true", help="persistent storage (cocreate: SQLite)")
    fanout.add_argument("--profile", default=None, help="write py-spy collapsed stacks of the server here")
    merge.add_argument("--traces", default=None, help="comma list (default: all but egwalker)")
    merge.add_argument("--limit", type=int, default=None, help="first N patches of each trace")
    for p in (servers, everything):
        p.add_argument("--servers", default=",".join(DEFAULT_SERVERS), help="comma list of targets")
        p.add_argument("--no-setup", action="store_true", help="do not install missing peers (full runs do)")
    for p in (fanout, merge, servers, everything):
        p.add_argument("--quick", action="store_true", help="small sizes (the CI smoke test)")
        p.add_argument("--name", default=None, help="result file name prefix")
        p.add_argument("--results-dir", type=Path, default=RESULTS_DIR, help="where JSON and PNGs go")
    return parser


async def _with_server(target: Target, body: Any, persist: bool = False) -> Any:
    TMP_DIR.mkdir(parents=True, exist_ok=True)
    data_dir = Path(tempfile.mkdtemp(dir=TMP_DIR, prefix=f"{target.name}-"))
    server = target.start(data_dir, persist=persist)
    try:
        return await body(server)
    finally:
        server.stop()
        shutil.rmtree(data_dir, ignore_errors=True)


def fanout_command(args: argparse.Namespace) -> dict[str, Any]:
    """One fan-out run per receiver count, all against one server process (a fresh room each)."""
    base = FanoutConfig(
        updates=args.updates,
        mode=args.mode,
        rate=args.rate,
        window=args.window,
        receiver_procs=args.receiver_procs,
        profile=args.profile,
    )
    counts = [int(c) for c in str(args.clients).split(",")]
    configs = [dataclasses.replace(base, clients=c).scaled(args.quick) for c in counts]
    target = all_targets()[args.server]

    async def runs(server: ServerProcess) -> list[dict[str, Any]]:
        return [await run_fanout(target, server, cfg, args.persist) for cfg in configs]

    results: list[dict[str, Any]] = asyncio.run(_with_server(target, runs, args.persist))
    print(fanout_table(results))
    fit = cost_fit(results)
    if fit:
        print(
            f"fit: {fit['us_per_update']} us per ingested update + {fit['us_per_delivery']} us per delivery"
        )
    last = results[-1]
    measured = last["server_cpu_us_per_delivery"]
    verdict = "met" if measured <= CPU_TARGET_US else "MISSED"
    print(
        f"target <= {CPU_TARGET_US} us server CPU per delivery: {measured} us "
        f"with {last['receivers']} receivers ({verdict})"
    )
    return {"fanout": results, "fanout_fit": fit}


def merge_command(args: argparse.Namespace) -> dict[str, Any]:
    cfg = MergeConfig.quick() if args.quick else MergeConfig()
    if getattr(args, "traces", None):
        cfg = dataclasses.replace(cfg, traces=tuple(args.traces.split(",")))
    if getattr(args, "limit", None):
        cfg = dataclasses.replace(cfg, limit=args.limit)
    result = run_merge(cfg)
    print(merge_table(result))
    print(stages_table(result))
    print(f"compaction on {result['compaction']['trace']}:")
    print(compaction_table(result))
    print(f"target: ingest within {RATIO_TARGET}x of raw apply (memory log)")
    for note in result["notes"]:
        print("note:", note)
    return {"merge_core": result}


def servers_command(args: argparse.Namespace) -> dict[str, Any]:
    cfg = SuiteConfig.quick() if args.quick else SuiteConfig()
    names = [n for n in args.servers.split(",") if n]
    if not args.quick and not args.no_setup and any(missing_reason(n) for n in names):
        print("installing the peers (python -m benchmarks setup) ...", flush=True)
        setup_peers()
    result = asyncio.run(run_suite(names, cfg))
    rows = comparison(result["results"])
    result["comparison"] = rows
    if result["servers"]:
        print(comparison_table(rows, result["servers"]))
    for name, reason in result["missing"].items():
        print(f"skipped {name}: {reason}")
    print(result["note"])
    return {"servers": result}


def _failures(data: dict[str, Any]) -> tuple[list[str], list[str]]:
    """Verification failures: (cocreate's own, the peers'). A peer failing is a finding, not our bug."""
    ours: list[str] = []
    peers: list[str] = []
    rows = [("fanout", r) for r in data.get("fanout", [])]
    rows += [(s, r) for s, rs in data.get("servers", {}).get("results", {}).items() for r in rs]
    for section, row in rows:
        if not row.get("verified"):
            server = str(row.get("server"))
            failure = f"{section} {server}: {'; '.join(row.get('errors', []))}"
            (ours if server.startswith("cocreate") else peers).append(failure)
    if "merge_core" in data and not data["merge_core"]["verified"]:
        ours.append("merge core: a replay did not give the expected text")
    return ours, peers


def run(argv: Sequence[str]) -> tuple[dict[str, Any], Path]:
    """Run a benchmark command; return its data and the JSON file written (used by the smoke test)."""
    args = _parser().parse_args(argv)
    started = time.monotonic()
    data: dict[str, Any] = {"environment": environment(), "quick": args.quick}
    try:
        if args.command == "fanout":
            data |= fanout_command(args)
        if args.command in ("merge", "all"):
            data |= merge_command(args)
        if args.command == "all":
            fan_args = _parser().parse_args(
                ["fanout", *(["--quick"] if args.quick else ["--clients", "1,10,50"])]
            )
            data |= fanout_command(fan_args)
        if args.command in ("servers", "all"):
            data |= servers_command(args)
    finally:
        data["elapsed_s"] = round(time.monotonic() - started, 2)
    stem = f"{args.name or args.command}{'-quick' if args.quick else ''}"
    data["plots"] = all_plots(data, stem, args.results_dir)
    data["failures"], data["peer_failures"] = _failures(data)
    path = write_results(stem, data, args.results_dir)
    print(f"results: {path} (and latest.json); plots: {', '.join(data['plots']) or 'none'}")
    print(f"elapsed {data['elapsed_s']} s")
    return data, path


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["setup"]:
        status = setup_peers()
        print(status)
        return 0 if all(v == "ok" for v in status.values()) else 1
    try:
        data, _ = run(argv)
    except BenchmarkFailed as exc:
        print(f"BENCHMARK FAILED: {exc}", file=sys.stderr)
        return 1
    for failure in data["peer_failures"]:
        print(f"PEER FAILED VERIFICATION (shown as UNVERIFIED): {failure}", file=sys.stderr)
    for failure in data["failures"]:
        print(f"VERIFICATION FAILED: {failure}", file=sys.stderr)
    return 1 if data["failures"] else 0


if __name__ == "__main__":
    sys.exit(main())
