"""Restatement (SPEC §9, issue #22): `runs diff RUN` scores a recorded run's period again with the run's
own ruleset (stored with the run) on today's data, and names the entities whose list entry changed with
the loads behind each change."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import polars as pl
import pytest

from chuanliu_cli.api import Session
from chuanliu_cli.errors import DataError
from chuanliu_cli.rules.files import default_ruleset_path
from chuanliu_cli.scoring.restate import POOL_ONLY

REPO = Path(__file__).resolve().parent.parent
MAY = "2023-05"
SHOP = "ks700055"  # the sample's top merchant


@pytest.fixture(scope="module")
def loaded(tmp_path_factory: pytest.TempPathFactory) -> str:
    path = str(tmp_path_factory.mktemp("restate") / "s.duckdb")
    Session(db=path).load(directory=REPO / "sample_data")
    return path


@pytest.fixture
def db(loaded: str, tmp_path: Path) -> str:
    path = str(tmp_path / "s.duckdb")
    shutil.copy(loaded, path)
    return path


def late_refunds(tmp_path: Path, shop: str = SHOP, n: int = 100_000) -> Path:
    """A late export: `n` (default: all) of the shop's May orders refunded in full after the list was
    published."""
    orders = pl.read_csv(REPO / "sample_data" / "orders.csv", infer_schema=False)
    may = orders.filter(
        pl.col("order_time").str.starts_with("2023-05")
        & (pl.col("shop_id") == shop)
        & pl.col("status").is_in(["completed", "received", "shipped", "paid"])
    ).head(n)
    late = may.with_columns(pl.lit("refunded").alias("status"), pl.col("paid_amount").alias("refund_amount"))
    path = tmp_path / "late_refunds_orders.csv"
    late.write_csv(path)
    return path


def test_nothing_loaded_since_the_run_restates_to_no_change(db: str) -> None:
    with Session(db=db) as s:
        run_id = s.eligible(MAY).run_id
        assert run_id is not None
        result = s.runs_diff(run_id)
    assert result.frame.height == 0
    assert any("no data was loaded after run" in w for w in result.warnings)


def test_a_late_refund_file_changes_the_list_and_is_named_behind_the_change(db: str, tmp_path: Path) -> None:
    with Session(db=db) as s:
        run_id = s.eligible(MAY).run_id
        assert run_id is not None
        before = s.score(MAY, record=False)  # everyone, eligible or not
        late = late_refunds(tmp_path)
        s.load("orders", [late])
        result = s.runs_diff(run_id)
        now = s.score(MAY, record=False).frame
    diff = result.diff
    frame = result.frame
    assert frame.columns[0] == "shop_id"
    row = frame.filter(pl.col("shop_id") == SHOP).row(0, named=True)
    # the refunded shop: its grant fell, its refund metric moved, the late file is named with its count
    was = before.frame.filter(pl.col("shop_id") == SHOP).row(0, named=True)
    after = now.filter(pl.col("shop_id") == SHOP).row(0, named=True)
    assert (row["grant_before"], row["grant_after"]) == (was["grant"], after["grant"])
    assert row["grant_delta"] == (after["grant"] or 0) - was["grant"] < 0
    assert row["change"] == "leaves" and was["eligible"] and not after["eligible"]
    assert (row["tier_before"], row["tier_after"]) == (was["tier"], after["tier"])
    assert f"self_live_gmv {was['self_live_gmv']:,.2f} → 0" in row["metrics_changed"]
    updated = len(pl.read_csv(late, infer_schema=False))
    assert row["loads"].startswith("load ") and "late_refunds_orders.csv" in row["loads"]
    assert f"{updated} updated" in row["loads"]
    # every other change is the pool shared anew, and each matches a fresh scoring of today's data
    others = frame.filter(pl.col("shop_id") != SHOP)
    assert set(others["loads"].to_list()) <= {POOL_ONLY}
    fresh = dict(zip(now["shop_id"].to_list(), now["grant"].to_list(), strict=True))
    assert all(fresh[k] == g for k, g in zip(frame["shop_id"], frame["grant_after"], strict=True))
    # nothing that changed is missing: every shop whose grant differs is listed
    old = dict(zip(before.frame["shop_id"].to_list(), before.frame["grant"].to_list(), strict=True))
    moved = {k for k in fresh if (fresh[k] or 0) != (old.get(k) or 0)}
    assert moved == set(frame["shop_id"].to_list())
    assert diff.allocated_after is not None and diff.allocated_before is not None
    assert int(frame["grant_delta"].sum()) == diff.allocated_after - diff.allocated_before
    assert [r["file"].endswith("late_refunds_orders.csv") for r in diff.loads] == [True]


def test_the_run_is_restated_with_its_own_ruleset_when_the_file_is_gone(db: str, tmp_path: Path) -> None:
    rules = tmp_path / "mine.yaml"
    text = default_ruleset_path().read_text(encoding="utf-8")
    rules.write_text(text.replace("min_score: 80", "min_score: 79", 1), encoding="utf-8")
    with Session(db=db) as s:
        run_id = s.eligible(MAY, rules=rules).run_id
        assert run_id is not None
        rules.unlink()
        s.load("orders", [late_refunds(tmp_path)])
        result = s.runs_diff(run_id)  # the default ruleset would give another list: the stored one is used
    assert result.diff.ruleset.sha256 == result.diff.run["ruleset_sha256"]
    assert result.diff.ruleset.text.count("min_score: 79") == 1


def test_an_unknown_run_is_exit_4_with_the_range(db: str) -> None:
    with Session(db=db) as s, pytest.raises(DataError, match="unknown run 99") as info:
        s.runs_diff(99)
    assert info.value.hint == "no run is recorded yet"


def test_loads_record_the_keys_they_change_but_a_first_load_records_nothing(db: str, tmp_path: Path) -> None:
    import duckdb

    with Session(db=db) as s:
        s.load("orders", [late_refunds(tmp_path, n=5)])
    con = duckdb.connect(db, read_only=True)
    try:
        rows = con.execute('SELECT "table", change, count(*) FROM load_changes GROUP BY ALL').fetchall()
    finally:
        con.close()
    assert rows == [("orders", "update", 5)]


def test_runs_diff_on_the_command_line_writes_the_adjustments(
    db: str, tmp_path: Path, cli: Callable[..., object]
) -> None:
    with Session(db=db) as s:
        run_id = s.eligible(MAY).run_id
        s.load("orders", [late_refunds(tmp_path)])
    out = tmp_path / "adjustments.csv"
    result = cli("--db", db, "runs", "diff", str(run_id), "--format", "csv", "-o", str(out))
    assert result.exit_code == 0, result.output  # type: ignore[attr-defined]
    rows = pl.read_csv(out, infer_schema=False)
    assert rows.columns[:3] == ["shop_id", "name", "change"]
    assert SHOP in rows["shop_id"].to_list()
    document = json.loads(cli("--db", db, "runs", "diff", str(run_id), "--format", "json").stdout)  # type: ignore[attr-defined]
    assert document["summary"]["changed"] == rows.height
    assert document["ruleset"]["name"] == "chuanliu-2023"
    assert [load["table"] for load in document["loads_after"]] == ["orders"]
    listing = cli("--db", db, "runs", "--format", "json")
    assert listing.exit_code == 0 and json.loads(listing.stdout)[0]["run_id"] == run_id  # type: ignore[attr-defined]
    missing = cli("--db", db, "runs", "diff", "42")
    assert missing.exit_code == 4  # type: ignore[attr-defined]


def test_a_budgeted_run_is_restated_with_the_pool_it_published(db: str) -> None:
    """With `remaining` pacing, recording an earlier month changes what a later month's pool would be
    now; a restatement re-shares the pool that was published, so nothing changes without new data."""
    budget = REPO / "rules" / "examples" / "chuanliu-2023-budget.yaml"
    with Session(db=db) as s:
        may = s.eligible(MAY, rules=budget)
        s.eligible("2023-04")  # April as published under the launch rules: what May's pacing now counts
        repaced = s.eligible(MAY, rules=budget, record=False)
        result = s.runs_diff(may.run_id or 0)
    assert may.totals["pool"] != repaced.totals["pool"]  # (the fixture: pacing would move the pool)
    assert result.frame.height == 0
    assert result.diff.allocated_after == result.diff.allocated_before
