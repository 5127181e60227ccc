"""`chuanliu integrity`: the rows the integrity flags catch in a period, who they belong to, and threshold
bunching (SPEC §11). The flags themselves are defined once, in rules/integrity.py; this module runs them
(on DuckDB or Spark, through the Engine) and adds them up.

Bunching: for each gate conjunct `metric op t` and each tier's `min_score` t, the entities just on the
passing side of t against those just on the failing side, in a window w = `bunching.window` × |t| (at least
the metric's smallest step as its values show it: 1 for counts, 0.01 for amounts); one-sided binomial test
with p = 1/2, flagged when p < `bunching.alpha`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from fractions import Fraction
from typing import TYPE_CHECKING

from sqlglot import exp

from chuanliu_cli import schema
from chuanliu_cli.periods import Period
from chuanliu_cli.rules import integrity as flags
from chuanliu_cli.rules.expressions import column, ident
from chuanliu_cli.rules.model import Integrity, Ruleset, Scorecard
from chuanliu_cli.scoring.flagcounts import entity_flags, entity_tables

if TYPE_CHECKING:
    import polars as pl

    from chuanliu_cli.engines.base import Engine
    from chuanliu_cli.scoring.pipeline import ScorecardResult

#: The columns of `--rows`, in order.
ROW_COLUMNS = ("flag", "table", "key", "shop_id", "promoter_id", "buyer_id", "time", "amount")
#: Largest n summed exactly (big integers); above it the tail is summed in log space.
EXACT_TAIL_MAX_N = 2000
#: How many entities the report lists, largest flagged share first.
TOP_ENTITIES = 20


@dataclass(frozen=True)
class FlagCount:
    """One flag in the period: rows flagged, their amount (net GMV of orders, GMV of sessions), the shops
    and promoters they belong to, and whether the ruleset excludes such rows (names the flag)."""

    flag: str
    table: str
    rows: int
    amount: float
    shops: int
    promoters: int
    excluded: bool


#: A bunching test with nobody within its window on either side: no test, never "no sign of bunching".
NOT_TESTED = "not tested: nobody within the window"


@dataclass(frozen=True)
class Bunching:
    """A threshold and the entities just either side of it."""

    scorecard: str
    rule: str  # `gate stable_live`, `tier S`
    metric: str
    op: str
    threshold: float
    window: float
    passing: int  # entities just on the passing side: [t, t + w) for >=
    failing: int  # just on the failing side: [t − w, t) for >=
    p_value: float | None  # None: nobody within the window
    flagged: bool

    @property
    def verdict(self) -> str:
        """The test's outcome in words, as the `integrity` table and the report both say it."""
        if self.p_value is None:
            return NOT_TESTED
        return "bunched" if self.flagged else "no sign of bunching"


@dataclass(frozen=True)
class IntegrityResult:
    """`Session.integrity`: the flags of a period, the entities most affected, bunching, and the rows."""

    ruleset: Ruleset
    period: Period
    scorecard: str
    key: str  # the column entities are counted by (the scorecard's row key)
    flags: tuple[FlagCount, ...]
    entities: pl.DataFrame  # key, orders, gmv, flagged_orders, flagged_gmv, sessions, idle, reviews, ...
    bunching: tuple[Bunching, ...]
    rows: pl.DataFrame | None  # every flagged row (ROW_COLUMNS), when asked for
    warnings: tuple[str, ...] = ()


# --- the binomial test --------------------------------------------------------------------------------------


def binomial_tail(k: int, n: int) -> float:
    """P(X ≥ k) for X ~ Binomial(n, 1/2): exact (Σ C(n, i) / 2ⁿ in integers) up to n = 2000, above that
    summed in log space with lgamma, largest term first (relative error ~1e-12)."""
    if n < 0:
        raise ValueError("n must be ≥ 0")
    if k <= 0:
        return 1.0
    if k > n:
        return 0.0
    if n <= EXACT_TAIL_MAX_N:
        return float(Fraction(sum(math.comb(n, i) for i in range(k, n + 1)), 2**n))
    log_half = n * math.log(0.5)
    logs = [
        math.lgamma(n + 1) - math.lgamma(i + 1) - math.lgamma(n - i + 1) + log_half for i in range(k, n + 1)
    ]
    top = max(logs)
    return min(1.0, math.exp(top) * math.fsum(math.exp(x - top) for x in logs))


def thresholds(sc: Scorecard) -> list[tuple[str, str, str, float]]:
    """(rule, metric, op, t) for each gate conjunct `name op constant` (op an inequality) and each tier."""
    from chuanliu_cli.scoring.gates import comparisons

    out: list[tuple[str, str, str, float]] = []
    for gate in sc.gates:
        for name, op, t in comparisons(gate) or []:
            if op in (">=", ">", "<=", "<"):
                out.append((f"gate {gate.id}", name, op, t))
    for tier in sc.tiers:
        out.append((f"tier {tier.name}", sc.rank_by, ">=", tier.min_score))
    return out


def bunching(res: ScorecardResult, integrity: Integrity) -> list[Bunching]:
    """The bunching test at every threshold of the scorecard (tiers among its eligible entities)."""
    import polars as pl

    from chuanliu_cli.scoring.allocation import round_micro

    sc, frame = res.scorecard, res.frame
    out = []
    for rule, name, op, t in thresholds(sc):
        if name not in frame.columns:
            continue
        rows = frame.filter(pl.col("eligible")) if rule.startswith("tier ") else frame
        # compared as the gates compare: in millionths, rounded half away from zero
        values = [round_micro(v) for v in rows[name].to_list() if v is not None and math.isfinite(v)]
        w = max(integrity.bunching_window * abs(t), smallest_step(values))
        passing, failing = _sides(values, op, round_micro(t), round_micro(w))
        p = binomial_tail(passing, passing + failing) if passing + failing else None
        flagged = p is not None and p < integrity.bunching_alpha
        out.append(Bunching(sc.name, rule, name, op, t, w, passing, failing, p, flagged))
    return out


def smallest_step(values: Sequence[int]) -> float:
    """The metric's smallest step as its values (millionths) show it: the largest of 1, 0.1, 0.01, ...,
    0.000001 that every value is a multiple of (a count 1, an amount in fen 0.01), 0 without values. SPEC
    §11's window is at least this: a threshold of 0 (`self_live_gmv > 0`) was never tested (a window of 0)
    when the step counted only for whole numbers."""
    if not values:
        return 0.0
    for unit in (1_000_000, 100_000, 10_000, 1_000, 100, 10):
        if all(v % unit == 0 for v in values):
            return unit / 1_000_000
    return 0.000001  # (the gates compare in millionths)


def _sides(values: Sequence[int], op: str, t: int, w: int) -> tuple[int, int]:
    """How many values lie just on the passing and just on the failing side of `op t` (millionths)."""
    if w <= 0:
        return 0, 0
    if op == ">=":
        return sum(t <= v < t + w for v in values), sum(t - w <= v < t for v in values)
    if op == ">":
        return sum(t < v <= t + w for v in values), sum(t - w < v <= t for v in values)
    if op == "<=":
        return sum(t - w < v <= t for v in values), sum(t < v <= t + w for v in values)
    return sum(t - w <= v < t for v in values), sum(t <= v < t + w for v in values)  # <


# --- the flagged rows and the entities' totals ------------------------------------------------------------


def _timestamp(day: date) -> exp.Expr:
    return exp.Cast(
        this=exp.Literal.string(f"{day.isoformat()} 00:00:00"),
        to=exp.DataType(this=exp.DataType.Type.TIMESTAMP),
    )


def _in_period(time: exp.Expr, period: Period) -> exp.Expr:
    return exp.and_(
        exp.GTE(this=time.copy(), expression=_timestamp(period.start)),
        exp.LT(this=time.copy(), expression=_timestamp(period.end)),
    )


def _amount(node: exp.Expr) -> exp.Expr:
    return exp.Cast(this=node, to=exp.DataType.build("DECIMAL(14,2)"))


def _text(node: exp.Expr) -> exp.Expr:
    return exp.Cast(this=node, to=exp.DataType.build("VARCHAR"))


def _with_flagged(
    select: exp.Select,
    integrity: Integrity,
    period: Period,
    tables: Sequence[str],
    shops: exp.Expr | None = None,
    marks: bool = False,
) -> exp.Select:
    wanted = {table: flags.FLAGS[table] for table in tables}
    ctes = flags.flag_ctes(integrity, wanted, {"orders": [(period.start, period.end)]}, shops, marks)
    for t in tables:
        ctes.append((flags.flagged_table(t), flags.flagged_source(integrity, t, flags.FLAGS[t], marks=marks)))
    for name, query in ctes:
        select = select.with_(exp.TableAlias(this=ident(name)), as_=query, copy=False)
    return select


def rows_query(integrity: Integrity, period: Period, dialect: str, marks: bool = False) -> str:
    """Every flagged row of the period, one line per (row, flag): ROW_COLUMNS (`marks`: the brushing orders
    the database keeps, store/brushing.py)."""
    parts: list[exp.Select] = []
    times = {"orders": "order_time", "livestreams": "start_time", "reviews": "review_time"}
    for table, table_flags in flags.FLAGS.items():
        alias = "t"
        source = exp.Table(this=ident(flags.flagged_table(table)), alias=exp.TableAlias(this=ident(alias)))
        for flag in table_flags:
            key = column(schema.TABLES[table].key, alias)
            promoter: exp.Expr = column("promoter_id", alias)
            buyer: exp.Expr = exp.Null()
            amount: exp.Expr = exp.Null()
            if table == "orders":
                buyer, amount = column("buyer_id", alias), column("net_amount", alias)
            elif table == "livestreams":
                amount = column("gmv", alias)
            else:  # a review's buyer and (when it has none) promoter are its order's
                buyer = column("buyer_id", "o")
                promoter = exp.Coalesce(this=promoter, expressions=[column("promoter_id", "o")])
            select = exp.select(
                exp.Alias(this=exp.Literal.string(flag), alias=ident("flag")),
                exp.Alias(this=exp.Literal.string(table), alias=ident("table")),
                exp.Alias(this=_text(key), alias=ident("key")),
                exp.Alias(this=_text(column("shop_id", alias)), alias=ident("shop_id")),
                exp.Alias(this=_text(promoter), alias=ident("promoter_id")),
                exp.Alias(this=_text(buyer), alias=ident("buyer_id")),
                exp.Alias(this=column(times[table], alias), alias=ident("time")),
                exp.Alias(this=_amount(amount), alias=ident("amount")),
            ).from_(source, copy=False)
            if table == "reviews":
                orders = exp.Table(this=ident("orders"), alias=exp.TableAlias(this=ident("o")))
                on = exp.EQ(this=column("order_id", "o"), expression=column("order_id", alias))
                select = select.join(orders, on=on, join_type="left", copy=False)
            condition = exp.and_(column(flag, alias), _in_period(column(times[table], alias), period))
            parts.append(select.where(condition, copy=False))
    query: exp.Expr = parts[0]
    for part in parts[1:]:
        query = exp.union(query, part, distinct=False)
    outer = exp.select(exp.Star()).from_(
        exp.Subquery(this=query, alias=exp.TableAlias(this=ident("f"))), copy=False
    )
    outer = outer.order_by(column("flag"), column("table"), column("time"), column("key"), copy=False)
    return _with_flagged(outer, integrity, period, list(flags.FLAGS), marks=marks).sql(dialect=dialect)


def _count_if(condition: exp.Expr | None) -> exp.Expr:
    count = exp.Count(this=exp.Star())
    return count if condition is None else exp.Filter(this=count, expression=exp.Where(this=condition))


def _sum_if(value: exp.Expr, condition: exp.Expr) -> exp.Expr:
    total = exp.Filter(this=exp.Sum(this=value), expression=exp.Where(this=condition))
    return exp.Coalesce(this=_amount(total), expressions=[_amount(exp.Literal.number(0))])


def entity_query(
    integrity: Integrity,
    period: Period,
    key: str,
    table: str,
    dialect: str,
    keys: Sequence[str] | None = None,
    marks: bool = False,
) -> str:
    """One table's totals per entity (`key`) in the period, flagged and not: orders (valid ones) and their
    net GMV, sessions, reviews; every entity of the period, or only `keys` (`marks`: as rows_query)."""
    alias = "t"
    k = column(key, alias)
    valid = flags.valid_order(alias)
    items: list[exp.Expr] = [exp.Alias(this=_text(k), alias=ident("key"))]
    if table == "orders":
        either = exp.Paren(this=exp.or_(column("brushing", alias), column("self_purchase", alias)))
        net = column("net_amount", alias)
        items += [
            exp.Alias(this=_count_if(valid), alias=ident("orders")),
            exp.Alias(this=_sum_if(net, valid.copy()), alias=ident("gmv")),
        ]
        for name, cond in (
            ("brushing", column("brushing", alias)),
            ("self_purchase", column("self_purchase", alias)),
            ("flagged", either),
        ):
            both = exp.and_(valid.copy(), cond)
            items += [
                exp.Alias(this=_count_if(both), alias=ident(f"{name}_orders")),
                exp.Alias(this=_sum_if(net.copy(), both.copy()), alias=ident(f"{name}_gmv")),
            ]
    elif table == "livestreams":
        items += [
            exp.Alias(this=_count_if(None), alias=ident("sessions")),
            exp.Alias(this=_count_if(column("idle", alias)), alias=ident("idle_sessions")),
        ]
    else:
        items += [
            exp.Alias(this=_count_if(None), alias=ident("reviews")),
            exp.Alias(this=_count_if(column("suspicious", alias)), alias=ident("suspicious_reviews")),
        ]
    time = {"orders": "order_time", "livestreams": "start_time", "reviews": "review_time"}[table]
    source = exp.Table(this=ident(flags.flagged_table(table)), alias=exp.TableAlias(this=ident(alias)))
    where = exp.and_(
        exp.Not(this=exp.Is(this=k.copy(), expression=exp.Null())), _in_period(column(time, alias), period)
    )
    if keys is not None:
        where = exp.and_(where, exp.In(this=k.copy(), expressions=[exp.Literal.string(x) for x in keys]))
    select = (
        exp.select(*items).from_(source, copy=False).where(where, copy=False).group_by(k.copy(), copy=False)
    )
    shops = None
    if keys is not None and key in schema.ORDERS.names:  # (explain) brushing over the shops of their orders
        wanted = [exp.Literal.string(x) for x in keys]
        shops = (
            exp.select(column("shop_id", "s"))
            .distinct()
            .from_(exp.Table(this=ident("orders"), alias=exp.TableAlias(this=ident("s"))), copy=False)
        )
        shops = shops.where(exp.In(this=column(key, "s"), expressions=wanted), copy=False)
    return _with_flagged(select, integrity, period, [table], shops, marks).sql(dialect=dialect)


def used_flags(ruleset: Ruleset) -> set[str]:
    """The flags some scorecard's `where` reads (directly or through a filter): the rows it excludes."""
    from chuanliu_cli.rules.expressions import bare_names
    from chuanliu_cli.rules.model import AggregateMetric, ConversionMetric

    exprs = [e for e in ruleset.filters.values()]
    for sc in ruleset.scorecards:
        for metric in sc.metrics:
            if isinstance(metric, AggregateMetric):
                exprs += [metric.value, *([metric.where] if metric.where is not None else [])]
            elif isinstance(metric, ConversionMetric):
                exprs += [s.where for s in (metric.first, metric.then) if s.where is not None]
    names: set[str] = set()
    for e in exprs:
        names |= set(bare_names(e))
    return names & set(flags.FLAG_TABLES)


def flag_counts(rows: pl.DataFrame, excluded: set[str]) -> tuple[FlagCount, ...]:
    """Per flag (every flag, also those that caught nothing): rows, amount, shops and promoters."""
    import polars as pl

    out = []
    for flag, table in flags.FLAG_TABLES.items():
        mine = rows.filter(pl.col("flag") == flag)
        # summed in decimals, then rounded to the cent (float sums leave 419.29999999999995)
        amount = round(float(mine["amount"].drop_nulls().sum() or 0), 2) if mine.height else 0.0
        out.append(
            FlagCount(
                flag,
                table,
                mine.height,
                float(amount or 0.0),
                mine["shop_id"].drop_nulls().n_unique(),
                mine["promoter_id"].drop_nulls().n_unique(),
                flag in excluded,
            )
        )
    return tuple(out)


def integrity_report(
    engine: Engine, ruleset: Ruleset, period: Period, res: ScorecardResult, with_rows: bool
) -> IntegrityResult:
    """The flags, the most affected entities (by the scorecard's row key) and the bunching tests."""
    sc = res.scorecard
    marks = engine.brushing_marks(ruleset.integrity)
    rows = engine.query(rows_query(ruleset.integrity, period, engine.dialect, marks))
    key = sc.row_key if entity_tables(sc.row_key) else "shop_id"
    entities = entity_flags(engine, ruleset.integrity, period, key)
    return IntegrityResult(
        ruleset=ruleset,
        period=period,
        scorecard=sc.name,
        key=key,
        flags=flag_counts(rows, used_flags(ruleset)),
        entities=entities,
        bunching=tuple(bunching(res, ruleset.integrity)),
        rows=rows if with_rows else None,
    )
