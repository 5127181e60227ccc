"""Compile a scorecard's metrics into one SQL query per period (SPEC §4), without touching a database.

The query is a sqlglot tree built from `sqlglot.exp` nodes; user expressions enter as parsed, whitelisted
trees whose names are rewritten to quoted, qualified columns. Its shape, for a scorecard keyed by K:

    reviews_filled      reviews with promoter_id/item_id filled from orders (those the query reads)
    src_<source>        ONE grouped scan of each source over the union of its metric windows:
                        every metric is `agg(...) FILTER (WHERE <window> AND (<where>))`
    conv_<metric>_...   conversion metrics: earliest `first` / latest `then` per (K, conversion key)
    metric_values       every K seen in any source scan (windows apply, `where` does not): the scans
                        FULL JOINed on K, the conversions LEFT JOINed; count/sum metrics COALESCEd to 0
    (final select)      formulas computed from metric_values, in no set order

Only FILTER, NULLIF, COALESCE, CAST and the whitelisted functions appear, so the same tree renders for
Spark as well as DuckDB (SPEC §8). The tree is built for DuckDB's semantics; for Spark each user
expression is also rewritten where Spark would compute another value from the same SQL (decimal
averages and divisions, casts to integers, rounding, ln of 0, day of week, ...) and a ruleset using what
cannot be made identical is rejected (`expressions.for_dialect`, `expressions.dialect_problems`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date

from sqlglot import exp

from chuanliu_cli import schema
from chuanliu_cli.errors import RulesetError, UsageError
from chuanliu_cli.periods import Period
from chuanliu_cli.rules import integrity
from chuanliu_cli.rules.expressions import (
    COLUMN_KINDS,
    DIALECTS,
    SCORECARD_FIELD_KINDS,
    ValueKind,
    bare_names,
    column,
    dialect_problems,
    empty_value,
    for_dialect,
    guard_divisions,
    ident,
    parse_expression,
)
from chuanliu_cli.rules.model import (
    AggregateMetric,
    ConversionMetric,
    ConversionStep,
    Expr,
    FormulaMetric,
    KeyFrom,
    Metric,
    Ruleset,
    Scorecard,
    Window,
)
from chuanliu_cli.rules.windows import HistoryNeed as HistoryNeed  # (re-exported)
from chuanliu_cli.rules.windows import history_needed as history_needed  # (re-exported)
from chuanliu_cli.rules.windows import window_bounds

#: Columns of reviews filled from the review's order when the review itself has none (SPEC §2).
FILLED_REVIEW_COLUMNS = ("promoter_id", "item_id")
FILLED_REVIEWS = "reviews_filled"
METRIC_VALUES = "metric_values"


def scorecard_table(name: str) -> str:
    """The table holding an earlier scorecard's results (key, eligible, tier, total) for `where`."""
    return f"scorecard_{name}"


def key_table(key_from: KeyFrom) -> str:
    """The alias of the table a grouped scorecard reads its key from (`key_shops`)."""
    return f"key_{key_from.table}"


def entity_key(sc: Scorecard, alias: str) -> exp.Expr:
    """The entity of a row of the source `alias`: its key column, or for a grouped scorecard (key_from,
    SPEC §9) the key of its `on` row in the key table (joined as `key_table`), else its own `on` value:
    a shop without a group (NULL or empty group_id, or not in shops) is its own group."""
    if sc.key_from is None:
        return column(sc.key, alias)
    grouped = exp.Nullif(this=column(sc.key, key_table(sc.key_from)), expression=exp.Literal.string(""))
    return exp.Coalesce(this=grouped, expressions=[column(sc.key_from.on, alias)])


@dataclass(frozen=True)
class CompiledQuery:
    """A scorecard's metric query: one row per entity (in no set order), columns `key` then every metric."""

    sql: str
    tree: exp.Expr = field(compare=False)
    key: str
    columns: tuple[str, ...]


def _merge(ranges: Iterable[tuple[date, date]]) -> list[tuple[date, date]]:
    """Sorted, merged ranges: overlapping or touching ranges become one."""
    merged: list[tuple[date, date]] = []
    for start, end in sorted(set(ranges)):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        else:
            merged.append((start, end))
    return merged


def _timestamp(day: date) -> exp.Expr:
    """A TIMESTAMP literal for midnight of `day` (times are stored as naive local timestamps)."""
    return exp.Cast(
        this=exp.Literal.string(f"{day.isoformat()} 00:00:00"),
        to=exp.DataType(this=exp.DataType.Type.TIMESTAMP),
    )


def _in_ranges(time: exp.Expr, ranges: Sequence[tuple[date, date]]) -> exp.Expr:
    """`time >= start AND time < end`, OR-ed over disjoint ranges."""
    parts: list[exp.Expr] = [
        exp.and_(
            exp.GTE(this=time.copy(), expression=_timestamp(a)),
            exp.LT(this=time.copy(), expression=_timestamp(b)),
        )
        for a, b in ranges
    ]
    if len(parts) == 1:
        return parts[0]
    return exp.Paren(this=exp.or_(*parts))


def _double(node: exp.Expr) -> exp.Expr:
    return exp.Cast(this=node, to=exp.DataType(this=exp.DataType.Type.DOUBLE))


def _alias(node: exp.Expr, name: str) -> exp.Alias:
    return exp.Alias(this=node, alias=ident(name))


def _table(name: str, alias: str | None = None) -> exp.Table:
    table = exp.Table(this=ident(name))
    if alias is not None and alias != name:
        table.set("alias", exp.TableAlias(this=ident(alias)))
    return table


def _parenthesized(node: exp.Expr) -> exp.Expr:
    """`node` in parentheses, unless it already is (a where that is just a filter name)."""
    return node if isinstance(node, exp.Paren) else exp.Paren(this=node)


def _with_filter(tree: exp.Expr, condition: exp.Expr | None) -> exp.Expr:
    """Attach `FILTER (WHERE condition)` to every aggregate in `tree`."""
    if condition is None:
        return tree

    def attach(node: exp.Expr) -> exp.Expr:
        if isinstance(node, exp.AggFunc):
            return exp.Filter(this=node, expression=exp.Where(this=condition.copy()))
        return node

    return tree.transform(attach)


def _zero_sums(tree: exp.Expr) -> exp.Expr:
    """COALESCE(sum, 0): a sum over no matching rows is 0, like a count (SPEC §4)."""

    def wrap(node: exp.Expr) -> exp.Expr:
        inner = node.this if isinstance(node, exp.Filter) else node
        if isinstance(inner, exp.Sum):
            return exp.Coalesce(this=node, expressions=[exp.Literal.number(0)])
        return node

    return tree.transform(wrap)


class _Scan:
    """One source's grouped scan: the aggregate metrics it computes and the date ranges it covers."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.metrics: list[AggregateMetric] = []
        self.ranges: list[tuple[date, date]] = []


class _Compiler:
    """Compiles one scorecard for one period."""

    def __init__(
        self,
        ruleset: Ruleset,
        sc: Scorecard,
        period: Period,
        cast_metrics: bool,
        dialect: str = "duckdb",
        marks: bool = False,
    ) -> None:
        self.marks = marks  # read the brushing orders the database keeps (rules/integrity.flag_ctes)
        if dialect not in DIALECTS:
            raise UsageError(f"unknown SQL dialect {dialect!r}", hint=f"use one of {', '.join(DIALECTS)}")
        if period.kind != ruleset.period:
            raise UsageError(
                f"ruleset {ruleset.name} scores by {ruleset.period}, not by {period.kind}",
                hint=f"ask for a {ruleset.period} period",
            )
        self.ruleset = ruleset
        self.sc = sc
        self.period = period
        self.cast_metrics = cast_metrics
        self.dialect = dialect
        self.key = sc.key
        self.ctes: list[tuple[str, exp.Expr]] = []
        self.needs_fill = False
        self.fill: tuple[str, ...] = FILLED_REVIEW_COLUMNS  # the review columns filled from orders
        self.flagged: dict[str, set[str]] = {}  # source -> the integrity flags its rows need

    # -- user expressions ------------------------------------------------------------------------------

    def row_tree(self, expr: Expr, alias: str, joins: set[str]) -> exp.Expr:
        """A where/value tree over `alias`: columns qualified, filters inlined, scorecard refs joined."""
        tree = self._row_tree(expr, alias, joins, ())
        return for_dialect(tree, self.dialect, self.resolved_kind)

    def _row_tree(self, expr: Expr, alias: str, joins: set[str], seen: tuple[str, ...]) -> exp.Expr:
        columns = schema.TABLES[alias].names
        filters = self.ruleset.filters
        self.check_dialect(expr, self.written_kind(alias))

        def resolve(node: exp.Expr) -> exp.Expr:
            if not isinstance(node, exp.Column):
                return node
            name = str(node.name)
            if node.table:
                joins.add(str(node.table))
                return column(name, scorecard_table(str(node.table)))
            if name not in columns and integrity.is_flag(alias, name):  # a column of the flagged rows
                return column(name, alias)
            if name not in columns and name in filters:
                if name in seen:
                    raise RulesetError([f"{filters[name].loc}: filter '{name}' uses itself"])
                inner = self._row_tree(filters[name], alias, joins, (*seen, name))
                return exp.Paren(this=inner)
            return column(name, alias)

        return guard_divisions(parse_expression(expr).transform(resolve))

    # -- dialects --------------------------------------------------------------------------------------

    def check_dialect(self, expr: Expr, kind_of: Callable[[exp.Column], ValueKind]) -> None:
        """Reject an expression this dialect cannot compute as DuckDB does (nothing for DuckDB)."""
        errors = dialect_problems(expr, self.dialect, kind_of)
        if errors:
            raise RulesetError(
                errors, hint="score this ruleset with --engine duckdb, or rewrite the expression"
            )

    def written_kind(self, alias: str) -> Callable[[exp.Column], ValueKind]:
        """Kinds of the names as written in a where/value over `alias` (columns, filters, scorecards)."""
        kinds = integrity.row_kinds(alias)

        def kind(col: exp.Column) -> ValueKind:
            name = str(col.name)
            if col.table:
                return SCORECARD_FIELD_KINDS.get(name, "unknown")
            if name in kinds:
                return kinds[name]
            return "boolean" if name in self.ruleset.filters else "unknown"

        return kind

    @staticmethod
    def resolved_kind(col: exp.Column) -> ValueKind:
        """Kinds of the qualified columns of a resolved where/value tree."""
        table, name = str(col.table), str(col.name)
        if table in schema.TABLES and name in schema.TABLES[table].names:
            return COLUMN_KINDS[schema.TABLES[table].column(name).type]
        if table in schema.TABLES and integrity.is_flag(table, name):
            return "boolean"
        if table.startswith("scorecard_"):
            return SCORECARD_FIELD_KINDS.get(name, "unknown")
        return "unknown"

    def metric_kind(self, col: exp.Column) -> ValueKind:
        """Kinds of the metric names in a formula: DOUBLE when metrics are cast (as for scoring)."""
        return "double" if self.cast_metrics else "unknown"

    def condition(
        self,
        where: Expr | None,
        window: Window,
        scan_ranges: Sequence[tuple[date, date]],
        alias: str,
        joins: set[str],
    ) -> exp.Expr | None:
        """The FILTER condition of a metric: its window (unless the scan covers only it) and `where`."""
        parts: list[exp.Expr] = []
        time_column = schema.TABLES[alias].time_column
        if time_column is not None and [window_bounds(window, self.period)] != list(scan_ranges):
            parts.append(_in_ranges(column(time_column, alias), [window_bounds(window, self.period)]))
        if where is not None:
            parts.append(_parenthesized(self.row_tree(where, alias, joins)))
        return exp.and_(*parts) if parts else None

    def source_from(self, select: exp.Select, alias: str, joins: set[str]) -> exp.Select:
        """FROM the source (or the filled reviews), LEFT JOIN each earlier scorecard used."""
        base = FILLED_REVIEWS if alias == "reviews" and self.needs_fill else None
        if alias in self.flagged:
            # the rows with the integrity flags they are read with (SPEC §11), as a subquery of each scan:
            # each flag computed once a row, and only the columns the scan reads are read (a CTE read by
            # several scans would be materialized whole)
            flagged = integrity.flagged_source(
                self.ruleset.integrity, alias, self.flagged[alias], base, self.marks
            )
            subquery = exp.Subquery(this=flagged, alias=exp.TableAlias(this=ident(alias)))
            select = select.from_(subquery, copy=False)
        else:
            select = select.from_(_table(base or alias, alias), copy=False)
        earlier = [self.ruleset.scorecard(name) for name in sorted(joins)]
        # grouped scorecards (this one, and earlier ones read here) find their keys in the key table
        key_froms = {sc.key_from for sc in (self.sc, *earlier) if sc.key_from is not None}
        for key_from in sorted(key_froms, key=lambda k: (k.table, k.on)):
            on = exp.EQ(this=column(key_from.on, key_table(key_from)), expression=column(key_from.on, alias))
            keys = _table(key_from.table, key_table(key_from))
            select = select.join(keys, on=on, join_type="left", copy=False)
        for sc in earlier:
            table = scorecard_table(sc.name)
            on = exp.EQ(this=column(sc.key, table), expression=entity_key(sc, alias))
            select = select.join(_table(table), on=on, join_type="left", copy=False)
        return select

    # -- the parts of the query ------------------------------------------------------------------------

    def scans(self) -> dict[str, _Scan]:
        scans: dict[str, _Scan] = {}
        for metric in self.sc.metrics:
            steps: list[tuple[str, Window]] = []
            if isinstance(metric, AggregateMetric):
                steps = [(metric.source, metric.window)]
            elif isinstance(metric, ConversionMetric):
                steps = [(metric.first.source, metric.first.window), (metric.then.source, metric.then.window)]
            for source, window in steps:
                scan = scans.setdefault(source, _Scan(source))
                scan.ranges.append(window_bounds(window, self.period))
            if isinstance(metric, AggregateMetric):
                scans[metric.source].metrics.append(metric)
        # Schema order, not first use, so that reordering metrics does not reorder the SQL.
        return {name: scans[name] for name in schema.TABLES if name in scans}

    def scan_query(self, scan: _Scan) -> exp.Select:
        alias = scan.source
        ranges = _merge(scan.ranges)
        joins: set[str] = set()
        items: list[exp.Expr] = [_alias(entity_key(self.sc, alias), self.key)]
        for metric in scan.metrics:
            value = self.row_tree(metric.value, alias, joins)
            condition = self.condition(metric.where, metric.window, ranges, alias, joins)
            items.append(_alias(_zero_sums(_with_filter(value, condition)), metric.name))
        where: exp.Expr = exp.Not(this=exp.Is(this=entity_key(self.sc, alias), expression=exp.Null()))
        time_column = schema.TABLES[alias].time_column
        if time_column is not None:
            where = exp.and_(where, _in_ranges(column(time_column, alias), ranges))
        select = exp.select(*items)
        select = self.source_from(select, alias, joins)
        return select.where(where, copy=False).group_by(entity_key(self.sc, alias), copy=False)

    def filled_reviews(self, ranges: Sequence[tuple[date, date]]) -> exp.Expr:
        """Reviews whose promoter_id / item_id (those of `self.fill`: the ones the query reads) come from
        their order when the review has none.

        Only the reviews missing one of them are joined to orders (order_id is the key of orders, so a
        review meets at most one order and the rows are those of a join of every review): the reviews
        that have them are taken as they are, and the join no longer builds on every order of the data. A
        column the query does not read is not filled, and a review missing only that one is not joined
        (the product scorecard reads item_id: the reviews of self orders, which name no promoter, are not
        joined to 20M orders for nothing).
        """
        time_column = schema.REVIEWS.time_column or "review_time"
        in_window = _in_ranges(column(time_column, "r"), ranges)
        missing = exp.or_(*(exp.Is(this=column(name, "r"), expression=exp.Null()) for name in self.fill))
        kept = exp.select(*(_alias(column(name, "r"), name) for name in schema.REVIEWS.names))
        kept = kept.from_(_table("reviews", "r"), copy=False).where(
            exp.and_(in_window, exp.Not(this=exp.Paren(this=missing))), copy=False
        )
        items: list[exp.Expr] = []
        for name in schema.REVIEWS.names:
            if name in self.fill:
                filled = exp.Coalesce(this=column(name, "r"), expressions=[column(name, "o")])
                items.append(_alias(filled, name))
            else:
                items.append(_alias(column(name, "r"), name))
        on = exp.EQ(this=column("order_id", "o"), expression=column("order_id", "r"))
        joined = exp.select(*items).from_(_table("reviews", "r"), copy=False)
        joined = joined.join(_table("orders", "o"), on=on, join_type="left", copy=False)
        joined = joined.where(exp.and_(in_window.copy(), exp.Paren(this=missing.copy())), copy=False)
        return exp.union(kept, joined, distinct=False)

    def conversion(self, metric: ConversionMetric) -> str:
        """CTEs for a conversion metric; returns the name of the one holding (key, metric)."""
        first, then = metric.first, metric.then
        pairs = f"conv_{metric.name}_pairs"
        if first.source == then.source:
            self.same_source_pairs(metric, pairs)
        else:
            names = []
            for step, side, agg in ((first, "first", exp.Min), (then, "then", exp.Max)):
                name = f"conv_{metric.name}_{side}"
                self.ctes.append((name, self.step_query(metric, step, side, agg)))
                names.append(name)
            on = exp.and_(
                exp.EQ(this=column(self.key, names[0]), expression=column(self.key, names[1])),
                exp.EQ(
                    this=column("conversion_key", names[0]), expression=column("conversion_key", names[1])
                ),
            )
            select = exp.select(
                column(self.key, names[0]),
                column("conversion_key", names[0]),
                column("first_time", names[0]),
                column("then_time", names[1]),
            )
            select = select.from_(_table(names[0]), copy=False).join(_table(names[1]), on=on, copy=False)
            self.ctes.append((pairs, select))
        if metric.after:
            converted: exp.Expr = exp.GT(
                this=column("then_time", pairs), expression=column("first_time", pairs)
            )
        else:
            converted = exp.and_(self.not_null("first_time", pairs), self.not_null("then_time", pairs))
        name = f"conv_{metric.name}"
        select = exp.select(
            _alias(column(self.key, pairs), self.key), _alias(exp.Count(this=exp.Star()), metric.name)
        )
        select = select.from_(_table(pairs), copy=False).where(converted, copy=False)
        self.ctes.append((name, select.group_by(column(self.key, pairs), copy=False)))
        return name

    def same_source_pairs(self, metric: ConversionMetric, pairs: str) -> None:
        """The (key, conversion key, first_time, then_time) pairs of a conversion within one source.

        The step with the shorter window (the narrower side, e.g. this month's live-room orders) is
        grouped first; the other step's rows are then joined to those pairs only, so that the wide side
        (90 days of distribution orders) is never grouped by buyer in full. An inner join keeps exactly
        the pairs that have both steps, which is what the conversion counts; the result is the same as one
        grouping of both steps with FILTERed min/max, in about 60 % of the time on the default ruleset.
        """
        first, then = metric.first, metric.then

        def days(step: ConversionStep) -> int:
            start, end = window_bounds(step.window, self.period)
            return (end - start).days

        narrow_first = days(first) < days(then)
        narrow, wide = (first, then) if narrow_first else (then, first)
        narrow_side, wide_side = ("first", "then") if narrow_first else ("then", "first")
        narrow_agg, wide_agg = (exp.Min, exp.Max) if narrow_first else (exp.Max, exp.Min)
        narrow_name = f"conv_{metric.name}_{narrow_side}"
        self.ctes.append((narrow_name, self.step_query(metric, narrow, narrow_side, narrow_agg)))
        self.ctes.append(
            (pairs, self.step_query(metric, wide, wide_side, wide_agg, (narrow_name, narrow_side)))
        )

    def step_condition(self, step: ConversionStep, alias: str, joins: set[str]) -> exp.Expr:
        time = column(self.time_column(alias), alias)
        parts: list[exp.Expr] = [_in_ranges(time, [window_bounds(step.window, self.period)])]
        if step.where is not None:
            parts.append(_parenthesized(self.row_tree(step.where, alias, joins)))
        return exp.and_(*parts)

    def step_query(
        self,
        metric: ConversionMetric,
        step: ConversionStep,
        side: str,
        agg: type[exp.Min] | type[exp.Max],
        partner: tuple[str, str] | None = None,
    ) -> exp.Select:
        """(key, conversion key, `<side>_time`) per pair over the step's rows. With `partner` (the CTE of
        the other step and its side), only rows whose pair is in that CTE, and its time alongside."""
        alias = step.source
        joins: set[str] = set()
        condition = self.step_condition(step, alias, joins)
        items = [
            _alias(entity_key(self.sc, alias), self.key),
            _alias(column(metric.key, alias), "conversion_key"),
            _alias(agg(this=column(self.time_column(alias), alias)), f"{side}_time"),
        ]
        if partner is not None:
            other, other_side = partner
            items.append(_alias(exp.Max(this=column(f"{other_side}_time", other)), f"{other_side}_time"))
        select = self.source_from(exp.select(*items), alias, joins)
        if partner is not None:
            on = exp.and_(
                exp.EQ(this=entity_key(self.sc, alias), expression=column(self.key, other)),
                exp.EQ(this=column(metric.key, alias), expression=column("conversion_key", other)),
            )
            select = select.join(_table(other), on=on, copy=False)
        key = entity_key(self.sc, alias)
        where = exp.and_(
            exp.Not(this=exp.Is(this=key, expression=exp.Null())), self.not_null(metric.key, alias), condition
        )
        return select.where(where, copy=False).group_by(key.copy(), column(metric.key, alias), copy=False)

    @staticmethod
    def not_null(name: str, table: str) -> exp.Expr:
        return exp.Not(this=exp.Is(this=column(name, table), expression=exp.Null()))

    @staticmethod
    def time_column(source: str) -> str:
        time_column = schema.TABLES[source].time_column
        if time_column is None:
            raise RulesetError([f"{source} has no time column"])
        return time_column

    def formula_tree(self, metric: FormulaMetric) -> exp.Expr:
        """A formula over metric_values' columns; formulas it uses are inlined in parentheses."""
        return for_dialect(self._formula_tree(metric, ()), self.dialect, self.metric_kind)

    def _formula_tree(self, metric: FormulaMetric, seen: tuple[str, ...]) -> exp.Expr:
        self.check_dialect(metric.formula, self.metric_kind)

        def resolve(node: exp.Expr) -> exp.Expr:
            if not isinstance(node, exp.Column):
                return node
            name = str(node.name)
            other = self.sc.metric(name)
            if isinstance(other, FormulaMetric):
                if name in seen or name == metric.name:
                    raise RulesetError([f"{metric.loc}: formulas use each other in a cycle"])
                return exp.Paren(this=self._formula_tree(other, (*seen, metric.name)))
            return column(name)

        return guard_divisions(parse_expression(metric.formula).transform(resolve))

    # -- the whole query -------------------------------------------------------------------------------

    def review_fill(self) -> tuple[str, ...]:
        """Which of promoter_id and item_id the uses of reviews read (those are filled from orders)."""
        used: set[str] = set()
        for metric in self.sc.metrics:
            if isinstance(metric, AggregateMetric) and metric.source == "reviews":
                used |= {self.sc.row_key} | self.names_in(metric.where) | self.names_in(metric.value)
            elif isinstance(metric, ConversionMetric):
                for step in (metric.first, metric.then):
                    if step.source == "reviews":
                        used |= {self.sc.row_key, metric.key} | self.names_in(step.where)
        return tuple(name for name in FILLED_REVIEW_COLUMNS if name in used)

    def names_in(self, expr: Expr | None, seen: tuple[str, ...] = ()) -> set[str]:
        """Column names an expression reads, through the filters it uses."""
        if expr is None:
            return set()
        names = set(bare_names(expr))
        # `<scorecard>.eligible` joins on that scorecard's key, a column of this source too.
        for col in parse_expression(expr).find_all(exp.Column):
            if col.table:
                names.add(self.ruleset.scorecard(str(col.table)).row_key)
        for name in sorted(names & self.ruleset.filters.keys()):
            if name not in seen:
                names |= self.names_in(self.ruleset.filters[name], (*seen, name))
        return names

    def flags_used(self) -> dict[str, set[str]]:
        """The integrity flags each source's rows are read with (through filters too): none, mostly."""
        used: dict[str, set[str]] = {}
        for metric in self.sc.metrics:
            reads: list[tuple[str, set[str]]] = []
            if isinstance(metric, AggregateMetric):
                reads = [(metric.source, self.names_in(metric.where) | self.names_in(metric.value))]
            elif isinstance(metric, ConversionMetric):
                reads = [(step.source, self.names_in(step.where)) for step in (metric.first, metric.then)]
            for source, names in reads:
                flags = {n for n in names if integrity.is_flag(source, n)}
                if flags:
                    used.setdefault(source, set()).update(flags)
        return used

    def add_flagged(self, ranges: dict[str, list[tuple[date, date]]]) -> None:
        """The brushing orders' CTE when a scan reads brushing or suspicious (rules/integrity.flag_ctes);
        the other flags are expressions of the row."""
        self.flagged = self.flags_used()
        self.ctes += integrity.flag_ctes(self.ruleset.integrity, self.flagged, ranges, marks=self.marks)

    def compile(self) -> exp.Select:
        scans = self.scans()
        if not scans:
            raise RulesetError(
                [f"{self.sc.loc}: scorecard '{self.sc.name}' has no metric read from a source"]
            )
        self.fill = self.review_fill() if "reviews" in scans else ()
        self.needs_fill = bool(self.fill)
        if self.needs_fill:
            self.ctes.append((FILLED_REVIEWS, self.filled_reviews(_merge(scans["reviews"].ranges))))
        self.add_flagged({name: _merge(scan.ranges) for name, scan in scans.items()})
        value_sources: dict[str, str] = {}  # metric name -> the CTE holding its value
        for name, scan in scans.items():
            self.ctes.append((f"src_{name}", self.scan_query(scan)))
            for aggregate in scan.metrics:
                value_sources[aggregate.name] = f"src_{name}"
        for metric in self.sc.metrics:
            if isinstance(metric, ConversionMetric):
                value_sources[metric.name] = self.conversion(metric)
        self.ctes.append((METRIC_VALUES, self.metric_values(scans, value_sources)))
        items: list[exp.Expr] = [column(self.key)]
        for metric in self.sc.metrics:
            if isinstance(metric, FormulaMetric):
                tree = self.formula_tree(metric)
                items.append(_alias(_double(tree) if self.cast_metrics else tree, metric.name))
            else:
                items.append(column(metric.name))
        # no ORDER BY: the engine that runs it sorts when that is cheaper (scoring/pipeline.compute_metrics)
        final = exp.select(*items).from_(_table(METRIC_VALUES), copy=False)
        for name, query in self.ctes:
            final = final.with_(exp.TableAlias(this=ident(name)), as_=query, copy=False)
        return final

    def metric_values(self, scans: dict[str, _Scan], value_sources: dict[str, str]) -> exp.Select:
        """Every K seen in any source scan (the population) with its metrics: the scans FULL JOINed on K
        (each scan has one row per K), the conversions LEFT JOINed. (A UNION of the scans' keys joined
        back to each scan read every key three times: 0.6 s of 2.2 at 2.7M products.)"""
        sources = [f"src_{name}" for name in scans]
        keys = [column(self.key, cte) for cte in sources]
        key = keys[0] if len(keys) == 1 else exp.Coalesce(this=keys[0], expressions=keys[1:])
        items: list[exp.Expr] = [_alias(key, self.key)]
        for metric in self.sc.metrics:
            if isinstance(metric, FormulaMetric):
                continue
            value: exp.Expr = column(metric.name, value_sources[metric.name])
            empty = self.empty(metric)
            if not isinstance(empty, exp.Null):
                # An entity absent from this scan has no matching rows: give it the no-rows value.
                value = exp.Coalesce(this=value, expressions=[empty])
            items.append(_alias(_double(value) if self.cast_metrics else value, metric.name))
        select = exp.select(*items).from_(_table(sources[0]), copy=False)
        for i, cte in enumerate(sources[1:], start=1):
            seen = keys[0] if i == 1 else exp.Coalesce(this=keys[0], expressions=keys[1:i])
            on = exp.EQ(this=column(self.key, cte), expression=seen)
            select = select.join(_table(cte), on=on, join_type="full outer", copy=False)
        for cte in dict.fromkeys(value_sources.values()):
            if cte not in sources:
                on = exp.EQ(this=column(self.key, cte), expression=key.copy())
                select = select.join(_table(cte), on=on, join_type="left", copy=False)
        return select

    @staticmethod
    def empty(metric: Metric) -> exp.Expr:
        """The metric's value for an entity with no matching rows (conversions count: 0)."""
        if isinstance(metric, AggregateMetric):
            return empty_value(parse_expression(metric.value))
        return exp.Literal.number(0)


def _compile(
    ruleset: Ruleset, sc: Scorecard, period: Period, dialect: str, cast_metrics: bool, marks: bool = False
) -> CompiledQuery:
    tree = _Compiler(ruleset, sc, period, cast_metrics, dialect, marks).compile()
    return CompiledQuery(
        sql=tree.sql(dialect=dialect, pretty=True),
        tree=tree,
        key=sc.key,
        columns=(sc.key, *(m.name for m in sc.metrics)),
    )


def compile_scorecard(
    ruleset: Ruleset,
    scorecard_name: str,
    period: Period,
    dialect: str = "duckdb",
    *,
    cast_metrics: bool = True,
    marks: bool = False,
) -> CompiledQuery:
    """The query computing every metric of `scorecard_name` for `period`: key, then metrics, one row per
    entity in no set order (scoring asks the engine for key order, or sorts).

    `cast_metrics=False` leaves each metric in its own SQL type (rules check uses it to report a
    metric that is not a number); scoring always uses the default, every metric as DOUBLE. `marks`: the
    orders read the brushing flag the database keeps (orders.brushing_mark, store/brushing.py) instead of
    finding the bursts.
    """
    return _compile(ruleset, ruleset.scorecard(scorecard_name), period, dialect, cast_metrics, marks)


def compile_metrics(
    ruleset: Ruleset,
    scorecard_name: str,
    metric_names: Iterable[str],
    period: Period,
    dialect: str = "duckdb",
    *,
    cast_metrics: bool = True,
) -> CompiledQuery:
    """Like compile_scorecard, for a subset of the metrics (and the formula metrics they use)."""
    sc = ruleset.scorecard(scorecard_name)
    wanted: list[str] = []

    def need(name: str) -> None:
        if name in wanted:
            return
        wanted.append(name)
        found = sc.metric(name)
        if isinstance(found, FormulaMetric):
            for col in parse_expression(found.formula).find_all(exp.Column):
                need(str(col.name))

    for name in metric_names:
        need(name)
    subset = tuple(m for m in sc.metrics if m.name in wanted)
    reduced = Scorecard(
        name=sc.name,
        title=sc.title,
        key=sc.key,
        metrics=subset,
        scores=(),
        rank_by=sc.rank_by,
        gates=(),
        tiers=(),
        reward=None,
        loc=sc.loc,
        key_from=sc.key_from,
    )
    return _compile(ruleset, reduced, period, dialect, cast_metrics)


def compile_ruleset(ruleset: Ruleset, period: Period, dialect: str = "duckdb") -> dict[str, CompiledQuery]:
    """Every scorecard's query, in evaluation order."""
    return {sc.name: compile_scorecard(ruleset, sc.name, period, dialect) for sc in ruleset.scorecards}


def compile_row_probe(
    ruleset: Ruleset, scorecard_name: str, source: str, expr: Expr, period: Period, dialect: str = "duckdb"
) -> str:
    """`SELECT <expr> FROM <source> LIMIT 0` as the scorecard would evaluate a row expression.

    Binding it tells `rules check` the SQL type of a `where` (which must be boolean) without data.
    """
    compiler = _Compiler(
        ruleset, ruleset.scorecard(scorecard_name), period, cast_metrics=False, dialect=dialect
    )
    compiler.needs_fill = source == "reviews"
    flags = {n for n in compiler.names_in(expr) if integrity.is_flag(source, n)}
    if flags:
        compiler.flagged = {source: flags}
    joins: set[str] = set()
    tree = compiler.row_tree(expr, source, joins)
    select = compiler.source_from(exp.select(_alias(tree, "probe")), source, joins)
    if compiler.needs_fill:
        select = select.with_(
            exp.TableAlias(this=ident(FILLED_REVIEWS)),
            as_=compiler.filled_reviews([window_bounds(Window("period"), period)]),
            copy=False,
        )
    for name, query in integrity.flag_ctes(ruleset.integrity, {source: flags}):
        select = select.with_(exp.TableAlias(this=ident(name)), as_=query, copy=False)
    return select.limit(0, copy=False).sql(dialect=dialect)


def referenced_scorecards(ruleset: Ruleset, sc: Scorecard) -> set[str]:
    """The earlier scorecards whose results `sc`'s metrics read (`merchant.eligible` in a where or value,
    directly or through a named filter)."""
    return {table for table, _field in referenced_fields(ruleset, sc)}


def referenced_fields(ruleset: Ruleset, sc: Scorecard) -> set[tuple[str, str]]:
    """The fields of earlier scorecards that `sc`'s metrics read, as (scorecard, field): ("merchant",
    "eligible") for `merchant.eligible` in a where or value, directly or through a named filter."""
    found: set[tuple[str, str]] = set()
    for _what, expr in metric_expressions(ruleset, sc, formulas=False):
        for col in parse_expression(expr).find_all(exp.Column):
            if col.table:
                found.add((str(col.table), str(col.name)))
    return found


def metric_expressions(ruleset: Ruleset, sc: Scorecard, formulas: bool = True) -> Iterator[tuple[str, Expr]]:
    """(what, expression) of every expression of `sc`'s metrics: each metric's where and value, a
    conversion's steps' wheres, a formula (unless `formulas` is False), each followed by the named filters
    it uses, transitively, each filter once."""
    seen: set[str] = set()
    for metric in sc.metrics:
        owner = f"metric '{metric.name}' of scorecard {sc.name}"
        if isinstance(metric, AggregateMetric):
            own = [metric.where, metric.value]
        elif isinstance(metric, ConversionMetric):
            own = [metric.first.where, metric.then.where]
        else:
            own = [metric.formula] if formulas else []
        for expr in (e for e in own if e is not None):
            yield owner, expr
            pending = sorted(bare_names(expr) & ruleset.filters.keys(), reverse=True)
            while pending:  # filters may use filters
                name = pending.pop()
                if name in seen:
                    continue
                seen.add(name)
                body = ruleset.filters[name]
                yield f"filter '{name}' (used by {owner})", body
                pending.extend(sorted(bare_names(body) & ruleset.filters.keys(), reverse=True))


def scorecards_needed(ruleset: Ruleset, upto: str | None = None) -> tuple[str, ...]:
    """The scorecards to score for `upto` (every scorecard when None): it and the earlier ones its
    metrics reference, transitively, in ruleset order. A scorecard nobody references is not scored."""
    if upto is None:
        return tuple(sc.name for sc in ruleset.scorecards)
    wanted = {upto}
    for sc in reversed(ruleset.scorecards):  # references only point to earlier scorecards
        if sc.name in wanted:
            wanted |= referenced_scorecards(ruleset, sc)
    return tuple(sc.name for sc in ruleset.scorecards if sc.name in wanted)
