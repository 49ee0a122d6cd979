"""Results: statistics, plain-text tables, JSON files (timestamped + latest.json)."""

from __future__ import annotations

import asyncio
import datetime as dt
import math
import os
import platform
import subprocess
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

import orjson

RESULTS_DIR = Path(__file__).resolve().parent / "results"


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """Linear-interpolated percentile `q` (0..100) of an already sorted sequence (nan if empty)."""
    if not sorted_values:
        return math.nan
    if len(sorted_values) == 1:
        return float(sorted_values[0])
    rank = (len(sorted_values) - 1) * q / 100.0
    low = math.floor(rank)
    high = min(low + 1, len(sorted_values) - 1)
    weight = rank - low
    return float(sorted_values[low]) * (1 - weight) + float(sorted_values[high]) * weight


def latency_summary(latencies_ms: Sequence[float]) -> dict[str, float | int]:
    """count, mean, p50/p90/p99/p99.9 and max of latencies (milliseconds)."""
    values = sorted(latencies_ms)
    if not values:
        return {"count": 0}
    return {
        "count": len(values),
        "mean_ms": round(sum(values) / len(values), 4),
        "p50_ms": round(percentile(values, 50), 4),
        "p90_ms": round(percentile(values, 90), 4),
        "p99_ms": round(percentile(values, 99), 4),
        "p999_ms": round(percentile(values, 99.9), 4),
        "max_ms": round(values[-1], 4),
    }


def quantile_sketch(latencies_ms: Sequence[float], points: int = 200) -> list[float]:
    """`points` evenly spaced quantiles (0..100%) of the distribution, for CDF plots in the JSON."""
    values = sorted(latencies_ms)
    if not values:
        return []
    return [round(percentile(values, 100.0 * i / (points - 1)), 4) for i in range(points)]


def environment() -> dict[str, Any]:
    """What the numbers depend on: machine, load, versions, git revision."""
    import pycrdt

    try:
        revision = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            cwd=RESULTS_DIR.parent.parent,
        ).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        revision = ""
    return {
        "python": platform.python_version(),
        "pycrdt": getattr(pycrdt, "__version__", "?"),
        "cpus": os.cpu_count(),
        "loadavg_at_start": [round(x, 2) for x in os.getloadavg()],
        "platform": platform.platform(),
        "git_revision": revision,
        "note": "clients and servers share this machine's cores; numbers are noisy when it is busy",
    }


def write_results(name: str, data: dict[str, Any], directory: Path = RESULTS_DIR) -> Path:
    """Write `<directory>/<name>-<timestamp>.json` and `latest.json`; return the first path."""
    directory.mkdir(parents=True, exist_ok=True)
    stamp = dt.datetime.now().strftime("%Y%m%dT%H%M%S")
    payload = orjson.dumps(data, option=orjson.OPT_INDENT_2 | orjson.OPT_SERIALIZE_NUMPY)
    path = directory / f"{name}-{stamp}.json"
    path.write_bytes(payload)
    (directory / "latest.json").write_bytes(payload)
    return path


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A left/right aligned plain-text table (numbers right-aligned)."""
    cells = [[_fmt(v) for v in row] for row in rows]
    widths = [max([len(h)] + [len(r[i]) for r in cells]) for i, h in enumerate(headers)]
    numeric = [all(_is_number(row[i]) for row in rows) if rows else False for i in range(len(headers))]

    def line(values: Sequence[str]) -> str:
        return "  ".join(
            v.rjust(w) if num else v.ljust(w) for v, w, num in zip(values, widths, numeric, strict=True)
        )

    out = [line(headers), line(["-" * w for w in widths])]
    out.extend(line(r) for r in cells)
    return "\n".join(out)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) or value is None


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "NO"
    if isinstance(value, float):
        if value == 0:
            return "0"
        if abs(value) >= 100:
            return f"{value:,.0f}"
        if abs(value) >= 10:
            return f"{value:.1f}"
        return f"{value:.2f}" if abs(value) >= 0.1 else f"{value:.3f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def fanout_table(results: Sequence[dict[str, Any]]) -> str:
    rows = [
        [
            r["server"],
            r["storage"],
            r["receivers"],
            r["updates_sent"],
            r["deliveries_per_s"],
            r["server_cpu_us_per_delivery"],
            r["latency"].get("p50_ms"),
            r["latency"].get("p99_ms"),
            r["latency"].get("max_ms"),
            r["verified"],
        ]
        for r in results
    ]
    headers = ["server", "storage", "recv", "updates", "deliv/s", "cpu us/deliv"]
    return table([*headers, "p50 ms", "p99 ms", "max ms", "verified"], rows)


def cost_fit(results: Sequence[dict[str, Any]]) -> dict[str, float] | None:
    """Least-squares server CPU per update = a + b * receivers: a = ingest, b = marginal delivery."""
    points = [(r["receivers"], r["server_cpu_s"] / max(1, r["updates_sent"]) * 1e6) for r in results]
    xs = {x for x, _ in points}
    if len(xs) < 2:
        return None
    n = len(points)
    mean_x = sum(x for x, _ in points) / n
    mean_y = sum(y for _, y in points) / n
    slope = sum((x - mean_x) * (y - mean_y) for x, y in points) / sum((x - mean_x) ** 2 for x, _ in points)
    return {"us_per_update": round(mean_y - slope * mean_x, 2), "us_per_delivery": round(slope, 3)}


def merge_table(result: dict[str, Any]) -> str:
    rows = []
    for r in result["traces"]:
        memory = r["ingest_memory"]
        sqlite = r["ingest_sqlite"]
        rows.append(
            [
                r["trace"],
                r["updates"],
                r["raw_apply_us_per_update"],
                memory["us_per_update"],
                memory["ratio_vs_raw_apply"],
                sqlite.get("us_per_update"),
                sqlite.get("updates"),
                round(r["snapshot"]["bytes"] / 1024, 1),
                r["snapshot"]["encode_ms"],
                r["snapshot"]["load_ms"],
                r["verified"],
            ]
        )
    headers = ["trace", "updates", "raw us/upd", "ingest us/upd", "ratio", "sqlite us/upd", "sqlite n"]
    return table([*headers, "state KB", "encode ms", "load ms", "verified"], rows)


def stages_table(result: dict[str, Any]) -> str:
    rows = [
        [r["trace"], *r["ingest_memory"]["stages_us_per_update"].values()]
        for r in result["traces"]
        if r["ingest_memory"]["stages_us_per_update"]
    ]
    if not rows:
        return ""
    names = list(result["traces"][0]["ingest_memory"]["stages_us_per_update"])
    return table(["trace (us per update)", *names], rows)


def compaction_table(result: dict[str, Any]) -> str:
    rows = [
        [
            c["updates"],
            c["merge_s"],
            c["apply_encode_s"],
            c["merge_over_apply"],
            c["merged_bytes"],
            c["encoded_bytes"],
            c["same_text"],
        ]
        for c in result["compaction"]["rows"]
    ]
    headers = ["updates", "merge_updates s", "apply+encode s", "merge/apply", "merged B", "encoded B", "same"]
    return table(headers, rows)


async def loop_stall(work: Callable[[], Awaitable[object]]) -> tuple[float, float]:
    """Run `work` while a 5 ms ticker stands in for every other room: (the ticker's longest delay
    beyond its period, the wall time of `work`), both in ms."""
    worst, done = 0.0, False

    async def ticker() -> None:
        nonlocal worst
        last = time.perf_counter()
        while not done:
            await asyncio.sleep(0.005)
            now = time.perf_counter()
            worst, last = max(worst, now - last - 0.005), now

    ticking = asyncio.create_task(ticker())
    await asyncio.sleep(0.05)
    started = time.perf_counter()
    try:
        await work()
    finally:
        took = time.perf_counter() - started
        done = True
        await ticking
    return worst * 1000, took * 1000
