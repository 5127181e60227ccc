"""Windows in time: the dates a window covers for a period, and the history a ruleset needs (SPEC §6).

No sqlglot here: scoring and `status` use these without compiling anything.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta

from chuanliu_cli import schema
from chuanliu_cli.periods import Period
from chuanliu_cli.rules.model import AggregateMetric, ConversionMetric, Ruleset, Window


def window_bounds(window: Window, period: Period) -> tuple[date, date]:
    """The half-open date range [start, end) a window covers for `period`."""
    if window.kind == "period":
        return period.start, period.end
    if window.kind == "previous":
        prev = period.previous()
        return prev.start, prev.end
    if window.kind == "days":
        return period.end - timedelta(days=window.n), period.end
    return period.shift(-(window.n - 1)).start, period.end


@dataclass(frozen=True)
class HistoryNeed:
    """The first day of data a table must have for a period to be scored right, and which windows ask it."""

    table: str
    needed_from: date
    because: str  # e.g. "90-day windows", "the previous period"


def _window_words(window: Window, period_kind: str) -> str:
    if window.kind == "previous":
        return "the previous period"
    if window.kind == "days":
        return f"{window.n}-day windows"
    if window.kind == "periods":
        return f"{window.n}-{period_kind} windows"
    return "the period"


def history_needed(
    ruleset: Ruleset, period: Period, upto: str | None = None, needed: Sequence[str] | None = None
) -> dict[str, HistoryNeed]:
    """Per table read by the scorecards scored for `upto` (scorecards_needed), the start of the earliest
    window that reads it (SPEC §6 partial periods): with less history, a `previous` or 90-day metric
    silently sees only part of its window."""
    earliest: dict[str, tuple[date, list[str]]] = {}
    if needed is None and upto is None:
        needed = [sc.name for sc in ruleset.scorecards]
    elif needed is None:
        from chuanliu_cli.rules.compiler import scorecards_needed

        needed = scorecards_needed(ruleset, upto)
    for sc in ruleset.scorecards:
        if sc.name not in needed:
            continue
        for metric in sc.metrics:
            if isinstance(metric, AggregateMetric):
                reads = [(metric.source, metric.window)]
            elif isinstance(metric, ConversionMetric):
                reads = [(metric.first.source, metric.first.window), (metric.then.source, metric.then.window)]
            else:
                continue
            for source, window in reads:
                if schema.TABLES[source].time_column is None:
                    continue  # shops: no time, nothing to cover
                start, _end = window_bounds(window, period)
                words = _window_words(window, ruleset.period)
                have = earliest.get(source)
                if have is None or start < have[0]:
                    earliest[source] = (start, [words])
                elif start == have[0] and words not in have[1]:
                    have[1].append(words)
    return {t: HistoryNeed(t, start, ", ".join(words)) for t, (start, words) in sorted(earliest.items())}
