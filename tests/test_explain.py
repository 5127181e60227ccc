"""`chuanliu explain`: gates with the amount needed, NULL scores, next tier and verified suggestions."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import polars as pl
import pytest

from chuanliu_cli.errors import DataError
from chuanliu_cli.exit_codes import ExitCode
from chuanliu_cli.ingest.loader import LoadOptions, discover, load_files
from chuanliu_cli.periods import month_period
from chuanliu_cli.rules.parser import default_ruleset_path, load_ruleset
from chuanliu_cli.scoring.allocation import round_micro
from chuanliu_cli.scoring.explain import Explanation, explain_entity
from chuanliu_cli.scoring.pipeline import RunResult, compute_scores, finish_scorecard, score_period, tier_for
from chuanliu_cli.store.database import memory_database
from tests.conftest import REPO


@pytest.fixture(scope="module")
def run() -> RunResult:
    db = memory_database()
    load_files(db, discover(REPO / "sample_data"), LoadOptions())
    return score_period(db.con, load_ruleset(default_ruleset_path()), month_period(2023, 5))


def _check_suggestions_reach_target(run: RunResult, ex: Explanation) -> None:
    res = run.scorecards[ex.scorecard]
    sc = res.scorecard
    metrics = res.frame.select([sc.key, *(m.name for m in sc.metrics)])
    assert ex.target_score is not None
    for s in ex.suggestions:
        changed = metrics.with_columns(
            pl.when(pl.col(sc.key) == ex.key)
            .then(pl.lit(s.target))
            .otherwise(pl.col(s.metric))
            .alias(s.metric)
        )
        total = compute_scores(sc, changed).filter(pl.col(sc.key) == ex.key)[sc.rank_by][0]
        assert round_micro(total) >= round_micro(ex.target_score), (s, total)
        assert s.reaches == total  # what scoring the whole population gives, to the last bit
        assert tier_for(sc, total) == ex.target_tier or ex.tier is None


def test_one_failed_gate_with_amount_needed(run: RunResult) -> None:
    ex = explain_entity(run, "merchant", "ks700003")
    assert not ex.eligible and ex.failed_gates == ("distribution_history",)
    gate = next(g for g in ex.gates if g.id == "distribution_history")
    assert gate.values == {"distribution_orders_90d": 0.0}
    assert gate.needs == ("distribution_orders_90d is 0, needs >= 1: 1 more",)
    assert ex.rank is None and ex.grant == 0


def test_a_strict_bound_at_the_value_needs_any_increase(run: RunResult) -> None:
    """`x > 0` failed at 0 needs any increase (not "more than 0 more"); below a gap, more than the gap."""
    from chuanliu_cli.scoring.explain import _gate_needs

    gate = run.ruleset.scorecard("merchant").gates[0]  # (only the comparisons given are read)
    assert _gate_needs(gate, [("self_live_gmv", ">", 0.0)], {"self_live_gmv": 0.0}) == [
        "self_live_gmv is 0, needs > 0: any increase"
    ]
    assert _gate_needs(gate, [("x", ">", 5.0)], {"x": 3.0}) == ["x is 3, needs > 5: more than 2 more"]
    assert _gate_needs(gate, [("x", ">=", 5.0)], {"x": 3.0}) == ["x is 3, needs >= 5: 2 more"]


def test_several_failed_gates(run: RunResult) -> None:
    ex = explain_entity(run, "merchant", "ks700008")
    assert len(ex.failed_gates) == 3
    failed = [g for g in ex.gates if not g.passed]
    assert all(g.needs for g in failed)
    stable = next((g for g in failed if g.id == "stable_live"), None)
    if stable is not None:
        # an `and` of comparisons lists only the conjuncts that fail
        for need in stable.needs:
            name = need.split(" ")[0]
            assert stable.values[name] is not None


def test_stable_live_needs_days_and_weeks(run: RunResult) -> None:
    ex = explain_entity(run, "merchant", "ks700004")
    gate = next(g for g in ex.gates if g.id == "stable_live")
    days = gate.values["live_days"]
    assert days is not None and days < 8
    assert gate.needs[0] == f"live_days is {days:g}, needs >= 8: {8 - days:g} more"


def test_top_tier_has_nothing_missing(run: RunResult) -> None:
    ex = explain_entity(run, "merchant", "ks700055")
    assert ex.tier == "S" and ex.rank == 1
    assert ex.target_tier is None and ex.points_needed is None and ex.suggestions == ()
    assert ex.share == pytest.approx(ex.grant / 4_000_000_000)


def test_just_below_a_tier_suggests_verified_values(run: RunResult) -> None:
    frame = run.scorecards["merchant"].frame
    below = frame.filter(pl.col("eligible") & (pl.col("tier") == "A")).sort("total", descending=True)
    key = below[0, "shop_id"]
    ex = explain_entity(run, "merchant", key)
    assert ex.target_tier == "S" and ex.target_score == 80
    assert ex.points_needed == pytest.approx(80 - below[0, "total"])
    assert ex.suggestions and len(ex.suggestions) <= 3
    changes = [s.change for s in ex.suggestions]
    assert changes == sorted(changes)
    _check_suggestions_reach_target(run, ex)


def test_every_suggestion_of_every_merchant_reaches_its_target_and_gates_agree(run: RunResult) -> None:
    keys = run.scorecards["merchant"].frame["shop_id"].to_list()
    suggested = 0
    for key in keys:
        ex = explain_entity(run, "merchant", key)
        for gate in ex.gates:  # each gate's own outcome, as scored; `missing` decides a NULL one
            assert gate.passed is (gate.result if gate.result is not None else gate.missing == "pass")
        if ex.target_score is not None:
            _check_suggestions_reach_target(run, ex)
            suggested += len(ex.suggestions)
    assert suggested > 20


def test_explain_reads_a_gate_of_any_shape_from_the_scored_row(run: RunResult) -> None:
    from dataclasses import replace

    res = run.scorecards["merchant"]
    sc = res.scorecard
    # `live_days + live_weeks > 12` is no `metric op constant`: no amount needed, but its result is known
    gate = replace(
        sc.gates[1], id="sum_of_two", when=replace(sc.gates[1].when, text="live_days + live_weeks > 12")
    )
    metrics = res.frame.select([sc.key, *(m.name for m in sc.metrics)])
    rescored = finish_scorecard(replace(sc, gates=(*sc.gates, gate)), run.period, metrics)
    run2 = replace(run, scorecards={**run.scorecards, "merchant": rescored})
    for key in ("ks700003", "ks700008"):
        row = rescored.frame.filter(pl.col(sc.key) == key).row(0, named=True)
        line = next(g for g in explain_entity(run2, "merchant", key).gates if g.id == "sum_of_two")
        assert line.result is (row["live_days"] + row["live_weeks"] > 12)
        assert line.passed is line.result
        assert line.needs == (() if line.passed else ("make `live_days + live_weeks > 12` true",))


def test_null_store_experience_is_explained(run: RunResult) -> None:
    ex = explain_entity(run, "merchant", "ks700017")
    store = next(s for s in ex.scores if s.name == "store_experience")
    assert store.value is None
    assert store.null_reason is not None and store.null_reason.startswith("requires reviews_90d ≥ 20, has ")
    gate = next(g for g in ex.gates if g.id == "store_experience")
    assert gate.passed and gate.result is None and gate.missing == "pass"


def test_score_parts_add_up(run: RunResult) -> None:
    ex = explain_entity(run, "merchant", "ks700055")
    for s in ex.scores:
        if s.value is not None:
            assert sum(p.points or 0 for p in s.parts) == pytest.approx(s.value)


def test_promoter(run: RunResult) -> None:
    ex = explain_entity(run, "promoter", "dr58344401")
    assert "reputation" in ex.failed_gates
    rep = next(s for s in ex.scores if s.name == "reputation")
    assert rep.value is not None and rep.value < 4.0
    gate = next(g for g in ex.gates if g.id == "reputation")
    assert gate.needs and gate.needs[0].startswith("reputation is ")


def test_unknown_id_names_nearest(run: RunResult) -> None:
    with pytest.raises(DataError, match="unknown shop_id 'ks70005'") as err:
        explain_entity(run, "merchant", "ks70005")
    assert err.value.hint and err.value.hint.startswith("nearest known: ks7000")


def test_cli_unknown_id_exit_4(invoke: Callable[..., Any]) -> None:
    result = invoke("explain", "nope999", "--month", "2023-05", "--data", str(REPO / "sample_data"))
    assert result.exit_code == ExitCode.INVALID_DATA
    assert "unknown shop_id 'nope999'" in result.output


def test_cli_table_and_json(invoke: Callable[..., Any]) -> None:
    result = invoke("explain", "ks700017", "--month", "2023-05", "--data", str(REPO / "sample_data"))
    assert result.exit_code == 0, result.output
    for text in ("What it is missing", "tier C needs total ≥ 35", "requires reviews_90d ≥ 20", "Gates"):
        assert text in result.output
    js = invoke(
        "explain", "ks700003", "--month", "2023-05", "--data", str(REPO / "sample_data"), "--format", "json"
    )
    doc = json.loads(js.stdout)
    assert doc["key"] == "ks700003" and doc["eligible"] is False
    assert doc["failed_gates"] == ["distribution_history"]


def test_a_listed_shop_without_activity_is_explained_not_refused(invoke: Callable[..., Any]) -> None:
    """ks700060 is in shops.csv but did nothing in May: not in the population, every metric 0 or empty, the
    gates it fails (exit 0), and `eligible --all` lists it."""
    data = str(REPO / "sample_data")
    result = invoke("explain", "ks700060", "--month", "2023-05", "--data", data, "--format", "json")
    assert result.exit_code == 0, result.output
    ex = json.loads(result.stdout)
    assert ex["in_population"] is False and ex["rank"] is None and ex["grant"] == 0
    assert ex["eligible"] is False
    assert set(ex["failed_gates"]) == {"distribution_history", "stable_live", "active"}
    values = {m["name"]: m["value"] for m in ex["metrics"]}
    assert values["live_days"] == 0 and values["distribution_gmv"] == 0 and values["quality_avg_90d"] is None
    listed = invoke("eligible", "--month", "2023-05", "--data", data, "--all", "--format", "json")
    doc = json.loads(listed.stdout)
    last = doc["entities"][-1]
    assert (
        last["shop_id"] == "ks700060"
        and last["grant_note"] == "not in the population: no activity in the period"
    )
    assert doc["totals"]["entities"] == 59 and len(doc["entities"]) == 60


@pytest.mark.slow
def test_an_id_of_another_scorecard_names_it(invoke: Callable[..., Any]) -> None:
    data = str(REPO / "sample_data")
    promoter = invoke(
        "score", "--month", "2023-05", "--data", data, "--scorecard", "promoter", "--format", "json"
    )
    some = json.loads(promoter.stdout)["entities"][0]["promoter_id"]
    result = invoke("explain", some, "--month", "2023-05", "--data", data)
    assert result.exit_code == 4
    assert f"Hint: {some} is a promoter_id: add --scorecard promoter" in result.output
    unknown = invoke("explain", "nosuch", "--month", "2023-05", "--data", data)
    assert unknown.exit_code == 4 and "unknown shop_id 'nosuch'" in unknown.output
    score = invoke("score", "--month", "2023-05", "--data", data, "--id", "nosuch")
    assert score.exit_code == 4 and "unknown shop_id 'nosuch'" in score.output


def test_score_id_keeps_the_totals_of_everyone(invoke: Callable[..., Any]) -> None:
    data = str(REPO / "sample_data")
    one = json.loads(
        invoke("score", "--month", "2023-05", "--data", data, "--id", "ks700003", "--format", "json").stdout
    )
    assert [e["shop_id"] for e in one["entities"]] == ["ks700003"]
    assert one["totals"]["entities"] == 59 and one["totals"]["allocated"] == 4_000_000_000
