"""The integrity flags (SPEC §11): row flags derived at scoring time, written once as sqlglot trees.

`brushing` and `self_purchase` on orders, `idle` on livestreams and `suspicious` on reviews are columns of
the `flagged_<table>` CTE that the compiler reads instead of the table when a scorecard's `where` (or a
filter it uses) names a flag; a ruleset that names none pays nothing. The same trees render for DuckDB and
Spark, so both engines flag the same rows:

    brushing        among the valid orders of one (shop_id, buyer_id) ordered by order_time, order_id:
                    every run of k = `brushing.orders` consecutive orders whose first and last times are
                    less than `brushing.within` minutes apart, all its orders. Order i is in such a run when
                    for some m in 0..k-1 the run starting m orders before it (LAG m) and ending k-1-m orders
                    after it (LEAD k-1-m) spans less than `within`: one window pass, no self-join.
    self_purchase   a distribution order whose buyer_id is its promoter_id.
    idle            a session whose viewers are known and fewer than `idle.min_viewers_per_hour` an hour.
    suspicious      a review the export marks as cheating or invalid (the `cheat` column: the open
                    platform's cheatStatus/valid), or the review of a brushing order.

The brushing orders are found again by every query, unless the database keeps them: `load` sets each
order's `brushing_mark` for the default thresholds (store/brushing.py, with the query of
`brushing_order_ids`), and a query compiled with `marks=True` reads that column instead (a boolean column:
the orders' ids are not even read, unless reviews need the brushing orders).

The section is read here too (`read_integrity`), so that the parser has one hook.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from datetime import date, timedelta
from typing import TYPE_CHECKING

from sqlglot import exp

from chuanliu_cli import schema
from chuanliu_cli.rules.expressions import COLUMN_KINDS, ValueKind, column, ident
from chuanliu_cli.rules.flagnames import FLAG_LABELS as FLAG_LABELS
from chuanliu_cli.rules.flagnames import FLAG_TABLES as FLAG_TABLES
from chuanliu_cli.rules.flagnames import FLAGS
from chuanliu_cli.rules.model import Integrity

if TYPE_CHECKING:
    from yaml.nodes import Node

    from chuanliu_cli.rules.yamlnodes import NodeReader

#: The CTE of the brushing orders' ids, which flagged orders and reviews join.
BRUSHING_ORDERS = "brushing_orders"
#: An order that counts (SPEC §2): the orders brushing looks at.
INVALID_STATUSES = ("pending", "closed")

INTEGRITY_KEYS = ("brushing", "idle", "bunching")
BRUSHING_KEYS = ("orders", "within")
IDLE_KEYS = ("min_viewers_per_hour",)
BUNCHING_KEYS = ("window", "alpha")
#: Longest run of orders brushing looks for: each order of a run is one more LAG/LEAD in the query.
MAX_BRUSHING_ORDERS = 20
#: Longest brushing span, in minutes (a week): a burst is short by definition.
MAX_BRUSHING_MINUTES = 7 * 24 * 60


def row_columns(table: str) -> tuple[str, ...]:
    """The names a row expression over `table` may use: its columns, then its flags."""
    return (*schema.TABLES[table].names, *FLAGS.get(table, ()))


def row_kinds(table: str) -> dict[str, ValueKind]:
    """What each name of row_columns(table) holds: its column type's kind; a flag is true/false."""
    kinds: dict[str, ValueKind] = {flag: "boolean" for flag in FLAGS.get(table, ())}
    kinds.update((c.name, COLUMN_KINDS[c.type]) for c in schema.TABLES[table].columns)
    return kinds


def is_flag(table: str, name: str) -> bool:
    """Whether `name` is a flag of `table`."""
    return name in FLAGS.get(table, ())


def flagged_table(source: str) -> str:
    """The CTE holding `source`'s rows with the flags a scorecard uses (`flagged_orders`)."""
    return f"flagged_{source}"


# --- the integrity: section -------------------------------------------------------------------------


def read_integrity(reader: NodeReader, node: Node) -> Integrity:
    """`integrity: {brushing: {orders, within}, idle: {min_viewers_per_hour}, bunching: {window, alpha}}`,
    each key optional (the §11 defaults); every problem reported at its place."""
    found = reader.mapping(node, "integrity", INTEGRITY_KEYS)
    defaults = Integrity()
    if found is None:
        return defaults
    values: dict[str, float] = {}
    if "brushing" in found:
        part = reader.mapping(found["brushing"][1], "integrity brushing", BRUSHING_KEYS)
        if part is not None and "orders" in part:
            got = reader.integer(part["orders"][1], "brushing orders")
            if got is not None and not 2 <= got <= MAX_BRUSHING_ORDERS:
                reader.error(
                    part["orders"][1],
                    f"brushing orders must be from 2 to {MAX_BRUSHING_ORDERS} (a run of consecutive orders "
                    f"of one buyer), got {got}",
                )
            elif got is not None:
                values["orders"] = got
        if part is not None and "within" in part:
            within = reader.number(part["within"][1], "brushing within (minutes)")
            if within is not None and not 0 < within <= MAX_BRUSHING_MINUTES:
                reader.error(
                    part["within"][1],
                    f"brushing within is minutes, more than 0 and at most {MAX_BRUSHING_MINUTES} (a week), "
                    f"got {within:g}",
                )
            elif within is not None and not (within * 60).is_integer():
                reader.error(
                    part["within"][1], f"brushing within must be whole seconds (minutes × 60), got {within:g}"
                )
            elif within is not None:
                values["within"] = within
    if "idle" in found:
        part = reader.mapping(found["idle"][1], "integrity idle", IDLE_KEYS)
        if part is not None and "min_viewers_per_hour" in part:
            rate = reader.number(part["min_viewers_per_hour"][1], "idle min_viewers_per_hour")
            if rate is not None and rate < 0:
                reader.error(
                    part["min_viewers_per_hour"][1], f"min_viewers_per_hour must be ≥ 0, got {rate:g}"
                )
            elif rate is not None:
                values["rate"] = rate
    if "bunching" in found:
        part = reader.mapping(found["bunching"][1], "integrity bunching", BUNCHING_KEYS)
        for key, low, high in (("window", 0.0, 1.0), ("alpha", 0.0, 0.5)):
            if part is None or key not in part:
                continue
            got_f = reader.number(part[key][1], f"bunching {key}")
            if got_f is not None and not low < got_f <= high:
                reader.error(part[key][1], f"bunching {key} must be more than {low:g} and at most {high:g}")
            elif got_f is not None:
                values[key] = got_f
    return Integrity(
        brushing_orders=int(values.get("orders", defaults.brushing_orders)),
        brushing_within=values.get("within", defaults.brushing_within),
        idle_min_viewers_per_hour=values.get("rate", defaults.idle_min_viewers_per_hour),
        bunching_window=values.get("window", defaults.bunching_window),
        bunching_alpha=values.get("alpha", defaults.bunching_alpha),
        loc=reader.loc(node),
    )


# --- the flags as sqlglot trees ---------------------------------------------------------------------


def _number(value: float) -> exp.Expr:
    """A DOUBLE literal (Spark would read `10.5` as a DECIMAL)."""
    text = str(int(value)) if float(value).is_integer() else repr(float(value))
    return exp.Cast(this=exp.Literal.number(text), to=exp.DataType(this=exp.DataType.Type.DOUBLE))


def _string(value: str) -> exp.Expr:
    return exp.Literal.string(value)


def _false_if_null(node: exp.Expr) -> exp.Expr:
    """A flag is TRUE or FALSE, never NULL: `not brushing` keeps the rows nothing flags."""
    return exp.Coalesce(this=node, expressions=[exp.false()])


def valid_order(alias: str) -> exp.Expr:
    """`status NOT IN ('pending', 'closed')`: a valid order (SPEC §2)."""
    inside = exp.In(this=column("status", alias), expressions=[_string(s) for s in INVALID_STATUSES])
    return exp.Not(this=inside)


def _not_null(name: str, alias: str) -> exp.Expr:
    return exp.Not(this=exp.Is(this=column(name, alias), expression=exp.Null()))


def _runs(integrity: Integrity, alias: str) -> exp.Expr:
    """TRUE for the orders of `alias` (valid orders with a shop and a buyer) in a run of `brushing_orders`
    consecutive orders of one (shop, buyer) spanning less than `brushing_within` minutes (LAG/LEAD)."""
    k = integrity.brushing_orders
    seconds = integrity.brushing_seconds
    time = column("order_time", alias)

    def over(node: exp.Expr) -> exp.Window:
        return exp.Window(
            this=node,
            partition_by=[column("shop_id", alias), column("buyer_id", alias)],
            order=exp.Order(
                expressions=[
                    exp.Ordered(this=time.copy(), nulls_first=False),
                    exp.Ordered(this=column("order_id", alias), nulls_first=False),
                ]
            ),
            over="OVER",
        )

    def shifted(kind: type[exp.Lag] | type[exp.Lead], steps: int) -> exp.Expr:
        return time.copy() if steps == 0 else over(kind(this=time.copy(), offset=exp.Literal.number(steps)))

    spans: list[exp.Expr] = []
    for m in range(k):  # the run of k orders starting m orders before this one
        first, last = shifted(exp.Lag, m), shifted(exp.Lead, k - 1 - m)
        limit = exp.Add(
            this=first, expression=exp.Interval(this=_string(str(seconds)), unit=exp.Var(this="SECOND"))
        )
        spans.append(exp.LT(this=last, expression=limit))
    runs = exp.or_(*spans) if len(spans) > 1 else spans[0]
    return _false_if_null(runs)


def self_purchase(alias: str) -> exp.Expr:
    """A distribution order whose buyer is its promoter."""
    return _false_if_null(
        exp.and_(
            exp.EQ(this=column("sale_mode", alias), expression=_string("distribution")),
            exp.EQ(this=column("buyer_id", alias), expression=column("promoter_id", alias)),
        )
    )


def idle(integrity: Integrity, alias: str) -> exp.Expr:
    """viewers known and viewers < rate × duration_minutes / 60, as `viewers × 60 < rate × duration`
    (no division: DuckDB and Spark compare the same doubles)."""
    viewers = exp.Mul(this=column("viewers", alias), expression=exp.Literal.number(60))
    allowed = exp.Mul(
        this=_number(integrity.idle_min_viewers_per_hour), expression=column("duration_minutes", alias)
    )
    return _false_if_null(exp.and_(_not_null("viewers", alias), exp.LT(this=viewers, expression=allowed)))


def _timestamp(day: date) -> exp.Expr:
    return exp.Cast(
        this=_string(f"{day.isoformat()} 00:00:00"), to=exp.DataType(this=exp.DataType.Type.TIMESTAMP)
    )


def _in_days(time: exp.Expr, ranges: Sequence[tuple[date, date]]) -> exp.Expr:
    parts = [
        exp.and_(
            exp.GTE(this=time.copy(), expression=_timestamp(a)),
            exp.LT(this=time.copy(), expression=_timestamp(b)),
        )
        for a, b in ranges
    ]
    return parts[0] if len(parts) == 1 else exp.Paren(this=exp.or_(*parts))


def _widened(integrity: Integrity, ranges: Iterable[tuple[date, date]]) -> list[tuple[date, date]]:
    """The ranges widened by the brushing span, in whole days, merged: an order's run lies within
    `within` of it, so the flags of the orders inside `ranges` are exact from these rows."""
    margin = timedelta(days=math.ceil(integrity.brushing_within / 1440))
    merged: list[tuple[date, date]] = []
    for start, end in sorted((a - margin, b + margin) for a, b in ranges):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        else:
            merged.append((start, end))
    return merged


def _select(table: str, alias: str, flags: dict[str, exp.Expr], base: str | None = None) -> exp.Select:
    items: list[exp.Expr] = [
        exp.Alias(this=column(name, alias), alias=ident(name)) for name in schema.TABLES[table].names
    ]
    items += [exp.Alias(this=tree, alias=ident(flag)) for flag, tree in flags.items()]
    source = exp.Table(this=ident(base or table), alias=exp.TableAlias(this=ident(alias)))
    return exp.select(*items).from_(source, copy=False)


def _sub(select: exp.Select, alias: str) -> exp.Subquery:
    return exp.Subquery(this=select, alias=exp.TableAlias(this=ident(alias)))


def _cte(name: str, alias: str) -> exp.Table:
    return exp.Table(this=ident(name), alias=exp.TableAlias(this=ident(alias)))


def brushing_ctes(
    integrity: Integrity,
    ranges: Sequence[tuple[date, date]] | None = None,
    shops: exp.Expr | None = None,
) -> list[tuple[str, exp.Select]]:
    """The CTEs ending with `brushing_orders`: the distinct order_id of the brushing orders (of every
    time, or of the orders in `ranges` widened by the brushing span).

    The exact window runs over a few candidate orders only, found by aggregates over integers (a hash of
    the (shop, buyer) pair: a collision only adds candidates). `brushing_pairs`: the pairs with at least k
    valid orders; `brushing_paired`: their orders, with two grids of 2W-second buckets offset by W. A run
    of k orders spanning less than W seconds lies inside one bucket of one grid (an interval shorter than
    W holds at most one of their boundaries, which are W apart), so its orders are in a (pair, bucket) of
    one grid with at least k orders: the candidates. The flags are exact: every order between two
    candidates of a run is itself a candidate, so candidates consecutive in a run are consecutive orders.
    """
    k = integrity.brushing_orders
    w = integrity.brushing_seconds
    o = "o"
    seconds = exp.TimeToUnix(this=column("order_time", o))

    def grid(shift: int) -> exp.Expr:
        moved = (
            exp.Add(this=seconds.copy(), expression=exp.Literal.number(shift)) if shift else seconds.copy()
        )
        return exp.Floor(this=exp.Div(this=exp.Paren(this=moved), expression=exp.Literal.number(2 * w)))

    at_least_k = exp.GTE(this=exp.Count(this=exp.Star()), expression=exp.Literal.number(k))
    keys = ("order_id", "shop_id", "buyer_id", "order_time")
    condition = exp.and_(valid_order(o), _not_null("shop_id", o), _not_null("buyer_id", o))
    if ranges:
        condition = exp.and_(condition, _in_days(column("order_time", o), _widened(integrity, ranges)))
    if shops is not None:  # a shop's flags depend on its own orders only (runs are per shop and buyer)
        condition = exp.and_(
            condition, exp.In(this=column("shop_id", o), query=exp.Subquery(this=shops.copy()))
        )
    pair = exp.Anonymous(this="HASH", expressions=[column("shop_id", o), column("buyer_id", o)])
    valid = (
        exp.select(
            *(exp.Alias(this=column(c, o), alias=ident(c)) for c in keys),
            exp.Alias(this=pair, alias=ident("pair")),
        )
        .from_(_cte("orders", o), copy=False)
        .where(condition, copy=False)
    )
    pairs = (
        exp.select(column("pair", "v"))
        .from_(_sub(valid.copy(), "v"), copy=False)
        .group_by(column("pair", "v"), copy=False)
        .having(at_least_k.copy(), copy=False)
    )
    paired = (
        exp.select(
            *(exp.Alias(this=column(c, o), alias=ident(c)) for c in (*keys, "pair")),
            exp.Alias(this=grid(0), alias=ident("grid_a")),
            exp.Alias(this=grid(w), alias=ident("grid_b")),
        )
        .from_(_sub(valid, o), copy=False)
        .join(
            _cte("brushing_pairs", "p"),
            on=exp.EQ(this=column("pair", "p"), expression=column("pair", o)),
            copy=False,
        )
    )
    c = "c"
    candidates = exp.select(*(column(x, c) for x in keys)).from_(_cte("brushing_paired", c), copy=False)
    for bucket, alias in (("grid_a", "a"), ("grid_b", "b")):
        busy = (
            exp.select(column("pair", "g"), column(bucket, "g"))
            .from_(_cte("brushing_paired", "g"), copy=False)
            .group_by(column("pair", "g"), column(bucket, "g"), copy=False)
            .having(at_least_k.copy(), copy=False)
        )
        on = exp.and_(
            exp.EQ(this=column("pair", alias), expression=column("pair", c)),
            exp.EQ(this=column(bucket, alias), expression=column(bucket, c)),
        )
        candidates = candidates.join(_sub(busy, alias), on=on, join_type="left", copy=False)
    candidates = candidates.where(exp.or_(_not_null("pair", "a"), _not_null("pair", "b")), copy=False)
    runs = exp.select(
        exp.Alias(this=column("order_id", "r"), alias=ident("order_id")),
        exp.Alias(this=_runs(integrity, "r"), alias=ident("brushing")),
    ).from_(_sub(candidates, "r"), copy=False)
    brushed = (
        exp.select(column("order_id", "f"))
        .distinct()
        .from_(_sub(runs, "f"), copy=False)
        .where(column("brushing", "f"), copy=False)
    )
    return [("brushing_pairs", pairs), ("brushing_paired", paired), (BRUSHING_ORDERS, brushed)]


def brushing_order_ids(integrity: Integrity) -> exp.Select:
    """The order_id of every brushing order of the `orders` table (the query setting orders.brushing_mark)."""
    select = exp.select(column("order_id", BRUSHING_ORDERS)).from_(exp.Table(this=ident(BRUSHING_ORDERS)))
    for name, query in brushing_ctes(integrity):
        select = select.with_(exp.TableAlias(this=ident(name)), as_=query, copy=False)
    return select


def _marked_orders() -> exp.Select:
    """The brushing orders as the database keeps them: the orders whose brushing_mark is set."""
    o = "o"
    return (
        exp.select(column("order_id", o))
        .from_(exp.Table(this=ident("orders"), alias=exp.TableAlias(this=ident(o))), copy=False)
        .where(column(schema.BRUSHING_MARK, o), copy=False)
    )


def brushing_join(alias: str) -> tuple[exp.Table, exp.Expr]:
    """The brushing orders' CTE, to LEFT JOIN to the rows of `alias` (orders or reviews) on order_id."""
    table = exp.Table(this=ident(BRUSHING_ORDERS))
    return table, exp.EQ(this=column("order_id", BRUSHING_ORDERS), expression=column("order_id", alias))


def flag_expression(
    integrity: Integrity, source: str, flag: str, alias: str, marks: bool = False
) -> exp.Expr:
    """The flag as a boolean expression of a row of `source` read as `alias` (brushing and suspicious:
    of the brushing orders' CTE joined by brushing_join; brushing with `marks`: the order's kept mark)."""
    brushing: exp.Expr = exp.Not(this=exp.Is(this=column("order_id", BRUSHING_ORDERS), expression=exp.Null()))
    if marks:  # (a semi-join: the few marked orders' ids are the side kept in memory)
        brushing = _false_if_null(
            exp.In(
                this=column("order_id", alias),
                query=exp.Subquery(
                    this=exp.select(column("order_id")).from_(exp.Table(this=ident(BRUSHING_ORDERS)))
                ),
            )
        )
    if flag == "brushing":
        return _false_if_null(column(schema.BRUSHING_MARK, alias)) if marks else brushing
    if flag == "suspicious":
        return exp.or_(brushing, _false_if_null(column("cheat", alias)))
    if flag == "self_purchase":
        return _false_if_null(column(schema.SELF_PURCHASE_MARK, alias)) if marks else self_purchase(alias)
    if flag == "idle":
        return idle(integrity, alias)
    raise ValueError(f"{flag} is no flag of {source}")


def flagged_source(
    integrity: Integrity, source: str, flags: Iterable[str], base: str | None = None, marks: bool = False
) -> exp.Select:
    """`source`'s rows (read from `base`, e.g. the filled reviews, when given) with the `flags` asked for
    as boolean columns (the brushing orders' CTE of flag_ctes joined when they read it; with `marks`,
    orders read their brushing_mark instead)."""
    wanted = [f for f in FLAGS[source] if f in set(flags)]
    alias = "t"
    trees = {flag: flag_expression(integrity, source, flag, alias, marks) for flag in wanted}
    select = _select(source, alias, trees, base)
    if not marks and {"brushing", "suspicious"} & set(wanted):
        table, on = brushing_join(alias)
        select = select.join(table, on=on, join_type="left", copy=False)
    return select


def flag_ctes(
    integrity: Integrity,
    wanted: Mapping[str, Iterable[str]],
    ranges: Mapping[str, Sequence[tuple[date, date]]] | None = None,
    shops: exp.Expr | None = None,
    marks: bool = False,
) -> list[tuple[str, exp.Select]]:
    """The CTEs the `wanted` flags of each source read: `brushing_orders` when brushing or suspicious is
    wanted (over the orders of `ranges["orders"]` widened by the brushing span, or over every order when
    reviews need it: a review's order may be of any time; only the orders of the shops the query `shops`
    gives, when the rows read are theirs; or, with `marks`, the ones the database keeps, every time's:
    the same orders, found at load time); nothing otherwise."""
    suspicious = "suspicious" in set(wanted.get("reviews", ()))
    if not (suspicious or "brushing" in set(wanted.get("orders", ()))):
        return []
    if marks:  # orders read their mark; reviews need the marked orders' ids
        return [(BRUSHING_ORDERS, _marked_orders())] if suspicious else []
    order_ranges = None if suspicious else (ranges or {}).get("orders")
    return brushing_ctes(integrity, order_ranges, shops)
