"""The default ruleset (SPEC §5) scored end to end on tiny hand-built datasets, with hand-computed expectations."""

from __future__ import annotations

import math
import textwrap
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from chuanliu_cli.periods import month_period
from chuanliu_cli.rules.model import Ruleset
from chuanliu_cli.rules.parser import load_ruleset, parse_ruleset
from chuanliu_cli.scoring.pipeline import RunResult, ScorecardResult, score_period
from chuanliu_cli.store.database import memory_database

REPO = Path(__file__).resolve().parent.parent
MAY = month_period(2023, 5)
#: SPEC §2: refund reasons that make a refund a quality return (品质退货).
QUALITY_REASONS = ("与商品描述不符", "质量问题", "卖家发错货", "三无产品", "假冒产品")

Row = dict[str, Any]


@pytest.fixture(scope="module")
def rules() -> Ruleset:
    """The shipped default ruleset, rules/chuanliu.yaml."""
    return load_ruleset(REPO / "rules" / "chuanliu.yaml")


def ln(x: float) -> float:
    """Natural logarithm (the spec's `ln`)."""
    return math.log(x)


class Data:
    """A fresh in-memory database and builders for its rows.

    Rows go in with SQL, so the derived order columns are filled here exactly as SPEC §2 defines them:
    net = paid − coalesce(refund, paid when refunded else 0); quality return = effective refund > 0 and a
    quality reason.
    """

    def __init__(self) -> None:
        self.con = memory_database().con
        self._n = 0

    def _id(self, prefix: str) -> str:
        self._n += 1
        return f"{prefix}{self._n:05d}"

    def order(
        self,
        shop: str | None,
        time: str,
        paid: float,
        *,
        buyer: str = "b",
        mode: str = "self",
        carrier: str = "live",
        status: str = "paid",
        promoter: str | None = None,
        refund: float | None = None,
        reason: str | None = None,
        item: str | None = None,
    ) -> str:
        """Insert one order and return its order_id."""
        order_id = self._id("o")
        effective_refund = refund if refund is not None else (paid if status == "refunded" else None)
        net = Decimal(str(paid)) - Decimal(str(effective_refund or 0))
        quality = effective_refund is not None and effective_refund > 0 and reason in QUALITY_REASONS
        self.con.execute(
            "INSERT INTO orders (order_id, shop_id, buyer_id, item_id, promoter_id, sale_mode, carrier, "
            "order_time, paid_amount, quantity, status, refund_amount, refund_reason, net_amount, quality_return) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 1, ?, ?, ?, ?, ?)",
            [
                order_id,
                shop,
                buyer,
                item,
                promoter,
                mode,
                carrier,
                datetime.fromisoformat(time),
                Decimal(str(paid)),
                status,
                None if refund is None else Decimal(str(refund)),
                reason,
                net,
                quality,
            ],
        )
        return order_id

    def review(
        self,
        shop: str,
        time: str,
        quality: int,
        *,
        logistics: int | None = None,
        service: int | None = None,
        complaint: bool = False,
        order_id: str | None = None,
        promoter: str | None = None,
        item: str | None = None,
    ) -> None:
        """Insert one review (of `order_id`, or of an order that is not in the database)."""
        self.con.execute(
            "INSERT INTO reviews (review_id, order_id, shop_id, item_id, promoter_id, quality_score, "
            "logistics_score, service_score, review_time, complaint) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                self._id("r"),
                order_id or self._id("x"),
                shop,
                item,
                promoter,
                quality,
                logistics,
                service,
                datetime.fromisoformat(time),
                complaint,
            ],
        )

    def reviews(self, shop: str, n: int, quality: int, logistics: int, service: int, **kw: Any) -> None:
        """Insert `n` identical reviews spread over 2023-05-01 .. (at most 28 days)."""
        for i in range(n):
            self.review(
                shop,
                f"2023-05-{1 + i % 28:02d} 12:00:00",
                quality,
                logistics=logistics,
                service=service,
                **kw,
            )

    def live(
        self,
        shop: str,
        start: str,
        minutes: float,
        *,
        host: str = "self",
        promoter: str | None = None,
        followers: int | None = None,
    ) -> None:
        """Insert one live session starting at `start`, lasting `minutes`."""
        begin = datetime.fromisoformat(start)
        self.con.execute(
            "INSERT INTO livestreams (live_id, shop_id, host_type, promoter_id, start_time, end_time, "
            "duration_minutes, new_followers) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [
                self._id("l"),
                shop,
                host,
                promoter,
                begin,
                begin + timedelta(minutes=minutes),
                float(minutes),
                followers,
            ],
        )

    def lives_on(self, shop: str, days: list[int], minutes: float = 60, **kw: Any) -> None:
        """One session a day at 20:00 on each given day of May 2023."""
        for day in days:
            self.live(shop, f"2023-05-{day:02d} 20:00:00", minutes, **kw)

    def shop(self, shop_id: str, name: str) -> None:
        """Insert a shops row."""
        self.con.execute("INSERT INTO shops (shop_id, shop_name) VALUES (?, ?)", [shop_id, name])

    def score(self, ruleset: Ruleset, upto: str | None = None) -> RunResult:
        """Score May 2023."""
        return score_period(self.con, ruleset, MAY, upto=upto)


def rows_of(res: ScorecardResult) -> dict[str, Row]:
    """A scored scorecard's entities by key."""
    return {row[res.key]: row for row in res.frame.iter_rows(named=True)}


def rows(run: RunResult, scorecard: str = "merchant") -> dict[str, Row]:
    """The scorecard's entities by key."""
    return rows_of(run.scorecards[scorecard])


def merchants(data: Data, ruleset: Ruleset) -> dict[str, Row]:
    """Score only the merchant scorecard and return its rows by shop_id."""
    return rows(data.score(ruleset, upto="merchant"))


def check(row: Row, expected: dict[str, float | None]) -> None:
    """Every expected value matches (approximately for numbers, exactly for NULL)."""
    got = {k: row[k] for k in expected}
    want = {k: (None if v is None else pytest.approx(v, rel=1e-9, abs=1e-9)) for k, v in expected.items()}
    assert got == want


def eligible_merchant(
    data: Data,
    shop: str,
    *,
    live_days: tuple[int, ...] = (1, 2, 3, 8, 9, 10, 15, 16),
    dist_time: str | None = "2023-04-15 10:00:00",
    self_live: bool = True,
) -> None:
    """A merchant that passes every gate by default: each keyword breaks one of them.

    Default live days: May 1–3 (ISO week 18), 8–10 (week 19), 15–16 (week 20) → 8 days, 3 weeks (the
    stable_live thresholds exactly); one distribution order in April (inside 90d, outside the period); one
    self live-room order of 100 in May; no reviews (store_experience NULL → passes).
    """
    data.lives_on(shop, list(live_days))
    if dist_time is not None:
        data.order(shop, dist_time, 50, buyer=f"{shop}-d", mode="distribution", promoter="ph")
    if self_live:
        data.order(shop, "2023-05-20 10:00:00", 100, buyer=f"{shop}-z")
    else:
        # a self order that is not in the live room keeps the shop's other metrics the same
        data.order(shop, "2023-05-20 10:00:00", 100, buyer=f"{shop}-z", carrier="video")


# --- §5 metrics ------------------------------------------------------------------------------------------


def test_live_metrics_self_sessions_windows_and_iso_weeks(rules: Ruleset) -> None:
    d = Data()
    d.live("s", "2023-05-01 00:00:00", 30, followers=10)  # exactly 30 min: a live day; first instant of May
    d.live("s", "2023-05-01 20:00:00", 90, followers=5)  # same day: no extra day
    d.live("s", "2023-05-07 23:00:00", 60, followers=4)  # Sunday: still ISO week 18 (Monday start)
    d.live("s", "2023-05-09 10:00:00", 29, followers=7)  # < 30 min: hours and followers only
    d.live("s", "2023-05-15 10:00:00", 120, followers=3)  # week 20
    d.live("s", "2023-05-31 23:00:00", 45, followers=2)  # week 22 (May 29 – Jun 4)
    d.live("s", "2023-04-30 23:59:59", 600, followers=1000)  # previous month (runs into May): excluded
    d.live("s", "2023-06-01 00:00:00", 60, followers=1000)  # next month: excluded
    d.live("s", "2023-05-20 10:00:00", 300, host="promoter", promoter="p1", followers=500)  # not self
    d.live("s", "2023-05-10 10:00:00", 60, followers=None)  # unknown followers: ignored by the sum
    d.order("o", "2023-05-02 10:00:00", 10)  # shop "o" has no live session at all
    m = merchants(d, rules)
    # days: May 1, 7, 10, 15, 31 = 5; weeks: W18 (1, 7), W19 (10), W20 (15), W22 (31) = 4
    # hours: (30 + 90 + 60 + 29 + 120 + 45 + 60) / 60 = 434 / 60; followers: 10 + 5 + 4 + 7 + 3 + 2 = 31
    check(m["s"], {"live_days": 5, "live_weeks": 4, "live_hours": 434 / 60, "new_followers": 31})
    check(m["o"], {"live_days": 0, "live_weeks": 0, "live_hours": 0, "new_followers": 0})


def test_distribution_metrics_valid_orders_net_and_windows(rules: Ruleset) -> None:
    d = Data()
    dist: dict[str, Any] = {"mode": "distribution", "carrier": "video"}
    d.order("s", "2023-05-02 10:00:00", 100, promoter="p1", **dist)  # net 100
    d.order("s", "2023-05-03 10:00:00", 200, promoter="p1", refund=50, status="completed", **dist)  # net 150
    d.order("s", "2023-05-04 10:00:00", 80, promoter="p2", status="refunded", **dist)  # net 0, still valid
    d.order("s", "2023-05-05 10:00:00", 999, promoter="p3", status="pending", **dist)  # not valid
    d.order("s", "2023-05-06 10:00:00", 999, promoter="p4", status="closed", **dist)  # not valid
    d.order("s", "2023-04-30 23:59:59", 300, promoter="p5", **dist)  # April: 90d only
    d.order("s", "2023-05-01 00:00:00", 40, promoter="p5", carrier="live", mode="distribution")  # May
    d.order("s", "2023-03-03 00:00:00", 10, promoter="p6", **dist)  # first instant of the 90d window
    d.order("s", "2023-03-02 23:59:59", 10, promoter="p7", **dist)  # just before it: excluded
    d.order("s", "2023-06-01 00:00:00", 10, promoter="p8", **dist)  # after the period: excluded
    d.order("s", "2023-05-07 10:00:00", 500)  # a self order is not distribution
    d.live("n", "2023-05-02 10:00:00", 60)  # shop "n" has no orders
    m = merchants(d, rules)
    # gmv = 100 + 150 + 0 + 40 = 290; promoters {p1, p2, p5} = 3
    # orders in [2023-03-03, 2023-06-01) and valid: May 2, 3, 4, 1, Apr 30, Mar 3 = 6
    check(m["s"], {"distribution_gmv": 290, "distribution_promoters": 3, "distribution_orders_90d": 6})
    check(m["n"], {"distribution_gmv": 0, "distribution_promoters": 0, "distribution_orders_90d": 0})


def test_self_gmv_previous_growth_and_share(rules: Ruleset) -> None:
    d = Data()
    d.order("s", "2023-05-10 10:00:00", 500)  # self live: 500
    d.order("s", "2023-05-11 10:00:00", 300, refund=100, reason="质量问题", status="completed")  # 200
    d.order("s", "2023-05-12 10:00:00", 1000, status="closed")  # not valid
    d.order("s", "2023-05-13 10:00:00", 1000, status="pending")  # not valid
    d.order("s", "2023-05-14 10:00:00", 70, carrier="video")  # self, not live: self_gmv_all only
    d.order("s", "2023-05-15 10:00:00", 30, carrier="card")  # self, not live: self_gmv_all only
    d.order("s", "2023-05-31 23:59:59", 5, carrier="other")  # last instant of May
    d.order("s", "2023-04-30 23:59:59", 250)  # previous month
    d.order("s", "2023-04-01 00:00:00", 150)  # first instant of the previous month
    d.order("s", "2023-03-31 23:59:59", 999)  # before the previous month
    d.order("s", "2023-04-15 10:00:00", 999, status="pending")  # not valid
    d.order("s", "2023-05-16 10:00:00", 600, mode="distribution", promoter="p1")  # live, but distribution
    # shop "g": previous month above 1000, so growth divides by it
    d.order("g", "2023-05-10 10:00:00", 1000)
    d.order("g", "2023-04-10 10:00:00", 2000)
    # shop "z": only a fully refunded self order → every GMV 0 → share 0 / 0
    d.order("z", "2023-05-10 10:00:00", 80, status="refunded")
    m = merchants(d, rules)
    # s: self_live_gmv = 500 + 200 = 700; prev = 250 + 150 = 400; self_gmv_all = 700 + 70 + 30 + 5 = 805
    #    growth = (700 − 400) / greatest(400, 1000) = 0.3; share = 600 / (600 + 805)
    check(
        m["s"],
        {
            "self_live_gmv": 700,
            "self_live_gmv_prev": 400,
            "self_gmv_all": 805,
            "distribution_gmv": 600,
            "self_live_growth": 0.3,
            "distribution_share": 600 / 1405,
        },
    )
    # g: growth = (1000 − 2000) / greatest(2000, 1000) = −0.5; share = 0 / 1000 = 0
    check(m["g"], {"self_live_growth": -0.5, "distribution_share": 0.0})
    # z: growth = (0 − 0) / 1000 = 0; share = 0 / nullif(0, 0) = NULL
    check(
        m["z"], {"self_live_gmv": 0, "self_gmv_all": 0, "self_live_growth": 0.0, "distribution_share": None}
    )


def test_review_metrics_90d_window_and_empty_averages(rules: Ruleset) -> None:
    d = Data()
    d.review("s", "2023-03-03 00:00:00", 5, logistics=4, service=5)  # first instant of the 90d window
    d.review("s", "2023-03-02 23:59:59", 1, logistics=1, service=1, complaint=True)  # just before: excluded
    d.review("s", "2023-05-31 23:59:59", 2, logistics=5, service=3, complaint=True)  # last instant
    d.review("s", "2023-06-01 00:00:00", 1, logistics=1, service=1, complaint=True)  # after: excluded
    d.review("s", "2023-04-10 12:00:00", 4)  # no logistics / service score
    d.review("s", "2023-05-10 12:00:00", 1, logistics=2, service=2)
    d.order("e", "2023-05-02 10:00:00", 10)  # shop "e" has no reviews
    m = merchants(d, rules)
    # counted: (5, 4, 5, no), (2, 5, 3, yes), (4, −, −, no), (1, 2, 2, no)
    check(
        m["s"],
        {
            "reviews_90d": 4,
            "quality_avg_90d": (5 + 2 + 4 + 1) / 4,
            "logistics_avg_90d": (4 + 5 + 2) / 3,
            "service_avg_90d": (5 + 3 + 2) / 3,
            "negative_rate_90d": 2 / 4,  # quality 2 and 1 are ≤ 2
            "complaint_rate_90d": 1 / 4,
        },
    )
    # count → 0, avg → NULL, rates (avg of nothing, 0 / 0) → NULL
    check(
        m["e"],
        {
            "reviews_90d": 0,
            "quality_avg_90d": None,
            "logistics_avg_90d": None,
            "service_avg_90d": None,
            "negative_rate_90d": None,
            "complaint_rate_90d": None,
        },
    )


def test_quality_return_rate_over_valid_orders_90d(rules: Ruleset) -> None:
    d = Data()
    d.order("s", "2023-05-02 10:00:00", 100, refund=100, reason="质量问题", status="refunded")  # QR
    d.order("s", "2023-05-03 10:00:00", 100, refund=20, reason="与商品描述不符", status="completed")  # QR
    d.order("s", "2023-05-04 10:00:00", 100, refund=30, reason="不想要了", status="completed")  # not quality
    d.order("s", "2023-04-01 10:00:00", 100, mode="distribution", promoter="p1")  # no refund
    # a quality return at the first instant of the 90d window
    d.order("s", "2023-03-03 00:00:00", 100, refund=100, reason="假冒产品", status="refunded")
    d.order("s", "2023-03-02 23:59:59", 100, refund=100, reason="假冒产品", status="refunded")  # outside 90d
    d.order("s", "2023-05-05 10:00:00", 100, refund=100, reason="质量问题", status="closed")  # not valid
    d.order("s", "2023-05-06 10:00:00", 100, status="pending")  # not valid
    d.order("s", "2023-05-07 10:00:00", 100, reason="卖家发错货", status="completed")  # reason, no refund
    # shop "c": only orders that are not valid (and a live session, so that it is in the population)
    d.order("c", "2023-05-05 10:00:00", 100, refund=100, reason="质量问题", status="closed")
    d.live("c", "2023-05-05 10:00:00", 60)
    m = merchants(d, rules)
    # valid in 90d: May 2, 3, 4, 7, Apr 1, Mar 3 = 6; quality returns: May 2, May 3, Mar 3 = 3
    check(m["s"], {"quality_return_rate_90d": 3 / 6})
    check(m["c"], {"quality_return_rate_90d": None})  # 0 / 0


def test_population_is_every_key_seen_within_its_metrics_windows(rules: Ruleset) -> None:
    d = Data()
    d.order("prev_order", "2023-04-20 10:00:00", 120)  # previous window of self_live_gmv_prev
    d.review("march_review", "2023-03-10 10:00:00", 5)  # 90d window of the review metrics
    d.live("april_live", "2023-04-20 10:00:00", 600)  # live metrics are for the period only
    d.order("feb_order", "2023-02-20 10:00:00", 100)  # outside every window
    d.order(None, "2023-05-02 10:00:00", 100)  # no shop: no entity
    d.shop("shop_row_only", "只有店铺")
    d.shop("prev_order", "四月店")
    m = merchants(d, rules)
    assert set(m) == {"prev_order", "march_review"}
    check(m["prev_order"], {"self_live_gmv_prev": 120, "self_live_gmv": 0, "self_live_growth": -120 / 1000})
    assert m["prev_order"]["name"] == "四月店" and m["march_review"]["name"] is None
    check(m["march_review"], {"reviews_90d": 1, "quality_avg_90d": 5})


# --- converted_buyers ------------------------------------------------------------------------------------


def test_converted_buyers_distribution_first_then_self_live(rules: Ruleset) -> None:
    d = Data()

    def dist(buyer: str, time: str, shop: str = "s", **kw: Any) -> None:
        d.order(shop, time, 10, buyer=buyer, mode="distribution", carrier="video", promoter="p1", **kw)

    def live(buyer: str, time: str, shop: str = "s", **kw: Any) -> None:
        d.order(shop, time, 10, buyer=buyer, **kw)

    dist("A", "2023-04-10 10:00:00")
    live("A", "2023-05-05 10:00:00")  # A: distribution, then self-live → counts
    live("B", "2023-05-03 10:00:00")
    dist("B", "2023-05-10 10:00:00")  # B: self-live before the first distribution order → no
    dist("C", "2023-03-01 10:00:00")
    live("C", "2023-05-05 10:00:00")  # C: distribution before the 90d window → no
    dist("D", "2023-05-02 10:00:00")
    live("D", "2023-06-01 00:00:00")
    live("D", "2023-04-30 23:59:59")  # D: self-live only outside the period → no
    dist("E", "2023-04-01 10:00:00")
    live("E", "2023-05-07 10:00:00", carrier="video")  # E: self, but not in the live room → no
    dist("F", "2023-04-01 10:00:00", status="closed")
    live("F", "2023-05-08 10:00:00")  # F: the distribution order is not valid → no
    dist("G", "2023-05-02 10:00:00")
    live("G", "2023-05-02 10:00:00")  # G: same instant is not later → no
    live("H", "2023-05-01 10:00:00")
    dist("H", "2023-05-02 10:00:00")
    live("H", "2023-05-20 10:00:00")  # H: one self-live order after the earliest distribution → counts
    dist("I", "2023-04-05 10:00:00")
    live("I", "2023-05-06 10:00:00")
    live("I", "2023-05-07 10:00:00")  # I: two self-live orders → counts once
    dist("J", "2023-04-01 10:00:00", shop="t")
    live("J", "2023-05-05 10:00:00")  # J: distribution at another shop → not for s (nor for t)
    dist("K", "2023-03-03 00:00:00")
    live("K", "2023-05-09 10:00:00")  # K: distribution at the first instant of the 90d window → counts
    dist("L", "2023-04-01 10:00:00")
    live("L", "2023-05-09 10:00:00", status="pending")  # L: the self-live order is not valid → no
    m = merchants(d, rules)
    assert m["s"]["converted_buyers"] == 4  # A, H, I, K
    assert m["t"]["converted_buyers"] == 0  # no matching pair: 0, not NULL


# --- §5 scores -------------------------------------------------------------------------------------------


def _scored_merchant(d: Data, shop: str) -> None:
    """The merchant of test_every_score_hand_computed."""
    # 15 self sessions of 800 min on May 1–15: 15 days, ISO weeks 18, 19, 20, 15 × 800 / 60 = 200 hours
    d.live(shop, "2023-05-01 08:00:00", 800, followers=4999)
    d.lives_on(shop, list(range(2, 16)), 800, followers=0)
    # distribution in May by 3 promoters: 5000 + 3000 + 2000 = 10000
    for buyer, promoter, day, paid in (("x1", "p1", 2, 5000), ("x2", "p2", 3, 3000), ("x3", "p3", 4, 2000)):
        d.order(
            shop, f"2023-05-{day:02d} 10:00:00", paid, buyer=buyer, mode="distribution", promoter=promoter
        )
    # the same 3 buyers later buy in the live room: 10000 each (x1 net of a quality return of 100)
    d.order(shop, "2023-05-20 10:00:00", 10100, buyer="x1", refund=100, reason="质量问题", status="completed")
    d.order(shop, "2023-05-21 10:00:00", 10000, buyer="x2")
    d.order(shop, "2023-05-22 10:00:00", 10000, buyer="x3")
    d.order(shop, "2023-04-10 10:00:00", 20000, buyer="y1")  # previous month, live room
    for i in range(33):  # April product-card orders: only the 90d quality-return denominator sees them
        d.order(shop, f"2023-04-{1 + i % 28:02d} 09:00:00", 1, buyer=f"f{i}", carrier="card")
    # 20 reviews in 90d: 19 × (5, 4, 5) and one (1, 4, 5) with a complaint
    d.reviews(shop, 19, 5, 4, 5)
    d.review(shop, "2023-04-20 12:00:00", 1, logistics=4, service=5, complaint=True)


def test_every_score_hand_computed(rules: Ruleset) -> None:
    d = Data()
    _scored_merchant(d, "m")
    row = merchants(d, rules)["m"]
    check(
        row,
        {
            "live_days": 15,
            "live_hours": 200,
            "live_weeks": 3,
            "new_followers": 4999,
            "distribution_gmv": 10000,
            "distribution_promoters": 3,
            "distribution_share": 0.25,
            "self_live_gmv": 30000,
            "self_live_gmv_prev": 20000,
            "self_live_growth": 0.5,
            "converted_buyers": 3,
            "reviews_90d": 20,
            "quality_avg_90d": 4.8,
            "negative_rate_90d": 0.05,
            "complaint_rate_90d": 0.05,
            "quality_return_rate_90d": 1 / 40,  # 3 + 3 + 1 + 33 = 40 valid orders in 90d, 1 quality return
        },
    )
    # store_experience = 5 × (35 × (4.8−1)/4 + 15 × (0.05−0.1)/(0−0.1) + 15 × (0.025−0.05)/(0−0.05)
    #                        + 15 × (4−1)/4 + 10 × (5−1)/4 [at the end: 1] + 10 × clip((0.05−0.02)/(0−0.02)) [0]) / 100
    #                  = 5 × (33.25 + 7.5 + 7.5 + 11.25 + 10 + 0) / 100 = 5 × 69.5 / 100 = 3.475
    store = 3.475
    # diligence = 100 × (50 × (15−4)/(26−4) + 30 × ln(1+200)/ln(1+200) [log at its end: 1] + 20 × (3−1)/(4−1)) / 100
    diligence = 25 + 30 + 20 * 2 / 3  # 68.333…
    # distribution = 100 × (50 × ln(1+10000)/ln(1+1e6) + 30 × ln(1+3)/ln(1+100) + 20 × (0.25−0)/(0.5−0)) / 100
    distribution = 50 * ln(10001) / ln(1_000_001) + 30 * ln(4) / ln(101) + 20 * 0.5  # 52.345…
    # incremental = 100 × (40 × (0.5+0.2)/1.2 + 40 × ln(1+3)/ln(1+2000) + 20 × ln(1+4999)/ln(1+50000)) / 100
    incremental = 40 * 0.7 / 1.2 + 40 * ln(4) / ln(2001) + 20 * ln(5000) / ln(50001)  # 46.372…
    # total = 100 × (30 × diligence/100 + 35 × distribution/100 + 35 × incremental/100) / 100
    total = 0.30 * diligence + 0.35 * distribution + 0.35 * incremental  # 55.05…
    check(
        row,
        {
            "store_experience": store,
            "diligence": diligence,
            "distribution": distribution,
            "incremental": incremental,
            "total": total,
        },
    )
    assert row["total"] == pytest.approx(55.051, abs=1e-3)
    # every gate passes but store_experience (3.475 < 4.0): not eligible, so no tier, rank or grant
    assert row["failed_gates"] == ["store_experience"] and row["eligible"] is False
    assert (row["tier"], row["rank"], row["grant"]) == (None, None, 0)


def test_normalizers_beyond_their_ends(rules: Ruleset) -> None:
    d = Data()
    d.lives_on("e", list(range(1, 31)), 600, followers=3000)  # 30 days (> 26), weeks 18–22 = 5 (> 4), 300 h
    d.order("e", "2023-05-02 10:00:00", 2_000_000, mode="distribution", promoter="p1")  # > 1e6
    d.order("e", "2023-04-02 10:00:00", 5000)  # previous month only: growth (0 − 5000)/5000 = −1 < −0.2
    row = merchants(d, rules)["e"]
    check(row, {"live_days": 30, "live_weeks": 5, "live_hours": 300, "new_followers": 90000})
    check(row, {"distribution_share": 1.0, "self_live_growth": -1.0, "converted_buyers": 0})
    # diligence = 100 × (50 × 1 + 30 × 1 + 20 × 1) / 100 (all clipped to 1)
    # distribution = 100 × (50 × 1 + 30 × ln(2)/ln(101) + 20 × 1 [share 1 > 0.5]) / 100
    # incremental = 100 × (40 × 0 [growth < −0.2] + 40 × 0 [ln(1)/… = 0] + 20 × 1 [90000 > 50000]) / 100
    distribution = 50 + 30 * ln(2) / ln(101) + 20
    check(row, {"diligence": 100, "distribution": distribution, "incremental": 20})
    check(row, {"total": 0.3 * 100 + 0.35 * distribution + 0.35 * 20, "store_experience": None})


def test_store_experience_needs_20_reviews_in_90d(rules: Ruleset) -> None:
    d = Data()
    for shop, n in (("r19", 19), ("r20", 20)):
        d.order(shop, "2023-05-02 10:00:00", 10)
        d.reviews(shop, n, 5, 5, 5)
    d.order("r19old", "2023-05-02 10:00:00", 10)
    d.reviews("r19old", 19, 5, 5, 5)
    d.review("r19old", "2023-03-02 23:59:59", 5, logistics=5, service=5)  # the 20th is outside 90d
    m = merchants(d, rules)
    # 20 perfect reviews, no quality return: 5 × (35 + 15 + 15 + 15 + 10 + 10) / 100 = 5
    check(m["r20"], {"reviews_90d": 20, "store_experience": 5.0})
    check(m["r19"], {"reviews_90d": 19, "store_experience": None})
    check(m["r19old"], {"reviews_90d": 19, "store_experience": None})


# --- gates -----------------------------------------------------------------------------------------------


_POOR = {"poor_reviews": (20, 3, 3, 3)}  # 5 × (35×0.5 + 15 + 15 + 15×0.5 + 10×0.5 + 10) / 100 = 3.5
_FEW_POOR = {"poor_reviews": (19, 3, 3, 3)}  # 19 reviews: NULL → passes


@pytest.mark.parametrize(
    ("kwargs", "failed"),
    [
        pytest.param({}, [], id="baseline-passes-all"),
        pytest.param({"dist_time": None}, ["distribution_history"], id="no-distribution"),
        pytest.param(
            {"dist_time": "2023-03-02 23:59:59"}, ["distribution_history"], id="distribution-before-90d"
        ),
        pytest.param({"dist_time": "2023-03-03 00:00:00"}, [], id="distribution-at-90d-start"),
        pytest.param({"live_days": (1, 2, 3, 8, 9, 10, 15)}, ["stable_live"], id="7-days-3-weeks"),
        pytest.param({"live_days": (1, 2, 3, 4, 5, 6, 7, 8)}, ["stable_live"], id="8-days-2-weeks"),
        pytest.param({"self_live": False}, ["active"], id="no-self-live-gmv"),
        pytest.param(_POOR, ["store_experience"], id="store-experience-3.5"),
        pytest.param(_FEW_POOR, [], id="store-experience-missing-passes"),
    ],
)
def test_each_merchant_gate_alone(rules: Ruleset, kwargs: dict[str, Any], failed: list[str]) -> None:
    d = Data()
    kw = dict(kwargs)
    poor = kw.pop("poor_reviews", None)
    eligible_merchant(d, "g", **kw)
    if poor is not None:
        d.reviews("g", *poor)
    row = merchants(d, rules)["g"]
    assert row["failed_gates"] == failed
    assert row["eligible"] is (not failed)
    assert (row["rank"] == 1) is (not failed)
    if poor is not None:
        assert row["store_experience"] == (pytest.approx(3.5) if poor[0] >= 20 else None)


def test_all_gates_failing_are_listed_in_order(rules: Ruleset) -> None:
    d = Data()
    eligible_merchant(d, "g", live_days=(1,), dist_time=None, self_live=False)
    d.reviews("g", 20, 3, 3, 3)
    row = merchants(d, rules)["g"]
    assert row["failed_gates"] == ["distribution_history", "stable_live", "store_experience", "active"]


def test_store_experience_gate_at_exactly_4(rules: Ruleset) -> None:
    d = Data()
    eligible_merchant(d, "g")
    # 20 × (5, 5, 1), one with a complaint (rate 0.05 > 0.02 → 0); no quality return (rate 0 → 1)
    # 5 × (35 × 1 + 15 × 1 + 15 × 1 + 15 × 1 + 10 × 0 + 10 × 0) / 100 = 4.0 ≥ 4.0
    d.reviews("g", 19, 5, 5, 1)
    d.review("g", "2023-05-30 12:00:00", 5, logistics=5, service=1, complaint=True)
    row = merchants(d, rules)["g"]
    assert row["store_experience"] == pytest.approx(4.0)
    assert row["failed_gates"] == [] and row["eligible"] is True


# --- tiers -----------------------------------------------------------------------------------------------


def test_default_ruleset_total_exactly_65_is_tier_a_and_capped(rules: Ruleset) -> None:
    d = Data()
    d.lives_on("a", list(range(1, 27)), 480, followers=0)  # 26 days, weeks 18–21 = 4, 208 hours
    for i in range(101):  # 101 promoters, 1,010,000 of distribution GMV
        d.order("a", "2023-05-03 10:00:00", 10000, buyer=f"d{i}", mode="distribution", promoter=f"p{i:03d}")
    d.order("a", "2023-05-20 10:00:00", 100, buyer="z")  # self live 100: active
    d.order("a", "2023-04-20 10:00:00", 1000, buyer="z")  # previous 1000: growth (100 − 1000)/1000 = −0.9
    res = d.score(rules, upto="merchant").scorecards["merchant"]
    row = rows_of(res)["a"]
    # diligence = 100 × (50 × 1 + 30 × 1 + 20 × 1)/100 = 100; distribution = 100 × (50 + 30 + 20 × 1)/100 = 100
    # incremental = 100 × (40 × 0 + 40 × 0 + 20 × 0)/100 = 0; total = (30 × 100 + 35 × 100 + 35 × 0)/100 = 65
    check(row, {"diligence": 100, "distribution": 100, "incremental": 0, "total": 65})
    assert (row["eligible"], row["tier"], row["rank"]) == (True, "A", 1)
    # the only participant: its share, the whole pool, exceeds the cap of 100,000,000
    assert (row["grant"], row["grant_note"]) == (100_000_000, "capped")
    totals = res.totals()
    assert (totals["allocated"], totals["unallocated"]) == (100_000_000, 3_900_000_000)


def _custom(tiers: str, gates: str = "", reward: str = "") -> Ruleset:
    """A one-metric ruleset whose total equals x = Σ duration_minutes of a shop's May sessions."""
    text = textwrap.dedent(
        """\
        version: 1
        name: tiny
        period: month
        scorecards:
          merchant:
            key: shop_id
            metrics:
              x:
                from: livestreams
                value: sum(duration_minutes)
            scores:
              total:
                parts:
                  - {metric: x, weight: 1, normalize: {linear: [0, 100]}}
            rank_by: total
        """
    )
    for block in (gates, tiers, reward):
        text += textwrap.indent(textwrap.dedent(block), "    ")
    return parse_ruleset(text, "tiny.yaml")


def _totals(values: dict[str, float]) -> Data:
    d = Data()
    for shop, x in values.items():
        d.live(shop, "2023-05-10 10:00:00", x)
    return d


def test_tier_boundaries_use_values_rounded_to_6_decimals() -> None:
    ruleset = _custom(
        """\
        tiers:
          - {name: S, min_score: 80, multiplier: 3}
          - {name: A, min_score: 65, multiplier: 2}
        """,
        gates="""\
        gates:
          - {id: floor, when: x >= 60, reason: below 60}
        """,
    )
    d = _totals(
        {
            "s80": 80,  # exactly 80 → S
            "s_rounds_up": 79.9999996,  # rounds to 80.000000 → S
            "a_below": 79.999999,  # just below 80 → A
            "a65": 65,  # exactly 65 → A
            "none_below": 64.999999,  # below the lowest tier: eligible, no tier
            "gate_rounds_up": 59.9999996,  # 60.000000 ≥ 60 → passes
            "gate_below": 59.999999,  # fails
        }
    )
    m = rows(d.score(ruleset))
    assert m["s80"]["total"] == pytest.approx(80)
    tiers = {k: (r["tier"], r["eligible"]) for k, r in m.items()}
    assert tiers == {
        "s80": ("S", True),
        "s_rounds_up": ("S", True),
        "a_below": ("A", True),
        "a65": ("A", True),
        "none_below": (None, True),
        "gate_rounds_up": (None, True),
        "gate_below": (None, False),
    }
    assert m["gate_below"]["failed_gates"] == ["floor"]


# --- ranking and grants ----------------------------------------------------------------------------------


_TIERS_80_60 = """\
tiers:
  - {name: S, min_score: 75, multiplier: 3}
  - {name: A, min_score: 60, multiplier: 2}
"""


def test_grants_by_largest_remainder_two_entities() -> None:
    ruleset = _custom(_TIERS_80_60, reward="reward: {pool: 100, unit: impressions}\n")
    m = rows(_totals({"a": 80, "b": 70}).score(ruleset))
    # weights 3 × 80 = 240 and 2 × 70 = 140; shares 100 × 240/380 = 63.157…, 100 × 140/380 = 36.842…
    # floors 63 + 36 = 99; the unit left goes to the larger fractional part (b's .842)
    assert (m["a"]["grant"], m["b"]["grant"]) == (63, 37)
    assert (m["a"]["rank"], m["b"]["rank"]) == (1, 2)
    assert isinstance(m["a"]["grant"], int)


@pytest.mark.parametrize(
    ("pool", "grants"),
    [
        # weights b 3×80 = 240, a 2×70 = 140, c 2×70 = 140 (Σ 520)
        (100, {"b": 46, "a": 27, "c": 27}),  # 46.15, 26.92, 26.92 → floors 98, 2 left → a, c (.92 > .15)
        (101, {"b": 47, "a": 27, "c": 27}),  # 46.62, 27.19, 27.19 → floors 100, 1 left → b (.62)
        # 0.92, 0.54, 0.54 → floors 0, 2 left → b, then the a/c tie of remainders goes in rank order → a
        (2, {"b": 1, "a": 1, "c": 0}),
    ],
)
def test_ranking_ties_and_grants_sum_to_pool(pool: int, grants: dict[str, int]) -> None:
    ruleset = _custom(
        _TIERS_80_60,
        gates="gates:\n  - {id: small, when: x < 85, reason: too big}\n",
        reward=f"reward: {{pool: {pool}, unit: impressions}}\n",
    )
    run = _totals({"c": 70, "a": 70, "b": 80, "d": 90, "e": 50}).score(ruleset)
    m = rows(run)
    # total desc, key asc for ties; d is not eligible (no rank); e is eligible below the lowest tier
    assert {k: r["rank"] for k, r in m.items()} == {"b": 1, "a": 2, "c": 3, "e": 4, "d": None}
    assert {k: r["tier"] for k, r in m.items()} == {"b": "S", "a": "A", "c": "A", "e": None, "d": None}
    assert {k: m[k]["grant"] for k in grants} == grants
    assert (m["d"]["grant"], m["e"]["grant"]) == (0, 0)
    assert sum(r["grant"] for r in m.values()) == pool
    assert run.scorecards["merchant"].totals()["unallocated"] == 0


# --- the promoter scorecard ------------------------------------------------------------------------------


def test_promoter_scorecard_uses_merchant_eligibility_and_carried_reviews(rules: Ruleset) -> None:
    d = Data()
    eligible_merchant(d, "e1")
    eligible_merchant(d, "e2")
    eligible_merchant(d, "n1", live_days=())  # fails stable_live
    dist: dict[str, Any] = {"mode": "distribution", "carrier": "video"}
    o1 = d.order("e1", "2023-05-05 10:00:00", 1000, promoter="p1", **dist)  # carried
    # net 700 − 200 = 500
    o2 = d.order("e1", "2023-05-06 10:00:00", 700, refund=200, status="completed", promoter="p1", **dist)
    d.order("e1", "2023-05-07 10:00:00", 999, status="closed", promoter="p1", **dist)  # not valid
    d.order("e1", "2023-05-08 10:00:00", 999, status="pending", promoter="p1", **dist)  # not valid
    o_old = d.order("e1", "2023-04-30 23:59:59", 300, promoter="p1", **dist)  # before the period
    d.order("n1", "2023-05-05 10:00:00", 500, promoter="p1", **dist)  # merchant not eligible
    d.order("n1", "2023-05-09 10:00:00", 800, promoter="p2", **dist)  # p2 carries only for n1
    o3 = d.order("e2", "2023-05-10 10:00:00", 100, promoter="p3", **dist)
    own = d.order("e1", "2023-05-11 10:00:00", 50, buyer="own")  # self order: no promoter
    # p1 reviews: 8 without promoter_id, attributed through their order, and 2 that name p1 themselves
    for i in range(8):
        d.review("e1", f"2023-05-{12 + i:02d} 12:00:00", 4, service=5, order_id=(o1, o2, o_old)[i % 3])
    d.review("e1", "2023-05-25 12:00:00", 4, service=5, promoter="p1")
    d.review("e1", "2023-05-26 12:00:00", 4, service=5, promoter="p1")
    d.review("e1", "2023-03-02 23:59:59", 1, service=1, order_id=o1)  # before the 90d window
    d.review("e1", "2023-05-27 12:00:00", 1, service=1, order_id=own)  # a self order's review: nobody's
    # p3: 9 reviews → reputation NULL (fewer than 10)
    for i in range(9):
        d.review("e2", f"2023-05-{12 + i:02d} 13:00:00", 5, service=5, order_id=o3)
    # p1's own live room: 3 days of sessions ≥ 30 min; a 29-minute one and e1's self sessions do not count
    d.live("e1", "2023-05-01 10:00:00", 60, host="promoter", promoter="p1")
    d.live("e1", "2023-05-02 10:00:00", 30, host="promoter", promoter="p1")
    d.live("e1", "2023-05-02 22:00:00", 40, host="promoter", promoter="p1")
    d.live("e1", "2023-05-03 10:00:00", 45, host="promoter", promoter="p1")
    d.live("e1", "2023-05-04 10:00:00", 29, host="promoter", promoter="p1")
    run = d.score(rules)
    m = rows(run)
    # e1 has 11 reviews in 90d, e2 has 9: store_experience NULL passes; n1 fails stable_live
    assert [m[k]["eligible"] for k in ("e1", "e2", "n1")] == [True, True, False]
    p = rows(run, "promoter")
    assert set(p) == {"p1", "p2", "p3"}  # "ph" (April only) is outside every promoter window

    # p1: carried = 1000 + 500 (e1, valid, May); n1's order does not count; 1 merchant
    check(p["p1"], {"carried_gmv": 1500, "carried_merchants": 1, "promoter_live_days": 3})
    check(p["p1"], {"reviews_90d": 10, "quality_avg_90d": 4, "service_avg_90d": 5, "negative_rate_90d": 0})
    # reputation = 5 × (50 × (4−1)/4 + 25 × (5−1)/4 + 25 × (0−0.1)/(0−0.1)) / 100 = 5 × 87.5/100 = 4.375
    # contribution = 100 × (70 × ln(1+1500)/ln(1+500000) + 30 × (1−1)/(10−1)) / 100
    # total = 100 × (70 × contribution/100 + 15 × (3−2)/(20−2) + 15 × 4.375/5) / 100
    contribution = 70 * ln(1501) / ln(500_001)  # 39.01…
    total = 0.70 * contribution + 15 / 18 + 15 * 4.375 / 5  # 41.27…
    check(p["p1"], {"reputation": 4.375, "contribution": contribution, "total": total})
    assert (p["p1"]["eligible"], p["p1"]["tier"], p["p1"]["rank"]) == (True, "B", 1)
    assert p["p1"]["grant"] == 50_000_000  # the only participant: capped

    # p2: only an ineligible merchant's GMV → 0 → fails `carried`
    check(p["p2"], {"carried_gmv": 0, "carried_merchants": 0, "reviews_90d": 0, "reputation": None})
    assert (p["p2"]["eligible"], p["p2"]["failed_gates"]) == (False, ["carried"])

    # p3: 9 reviews → reputation NULL → its gate passes (missing: pass) and the part counts 0
    # total = 100 × (70 × (70 × ln(101)/ln(500001))/100 + 15 × 0 + 15 × 0) / 100
    check(p["p3"], {"carried_gmv": 100, "reviews_90d": 9, "reputation": None})
    check(p["p3"], {"total": 0.7 * 70 * ln(101) / ln(500_001)})  # 17.2… < 20: no tier
    assert (p["p3"]["eligible"], p["p3"]["failed_gates"], p["p3"]["tier"]) == (True, [], None)
    assert p["p3"]["grant"] == 0


# --- scoring is a pure function of (data, ruleset, period) -----------------------------------------------


def test_two_rulesets_side_by_side_on_one_connection(rules: Ruleset) -> None:
    # SPEC §8 / scoring.py: two rulesets can be scored side by side on one connection
    d = Data()
    eligible_merchant(d, "g")
    first = rows(d.score(rules))["g"]
    tiny = _custom("tiers:\n  - {name: S, min_score: 0, multiplier: 1}\n")
    second = rows(d.score(tiny))["g"]
    again = rows(d.score(rules))["g"]
    assert second["total"] == pytest.approx(100)  # x = 8 × 60 = 480 min, beyond linear [0, 100] → 1
    assert first == again
