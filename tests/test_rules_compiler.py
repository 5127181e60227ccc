"""Compiled metric SQL: golden files, window boundaries and metric semantics on a tiny DuckDB; rules check."""

from __future__ import annotations

import itertools
import os
import textwrap
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pytest

from chuanliu_cli import schema
from chuanliu_cli.errors import RulesetError, UsageError
from chuanliu_cli.periods import Period, month_period, parse_period, week_period
from chuanliu_cli.rules.compiler import (
    compile_metrics,
    compile_ruleset,
    compile_scorecard,
    scorecard_table,
    window_bounds,
)
from chuanliu_cli.rules.model import Ruleset, Window
from chuanliu_cli.rules.parser import default_ruleset_path, load_ruleset, parse_ruleset
from chuanliu_cli.rules.validate import check_ruleset_against_schema

GOLDEN = Path(__file__).resolve().parent / "golden"
MAY = month_period(2023, 5)
W18 = week_period(date(2023, 5, 1))  # Monday 2023-05-01 .. Sunday 2023-05-07
TICK = timedelta(microseconds=1)

DEFAULTS: dict[str, dict[str, Any]] = {
    "orders": {
        "shop_id": "s1",
        "buyer_id": "b1",
        "sale_mode": "self",
        "carrier": "live",
        "order_time": datetime(2023, 5, 10, 12),
        "paid_amount": 100,
        "refund_amount": 0,
        "net_amount": 100,
        "quality_return": False,
        "status": "paid",
        "quantity": 1,
    },
    "reviews": {
        "order_id": "o-none",
        "shop_id": "s1",
        "quality_score": 5,
        "review_time": datetime(2023, 5, 10, 12),
        "complaint": False,
    },
    "livestreams": {
        "shop_id": "s1",
        "host_type": "self",
        "start_time": datetime(2023, 5, 10, 20),
        "duration_minutes": 60,
    },
    "shops": {},
}
_ids = itertools.count(1)


@pytest.fixture(scope="module")
def default() -> Ruleset:
    return load_ruleset(default_ruleset_path())


@pytest.fixture
def con() -> Iterator[duckdb.DuckDBPyConnection]:
    """An in-memory database with the canonical tables, empty."""
    connection = duckdb.connect(":memory:")
    for table in schema.TABLES.values():
        connection.execute(schema.table_ddl(table))
    yield connection
    connection.close()


def add(con: duckdb.DuckDBPyConnection, table: str, **values: Any) -> None:
    """Insert one row, defaults filled in and a fresh primary key unless given."""
    row = {**DEFAULTS[table], **values}
    row.setdefault(schema.TABLES[table].key, f"{table}-{next(_ids)}")
    names = ", ".join(f'"{name}"' for name in row)
    marks = ", ".join("?" for _ in row)
    con.execute(f'INSERT INTO "{table}" ({names}) VALUES ({marks})', list(row.values()))


def results(
    con: duckdb.DuckDBPyConnection, ruleset: Ruleset, scorecard: str, period: Period
) -> dict[str, dict[str, Any]]:
    """Run the compiled query: {key: {metric: value}}, by key (the query's rows come in no set order;
    scoring sorts them)."""
    query = compile_scorecard(ruleset, scorecard, period)
    cursor = con.execute(query.sql)
    assert [d[0] for d in cursor.description] == list(query.columns)
    rows = sorted(cursor.fetchall(), key=lambda row: row[0])
    return {row[0]: dict(zip(query.columns[1:], row[1:], strict=True)) for row in rows}


def ruleset(metrics: str, *, period: str = "month", key: str = "shop_id", extra: str = "") -> Ruleset:
    """A one-scorecard ruleset with the given metrics (YAML, any indentation)."""
    text = (
        f"version: 1\nname: t\nperiod: {period}\n"
        "filters:\n  valid_order: status not in ('pending', 'closed')\n"
        f"scorecards:\n{textwrap.indent(textwrap.dedent(extra), '  ')}"
        f"  merchant:\n    key: {key}\n    rank_by: n\n    metrics:\n"
        + textwrap.indent(textwrap.dedent(metrics), "      ")
    )
    return parse_ruleset(text, "t.yaml")


# -- golden files ------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["merchant", "promoter", "product"])
def test_default_ruleset_sql_matches_golden_file(default: Ruleset, name: str) -> None:
    """Regenerate with CHUANLIU_UPDATE_GOLDEN=1 after an intended change, and review the diff."""
    sql = compile_scorecard(default, name, MAY).sql + "\n"
    path = GOLDEN / f"{name}_2023-05.sql"
    if os.environ.get("CHUANLIU_UPDATE_GOLDEN") == "1":
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(sql, encoding="utf-8")
    assert path.read_text(encoding="utf-8") == sql


def test_compiled_query_shape(default: Ruleset) -> None:
    queries = compile_ruleset(default, MAY)
    assert list(queries) == ["merchant", "promoter", "product"]
    merchant = queries["merchant"]
    assert merchant.key == "shop_id"
    assert merchant.columns == ("shop_id", *(m.name for m in default.scorecard("merchant").metrics))
    # One grouped scan per source; orders twice more for the conversion: its narrow step (this month's
    # live-room orders) grouped by (shop, buyer), then the wide step's rows joined to those pairs only.
    # The default ruleset excludes flagged rows (SPEC §11): each scan reads its source with the flags it
    # needs, and orders are read twice more for the brushing orders (rules/integrity.brushing_ctes).
    assert merchant.sql.count('FROM "livestreams"') == 1
    assert merchant.sql.count('FROM "reviews"') == 1
    assert merchant.sql.count('FROM "orders"') == 5
    assert merchant.sql.count('"brushing_orders" AS (') == 1
    assert '"conv_converted_buyers_then" AS' in merchant.sql
    assert 'JOIN "conv_converted_buyers_then"' in merchant.sql
    assert "reviews_filled" not in merchant.sql  # the merchant key is the review's own shop_id
    assert "reviews_filled" in queries["promoter"].sql and "reviews_filled" in queries["product"].sql
    assert compile_scorecard(default, "merchant", MAY).sql == merchant.sql  # deterministic


def test_spark_rendering_uses_no_duckdb_only_syntax(default: Ruleset) -> None:
    sql = compile_scorecard(default, "merchant", MAY, dialect="spark").sql
    assert "FILTER(WHERE" in sql and "`orders`.`net_amount`" in sql and "NULLIF(" in sql
    assert "::" not in sql and '"' not in sql


def test_period_kind_must_match_the_ruleset(default: Ruleset) -> None:
    with pytest.raises(UsageError):
        compile_scorecard(default, "merchant", W18)


# -- windows -----------------------------------------------------------------------------------------

END_OF = {  # the last instant of a day, as stored (microsecond timestamps)
    d: datetime.combine(d, datetime.min.time()) + timedelta(days=1) - TICK
    for d in (date(2023, 5, 31), date(2023, 4, 30), date(2023, 5, 7))
}

WINDOWS = [
    # (period kind, window, first instant inside, last instant inside)
    ("month", "period", datetime(2023, 5, 1), END_OF[date(2023, 5, 31)]),
    ("month", "previous", datetime(2023, 4, 1), END_OF[date(2023, 4, 30)]),
    ("month", "90d", datetime(2023, 3, 3), END_OF[date(2023, 5, 31)]),
    ("month", "3m", datetime(2023, 3, 1), END_OF[date(2023, 5, 31)]),
    ("month", "1m", datetime(2023, 5, 1), END_OF[date(2023, 5, 31)]),
    ("week", "period", datetime(2023, 5, 1), END_OF[date(2023, 5, 7)]),
    ("week", "previous", datetime(2023, 4, 24), END_OF[date(2023, 4, 30)]),
    ("week", "2w", datetime(2023, 4, 24), END_OF[date(2023, 5, 7)]),
    ("week", "10d", datetime(2023, 4, 28), END_OF[date(2023, 5, 7)]),
]


@pytest.mark.parametrize(
    ("kind", "window", "first", "last"), WINDOWS, ids=[f"{k}-{w}" for k, w, *_ in WINDOWS]
)
def test_window_boundaries(
    con: duckdb.DuckDBPyConnection, kind: str, window: str, first: datetime, last: datetime
) -> None:
    period = MAY if kind == "month" else W18
    rules = ruleset(f"n:\n  from: orders\n  window: {window}\n  value: count(*)\n", period=kind)
    for when in (first - TICK, first, last, last + TICK):
        add(con, "orders", order_time=when)
    assert results(con, rules, "merchant", period) == {"s1": {"n": 2.0}}
    bounds = window_bounds(rules.scorecard("merchant").metrics[0].window, period)  # type: ignore[union-attr]
    assert bounds == (first.date(), (last + TICK).date())


def test_windows_of_one_scan_each_filter_their_own_rows(con: duckdb.DuckDBPyConnection) -> None:
    """Several windows on one source share a scan; each metric still sees only its window."""
    metrics = "".join(
        f"{name}:\n  from: orders\n  window: {w}\n  value: count(*)\n"
        for name, w in (("n", "period"), ("prev", "previous"), ("d90", "90d"), ("m3", "3m"))
    )
    rules = ruleset(metrics)
    for _kind, _window, first, last in WINDOWS[:4]:
        for when in (first - TICK, first, last, last + TICK):
            add(con, "orders", order_time=when)
    # 16 rows at 2023-02-28T23:59:59.999999 .. 2023-06-01T00:00:00 (see WINDOWS); counted per window:
    got = results(con, rules, "merchant", MAY)["s1"]
    assert got == {"n": 5.0, "prev": 3.0, "d90": 10.0, "m3": 12.0}


def test_window_bounds_for_weeks_and_months() -> None:
    assert window_bounds(Window("periods", 3, "3m"), MAY) == (date(2023, 3, 1), date(2023, 6, 1))
    assert window_bounds(Window("days", 90, "90d"), MAY) == (date(2023, 3, 3), date(2023, 6, 1))
    assert window_bounds(Window("previous", 1, "previous"), W18) == (date(2023, 4, 24), date(2023, 5, 1))


# -- semantics ---------------------------------------------------------------------------------------


def test_population_is_every_key_of_any_scan_once(con: duckdb.DuckDBPyConnection) -> None:
    """Three scans joined on the key (FULL OUTER JOINs, each on the keys seen so far): every key found by
    any of them is one row, with each scan's values, whichever scans found it."""
    rules = ruleset(
        """\
        n:
          from: orders
          value: count(*)
        reviews:
          from: reviews
          value: count(*)
        lives:
          from: livestreams
          value: count(*)
        """
    )
    for shop, tables in {
        "a": ("orders",),
        "b": ("reviews", "livestreams"),
        "c": ("livestreams",),
        "d": ("orders", "reviews", "livestreams"),
        "e": ("reviews",),
        "f": ("orders", "livestreams"),
    }.items():
        for table in tables:
            add(con, table, shop_id=shop)
    sql = compile_scorecard(rules, "merchant", MAY).sql
    assert sql.count("FULL OUTER JOIN") == 2 and "UNION" not in sql
    got = {k: (v["n"], v["reviews"], v["lives"]) for k, v in results(con, rules, "merchant", MAY).items()}
    assert got == {
        "a": (1, 0, 0),
        "b": (0, 1, 1),
        "c": (0, 0, 1),
        "d": (1, 1, 1),
        "e": (0, 1, 0),
        "f": (1, 0, 1),
    }


def test_population_counts_and_nulls(con: duckdb.DuckDBPyConnection) -> None:
    rules = ruleset(
        """\
        n:
          from: orders
          where: valid_order
          value: count(*)
        gmv:
          from: orders
          where: valid_order
          value: sum(net_amount)
        avg_paid:
          from: orders
          where: valid_order
          value: avg(paid_amount)
        per_order:
          from: orders
          where: valid_order
          value: sum(net_amount) / count(*)
        lives:
          from: livestreams
          value: count(*)
        share:
          formula: gmv / nullif(gmv + n, 0)
        ratio:
          formula: gmv / n
        twice:
          formula: ratio * 2
        """
    )
    add(con, "orders", shop_id="s1", net_amount=30, paid_amount=40)
    add(con, "orders", shop_id="s1", net_amount=10, paid_amount=20)
    add(con, "orders", shop_id="s2", status="closed")  # exists (in the window) but counts nothing
    add(con, "orders", shop_id=None)  # no key: nobody
    add(con, "orders", shop_id="s9", order_time=datetime(2023, 4, 30))  # outside every window: nobody
    add(con, "livestreams", shop_id="s3")  # only live sessions
    got = results(con, rules, "merchant", MAY)
    assert list(got) == ["s1", "s2", "s3"]  # ordered by key
    assert got["s1"] == {
        "n": 2.0,
        "gmv": 40.0,
        "avg_paid": 30.0,
        "per_order": 20.0,
        "lives": 0.0,
        "share": 40 / 42,
        "ratio": 20.0,
        "twice": 40.0,
    }
    # count/sum over no rows are 0; avg and ratios over no rows are NULL; x / 0 is NULL
    assert got["s2"] == {
        "n": 0.0,
        "gmv": 0.0,
        "avg_paid": None,
        "per_order": None,
        "lives": 0.0,
        "share": None,
        "ratio": None,
        "twice": None,
    }
    assert got["s3"]["n"] == 0.0 and got["s3"]["avg_paid"] is None and got["s3"]["lives"] == 1.0


def test_reviews_take_promoter_and_item_from_their_order(con: duckdb.DuckDBPyConnection) -> None:
    rules = ruleset(
        "n:\n  from: reviews\n  value: count(*)\nq:\n  from: reviews\n  value: avg(quality_score)\n",
        key="promoter_id",
    )
    add(con, "orders", order_id="o1", promoter_id="p1", item_id="i1")
    add(con, "reviews", order_id="o1", quality_score=4)  # promoter filled from o1
    add(con, "reviews", order_id="o1", promoter_id="p2", quality_score=2)  # its own promoter wins
    add(con, "reviews", order_id="missing", quality_score=1)  # no order, no promoter: nobody
    assert results(con, rules, "merchant", MAY) == {"p1": {"n": 1.0, "q": 4.0}, "p2": {"n": 1.0, "q": 2.0}}


def test_reviews_fill_only_the_columns_the_scorecard_reads(con: duckdb.DuckDBPyConnection) -> None:
    """A review is joined to its order only for the key columns the query reads: by item, a review that
    names its item but no promoter (a self order's) is read as it is; a metric that reads promoter_id fills
    it too. The values are those of filling both."""
    add(con, "orders", order_id="o1", promoter_id="p1", item_id="i1")
    add(con, "orders", order_id="o2", item_id="i2")
    add(con, "reviews", order_id="o1", quality_score=4)  # item and promoter from o1
    add(con, "reviews", order_id="o2", item_id="i2", quality_score=2)  # a self order's review: no promoter
    add(con, "reviews", order_id="o1", item_id="i2", quality_score=1)  # its own item wins
    by_item = ruleset("n:\n  from: reviews\n  value: count(*)\n", key="item_id")
    via_promoter = ruleset(
        "n:\n  from: reviews\n  value: count(*)\nm:\n  from: reviews\n  where: promoter_id = 'p1'\n"
        "  value: count(*)\n",
        key="item_id",
    )
    sql = compile_scorecard(by_item, "merchant", MAY).sql
    assert 'COALESCE("r"."item_id", "o"."item_id")' in sql
    assert 'COALESCE("r"."promoter_id"' not in sql and '"r"."promoter_id" IS NULL' not in sql
    assert results(con, by_item, "merchant", MAY) == {"i1": {"n": 1.0}, "i2": {"n": 2.0}}
    sql = compile_scorecard(via_promoter, "merchant", MAY).sql
    assert 'COALESCE("r"."promoter_id", "o"."promoter_id")' in sql
    assert results(con, via_promoter, "merchant", MAY) == {
        "i1": {"n": 1.0, "m": 1.0},
        "i2": {"n": 2.0, "m": 1.0},
    }


def test_earlier_scorecard_results_join_on_their_key(con: duckdb.DuckDBPyConnection) -> None:
    rules = parse_ruleset(
        textwrap.dedent("""\
        version: 1
        name: t
        scorecards:
          merchant:
            key: shop_id
            rank_by: n
            metrics:
              n: {from: orders, value: count(*)}
          promoter:
            key: promoter_id
            rank_by: carried
            metrics:
              carried: {from: orders, where: merchant.eligible and merchant.total > 10, value: sum(net_amount)}
        """),
        "t.yaml",
    )
    con.execute(
        f'CREATE TABLE "{scorecard_table("merchant")}" (shop_id VARCHAR, eligible BOOLEAN, tier VARCHAR, total DOUBLE)'
    )
    con.execute(
        f'INSERT INTO "{scorecard_table("merchant")}" VALUES (?, ?, ?, ?), (?, ?, ?, ?)',
        ["s1", True, "A", 50.0, "s2", False, None, 80.0],
    )
    add(con, "orders", shop_id="s1", promoter_id="p1", net_amount=5)
    add(con, "orders", shop_id="s2", promoter_id="p1", net_amount=7)  # merchant not eligible
    add(con, "orders", shop_id="s3", promoter_id="p2", net_amount=9)  # merchant not scored at all
    assert results(con, rules, "promoter", MAY) == {"p1": {"carried": 5.0}, "p2": {"carried": 0.0}}


@pytest.mark.parametrize(("after", "expected"), [(True, 1.0), (False, 2.0)])
def test_conversion_counts_buyers_seen_first_then_later(
    con: duckdb.DuckDBPyConnection, after: bool, expected: float
) -> None:
    rules = ruleset(
        f"""\
        n:
          conversion:
            key: buyer_id
            first: {{from: orders, where: "sale_mode = 'distribution'", window: 90d}}
            then: {{from: orders, where: "sale_mode = 'self'", window: period}}
            after: {str(after).lower()}
        """
    )
    distribution = {"sale_mode": "distribution"}
    add(con, "orders", buyer_id="b1", order_time=datetime(2023, 3, 20), **distribution)
    add(con, "orders", buyer_id="b1", order_time=datetime(2023, 5, 2))  # converted
    add(con, "orders", buyer_id="b2", order_time=datetime(2023, 5, 2))  # self first ...
    add(
        con, "orders", buyer_id="b2", order_time=datetime(2023, 5, 3), **distribution
    )  # ... then distribution
    add(con, "orders", buyer_id="b3", order_time=datetime(2023, 4, 2), **distribution)  # never came back
    add(con, "orders", buyer_id="b4", shop_id="s2", order_time=datetime(2023, 5, 2))  # self only
    assert results(con, rules, "merchant", MAY) == {"s1": {"n": expected}, "s2": {"n": 0.0}}


@pytest.mark.parametrize(("after", "expected"), [(True, 2.0), (False, 3.0)])
def test_conversion_whose_first_step_is_the_narrow_one(
    con: duckdb.DuckDBPyConnection, after: bool, expected: float
) -> None:
    """The step with the shorter window is grouped first, whichever it is: same counts either way."""
    rules = ruleset(
        f"""\
        n:
          conversion:
            key: buyer_id
            first: {{from: orders, where: "sale_mode = 'distribution'", window: period}}
            then: {{from: orders, where: "sale_mode = 'self'", window: 90d}}
            after: {str(after).lower()}
        """
    )
    distribution = {"sale_mode": "distribution"}
    add(con, "orders", buyer_id="b1", order_time=datetime(2023, 5, 2), **distribution)
    add(con, "orders", buyer_id="b1", order_time=datetime(2023, 5, 10))  # converted
    add(con, "orders", buyer_id="b2", order_time=datetime(2023, 4, 1))  # self before ...
    add(con, "orders", buyer_id="b2", order_time=datetime(2023, 5, 2), **distribution)  # ... distribution
    add(con, "orders", buyer_id="b3", order_time=datetime(2023, 5, 3), **distribution)
    add(con, "orders", buyer_id="b3", order_time=datetime(2023, 5, 9), **distribution)
    add(con, "orders", buyer_id="b3", order_time=datetime(2023, 5, 1))  # before the first step ...
    add(con, "orders", buyer_id="b3", order_time=datetime(2023, 5, 20))  # ... and after it: converted
    add(con, "orders", buyer_id="b4", order_time=datetime(2023, 4, 30), **distribution)  # outside period
    add(con, "orders", buyer_id="b4", order_time=datetime(2023, 5, 5))
    add(con, "orders", buyer_id="b5", shop_id="s2", order_time=datetime(2023, 5, 2))  # self only
    assert results(con, rules, "merchant", MAY) == {"s1": {"n": expected}, "s2": {"n": 0.0}}
    sql = compile_scorecard(rules, "merchant", MAY).sql
    assert '"conv_n_first" AS' in sql and 'JOIN "conv_n_first"' in sql and '"conv_n_then"' not in sql


def test_conversion_across_sources(con: duckdb.DuckDBPyConnection) -> None:
    rules = ruleset(
        """\
        n:
          conversion:
            key: order_id
            first: {from: orders, window: 90d}
            then: {from: reviews, where: quality_score >= 4}
            after: true
        """
    )
    add(con, "orders", order_id="o1", order_time=datetime(2023, 4, 28))
    add(con, "reviews", order_id="o1", review_time=datetime(2023, 5, 3), quality_score=5)
    add(con, "orders", order_id="o2", order_time=datetime(2023, 4, 28))
    add(con, "reviews", order_id="o2", review_time=datetime(2023, 5, 3), quality_score=1)
    assert results(con, rules, "merchant", MAY) == {"s1": {"n": 1.0}}


def test_default_merchant_metrics_by_hand(con: duckdb.DuckDBPyConnection, default: Ruleset) -> None:
    for day, minutes in ((1, 45), (1, 30), (2, 20), (8, 90), (15, 60), (22, 31)):
        add(
            con,
            "livestreams",
            start_time=datetime(2023, 5, day, 20),
            duration_minutes=minutes,
            new_followers=10,
        )
    add(con, "livestreams", host_type="promoter", promoter_id="p1", start_time=datetime(2023, 5, 3, 20))
    dist = {"sale_mode": "distribution", "carrier": "video", "promoter_id": "p1"}
    add(con, "orders", net_amount=300, buyer_id="b1", order_time=datetime(2023, 3, 10), **dist)
    add(con, "orders", net_amount=200, buyer_id="b2", **dist)
    add(con, "orders", net_amount=100, buyer_id="b3", status="pending", **dist)
    add(con, "orders", net_amount=1000, buyer_id="b1", order_time=datetime(2023, 5, 20))  # self, live
    add(con, "orders", net_amount=500, buyer_id="b4", order_time=datetime(2023, 4, 20))  # previous month
    add(con, "orders", net_amount=80, buyer_id="b5", carrier="card", quality_return=True)
    add(con, "reviews", quality_score=2, logistics_score=4, complaint=True)
    add(con, "reviews", quality_score=4, logistics_score=None)
    got = results(con, default, "merchant", MAY)["s1"]
    expected = {
        "live_days": 4.0,  # May 1, 8, 15, 22 have a self session of at least 30 minutes
        "live_hours": (45 + 30 + 20 + 90 + 60 + 31) / 60,
        "live_weeks": 4.0,
        "new_followers": 60.0,
        "distribution_gmv": 200.0,
        "distribution_promoters": 1.0,
        "distribution_orders_90d": 2.0,
        "self_live_gmv": 1000.0,
        "self_live_gmv_prev": 500.0,
        "self_gmv_all": 1080.0,
        "self_live_growth": (1000 - 500) / 1000,
        "distribution_share": 200 / 1280,
        "converted_buyers": 1.0,  # b1: distribution in March, self live in May
        "reviews_90d": 2.0,
        "quality_avg_90d": 3.0,
        "logistics_avg_90d": 4.0,
        "service_avg_90d": None,
        "negative_rate_90d": 0.5,
        "complaint_rate_90d": 0.5,
        "quality_return_rate_90d": 1 / 5,  # valid orders in 90 days: 5 (the pending one is not valid)
    }
    assert got == pytest.approx(expected)


# -- rules check -------------------------------------------------------------------------------------


def test_default_ruleset_passes_schema_check(default: Ruleset) -> None:
    summary = check_ruleset_against_schema(default)
    assert (len(summary.scorecards), summary.metrics, summary.scores, summary.gates, summary.tiers) == (
        3,
        31,
        9,
        6,
        7,
    )
    week = default_ruleset_path().read_text(encoding="utf-8").replace("period: month", "period: week")
    week = week.replace("effective: {from: 2023-05}", "effective: {from: 2023-W18}")
    check_ruleset_against_schema(parse_ruleset(week, "week.yaml"))


def test_schema_check_locates_type_errors() -> None:
    rules = ruleset(
        """\
        n:
          from: orders
          value: count(*)
        bad_sum:
          from: orders
          value: sum(shop_id)
        latest:
          from: orders
          value: max(order_time)
        odd_where:
          from: livestreams
          where: duration_minutes
          value: count(*)
        """,
        extra="",
    )
    text = rules.text.replace(
        "    metrics:", "    gates:\n      - {id: g, when: n + 1, reason: r}\n    metrics:"
    )
    with pytest.raises(RulesetError) as info:
        check_ruleset_against_schema(parse_ruleset(text, "t.yaml"))
    assert [e.split("\n")[0] for e in info.value.errors] == [
        "t.yaml:11:23: gate 'g' must be a condition, not DOUBLE",
        "t.yaml:18:16: metric 'bad_sum' does not compile: Binder Error: No function matches the given name and "
        "argument types 'sum(VARCHAR)'. You might need to add explicit type casts.",
        "t.yaml:21:16: metric 'latest' is TIMESTAMP, not a number",
        "t.yaml:24:16: where of metric 'odd_where' must be a condition (true/false), not DOUBLE",
    ]


def test_compile_metrics_takes_formula_dependencies() -> None:
    rules = ruleset(
        "n:\n  from: orders\n  value: count(*)\nm:\n  from: reviews\n  value: count(*)\nf:\n  formula: n * 2\n"
    )
    query = compile_metrics(rules, "merchant", ["f"], MAY)
    assert query.columns == ("shop_id", "n", "f") and "reviews" not in query.sql


def test_history_needed_is_the_start_of_the_earliest_window_per_table() -> None:
    """SPEC §6: May of the default ruleset reads orders and reviews from 90 days back, livestreams from May."""
    from chuanliu_cli.rules.compiler import history_needed

    ruleset = load_ruleset(default_ruleset_path())
    needs = history_needed(ruleset, parse_period("2023-05"))
    assert {t: (n.needed_from.isoformat(), n.because) for t, n in needs.items()} == {
        "livestreams": ("2023-05-01", "the period"),
        "orders": ("2023-03-03", "90-day windows"),
        "reviews": ("2023-03-03", "90-day windows"),
    }


def test_history_needed_names_previous_and_period_windows() -> None:
    from chuanliu_cli.rules.compiler import history_needed

    text = textwrap.dedent(
        """\
        version: 1
        name: t
        scorecards:
          merchant:
            key: shop_id
            metrics:
              gmv: {from: orders, value: sum(net_amount)}
              gmv_prev: {from: orders, window: previous, value: sum(net_amount)}
              gmv_3m: {from: orders, window: 3m, value: sum(net_amount)}
              n: {from: reviews, window: previous, value: count(*)}
            scores:
              total:
                parts:
                  - {metric: gmv, weight: 1, normalize: {linear: [0, 100]}}
        """
    )
    needs = history_needed(parse_ruleset(text, "r.yaml"), parse_period("2023-05"))
    assert {t: (n.needed_from.isoformat(), n.because) for t, n in needs.items()} == {
        "orders": ("2023-03-01", "3-month windows"),
        "reviews": ("2023-04-01", "the previous period"),
    }
