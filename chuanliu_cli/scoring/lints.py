"""Data lints: what a scored period looks like when the rules or the data are not what was meant.

Each is a warning, never an error: a month before any data, a scorecard with nobody in it, a gate nobody
passes, a reward list with nobody on it, and a filtered metric that is zero or empty for every entity (its
`where` most likely matches no row: a value the data never holds, a column the exports leave empty). With
`--strict` any of them stops the run before it writes anything.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from chuanliu_cli.rules.model import AggregateMetric

if TYPE_CHECKING:
    from chuanliu_cli.scoring.pipeline import RunResult, ScorecardResult


def data_lints(run: RunResult, scorecard: str) -> list[str]:
    """The warnings of `scorecard` in `run` (the scorecard the user asked for; earlier ones feed it); for
    a run read back from the store, those computed when it was recorded."""
    if scorecard in run.stored_lints:
        return list(run.stored_lints[scorecard])
    period = run.period.label
    starts = [lo for lo, _hi in run.data_window.values() if lo is not None]
    ends = [hi for _lo, hi in run.data_window.values() if hi is not None]
    if not starts:
        return [f"there is no data at all: {period} was scored on empty tables"]
    first, last = min(starts), max(ends)
    out: list[str] = []
    if datetime.combine(run.period.end, datetime.min.time()) <= first:
        out.append(f"{period} is before any data (the data starts {first:%Y-%m-%d})")
    elif datetime.combine(run.period.start, datetime.min.time()) > last:
        out.append(f"{period} is after all data (the data ends {last:%Y-%m-%d})")
    res = run.scorecards[scorecard]
    if res.frame.height == 0:
        out.append(f"scorecard {scorecard} has no entities in {period}: nothing to rank or reward")
        return out
    out.extend(_metric_lints(res))
    out.extend(_gate_lints(res))
    if res.scorecard.gates and not res.frame["eligible"].any():
        out.append(
            f"no entity of scorecard {scorecard} is eligible in {period} "
            f"({res.frame.height} scored): the reward list is empty"
        )
    return out


def _metric_lints(res: ScorecardResult) -> list[str]:
    """Filtered metrics whose `where` matched no row of any entity in the window: exactly decidable from
    the values for `count(*)` (0 for everyone) and for a bare avg/min/max/median (NULL for everyone); sums,
    rates and conversions can be 0 with rows matched, so they are not judged from their values."""
    out = []
    frame = res.frame
    for metric in res.scorecard.metrics:
        if (
            not isinstance(metric, AggregateMetric)
            or metric.where is None
            or metric.name not in frame.columns
        ):
            continue
        shape = _value_shape(metric.value.text)
        values = frame[metric.name]
        if shape == "count" and values.fill_null(0).abs().max() in (0, None):
            found = "0"
        elif shape == "null-when-empty" and values.null_count() == frame.height:
            found = "empty"
        else:
            continue
        out.append(
            f"metric {metric.name} is {found} for every one of {frame.height} entities: its filter "
            f"`{metric.where.text}` matches no row in its window"
        )
    return out


def _value_shape(text: str) -> str | None:
    """`count` for count(*), `null-when-empty` for one bare avg/min/max/median aggregate, else None."""
    import re

    compact = re.sub(r"\s+", "", text.lower())
    if compact == "count(*)":
        return "count"
    if re.fullmatch(r"(avg|min|max|median)\([^()]*\)", compact):
        return "null-when-empty"
    return None


def _gate_lints(res: ScorecardResult) -> list[str]:
    """Gates that every entity fails."""
    out = []
    failed = res.frame["failed_gates"]
    for gate in res.scorecard.gates:
        if failed.list.contains(gate.id).fill_null(False).all():
            out.append(f"gate {gate.id} is passed by no entity ({failed.len()} scored): `{gate.when.text}`")
    return out
