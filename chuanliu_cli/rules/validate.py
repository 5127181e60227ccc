"""`rules check`, last stage: compile every scorecard and bind it against the table schemas (SPEC §4).

Parsing has checked names; this stage catches what only SQL types reveal (sum of a text column, a
`where` that is not a condition, a metric that is a date). It creates the canonical tables, empty,
in an in-memory DuckDB and binds each compiled query without running it on any data.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING

from sqlglot import exp

from chuanliu_cli import schema
from chuanliu_cli.errors import RulesetError, first_line
from chuanliu_cli.periods import Period, month_period, week_period
from chuanliu_cli.rules.compiler import (
    compile_metrics,
    compile_row_probe,
    compile_scorecard,
    scorecard_table,
)
from chuanliu_cli.rules.expressions import compile_result_expression, ident
from chuanliu_cli.rules.model import (
    AggregateMetric,
    ConversionMetric,
    Expr,
    FormulaMetric,
    Loc,
    Metric,
    Ruleset,
    Scorecard,
)

if TYPE_CHECKING:
    import duckdb

#: Result types a metric may have before it is cast to DOUBLE.
_NUMERIC = ("TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "FLOAT", "DOUBLE", "BOOLEAN", "DECIMAL")
_NUMERIC_PREFIXES = (*_NUMERIC, "UTINYINT", "USMALLINT", "UINTEGER", "UBIGINT", "UHUGEINT")


@dataclass(frozen=True)
class ScorecardSummary:
    """The size of one scorecard, for `rules check`."""

    name: str
    key: str
    metrics: int
    scores: int
    gates: int
    tiers: int
    pool: int | None


@dataclass(frozen=True)
class RulesetSummary:
    """What `rules check` reports about a valid ruleset."""

    name: str
    sha256: str
    period: str
    scorecards: tuple[ScorecardSummary, ...]

    @property
    def metrics(self) -> int:
        """Metrics over all scorecards."""
        return sum(s.metrics for s in self.scorecards)

    @property
    def scores(self) -> int:
        """Scores over all scorecards."""
        return sum(s.scores for s in self.scorecards)

    @property
    def gates(self) -> int:
        """Gates over all scorecards."""
        return sum(s.gates for s in self.scorecards)

    @property
    def tiers(self) -> int:
        """Tiers over all scorecards."""
        return sum(s.tiers for s in self.scorecards)


def sample_period(ruleset: Ruleset) -> Period:
    """A fixed period of the ruleset's kind, used to compile for checking."""
    return month_period(2023, 5) if ruleset.period == "month" else week_period(date(2023, 5, 1))


def summarize(ruleset: Ruleset) -> RulesetSummary:
    """Counts of scorecards, metrics, scores, gates and tiers."""
    return RulesetSummary(
        name=ruleset.name,
        sha256=ruleset.sha256,
        period=ruleset.period,
        scorecards=tuple(
            ScorecardSummary(
                sc.name,
                sc.key,
                len(sc.metrics),
                len(sc.scores),
                len(sc.gates),
                len(sc.tiers),
                sc.reward.pool if sc.reward is not None and sc.reward.budget is None else None,
            )
            for sc in ruleset.scorecards
        ),
    )


@contextmanager
def _schema_database(ruleset: Ruleset) -> Iterator[duckdb.DuckDBPyConnection]:
    """An in-memory DuckDB with the canonical tables and every scorecard's results table, all empty."""
    import duckdb

    con = duckdb.connect(":memory:")
    try:
        for table in schema.TABLES.values():
            con.execute(schema.table_ddl(table))
        for sc in ruleset.scorecards:
            create = exp.Create(
                this=exp.Schema(
                    this=exp.Table(this=ident(scorecard_table(sc.name))),
                    expressions=[
                        exp.ColumnDef(this=ident(name), kind=exp.DataType.build(kind))
                        for name, kind in ((sc.key, "VARCHAR"), ("eligible", "BOOLEAN"), ("tier", "VARCHAR"))
                    ]
                    + [exp.ColumnDef(this=ident("total"), kind=exp.DataType.build("DOUBLE"))],
                ),
                kind="TABLE",
            )
            con.execute(create.sql(dialect="duckdb"))
        # Nothing a ruleset compiles to needs files; refuse them anyway (SPEC §7 security).
        con.execute("SET enable_external_access = false")
        yield con
    finally:
        con.close()


def _where(metric: Metric) -> Loc:
    """Where to report a metric's SQL problem: its value or formula, else the metric itself."""
    if isinstance(metric, AggregateMetric):
        return metric.value.loc
    if isinstance(metric, FormulaMetric):
        return metric.formula.loc
    return metric.loc


def _position(error: str) -> tuple[int, int]:
    """(line, col) of a `FILE:LINE:COL: message` error, for sorting."""
    m = re.match(r"^.*?:(\d+):(\d+): ", error)
    return (int(m.group(1)), int(m.group(2))) if m else (0, 0)


class _Checker:
    def __init__(self, ruleset: Ruleset, period: Period, con: duckdb.DuckDBPyConnection) -> None:
        self.ruleset = ruleset
        self.period = period
        self.con = con
        self.errors: list[str] = []

    def types(self, sql: str) -> list[str]:
        """Bind `sql` (no rows are read) and return its column types; duckdb.Error if it does not bind."""
        return [str(t) for t in self.con.sql(sql).types]

    def scorecard(self, sc: Scorecard) -> None:
        import duckdb

        for metric in sc.metrics:
            if isinstance(metric, AggregateMetric) and metric.where is not None:
                self.condition(sc, metric.source, metric.where, f"where of metric '{metric.name}'")
            elif isinstance(metric, ConversionMetric):
                for step in (metric.first, metric.then):
                    if step.where is not None:
                        self.condition(sc, step.source, step.where, f"where of metric '{metric.name}'")
        try:
            query = compile_scorecard(self.ruleset, sc.name, self.period, cast_metrics=False)
            self.metric_types(sc, query.columns, self.types(query.sql))
        except RulesetError as e:
            self.errors.extend(e.errors)
        except duckdb.Error as e:
            self.isolate(sc, e)
        self.gates(sc)

    def metric_types(self, sc: Scorecard, columns: Sequence[str], types: Sequence[str]) -> None:
        """Every metric must be a number (or boolean) before it is cast to DOUBLE for scoring."""
        for name, kind in zip(columns[1:], types[1:], strict=True):
            if not kind.startswith(_NUMERIC_PREFIXES):
                self.errors.append(f"{_where(sc.metric(name))}: metric '{name}' is {kind}, not a number")

    def condition(self, sc: Scorecard, source: str, expr: Expr, what: str) -> None:
        import duckdb

        try:
            types = self.types(compile_row_probe(self.ruleset, sc.name, source, expr, self.period))
        except duckdb.Error as e:
            self.errors.append(f"{expr.loc}: {what} does not work on {source}: {first_line(e)}")
            return
        if types and types[0] != "BOOLEAN":
            self.errors.append(f"{expr.loc}: {what} must be a condition (true/false), not {types[0]}")

    def isolate(self, sc: Scorecard, error: Exception) -> None:
        """Find which metrics make the scorecard's query fail, to report them where they are written."""
        import duckdb

        found = False
        for metric in sc.metrics:
            try:
                query = compile_metrics(self.ruleset, sc.name, [metric.name], self.period, cast_metrics=False)
                types = self.types(query.sql)
                index = query.columns.index(metric.name)
                self.metric_types(sc, [query.key, metric.name], [types[0], types[index]])
            except duckdb.Error as e:
                found = True
                self.errors.append(
                    f"{_where(metric)}: metric '{metric.name}' does not compile: {first_line(e)}"
                )
        if not found:
            self.errors.append(f"{sc.loc}: scorecard '{sc.name}' does not compile: {first_line(error)}")

    def gates(self, sc: Scorecard) -> None:
        """Bind each gate over a table of the scorecard's metric and score values (all DOUBLE)."""
        import duckdb

        if not sc.gates:
            return
        results = f"results_{sc.name}"
        names = [sc.key, *(m.name for m in sc.metrics), *(s.name for s in sc.scores)]
        create = exp.Create(
            this=exp.Schema(
                this=exp.Table(this=ident(results)),
                expressions=[
                    exp.ColumnDef(
                        this=ident(name), kind=exp.DataType.build("VARCHAR" if i == 0 else "DOUBLE")
                    )
                    for i, name in enumerate(dict.fromkeys(names))
                ],
            ),
            kind="TABLE",
        )
        self.con.execute(create.sql(dialect="duckdb"))
        for gate in sc.gates:
            probe = exp.select(exp.Alias(this=compile_result_expression(gate.when), alias=ident("ok")))
            probe = probe.from_(exp.Table(this=ident(results)), copy=False).limit(0, copy=False)
            try:
                types = self.types(probe.sql(dialect="duckdb"))
            except duckdb.Error as e:
                self.errors.append(f"{gate.when.loc}: gate '{gate.id}' does not compile: {first_line(e)}")
                continue
            if types[0] != "BOOLEAN":
                self.errors.append(f"{gate.when.loc}: gate '{gate.id}' must be a condition, not {types[0]}")


def check_ruleset_against_schema(ruleset: Ruleset, period: Period | None = None) -> RulesetSummary:
    """Compile every scorecard for `period` (default: a sample period) and bind it against empty tables.

    Raises RulesetError with every problem, located at the metric, gate or scorecard; returns the
    ruleset's summary for `rules check` when all is well.
    """
    period = period or sample_period(ruleset)
    with _schema_database(ruleset) as con:
        checker = _Checker(ruleset, period, con)
        for sc in ruleset.scorecards:
            checker.scorecard(sc)
    if checker.errors:
        errors = sorted(dict.fromkeys(checker.errors), key=_position)
        raise RulesetError(errors, hint="fix the ruleset and check it again")
    return summarize(ruleset)
