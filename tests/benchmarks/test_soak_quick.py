"""The soak benchmark's quick mode against a real server: every operation done, RSS flat (relaxed bound)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmarks.soak import run, table

RELAXED_BOUND = 0.35  # the full soak holds 20%; a short run has less time to level off


@pytest.mark.timeout(120)
def test_soak_quick(tmp_path: Path) -> None:
    result, path = run(["--quick", "--bound", str(RELAXED_BOUND), "--results-dir", str(tmp_path)])
    summary = table(result)
    assert result.errors == [], summary
    assert [phase.name for phase in result.phases] == ["cycles", "rooms"]
    for phase in result.phases:
        assert phase.done == phase.planned > 0, summary
        assert phase.growth_vs_baseline <= RELAXED_BOUND, summary
    assert result.passed, summary
    assert result.seconds < 60, summary
    written = json.loads(path.read_text())
    assert path.name.startswith("soak-") and written["passed"] is True
    assert written["samples"] and written["baseline_rss_mib"] > 0
