"""A scorecard reduced to what decides eligibility, for a later scorecard that reads only
`<scorecard>.eligible` (issue #21: the promoter scorecard scored the whole merchant scorecard, scores, tiers
and allocation included, to learn which merchants are eligible).

The reduced scorecard keeps the metrics and scores its gates read (through scores, formulas and
`requires`), and the same population: for every source and window the full scorecard reads, a row count
over that window stands in for the metrics left out, so that the entities seen are exactly those of the
full scorecard (the population is every key seen in any source scan, windows applied). No tiers, no
reward: eligibility is the gates alone (SPEC §4), so it is the full scorecard's, entity for entity.
"""

from __future__ import annotations

from dataclasses import replace

from chuanliu_cli.rules.expressions import bare_names
from chuanliu_cli.rules.model import (
    AggregateMetric,
    ConversionMetric,
    Expr,
    FormulaMetric,
    Metric,
    Ruleset,
    Window,
)

#: The fields of a scorecard's results that the reduced scorecard gives as the full one does.
ELIGIBILITY_FIELDS = frozenset({"eligible"})

#: Names of the stand-in row counts (not a valid ruleset name: no clash with a metric).
PRESENCE = "__rows_{}"


def fields_read_later(ruleset: Ruleset, name: str, needed: tuple[str, ...]) -> set[str]:
    """The fields of scorecard `name`'s results that the later scorecards of `needed` read."""
    from chuanliu_cli.rules.compiler import referenced_fields

    fields: set[str] = set()
    for sc in ruleset.scorecards:
        if sc.name in needed and sc.name != name:
            fields |= {f for table, f in referenced_fields(ruleset, sc) if table == name}
    return fields


def eligibility_only(ruleset: Ruleset, name: str) -> Ruleset:
    """`ruleset` with scorecard `name` reduced to its gates' inputs and its population (module doc)."""
    sc = ruleset.scorecard(name)
    metrics = {m.name: m for m in sc.metrics}
    scores = {s.name: s for s in sc.scores}
    wanted: set[str] = set()
    todo = [n for g in sc.gates for n in bare_names(g.when) if n in metrics or n in scores]
    while todo:
        n = todo.pop()
        if n in wanted:
            continue
        wanted.add(n)
        if n in scores:
            score = scores[n]
            todo += [p.ref for p in score.parts]
            if score.requires is not None:
                todo.append(score.requires.metric)
        elif isinstance(metrics.get(n), FormulaMetric):
            formula = metrics[n]
            assert isinstance(formula, FormulaMetric)
            todo += [x for x in bare_names(formula.formula) if x in metrics]
    kept: list[Metric] = [m for m in sc.metrics if m.name in wanted]
    covered = {pair for m in kept for pair in _reads(m)}
    for source, window in dict.fromkeys(pair for m in sc.metrics for pair in _reads(m)):
        if (source, window) not in covered:
            covered.add((source, window))
            count = Expr("count(*)", sc.loc)
            kept.append(
                AggregateMetric(PRESENCE.format(len(kept)), None, source, None, window, count, sc.loc)  # type: ignore[arg-type]
            )
    kept_scores = tuple(s for s in sc.scores if s.name in wanted)
    rank_by = kept_scores[-1].name if kept_scores else kept[0].name
    reduced = replace(sc, metrics=tuple(kept), scores=kept_scores, tiers=(), reward=None, rank_by=rank_by)
    return replace(ruleset, scorecards=tuple(reduced if s.name == name else s for s in ruleset.scorecards))


def _reads(metric: Metric) -> list[tuple[str, Window]]:
    """The (source, window) pairs a metric scans."""
    if isinstance(metric, AggregateMetric):
        return [(metric.source, metric.window)]
    if isinstance(metric, ConversionMetric):
        return [(metric.first.source, metric.first.window), (metric.then.source, metric.then.window)]
    return []
