"""One entity's breakdown: metrics, score parts, gates, tier and grant, and what it is missing (SPEC §6)."""

from __future__ import annotations

import difflib
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import TYPE_CHECKING, Any

from chuanliu_cli.errors import DataError
from chuanliu_cli.rules.model import (
    AggregateMetric,
    ConversionMetric,
    FormulaMetric,
    Gate,
    Metric,
    Normalizer,
    Scorecard,
)
from chuanliu_cli.scoring.allocation import round_micro, round_micro_array
from chuanliu_cli.scoring.gates import comparisons, gate_column, holds
from chuanliu_cli.scoring.normalize import describe_normalizer, normalize_expr
from chuanliu_cli.scoring.pipeline import (
    NOT_IN_POPULATION,
    RunResult,
    VectorArithmetic,
    compute_scores,
    part_column,
    score_value,
    tier_for,
)

if TYPE_CHECKING:
    import numpy as np
    import polars as pl

#: How many single-metric suggestions `explain` shows.
MAX_SUGGESTIONS = 3
_INVERTIBLE = ("linear", "log", "bands")


@dataclass(frozen=True)
class MetricLine:
    """A metric's value and where it comes from."""

    name: str
    label: str | None
    value: float | None
    source: str
    window: str  # e.g. "2023-05-01 – 2023-05-31"
    filter: str | None
    expression: str


@dataclass(frozen=True)
class PartLine:
    """One score part: raw value → normalized → weight → points."""

    ref: str
    kind: str  # "metric" or "score"
    raw: float | None
    normalizer: str
    normalized: float | None  # None when the part was skipped
    weight: float
    points: float | None  # this part's contribution to the score
    note: str | None = None


@dataclass(frozen=True)
class ScoreLine:
    """A score and its parts; `null_reason` says why it is NULL."""

    name: str
    label: str | None
    value: float | None
    scale: float
    parts: tuple[PartLine, ...]
    null_reason: str | None


@dataclass(frozen=True)
class GateLine:
    """A gate's outcome, the values it compared, and what a failed gate needs."""

    id: str
    reason: str
    when: str
    passed: bool
    result: bool | None  # None: the condition was NULL and `missing` decided
    missing: str
    values: dict[str, float | None]
    needs: tuple[str, ...]


@dataclass(frozen=True)
class Suggestion:
    """A metric value that alone would lift rank_by to the target, verified by re-scoring."""

    metric: str
    current: float | None
    target: float
    change: float  # relative change (inf from zero or NULL)
    reaches: float  # rank_by after the change


@dataclass(frozen=True)
class Explanation:
    """Everything `chuanliu explain` shows for one entity."""

    scorecard: str
    key_name: str
    key: str
    name: str | None
    period_label: str
    period_start: date
    period_end: date
    complete: bool
    eligible: bool
    failed_gates: tuple[str, ...]
    tier: str | None
    rank: int | None
    ranked: int
    grant: int | None
    pool: int | None
    unit: str | None
    grant_note: str | None
    rank_by: str
    rank_by_value: float | None
    metrics: tuple[MetricLine, ...]
    scores: tuple[ScoreLine, ...]
    gates: tuple[GateLine, ...]
    target_tier: str | None  # the next tier up (or the lowest tier), None at the top
    target_score: float | None
    points_needed: float | None
    suggestions: tuple[Suggestion, ...] = field(default_factory=tuple)
    no_suggestion_reason: str | None = None
    # who rank, tier and grant are relative to, when the data is not the whole platform (one merchant's files)
    population_note: str | None = None
    in_population: bool = True  # False: known (e.g. in shops) but without activity in the period
    # the entity's rows the integrity flags catch in the period (scoring/integrity.explain_flags), or None
    integrity: dict[str, Any] | None = None

    @property
    def share(self) -> float | None:
        """The grant as a share of the pool."""
        if self.grant is None or not self.pool:
            return None
        return self.grant / self.pool


def unknown_key_error(run: RunResult, scorecard: str, key: str, elsewhere: str | None = None) -> DataError:
    """The error for a key that is not in the scorecard's population: the nearest known keys, or
    `elsewhere` (e.g. "it is a promoter_id: scorecard promoter") when the key belongs to another scorecard."""
    res = run.scorecards[scorecard]
    keys = [str(k) for k in res.frame[res.key].to_list()]
    near = difflib.get_close_matches(key, keys, n=3, cutoff=0.5)
    hint = ("nearest known: " + ", ".join(near)) if near else "no similar key in this period"
    if elsewhere is not None:
        hint = f"{key} {elsewhere}"
    return DataError(
        f"unknown {res.key} {key!r}: not in the {scorecard} scorecard for {run.period.label}", hint=hint
    )


def explain_entity(
    run: RunResult, scorecard: str, key: str, population_note: str | None = None
) -> Explanation:
    """Explain entity `key` of `scorecard` in a scored run; unknown keys are DataError with near matches.
    A key whose row says `in_population` false (added by the caller for a known but inactive entity) is
    explained with its no-activity values. The one-key case of explain_entities."""
    return explain_entities(run, scorecard, [key], population_note)[0]


def explain_entities(
    run: RunResult, scorecard: str, keys: Sequence[str], population_note: str | None = None
) -> list[Explanation]:
    """explain_entity for each of `keys`, in order, computed for all of them at once (issue #21: the report
    explains 2,001 entities of 500,000): one scoring pass for the score parts, and the search for what each
    entity is missing as a few vectorized passes over every (entity, metric) pair (_suggest_all). The first
    unknown key raises DataError with the nearest known keys."""
    import polars as pl

    from chuanliu_cli.rules import cache

    def bare_names(expr: Any) -> frozenset[str]:
        from chuanliu_cli.rules.expressions import bare_names as parsed_names

        return parsed_names(expr)

    res = run.scorecards[scorecard]
    sc = res.scorecard
    frame = res.frame
    wanted = list(dict.fromkeys(keys))
    chosen = frame.filter(pl.col(sc.key).is_in(wanted)).unique(sc.key, keep="first", maintain_order=True)
    rows = {r[sc.key]: r for r in chosen.iter_rows(named=True)}
    for key in wanted:
        if key not in rows:
            raise unknown_key_error(run, scorecard, key)
    if not wanted:
        return []
    outcomes: dict[str, dict[str, Any]] = {}
    if res.gate_outcomes is not None:
        for r in res.gate_outcomes.filter(pl.col(sc.key).is_in(wanted)).iter_rows(named=True):
            outcomes.setdefault(r[sc.key], r)
    metric_names = [m.name for m in sc.metrics]
    refs = sorted(_rank_refs(sc))
    # the rows asked for, each metric and each value a `rank` part reads as scored (the entity's own value,
    # left out of the population when the search changes it)
    chosen = chosen.select(sc.key, *metric_names, *(pl.col(r).alias(_own(r)) for r in refs))
    # everyone's values: the frame, or when it holds only some rows (a recorded run read back) what the
    # run gave of everyone (population_needed)
    everyone = frame if res.population is None else res.population
    ops = _Batch(_populations(sc, everyone))
    nested = _nested_ranks(sc)
    if nested:  # a rank of ranks: the parts as compute_scores gives them over everyone
        scored = compute_scores(sc, everyone.select(sc.key, *metric_names), keep_parts=True)
        scored = scored.filter(pl.col(sc.key).is_in(wanted))
    else:  # row by row, a `rank` part among everyone's values as scored: the chosen rows suffice
        scored = _score_parts(sc, chosen, ops)
    parts: dict[str, dict[str, Any]] = {}
    for r in scored.iter_rows(named=True):
        parts.setdefault(r[sc.key], r)
    ranked = res.ranked if res.ranked is not None else int(frame["rank"].drop_nulls().len())
    targets = {key: _target(sc, rows[key][sc.rank_by]) for key in wanted}
    searched = _suggest_all(
        sc,
        everyone if nested else None,
        chosen,
        {key: t for key, (_, t) in targets.items() if t is not None},
        ops,
    )
    metric_lines = [_metric_template(m, run) for m in sc.metrics]
    failing = {g for row in rows.values() for g in row["failed_gates"] or ()}
    gate_facts = [
        (
            g,
            sorted(cache.remembered("gate-names", g.when.text, lambda g=g: bare_names(g.when))),  # type: ignore[misc]
            cache.remembered("gate-comparisons", g.when.text, lambda g=g: comparisons(g))  # type: ignore[misc]
            if g.id in failing
            else None,
        )
        for g in sc.gates
    ]
    described = {
        (s.name, i): _describe(p.normalize, "metric" if p.metric is not None else "score")
        for s in sc.scores
        for i, p in enumerate(s.parts)
    }
    explained = {}
    for key in wanted:
        row = rows[key]
        target_tier, target_score = targets[key]
        value = row[sc.rank_by]
        points_needed = None
        if target_score is not None:
            points_needed = max(target_score - (value or 0.0), 0.0)
        suggestions, no_reason = searched.get(key, ((), None))
        explained[key] = Explanation(
            scorecard=scorecard,
            key_name=sc.key,
            key=key,
            name=row["name"],
            period_label=run.period.label,
            period_start=run.period.start,
            period_end=run.period.end,
            complete=run.complete,
            eligible=bool(row["eligible"]),
            failed_gates=tuple(row["failed_gates"] or ()),
            tier=row["tier"],
            rank=row["rank"],
            ranked=ranked,
            grant=row["grant"],
            pool=sc.reward.pool if sc.reward else None,
            unit=sc.reward.unit if sc.reward else None,
            grant_note=row["grant_note"],
            rank_by=sc.rank_by,
            rank_by_value=value,
            metrics=tuple(
                MetricLine(m.name, m.label, row[m.name], m.source, m.window, m.filter, m.expression)
                for m in metric_lines
            ),
            scores=tuple(_score_lines(sc, row, parts[key], described)),
            gates=tuple(
                _gate_line(g, names, comps, row, outcomes.get(key, {})) for g, names, comps in gate_facts
            ),
            target_tier=target_tier,
            target_score=target_score,
            points_needed=points_needed,
            suggestions=suggestions,
            no_suggestion_reason=no_reason,
            population_note=population_note,
            in_population=row.get("grant_note") != NOT_IN_POPULATION,
        )
    return [explained[key] for key in keys]


# --- metrics, scores, gates -------------------------------------------------------------------------------


def _window_text(metric: AggregateMetric | ConversionMetric, run: RunResult) -> str:
    from chuanliu_cli.rules.windows import window_bounds

    def one(window: Any) -> str:
        start, end = window_bounds(window, run.period)
        return f"{window.text}: {start} – {date.fromordinal(end.toordinal() - 1)}"

    if isinstance(metric, AggregateMetric):
        return one(metric.window)
    return f"first {one(metric.first.window)}; then {one(metric.then.window)}"


def _metric_template(metric: Metric, run: RunResult) -> MetricLine:
    """A metric's line without its value (the same for every entity: built once per explain_entities)."""
    if isinstance(metric, AggregateMetric):
        return MetricLine(
            metric.name,
            metric.label,
            None,
            metric.source,
            _window_text(metric, run),
            metric.where.text if metric.where else None,
            metric.value.text,
        )
    if isinstance(metric, FormulaMetric):
        return MetricLine(metric.name, metric.label, None, "formula", "-", None, metric.formula.text)
    first = metric.first.where.text if metric.first.where else "all"
    then = metric.then.where.text if metric.then.where else "all"
    return MetricLine(
        metric.name,
        metric.label,
        None,
        f"{metric.first.source} → {metric.then.source}",
        _window_text(metric, run),
        f"first: {first}; then: {then}" + ("; then after first" if metric.after else ""),
        f"count(distinct {metric.key})",
    )


def _describe(norm: Normalizer | None, kind: str) -> str:
    if norm is None and kind == "metric":
        return "value clipped to [0, 1]"
    return describe_normalizer(norm)


def _score_lines(
    sc: Scorecard, row: dict[str, Any], parts: dict[str, Any], described: dict[tuple[str, int], str]
) -> list[ScoreLine]:
    lines = []
    for score in sc.scores:
        used_weight = sum(
            p.weight for i, p in enumerate(score.parts) if parts[part_column(score, i)] is not None
        )
        plines = []
        for i, part in enumerate(score.parts):
            n = parts[part_column(score, i)]
            raw = row[part.ref]
            note = None
            if n is None:
                note = "skipped: no value (missing: skip)"
            elif raw is None:
                note = f"no value: counts as {part.missing}"
            counted = n is not None and used_weight and row[score.name] is not None
            points = score.scale * part.weight * n / used_weight if counted else None
            kind = "metric" if part.metric is not None else "score"
            plines.append(
                PartLine(part.ref, kind, raw, described[score.name, i], n, part.weight, points, note)
            )
        null_reason = None
        if row[score.name] is None:
            req = score.requires
            have = row.get(req.metric) if req else None
            if req is not None and (have is None or have < req.at_least):
                shown = "no value" if have is None else f"{have:g}"
                short = req.at_least - (have or 0)
                null_reason = f"requires {req.metric} ≥ {req.at_least:g}, has {shown} ({short:g} short)"
            else:
                null_reason = "every part was skipped (no values)"
        lines.append(
            ScoreLine(score.name, score.label, row[score.name], score.scale, tuple(plines), null_reason)
        )
    return lines


def _gate_line(
    gate: Gate,
    names: list[str],
    comps: list[tuple[str, str, float]] | None,
    row: dict[str, Any],
    outcomes: dict[str, Any],
) -> GateLine:
    """The gate's line; `names` are the names its condition reads (sorted), `comps` its comparisons."""
    values = {n: row.get(n) for n in names}
    failed = gate.id in (row["failed_gates"] or [])
    result = outcomes.get(gate_column(gate))  # the gate's own outcome, as scoring evaluated it
    needs: tuple[str, ...] = ()
    if failed:
        needs = tuple(_gate_needs(gate, comps, values))
    return GateLine(gate.id, gate.reason, gate.when.text, not failed, result, gate.missing, values, needs)


def _gate_needs(
    gate: Gate, comps: list[tuple[str, str, float]] | None, values: dict[str, float | None]
) -> list[str]:
    if comps is None:
        return [f"make `{gate.when.text}` true"]
    needs = []
    for name, op, constant in comps:
        v = values.get(name)
        if v is None:
            needs.append(f"{name} has no value; needs {op} {constant:g}")
        elif not holds(v, op, constant):
            gap = constant - v
            if op == ">" and gap == 0:
                needs.append(f"{name} is {v:g}, needs {op} {constant:g}: any increase")
            elif op in (">=", ">"):
                more = "more than " if op == ">" else ""
                needs.append(f"{name} is {v:g}, needs {op} {constant:g}: {more}{gap:g} more")
            elif op in ("<=", "<"):
                needs.append(f"{name} is {v:g}, needs {op} {constant:g}: {-gap:g} less")
            else:
                needs.append(f"{name} is {v:g}, needs {op} {constant:g}")
    return needs


# --- what it is missing -----------------------------------------------------------------------------------


def _target(sc: Scorecard, value: float | None) -> tuple[str | None, float | None]:
    """The next tier above the entity's (or the lowest tier) and its min_score; (None, None) at the top."""
    if not sc.tiers:
        return None, None
    current = tier_for(sc, value)
    ordered = list(sc.tiers)  # highest first
    if current is None:
        lowest = ordered[-1]
        return lowest.name, lowest.min_score
    index = [t.name for t in ordered].index(current)
    if index == 0:
        return None, None
    up = ordered[index - 1]
    return up.name, up.min_score


def _candidate_parts(sc: Scorecard) -> dict[str, Normalizer]:
    """Metrics that feed rank_by through an invertible normalizer (the first such part of each)."""
    by_name = {s.name: s for s in sc.scores}
    seen: dict[str, Normalizer] = {}

    def walk(name: str, stack: tuple[str, ...]) -> None:
        score = by_name.get(name)
        if score is None or name in stack:
            return
        for part in score.parts:
            if part.metric is not None and part.normalize is not None and part.normalize.kind in _INVERTIBLE:
                seen.setdefault(part.metric, part.normalize)
            elif part.score is not None:
                walk(part.score, (*stack, name))

    walk(sc.rank_by, ())
    return seen


def _integral(sc: Scorecard, metric: str) -> bool:
    m = sc.metric(metric)
    if isinstance(m, ConversionMetric):
        return True
    return isinstance(m, AggregateMetric) and m.value.text.strip().lower().startswith("count(")


def _rescore(sc: Scorecard, metrics: pl.DataFrame, key: str, metric: str, value: float) -> float | None:
    """rank_by for entity `key` after setting one metric, re-scoring the whole population vectorized."""
    import polars as pl

    changed = metrics.with_columns(
        pl.when(pl.col(sc.key) == key).then(pl.lit(float(value))).otherwise(pl.col(metric)).alias(metric)
    )
    scored = compute_scores(sc, changed).filter(pl.col(sc.key) == key)
    out = scored[sc.rank_by][0]
    return None if out is None else float(out)


def _rank_refs(sc: Scorecard) -> set[str]:
    """The metrics and scores that a `rank` part reads."""
    return {
        p.ref for s in sc.scores for p in s.parts if p.normalize is not None and p.normalize.kind == "rank"
    }


def population_needed(sc: Scorecard) -> tuple[str, ...]:
    """What an explanation reads over everyone beside the entity's own row: the metrics and scores a
    `rank` part reads, and every metric when a rank reads ranks (explain_entities scores everyone then)."""
    refs = tuple(sorted(_rank_refs(sc)))
    if _nested_ranks(sc):
        return tuple(dict.fromkeys([*(m.name for m in sc.metrics), *refs]))
    return refs


def _nested_ranks(sc: Scorecard) -> bool:
    """Whether a `rank` part reads a score that itself depends on a `rank` part: changing one entity's
    metric then moves the other entities' values of that score too."""
    by_name = {s.name: s for s in sc.scores}

    def ranked_inside(name: str, stack: tuple[str, ...]) -> bool:
        score = by_name.get(name)
        if score is None or name in stack:
            return False
        return any(
            (p.normalize is not None and p.normalize.kind == "rank")
            or (p.score is not None and ranked_inside(p.score, (*stack, name)))
            for p in score.parts
        )

    return any(ranked_inside(name, ()) for name in _rank_refs(sc))


def _saturation(norm: Normalizer) -> float:
    """The metric value from which the normalizer gives its best value."""
    if norm.kind == "bands":
        best = max(v for _, v in norm.params)  # type: ignore[misc]
        return min(float(t) for t, v in norm.params if v == best)  # type: ignore[misc]
    return float(norm.params[1])  # type: ignore[arg-type]


def _rank_among(population: np.ndarray, x: np.ndarray, own: np.ndarray) -> np.ndarray:
    """normalize.rank_value of each x among `population` (sorted non-NULL values of everyone) without the
    row's `own` value (NaN: none) and with x itself: the other entities' values and x, with the same
    float steps. NaN where x is NaN (NULL)."""
    import numpy as np

    left = np.searchsorted(population, x, "left")
    below = left - (own < x)
    equal = np.searchsorted(population, x, "right") - left - (own == x) + 1
    n = population.size - ~np.isnan(own) + 1
    with np.errstate(divide="ignore", invalid="ignore"):
        value = (below + (equal + 1) / 2 - 1) * (1.0 / (n - 1))
    value = np.where(n <= 1, 1.0, value)
    return np.where(np.isnan(x), np.nan, value)


class _Batch(VectorArithmetic):
    """Arithmetic (scoring.pipeline) as polars expressions over rows that are each one entity, as scored or
    with one metric changed: every operation but `rank` is pipeline's vector form, row by row; a `rank`
    part ranks the row's value among the other entities' values (`populations`: everyone's as scored,
    sorted, with the entity's own value, in column `__own__<name>`, left out) and the row's value, as
    score_entity's `others` do; for an unchanged row, that is its rank among everyone."""

    def __init__(self, populations: dict[str, np.ndarray]) -> None:
        self.populations = populations

    def normalize(self, name: str, x: pl.Expr, norm: Normalizer | None) -> pl.Expr:
        import polars as pl

        if norm is None or norm.kind != "rank":
            return normalize_expr(x, norm)
        population = self.populations[name]

        def rank(series: Sequence[pl.Series]) -> pl.Series:
            values, own = (s.cast(pl.Float64).to_numpy() for s in series)
            return pl.Series(_rank_among(population, values, own), nan_to_null=True)

        return pl.map_batches([x, pl.col(_own(name))], rank, return_dtype=pl.Float64, is_elementwise=True)


def _own(name: str) -> str:
    return f"__own__{name}"


def _populations(sc: Scorecard, frame: pl.DataFrame) -> dict[str, np.ndarray]:
    """For each name a `rank` part reads, its sorted non-NULL values over `frame`."""
    import numpy as np

    return {name: np.sort(frame[name].drop_nulls().cast(float).to_numpy()) for name in _rank_refs(sc)}


class _Rescorer:
    """rank_by of cases re-scored with one metric changed each: a case is an entity's metric values, with
    in `__m` the index in `metrics` of the metric to set. compute_scores' expressions, built once; each
    call is one query, run with the optimizations of an eager with_columns (as compute_scores: one
    score after the other), so that each operation is the one compute_scores runs."""

    def __init__(self, sc: Scorecard, ops: _Batch, metrics: Sequence[str]) -> None:
        import polars as pl

        self.rank_by = sc.rank_by
        self.steps = [
            [
                pl.when(pl.col("__m") == i).then(pl.col("__x")).otherwise(pl.col(name)).alias(name)
                for i, name in enumerate(metrics)
            ]
        ]
        scales = {s.name: s.scale for s in sc.scores}
        for score in sc.scores:  # in dependency order
            value, _counted = score_value(ops, score, scales)
            self.steps.append([value.cast(pl.Float64).alias(score.name)])
        self.flags = pl.QueryOptFlags.none()
        self.flags.simplify_expression = True  # what DataFrame.with_columns runs with

    def __call__(self, cases: pl.DataFrame, x: np.ndarray) -> np.ndarray:
        """rank_by of each case with its metric at x (NaN where NULL)."""
        import polars as pl

        plan = cases.lazy().with_columns(pl.Series("__x", x, dtype=pl.Float64))
        for step in self.steps:
            plan = plan.with_columns(step)
        out = plan.select(pl.col(self.rank_by).cast(pl.Float64)).collect(optimizations=self.flags)
        return out.to_series().to_numpy()


#: Halvings of the interval in the search for the value that reaches the target.
BISECTIONS = 60
#: About how many rows one scoring query of the search holds (_bisect): a query costs ~3 ms plus ~0.15 µs
#: a row, so a few cases look several halvings ahead, and thousands one.
_QUERY_ROWS = 20_000


def _bisect(
    search: _Rescorer, cases: pl.DataFrame, low: np.ndarray, high: np.ndarray, goals: np.ndarray
) -> np.ndarray:
    """The upper end of each case's interval after BISECTIONS halvings (f(low) < goal <= f(high) along the
    improving direction: mid = (low + high) / 2 becomes high where it reaches the goal, else low).

    Each query scores the midpoints of the next `depth` halvings along every path they can take (2^depth
    - 1 per case), then follows each case's path: the same midpoints, so the same result, as one halving
    per query, in BISECTIONS / depth queries."""
    import numpy as np
    import polars as pl

    n = low.size
    columns = np.arange(n)
    done = 0
    while done < BISECTIONS and n:
        depth = min(BISECTIONS - done, 8, max(1, int(math.log2(_QUERY_ROWS / max(n, 1) + 1))))
        # level by level, each node's interval: the left child follows a midpoint that reaches the goal
        lows, highs, mids = [low[None, :]], [high[None, :]], []
        for _ in range(depth):
            mid = (lows[-1] + highs[-1]) / 2
            mids.append(mid)
            lows.append(np.stack([lows[-1], mid], axis=1).reshape(-1, n))
            highs.append(np.stack([mid, highs[-1]], axis=1).reshape(-1, n))
        points = np.concatenate(mids)  # (2^depth - 1, n), level by level
        tiled = cases.select(pl.all().gather(np.tile(columns, len(points))))
        ok = _reaching(search(tiled, points.reshape(-1)), np.tile(goals, len(points))).reshape(-1, n)
        node = np.zeros(n, dtype=np.int64)  # index within the level
        start = 0
        for level in range(depth):
            here = start + node
            reached = ok[here, columns]
            mid = points[here, columns]
            high = np.where(reached, mid, high)
            low = np.where(reached, low, mid)
            node = 2 * node + ~reached
            start += 2**level
        done += depth
    return high


def _reaching(values: np.ndarray, goals: np.ndarray) -> np.ndarray:
    """Where a rank_by value is not NULL and reaches its goal (micro units), rounded as tiers are."""
    import numpy as np

    micro, missing = round_micro_array(values)
    return np.asarray(~missing & (micro >= goals), dtype=bool)


def _suggest_all(
    sc: Scorecard,
    nested: pl.DataFrame | None,
    chosen: pl.DataFrame,
    targets: dict[str, float],
    ops: _Batch,
) -> dict[str, tuple[tuple[Suggestion, ...], str | None]]:
    """For each key of `targets` (its row in `chosen`: the key, the metrics and `__own__` columns), up to
    MAX_SUGGESTIONS single-metric values that lift rank_by to the target, and the reason when there is
    none.

    Each (entity, candidate metric) pair is a case: a bisection between the metric's current value and
    its saturation point for the value that reaches the target, then the readable value next to it,
    verified by re-scoring the whole population with that value. Every step scores all the cases at once
    (_Rescorer, with `ops`: a rank part ranks among the other entities' values as scored, which is also
    what re-scoring everyone gives them, as one entity's metric moves no other entity's value) unless a
    rank part reads a score that itself has rank parts: then the other entities' values move too, and
    each verification re-scores `nested` (the scorecard's frame) in full, one case at a time."""
    import numpy as np
    import polars as pl

    candidates = _candidate_parts(sc)
    names = list(candidates)
    integral = {metric: _integral(sc, metric) for metric in names}
    row_of = {key: i for i, key in enumerate(chosen[sc.key].to_list())}
    rows = chosen.to_dicts()
    case_keys: list[str] = []
    case_metric: list[int] = []
    lo: list[float] = []
    hi: list[float] = []
    up: list[bool] = []
    goal: list[int] = []
    for key, target in targets.items():
        row = rows[row_of[key]]
        for index, (metric, norm) in enumerate(candidates.items()):
            current = row[metric]
            end = _saturation(norm)
            increasing = norm.kind != "linear" or float(norm.params[1]) > float(norm.params[0])  # type: ignore[arg-type]
            low_end = float(norm.params[0][0] if norm.kind == "bands" else norm.params[0])  # type: ignore[index, arg-type]
            start = current if current is not None else low_end
            if (increasing and start >= end) or (not increasing and start <= end):
                continue  # already saturated
            case_keys.append(key)
            case_metric.append(index)
            lo.append(start)
            hi.append(end)
            up.append(increasing)
            goal.append(round_micro(target))
    found: dict[str, list[Suggestion]] = {key: [] for key in targets}
    if case_keys:
        cases = chosen[[row_of[k] for k in case_keys]]
        cases = cases.with_columns(pl.Series("__m", case_metric, dtype=pl.Int64))
        search = _Rescorer(sc, ops, names)
        goals = np.array(goal)  # int64, or Python ints past int64
        low, high = np.array(lo, dtype=float), np.array(hi, dtype=float)
        # only the cases whose metric alone can close the gap (at its saturation point)
        keep = np.flatnonzero(_reaching(search(cases, high), goals))
        cases, goals, low, high = cases[keep], goals[keep], low[keep], high[keep]
        case_index = keep
        high = _bisect(search, cases, low, high, goals)
        candidate = [
            _round_towards(h, up[c], integral[names[case_metric[c]]])
            for h, c in zip(high.tolist(), case_index.tolist(), strict=True)
        ]
        pending = np.arange(len(candidate))
        for _ in range(5):  # verify by re-scoring the whole hierarchy; nudge past rounding if needed
            if pending.size == 0:
                break
            xs = np.array([candidate[i] for i in pending.tolist()], dtype=float)
            if nested is None:
                reached = search(cases[pending], xs)
            else:
                metrics = nested.select(sc.key, *(m.name for m in sc.metrics))
                reached = np.array(
                    [
                        _nan(_rescore(sc, metrics, case_keys[c], names[case_metric[c]], x))
                        for c, x in zip(case_index[pending].tolist(), xs.tolist(), strict=True)
                    ],
                    dtype=float,
                )
            ok = _reaching(reached, goals[pending])
            for i, value in zip(pending[ok].tolist(), reached[ok].tolist(), strict=True):
                c = int(case_index[i])
                key, metric = case_keys[c], names[case_metric[c]]
                current = rows[row_of[key]][metric]
                change = abs(candidate[i] - current) / abs(current) if current else math.inf
                found[key].append(Suggestion(metric, current, candidate[i], change, value))
            pending = pending[~ok]
            for i in pending.tolist():
                c = int(case_index[i])
                step = 1.0 if integral[names[case_metric[c]]] else 0.01
                candidate[i] = candidate[i] + step if up[c] else candidate[i] - step
    out = {}
    for key, suggestions in found.items():
        suggestions.sort(key=lambda s: (s.change, abs(s.target - (s.current or 0.0)), s.metric))
        reason = None if suggestions else "no single metric can close the gap alone"
        out[key] = (tuple(suggestions[:MAX_SUGGESTIONS]), reason)
    return out


def _score_parts(sc: Scorecard, chosen: pl.DataFrame, ops: _Batch) -> pl.DataFrame:
    """compute_scores(keep_parts=True) of the `chosen` rows (key, metrics, `__own__` columns), a `rank`
    part ranking among everyone's values as scored (`ops`)."""
    import polars as pl

    frame = chosen
    scales = {s.name: s.scale for s in sc.scores}
    for score in sc.scores:
        value, counted = score_value(ops, score, scales)
        frame = frame.with_columns(n.alias(part_column(score, i)) for i, n in enumerate(counted))
        frame = frame.with_columns(value.cast(pl.Float64).alias(score.name))
    return frame


def _nan(value: float | None) -> float:
    return math.nan if value is None else value


def _round_towards(value: float, increasing: bool, integral: bool) -> float:
    """A readable value on the improving side: whole numbers for counts, else 2 decimals."""
    if integral:
        return float(math.ceil(value - 1e-9) if increasing else math.floor(value + 1e-9))
    scaled = value * 100
    return (math.ceil(scaled - 1e-9) if increasing else math.floor(scaled + 1e-9)) / 100
