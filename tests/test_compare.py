"""`chuanliu compare`: two rulesets (or two months) on the same data, entity by entity."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from chuanliu_cli.exit_codes import ExitCode
from tests.conftest import REPO

DATA = str(REPO / "sample_data")
RULES = REPO / "rules" / "chuanliu.yaml"


def _variant(tmp_path: Path, old: str, new: str, name: str = "b.yaml") -> Path:
    text = RULES.read_text(encoding="utf-8")
    assert old in text
    path = tmp_path / name
    path.write_text(text.replace(old, new, 1), encoding="utf-8")
    return path


def _compare(invoke: Callable[..., Any], *args: str) -> dict[str, Any]:
    result = invoke("compare", "--month", "2023-05", "--data", DATA, "--format", "json", *args)
    assert result.exit_code == 0, result.output
    return dict(json.loads(result.stdout))


def _grants(invoke: Callable[..., Any], rules: Path, scorecard: str = "merchant") -> dict[str, int]:
    result = invoke(
        "eligible",
        "--month",
        "2023-05",
        "--data",
        DATA,
        "--rules",
        str(rules),
        "--scorecard",
        scorecard,
        "--all",
        "--format",
        "csv",
    )
    return {r[next(iter(r))]: int(r["grant"]) for r in csv.DictReader(io.StringIO(result.stdout))}


def test_identical_rulesets_change_nothing(invoke: Callable[..., Any]) -> None:
    doc = _compare(invoke, "--against", str(RULES))
    s = doc["summary"]
    assert s["unchanged"] is True and s["entrants"] == s["leavers"] == s["grant_moved"] == 0
    table = invoke(
        "compare", "--month", "2023-05", "--data", DATA, "--against", str(RULES), "--format", "table"
    )
    assert table.exit_code == 0 and "No change" in table.stdout


def test_gate_threshold_change(invoke: Callable[..., Any], tmp_path: Path) -> None:
    b = _variant(tmp_path, "live_days >= 8", "live_days >= 12")
    doc = _compare(invoke, "--against", str(b))
    s = doc["summary"]
    assert s["entrants"] == 0 and s["leavers"] > 0
    leavers = [e for e in doc["entities"] if e["change"] == "left"]
    assert all(e["now_failing"] == ["stable_live"] for e in leavers)
    assert s["eligible"]["a"] - s["leavers"] + s["entrants"] == s["eligible"]["b"]
    # Σ grants per side equal each side's own `eligible` output exactly
    ga, gb = _grants(invoke, RULES), _grants(invoke, b)
    for e in doc["entities"]:
        assert e["grant_a"] == ga.get(e["key"], 0) and e["grant_b"] == gb.get(e["key"], 0)
    assert sum(e["grant_a"] for e in doc["entities"]) == sum(ga.values())
    assert sum(e["grant_b"] for e in doc["entities"]) == sum(gb.values())
    assert s["grant_moved"] == sum(abs(e["grant_delta"]) for e in doc["entities"]) // 2


def test_weight_change_moves_tiers(invoke: Callable[..., Any], tmp_path: Path) -> None:
    b = _variant(tmp_path, "{score: diligence, weight: 30}", "{score: diligence, weight: 60}")
    doc = _compare(invoke, "--against", str(b))
    assert doc["summary"]["tier_moves"] > 0
    moved = [e for e in doc["entities"] if e["change"] in ("tier up", "tier down")]
    assert all(e["tier_a"] != e["tier_b"] for e in moved)
    assert all(e["total_delta"] is not None for e in moved)


def test_pool_change(invoke: Callable[..., Any], tmp_path: Path) -> None:
    text = RULES.read_text(encoding="utf-8")
    old = next(line for line in text.splitlines() if "pool:" in line and "4" in line)
    b = _variant(
        tmp_path, old, old.replace("4_000_000_000", "8_000_000_000").replace("4000000000", "8000000000")
    )
    doc = _compare(invoke, "--against", str(b))
    s = doc["summary"]
    assert s["a"]["pool"] == 4_000_000_000 and s["b"]["pool"] == 8_000_000_000
    assert s["entrants"] == s["leavers"] == s["tier_moves"] == 0
    assert all(e["grant_b"] >= e["grant_a"] for e in doc["entities"])


def test_tier_matrix_sums_to_population(invoke: Callable[..., Any], tmp_path: Path) -> None:
    b = _variant(tmp_path, "live_days >= 8", "live_days >= 12")
    doc = _compare(invoke, "--against", str(b))
    matrix = doc["summary"]["tier_matrix"]
    assert sum(sum(row.values()) for row in matrix.values()) == len(doc["entities"])


def test_against_month(invoke: Callable[..., Any]) -> None:
    doc = _compare(invoke, "--against-month", "2023-04")
    assert doc["summary"]["a"]["period"] == "2023-05" and doc["summary"]["b"]["period"] == "2023-04"
    assert sum(sum(r.values()) for r in doc["summary"]["tier_matrix"].values()) == len(doc["entities"])


def test_invalid_ruleset_b_is_exit_3_naming_the_file(invoke: Callable[..., Any], tmp_path: Path) -> None:
    b = _variant(tmp_path, "live_days >= 8", "live_dayz >= 8")
    result = invoke("compare", "--month", "2023-05", "--data", DATA, "--against", str(b))
    assert result.exit_code == ExitCode.INVALID_RULESET
    assert f"{b}:" in result.output and "ruleset B" in result.output


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_row_formats_and_ids(invoke: Callable[..., Any], tmp_path: Path, fmt: str) -> None:
    b = _variant(tmp_path, "live_days >= 8", "live_days >= 12")
    result = invoke(
        "compare",
        "--month",
        "2023-05",
        "--data",
        DATA,
        "--against",
        str(b),
        "--format",
        fmt,
        "--id",
        "ks700017",
    )
    assert result.exit_code == 0, result.output
    if fmt == "csv":
        rows = list(csv.DictReader(io.StringIO(result.stdout)))
    else:
        rows = [json.loads(x) for x in result.stdout.splitlines()]
    assert [r["key"] for r in rows] == ["ks700017"]


def test_needs_against(invoke: Callable[..., Any]) -> None:
    result = invoke("compare", "--month", "2023-05", "--data", DATA)
    assert result.exit_code == ExitCode.USAGE
