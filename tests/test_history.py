"""An entity over time (SPEC §9, issue #22): `history ID --from --to` month by month, served from recorded
runs when their inputs are unchanged, and `explain ID --against-month` attributing the change of the
ranking score to its parts and the metrics that moved them."""

from __future__ import annotations

import json
import math
import shutil
from collections.abc import Callable
from pathlib import Path

import polars as pl
import pytest

from chuanliu_cli.api import Session
from chuanliu_cli.errors import DataError, UsageError

REPO = Path(__file__).resolve().parent.parent
SHOP = "ks700001"


@pytest.fixture(scope="module")
def loaded(tmp_path_factory: pytest.TempPathFactory) -> str:
    path = str(tmp_path_factory.mktemp("history") / "s.duckdb")
    Session(db=path).load(directory=REPO / "sample_data")
    return path


@pytest.fixture
def db(loaded: str, tmp_path: Path) -> str:
    path = str(tmp_path / "s.duckdb")
    shutil.copy(loaded, path)
    return path


def test_history_reads_the_recorded_month_and_scores_the_others(db: str) -> None:
    with Session(db=db) as s:
        run_id = s.eligible("2023-05").run_id
        result = s.history(SHOP, "2023-03", "2023-05")
        expected = {m: s.score(m, record=False) for m in ("2023-03", "2023-04", "2023-05")}
    assert [r["period"] for r in result.rows] == ["2023-03", "2023-04", "2023-05"]
    assert [r["source"] for r in result.rows] == ["scored", "scored", f"run {run_id}"]
    for row in result.rows:
        scored = expected[row["period"]]
        mine = scored.frame.filter(pl.col("shop_id") == SHOP).row(0, named=True)
        assert row["ruleset"] == scored.run.ruleset.name
        assert row["sha256"] == scored.run.ruleset.sha256
        assert (row["eligible"], row["tier"], row["rank"], row["grant"]) == (
            mine["eligible"],
            mine["tier"],
            mine["rank"],
            mine["grant"],
        )
        assert row["total"] == pytest.approx(mine["total"])
        assert row["complete"] == scored.run.complete
    assert result.frame.height == 3 and result.frame["grant"].dtype == pl.Int64


def test_history_of_an_entity_absent_one_month_says_so(db: str) -> None:
    with Session(db=db) as s:
        may = s.score("2023-05", record=False).frame
        march = set(s.score("2023-03", record=False).frame["shop_id"].to_list())
    late = sorted(set(may["shop_id"].to_list()) - march)
    if not late:  # the sample has shops that start selling after March; the test needs one
        pytest.fail("the sample data has no shop absent in 2023-03: the fixture no longer fits")
    with Session(db=db) as s:
        rows = s.history(late[0], "2023-03", "2023-05").rows
    assert rows[0]["in_population"] is False and rows[0]["grant"] is None
    assert rows[-1]["in_population"] is True


def test_history_refuses_an_unknown_key_and_a_backward_range(db: str) -> None:
    with Session(db=db) as s:
        with pytest.raises(DataError):
            s.history("ks999999", "2023-04", "2023-05")
        with pytest.raises(UsageError, match="before"):
            s.history(SHOP, "2023-05", "2023-04")


def test_history_on_the_command_line(db: str, cli: Callable[..., object]) -> None:
    result = cli("--db", db, "history", SHOP, "--from", "2023-04", "--to", "2023-05", "--format", "json")
    assert result.exit_code == 0, result.output  # type: ignore[attr-defined]
    document = json.loads(result.stdout)  # type: ignore[attr-defined]
    assert document["key"] == {"shop_id": SHOP}
    assert [p["period"] for p in document["periods"]] == ["2023-04", "2023-05"]
    table = cli("--db", db, "history", SHOP, "--from", "2023-04", "--to", "2023-05", "--format", "table")
    assert "2023-05" in table.stdout and "scored" in table.stdout  # type: ignore[attr-defined]


def test_explain_against_a_month_attributes_the_change_to_the_parts(db: str) -> None:
    with Session(db=db) as s:
        result = s.explain(SHOP, "2023-05", against_period="2023-04")
        then = s.explain(SHOP, "2023-04").explanation
    a = result.attribution
    assert a is not None
    now = result.explanation
    assert (a.total_then, a.total_now) == (then.rank_by_value, now.rank_by_value)
    assert (a.tier_then, a.tier_now, a.grant_then, a.grant_now) == (
        then.tier,
        now.tier,
        then.grant,
        now.grant,
    )
    # the parts' changes add up to the change of the total, largest first
    assert a.delta is not None
    assert math.isclose(sum(p.delta for p in a.parts), a.delta, abs_tol=1e-6)
    assert [abs(p.delta) for p in a.parts] == sorted((abs(p.delta) for p in a.parts), reverse=True)
    # each part's metrics are the explanations' values
    values_then = {m.name: m.value for m in then.metrics}
    values_now = {m.name: m.value for m in now.metrics}
    for part in a.parts:
        assert part.metrics
        for m in part.metrics:
            assert (m.then, m.now) == (values_then[m.name], values_now[m.name])
    assert result.to_dict()["against"]["period_then"] == "2023-04"


def test_explain_against_a_month_on_the_command_line(db: str, cli: Callable[..., object]) -> None:
    result = cli(
        "--db", db, "explain", SHOP, "--month", "2023-05", "--against-month", "2023-04", "--format", "table"
    )
    assert result.exit_code == 0, result.output  # type: ignore[attr-defined]
    assert "Since 2023-04:" in result.stdout and "largest first" in result.stdout  # type: ignore[attr-defined]
    as_json = cli(
        "--db", db, "explain", SHOP, "--month", "2023-05", "--against-month", "2023-04", "--format", "json"
    )
    document = json.loads(as_json.stdout)  # type: ignore[attr-defined]
    assert {p["part"] for p in document["against"]["parts"]} == {"diligence", "distribution", "incremental"}
    as_csv = cli(
        "--db", db, "explain", SHOP, "--month", "2023-05", "--against-month", "2023-04", "--format", "csv"
    )
    assert "against 2023-04" in as_csv.stdout  # type: ignore[attr-defined]
