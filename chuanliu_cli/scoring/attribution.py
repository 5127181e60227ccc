"""Month-over-month attribution (SPEC §9, `explain ID --against-month M`): per part of the ranking score, the
points then and now and the difference, largest first, and the metrics that moved each part — the answer
to "why did I drop from A to B?"."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from chuanliu_cli.scoring.explain import Explanation, ScoreLine


@dataclass(frozen=True)
class MetricMove:
    """A metric under a part: its value then and now, and the points of its own part inside the score
    it feeds (None when it is a metric of the ranking score itself)."""

    name: str
    then: float | None
    now: float | None
    points_then: float | None
    points_now: float | None


@dataclass(frozen=True)
class PartMove:
    """One part of the ranking score: its points then and now (NULL counts as 0 in `delta`)."""

    part: str
    kind: str  # "metric" or "score"
    points_then: float | None
    points_now: float | None
    delta: float
    metrics: tuple[MetricMove, ...]


@dataclass(frozen=True)
class Attribution:
    """An entity's ranking score in two periods, part by part."""

    rank_by: str
    period_then: str
    period_now: str
    total_then: float | None
    total_now: float | None
    tier_then: str | None
    tier_now: str | None
    eligible_then: bool
    eligible_now: bool
    failed_then: tuple[str, ...]
    failed_now: tuple[str, ...]
    grant_then: int | None
    grant_now: int | None
    ruleset_then: str
    ruleset_now: str
    parts: tuple[PartMove, ...]  # largest |delta| first

    @property
    def delta(self) -> float | None:
        """The change of the ranking score (None when either is NULL)."""
        if self.total_then is None or self.total_now is None:
            return None
        return self.total_now - self.total_then


def _num(value: float | None) -> float | None:
    return None if value is None or (isinstance(value, float) and math.isnan(value)) else value


def _zero(value: float | None) -> float:
    v = _num(value)
    return 0.0 if v is None else v


def attribute(then: Explanation, now: Explanation, ruleset_then: str, ruleset_now: str) -> Attribution:
    """Compare two explanations of one entity, part by part of the ranking score. Parts are matched by
    name: a part present in one period only (the ruleset changed) counts as 0 points in the other."""
    scores_then = {s.name: s for s in then.scores}
    scores_now = {s.name: s for s in now.scores}
    metrics_then = {m.name: m.value for m in then.metrics}
    metrics_now = {m.name: m.value for m in now.metrics}
    top_then = scores_then.get(then.rank_by)
    top_now = scores_now.get(now.rank_by)
    parts_then = {p.ref: p for p in top_then.parts} if top_then else {}
    parts_now = {p.ref: p for p in top_now.parts} if top_now else {}
    moves = []
    for ref in dict.fromkeys([*parts_now, *parts_then]):
        a, b = parts_then.get(ref), parts_now.get(ref)
        kind = (b or a).kind  # type: ignore[union-attr]  # (one of them is there)
        pt = _num(a.points) if a else None
        pn = _num(b.points) if b else None
        if kind == "score":
            metrics = _metric_moves(scores_then.get(ref), scores_now.get(ref), metrics_then, metrics_now)
        else:
            metrics = (MetricMove(ref, _num(metrics_then.get(ref)), _num(metrics_now.get(ref)), None, None),)
        moves.append(PartMove(ref, kind, pt, pn, _zero(pn) - _zero(pt), metrics))
    moves.sort(key=lambda m: (-abs(m.delta), m.part))
    return Attribution(
        now.rank_by,
        then.period_label,
        now.period_label,
        _num(then.rank_by_value),
        _num(now.rank_by_value),
        then.tier,
        now.tier,
        then.eligible,
        now.eligible,
        then.failed_gates,
        now.failed_gates,
        then.grant,
        now.grant,
        ruleset_then,
        ruleset_now,
        tuple(moves),
    )


def _metric_moves(
    a: ScoreLine | None,
    b: ScoreLine | None,
    metrics_then: dict[str, float | None],
    metrics_now: dict[str, float | None],
) -> tuple[MetricMove, ...]:
    """The metric parts of a sub-score, largest change of points first (a nested score's parts are
    listed by their own name)."""
    then = {p.ref: p for p in a.parts} if a else {}
    now = {p.ref: p for p in b.parts} if b else {}
    out = []
    for ref in dict.fromkeys([*now, *then]):
        p, q = then.get(ref), now.get(ref)
        out.append(
            MetricMove(
                ref,
                _num(p.raw if p else metrics_then.get(ref)),
                _num(q.raw if q else metrics_now.get(ref)),
                _num(p.points) if p else None,
                _num(q.points) if q else None,
            )
        )
    out.sort(key=lambda m: (-abs(_zero(m.points_now) - _zero(m.points_then)), m.name))
    return tuple(out)
