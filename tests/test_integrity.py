"""The integrity flags (SPEC §11): hand-computed flags at each definition's edges, the integrity section of a
ruleset, the binomial test against a hand calculation, the planted gaming of the sample, and explain's line."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import date, datetime, timedelta
from fractions import Fraction
from pathlib import Path
from typing import Any

import duckdb
import pytest

from chuanliu_cli import schema
from chuanliu_cli.errors import RulesetError
from chuanliu_cli.periods import parse_period
from chuanliu_cli.rules.integrity import flag_ctes, flagged_source, flagged_table
from chuanliu_cli.rules.model import Integrity
from chuanliu_cli.rules.parser import parse_ruleset
from chuanliu_cli.scoring.integrity import binomial_tail, bunching

REPO = Path(__file__).resolve().parent.parent
MAY = parse_period("2023-05")
T0 = datetime(2023, 5, 10, 20, 0, 0)


@pytest.fixture
def con() -> Iterator[duckdb.DuckDBPyConnection]:
    connection = duckdb.connect(":memory:")
    for table in schema.TABLES.values():
        connection.execute(schema.table_ddl(table))
    yield connection
    connection.close()


def order(con: duckdb.DuckDBPyConnection, order_id: str, minutes: float, **values: Any) -> None:
    row: dict[str, Any] = {
        "order_id": order_id,
        "shop_id": "s1",
        "buyer_id": "b1",
        "sale_mode": "self",
        "carrier": "live",
        "order_time": T0 + timedelta(minutes=minutes),
        "paid_amount": 10,
        "net_amount": 10,
        "status": "completed",
        **values,
    }
    names = ", ".join(f'"{k}"' for k in row)
    con.execute(f"INSERT INTO orders ({names}) VALUES ({', '.join('?' for _ in row)})", list(row.values()))


def flags(
    con: duckdb.DuckDBPyConnection, source: str, integrity: Integrity | None = None
) -> dict[str, dict[str, bool]]:
    """{row key: {flag: value}} of every row of `source`, as the compiler's flagged CTE computes them."""
    integrity = integrity or Integrity()
    names = {"orders": ("brushing", "self_purchase"), "livestreams": ("idle",), "reviews": ("suspicious",)}[
        source
    ]
    ranges = {"orders": [(MAY.start, MAY.end)]} if source == "orders" else None
    ctes = [
        *flag_ctes(integrity, {source: names}, ranges),
        (flagged_table(source), flagged_source(integrity, source, names)),
    ]
    with_ = ", ".join(f'"{name}" AS ({query.sql("duckdb")})' for name, query in ctes)
    sql = f'WITH {with_} SELECT * FROM "{flagged_table(source)}"'
    key = schema.TABLES[source].key
    rows = con.execute(f"SELECT {key}, {', '.join(names)} FROM ({sql})").fetchall()
    return {r[0]: dict(zip(names, r[1:], strict=True)) for r in rows}


def brushing(con: duckdb.DuckDBPyConnection, integrity: Integrity | None = None) -> set[str]:
    return {k for k, v in flags(con, "orders", integrity).items() if v["brushing"]}


# --- brushing ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("last", "flagged"), [(59, True), (59.99, True), (60, False), (61, False)])
def test_three_orders_in_59_minutes_are_brushing_in_60_not(
    con: duckdb.DuckDBPyConnection, last: float, flagged: bool
) -> None:
    for i, minutes in enumerate((0, 30, last)):
        order(con, f"o{i}", minutes)
    assert brushing(con) == ({"o0", "o1", "o2"} if flagged else set())


def test_two_orders_are_no_run(con: duckdb.DuckDBPyConnection) -> None:
    order(con, "o0", 0)
    order(con, "o1", 1)
    order(con, "other-buyer", 2, buyer_id="b2")
    order(con, "other-shop", 3, shop_id="s2")
    assert brushing(con) == set()


def test_a_run_flags_all_its_orders_and_only_them(con: duckdb.DuckDBPyConnection) -> None:
    # 0, 40, 80, 100: runs (40, 80, 100) span 60 (not < 60); (0, 40, 80) spans 80: nothing but ...
    for i, minutes in enumerate((0, 40, 80, 100)):
        order(con, f"a{i}", minutes)
    assert brushing(con) == set()
    # ... one more order at 95 makes (80, 95, 100) span 20 and (40, 80, 95) span 55: 40, 80, 95 and 100
    order(con, "a4", 95)
    assert brushing(con) == {"a1", "a2", "a3", "a4"}


def test_ties_in_time_are_ordered_by_order_id(con: duckdb.DuckDBPyConnection) -> None:
    # three orders at the same second: a run of span 0; a fourth 70 minutes later is outside it
    for oid in ("t3", "t1", "t2"):
        order(con, oid, 0)
    order(con, "t4", 70)
    assert brushing(con) == {"t1", "t2", "t3"}


def test_a_refunded_order_counts_in_the_burst_a_closed_one_does_not(con: duckdb.DuckDBPyConnection) -> None:
    order(con, "r0", 0)
    order(con, "r1", 10, status="refunded", net_amount=0)
    order(con, "r2", 20)
    assert brushing(con) == {"r0", "r1", "r2"}
    con.execute("UPDATE orders SET status = 'closed' WHERE order_id = 'r1'")
    assert brushing(con) == set()  # two valid orders; the closed one is in no run


def test_orders_and_within_are_read_from_the_ruleset(con: duckdb.DuckDBPyConnection) -> None:
    for i, minutes in enumerate((0, 50, 100, 150)):
        order(con, f"w{i}", minutes)
    assert brushing(con) == set()
    assert brushing(con, Integrity(brushing_orders=2, brushing_within=51)) == {"w0", "w1", "w2", "w3"}
    assert brushing(con, Integrity(brushing_orders=4, brushing_within=151)) == {"w0", "w1", "w2", "w3"}
    assert brushing(con, Integrity(brushing_orders=4, brushing_within=150)) == set()


def test_a_burst_across_the_period_start_is_seen_whole(con: duckdb.DuckDBPyConnection) -> None:
    start = datetime(2023, 5, 1)
    for i, seconds in enumerate((-1200, -600, 60)):
        order(con, f"e{i}", 0, order_time=start + timedelta(seconds=seconds))
    assert brushing(con) == {"e0", "e1", "e2"}  # the May order e2 is flagged by April's orders


# --- self purchase, idle, suspicious --------------------------------------------------------------------


def test_self_purchase_is_a_distribution_order_of_its_own_promoter(con: duckdb.DuckDBPyConnection) -> None:
    order(con, "sp", 0, sale_mode="distribution", promoter_id="dr1", buyer_id="dr1")
    order(con, "self-mode", 100, sale_mode="self", promoter_id="dr1", buyer_id="dr1")  # not distribution
    order(con, "other", 200, sale_mode="distribution", promoter_id="dr1", buyer_id="u9")
    order(con, "no-promoter", 300, sale_mode="distribution", buyer_id="dr1")
    got = {k: v["self_purchase"] for k, v in flags(con, "orders").items()}
    assert got == {"sp": True, "self-mode": False, "other": False, "no-promoter": False}


@pytest.mark.parametrize(
    ("viewers", "minutes", "idle"),
    [(29, 180, True), (30, 180, False), (None, 180, False), (0, 0, False), (4, 30, True), (5, 30, False)],
)
def test_idle_sessions_have_fewer_than_10_viewers_an_hour(
    con: duckdb.DuckDBPyConnection, viewers: int | None, minutes: float, idle: bool
) -> None:
    con.execute(
        "INSERT INTO livestreams (live_id, shop_id, host_type, start_time, duration_minutes, viewers) "
        "VALUES ('l1', 's1', 'self', ?, ?, ?)",
        [T0, minutes, viewers],
    )
    assert flags(con, "livestreams") == {"l1": {"idle": idle}}


def test_reviews_of_brushing_orders_are_suspicious(con: duckdb.DuckDBPyConnection) -> None:
    for i, minutes in enumerate((0, 5, 10, 500)):
        order(con, f"o{i}", minutes)
    for rid, oid in (("v0", "o0"), ("v3", "o3"), ("v-missing", "gone")):
        con.execute(
            "INSERT INTO reviews (review_id, order_id, shop_id, quality_score, review_time) VALUES (?, ?, 's1', 5, ?)",
            [rid, oid, T0 + timedelta(days=3)],
        )
    got = {k: v["suspicious"] for k, v in flags(con, "reviews").items()}
    assert got == {"v0": True, "v3": False, "v-missing": False}


def test_a_review_the_export_marks_as_cheating_is_suspicious(con: duckdb.DuckDBPyConnection) -> None:
    order(con, "o0", 0)
    for rid, cheat in (("v-marked", True), ("v-clean", False), ("v-unknown", None)):
        con.execute(
            "INSERT INTO reviews (review_id, order_id, shop_id, quality_score, review_time, cheat) "
            "VALUES (?, 'o0', 's1', 5, ?, ?)",
            [rid, T0 + timedelta(days=3), cheat],
        )
    got = {k: v["suspicious"] for k, v in flags(con, "reviews").items()}
    assert got == {"v-marked": True, "v-clean": False, "v-unknown": False}


# --- the ruleset ---------------------------------------------------------------------------------------------

RULES = """\
version: 1
name: t
filters:
  clean: status not in ('pending', 'closed') and not brushing and not self_purchase
{integrity}
scorecards:
  m:
    key: shop_id
    metrics:
      gmv: {{from: orders, where: clean, value: sum(net_amount)}}
      all_gmv: {{from: orders, value: sum(net_amount)}}
      days: {{from: livestreams, where: not idle, value: count(*)}}
      reviews: {{from: reviews, where: not suspicious, value: count(*)}}
    scores:
      total: {{parts: [{{metric: gmv, weight: 1, normalize: {{linear: [0, 100]}}}}]}}
    rank_by: total
    gates:
      - {{id: g, when: days >= 8, reason: r}}
"""


def test_integrity_section_defaults_and_values() -> None:
    assert parse_ruleset(RULES.format(integrity=""), "r.yaml").integrity == Integrity()
    section = "integrity:\n  brushing: {orders: 4, within: 30}\n  idle: {min_viewers_per_hour: 5}\n"
    got = parse_ruleset(RULES.format(integrity=section), "r.yaml").integrity
    assert (got.brushing_orders, got.brushing_within, got.idle_min_viewers_per_hour) == (4, 30.0, 5.0)


@pytest.mark.parametrize(
    ("section", "message"),
    [
        ("integrity:\n  brushing: {orders: 1}", "r.yaml:6:22: brushing orders must be from 2 to 20"),
        ("integrity:\n  brushing: {within: 0}", "r.yaml:6:22: brushing within is minutes, more than 0"),
        ("integrity:\n  brushing: {within: 0.001}", "r.yaml:6:22: brushing within must be whole seconds"),
        ("integrity:\n  idle: {min_viewers_per_hour: -1}", "r.yaml:6:32: min_viewers_per_hour must be ≥ 0"),
        ("integrity:\n  bunching: {alpha: 2}", "r.yaml:6:21: bunching alpha must be more than 0"),
        ("integrity:\n  brushng: {orders: 3}", "r.yaml:6:3: unknown key 'brushng' in integrity"),
    ],
)
def test_integrity_section_errors_are_located(section: str, message: str) -> None:
    with pytest.raises(RulesetError) as info:
        parse_ruleset(RULES.format(integrity=section), "r.yaml")
    assert any(e.startswith(message) for e in info.value.errors), info.value.errors


def test_a_filter_cannot_take_a_flag_name_and_a_misspelt_flag_is_suggested() -> None:
    text = RULES.format(integrity="").replace("filters:\n", "filters:\n  idle: viewers < 1\n")
    with pytest.raises(RulesetError, match="filter 'idle' has the name of a column of livestreams"):
        parse_ruleset(text, "r.yaml")
    with pytest.raises(RulesetError, match="did you mean 'brushing'"):
        parse_ruleset(RULES.format(integrity="").replace("not brushing", "not brushng"), "r.yaml")


def test_a_ruleset_without_flags_pays_nothing_for_them() -> None:
    from chuanliu_cli.rules.compiler import compile_scorecard

    text = RULES.format(integrity="").replace("where: clean, ", "").replace("where: not idle, ", "")
    text = text.replace("where: not suspicious, ", "")
    sql = compile_scorecard(parse_ruleset(text, "r.yaml"), "m", MAY).sql
    assert "brushing_orders" not in sql and "LEAD(" not in sql and "viewers" not in sql
    sql = compile_scorecard(parse_ruleset(RULES.format(integrity=""), "r.yaml"), "m", MAY).sql
    # one CTE of the brushing orders' ids, joined to orders and reviews; the other flags are expressions
    assert sql.count('"brushing_orders" AS (') == 1 and sql.count('LEFT JOIN "brushing_orders"') >= 2
    assert '"viewers" * 60 <' in sql


def test_flagged_rows_leave_the_metrics_that_exclude_them(con: duckdb.DuckDBPyConnection) -> None:
    from chuanliu_cli.scoring.pipeline import score_period

    for i, minutes in enumerate((0, 5, 10)):
        order(con, f"b{i}", minutes)
    order(con, "fine", 500, net_amount=7)
    order(con, "sp", 900, sale_mode="distribution", promoter_id="dr1", buyer_id="dr1", net_amount=100)
    con.execute(
        "INSERT INTO livestreams (live_id, shop_id, host_type, start_time, duration_minutes, viewers) "
        "VALUES ('idle', 's1', 'self', ?, 60, 1), ('busy', 's1', 'self', ?, 60, 100)",
        [T0, T0 + timedelta(days=1)],
    )
    con.execute(
        "INSERT INTO reviews (review_id, order_id, shop_id, quality_score, review_time) "
        "VALUES ('v1', 'b1', 's1', 5, ?), ('v2', 'fine', 's1', 5, ?)",
        [T0 + timedelta(days=2), T0 + timedelta(days=2)],
    )
    run = score_period(con, parse_ruleset(RULES.format(integrity=""), "r.yaml"), MAY)
    row = run.scorecards["m"].frame.row(0, named=True)
    assert (row["gmv"], row["all_gmv"], row["days"], row["reviews"]) == (7.0, 137.0, 1.0, 1.0)


# --- bunching ------------------------------------------------------------------------------------------------


def test_binomial_tail_by_hand() -> None:
    # P(X >= 8 | n = 10, p = 1/2) = (C(10,8) + C(10,9) + C(10,10)) / 2^10 = (45 + 10 + 1) / 1024
    assert binomial_tail(8, 10) == 56 / 1024
    assert binomial_tail(10, 10) == 1 / 1024
    assert binomial_tail(0, 10) == 1.0 and binomial_tail(11, 10) == 0.0 and binomial_tail(0, 0) == 1.0
    assert binomial_tail(3, 4) == 5 / 16
    # log-space above n = 2000 agrees with the exact sum
    exact = float(Fraction(sum(__import__("math").comb(2001, i) for i in range(1050, 2002)), 2**2001))
    assert binomial_tail(1050, 2001) == pytest.approx(exact, rel=1e-10)


def test_bunching_counts_each_side_of_the_line() -> None:
    import polars as pl

    from chuanliu_cli.scoring.pipeline import ScorecardResult

    ruleset = parse_ruleset(RULES.format(integrity=""), "r.yaml")
    sc = ruleset.scorecard("m")
    days = [8.0] * 10 + [7.0, 9.0, 12.0, None]
    frame = pl.DataFrame(
        {"shop_id": [f"s{i}" for i in range(len(days))], "days": days, "eligible": [True] * len(days)}
    )
    (found,) = bunching(ScorecardResult(sc, MAY, frame, None), ruleset.integrity)
    assert (found.rule, found.metric, found.window, found.passing, found.failing) == (
        "gate g",
        "days",
        1.0,
        10,
        1,
    )
    assert found.p_value == 12 / 2048 and found.flagged  # (C(11,10) + C(11,11)) / 2^11 < 0.01
    frame = frame.with_columns(pl.Series("days", [8.0] * 9 + [7.0] + [6.0, 9.0, 12.0, None]))
    (found,) = bunching(ScorecardResult(sc, MAY, frame, None), ruleset.integrity)
    # 9 just passing, 7.0 just failing; 6.0 is outside [7, 8): (C(10,9) + C(10,10)) / 2^10 = 11/1024 ≥ 0.01
    assert (found.passing, found.failing, found.p_value, found.flagged) == (9, 1, 11 / 1024, False)


def test_a_threshold_of_zero_is_tested_in_the_metric_s_smallest_step() -> None:
    """SPEC §11: the window is 5 % of |t|, at least the metric's smallest step. The step counted only for
    whole numbers, so `self_live_gmv > 0` (amounts) got a window of 0, was never tested, and the report
    said "no sign of bunching"."""
    import polars as pl

    from chuanliu_cli.scoring.allocation import round_micro
    from chuanliu_cli.scoring.integrity import smallest_step
    from chuanliu_cli.scoring.pipeline import ScorecardResult

    assert smallest_step([round_micro(v) for v in (3.0, 8.0, 0.0)]) == 1.0
    assert smallest_step([round_micro(v) for v in (12.5, 100.37, 0.0)]) == 0.01
    assert smallest_step([round_micro(v) for v in (4.123456, 1.0)]) == 0.000001
    assert smallest_step([]) == 0.0
    ruleset = parse_ruleset(RULES.format(integrity="").replace("days >= 8", "gmv > 0"), "r.yaml")
    sc = ruleset.scorecard("m")
    gmv = [0.0] * 5 + [0.01] * 2 + [12.5, 100.37, None]
    frame = pl.DataFrame({"shop_id": [f"s{i}" for i in range(len(gmv))], "gmv": gmv, "eligible": [True] * 10})
    (found,) = bunching(ScorecardResult(sc, MAY, frame, None), ruleset.integrity)
    assert (found.metric, found.op, found.threshold, found.window) == ("gmv", ">", 0.0, 0.01)
    assert (found.passing, found.failing, found.p_value) == (2, 5, binomial_tail(2, 7))


def test_a_threshold_nobody_is_near_is_said_not_tested() -> None:
    import polars as pl

    from chuanliu_cli.present.integrity_report import bunching_chart
    from chuanliu_cli.scoring.pipeline import ScorecardResult

    ruleset = parse_ruleset(RULES.format(integrity=""), "r.yaml")
    sc = ruleset.scorecard("m")
    frame = pl.DataFrame({"shop_id": ["a", "b"], "days": [1.0, 30.0], "eligible": [True, True]})
    res = ScorecardResult(sc, MAY, frame, None)
    (found,) = bunching(res, ruleset.integrity)
    assert found.p_value is None and not found.flagged
    assert "not tested: nobody within the window" in bunching_chart(res, found)
    # the `integrity` table says it in the same words (one verdict for both)
    import io

    from rich.console import Console

    from chuanliu_cli.present.integrity import render_integrity
    from chuanliu_cli.scoring.integrity import IntegrityResult

    console = Console(file=io.StringIO(), width=300, color_system=None)
    render_integrity(
        console, IntegrityResult(ruleset, MAY, "m", "shop_id", (), frame.head(0), (found,), None)
    )
    assert "not tested: nobody within the window" in console.file.getvalue()  # type: ignore[attr-defined]


def test_bins_are_counted_in_millionths_on_the_threshold_s_side() -> None:
    """The bunching chart's bins are the test's sides: [a, b), or (a, b] for `>` and `<=` (a shop at 0
    fails `self_live_gmv > 0`: its bar was drawn right of the line). Values are placed in millionths:
    0.7 of [0, 1) in ten bins is in the eighth bin, not (by a float's last bit) the seventh."""
    import polars as pl

    from chuanliu_cli.present.charts import bin_counts

    values = pl.Series([-0.01, 0.0, 0.01, 0.02, None, float("nan"), 9.0, -9.0])
    left, out = bin_counts(values, -0.04, 0.04, 8)
    assert (left, out) == ([1, 0, 0, 1, 1, 1, 1, 1], 2)  # [-.04, -.03) … [.03, .04]; ±9 at the ends
    right, _ = bin_counts(values, -0.04, 0.04, 8, right_closed=True)
    assert right == [1, 0, 1, 1, 1, 1, 0, 1]  # (-.02, -.01] holds -0.01, (-.01, 0] holds 0
    assert bin_counts(pl.Series([0.7, 0.3, 1.0, 0.0]), 0.0, 1.0, 10)[0] == [1, 0, 0, 1, 0, 0, 0, 1, 0, 1]


# --- the planted sample, the command and explain ----------------------------------------------------------


@pytest.fixture(scope="module")
def sample_session() -> Iterator[Any]:
    """The checked-in sample, loaded once for the module."""
    from chuanliu_cli.api import Session

    with Session(data=REPO / "sample_data") as s:
        yield s


@pytest.fixture(scope="module")
def sample_report(sample_session: Any) -> Any:
    return sample_session.integrity("2023-05", rows=True), sample_session.integrity("2023-04", rows=True)


def test_every_planted_case_is_found_and_nothing_else(sample_report: Any) -> None:
    may, april = sample_report
    found = {(r["flag"], r["shop_id"]) for r in may.rows.iter_rows(named=True)}
    assert found == {
        ("brushing", "ks700041"),
        ("suspicious", "ks700041"),
        ("self_purchase", "ks700046"),
        ("idle", "ks700004"),
    }
    counts = {f.flag: f.rows for f in may.flags}
    assert counts == {"brushing": 7, "self_purchase": 3, "suspicious": 7, "idle": 6}
    (promoter,) = {r["promoter_id"] for r in may.rows.iter_rows(named=True) if r["flag"] == "self_purchase"}
    assert {r["buyer_id"] for r in may.rows.iter_rows(named=True) if r["flag"] == "self_purchase"} == {
        promoter
    }
    assert [b.rule + " " + b.metric for b in may.bunching if b.flagged] == ["gate stable_live live_days"]
    assert april.rows.height == 0 and not any(b.flagged for b in april.bunching)
    assert may.entities["key"].to_list()[:2] == ["ks700004", "ks700041"]


def test_integrity_command_json_and_rows(cli: Callable[..., Any], tmp_path: Path) -> None:
    result = cli("integrity", "--month", "2023-05", "--data", str(REPO / "sample_data"), "--format", "json")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert {f["flag"]: f["excluded"] for f in doc["flags"]} == dict.fromkeys(
        ("brushing", "self_purchase", "suspicious", "idle"), True
    )
    assert "rows" not in doc and doc["bunching"][1]["flagged"]
    assert (doc["flags"][0]["flag"], doc["flags"][0]["amount"]) == (
        "brushing",
        419.3,
    )  # 7 × 59.90, to the cent
    out = tmp_path / "rows.csv"
    result = cli(
        "integrity", "--month", "2023-05", "--data", str(REPO / "sample_data"), "--rows", "-o", str(out)
    )
    assert result.exit_code == 0, result.output
    lines = out.read_text(encoding="utf-8").splitlines()
    assert lines[0] == "flag,table,key,shop_id,promoter_id,buyer_id,time,amount" and len(lines) == 1 + 23


def test_explain_shows_the_entitys_excluded_rows(cli: Callable[..., Any]) -> None:
    args = ("explain", "ks700041", "--month", "2023-05", "--data", str(REPO / "sample_data"))
    result = cli(*args)
    assert result.exit_code == 0, result.output
    assert (
        "Integrity: 7 brushing orders (GMV 419.30) excluded; 7 suspicious reviews excluded." in result.stdout
    )
    result = cli(
        "explain", "ks700001", "--month", "2023-05", "--data", str(REPO / "sample_data"), "--format", "json"
    )
    flags = json.loads(result.stdout)["integrity"]
    assert flags["orders"] > 0 and flags["flagged_orders"] == flags["idle_sessions"] == 0


def test_explain_result_holds_the_flags(sample_session: Any) -> None:
    from chuanliu_cli.present.documents import explanation_document

    ex = sample_session.explain("ks700041", "2023-05").explanation
    assert ex.integrity is not None
    assert (ex.integrity["brushing_orders"], ex.integrity["brushing_gmv"]) == (7, 419.3)
    rows = [r for r in explanation_document(ex).rows if r["section"] == "integrity"]
    assert {r["name"]: r["value"] for r in rows}["suspicious_reviews"] == 7


def test_period_start_margin_is_whole_days() -> None:
    from chuanliu_cli.rules.integrity import _widened

    assert _widened(Integrity(), [(date(2023, 5, 1), date(2023, 6, 1))]) == [
        (date(2023, 4, 30), date(2023, 6, 2))
    ]


@pytest.mark.parametrize("seed", range(4))
def test_brushing_matches_a_brute_force_over_random_orders(con: duckdb.DuckDBPyConnection, seed: int) -> None:
    """The candidate buckets leave the flags exact: random bursty orders against the definition itself."""
    import random

    rng = random.Random(seed)
    integrity = Integrity(brushing_orders=rng.choice((2, 3, 4)), brushing_within=rng.choice((7.5, 30, 60)))
    rows = []
    for i in range(300):
        shop, buyer = f"s{rng.randrange(3)}", f"b{rng.randrange(6)}"
        minutes = rng.choice((rng.uniform(0, 20000), rng.uniform(0, 200), round(rng.uniform(0, 100))))
        status = rng.choice(("completed",) * 6 + ("refunded", "closed", "pending"))
        rows.append((f"x{i:03d}", shop, buyer, minutes, status))
        order(con, f"x{i:03d}", minutes, shop_id=shop, buyer_id=buyer, status=status)
    expected: set[str] = set()
    k, within = integrity.brushing_orders, timedelta(minutes=integrity.brushing_within)
    for pair in {(r[1], r[2]) for r in rows}:
        valid = sorted(
            (T0 + timedelta(minutes=r[3]), r[0])
            for r in rows
            if (r[1], r[2]) == pair and r[4] not in ("pending", "closed")
        )
        for j in range(len(valid) - k + 1):
            if valid[j + k - 1][0] - valid[j][0] < within:
                expected |= {oid for _t, oid in valid[j : j + k]}
    assert brushing(con, integrity) == expected


def test_report_section_has_the_flags_and_a_chart_per_threshold(
    sample_session: Any, sample_report: Any
) -> None:
    from chuanliu_cli.present.integrity_report import integrity_section

    may, _april = sample_report
    res = sample_session.eligible("2023-05").result
    html = integrity_section(may, res)
    assert html.count("<figure") == len(may.bunching) == 9
    assert html.count('class="bunching flagged"') == 1
    assert "gate stable_live: live_days &gt;= 8 · 10 just passing vs 0 just failing" in html
    assert "<script" not in html and html.count("<svg") == 10  # the flag bars and the 9 charts


def test_one_entitys_flags_are_those_of_the_whole_report(sample_session: Any) -> None:
    """explain computes brushing over the entity's shops only: the same counts as over everyone."""
    from chuanliu_cli.engines.duckdb import as_engine
    from chuanliu_cli.scoring.integrity import entity_flags

    with sample_session._source() as source:
        for key, value in (("shop_id", "ks700041"), ("promoter_id", "dr55115817"), ("shop_id", "ks700001")):
            one = entity_flags(as_engine(source), Integrity(), MAY, key, [value])
            everyone = entity_flags(as_engine(source), Integrity(), MAY, key, None)
            mine = everyone.filter(everyone["key"] == value)
            assert one.height == 1 and (mine.height == 0 or one.equals(mine)), (key, value)
            assert mine.height == (value != "ks700001")


def test_an_exports_cheat_column_is_read_with_its_chinese_header(tmp_path: Path) -> None:
    from chuanliu_cli.ingest.loader import LoadOptions, discover, load_files
    from chuanliu_cli.store.database import open_database

    folder = tmp_path / "exports"
    folder.mkdir()
    (folder / "orders.csv").write_text(
        "订单号,店铺ID,买家ID,订单类型,下单时间,实付金额,订单状态\no1,s1,b1,普通订单,2023-05-02 10:00:00,10,交易成功\n",
        encoding="gb18030",
    )
    (folder / "评价.csv").write_text(
        "评价ID,订单号,店铺ID,商品质量评分,评价时间,是否作弊\n"
        "r1,o1,s1,5,2023-05-03 10:00:00,是\nr2,o1,s1,4,2023-05-03 11:00:00,否\nr3,o1,s1,4,2023-05-03 12:00:00,\n",
        encoding="gb18030",
    )
    db = str(tmp_path / "db.duckdb")
    with open_database(db, "write") as handle:
        load_files(handle, discover(folder), LoadOptions())
        rows = handle.con.execute("SELECT review_id, cheat FROM reviews ORDER BY review_id").fetchall()
    assert rows == [("r1", True), ("r2", False), ("r3", False)]


def test_the_remembered_entity_query_is_the_built_one_with_the_keys_written_in(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """explain's flag line reads its SQL from the rules cache with the keys put in as literals: the same
    text entity_query builds for those keys (quotes and all), on a miss and on a hit."""
    from chuanliu_cli.rules import cache
    from chuanliu_cli.scoring.flagcounts import entity_sql, entity_tables
    from chuanliu_cli.scoring.integrity import entity_query

    monkeypatch.setattr(cache, "directory", lambda: tmp_path)
    for key in ("shop_id", "promoter_id", "item_id"):
        for table in entity_tables(key):
            for keys in (["ks700041"], ["it's", "a'b''c", "普通"], [], None):
                for marks in (False, True):
                    built = entity_query(Integrity(), MAY, key, table, "duckdb", keys, marks)
                    for _ in ("miss", "hit"):
                        got = entity_sql(Integrity(), MAY, key, table, "duckdb", keys, marks)
                        assert got == built, (key, table, keys, marks)
    assert len(list(tmp_path.glob("entity-sql-*.pickle"))) > 0


def test_explain_flags_counts_an_entitys_rows_with_a_quote_in_its_key(sample_session: Any) -> None:
    from chuanliu_cli.engines.duckdb import as_engine
    from chuanliu_cli.scoring.flagcounts import explain_flags
    from chuanliu_cli.scoring.integrity import entity_flags

    ruleset = sample_session.eligible("2023-05").run.ruleset
    with sample_session._source() as source:
        engine = as_engine(source)
        found = explain_flags(engine, ruleset, MAY, "shop_id", "ks700041")
        assert found is not None and found["brushing_orders"] > 0
        assert found["excluded"] == ["brushing", "idle", "self_purchase", "suspicious"]
        everyone = entity_flags(engine, Integrity(), MAY, "shop_id", None)
        mine = everyone.filter(everyone["key"] == "ks700041").row(0, named=True)
        assert found["brushing_orders"] == mine["brushing_orders"]
        assert explain_flags(engine, ruleset, MAY, "shop_id", "no'such") == {
            **{k: 0 for k in found if k not in ("excluded",) and not k.endswith("gmv")},
            **{k: 0.0 for k in found if k.endswith("gmv")},
            "excluded": found["excluded"],
        }


def test_flagged_rows_are_shown_as_they_are_never_as_markup() -> None:
    """The `--rows` table: a buyer id holding `[red]…[/red]` or `[b]` is shown as written (Rich read such
    text cells as markup and dropped the brackets)."""
    import io
    from datetime import datetime

    import polars as pl
    from rich.console import Console

    from chuanliu_cli.present.integrity import render_integrity
    from chuanliu_cli.scoring.integrity import IntegrityResult

    ruleset = parse_ruleset(RULES.format(integrity=""), "r.yaml")
    rows = pl.DataFrame(
        {
            "flag": ["brushing", "brushing"],
            "table": ["orders", "orders"],
            "key": ["o1", "o2"],
            "shop_id": ["s1", "s1"],
            "promoter_id": [None, None],
            "buyer_id": ["[red]b1[/red]", "[b]"],
            "time": [datetime(2023, 5, 1, 10), datetime(2023, 5, 1, 10, 5)],
            "amount": [12.5, 1234.0],
        },
        schema_overrides={"promoter_id": pl.Utf8},
    )
    frame = pl.DataFrame({"shop_id": ["s1"]})
    console = Console(file=io.StringIO(), width=300, color_system=None)
    render_integrity(console, IntegrityResult(ruleset, MAY, "m", "shop_id", (), frame.head(0), (), rows))
    shown = console.file.getvalue()  # type: ignore[attr-defined]
    assert "[red]b1[/red]" in shown and "[b]" in shown and "1,234.00" in shown
