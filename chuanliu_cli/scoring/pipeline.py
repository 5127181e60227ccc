"""Scoring: run each scorecard's compiled metric query, then normalize, score, gate, tier, rank and allocate.

Scoring is a pure function of (database connection, ruleset, period): it reads and writes nothing else, so
two rulesets can be scored side by side on one connection (the later scorecards see the earlier ones'
results through a registered, in-memory view, never a table).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from chuanliu_cli.engines.base import Engine
from chuanliu_cli.engines.duckdb import as_engine
from chuanliu_cli.errors import ChuanliuError, DataError, RulesetError
from chuanliu_cli.periods import Period
from chuanliu_cli.rules.model import (
    AggregateMetric,
    FormulaMetric,
    Normalizer,
    Ruleset,
    Score,
    Scorecard,
)
from chuanliu_cli.scoring.allocation import RankedAllocation, rank_tier_allocate, round_micro
from chuanliu_cli.scoring.gates import apply_gates, gate_column
from chuanliu_cli.scoring.normalize import normalize_expr, normalize_value, reciprocal

if TYPE_CHECKING:
    import duckdb
    import polars as pl

    from chuanliu_cli.store.status import MissingHistory

#: Significant digits kept of every metric value (see compute_metrics).
METRIC_DIGITS = 12

V = TypeVar("V")


@dataclass(frozen=True)
class ScorecardResult:
    """One scorecard scored for one period: a frame with a row per entity, and the pool's allocation."""

    scorecard: Scorecard
    period: Period
    frame: (
        pl.DataFrame
    )  # key, name, metrics..., scores..., eligible, failed_gates, tier, rank, grant, grant_note
    allocation: RankedAllocation | None
    # the key and each gate's own outcome (True/False/NULL, before `missing`), in gate_column(gate): kept
    # apart from `frame` so that no output or run record sees them; None when nothing was gated
    gate_outcomes: pl.DataFrame | None = None
    # when `frame` holds only some of the entities (a recorded run read back for `explain` or
    # `score --id`): how many are ranked, how many there are, and the totals over everyone, as recorded;
    # None: count them from `frame`
    ranked: int | None = None
    stored_size: int | None = None
    stored_totals: dict[str, Any] | None = None
    # with `frame` holding only some entities: everyone's values (the key and the metrics and scores that
    # a `rank` part reads, or every metric when a rank reads ranks) for an explanation, as recorded
    population: pl.DataFrame | None = None

    @property
    def size(self) -> int:
        """How many entities the result has (all of them, also when `frame` holds only some)."""
        return self.frame.height if self.stored_size is None else self.stored_size

    @property
    def key(self) -> str:
        """The entity key column."""
        return self.scorecard.key

    def totals(self) -> dict[str, Any]:
        """Pool, allocated, unallocated, entity and eligible counts, eligible entities per tier."""
        import polars as pl

        if self.stored_totals is not None:
            return {**self.stored_totals, "per_tier": dict(self.stored_totals["per_tier"])}
        sc = self.scorecard
        eligible = self.frame.filter(pl.col("eligible"))
        counts = dict(eligible.group_by("tier").len().drop_nulls("tier").iter_rows())
        per_tier = {t.name: int(counts.pop(t.name, 0)) for t in sc.tiers}
        per_tier.update({str(k): int(v) for k, v in sorted(counts.items())})
        pool = sc.reward.pool if sc.reward else 0
        # the grants of the frame (a stored run has no Allocation object; the two always agree)
        allocated = int(self.frame["grant"].fill_null(0).sum()) if sc.reward else 0
        totals = {
            "pool": pool,
            "allocated": allocated,
            "unallocated": pool - allocated if sc.reward else 0,
            "entities": self.frame.filter(
                pl.col("grant_note").fill_null("") != NOT_IN_POPULATION
            ).height,  # (entities listed without activity are not part of the population)
            "eligible": eligible.height,
            "per_tier": per_tier,
        }
        if sc.reward is not None and sc.reward.basis is not None:
            totals["pool_basis"] = sc.reward.basis  # a budget's pool: how it was derived (scoring/budget.py)
        return totals


@dataclass(frozen=True)
class RunResult:
    """Every scorecard of a ruleset scored for one period, with what the data covered."""

    ruleset: Ruleset
    period: Period
    scorecards: dict[str, ScorecardResult]
    complete: bool
    incomplete_tables: tuple[str, ...]  # tables whose data ends before the period's last day
    data_window: dict[str, tuple[datetime | None, datetime | None]] = field(default_factory=dict)
    # tables whose data starts after the first day the ruleset's windows read (SPEC §6)
    missing_history: tuple[MissingHistory, ...] = ()
    # the data lints of a run read back from the store, per scorecard, as they were when it was recorded
    # (its rows may be only those an explanation needs); scoring leaves it empty: lints.data_lints
    # computes them from the frame
    stored_lints: dict[str, tuple[str, ...]] = field(default_factory=dict)

    def completeness_note(self) -> str:
        """What the period's data lacks, in one line (empty when complete): the same words as `status`."""
        from chuanliu_cli.store.status import Completeness

        ends = {t: self.data_window.get(t, (None, None))[1] for t in self.incomplete_tables}
        return Completeness(
            self.missing_history, self.incomplete_tables, self.period.last_day, ends
        ).describe()


def score_period(
    source: Engine | duckdb.DuckDBPyConnection, ruleset: Ruleset, period: Period, upto: str | None = None
) -> RunResult:
    """Score `upto` for `period` (every scorecard when None), and first the earlier scorecards it
    references (only those: rules/compiler.scorecards_needed)."""
    from chuanliu_cli.rules.tuning import require_numbers
    from chuanliu_cli.rules.windows import history_needed
    from chuanliu_cli.scoring.budget import pace_rewards
    from chuanliu_cli.store.status import completeness

    engine = as_engine(source)
    if period.kind != ruleset.period:
        raise DataError(f"the ruleset scores {ruleset.period}s, not {period.kind}s")
    results: dict[str, ScorecardResult] = {}
    registered: list[str] = []
    needed = _needed(ruleset, upto)
    ruleset = pace_rewards(engine, ruleset, period, needed)  # a budget's pool for `period`
    try:
        require_numbers(ruleset, needed)  # a value left {tune: [low, high]} scores nothing (SPEC §10)
        for sc in ruleset.scorecards:
            if sc.name not in needed:
                continue
            view = f"scorecard_{sc.name}"
            if upto is not None and sc.name != needed[-1] and _eligibility_suffices(ruleset, sc, needed):
                # read by later scorecards for its eligibility only: its gates' inputs are scored, and it
                # is not part of the result (scoring/reduce.py)
                from chuanliu_cli.scoring.reduce import eligibility_only

                reduced = eligibility_only(ruleset, sc.name)
                small = reduced.scorecard(sc.name)
                metrics = compute_metrics(engine, reduced, small, period, in_key_order=False)
                engine.register(view, _eligibility_table(small, metrics))
                registered.append(view)
                continue
            res = score_scorecard(engine, ruleset, sc, period)
            results[sc.name] = res
            if sc.name == needed[-1]:
                break
            engine.register(view, _reference_table(res))
            registered.append(view)
    finally:
        for view in registered:
            engine.unregister(view)
    window = engine.data_window()
    state = completeness(period, history_needed(ruleset, period, upto, needed), window)
    return RunResult(
        ruleset,
        period,
        results,
        state.complete,
        state.short_tables,
        window,
        state.missing_history,
    )


def _eligibility_suffices(ruleset: Ruleset, sc: Scorecard, needed: tuple[str, ...]) -> bool:
    """Whether the later scorecards of `needed` read only `<sc>.eligible` of `sc` (then its gates'
    inputs are all it needs to score)."""
    from chuanliu_cli.scoring.reduce import ELIGIBILITY_FIELDS, fields_read_later

    return fields_read_later(ruleset, sc.name, needed) <= ELIGIBILITY_FIELDS


def _reference_table(res: ScorecardResult) -> pl.DataFrame:
    """What a later scorecard may reference: key, eligible, tier, total (the `total` score or rank_by)."""
    import polars as pl

    sc = res.scorecard
    total = "total" if "total" in res.frame.columns else sc.rank_by
    return res.frame.select(
        pl.col(sc.key).cast(pl.Utf8),
        pl.col("eligible"),
        pl.col("tier"),
        pl.col(total).cast(pl.Float64).alias("total"),
    )


def _eligibility_table(sc: Scorecard, metrics: pl.DataFrame) -> pl.DataFrame:
    """_reference_table of a scorecard scored for its eligibility only: its scores and gates, and tier and
    total NULL (nothing reads them); no failed-gate lists, ranks, names or result order (about 0.35 s at
    500k shops, the names fetched among them, and no later scorecard reads them)."""
    import polars as pl

    from chuanliu_cli.scoring.gates import eligibility

    frame = compute_scores(sc, metrics)
    return frame.select(
        pl.col(sc.key).cast(pl.Utf8),
        eligibility(sc, frame),
        pl.lit(None, dtype=pl.Utf8).alias("tier"),
        pl.lit(None, dtype=pl.Float64).alias("total"),
    )


def compute_metrics(
    engine: Engine, ruleset: Ruleset, sc: Scorecard, period: Period, in_key_order: bool = True
) -> pl.DataFrame:
    """Run the scorecard's compiled query: one row per entity, the key then every metric (as floats), in
    key order unless `in_key_order` is False (rows only joined by key later: sorting 500k shop ids cost
    about 0.1 s)."""
    import polars as pl

    try:
        marks = engine.brushing_marks(ruleset.integrity)
        sql = metric_sql(ruleset, sc.name, period, engine.dialect, marks)
        frame = engine.query(sql, order_by=sc.key if in_key_order else None)
    except DataError as exc:
        if _failed_conversion(exc):
            raise _metric_failure(engine, ruleset, sc, period, exc) from None
        raise DataError(f"scorecard {sc.name}: {exc.message}") from None
    casts = [pl.col(sc.key).cast(pl.Utf8)]
    # Engines sum doubles in parallel, in no fixed order, so the last bits of a float sum can differ
    # between runs; 12 significant digits keep every real digit and make reruns byte-identical.
    casts += [pl.col(m.name).cast(pl.Float64).round_sig_figs(METRIC_DIGITS) for m in sc.metrics]
    frame = frame.select(casts)
    # in key order: the engine may have sorted (checking costs one pass; a key that is not a string in
    # the engine, e.g. an integer, sorts otherwise)
    return frame if not in_key_order or frame[sc.key].is_sorted() else frame.sort(sc.key)


def _failed_conversion(error: DataError) -> bool:
    """Whether the engine error a DataError was raised from is a failed conversion of a value."""
    import duckdb

    return isinstance(error.__context__, duckdb.ConversionException) or "CAST_INVALID_INPUT" in error.message


def _metric_failure(
    engine: Engine, ruleset: Ruleset, sc: Scorecard, period: Period, error: DataError
) -> ChuanliuError:
    """A metric query that failed converting a value, traced back to the ruleset (never an internal error).

    `rules check` refuses literals of the wrong type, so what fails here is what it cannot see: a quoted
    value the ruleset hands to a function (`ln('x')`): a RulesetError at each place that quotes it; or a
    value of the data that the ruleset converts (`cast(buyer_id as bigint)`): a DataError naming the
    metrics whose own query fails, and where they are written.
    """
    from chuanliu_cli.rules.compiler import compile_metrics, metric_expressions
    from chuanliu_cli.rules.expressions import literal_error
    from chuanliu_cli.scoring.gates import CONVERSION_HINT

    located = []
    for what, expr in metric_expressions(ruleset, sc):
        found = literal_error(expr, error.message, f"{what} failed while scoring: {error.message}")
        if found is not None:
            located.append(found)
    if located:
        return RulesetError(located, hint=CONVERSION_HINT)
    failing = []
    for metric in sc.metrics:
        if isinstance(metric, FormulaMetric):
            continue  # formulas compute on numbers: the metrics they use are tried themselves
        try:
            engine.query(compile_metrics(ruleset, sc.name, [metric.name], period, engine.dialect).sql)
        except DataError:
            failing.append(f"'{metric.name}' ({metric.loc})")
    hint = (
        "the ruleset converts a column's values to another type and a row holds one that does not "
        "convert: compare the column as text, or correct the data"
    )
    named = f" metric{'s' if len(failing) > 1 else ''} {', '.join(failing)}:" if failing else ""
    return DataError(f"scorecard {sc.name}:{named} {error.message}", hint=hint)


def ranks_everyone(sc: Scorecard) -> bool:
    """Whether a score part normalizes by rank: then one entity's scores depend on everyone's values."""
    return any(
        part.normalize is not None and part.normalize.kind == "rank"
        for score in sc.scores
        for part in score.parts
    )


def _needed(ruleset: Ruleset, upto: str | None) -> tuple[str, ...]:
    """rules/compiler.scorecards_needed, through the cache (rules/cache.py)."""
    from chuanliu_cli.rules import cache

    def compute() -> tuple[str, ...]:
        from chuanliu_cli.rules.compiler import scorecards_needed

        return scorecards_needed(ruleset, upto)

    return tuple(cache.remembered("needed", (_query_digest(ruleset), upto or ""), compute))


def _query_digest(ruleset: Ruleset) -> str:
    """A digest of what the compiled queries depend on: the ruleset without its rewards, warnings and the
    directory it was chosen from, so that a budget's pool paced for each period (scoring/budget.py), or a
    warning added for a period, does not compile the same SQL again."""
    from chuanliu_cli.rules import cache

    bare = tuple(replace(sc, reward=None) for sc in ruleset.scorecards)
    return cache.model_digest(replace(ruleset, scorecards=bare, warnings=(), versions=None))


def metric_sql(ruleset: Ruleset, scorecard: str, period: Period, dialect: str, marks: bool = False) -> str:
    """The scorecard's compiled metric query (rules/compiler.compile_scorecard) for `period`, through the
    cache: the same ruleset model, period, dialect and `marks` (the database keeps the brushing orders)
    compile to the same text."""
    from chuanliu_cli.rules import cache

    def compute() -> str:
        from chuanliu_cli.rules.compiler import compile_scorecard

        return compile_scorecard(ruleset, scorecard, period, dialect=dialect, marks=marks).sql

    question = (_query_digest(ruleset), scorecard, period.kind, period.label, dialect, str(marks))
    return cache.remembered("sql", question, compute)


def score_scorecard(engine: Engine, ruleset: Ruleset, sc: Scorecard, period: Period) -> ScorecardResult:
    """Score one scorecard; earlier scorecards must already be registered as `scorecard_<name>` views."""
    metrics = compute_metrics(engine, ruleset, sc, period)
    return finish_scorecard(sc, period, metrics, engine.names(sc.key))


def finish_scorecard(
    sc: Scorecard, period: Period, metrics: pl.DataFrame, names: pl.DataFrame | None = None
) -> ScorecardResult:
    """Everything after the metric query: scores, gates, tiers, ranks, grants and names (pure Python)."""

    frame = compute_scores(sc, metrics)
    frame = apply_gates(sc, frame)
    frame, allocation = rank_and_allocate(sc, frame)
    frame = with_labels(sc, frame, names)
    order = [sc.key, *label_columns(sc), *(m.name for m in sc.metrics), *(s.name for s in sc.scores)]
    order += ["eligible", "failed_gates", "tier", "rank", "grant", "grant_note"]
    frame = _result_order(frame, sc)
    outcomes = frame.select(sc.key, *(gate_column(g) for g in sc.gates)) if sc.gates else None
    return ScorecardResult(sc, period, frame.select(order), allocation, outcomes)


def _result_order(frame: pl.DataFrame, sc: Scorecard) -> pl.DataFrame:
    """The rows in result order: ranked first by rank, then by rank_by descending (NULL last), then key.

    When the rows are in key order already (compute_metrics sorts them) and rank_by has no NaN, one numpy
    lexsort with the row position for the key gives the same order as polars' five-key sort, 2.4× faster
    at 2.7M rows; otherwise polars sorts."""
    import numpy as np
    import polars as pl

    rank, value = frame["rank"], frame[sc.rank_by].cast(pl.Float64)
    if frame[sc.key].is_sorted() and not value.is_nan().any():
        order = np.lexsort(
            (
                np.arange(frame.height),
                -value.fill_null(0.0).to_numpy(),
                value.is_null().to_numpy(),
                rank.fill_null(0).to_numpy(),
                rank.is_null().to_numpy(),
            )
        )
        return frame[order]
    return frame.sort(
        [pl.col("rank").is_null(), "rank", pl.col(sc.rank_by).is_null(), sc.rank_by, sc.key],
        descending=[False, False, False, True, False],
    )


# --- scores ------------------------------------------------------------------------------------------------
#
# The score arithmetic of SPEC §4 is written once, in score_value, over a few operations: polars expressions
# for every entity at once (compute_scores), or floats for one entity (score_entity, which explain's search
# calls hundreds of times per entity: scoring a one-row frame costs milliseconds, a float pass microseconds).


class Arithmetic(Protocol[V]):
    """The operations score_value needs, on values of type V (a polars expression, or a float/None)."""

    def constant(self, value: float) -> V:
        """A constant."""
        ...

    def value(self, name: str) -> V:
        """A metric's or an already computed score's value (NULL possible)."""
        ...

    def normalize(self, name: str, x: V, norm: Normalizer | None) -> V:
        """`x` (the value of `name`) normalized to [0, 1]; NULL stays NULL."""
        ...

    def divide(self, x: V, by: float) -> V:
        """x / by (as x × (1 / by), see normalize.reciprocal); NULL stays NULL."""
        ...

    def fill_null(self, x: V, value: float) -> V:
        """`value` where x is NULL."""
        ...

    def accumulate(self, numer: V, denom: V, x: V, weight: float, skip: bool) -> tuple[V, V]:
        """(numer + x × weight, denom + weight); with `skip`, only where x is not NULL (else x never is)."""
        ...

    def scaled_ratio(self, numer: V, denom: V, scale: float) -> V:
        """numer / denom × scale (as numer × (1 / denom) × scale) where denom > 0, else NULL."""
        ...

    def if_at_least(self, x: V, metric: V, bound: float) -> V:
        """x where metric ≥ bound (a NULL metric is below every bound), else NULL."""
        ...


def score_value(ops: Arithmetic[V], score: Score, scales: dict[str, float]) -> tuple[V, list[V]]:
    """A score and each part's counted normalized value (NULL for a skipped part), in `ops` terms.

    score = scale × Σ(weight × normalized) / Σ weight over the parts used; a NULL normalized value counts
    as the part's `missing`, or drops the part and its weight with `missing: skip`; a score part is
    value/scale unless it normalizes; `requires` makes the score NULL below its bound.
    """
    numer, denom = ops.constant(0.0), ops.constant(0.0)
    counted = []
    for part in score.parts:
        raw = ops.value(part.ref)
        if part.score is not None and part.normalize is None:
            normalized = ops.divide(raw, scales[part.score])
        else:
            normalized = ops.normalize(part.ref, raw, part.normalize)
        skip = part.missing == "skip"
        n = normalized if skip else ops.fill_null(normalized, float(part.missing))
        counted.append(n)
        numer, denom = ops.accumulate(numer, denom, n, part.weight, skip)
    value = ops.scaled_ratio(numer, denom, score.scale)
    if score.requires is not None:
        value = ops.if_at_least(value, ops.value(score.requires.metric), score.requires.at_least)
    return value, counted


class VectorArithmetic:
    """Arithmetic as polars expressions over the columns of a frame (every entity at once); explain's
    batched search subclasses it, changing only how a `rank` part normalizes."""

    def constant(self, value: float) -> pl.Expr:
        import polars as pl

        return pl.lit(value)

    def value(self, name: str) -> pl.Expr:
        import polars as pl

        return pl.col(name)

    def normalize(self, name: str, x: pl.Expr, norm: Normalizer | None) -> pl.Expr:
        return normalize_expr(x, norm)

    def divide(self, x: pl.Expr, by: float) -> pl.Expr:
        return x * reciprocal(by)

    def fill_null(self, x: pl.Expr, value: float) -> pl.Expr:
        return x.fill_null(value)

    def accumulate(
        self, numer: pl.Expr, denom: pl.Expr, x: pl.Expr, weight: float, skip: bool
    ) -> tuple[pl.Expr, pl.Expr]:
        import polars as pl

        if not skip:  # x was filled: no NULL test, which would repeat x's expression in the plan
            return numer + x * weight, denom + float(weight)
        used = x.is_not_null()
        return (
            numer + pl.when(used).then(x * weight).otherwise(0.0),
            denom + pl.when(used).then(pl.lit(float(weight))).otherwise(0.0),
        )

    def scaled_ratio(self, numer: pl.Expr, denom: pl.Expr, scale: float) -> pl.Expr:
        import polars as pl

        # polars divides by a denominator that is one value for every row (always so without `missing:
        # skip`, and sometimes with it) as a multiplication by its reciprocal, and by a column exactly:
        # the reciprocal written out gives the same last bit whatever the data (see normalize.reciprocal)
        return pl.when(denom > 0).then(numer * (1 / denom) * scale).otherwise(None)

    def if_at_least(self, x: pl.Expr, metric: pl.Expr, bound: float) -> pl.Expr:
        import polars as pl

        return pl.when(metric.fill_null(-math.inf) >= bound).then(x).otherwise(None)


class _Scalar:
    """Arithmetic on one entity's floats (None is NULL); `rank` also reads the other entities' values."""

    def __init__(self, values: dict[str, float | None], others: Mapping[str, Sequence[float]]) -> None:
        self.values = values
        self.others = others

    def constant(self, value: float) -> float | None:
        return value

    def value(self, name: str) -> float | None:
        return self.values.get(name)

    def normalize(self, name: str, x: float | None, norm: Normalizer | None) -> float | None:
        population: Sequence[float] = ()
        if norm is not None and norm.kind == "rank" and x is not None:
            population = sorted([*self.others.get(name, ()), x])
        return normalize_value(x, norm, population)

    def divide(self, x: float | None, by: float) -> float | None:
        return None if x is None else x * reciprocal(by)

    def fill_null(self, x: float | None, value: float) -> float | None:
        return value if x is None else x

    def accumulate(
        self, numer: float | None, denom: float | None, x: float | None, weight: float, skip: bool
    ) -> tuple[float | None, float | None]:
        assert numer is not None and denom is not None  # sums start at 0.0 and only ever add
        return (numer, denom) if x is None else (numer + x * weight, denom + float(weight))

    def scaled_ratio(self, numer: float | None, denom: float | None, scale: float) -> float | None:
        assert numer is not None and denom is not None
        return numer * reciprocal(denom) * scale if denom > 0 else None

    def if_at_least(self, x: float | None, metric: float | None, bound: float) -> float | None:
        return x if (-math.inf if metric is None else metric) >= bound else None


def part_column(score: Score, index: int) -> str:
    """The name of the helper column holding a score part's normalized value (NULL when skipped)."""
    return f"__part__{score.name}__{index}"


def compute_scores(sc: Scorecard, metrics: pl.DataFrame, keep_parts: bool = False) -> pl.DataFrame:
    """Add a column per score (in dependency order); with `keep_parts`, also each part's normalized value."""
    import polars as pl

    frame = metrics
    scales = {s.name: s.scale for s in sc.scores}
    ops = VectorArithmetic()
    for score in sc.scores:
        value, counted = score_value(ops, score, scales)
        parts = [n.alias(part_column(score, i)) for i, n in enumerate(counted)] if keep_parts else []
        frame = frame.with_columns(parts).with_columns(value.cast(pl.Float64).alias(score.name))
    return frame


def score_entity(
    sc: Scorecard, metrics: Mapping[str, float | None], others: Mapping[str, Sequence[float]] | None = None
) -> dict[str, float | None]:
    """One entity's metric values and every score computed from them: compute_scores for a single row.

    `others` holds, for each name a `rank` part reads, the non-NULL values of the other entities of the
    population: the entity's percent rank is taken among them and its own value.
    """
    values: dict[str, float | None] = dict(metrics)
    scales = {s.name: s.scale for s in sc.scores}
    ops = _Scalar(values, others or {})
    for score in sc.scores:
        values[score.name], _counted = score_value(ops, score, scales)
    return values


# --- tiers, ranks, grants ----------------------------------------------------------------------------------


def tier_for(sc: Scorecard, value: float | None) -> str | None:
    """The highest tier whose min_score ≤ the value rounded to 6 decimals; None below the lowest tier."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    micro = round_micro(value)
    for tier in sc.tiers:  # highest first
        if micro >= round_micro(tier.min_score):
            return tier.name
    return None


def rank_and_allocate(sc: Scorecard, frame: pl.DataFrame) -> tuple[pl.DataFrame, RankedAllocation | None]:
    """Tier eligible entities, rank them (rank_by descending, key ascending) and allocate the pool, as
    columns (scoring/allocation.rank_tier_allocate)."""
    if sc.reward is not None and not sc.reward.paced:  # pragma: no cover - score_period paces every budget
        raise ValueError(
            f"scorecard {sc.name}: the budget's pool was not derived for {frame.height} entities"
        )
    done = rank_tier_allocate(frame[sc.key], frame[sc.rank_by], frame["eligible"], sc.tiers, sc.reward)
    frame = frame.with_columns(done.tier, done.rank, done.grant, done.grant_note)
    return frame, done if sc.reward is not None else None


#: The columns that follow `name` in the results of shop-keyed scorecards (SPEC §9): the shop's group
#: (主体) and category, from `shops`; NULL when shops are not loaded or do not list the shop.
SHOP_FIELDS = ("group_id", "category")


def label_columns(sc: Scorecard) -> tuple[str, ...]:
    """The descriptive columns after the key: name, and group_id and category for shop keys."""
    return ("name", *SHOP_FIELDS) if sc.key == "shop_id" else ("name",)


def with_labels(
    sc: Scorecard, frame: pl.DataFrame, names: pl.DataFrame | Mapping[str, str | None] | None
) -> pl.DataFrame:
    """`frame` with the label columns it lacks (label_columns: NULL where `names` has no value) right
    after the key. `names`: engine.names (k, name and, for shops, group_id and category), or k → name."""
    import polars as pl

    wanted = [c for c in label_columns(sc) if c not in frame.columns]
    if not wanted:
        return frame
    if isinstance(names, Mapping):
        names = pl.DataFrame(
            {"k": list(names), "name": list(names.values())}, schema={"k": pl.Utf8, "name": pl.Utf8}
        )
    have = [] if names is None else [c for c in wanted if c in names.columns]
    if names is None or names.height == 0 or not have:
        found = pl.DataFrame(
            [pl.repeat(None, frame.height, dtype=pl.Utf8, eager=True).alias(c) for c in wanted]
        )
    else:
        keys = frame.select(pl.col(sc.key).cast(pl.Utf8).alias("k"))
        named = names.select(pl.col("k").cast(pl.Utf8), *(pl.col(c).cast(pl.Utf8) for c in have))
        found = left_join_text(keys, named)
        if found.height != frame.height:
            # a key named twice (the name queries group by key, so only a caller's frame): its first name
            # (making them unique first cost 0.25 s at 2.7M products when they already were)
            found = keys.join(named.unique("k", keep="first"), on="k", how="left", maintain_order="left")
        found = found.select(pl.col(c) if c in have else pl.lit(None, dtype=pl.Utf8).alias(c) for c in wanted)
    out = frame.hstack(found.get_columns())
    key_at = out.columns.index(sc.key)
    rest = [c for c in out.columns if c != sc.key and c not in label_columns(sc)]
    order = [*out.columns[:key_at], sc.key, *(c for c in label_columns(sc) if c in out.columns), *rest]
    return out.select(list(dict.fromkeys(order)))


def left_join_text(
    keys: pl.DataFrame, named: pl.DataFrame, hash_of: Callable[[pl.Expr], pl.Expr] | None = None
) -> pl.DataFrame:
    """`keys` (text column k) left-joined with `named` on k, in the order of `keys`: what
    `keys.join(named, on="k", how="left", maintain_order="left")` gives.

    Joined by the keys' 64-bit hashes, which polars joins in 0.4 s where the strings took 0.94 s (2.1M
    products against 2.7M names). Every matched row's two strings are then compared: when one differs (two
    keys with one hash) or a key matched twice, the join is done again by the strings. A NULL key never
    matches, as in a join by the strings. `hash_of` stands in for the hash in tests."""
    import polars as pl

    hashed = hash_of or (lambda column: column.hash())
    named = named.filter(pl.col("k").is_not_null())
    left = keys.with_columns(hashed(pl.col("k")).alias("__hash"))
    right = named.rename({"k": "__k"}).with_columns(hashed(pl.col("__k")).alias("__hash"))
    joined = left.join(right, on="__hash", how="left", maintain_order="left")
    same = joined["__k"].is_null() | (joined["__k"] == joined["k"]).fill_null(False)
    if joined.height == keys.height and bool(same.all()):
        return joined.drop("__hash", "__k")
    return keys.join(named, on="k", how="left", maintain_order="left")


# --- entities without activity -----------------------------------------------------------------------------

#: The grant note of an entity listed without being in the population (no activity in the period).
NOT_IN_POPULATION = "not in the population: no activity in the period"


def absent_metrics(sc: Scorecard) -> dict[str, float | None]:
    """Every metric of an entity with no row in any window (a shop listed in `shops` that did nothing this
    period): each aggregate's no-rows value (count and sum 0, the others NULL; SPEC §4), conversions 0, and
    the formulas evaluated on those, as the compiled query would give them."""
    import duckdb

    from chuanliu_cli.rules.expressions import (
        bare_names,
        compile_result_expression,
        empty_value,
        parse_expression,
    )
    from chuanliu_cli.rules.model import FormulaMetric
    from chuanliu_cli.sqltext import ident

    con = duckdb.connect()
    try:
        con.execute("SET enable_external_access = false")

        def evaluate(tree: Any, known: dict[str, float | None]) -> float | None:
            names = ", ".join(f"CAST(? AS DOUBLE) AS {ident(n)}" for n in known) or "1 AS __none"
            sql = f"SELECT CAST(({tree.sql(dialect='duckdb')}) AS DOUBLE) FROM (SELECT {names})"
            row = con.execute(sql, list(known.values())).fetchone()
            return None if row is None or row[0] is None else float(row[0])

        values: dict[str, float | None] = {}
        for metric in sc.metrics:
            if isinstance(metric, AggregateMetric):
                values[metric.name] = evaluate(empty_value(parse_expression(metric.value)), {})
            elif not isinstance(metric, FormulaMetric):
                values[metric.name] = 0.0  # a conversion counts entities: none
        pending = [m for m in sc.metrics if isinstance(m, FormulaMetric)]
        while pending:  # formulas may use formulas: evaluate each once the ones it uses are known
            ready = [m for m in pending if bare_names(m.formula) <= set(values)]
            if not ready:  # pragma: no cover - the ruleset check refuses formula cycles
                raise DataError(f"formulas of {sc.name} use each other in a cycle")
            for metric in ready:
                values[metric.name] = evaluate(compile_result_expression(metric.formula), values)
                pending.remove(metric)
        return {m.name: values[m.name] for m in sc.metrics}
    finally:
        con.close()


def score_absent(
    res: ScorecardResult, keys: list[str], names: pl.DataFrame | Mapping[str, str | None]
) -> ScorecardResult:
    """`res` with rows added for entities outside the population (listed, without activity): their
    no-activity metrics, scores and gates computed beside the population (so that `rank` normalizers see
    everyone), never ranked, tiered or granted (grant_note says why). Totals and allocation stay those of
    the population (`totals()` leaves the added rows out)."""
    import polars as pl

    sc = res.scorecard
    if not keys:
        return res
    empty = absent_metrics(sc)
    metric_names = [m.name for m in sc.metrics]
    absent = pl.DataFrame(
        {sc.key: keys, **{n: [empty[n]] * len(keys) for n in metric_names}},
        schema={sc.key: pl.Utf8, **{n: pl.Float64 for n in metric_names}},
    )
    together = pl.concat([res.frame.select(sc.key, *metric_names), absent])
    scored = apply_gates(sc, compute_scores(sc, together)).filter(pl.col(sc.key).is_in(keys))
    rows = (
        with_labels(sc, scored, names)
        .with_columns(
            pl.lit(False).alias("eligible"),
            pl.lit(None, dtype=pl.Utf8).alias("tier"),
            pl.lit(None, dtype=pl.Int64).alias("rank"),
            pl.lit(0 if sc.reward is not None else None, dtype=pl.Int64).alias("grant"),  # as any ineligible
            pl.lit(NOT_IN_POPULATION).alias("grant_note"),
        )
        .select(res.frame.columns)
    )
    outcomes = res.gate_outcomes
    if outcomes is not None:
        outcomes = pl.concat([outcomes, scored.select(outcomes.columns)])
    return replace(res, frame=pl.concat([res.frame, rows]), gate_outcomes=outcomes)
