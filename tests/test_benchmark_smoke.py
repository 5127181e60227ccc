"""The speed benchmark's smoke run (100k orders, one repetition), so that benchmarks/ cannot rot.

It times nothing against a target: it checks that every step of `benchmarks/run.py` still runs and that the
engine, the hand-written SQL, Polars (and pandas, when installed) compute the same merchant metrics.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


@pytest.mark.slow
def test_benchmark_smoke(tmp_path: Path) -> None:
    results = tmp_path / "results.json"
    command = [sys.executable, str(REPO / "benchmarks" / "run.py"), "--smoke", "--out", str(tmp_path)]
    proc = subprocess.run(
        [*command, "--results", str(results)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=REPO,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    report = json.loads(results.read_text())
    assert report["check"]["ok"], report["check"]["problems"]
    compared = set(report["check"]["compared"])
    assert {"engine_merchant_all", "engine_promoter_all", "reference_merchant", "polars"} <= compared
    measures = report["measures"]
    for name in (
        "load_parquet",
        "load_csv",
        "help",
        "engine_merchant",
        "engine_promoter",
        "reference_merchant",
    ):
        assert measures[name]["min"] > 0
        assert measures[name]["peak_rss_mb"] > 0
    assert report["rows"]["orders"] == 100_000
    assert set(report["targets"]) >= {"eligible_vs_sql", "parquet_load", "help_startup"}
