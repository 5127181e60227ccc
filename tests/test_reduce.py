"""A scorecard read by a later one for its eligibility only is scored for its gates' inputs only
(scoring/reduce.py, issue #21): the later scorecard's results are those of a full scoring, and the
reduced scorecard's eligibility is the full one's, entity for entity, population included."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from chuanliu_cli.api import Session, load_rules
from chuanliu_cli.periods import parse_period
from chuanliu_cli.rules.files import default_ruleset_path
from chuanliu_cli.rules.parser import parse_ruleset_bytes
from chuanliu_cli.scoring.pipeline import (
    _eligibility_table,
    as_engine,
    compute_metrics,
    score_period,
    score_scorecard,
)
from chuanliu_cli.scoring.reduce import PRESENCE, eligibility_only, fields_read_later

REPO = Path(__file__).resolve().parent.parent
MAY = parse_period("2023-05")


@pytest.fixture(scope="module")
def con(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    import duckdb

    path = str(tmp_path_factory.mktemp("reduce") / "s.duckdb")
    Session(db=path).load(directory=REPO / "sample_data")
    connection = duckdb.connect(path, read_only=True)
    yield connection
    connection.close()


def test_the_promoter_scorecard_reads_only_merchant_eligibility() -> None:
    rules = load_rules(default_ruleset_path())
    assert fields_read_later(rules, "merchant", ("merchant", "promoter")) == {"eligible"}


def test_the_reduced_merchant_keeps_the_gates_inputs_and_the_sources() -> None:
    rules = load_rules(default_ruleset_path())
    full = rules.scorecard("merchant")
    reduced = eligibility_only(rules, "merchant").scorecard("merchant")
    names = {m.name for m in reduced.metrics}
    for needed in ("distribution_orders_90d", "live_days", "live_weeks", "self_live_gmv"):
        assert needed in names
    assert len(reduced.metrics) < len(full.metrics)
    assert reduced.tiers == () and reduced.reward is None

    # every (source, window) of the full scorecard is still scanned
    def reads(sc):  # type: ignore[no-untyped-def]
        from chuanliu_cli.scoring.reduce import _reads

        return {pair for m in sc.metrics for pair in _reads(m)}

    assert reads(reduced) == reads(full)


def test_promoter_results_equal_a_full_scoring(con) -> None:  # type: ignore[no-untyped-def]
    rules = load_rules(default_ruleset_path(), check=True)
    reduced = score_period(con, rules, MAY, upto="promoter")
    full = score_period(con, rules, MAY, upto=None)  # every scorecard in full
    assert "merchant" not in reduced.scorecards  # scored for its eligibility only, not a result
    assert_frame_equal(reduced.scorecards["promoter"].frame, full.scorecards["promoter"].frame)


def test_the_reduced_scorecard_asks_no_names_and_no_order(con) -> None:  # type: ignore[no-untyped-def]
    """The merchant scorecard scored for the promoter's reading of its eligibility fetches no shop names
    (500k of them at the platform shape) and has its metric rows in no particular order (they are only
    joined by key); the promoter's own names and order are still asked for."""
    from chuanliu_cli.engines.duckdb import DuckDBEngine

    asked: list[str] = []
    orders: list[str | None] = []

    class Counting(DuckDBEngine):
        def names(self, key, keys=None):  # type: ignore[no-untyped-def]
            asked.append(key)
            return super().names(key, keys)

        def query(self, sql, order_by=None):  # type: ignore[no-untyped-def]
            if "metric_values" in sql:
                orders.append(order_by)
            return super().query(sql, order_by)

    rules = load_rules(default_ruleset_path(), check=True)
    reduced = score_period(Counting(con), rules, MAY, upto="promoter")
    assert asked == ["promoter_id"]
    assert orders == [None, "promoter_id"]
    assert reduced.scorecards["promoter"].frame.height > 0
    asked.clear()
    orders.clear()
    score_period(Counting(con), rules, MAY, upto=None)
    assert asked == ["shop_id", "promoter_id", "item_id"]
    assert orders == ["shop_id", "promoter_id", "item_id"]


def test_reduced_eligibility_equals_the_full_one_for_everyone(con) -> None:  # type: ignore[no-untyped-def]
    rules = load_rules(default_ruleset_path(), check=True)
    full = score_period(con, rules, MAY, upto="merchant").scorecards["merchant"].frame
    small = eligibility_only(rules, "merchant")
    res = score_scorecard(as_engine(con), small, small.scorecard("merchant"), MAY)
    a = full.select("shop_id", "eligible").sort("shop_id")
    b = res.frame.select("shop_id", "eligible").sort("shop_id")
    assert_frame_equal(a, b)
    # what score_period registers for the later scorecards: the same eligibility, tier and total unread
    metrics = compute_metrics(as_engine(con), small, small.scorecard("merchant"), MAY)
    table = _eligibility_table(small.scorecard("merchant"), metrics)
    assert table.columns == ["shop_id", "eligible", "tier", "total"]
    assert_frame_equal(table.select("shop_id", "eligible").sort("shop_id"), a)
    assert table["tier"].null_count() == table["total"].null_count() == table.height


def test_an_entity_seen_only_by_a_metric_no_gate_reads_stays_in_the_population(tmp_path: Path) -> None:
    """A shop with reviews only: no gate reads reviews, but the full scorecard's population has it (and it
    passes a gate that accepts zero activity), so the reduced one must have it too."""
    import duckdb

    text = """
version: 1
name: t
timezone: Asia/Shanghai
period: month
scorecards:
  merchant:
    key: shop_id
    metrics:
      orders_n: {from: orders, value: count(*)}
      reviews_n: {from: reviews, value: count(*)}
    scores:
      total:
        parts:
          - {metric: reviews_n, weight: 1, normalize: {linear: [0, 10]}}
    rank_by: total
    gates:
      - {id: few_orders, when: orders_n <= 5, reason: too many}
  promoter:
    key: promoter_id
    metrics:
      carried: {from: orders, where: merchant.eligible, value: count(*)}
    scores:
      total:
        parts:
          - {metric: carried, weight: 1, normalize: {linear: [0, 10]}}
    rank_by: total
"""
    rules = parse_ruleset_bytes(text.encode(), "t.yaml")
    small = eligibility_only(rules, "merchant").scorecard("merchant")
    assert [m.name for m in small.metrics] == ["orders_n", PRESENCE.format(1)]
    db = str(tmp_path / "t.duckdb")
    orders = tmp_path / "orders.csv"
    orders.write_text(
        "order_id,shop_id,buyer_id,item_id,promoter_id,sale_mode,carrier,order_time,paid_amount,status\n"
        "o1,s1,b1,i1,p1,distribution,video,2023-05-02 10:00:00,10,completed\n",
        encoding="utf-8",
    )
    reviews = tmp_path / "reviews.csv"
    reviews.write_text(
        "review_id,order_id,shop_id,review_time,quality_score,service_score,logistics_score\n"
        "r1,o0,s2,2023-05-03 10:00:00,5,5,5\n",
        encoding="utf-8",
    )
    with Session(db=db) as s:
        s.load("orders", [orders])
        s.load("reviews", [reviews])
    con = duckdb.connect(db, read_only=True)
    try:
        full = score_period(con, rules, MAY, upto="merchant").scorecards["merchant"].frame
        res = score_scorecard(as_engine(con), eligibility_only(rules, "merchant"), small, MAY)
    finally:
        con.close()
    assert sorted(full["shop_id"].to_list()) == sorted(res.frame["shop_id"].to_list()) == ["s1", "s2"]
    assert res.frame.filter(pl.col("shop_id") == "s2")["eligible"].to_list() == [True]
