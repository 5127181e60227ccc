"""The sample data's reward lists as golden files, identical from --data and from a loaded database."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import REPO

GOLDEN = REPO / "tests" / "golden"
SCORECARDS = ["merchant", "promoter", "product"]


def _eligible(invoke: Callable[..., Any], *args: str) -> str:
    result = invoke("eligible", "--month", "2023-05", "--all", "--format", "csv", *args)
    assert result.exit_code == 0, result.output
    return str(result.stdout)


@pytest.fixture(scope="module")
def loaded_db(tmp_path_factory: pytest.TempPathFactory) -> str:
    from typer.testing import CliRunner

    from chuanliu_cli.cli.app import app

    db = str(tmp_path_factory.mktemp("golden") / "sample.duckdb")
    result = CliRunner().invoke(app, ["-q", "--db", db, "load", "--dir", str(REPO / "sample_data")])
    assert result.exit_code == 0, result.output
    return db


@pytest.mark.parametrize("scorecard", SCORECARDS)
def test_sample_reward_list_matches_golden(invoke: Callable[..., Any], scorecard: str) -> None:
    text = _eligible(invoke, "--data", str(REPO / "sample_data"), "--scorecard", scorecard)
    golden = GOLDEN / f"sample-2023-05-{scorecard}.csv"
    if os.environ.get("CHUANLIU_UPDATE_GOLDEN"):
        golden.parent.mkdir(exist_ok=True)
        golden.write_text(text, encoding="utf-8")
    assert text == golden.read_text(encoding="utf-8")


@pytest.mark.parametrize(
    "scorecard", [s if s == "merchant" else pytest.param(s, marks=pytest.mark.slow) for s in SCORECARDS]
)
def test_database_and_data_dir_agree(invoke: Callable[..., Any], loaded_db: str, scorecard: str) -> None:
    from_data = _eligible(invoke, "--data", str(REPO / "sample_data"), "--scorecard", scorecard)
    from_db = _eligible(invoke, "--db", loaded_db, "--scorecard", scorecard)
    assert from_db == from_data


def test_json_shape(invoke: Callable[..., Any]) -> None:
    result = invoke(
        "eligible", "--month", "2023-05", "--data", str(REPO / "sample_data"), "--format", "json", "--all"
    )
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert list(doc) == [
        "ruleset",
        "scorecard",
        "period",
        "data_window",
        "assumptions",
        "entities",
        "totals",
        "population",
        "warnings",
    ]
    assert doc["ruleset"]["name"] == "chuanliu-2023" and len(doc["ruleset"]["sha256"]) == 64
    assert doc["period"] == {
        "start": "2023-05-01",
        "end": "2023-06-01",
        "label": "2023-05",
        "complete": True,
        "incomplete_tables": [],
        "missing_history": [],
    }
    assert doc["warnings"] == []
    assert doc["population"] == {
        "entities": 59,
        "relative": True,
        "note": f"ranks, tiers and grants are relative to the 59 shop_id values loaded from {REPO / 'sample_data'}; "
        "grants assume these are the whole population",
    }
    totals = doc["totals"]
    entities = doc["entities"]
    idle = [e for e in entities if e["grant_note"] == "not in the population: no activity in the period"]
    assert [e["shop_id"] for e in idle] == ["ks700060"]  # listed in shops, no activity in May
    assert totals["entities"] == len(entities) - len(idle)
    assert totals["eligible"] == sum(e["eligible"] for e in entities)
    assert sum(e["grant"] for e in entities) == totals["allocated"]
    assert totals["allocated"] + totals["unallocated"] == totals["pool"] == 4_000_000_000
    assert set(totals["per_tier"]) == {"S", "A", "B", "C"} and all(totals["per_tier"].values())
    first = entities[0]
    assert list(first)[:6] == ["shop_id", "name", "group_id", "category", "rank", "eligible"]
    assert first["rank"] == 1 and isinstance(first["grant"], int)
    assert set(first["scores"]) == {"store_experience", "diligence", "distribution", "incremental", "total"}
    assert "live_days" in first["metrics"]
    ineligible = [e for e in entities if not e["eligible"]]
    assert ineligible and all(
        e["rank"] is None and e["tier"] is None and e["failed_gates"] for e in ineligible
    )
    assert any(e["scores"]["store_experience"] is None for e in entities)  # NULL → JSON null


def test_jsonl_and_default_csv_when_piped(invoke: Callable[..., Any]) -> None:
    lines = invoke("eligible", "--month", "2023-05", "--data", str(REPO / "sample_data"), "--format", "jsonl")
    assert lines.exit_code == 0
    rows = [json.loads(x) for x in lines.stdout.splitlines()]
    assert all(r["eligible"] for r in rows) and rows[0]["rank"] == 1
    piped = invoke("eligible", "--month", "2023-05", "--data", str(REPO / "sample_data"))
    assert piped.stdout.splitlines()[0].startswith(
        "shop_id,name,group_id,category,rank,eligible,failed_gates"
    )


def test_parquet_output_is_flat(invoke: Callable[..., Any], tmp_path: Path) -> None:
    import pyarrow.parquet as pq

    out = tmp_path / "list.parquet"
    result = invoke(
        "eligible",
        "--month",
        "2023-05",
        "--data",
        str(REPO / "sample_data"),
        "--format",
        "parquet",
        "-o",
        str(out),
    )
    assert result.exit_code == 0, result.output
    table = pq.read_table(out)
    assert {"shop_id", "grant", "total", "live_days"} <= set(table.column_names)
    assert str(table.schema.field("grant").type) == "int64"
