"""The data of an impact estimate: each period's grants and outcome values, as the real pipeline gives them.

A period is read through a `Scorer` (Session.impact passes one that reads a recorded run back when the
inputs are unchanged, else scores the period), so that the grants are exactly those of the reward list.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING, Any

from chuanliu_cli.errors import DataError, IncompletePeriodError, RulesetError, UsageError

if TYPE_CHECKING:
    import polars as pl

    from chuanliu_cli.periods import Period
    from chuanliu_cli.rules.model import Tier

#: A period label → its scored (or recorded) result for the scorecard: the library's ScoreResult (run,
#: result, run_id, stored, warnings); typed loosely here because only the API layer may name it.
Scorer = Callable[[str], Any]

#: Periods before the grant period that the panel reaches back at most (DiD and event study).
MAX_PANEL = 24


@dataclass(frozen=True)
class PeriodData:
    """One period of the panel: each entity's rank_by value, eligibility, tier, grant, dose = grant / cap
    and outcome value (columns key, running, eligible, tier, grant, dose, outcome)."""

    period: Period
    frame: pl.DataFrame
    ruleset: str  # name (sha256 prefix)
    cap: int
    tiers: tuple[Tier, ...]  # highest first, as in the ruleset
    source: str  # "recorded run N" or "scored now"
    history_complete: bool  # False: windows reaching before the data start were scored short
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True)
class Panel:
    """The grant period, the outcome periods after it, and the earlier periods (oldest first)."""

    grant: PeriodData
    outcomes: tuple[PeriodData, ...]
    earlier: tuple[PeriodData, ...]
    key: str
    outcome: str

    @property
    def periods(self) -> tuple[PeriodData, ...]:
        """Every period, oldest first."""
        return (*self.earlier, self.grant, *self.outcomes)


def gather(score: Scorer, period: Period, horizon: int, outcome: str) -> Panel:
    """Score (or read back) the grant period, the `horizon` periods after it and the earlier periods the
    data covers. A later period without data is DataError (exit 4), one the data covers only in part
    IncompletePeriodError (exit 6): an effect cannot be measured on a month that is not there."""
    grant = _period_data(score, period, outcome)
    outcomes = []
    for h in range(1, horizon + 1):
        later = period.shift(h)
        try:
            data = _period_data(score, later, outcome, outcome_period=True)
        except RulesetError as exc:
            raise DataError(
                f"cannot score {later.label}, outcome period {h} of --horizon {horizon}: {exc.message}",
                hint=exc.hint,
            ) from None
        outcomes.append(data)
    earlier: list[PeriodData] = []
    start = _data_start(score, period)
    for back in range(1, MAX_PANEL + 1):
        before = period.shift(-back)
        if start is None or before.start < start:
            break
        try:
            earlier.append(_period_data(score, before, outcome))
        except RulesetError:
            break  # no ruleset in force that early: the panel starts after it
    key = grant.frame.columns[0]
    return Panel(grant, tuple(outcomes), tuple(reversed(earlier)), key, outcome)


def _data_start(score: Scorer, period: Period) -> date | None:
    """The first day of the first whole period of data: the panel reaches back to it, no further."""
    run = score(period.label).run
    starts = [w[0] for w in run.data_window.values() if w[0] is not None]
    if not starts:
        return None
    first = min(starts).date()
    p = period
    while p.start > first:
        p = p.previous()
    return p.start if p.start == first else p.shift(1).start


def _period_data(score: Scorer, period: Period, outcome: str, outcome_period: bool = False) -> PeriodData:
    import polars as pl

    scored = score(period.label)
    run, res = scored.run, scored.result
    if outcome_period:
        ends = [w[1] for w in run.data_window.values() if w[1] is not None]
        last = max(ends).date() if ends else None
        if last is None or last < period.start:
            raise DataError(
                f"no data for {period.label}, where the effect of the grants is measured"
                + (f" (the data ends on {last})" if last else ""),
                hint=f"load the exports of {period.label}, or an earlier --month or a smaller --horizon",
            )
        if run.incomplete_tables:
            raise IncompletePeriodError(
                f"the data of {period.label}, where the effect of the grants is measured, is incomplete: "
                f"{run.completeness_note()}",
                hint=f"load the rest of {period.label}, or choose an earlier --month or a smaller --horizon",
            )
    sc = res.scorecard
    frame = res.frame
    if outcome not in frame.columns:
        raise UsageError(
            f"{outcome!r} is not a metric or score of scorecard {sc.name} in {period.label} "
            f"(ruleset {run.ruleset.name})",
            hint="choose --outcome from: " + ", ".join(m.name for m in sc.metrics),
        )
    if sc.reward is None or not sc.reward.cap:
        raise UsageError(
            f"scorecard {sc.name} has no reward cap in {period.label} (ruleset {run.ruleset.name}): the "
            "effect of a full cap is not defined",
            hint="impact measures grants relative to the cap; use a scorecard whose reward has a cap",
        )
    cap = int(sc.reward.cap)
    grant = pl.col("grant").fill_null(0)
    data = frame.select(
        pl.col(res.key).alias(res.key),
        pl.col(sc.rank_by).cast(pl.Float64).alias("running"),
        pl.col("eligible").fill_null(False),
        pl.col("tier"),
        grant.alias("grant"),
        (grant / cap).alias("dose"),
        pl.col(outcome).cast(pl.Float64).alias("outcome"),
    )
    source = f"recorded run {scored.run_id}" if scored.stored else "scored now"
    return PeriodData(
        period=period,
        frame=data,
        ruleset=f"{run.ruleset.name} ({run.ruleset.sha256[:12]})",
        cap=cap,
        tiers=sc.tiers,
        source=source,
        history_complete=not run.missing_history,
        warnings=tuple(scored.warnings),
    )
