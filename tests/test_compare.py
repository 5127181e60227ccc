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


@pytest.mark.slow
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


@pytest.mark.parametrize("fmt", ["csv", pytest.param("jsonl", marks=pytest.mark.slow)])
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
        # a csv read alone says which side is which (the table's title and the json's summary do too)
        assert (rows[0]["a"], rows[0]["b"]) == ("chuanliu-2023 (chuanliu.yaml)", "chuanliu-2023 (b.yaml)")
    else:
        rows = [json.loads(x) for x in result.stdout.splitlines()]
    assert [r["key"] for r in rows] == ["ks700017"]


def test_a_csv_of_two_months_names_each_side(invoke: Callable[..., Any]) -> None:
    args = ["--month", "2023-05", "--data", DATA, "--against-month", "2023-04", "--format", "csv", "--all"]
    result = invoke("compare", *args)
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert {(r["a"], r["b"]) for r in rows} == {("2023-05 (chuanliu-2023)", "2023-04 (chuanliu-2023-01)")}


def test_needs_against(invoke: Callable[..., Any]) -> None:
    result = invoke("compare", "--month", "2023-05", "--data", DATA)
    assert result.exit_code == ExitCode.USAGE


def _reference_rows(a: Any, b: Any) -> list[dict[str, Any]]:
    """The comparison's rule, entity by entity in plain Python (what compare_results computes in polars)."""
    sc = a.scorecard
    rows_a = {r[sc.key]: r for r in a.frame.iter_rows(named=True)}
    rows_b = {r[sc.key]: r for r in b.frame.iter_rows(named=True)}
    rank = {t.name: i for i, t in enumerate(sc.tiers)}
    reasons = {g.id: g.reason for g in sc.gates}

    def label(r: dict[str, Any] | None) -> str:
        return "absent" if r is None else "ineligible" if not r["eligible"] else r["tier"] or "no tier"

    rows = []
    for k in sorted(set(rows_a) | set(rows_b)):
        ra, rb = rows_a.get(k), rows_b.get(k)
        la, lb = label(ra), label(rb)
        ea, eb = bool(ra and ra["eligible"]), bool(rb and rb["eligible"])
        if ea != eb:
            change = "left" if ea else "entered"
        elif la != lb and la in rank and lb in rank:
            change = "tier up" if rank[lb] < rank[la] else "tier down"
        elif la != lb and "no tier" in (la, lb):
            change = "tier up" if la == "no tier" else "tier down"
        else:
            change = "same"
        ga, gb = (ra["grant"] or 0) if ra else 0, (rb["grant"] or 0) if rb else 0
        ta, tb = ra[sc.rank_by] if ra else None, rb[sc.rank_by] if rb else None
        newly = [g for g in (rb["failed_gates"] if rb else []) if g not in (ra["failed_gates"] if ra else [])]
        rows.append(
            {
                "key": k,
                "name": (rb or ra or {}).get("name"),
                "change": change,
                "eligible_a": ea,
                "eligible_b": eb,
                "tier_a": ra["tier"] if ra else None,
                "tier_b": rb["tier"] if rb else None,
                "total_a": ta,
                "total_b": tb,
                "total_delta": None if ta is None or tb is None else tb - ta,
                "grant_a": ga,
                "grant_b": gb,
                "grant_delta": gb - ga,
                "now_failing": newly,
                "now_failing_reasons": [reasons[g] for g in newly],
            }
        )
    rows.sort(key=lambda r: (-abs(r["grant_delta"]), r["key"]))
    return rows


def test_columnar_comparison_follows_the_rule_entity_by_entity() -> None:
    """Two synthetic months with shops missing from either side: every row, the matrix and the summary."""
    import dataclasses

    import polars as pl

    from chuanliu_cli.scoring.compare import Side, compare_results
    from tests.test_report_scale import synthetic_run

    a = synthetic_run(4000, 4, seed=1, drop_every=7)
    b = synthetic_run(4000, 5, seed=2, drop_every=5)
    ra, rb = a.scorecards["merchant"], b.scorecards["merchant"]
    # some eligible shops of B below every tier (the default tiers leave none): "no tier" moves
    untiered = pl.when(pl.col("eligible") & (pl.col("rank") % 9 == 0)).then(None).otherwise(pl.col("tier"))
    rb = dataclasses.replace(rb, frame=rb.frame.with_columns(untiered.alias("tier")))
    cmp = compare_results(Side("2023-04", a, ra), Side("2023-05", b, rb))
    expected = _reference_rows(ra, rb)
    assert cmp.rows == expected
    changes = {r["change"] for r in expected}
    assert {"entered", "left", "tier up", "tier down", "same"} <= changes
    assert any(r["tier_b"] is None and r["eligible_b"] and r["change"] == "tier down" for r in expected)
    assert any(r["now_failing"] for r in expected)
    s = cmp.summary()
    assert s["entrants"] == sum(r["change"] == "entered" for r in expected)
    assert s["leavers"] == sum(r["change"] == "left" for r in expected)
    assert s["tier_moves"] == sum(r["change"] in ("tier up", "tier down") for r in expected)
    assert s["grant_moved"] == sum(abs(r["grant_delta"]) for r in expected) // 2
    assert s["top_gainers"] == [
        {"key": r["key"], "name": r["name"], "grant_delta": r["grant_delta"]}
        for r in sorted(expected, key=lambda r: (-r["grant_delta"], r["key"]))[:5]
    ]
    assert sum(sum(row.values()) for row in cmp.matrix.values()) == len(expected)
    assert cmp.matrix["absent"]["absent"] == 0 and cmp.matrix["absent"]["ineligible"] > 0
    flat = cmp.flat()
    assert flat["now_failing"].to_list() == [";".join(r["now_failing"]) for r in expected]
