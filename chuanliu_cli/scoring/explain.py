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
from chuanliu_cli.scoring.allocation import round_micro
from chuanliu_cli.scoring.gates import comparisons, gate_column, holds
from chuanliu_cli.scoring.normalize import describe_normalizer
from chuanliu_cli.scoring.pipeline import (
    NOT_IN_POPULATION,
    RunResult,
    compute_scores,
    part_column,
    score_entity,
    tier_for,
)

if TYPE_CHECKING:
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
    explained with its no-activity values."""
    import polars as pl

    res = run.scorecards[scorecard]
    sc = res.scorecard
    frame = res.frame
    matches = frame.filter(pl.col(sc.key) == key)
    if matches.height == 0:
        raise unknown_key_error(run, scorecard, key)
    row = matches.row(0, named=True)
    in_population = row.get("grant_note") != NOT_IN_POPULATION
    outcomes: dict[str, Any] = {}
    if res.gate_outcomes is not None:
        outcomes = res.gate_outcomes.filter(pl.col(sc.key) == key).row(0, named=True)
    metrics_frame = frame.select([sc.key, *(m.name for m in sc.metrics)])
    parts = (
        compute_scores(sc, metrics_frame, keep_parts=True).filter(pl.col(sc.key) == key).row(0, named=True)
    )
    ranked = int(frame["rank"].drop_nulls().len())
    target_tier, target_score = _target(sc, row[sc.rank_by])
    value = row[sc.rank_by]
    points_needed = None
    if target_score is not None:
        points_needed = max(target_score - (value or 0.0), 0.0)
    suggestions: tuple[Suggestion, ...] = ()
    no_reason = None
    if target_score is not None:
        suggestions, no_reason = _suggest(sc, frame, key, target_score, row)
    return Explanation(
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
        metrics=tuple(_metric_line(m, row, run) for m in sc.metrics),
        scores=tuple(_score_lines(sc, row, parts)),
        gates=tuple(_gate_line(g, row, outcomes) for g in sc.gates),
        target_tier=target_tier,
        target_score=target_score,
        points_needed=points_needed,
        suggestions=suggestions,
        no_suggestion_reason=no_reason,
        population_note=population_note,
        in_population=in_population,
    )


# --- metrics, scores, gates -------------------------------------------------------------------------------


def _window_text(metric: AggregateMetric | ConversionMetric, run: RunResult) -> str:
    from chuanliu_cli.rules.windows import window_bounds

    def one(window: Any) -> str:
        start, end = window_bounds(window, run.period)
        return f"{window.text}: {start} – {date.fromordinal(end.toordinal() - 1)}"

    if isinstance(metric, AggregateMetric):
        return one(metric.window)
    return f"first {one(metric.first.window)}; then {one(metric.then.window)}"


def _metric_line(metric: Metric, row: dict[str, Any], run: RunResult) -> MetricLine:
    value = row[metric.name]
    if isinstance(metric, AggregateMetric):
        return MetricLine(
            metric.name,
            metric.label,
            value,
            metric.source,
            _window_text(metric, run),
            metric.where.text if metric.where else None,
            metric.value.text,
        )
    if isinstance(metric, FormulaMetric):
        return MetricLine(metric.name, metric.label, value, "formula", "-", None, metric.formula.text)
    first = metric.first.where.text if metric.first.where else "all"
    then = metric.then.where.text if metric.then.where else "all"
    return MetricLine(
        metric.name,
        metric.label,
        value,
        f"{metric.first.source} → {metric.then.source}",
        _window_text(metric, run),
        f"first: {first}; then: {then}" + ("; then after first" if metric.after else ""),
        f"count(distinct {metric.key})",
    )


def _describe(norm: Normalizer | None, kind: str) -> str:
    if norm is None and kind == "metric":
        return "value clipped to [0, 1]"
    return describe_normalizer(norm)


def _score_lines(sc: Scorecard, row: dict[str, Any], parts: dict[str, Any]) -> list[ScoreLine]:
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
                PartLine(part.ref, kind, raw, _describe(part.normalize, kind), n, part.weight, points, note)
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


def _gate_line(gate: Gate, row: dict[str, Any], outcomes: dict[str, Any]) -> GateLine:
    from chuanliu_cli.rules.expressions import bare_names

    names = sorted(bare_names(gate.when))
    values = {n: row.get(n) for n in names}
    failed = gate.id in (row["failed_gates"] or [])
    result = outcomes.get(gate_column(gate))  # the gate's own outcome, as scoring evaluated it
    needs: tuple[str, ...] = ()
    if failed:
        needs = tuple(_gate_needs(gate, values))
    return GateLine(gate.id, gate.reason, gate.when.text, not failed, result, gate.missing, values, needs)


def _gate_needs(gate: Gate, values: dict[str, float | None]) -> list[str]:
    comps = comparisons(gate)
    if comps is None:
        return [f"make `{gate.when.text}` true"]
    needs = []
    for name, op, constant in comps:
        v = values.get(name)
        if v is None:
            needs.append(f"{name} has no value; needs {op} {constant:g}")
        elif not holds(v, op, constant):
            gap = constant - v
            if op in (">=", ">"):
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

    frame = metrics if _rank_refs(sc) else metrics.filter(pl.col(sc.key) == key)
    changed = frame.with_columns(
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


def _others(sc: Scorecard, frame: pl.DataFrame, key: str) -> dict[str, Sequence[float]]:
    """For each name a `rank` part reads, the other entities' non-NULL values as scored."""
    import polars as pl

    rest = frame.filter(pl.col(sc.key) != key)
    return {name: rest[name].drop_nulls().to_list() for name in _rank_refs(sc)}


def _saturation(norm: Normalizer) -> float:
    """The metric value from which the normalizer gives its best value."""
    if norm.kind == "bands":
        best = max(v for _, v in norm.params)  # type: ignore[misc]
        return min(float(t) for t, v in norm.params if v == best)  # type: ignore[misc]
    return float(norm.params[1])  # type: ignore[arg-type]


def _suggest(
    sc: Scorecard, frame: pl.DataFrame, key: str, target: float, row: dict[str, Any]
) -> tuple[tuple[Suggestion, ...], str | None]:
    metrics = frame.select([sc.key, *(m.name for m in sc.metrics)])
    goal = round_micro(target)
    base = {m.name: row[m.name] for m in sc.metrics}
    # the search scores one entity with floats (the other entities' ranks as scored); each result it keeps
    # is verified by re-scoring the whole population vectorized (_rescore)
    others = _others(sc, frame, key)

    def fast(metric: str, x: float) -> float | None:
        out = score_entity(sc, {**base, metric: x}, others)[sc.rank_by]
        return None if out is None else float(out)

    found = []
    for metric, norm in _candidate_parts(sc).items():
        current = row[metric]
        end = _saturation(norm)
        increasing = norm.kind != "linear" or float(norm.params[1]) > float(norm.params[0])  # type: ignore[arg-type]
        low_end = float(norm.params[0][0] if norm.kind == "bands" else norm.params[0])  # type: ignore[index, arg-type]
        start = current if current is not None else low_end
        if (increasing and start >= end) or (not increasing and start <= end):
            continue  # already saturated
        best = fast(metric, end)
        if best is None or round_micro(best) < goal:
            continue  # this metric alone cannot close the gap
        lo, hi = start, end  # f(lo) < goal <= f(hi) along the improving direction
        for _ in range(60):
            mid = (lo + hi) / 2
            value = fast(metric, mid)
            if value is not None and round_micro(value) >= goal:
                hi = mid
            else:
                lo = mid
        candidate = _round_towards(hi, increasing, _integral(sc, metric))
        for _ in range(5):  # verify by re-scoring the whole hierarchy; nudge past rounding if needed
            reached = _rescore(sc, metrics, key, metric, candidate)
            if reached is not None and round_micro(reached) >= goal:
                change = abs(candidate - current) / abs(current) if current else math.inf
                found.append(Suggestion(metric, current, candidate, change, reached))
                break
            step = 1.0 if _integral(sc, metric) else 0.01
            candidate = candidate + step if increasing else candidate - step
    found.sort(key=lambda s: (s.change, abs(s.target - (s.current or 0.0)), s.metric))
    reason = None if found else "no single metric can close the gap alone"
    return tuple(found[:MAX_SUGGESTIONS]), reason


def _round_towards(value: float, increasing: bool, integral: bool) -> float:
    """A readable value on the improving side: whole numbers for counts, else 2 decimals."""
    if integral:
        return float(math.ceil(value - 1e-9) if increasing else math.floor(value + 1e-9))
    scaled = value * 100
    return (math.ceil(scaled - 1e-9) if increasing else math.floor(scaled + 1e-9)) / 100
