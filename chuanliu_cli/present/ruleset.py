"""`rules show`: a ruleset rendered as Rich tables, one block per scorecard (SPEC §4, §6)."""

from __future__ import annotations

from rich.console import Group, RenderableType
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from chuanliu_cli.rules.model import (
    AggregateMetric,
    ConversionMetric,
    ConversionStep,
    FormulaMetric,
    Metric,
    Ruleset,
    Score,
    Scorecard,
    ScorePart,
)
from chuanliu_cli.scoring.normalize import describe_normalizer
from chuanliu_cli.scoring.normalize import number_text as _num

#: The rule for aggregates over no rows, shown under every metrics table (SPEC §4).
EMPTY_AGGREGATE_NOTE = (
    "An entity with no matching rows: count/sum over no rows = 0; avg/min/max/median = NULL (stddev "
    "too), and the value is computed from those, so sum(duration_minutes) / 60 is 0 and "
    "sum(a) / count(*) is NULL. A conversion with no rows is 0. Division by zero gives NULL."
)


def _step(step: ConversionStep) -> str:
    where = f" where {step.where.text}" if step.where is not None else ""
    return f"{step.source} ({step.window.text}){where}"


def _metric_row(metric: Metric) -> tuple[str, str, str, str, str, str]:
    label = metric.label or ""
    if isinstance(metric, AggregateMetric):
        where = metric.where.text if metric.where is not None else ""
        return metric.name, label, metric.source, metric.window.text, where, metric.value.text
    if isinstance(metric, FormulaMetric):
        return metric.name, label, "formula", "", "", metric.formula.text
    assert isinstance(metric, ConversionMetric)
    after = " (the then event later than the earliest first)" if metric.after else ""
    return (
        metric.name,
        label,
        "conversion",
        f"{metric.first.window.text} → {metric.then.window.text}",
        f"first: {_step(metric.first)}\nthen: {_step(metric.then)}",
        f"distinct {metric.key} seen in first, then in then{after}",
    )


def _table(title: str, *columns: str) -> Table:
    table = Table(title=title, title_justify="left", show_lines=False, expand=False)
    for name in columns:
        table.add_column(name, overflow="fold")
    return table


def _add(table: Table, *cells: object) -> None:
    """A row of text cells, each shown as it is written (a ruleset's names, expressions and reasons are
    never read as Rich markup, whatever the console)."""
    table.add_row(*(cell if isinstance(cell, Text) else Text(str(cell)) for cell in cells))


def _metrics(sc: Scorecard) -> Table:
    table = _table("Metrics", "metric", "label", "source", "window", "filter / where", "expression")
    for metric in sc.metrics:
        _add(table, *_metric_row(metric))
    table.caption = EMPTY_AGGREGATE_NOTE
    table.caption_justify = "left"
    return table


def _part_cells(part: ScorePart) -> tuple[str, str, str, str]:
    ref = f"metric {part.metric}" if part.metric is not None else f"score {part.score}"
    missing = "skip" if part.missing == "skip" else _num(part.missing)
    return ref, _num(part.weight), describe_normalizer(part.normalize), missing


def _scores(sc: Scorecard) -> Table:
    table = _table("Scores", "score", "scale", "requires", "part", "weight", "normalize", "missing")
    for score in sc.scores:
        requires = f"{score.requires.metric} ≥ {_num(score.requires.at_least)}" if score.requires else ""
        head = _score_head(score)
        for i, part in enumerate(score.parts):
            lead = (head, _num(score.scale), requires) if i == 0 else ("", "", "")
            _add(table, *lead, *_part_cells(part))
        table.add_section()
    table.caption = "score = scale × Σ(weight × normalized) / Σ weight; a NULL input counts as `missing`."
    table.caption_justify = "left"
    return table


def _score_head(score: Score) -> str:
    return f"{score.name}\n{score.label}" if score.label else score.name


def _gates(sc: Scorecard) -> Table:
    table = _table("Gates (all must pass)", "gate", "when", "if NULL", "reason")
    for gate in sc.gates:
        _add(table, str(gate.id), str(gate.when.text), gate.missing, str(gate.reason))
    return table


def _tiers(sc: Scorecard) -> Table:
    table = _table(f"Tiers (by {sc.rank_by})", "tier", "min score", "multiplier")
    for tier in sc.tiers:
        _add(table, str(tier.name), _num(tier.min_score), f"×{_num(tier.multiplier)}")
    return table


def _reward(sc: Scorecard) -> Table | None:
    if sc.reward is None:
        return None
    reward = sc.reward
    table = _table("Reward", "pool", "unit", "cap per entity", "minimum grant")
    budget = reward.budget
    _add(
        table,
        f"budget {budget.amount:,} a {budget.per}, paced {budget.pacing}" if budget else f"{reward.pool:,}",
        str(reward.unit),
        f"{reward.cap:,}" if reward.cap is not None else "none",
        f"{reward.min_grant:,}" if reward.min_grant is not None else "none",
    )
    return table


def _header(ruleset: Ruleset) -> Panel:
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold")
    grid.add_column(overflow="fold")
    _add(grid, "ruleset", str(ruleset.name))
    _add(grid, "file", str(ruleset.path))
    _add(grid, "sha256", ruleset.sha256)
    if ruleset.description:
        _add(grid, "description", str(ruleset.description))
    _add(grid, "timezone", str(ruleset.timezone))
    _add(grid, "period", ruleset.period + (" (ISO weeks, Monday start)" if ruleset.period == "week" else ""))
    if ruleset.effective is not None:
        end = ruleset.effective.end
        start = ruleset.effective.start
        _add(grid, "effective", f"{start} to {end}" if end else f"from {start}")
    for name, expr in ruleset.filters.items():
        _add(grid, f"filter {name}", str(expr.text))
    for name, value in ruleset.params.items():  # (gates show them bound: params.x as its number)
        _add(grid, f"param {name}", _num(value))
    for t in ruleset.tunables:
        _add(
            grid,
            f"tunable {t.path}",
            f"[{_num(t.low)}, {_num(t.high)}]: chosen by `chuanliu rules calibrate`; "
            f"shown as {_num(t.low)} until then",
        )
    if ruleset.assumptions:
        _add(grid, "assumptions", str(ruleset.assumptions))
    return Panel(grid, title=Text(f"Ruleset {ruleset.name}"), title_align="left")


def render_scorecard(sc: Scorecard) -> RenderableType:
    """One scorecard: its metrics, scores, gates, tiers and reward as tables."""
    title = Text(f"Scorecard {sc.name}", style="bold")
    if sc.title:
        title.append(f" — {sc.title}", style="")
    key = sc.key if sc.key_from is None else f"{sc.key} from {sc.key_from.table} by {sc.key_from.on}"
    title.append(f"  (key {key}, ranked by {sc.rank_by})", style="dim")
    parts: list[RenderableType] = [title, _metrics(sc)]
    if sc.scores:
        parts.append(_scores(sc))
    if sc.gates:
        parts.append(_gates(sc))
    if sc.tiers:
        parts.append(_tiers(sc))
    reward = _reward(sc)
    if reward is not None:
        parts.append(reward)
    return Group(*parts)


def render_ruleset(ruleset: Ruleset) -> list[RenderableType]:
    """The header (name, sha256, description, timezone, period, filters, assumptions), then each scorecard."""
    return [_header(ruleset), *(render_scorecard(sc) for sc in ruleset.scorecards)]
