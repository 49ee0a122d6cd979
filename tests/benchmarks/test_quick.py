"""Smoke test of the benchmark suite: quick fan-out (a real server) and quick merge core, verified."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import orjson
import pytest

from benchmarks.__main__ import run


def _finite_positive(value: Any) -> bool:
    return isinstance(value, int | float) and math.isfinite(value) and value > 0


@pytest.mark.timeout(90)
def test_quick_fanout_and_merge_core(tmp_path: Path) -> None:
    fanout, fanout_file = run(["fanout", "--quick", "--name", "ci", "--results-dir", str(tmp_path)])
    merge, merge_file = run(["merge", "--quick", "--name", "ci", "--results-dir", str(tmp_path)])

    written = orjson.loads(fanout_file.read_bytes())
    assert written["failures"] == [] and fanout["failures"] == []
    (row,) = written["fanout"]
    assert row["verified"] is True and row["errors"] == []
    assert row["deliveries"] == row["receivers"] * row["updates_sent"] > 0
    assert row["writer_acked"] is True  # every update was committed and acknowledged
    assert _finite_positive(row["server_cpu_us_per_delivery"])
    assert _finite_positive(row["deliveries_per_s"])
    latency = row["latency"]
    assert latency["count"] == row["deliveries"]
    assert 0 < latency["p50_ms"] <= latency["p99_ms"] <= latency["max_ms"]
    assert len(row["latency_quantiles_ms"]) > 10

    core = orjson.loads(merge_file.read_bytes())["merge_core"]
    assert core["verified"] is True and merge["failures"] == []
    (trace,) = core["traces"]
    assert trace["raw_verified"] and trace["ingest_memory"]["verified"] and trace["snapshot"]["verified"]
    assert _finite_positive(trace["raw_apply_us_per_update"])
    assert _finite_positive(trace["ingest_memory"]["ratio_vs_raw_apply"])
    assert trace["ingest_memory"]["log_rows"] == trace["updates"]
    assert set(trace["ingest_memory"]["stages_us_per_update"]) >= {"decode", "apply", "frame", "append"}
    sqlite = trace["ingest_sqlite"]
    assert "skipped" in sqlite or (sqlite["verified"] and sqlite["log_rows"] == sqlite["updates"])
    assert core["compaction"]["rows"] and all(r["same_text"] for r in core["compaction"]["rows"])
    assert (tmp_path / "latest.json").exists()
