"""Calibrate a ruleset's tunable values to targets (SPEC §10: `chuanliu rules calibrate`).

Targets: `eligible`, `tier:<name>`, `capped` (entities granted the cap), `pool_to:<tier>` (units granted to
a tier), with `=`, `<=` or `>=` and a count (units for pool_to) or a percentage. Percentages are of the
scorecard's entities for `eligible`, of the eligible entities for `tier:` and `capped`, of the pool for
`pool_to:`.

Distance: how far a result is from a target, in percentage points of the target's base (a count target
counts as its share of that base), 0 when the target is met; the distance of a result is the sum over the
targets (and over the months). The search minimises it, and among equally close results prefers values
nearer the middle of their ranges.

The search is a coordinate search over the tunable values (each in turn, the others fixed, until a round
changes nothing): a threshold (a parameter compared in a gate, a tier's min_score) only matters at the
values the data holds, so its candidates are exactly the distinct 6-decimal values of what it is compared
with, within its range (and the range's ends); a weight is searched on a grid of its range, refined around
the best point down to 2 decimals; a pool or cap likewise down to 1/10,000 of its range (whole units). A
candidate list longer than the grid is searched the same way (grid, then the interval around the best),
which is exact when the distance falls and then rises along the list, and the closest found otherwise.
When the coordinate search stalls short of the targets (two targets pulling against each other), each
value is moved to its neighbouring candidates with the others searched again, and the search resumes from
any move that gets closer (PAIR_BUDGET evaluations at most). Last, each value is rounded to the fewest
digits that keep the distance (82 rather than 81.605107 when no entity lies between them).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import TYPE_CHECKING, Any, Literal

from chuanliu_cli.design.variants import Knob, Outcome, Variants
from chuanliu_cli.errors import UsageError
from chuanliu_cli.rules.model import Ruleset, Tunable

if TYPE_CHECKING:
    from chuanliu_cli.periods import Period
    from chuanliu_cli.scoring.compare import Comparison
    from chuanliu_cli.scoring.pipeline import RunResult, ScorecardResult

Op = Literal["=", "<=", ">="]

#: Candidate values evaluated per step of a search along one value.
GRID = 21
#: With counts only (no grants to allocate) a step is cheap: this many candidates are evaluated at once.
GRID_COUNTS = 2001
#: Rounds of the coordinate search at most (a round that changes nothing ends it earlier).
MAX_ROUNDS = 8
#: Variants evaluated at most before the search stops moving values in pairs (see `search`).
PAIR_BUDGET = 1500
#: Decimals a weight is chosen to; a pool or cap is chosen to 1/POOL_STEPS of its range (whole units).
WEIGHT_DECIMALS = 2
POOL_STEPS = 10_000

_TARGET = re.compile(
    r"^\s*(eligible|capped|tier:\S+|pool_to:\S+)\s*(<=|>=|=)\s*([0-9][0-9_]*(?:\.[0-9]+)?)\s*(%?)\s*$"
)


@dataclass(frozen=True)
class Target:
    """One target: NAME OP VALUE, VALUE a count (units for pool_to) or a percentage."""

    text: str
    name: str  # eligible | capped | tier:<name> | pool_to:<tier>
    op: Op
    value: Fraction
    percent: bool

    @property
    def tier(self) -> str | None:
        """The tier a `tier:` or `pool_to:` target names."""
        return self.name.split(":", 1)[1] if ":" in self.name else None

    @property
    def needs_grants(self) -> bool:
        """Whether the pool must be allocated to measure it."""
        return self.name == "capped" or self.name.startswith("pool_to:")

    def measure(self, outcome: Outcome, size: int) -> tuple[int, int]:
        """(the measured count or units, the base a percentage is of)."""
        if self.name == "eligible":
            return outcome.eligible_count, size
        if self.name == "capped":
            return outcome.capped_count(), outcome.eligible_count
        tier = str(self.tier)
        if self.name.startswith("tier:"):
            return outcome.tier_count(tier), outcome.eligible_count
        return outcome.granted_to(tier), outcome.pool

    def judge(self, actual: int, base: int) -> tuple[bool, float]:
        """Whether the measure meets the target (exactly), and the distance in percentage points."""
        goal = self.value * base / 100 if self.percent else self.value  # in the measure's unit
        if self.op == "=":
            miss = abs(actual - goal)
        elif self.op == "<=":
            miss = max(Fraction(0), actual - goal)
        else:
            miss = max(Fraction(0), goal - actual)
        points = float(miss * 100 / base) if base else (0.0 if miss == 0 else math.inf)
        return miss == 0, points


def parse_target(text: str, tiers: Sequence[str], has_cap: bool, has_reward: bool) -> Target:
    """A `--target` text; UsageError naming what is wrong and what is expected."""
    m = _TARGET.match(text)
    if m is None:
        raise UsageError(
            f"cannot read --target {text!r}",
            hint="write NAME OP VALUE: NAME eligible, tier:<name>, capped or pool_to:<tier>; OP =, <= or >=; "
            'VALUE a count or a percentage, e.g. --target "eligible >= 40" --target "tier:S <= 5%"',
        )
    name, op, number, percent = m.groups()
    value = Fraction(number.replace("_", ""))
    if percent and value > 100:
        raise UsageError(f"--target {text!r}: a percentage is at most 100%")
    if ":" in name:
        tier = name.split(":", 1)[1]
        if tier not in tiers:
            import difflib

            close = difflib.get_close_matches(tier, tiers, n=1)
            raise UsageError(
                f"--target {text!r}: unknown tier {tier!r}",
                hint=(f"did you mean {close[0]!r}? " if close else "")
                + f"tiers: {', '.join(tiers) or 'none'}",
            )
    if name == "capped" and not has_cap:
        raise UsageError(f"--target {text!r}: the scorecard's reward has no cap")
    if (name == "capped" or name.startswith("pool_to:")) and not has_reward:
        raise UsageError(f"--target {text!r}: the scorecard has no reward pool")
    return Target(text.strip(), name, op, value, bool(percent))  # type: ignore[arg-type]


@dataclass(frozen=True)
class Measured:
    """A target against one period's result."""

    target: Target
    period: str
    actual: int
    base: int
    met: bool
    distance: float

    def to_dict(self) -> dict[str, object]:
        """JSON: target, period, actual, share (%), met, distance (percentage points)."""
        return {
            "target": self.target.text,
            "period": self.period,
            "actual": self.actual,
            "share": round(100 * self.actual / self.base, 4) if self.base else None,
            "met": self.met,
            "distance": round(self.distance, 6),
        }


@dataclass(frozen=True)
class Search:
    """What the search chose, and how the targets came out with it."""

    chosen: dict[str, float]  # tunable path -> value
    measured: tuple[Measured, ...]
    evaluations: int
    rounds: int
    unused: tuple[str, ...]  # tunables no target depends on (left at the middle of their range)

    @property
    def met(self) -> bool:
        """Every target met in every period."""
        return all(m.met for m in self.measured)

    @property
    def distance(self) -> float:
        """The sum of the targets' distances (percentage points)."""
        return sum(m.distance for m in self.measured)


def measure(targets: Sequence[Target], outcome: Outcome, size: int, period: str) -> list[Measured]:
    """Every target measured on one outcome."""
    out = []
    for t in targets:
        actual, base = t.measure(outcome, size)
        met, distance = t.judge(actual, base)
        out.append(Measured(t, period, actual, base, met, distance))
    return out


def knobs_for(variants: Variants, tunables: Sequence[Tunable]) -> list[tuple[Tunable, Knob]]:
    """Each tunable with the knob of the scorecard it sets; UsageError-free: a tunable without a knob
    (a parameter not compared directly in a gate) is a RulesetError located at the tunable."""
    from chuanliu_cli.errors import RulesetError

    pairs = []
    problems = []
    for t in tunables:
        knob = variants.knobs.get(t.path)
        if knob is None:
            why = "; ".join(f"gate {g}: {w}" for g, w in variants.whole_gates.items())
            problems.append(
                f"{t.loc}: {t.path} cannot be calibrated: a parameter must be compared directly with a "
                f"metric or score in a gate of scorecard {variants.scorecard.name} (`live_days >= {t.path}`, "
                f"conditions joined by and){'; ' + why if why else ''}"
            )
            continue
        pairs.append((t, knob))
    if problems:
        raise RulesetError(problems, hint="write the gate as `name op params.<name> [and ...]`")
    return pairs


def search(
    months: Sequence[tuple[str, Variants]],
    tunables: Sequence[tuple[Tunable, Knob]],
    targets: Sequence[Target],
) -> Search:
    """The coordinate search described in the module docstring."""
    import numpy as np

    grants = any(t.needs_grants for t in targets)
    # a pool or cap changes nothing but grants: without a grant target it stays at the middle of its range
    active = [(t, k) for t, k in tunables if grants or k.kind not in ("pool", "cap")]
    unused = tuple(t.path for t, k in tunables if (t, k) not in active)
    state = {t.path: _middle(t) for t, _k in tunables}
    memo: dict[tuple[float, ...], tuple[float, float]] = {}
    order = [t.path for t, _k in tunables]
    ranges = {t.path: t for t, _k in tunables}

    def objective(values: Mapping[str, float]) -> tuple[float, float]:
        point = tuple(values[p] for p in order)
        if point not in memo:
            total = 0.0
            for label, v in months:
                outcome = v.evaluate(values, grants=grants)
                if outcome is None:
                    total = math.inf
                    break
                total += sum(m.distance for m in measure(targets, outcome, v.size, label))
            prior = sum(abs(values[p] - _middle(ranges[p])) / (ranges[p].high - ranges[p].low) for p in order)
            memo[point] = (round(total, 9), prior)
        return memo[point]

    # start from the middle: a threshold at the data value nearest to it
    for t, k in active:
        if k.kind in ("gate", "min_score"):
            cands = _threshold_candidates(t, k, months, state)
            state[t.path] = cands[int(np.argmin([abs(c - _middle(t)) for c in cands]))]
    if math.isinf(objective(state)[0]):
        from chuanliu_cli.errors import RulesetError

        # the middles of the ranges make no valid ruleset: tiers out of order, or a cap below min_grant
        shown = [
            f"{t.loc}: {t.path} starts near {_middle(t):g}, the middle of [{t.low:g}, {t.high:g}]"
            for t, _k in active
        ]
        raise RulesetError(
            [
                "the middles of the tune ranges do not make a valid ruleset (tiers must keep strictly "
                "descending min_score; a cap must stay above min_grant)",
                *shown,
            ],
            hint="narrow the tune ranges so that their middles are in order",
        )

    def along(t: Tunable, k: Knob, at: dict[str, float]) -> float:
        """The best value of one tunable, the others as in `at`."""
        value_of: Callable[[int], float]
        if k.kind in ("gate", "min_score"):
            cands = _threshold_candidates(t, k, months, at)
            n, value_of = len(cands), cands.__getitem__
        elif k.kind == "weight":
            steps = round((t.high - t.low) * 10**WEIGHT_DECIMALS)
            n, value_of = steps + 1, _linear(t.low, t.high, steps, WEIGHT_DECIMALS)
        else:
            steps = min(int(t.high - t.low), POOL_STEPS)
            n, value_of = steps + 1, _linear(t.low, t.high, steps, 0)
        grid = GRID if grants or k.kind == "weight" else GRID_COUNTS

        def score(c: float) -> tuple[float, float]:
            return objective({**at, t.path: c})

        return _search_indexed(n, value_of, score, grid)

    def descend(at: dict[str, float]) -> tuple[dict[str, float], int]:
        """Coordinate rounds until one changes nothing (MAX_ROUNDS at most)."""
        rounds = 0
        for rounds in range(1, MAX_ROUNDS + 1):  # noqa: B007 (the count is reported)
            changed = False
            for t, k in active:
                best = along(t, k, at)
                if objective({**at, t.path: best}) < objective(at):
                    at = {**at, t.path: best}
                    changed = True
            if not changed:
                break
        return at, rounds

    state, rounds = descend(state)
    # Targets that pull against each other (meeting the eligible count puts one too many in tier S) can
    # stall a coordinate search: then each value is moved to its neighbouring candidates with the others
    # searched again, and the search resumes from the first such move that gets closer.
    while objective(state)[0] > 0 and len(memo) < PAIR_BUDGET:
        moved = False
        for t, k in active:
            for c in _neighbours(t, k, months, state):
                trial = {**state, t.path: c}
                for u, j in active:
                    if u.path != t.path:
                        trial[u.path] = along(u, j, trial)
                if objective(trial) < objective(state):
                    state, more = descend(trial)
                    rounds += more
                    moved = True
                    break
                if len(memo) >= PAIR_BUDGET:
                    break
            if moved or len(memo) >= PAIR_BUDGET:
                break
        if not moved:
            break
    # the simplest number that does as well: 82 rather than 81.605107 when no entity lies between them
    for t, _k in active:
        current = objective(state)[0]
        for simpler in _simpler(state[t.path], t):
            if objective({**state, t.path: simpler})[0] <= current:
                state[t.path] = simpler
                break
    final: list[Measured] = []
    for label, v in months:
        outcome = v.evaluate(state, grants=grants)
        assert outcome is not None  # the start and every accepted step are feasible
        final.extend(measure(targets, outcome, v.size, label))
    return Search(dict(state), tuple(final), len(memo), rounds, unused)


def _neighbours(
    t: Tunable, k: Knob, months: Sequence[tuple[str, Variants]], state: Mapping[str, float], width: int = 2
) -> list[float]:
    """The candidates next to the current value: `width` on each side, nearest first (a threshold's
    data values; a weight's, pool's or cap's steps of a twentieth of its range)."""
    here = state[t.path]
    if k.kind in ("gate", "min_score"):
        cands = _threshold_candidates(t, k, months, state)
        at = min(range(len(cands)), key=lambda i: abs(cands[i] - here))
        order = [at + d for step in range(1, width + 1) for d in (-step, step)]
        return [cands[i] for i in order if 0 <= i < len(cands)]
    step = (t.high - t.low) / 20
    out = []
    for n in range(1, width + 1):
        for d in (-n, n):
            c = here + d * step
            c = float(round(c)) if t.integer else round(c, WEIGHT_DECIMALS)
            if t.low <= c <= t.high:
                out.append(c)
    return out


def _simpler(value: float, t: Tunable) -> list[float]:
    """Numbers with fewer digits than `value`, fewest first, within the tunable's range; [] when `value`
    is as simple as they come (a whole number with a single significant digit)."""
    out: list[float] = []
    if t.integer:
        digits = len(str(abs(int(value))))
        steps = [10.0**e for e in range(digits - 1, -1, -1)]
    else:
        steps = [10.0**-d for d in range(0, WEIGHT_DECIMALS + 3)]
    for step in steps:
        for f in (math.floor, math.ceil):
            c = f(value / step) * step
            c = float(round(c)) if step >= 1 else round(c, 8)
            if c == value:
                return out
            if t.low <= c <= t.high and c not in out:
                out.append(c)
    return out


def _middle(t: Tunable) -> float:
    middle = (t.low + t.high) / 2
    return float(math.floor(middle)) if t.integer else round(middle, WEIGHT_DECIMALS)


def _linear(low: float, high: float, steps: int, decimals: int) -> Callable[[int], float]:
    """Value k of `steps` equal steps from low to high, rounded to `decimals` (ends exact)."""

    def value(k: int) -> float:
        if k >= steps:
            return high
        if decimals == 0:
            return float(int(low) + (int(high) - int(low)) * k // max(steps, 1))
        return round(low + (high - low) * k / max(steps, 1), decimals)

    return value


def _threshold_candidates(
    t: Tunable, k: Knob, months: Sequence[tuple[str, Variants]], state: Mapping[str, float]
) -> list[float]:
    """The values at which a threshold's outcome can change: the distinct 6-decimal values of what it is
    compared with (a min_score: the rank_by values of eligible entities) within [low, high], and the ends."""
    import numpy as np

    from chuanliu_cli.scoring.allocation import round_micro

    lo, hi = round_micro(t.low), round_micro(t.high)
    found: list[np.ndarray] = [np.array([lo, hi], dtype=np.int64)]
    for _label, v in months:
        if k.kind == "gate":
            names: Sequence[str] = k.columns
            mask = None
        else:
            names = (v.scorecard.rank_by,)
            outcome = v.evaluate(state, grants=False)
            mask = outcome.eligible if outcome is not None else None
        for name in names:
            micro, missing = v.rounded(name, state)
            keep = ~missing if mask is None else (~missing & mask)
            values = np.asarray(micro[keep], dtype=object if micro.dtype == object else np.int64)
            values = values[(values >= lo) & (values <= hi)]
            found.append(np.unique(values).astype(np.int64))
    micro_all = np.unique(np.concatenate(found))
    return [int(m) / 1_000_000 for m in micro_all.tolist()]


def _search_indexed(
    n: int, value_of: Callable[[int], float], score: Callable[[float], tuple[float, float]], grid: int
) -> float:
    """The best of `n` ordered candidates (smallest `score`, then earliest): all of them when few, else
    a grid over them, then the same within the interval around the grid's best."""
    lo, hi = 0, n - 1
    seen: dict[int, tuple[float, float]] = {}
    while True:
        if hi - lo + 1 <= grid:
            idx = list(range(lo, hi + 1))
        else:
            idx = sorted({lo + (hi - lo) * j // (grid - 1) for j in range(grid)})
        for i in idx:
            if i not in seen:
                seen[i] = score(value_of(i))
        best = min(idx, key=lambda i: (seen[i], i))
        if hi - lo + 1 <= grid:
            return value_of(best)
        p = idx.index(best)
        lo, hi = idx[max(p - 1, 0)], idx[min(p + 1, len(idx) - 1)]


# --- the whole command ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Calibration:
    """A calibrated ruleset: the search, the text written, and the new ruleset against the old one."""

    ruleset: Ruleset  # as given, with its tunable values
    written: Ruleset  # the calibrated ruleset (numbers only in the scorecard calibrated)
    scorecard: str
    periods: tuple[str, ...]
    targets: tuple[Target, ...]
    search: Search
    tunables: tuple[Tunable, ...]
    comparison: Comparison
    against: str  # what the comparison's side A is
    runs: tuple[RunResult, ...]  # the calibrated ruleset scored, one run per period
    warnings: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        """JSON: ruleset (as given and as written), scorecard, periods, the values chosen, each target as
        measured, whether all were met, the distance, and the comparison's summary."""
        summary = self.comparison.summary()
        return {
            "ruleset": {
                "name": self.ruleset.name,
                "sha256": self.ruleset.sha256,
                "path": str(self.ruleset.path),
            },
            "written": {
                "name": self.written.name,
                "sha256": self.written.sha256,
                "path": str(self.written.path),
            },
            "scorecard": self.scorecard,
            "periods": list(self.periods),
            "chosen": [
                {
                    "path": t.path,
                    "low": t.low,
                    "high": t.high,
                    "value": self.search.chosen[t.path],
                    "used": t.path not in self.search.unused,
                }
                for t in self.tunables
            ],
            "targets": [m.to_dict() for m in self.search.measured],
            "met": self.search.met,
            "distance": round(self.search.distance, 6),
            "evaluations": self.search.evaluations,
            "compare": {
                "against": self.against,
                **{k: summary[k] for k in ("eligible", "entrants", "leavers", "tier_moves", "grant_moved")},
            },
            "warnings": list(self.warnings),
        }


def calibrate_ruleset(
    source: Any,
    ruleset: Ruleset,
    periods: Sequence[Period],
    target_texts: Sequence[str],
    scorecard: str | None,
    output: str,
    against: Ruleset | None = None,
) -> Calibration:
    """Calibrate `ruleset`'s tunable values of one scorecard to the targets over `periods` on `source`
    (a DuckDB connection or engine), and build the ruleset text with the values chosen (parsed and checked
    as `output`, not written: the caller writes it). The written ruleset is scored again by the pipeline,
    and its targets measured on that result must be the search's (else a bug is raised)."""
    from dataclasses import replace

    from chuanliu_cli.errors import RulesetError
    from chuanliu_cli.rules.compiler import scorecards_needed
    from chuanliu_cli.rules.parser import parse_ruleset
    from chuanliu_cli.rules.tuning import require_numbers, rewrite, scorecards_tuned
    from chuanliu_cli.rules.validate import check_ruleset_against_schema
    from chuanliu_cli.scoring.compare import Side, compare_results
    from chuanliu_cli.scoring.pipeline import score_period

    if not ruleset.tunables:
        raise UsageError(
            f"{ruleset.path} has no tunable values to calibrate",
            hint="write {tune: [low, high]} in place of a weight, min_score, pool, cap or a params: value",
        )
    names = [sc.name for sc in ruleset.scorecards]
    if scorecard is None:
        tuned = [n for n in names if any(n in scorecards_tuned(ruleset, t) for t in ruleset.tunables)]
        if not tuned:
            raise UsageError(
                f"no scorecard of {ruleset.path} reads its tunable values",
                hint="a tunable parameter counts once a gate reads it as params.<name>",
            )
        scorecard = tuned[0]
    elif scorecard not in names:
        raise UsageError(f"unknown scorecard {scorecard!r}", hint=f"scorecards: {', '.join(names)}")
    needed = scorecards_needed(ruleset, scorecard)
    earlier = tuple(n for n in needed if n != scorecard)
    try:
        require_numbers(ruleset, earlier)  # the scorecards this one reads must have their numbers first
    except RulesetError as exc:
        first = next(n for n in earlier if any(n in scorecards_tuned(ruleset, t) for t in ruleset.tunables))
        exc.hint = (
            f"scorecard {scorecard} reads scorecard {first}'s results: calibrate {first} first "
            f"(--scorecard {first}), then {scorecard} on the file written"
        )
        raise
    tunables = tuple(t for t in ruleset.tunables if scorecard in scorecards_tuned(ruleset, t))
    if not tunables:
        raise UsageError(f"scorecard {scorecard} has no tunable values", hint="name another with --scorecard")
    sc = ruleset.scorecard(scorecard)
    tier_names = [t.name for t in sc.tiers]
    reward = sc.reward
    targets = tuple(
        parse_target(text, tier_names, reward is not None and reward.cap is not None, reward is not None)
        for text in target_texts
    )
    if not targets:
        raise UsageError("give at least one --target", hint='e.g. --target "eligible >= 40"')
    if any(t.kind in ("pool", "cap") for t in tunables) and reward is not None and reward.budget is not None:
        raise RulesetError([f"{sc.loc}: scorecard {scorecard} has a budget: its pool is not tunable"])
    warnings: list[str] = []
    for t in tunables:
        others = scorecards_tuned(ruleset, t) - {scorecard}
        if others:
            warnings.append(
                f"{t.path} is also read by scorecard(s) {', '.join(sorted(others))}: their results change too"
            )

    placeholder = replace(ruleset, tunables=(), warnings=())
    months = []
    bases = []
    for p in periods:
        run = score_period(source, placeholder, p, upto=scorecard)
        bases.append(run)
        months.append((p.label, Variants.of(placeholder, run.scorecards[scorecard])))
    pairs = knobs_for(months[0][1], tunables)
    found = search(months, pairs, targets)

    text = rewrite(ruleset, found.chosen)
    written = parse_ruleset(text, output)
    check_ruleset_against_schema(written)
    runs = tuple(rescored(source, base, written, scorecard) for base in bases)
    for run, label in zip(runs, (p.label for p in periods), strict=True):
        res = run.scorecards[scorecard]
        real = measure(targets, outcome_of(res), res.frame.height, label)
        mine = [m for m in found.measured if m.period == label]
        if [(m.actual, m.base) for m in real] != [(m.actual, m.base) for m in mine]:
            raise RuntimeError(
                f"calibrate: the written ruleset scores {[m.actual for m in real]} on the targets in "
                f"{label}, the search measured {[m.actual for m in mine]}"
            )
    if against is None:
        middle = rewrite(ruleset, {t.path: _middle(t) for t in tunables})
        against = replace(parse_ruleset(middle, f"{ruleset.path} (midpoints)"), tunables=())
        label = "the midpoints of the tune ranges"
    else:
        label = f"{against.name} ({against.path})"
    old = (
        rescored(source, bases[0], against, scorecard)
        if label.startswith("the midpoints")
        else score_period(source, against, periods[0], upto=scorecard)
    )
    comparison = compare_results(
        Side(label, old, old.scorecards[scorecard]),
        Side(f"calibrated ({output})", runs[0], runs[0].scorecards[scorecard]),
    )
    for t in tunables:
        if t.path in found.unused:
            warnings.append(f"{t.path}: no target depends on it; set to the middle of its range")
    return Calibration(
        ruleset,
        written,
        scorecard,
        tuple(p.label for p in periods),
        targets,
        found,
        tunables,
        comparison,
        label,
        runs,
        tuple(warnings),
    )


def rescored(source: Any, base: RunResult, ruleset: Ruleset, scorecard: str) -> RunResult:
    """`ruleset` (the calibrated one, or the midpoints: the same file but for numbers) scored for `base`'s
    period: its metric query is the base's (checked: the same SQL), so the base's metrics go through the
    pipeline's scores, gates, tiers and grants (scoring/pipeline.finish_scorecard) without running it
    again; a different query is run by the pipeline."""
    from dataclasses import replace

    import polars as pl

    from chuanliu_cli.engines.duckdb import as_engine
    from chuanliu_cli.scoring.pipeline import finish_scorecard, metric_sql, score_period

    engine = as_engine(source)
    period = base.period
    same = metric_sql(base.ruleset, scorecard, period, engine.dialect) == metric_sql(
        ruleset, scorecard, period, engine.dialect
    )
    if not same:
        return score_period(source, ruleset, period, upto=scorecard)
    res = base.scorecards[scorecard]
    sc = ruleset.scorecard(scorecard)
    paced = res.scorecard.reward
    if sc.reward is not None and sc.reward.budget is not None and paced is not None:
        sc = replace(sc, reward=replace(paced, cap=sc.reward.cap, min_grant=sc.reward.min_grant))
    metrics = res.frame.select(sc.key, *(m.name for m in sc.metrics)).sort(sc.key)
    names = engine.names(sc.key)
    done = finish_scorecard(sc, period, metrics.with_columns(pl.col(sc.key).cast(pl.Utf8)), names)
    return replace(base, ruleset=ruleset, scorecards={**base.scorecards, scorecard: done})


def outcome_of(res: ScorecardResult) -> Outcome:
    """A scored result's eligibility, tiers and grants as an Outcome (to measure targets on it)."""
    import polars as pl

    sc = res.scorecard
    names = tuple(t.name for t in sc.tiers)
    frame = res.frame
    tier = frame["tier"].replace_strict(
        {n: i for i, n in enumerate(names)}, default=-1, return_dtype=pl.Int64
    )
    eligible = frame["eligible"].fill_null(False).to_numpy().astype(bool)
    tier_codes = tier.to_numpy().copy()
    tier_codes[~eligible] = -1
    grant = frame["grant"].fill_null(0).to_numpy() if sc.reward is not None else None
    pool = sc.reward.pool if sc.reward is not None else 0
    cap = sc.reward.cap if sc.reward is not None else None
    return Outcome(eligible, tier_codes, grant, names, pool, cap)
