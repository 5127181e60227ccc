"""A yearly budget paced over the year's periods (SPEC §9): each period's pool, and how it was derived.

`reward.budget: {amount: N, per: year, pacing: even | remaining}` replaces a fixed `pool`:
- `even`: floor(amount / periods in the year); the year's last period takes the remainder (ISO weeks for a
  weekly ruleset: 52 or 53 a year).
- `remaining`: floor((amount − granted so far this year) / periods left, this one included); granted = Σ
  allocated of the latest recorded `eligible` run of each earlier period of the year for the scorecard. A
  period without a recorded run is scored with the ruleset in force then, and the output says so.

The arithmetic is whole numbers only (`even_pool`, `remaining_pool`), as allocation is.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import date
from typing import TYPE_CHECKING, Any, Literal

from chuanliu_cli.errors import RulesetError

if TYPE_CHECKING:
    from chuanliu_cli.periods import Period, PeriodKind
    from chuanliu_cli.rules.model import Budget, Ruleset, Scorecard

#: The ruleset in force in a period (None: no version holds it).
Resolver = Callable[["Period"], "Ruleset | None"]


def year_periods(period: Period) -> list[Period]:
    """Every period of `period`'s year, in order: the 12 months, or the ISO weeks of its ISO year."""
    from chuanliu_cli.periods import month_period, week_period

    if period.kind == "month":
        return [month_period(period.start.year, m) for m in range(1, 13)]
    year = period.start.isocalendar()[0]
    weeks = date(year, 12, 28).isocalendar()[1]  # 28 December is always in the ISO year's last week
    return [week_period(date.fromisocalendar(year, w, 1)) for w in range(1, weeks + 1)]


def year_of(period: Period) -> int:
    """The calendar year of a month, the ISO year of a week."""
    return period.start.year if period.kind == "month" else period.start.isocalendar()[0]


def even_pool(amount: int, periods: int, index: int) -> int:
    """Period `index` (0-based) of `periods`: floor(amount / periods), the last one the remainder too."""
    share = amount // periods
    return amount - share * (periods - 1) if index == periods - 1 else share


def remaining_pool(amount: int, granted: int, left: int) -> int:
    """floor((amount − granted) / left), `left` counting this period; 0 once the budget is spent."""
    return max(amount - granted, 0) // left


def derive_pool(budget: Budget, period: Period, granted: int, granted_from: str = "") -> tuple[int, str]:
    """The pool of `period` under `budget`, `granted` being what earlier periods of the year granted (for
    `remaining`), and how it was derived, in words."""
    periods = year_periods(period)
    n, index = len(periods), periods.index(period)
    kind = period.kind
    amount = budget.amount
    if budget.pacing == "even":
        pool = even_pool(amount, n, index)
        if index == n - 1:
            return pool, (
                f"budget {amount:,} a year paced evenly: the year's last {kind} takes the rest, "
                f"{amount:,} − {n - 1} × {amount // n:,}"
            )
        return pool, f"budget {amount:,} a year paced evenly: {amount:,} / {n} {kind}s, rounded down"
    left = n - index
    pool = remaining_pool(amount, granted, left)
    where = f" ({granted_from})" if granted_from else ""
    basis = (
        f"budget {amount:,} a year paced by what remains: ({amount:,} − {granted:,} granted in "
        f"{year_of(period)} before {period.label}{where}) / {left} {kind}{'s' if left != 1 else ''} left, "
        "rounded down"
    )
    if granted > amount:
        basis += f"; {granted - amount:,} more than the budget was granted already"
    return pool, basis


@dataclass(frozen=True)
class PeriodBudget:
    """One period of the year for one scorecard: its pool, what it allocated, and where that comes from
    (`run`: the latest recorded `eligible` run; `scored`: scored now; `none`: no ruleset in force, or one
    without this scorecard or its reward)."""

    period: Period
    ruleset: str | None
    sha256: str | None
    pool: int | None
    allocated: int
    source: Literal["run", "scored", "none"]
    run_id: int | None
    basis: str | None
    amount: int | None  # the yearly budget of the version in force; None with a fixed pool
    granted_to_date: int  # Σ allocated of the year's periods through this one
    complete: bool | None = None  # scored: whether the data covered the period (None: not scored)

    @property
    def unallocated(self) -> int | None:
        """Pool − allocated (None without a pool)."""
        return None if self.pool is None else self.pool - self.allocated

    @property
    def left(self) -> int | None:
        """What the year's budget has left after this period (None with a fixed pool)."""
        return None if self.amount is None else self.amount - self.granted_to_date

    @property
    def where(self) -> str:
        """`run 12`, `scored` or `none`."""
        return f"run {self.run_id}" if self.source == "run" else self.source

    def to_dict(self) -> dict[str, Any]:
        """One row of `budget`'s outputs."""
        return {
            "period": self.period.label,
            "ruleset": self.ruleset,
            "sha256": self.sha256,
            "pool": self.pool,
            "allocated": self.allocated if self.source != "none" else None,
            "unallocated": self.unallocated,
            "granted_to_date": self.granted_to_date,
            "left_of_year": self.left,
            "source": self.source,
            "run_id": self.run_id,
            "basis": self.basis,
            "complete": self.complete,
        }


def versions_of(ruleset: Ruleset) -> Resolver:
    """The ruleset in force in each period for a ruleset chosen by period: the version of its directory
    (rules/effective.py), or, for a single file, the ruleset itself."""
    if ruleset.versions is None:
        return lambda _period: ruleset
    return resolver(ruleset.versions)


def resolver(rules: Any) -> Resolver:
    """The ruleset in force in each period for `rules` (a ruleset, a file, a directory or None, as
    `--rules` takes it); a period that no version holds gets None."""
    from chuanliu_cli.rules.effective import ruleset_for_period

    def resolve(period: Period) -> Ruleset | None:
        try:
            return ruleset_for_period(rules, period, check=True)[0]
        except RulesetError as exc:
            if any("no ruleset is in force" in e for e in exc.errors):
                return None
            raise

    return resolve


def _with_pools(ruleset: Ruleset, period: Period, name: str, granted: int, granted_from: str) -> Ruleset:
    """`ruleset` with the pool of scorecard `name` derived for `period`, and every other budget's even
    share (they are scored only for what `name` reads of them: eligible, tier, total)."""
    cards = []
    for sc in ruleset.scorecards:
        reward = sc.reward
        if reward is not None and reward.budget is not None and not reward.paced:
            if sc.name == name:
                pool, basis = derive_pool(reward.budget, period, granted, granted_from)
            else:
                pool, basis = derive_pool(replace(reward.budget, pacing="even"), period, 0)
            sc = replace(sc, reward=replace(reward, pool=pool, basis=basis))
        cards.append(sc)
    return replace(ruleset, scorecards=tuple(cards))


def _budget_of(sc: Scorecard | None) -> Budget | None:
    return sc.reward.budget if sc is not None and sc.reward is not None else None


def year_figures(engine: Any, resolve: Resolver, name: str, periods: Sequence[Period]) -> list[PeriodBudget]:
    """Pool and allocation of scorecard `name` in each of `periods` (the year's, in order): the latest
    recorded `eligible` run's where there is one, else scored now with the ruleset in force then (its
    pool paced on what the periods before it granted)."""
    from chuanliu_cli.engines.duckdb import as_engine
    from chuanliu_cli.scoring.pipeline import score_period
    from chuanliu_cli.store.runs import latest_eligible_run

    engine = as_engine(engine)
    con = getattr(engine, "con", None)  # recorded runs live in a DuckDB database (not Spark)
    out: list[PeriodBudget] = []
    granted = 0
    for q in periods:
        ruleset = resolve(q)
        sc = _scorecard(ruleset, name)
        budget = _budget_of(sc)
        amount = budget.amount if budget is not None else None
        recorded = latest_eligible_run(con, q.label, name) if con is not None else None
        if recorded is not None:
            allocated = recorded.allocated or 0
            granted += allocated
            out.append(
                PeriodBudget(
                    q,
                    recorded.ruleset_name,
                    recorded.ruleset_sha256,
                    recorded.pool,
                    allocated,
                    "run",
                    recorded.run_id,
                    f"recorded run {recorded.run_id}",
                    amount,
                    granted,
                )
            )
            continue
        if ruleset is None or sc is None or sc.reward is None:
            out.append(
                PeriodBudget(
                    q,
                    ruleset.name if ruleset else None,
                    ruleset.sha256 if ruleset else None,
                    None,
                    0,
                    "none",
                    None,
                    _nothing(ruleset, name),
                    None,
                    granted,
                )
            )
            continue
        paced = _with_pools(ruleset, q, name, granted, _sources(out))
        run = score_period(engine, paced, q, upto=name)
        res = run.scorecards[name]
        totals = res.totals()
        allocated = int(totals["allocated"])
        granted += allocated
        reward = res.scorecard.reward
        basis = reward.basis if reward is not None and reward.basis else "fixed pool"
        out.append(
            PeriodBudget(
                q,
                ruleset.name,
                ruleset.sha256,
                int(totals["pool"]),
                allocated,
                "scored",
                None,
                basis,
                amount,
                granted,
                run.complete,
            )
        )
    return out


def _scorecard(ruleset: Ruleset | None, name: str) -> Scorecard | None:
    if ruleset is None:
        return None
    try:
        return ruleset.scorecard(name)
    except KeyError:
        return None


def _nothing(ruleset: Ruleset | None, name: str) -> str:
    if ruleset is None:
        return "no ruleset in force"
    return (
        f"{ruleset.name} has no scorecard {name}"
        if _scorecard(ruleset, name) is None
        else (f"{ruleset.name}'s scorecard {name} has no reward")
    )


def _sources(rows: Sequence[PeriodBudget]) -> str:
    """Where the granted amounts come from: `runs 3, 4; scored 2023-01, 2023-02`."""
    runs = [str(r.run_id) for r in rows if r.source == "run"]
    scored = [r.period.label for r in rows if r.source == "scored"]
    parts = []
    if runs:
        parts.append(f"recorded run{'s' if len(runs) > 1 else ''} {', '.join(runs)}")
    if scored:
        parts.append(f"scored {', '.join(scored)}")
    return "; ".join(parts)


def pace_rewards(
    engine: Any, ruleset: Ruleset, period: Period, names: Sequence[str] | None = None
) -> Ruleset:
    """`ruleset` with the pool of every budget (of the scorecards `names`, default all) derived for
    `period`; unchanged when it has none. The periods of the year scored without a recorded run (for
    `remaining` pacing) are named in a warning of the returned ruleset."""
    cards = []
    notes = []
    for sc in ruleset.scorecards:
        reward = sc.reward
        if (
            reward is None
            or reward.budget is None
            or reward.paced
            or (names is not None and sc.name not in names)
        ):
            cards.append(sc)
            continue
        granted, granted_from = 0, ""
        if reward.budget.pacing == "remaining":
            earlier = [q for q in year_periods(period) if q < period]
            rows = year_figures(engine, versions_of(ruleset), sc.name, earlier)
            granted = sum(r.allocated for r in rows)
            granted_from = _sources(rows)
            scored = [r.period.label for r in rows if r.source == "scored"]
            notes.extend(_incomplete(rows, f"{sc.name} pool of {period.label}"))
            if scored:
                many = len(scored) > 1
                notes.append(
                    f"{sc.name} pool of {period.label}: {', '.join(scored)} "
                    f"{'have' if many else 'has'} no recorded `eligible` run, so "
                    f"{'they were' if many else 'it was'} scored now with the ruleset in force then to "
                    f"count what {'they' if many else 'it'} granted (record {'them' if many else 'it'}: "
                    f"chuanliu eligible --month {scored[0]} --scorecard {sc.name})"
                )
        pool, basis = derive_pool(reward.budget, period, granted, granted_from)
        cards.append(replace(sc, reward=replace(reward, pool=pool, basis=basis)))
    if not notes and all(a is b for a, b in zip(cards, ruleset.scorecards, strict=True)):
        return ruleset
    return replace(ruleset, scorecards=tuple(cards), warnings=(*ruleset.warnings, *notes))


@dataclass(frozen=True)
class BudgetYear:
    """`budget --year`: a scorecard's periods of the year (through the last one the data or a recorded run
    reaches), each with pool, allocated, unallocated and what the year has left."""

    year: int
    scorecard: str
    kind: PeriodKind
    periods: tuple[PeriodBudget, ...]
    periods_after: int  # periods of the year after the listed ones
    warnings: tuple[str, ...] = ()

    @property
    def rows(self) -> list[dict[str, Any]]:
        """One dict per listed period (the `periods` of the JSON document)."""
        return [p.to_dict() for p in self.periods]

    def to_dict(self) -> dict[str, Any]:
        """The JSON document of `budget`."""
        last = self.periods[-1] if self.periods else None
        return {
            "year": self.year,
            "scorecard": self.scorecard,
            "period_kind": self.kind,
            "periods": self.rows,
            "granted": last.granted_to_date if last else 0,
            "left_of_year": last.left if last else None,
            "periods_after": self.periods_after,
            "warnings": list(self.warnings),
        }


def budget_year(engine: Any, rules: Any, year: int, scorecard: str | None = None) -> BudgetYear:
    """Every period of `year` through the last one the data (or a recorded run) reaches, for `scorecard`
    (default: the first scorecard of the first ruleset in force that year)."""
    from chuanliu_cli.engines.duckdb import as_engine
    from chuanliu_cli.errors import UsageError
    from chuanliu_cli.periods import month_period, week_period
    from chuanliu_cli.rules.effective import period_kind

    if not 1 <= year <= 9998:
        raise UsageError(f"invalid year {year}", hint="e.g. --year 2023")
    kind = period_kind(rules)
    engine = as_engine(engine)
    first = month_period(year, 1) if kind == "month" else week_period(date.fromisocalendar(year, 1, 1))
    periods = year_periods(first)
    resolve = resolver(rules)
    versions = [r for r in (resolve(q) for q in periods) if r is not None]
    if not versions:
        raise RulesetError([f"{rules or 'the bundled rulesets'}: no ruleset is in force in {year}"])
    if scorecard is None:
        scorecard = versions[0].scorecards[0].name
    if all(_scorecard(r, scorecard) is None for r in versions):
        known = sorted({sc.name for r in versions for sc in r.scorecards})
        raise UsageError(f"unknown scorecard {scorecard!r}", hint=f"scorecards: {', '.join(known)}")
    ends = [hi for _lo, hi in engine.data_window().values() if hi is not None]
    data_end = max(ends).date() if ends else None
    con = getattr(engine, "con", None)
    from chuanliu_cli.store.runs import latest_eligible_run

    shown = [
        q
        for q in periods
        if (data_end is not None and q.start <= data_end)
        or (con is not None and latest_eligible_run(con, q.label, scorecard) is not None)
    ]
    shown = periods[: periods.index(shown[-1]) + 1] if shown else []
    rows = year_figures(engine, resolve, scorecard, shown)
    scored = [r.period.label for r in rows if r.source == "scored"]
    warnings = []
    if scored:
        warnings.append(
            f"{', '.join(scored)}: no recorded `eligible` run of {scorecard}; scored now with the ruleset in "
            "force then (record a period with `chuanliu eligible --month ...`)"
        )
    warnings.extend(_incomplete(rows, f"{scorecard} {year}"))
    return BudgetYear(year, scorecard, kind, tuple(rows), len(periods) - len(shown), tuple(warnings))


def _incomplete(rows: Sequence[PeriodBudget], what: str) -> list[str]:
    """A warning naming the periods scored on data that does not cover them: what they granted (0 for a
    period without data) may be less than was really granted."""
    short = [r.period.label for r in rows if r.source == "scored" and r.complete is False]
    if not short:
        return []
    many = len(short) > 1
    return [
        f"{what}: {', '.join(short)} {'were' if many else 'was'} scored on data that does not cover "
        f"{'them' if many else 'it'} (chuanliu status): what {'they' if many else 'it'} granted may be "
        "understated; load their data, or record the list that was published"
    ]
