"""Scoring: run each scorecard's compiled metric query, then normalize, score, gate, tier, rank and allocate.

Scoring is a pure function of (database connection, ruleset, period): it reads and writes nothing else, so
two rulesets can be scored side by side on one connection (the later scorecards see the earlier ones'
results through a registered, in-memory view, never a table).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from chuanliu_cli.engines.base import Engine
from chuanliu_cli.engines.duckdb import as_engine
from chuanliu_cli.errors import DataError
from chuanliu_cli.periods import Period
from chuanliu_cli.rules.model import Normalizer, Ruleset, Score, Scorecard, ScorePart
from chuanliu_cli.scoring.allocation import Allocation, Claim, allocate, round_micro
from chuanliu_cli.sqltext import ident

if TYPE_CHECKING:
    import duckdb
    import polars as pl

#: Significant digits kept of every metric value (see compute_metrics).
METRIC_DIGITS = 12


@dataclass(frozen=True)
class ScorecardResult:
    """One scorecard scored for one period: a frame with a row per entity, and the pool's allocation."""

    scorecard: Scorecard
    period: Period
    frame: (
        pl.DataFrame
    )  # key, name, metrics..., scores..., eligible, failed_gates, tier, rank, grant, grant_note
    allocation: Allocation | None

    @property
    def key(self) -> str:
        """The entity key column."""
        return self.scorecard.key

    def totals(self) -> dict[str, Any]:
        """Pool, allocated, unallocated, entity and eligible counts, eligible entities per tier."""
        sc = self.scorecard
        per_tier = {t.name: 0 for t in sc.tiers}
        eligible = self.frame.filter(self.frame["eligible"])
        for tier in eligible["tier"].to_list():
            if tier is not None:
                per_tier[tier] = per_tier.get(tier, 0) + 1
        pool = sc.reward.pool if sc.reward else 0
        allocated = self.allocation.allocated if self.allocation else 0
        return {
            "pool": pool,
            "allocated": allocated,
            "unallocated": pool - allocated if sc.reward else 0,
            "entities": self.frame.height,
            "eligible": eligible.height,
            "per_tier": per_tier,
        }


@dataclass(frozen=True)
class RunResult:
    """Every scorecard of a ruleset scored for one period, with what the data covered."""

    ruleset: Ruleset
    period: Period
    scorecards: dict[str, ScorecardResult]
    complete: bool
    incomplete_tables: tuple[str, ...]
    data_window: dict[str, tuple[datetime | None, datetime | None]] = field(default_factory=dict)


def score_period(
    source: Engine | duckdb.DuckDBPyConnection, ruleset: Ruleset, period: Period, upto: str | None = None
) -> RunResult:
    """Score every scorecard in order (up to and including `upto`) for `period`."""
    from chuanliu_cli.store.status import incomplete_tables

    engine = as_engine(source)
    if period.kind != ruleset.period:
        raise DataError(f"the ruleset scores {ruleset.period}s, not {period.kind}s")
    results: dict[str, ScorecardResult] = {}
    registered: list[str] = []
    try:
        for sc in ruleset.scorecards:
            res = score_scorecard(engine, ruleset, sc, period)
            results[sc.name] = res
            view = f"scorecard_{sc.name}"
            engine.register(view, _reference_table(res))
            registered.append(view)
            if sc.name == upto:
                break
    finally:
        for view in registered:
            engine.unregister(view)
    window = engine.data_window()
    missing = tuple(incomplete_tables(period, {t: hi for t, (_, hi) in window.items()}))
    return RunResult(ruleset, period, results, not missing, missing, window)


def _reference_table(res: ScorecardResult) -> Any:
    """What a later scorecard may reference: key, eligible, tier, total (the `total` score or rank_by)."""
    import polars as pl

    sc = res.scorecard
    total = "total" if "total" in res.frame.columns else sc.rank_by
    return res.frame.select(
        pl.col(sc.key).cast(pl.Utf8),
        pl.col("eligible"),
        pl.col("tier"),
        pl.col(total).cast(pl.Float64).alias("total"),
    ).to_arrow()


def compute_metrics(engine: Engine, ruleset: Ruleset, sc: Scorecard, period: Period) -> pl.DataFrame:
    """Run the scorecard's compiled query: one row per entity, the key then every metric (as floats)."""
    import polars as pl

    from chuanliu_cli.rules.compiler import compile_scorecard

    compiled = compile_scorecard(ruleset, sc.name, period, dialect=engine.dialect)
    try:
        frame = engine.query(compiled.sql)
    except DataError as exc:
        raise DataError(f"scorecard {sc.name}: {exc.message}") from None
    casts = [pl.col(sc.key).cast(pl.Utf8)]
    # Engines sum doubles in parallel, in no fixed order, so the last bits of a float sum can differ
    # between runs; 12 significant digits keep every real digit and make reruns byte-identical.
    casts += [pl.col(m.name).cast(pl.Float64).round_sig_figs(METRIC_DIGITS) for m in sc.metrics]
    return frame.select(casts).sort(sc.key)


def score_scorecard(engine: Engine, ruleset: Ruleset, sc: Scorecard, period: Period) -> ScorecardResult:
    """Score one scorecard; earlier scorecards must already be registered as `scorecard_<name>` views."""
    metrics = compute_metrics(engine, ruleset, sc, period)
    return finish_scorecard(sc, period, metrics, engine.names(sc.key))


def finish_scorecard(
    sc: Scorecard, period: Period, metrics: pl.DataFrame, names: pl.DataFrame | None = None
) -> ScorecardResult:
    """Everything after the metric query: scores, gates, tiers, ranks, grants and names (pure Python)."""
    import polars as pl

    frame = compute_scores(sc, metrics)
    frame = apply_gates(sc, frame)
    frame, allocation = rank_and_allocate(sc, frame)
    frame = frame.with_columns(_names(sc, frame, names).alias("name"))
    order = [sc.key, "name", *(m.name for m in sc.metrics), *(s.name for s in sc.scores)]
    order += ["eligible", "failed_gates", "tier", "rank", "grant", "grant_note"]
    frame = frame.select(order).sort(
        [pl.col("rank").is_null(), "rank", pl.col(sc.rank_by).is_null(), sc.rank_by, sc.key],
        descending=[False, False, False, True, False],
    )
    return ScorecardResult(sc, period, frame, allocation)


# --- scores ------------------------------------------------------------------------------------------------


def normalize_expr(x: pl.Expr, norm: Normalizer | None) -> pl.Expr:
    """The normalized value in [0, 1] of `x` (NULL stays NULL), exactly as SPEC §4 defines each normalizer."""
    import polars as pl

    if norm is None:
        return x.clip(0.0, 1.0)
    if norm.kind == "linear":
        a, b = (float(v) for v in norm.params)  # type: ignore[arg-type]
        return ((x - a) / (b - a)).clip(0.0, 1.0)
    if norm.kind == "log":
        a, b = (float(v) for v in norm.params)  # type: ignore[arg-type]
        return (
            ((pl.max_horizontal(x - a, pl.lit(0.0)) + 1).log() / math.log(1 + b - a))
            .clip(0.0, 1.0)
            .fill_nan(None)
        )
    if norm.kind == "bands":
        expr = pl.when(x.is_null()).then(None).otherwise(0.0)
        for t, v in norm.params:  # type: ignore[misc]
            # later (higher) thresholds override earlier ones
            expr = pl.when(x >= float(t)).then(float(v)).otherwise(expr)
        return expr
    if norm.kind == "rank":
        n = x.is_not_null().sum()
        # average rank = L + (E + 1) / 2, so (avg − 1) / (n − 1) = (L + (E − 1)/2) / (n − 1)
        return (
            pl.when(n <= 1)
            .then(pl.when(x.is_null()).then(None).otherwise(1.0))
            .otherwise((x.rank("average") - 1) / (n - 1))
        )
    raise AssertionError(norm.kind)  # pragma: no cover - the parser admits no other kind


def part_column(score: Score, index: int) -> str:
    """The name of the helper column holding a score part's normalized value."""
    return f"__part__{score.name}__{index}"


def _part_input(part: ScorePart, scales: dict[str, float]) -> tuple[pl.Expr, Normalizer | None]:
    import polars as pl

    if part.metric is not None:
        return pl.col(part.metric), part.normalize
    assert part.score is not None
    if part.normalize is not None:
        return pl.col(part.score), part.normalize
    return pl.col(part.score) / scales[part.score], None


def compute_scores(sc: Scorecard, metrics: pl.DataFrame, keep_parts: bool = False) -> pl.DataFrame:
    """Add a column per score (in dependency order); with `keep_parts`, also each part's normalized value."""
    import polars as pl

    frame = metrics
    scales = {s.name: s.scale for s in sc.scores}
    for score in sc.scores:
        part_cols = []
        numer: pl.Expr = pl.lit(0.0)
        denom: pl.Expr = pl.lit(0.0)
        for i, part in enumerate(score.parts):
            value, norm = _part_input(part, scales)
            normalized = normalize_expr(value, norm)
            if part.missing == "skip":
                used = normalized.is_not_null()
                n = normalized.fill_null(0.0)
            else:
                used = pl.lit(True)
                n = normalized.fill_null(float(part.missing))
            col = part_column(score, i)
            part_cols.append(pl.when(used).then(n).otherwise(None).alias(col))
            numer = numer + pl.when(used).then(n * part.weight).otherwise(0.0)
            denom = denom + pl.when(used).then(pl.lit(float(part.weight))).otherwise(0.0)
        value_expr = pl.when(denom > 0).then(numer / denom * score.scale).otherwise(None)
        if score.requires is not None:
            req = score.requires
            value_expr = (
                pl.when(pl.col(req.metric).fill_null(-math.inf) >= req.at_least)
                .then(value_expr)
                .otherwise(None)
            )
        frame = frame.with_columns(part_cols).with_columns(value_expr.cast(pl.Float64).alias(score.name))
    if not keep_parts:
        frame = frame.select([c for c in frame.columns if not c.startswith("__part__")])
    return frame


# --- gates -------------------------------------------------------------------------------------------------


def round6_expr(x: pl.Expr) -> pl.Expr:
    """Round to 6 decimals, half away from zero (for threshold comparisons)."""
    return (x.abs() * 1_000_000 + 0.5).floor() * x.sign() / 1_000_000


def apply_gates(sc: Scorecard, frame: pl.DataFrame) -> pl.DataFrame:
    """Evaluate each gate on values rounded to 6 decimals; add `eligible` and `failed_gates`.

    Gates run on a private in-memory DuckDB over the scored rows, whatever engine computed the metrics.
    """
    import duckdb
    import polars as pl

    from chuanliu_cli.rules.expressions import compile_result_expression

    if not sc.gates:
        return frame.with_columns(
            pl.lit(True).alias("eligible"), pl.lit([], dtype=pl.List(pl.Utf8)).alias("failed_gates")
        )
    names = [m.name for m in sc.metrics] + [s.name for s in sc.scores]
    rounded = frame.select(pl.col(sc.key), *(round6_expr(pl.col(n)).alias(n) for n in names))
    selects = []
    for gate in sc.gates:
        tree = compile_result_expression(gate.when)
        selects.append(f"({tree.sql(dialect='duckdb')}) AS {ident('gate$' + gate.id)}")
    con = duckdb.connect()
    try:
        con.execute("SET enable_external_access = false")
        con.register("gate_input", rounded.to_arrow())
        outcome = con.sql(f"SELECT {', '.join(selects)} FROM gate_input").pl()
    finally:
        con.close()
    failed_exprs = []
    for gate in sc.gates:
        col = pl.col("gate$" + gate.id)
        passed = col.fill_null(gate.missing == "pass")
        failed_exprs.append(pl.when(passed).then(None).otherwise(pl.lit(gate.id)))
    failed = outcome.select(pl.concat_list(failed_exprs).list.drop_nulls().alias("failed_gates"))
    return frame.with_columns(
        failed["failed_gates"],
        (failed["failed_gates"].list.len() == 0).alias("eligible"),
    )


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


def rank_and_allocate(sc: Scorecard, frame: pl.DataFrame) -> tuple[pl.DataFrame, Allocation | None]:
    """Tier eligible entities, rank them (rank_by descending, key ascending) and allocate the pool."""
    import polars as pl

    keys = frame[sc.key].to_list()
    values = frame[sc.rank_by].to_list()
    eligible = frame["eligible"].to_list()
    tiers = [tier_for(sc, v) if e else None for v, e in zip(values, eligible, strict=True)]
    order = sorted(
        (i for i, e in enumerate(eligible) if e and values[i] is not None),
        key=lambda i: (-round_micro(values[i]), keys[i]),
    )
    ranks: list[int | None] = [None] * len(keys)
    for r, i in enumerate(order, start=1):
        ranks[i] = r
    multipliers = {t.name: t.multiplier for t in sc.tiers}
    grants: list[int | None] = [None] * len(keys)
    notes: list[str | None] = [None] * len(keys)
    allocation = None
    if sc.reward is not None:
        claims = [
            Claim(
                key=keys[i],
                score=values[i],
                multiplier=multipliers.get(tiers[i]) if tiers[i] is not None else None,  # type: ignore[arg-type]
                eligible=bool(eligible[i]) and values[i] is not None,
            )
            for i in range(len(keys))
        ]
        allocation = allocate(claims, sc.reward.pool, sc.reward.cap, sc.reward.min_grant)
        for i, k in enumerate(keys):
            g = allocation.grants[k]
            grants[i] = g.grant
            notes[i] = g.note
    frame = frame.with_columns(
        pl.Series("tier", tiers, dtype=pl.Utf8),
        pl.Series("rank", ranks, dtype=pl.Int64),
        pl.Series("grant", grants, dtype=pl.Int64),
        pl.Series("grant_note", notes, dtype=pl.Utf8),
    )
    return frame, allocation


def _names(sc: Scorecard, frame: pl.DataFrame, names: pl.DataFrame | None) -> pl.Series:
    """The display name of each entity (NULL where there is none)."""
    import polars as pl

    if names is None or names.height == 0:
        return pl.Series("name", [None] * frame.height, dtype=pl.Utf8)
    joined = frame.select(pl.col(sc.key).alias("k")).join(
        names.select(pl.col("k").cast(pl.Utf8), pl.col("name").cast(pl.Utf8)).unique("k", keep="first"),
        on="k",
        how="left",
        maintain_order="left",
    )
    return joined["name"]
