"""M3 presentation: the side-by-side comparison table and the PNG plots (matplotlib, headless)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks.report import RESULTS_DIR, table

Getter = Callable[[dict[str, Any]], float | None]


@dataclass(frozen=True)
class Metric:
    section: str
    key: Callable[[dict[str, Any]], str]  # groups rows of a section (shape, room size, trace)
    label: str
    get: Getter
    lower_is_better: bool = True


def _field(*path: str) -> Getter:
    def get(row: dict[str, Any]) -> float | None:
        value: Any = row
        for part in path:
            if not isinstance(value, dict) or part not in value:
                return None
            value = value[part]
        return float(value) if isinstance(value, int | float) else None

    return get


def _join(row: dict[str, Any]) -> str:
    return f"join {row.get('trace')} after restart"


METRICS = (
    Metric("fanout", lambda r: f"fanout {r.get('shape')}", "p50 latency ms", _field("latency", "p50_ms")),
    Metric("fanout", lambda r: f"fanout {r.get('shape')}", "p99 latency ms", _field("latency", "p99_ms")),
    Metric(
        "fanout",
        lambda r: f"fanout {r.get('shape')}",
        "server CPU us/delivery",
        _field("server_cpu_us_per_delivery"),
    ),
    Metric(
        "fanout_max",
        lambda r: f"max fan-out, room {r.get('room_size')}",
        "deliveries/s",
        _field("deliveries_per_s"),
        False,
    ),
    Metric(
        "fanout_max",
        lambda r: f"max fan-out, room {r.get('room_size')}",
        "server CPU us/delivery",
        _field("server_cpu_us_per_delivery"),
    ),
    Metric(
        "ingest", lambda r: f"ingest {r.get('trace')}", "s until all observers final", _field("all_final_s")
    ),
    Metric(
        "ingest",
        lambda r: f"ingest {r.get('trace')}",
        "server CPU us/update",
        _field("server_cpu_us_per_update"),
    ),
    Metric(
        "storm", lambda r: f"storm {r.get('clients')} clients", "s until all synced", _field("all_synced_s")
    ),
    Metric(
        "storm",
        lambda r: f"storm {r.get('clients')} clients",
        "server RSS KB/connection",
        _field("rss_kb_per_connection"),
    ),
    Metric("coldjoin", _join, "Node cold join ms (client-bound)", _field("cold_join_ms")),
    Metric("coldjoin", _join, "Node warm join ms (client-bound)", _field("warm_join_ms")),
    Metric("coldjoin", _join, "server CPU ms, both Node joins", _field("joins", "server_cpu_ms")),
    Metric("coldjoin", _join, "Python client cold join ms", _field("joins", "python_cold", "ms")),
    Metric(
        "coldjoin",
        _join,
        "durable ingest s",
        _field("durable_ingest", "all_final_s"),
    ),
)


def comparison(results: dict[str, list[dict[str, Any]]], ours: str = "cocreate") -> list[dict[str, Any]]:
    """Rows {metric, values{server: value}, best_peer, ratio}; unverified values are kept but flagged."""
    rows: list[dict[str, Any]] = []
    for metric in METRICS:
        groups: dict[str, dict[str, tuple[float | None, bool]]] = {}
        for row in results.get(metric.section, []):
            values = groups.setdefault(metric.key(row), {})
            values[row["server"]] = (metric.get(row), bool(row.get("verified")))
        for group, values in groups.items():
            peers = {s: v for s, (v, ok) in values.items() if s != ours and ok and v is not None and v > 0}
            best_peer = None
            if peers:
                pick = min if metric.lower_is_better else max
                best_peer = pick(peers, key=lambda s: peers[s])
            mine, mine_ok = values.get(ours, (None, False))
            ratio = None
            if best_peer is not None and mine is not None and mine_ok and peers[best_peer]:
                ratio = round(mine / peers[best_peer], 2)
            better = None
            if ratio is not None:
                better = ratio <= 1.0 if metric.lower_is_better else ratio >= 1.0
            rows.append(
                {
                    "metric": f"{group}: {metric.label}",
                    "lower_is_better": metric.lower_is_better,
                    "values": {s: v for s, (v, _) in values.items()},
                    "verified": {s: ok for s, (_, ok) in values.items()},
                    "best_peer": best_peer,
                    "ratio_vs_best_peer": ratio,
                    "cocreate_better": better,
                }
            )
    return rows


def comparison_table(rows: list[dict[str, Any]], servers: list[str]) -> str:
    headers = ["metric", *servers, "best peer", "cocreate / best"]
    lines = []
    for row in rows:
        cells: list[Any] = [row["metric"]]
        for server in servers:
            value = row["values"].get(server)
            ok = row["verified"].get(server, False)
            cells.append(value if ok or value is None else f"{value:g} (UNVERIFIED)")
        ratio = row["ratio_vs_best_peer"]
        verdict = (
            "" if row["cocreate_better"] is None else (" better" if row["cocreate_better"] else " worse")
        )
        cells += [row["best_peer"] or "-", f"{ratio:.2f}x{verdict}" if ratio is not None else "-"]
        lines.append(cells)
    return table(headers, lines)


def _pyplot() -> Any:
    try:
        import matplotlib
    except ModuleNotFoundError:
        return None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _cdf(ax: Any, quantiles: list[float], label: str) -> None:
    if not quantiles:
        return
    points = len(quantiles)
    ax.plot(quantiles, [i / (points - 1) for i in range(points)], label=label)


def latency_plot(
    rows: list[dict[str, Any]], title: str, out: Path, group: str = "shape", label: str = "server"
) -> Path | None:
    """One panel per `group` value, one latency CDF per `label` (from `latency_quantiles_ms`)."""
    plt = _pyplot()
    groups = list(dict.fromkeys(str(r.get(group)) for r in rows if r.get("latency_quantiles_ms")))
    if plt is None or not groups:
        return None
    fig, axes = plt.subplots(1, len(groups), figsize=(5 * len(groups), 4), squeeze=False)
    for ax, name in zip(axes[0], groups, strict=True):
        for row in rows:
            if str(row.get(group)) == name:
                _cdf(ax, row.get("latency_quantiles_ms", []), f"{row[label]} ({row.get('storage', '')})")
        ax.set_xscale("log")
        ax.set_xlabel("end-to-end latency (ms, log)")
        ax.set_ylabel("fraction of deliveries")
        ax.set_title(name if group == "panel" else f"{group} {name}")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


def scaling_plot(rows: list[dict[str, Any]], out: Path) -> Path | None:
    """Saturating fan-out: deliveries/s and server CPU per delivery against room size, per server."""
    plt = _pyplot()
    usable = [r for r in rows if r.get("deliveries_per_s") and r.get("room_size")]
    if plt is None or not usable:
        return None
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    for server in sorted({r["server"] for r in usable}):
        mine = sorted((r for r in usable if r["server"] == server), key=lambda r: r["room_size"])
        sizes = [r["room_size"] for r in mine]
        left.plot(sizes, [r["deliveries_per_s"] for r in mine], marker="o", label=server)
        right.plot(sizes, [r["server_cpu_us_per_delivery"] for r in mine], marker="o", label=server)
    left.set_ylabel("deliveries per second")
    right.set_ylabel("server CPU per delivery (us)")
    for ax in (left, right):
        ax.set_xlabel("receivers in the room")
        ax.set_xscale("log")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle("fan-out as fast as the first receiver keeps up (lean clients, one writer)")
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


def all_plots(data: dict[str, Any], stem: str, directory: Path = RESULTS_DIR) -> list[str]:
    """Every plot the data allows, as PNGs in `directory`; returns their paths."""
    directory.mkdir(parents=True, exist_ok=True)
    made: list[Path | None] = []
    if data.get("fanout"):
        rows = [
            {**r, "run": f"{r['server']}, {r['receivers']} receivers", "panel": "one writer, lean receivers"}
            for r in data["fanout"]
        ]
        title = "M1 fan-out latency"
        made.append(latency_plot(rows, title, directory / f"{stem}-m1-latency.png", "panel", "run"))
    servers = data.get("servers", {}).get("results", {})
    if servers.get("fanout"):
        made.append(
            latency_plot(
                servers["fanout"],
                "typing fan-out latency (real providers)",
                directory / f"{stem}-fanout-latency.png",
            )
        )
    if servers.get("fanout_max"):
        made.append(scaling_plot(servers["fanout_max"], directory / f"{stem}-fanout-scaling.png"))
    return [str(p) for p in made if p is not None]
