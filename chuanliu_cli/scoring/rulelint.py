"""Design lints of a ruleset (`chuanliu rules lint`, issue #24): what a ruleset says that cannot work as
meant. Not the data lints of scoring/lints.py (a gate nobody passes in a scored period, an empty list).

From the ruleset alone:
- `tier-unreachable` (error): a tier whose min_score is above the highest value rank_by can reach (from
  the normalizers' ranges and the weights), or below a tier that every value reaches;
- `tier-multiplier` (error when lower, warning when equal): a higher tier whose multiplier is not above the
  next lower tier's, so that crossing the boundary gives no more grant (or less);
- `part-constant` (warning): a score part whose normalized value is the same whatever the value (bands of
  all 0, a normalizer whose range the score it reads never enters): its weight cannot matter;
- `score-unused` (warning): a score that neither rank_by, a gate nor a `requires` reads;
- `gate-implied` (warning): a gate that passes whenever another passes (the same metric, the same direction
  and a constant no stricter), so it never changes who is eligible.
With the data of a period (`--month`):
- `range-above-data` / `range-below-data` (warning): a normalizer whose range is beyond what the data
  shows (95 % of the entities get at most half its points; or 95 % get them all);
- `part-constant-data` (warning): every entity gets the same normalized value for a part;
- `tier-empty` (warning): a tier no eligible entity reached;
- `pool-unspendable` (error): every entity in a tier is granted the cap and the pool is not spent
  (cap × entities < pool).

Each finding has a code, a severity, the ruleset path (`scorecards.merchant.tiers[2]`), the file location, a
message and a fix.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from chuanliu_cli.rules.model import Gate, Loc, Normalizer, Ruleset, Score, Scorecard, ScorePart
from chuanliu_cli.scoring.allocation import round_micro
from chuanliu_cli.scoring.gates import comparisons
from chuanliu_cli.scoring.normalize import describe_normalizer, normalize_value, number_text

if TYPE_CHECKING:
    import polars as pl

    from chuanliu_cli.periods import Period
    from chuanliu_cli.scoring.pipeline import RunResult, ScorecardResult

Severity = Literal["error", "warning"]

#: The share of the entities a range lint speaks of ("95 % of merchants have ≤ 12").
SHARE = 0.95


@dataclass(frozen=True)
class Finding:
    """One lint: what is wrong, where, and what to do."""

    code: str
    severity: Severity
    path: str  # the place in the ruleset: scorecards.merchant.tiers[2]
    loc: Loc
    message: str
    fix: str

    def to_dict(self) -> dict[str, str]:
        """The finding as JSON."""
        return {
            "code": self.code,
            "severity": self.severity,
            "path": self.path,
            "location": str(self.loc),
            "message": self.message,
            "fix": self.fix,
        }


@dataclass(frozen=True)
class LintReport:
    """Every finding of a ruleset (and of a period's data when one was given), in file order."""

    ruleset: Ruleset
    period: Period | None
    findings: tuple[Finding, ...]
    warnings: tuple[str, ...] = field(default_factory=tuple)

    @property
    def errors(self) -> tuple[Finding, ...]:
        """The findings of severity error."""
        return tuple(f for f in self.findings if f.severity == "error")

    def to_dict(self) -> dict[str, Any]:
        """The JSON document of `rules lint --format json`."""
        return {
            "ruleset": {"name": self.ruleset.name, "sha256": self.ruleset.sha256, "path": self.ruleset.path},
            "period": self.period.label if self.period is not None else None,
            "summary": {
                "errors": len(self.errors),
                "warnings": len(self.findings) - len(self.errors),
            },
            "findings": [f.to_dict() for f in self.findings],
            "warnings": list(self.warnings),
        }


def lint_ruleset(ruleset: Ruleset, run: RunResult | None = None, warnings: Sequence[str] = ()) -> LintReport:
    """The lints of `ruleset`, and with `run` (every scorecard scored for a period) those of its data."""
    findings: list[Finding] = []
    for sc in ruleset.scorecards:
        ranges = score_ranges(sc)
        findings += _tiers(sc, ranges)
        findings += _constant_parts(sc, ranges)
        findings += _unused_scores(sc)
        findings += _implied_gates(sc)
        if run is not None and sc.name in run.scorecards:
            findings += _data(sc, ranges, run.scorecards[sc.name], run.period)
    findings.sort(key=lambda f: (f.loc.line, f.loc.col, f.code))
    return LintReport(ruleset, run.period if run is not None else None, tuple(findings), tuple(warnings))


# --- the range of every score ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Range:
    """The values a score (or a part's normalized value) can take: [low, high], and whether it can be NULL."""

    low: float
    high: float
    nullable: bool = False
    scale: float = 1.0  # a score's scale (a part that reads it without normalizer divides by it)


def score_ranges(sc: Scorecard) -> dict[str, Range]:
    """Each score's range, from its parts' normalized ranges and weights (SPEC §4): a metric may hold any
    value or none; a part's NULL counts as its `missing`, or drops the part with `missing: skip`."""
    ranges: dict[str, Range] = {}
    for score in sc.scores:  # in dependency order
        parts = [(p, part_range(p, ranges)) for p in score.parts]
        low, high, all_skippable = _weighted(parts)
        nullable = all_skippable or score.requires is not None
        ranges[score.name] = Range(low * score.scale, high * score.scale, nullable, score.scale)
    return ranges


def part_range(part: ScorePart, ranges: dict[str, Range]) -> Range:
    """The normalized values a part can count (before `missing`); nullable when its input can be NULL."""
    if part.score is not None:
        source = ranges.get(part.score, Range(0.0, math.inf, True))
        if part.normalize is None:  # value / scale
            return Range(source.low / source.scale, source.high / source.scale, source.nullable)
        low, high = _normalized_interval(part.normalize, source.low, source.high)
        return Range(low, high, source.nullable)
    assert part.normalize is not None  # the parser requires a normalizer on a metric part
    low, high = _normalized_interval(part.normalize, -math.inf, math.inf)
    return Range(low, high, True)


def _normalized_interval(norm: Normalizer, low: float, high: float) -> tuple[float, float]:
    """The normalized values of inputs in [low, high] (monotone normalizers at the ends; bands by band)."""
    if norm.kind == "rank":
        return 0.0, 1.0
    if norm.kind == "bands":
        bands = [(float(t), float(v)) for t, v in norm.params]  # type: ignore[misc]
        values = [0.0] if low < bands[0][0] else []
        for i, (t, v) in enumerate(bands):
            upper = bands[i + 1][0] if i + 1 < len(bands) else math.inf
            if t <= high and low < upper:
                values.append(v)
        return min(values), max(values)
    ends = [normalize_value(x, norm) for x in (low, high)]
    at = [0.0 if e is None else e for e in ends]
    return min(at), max(at)


def _weighted(parts: list[tuple[ScorePart, Range]]) -> tuple[float, float, bool]:
    """The lowest and highest weighted mean of the parts' counted values (a fraction of the scale), and
    whether every part can be skipped (the score can then be NULL)."""

    def counted(part: ScorePart, r: Range) -> tuple[float, float]:
        if r.nullable and part.missing != "skip":
            return min(r.low, float(part.missing)), max(r.high, float(part.missing))
        return r.low, r.high

    fixed = [(p.weight, *counted(p, r)) for p, r in parts if not (r.nullable and p.missing == "skip")]
    optional = [(p.weight, r.low, r.high) for p, r in parts if r.nullable and p.missing == "skip"]

    def extreme(index: int, better: int) -> float:
        # the best mean: every fixed part, then the optional ones by value while they improve the mean
        weight = sum(w for w, *_ in fixed)
        total = sum(w * v[index - 1] for w, *v in fixed)
        for w, *v in sorted(optional, key=lambda o: better * o[index], reverse=True):
            if weight == 0 or better * v[index - 1] > better * total / weight:
                weight += w
                total += w * v[index - 1]
        return total / weight if weight else 0.0

    return extreme(1, -1), extreme(2, 1), not fixed


# --- lints of the ruleset ----------------------------------------------------------------------------------


def _where(sc: Scorecard, rest: str) -> str:
    return f"scorecards.{sc.name}.{rest}"


def _rank_by_range(sc: Scorecard, ranges: dict[str, Range]) -> Range | None:
    return ranges.get(sc.rank_by)  # None: rank_by is a metric, with no known bounds


def _tiers(sc: Scorecard, ranges: dict[str, Range]) -> list[Finding]:
    findings = []
    reach = _rank_by_range(sc, ranges)
    tiers = list(sc.tiers)  # highest first
    if reach is not None:
        top, bottom = round_micro(reach.high), round_micro(reach.low)
        for i, tier in enumerate(tiers):
            path = _where(sc, f"tiers[{i}]")
            if round_micro(tier.min_score) > top:
                findings.append(
                    Finding(
                        "tier-unreachable",
                        "error",
                        path,
                        tier.loc,
                        f"tier {tier.name} needs {sc.rank_by} ≥ {number_text(tier.min_score)}, but the "
                        f"highest {sc.rank_by} the weights and normalizer ranges allow is "
                        f"{_num(reach.high)}: no entity can be in it",
                        f"lower min_score to at most {_num(reach.high)}, or remove the tier",
                    )
                )
            elif i > 0 and round_micro(tiers[i - 1].min_score) <= bottom:
                above = tiers[i - 1]
                findings.append(
                    Finding(
                        "tier-unreachable",
                        "error",
                        path,
                        tier.loc,
                        f"tier {tier.name} is below tier {above.name} (min_score "
                        f"{number_text(above.min_score)}), which every entity reaches: the lowest "
                        f"{sc.rank_by} the weights and normalizer ranges allow is {_num(reach.low)}",
                        f"raise tier {above.name}'s min_score above {_num(reach.low)}, or remove tier "
                        f"{tier.name}",
                    )
                )
    for i in range(len(tiers) - 1):
        high, low = tiers[i], tiers[i + 1]
        if high.multiplier > low.multiplier:
            continue
        equal = high.multiplier == low.multiplier
        findings.append(
            Finding(
                "tier-multiplier",
                "warning" if equal else "error",
                _where(sc, f"tiers[{i}]"),
                high.loc,
                f"tier {high.name} (×{number_text(high.multiplier)}) is above tier {low.name} "
                f"(×{number_text(low.multiplier)}) but "
                + (
                    "pays the same per point: reaching it changes no grant"
                    if equal
                    else "pays less per point: reaching it lowers the grant"
                ),
                f"give tier {high.name} a multiplier above {number_text(low.multiplier)}"
                + (f", or merge it with tier {low.name}" if equal else ""),
            )
        )
    return findings


def _constant_parts(sc: Scorecard, ranges: dict[str, Range]) -> list[Finding]:
    findings = []
    for score in sc.scores:
        for i, part in enumerate(score.parts):
            r = part_range(part, ranges)
            if r.low != r.high:
                continue
            findings.append(
                Finding(
                    "part-constant",
                    "warning",
                    _where(sc, f"scores.{score.name}.parts[{i}]"),
                    part.loc,
                    f"the part for {part.ref} in {score.name} normalizes every value to {_num(r.low)} "
                    f"({_describe(part)}): its weight {number_text(part.weight)} cannot matter, it only "
                    "shrinks the other parts' share",
                    "change the normalizer so that it spans the values the metric takes, or remove the part",
                )
            )
    return findings


def _describe(part: ScorePart) -> str:
    if part.normalize is None:
        return "value / scale"
    return describe_normalizer(part.normalize)


def _unused_scores(sc: Scorecard) -> list[Finding]:
    from chuanliu_cli.rules.expressions import bare_names

    read: set[str] = set()
    pending = [sc.rank_by]
    for gate in sc.gates:
        pending += list(bare_names(gate.when))
    pending += [s.requires.metric for s in sc.scores if s.requires is not None]
    by_name = {s.name: s for s in sc.scores}
    while pending:
        name = pending.pop()
        if name in read:
            continue
        read.add(name)
        if name in by_name:
            pending += [p.score for p in by_name[name].parts if p.score is not None]
    findings = []
    for score in sc.scores:
        if score.name in read:
            continue
        findings.append(
            Finding(
                "score-unused",
                "warning",
                _where(sc, f"scores.{score.name}"),
                score.loc,
                f"score {score.name} is read by neither rank_by ({sc.rank_by}), a gate nor a `requires`: "
                "its weights change no eligibility, tier or grant (it is only shown)",
                f"use it (a part of {sc.rank_by}, a gate), or remove it",
            )
        )
    return findings


_LOWER = (">=", ">")  # the comparison gives a lower bound of the name
_UPPER = ("<=", "<")


def _implies(a: tuple[str, str, float], b: tuple[str, str, float]) -> bool:
    """Whether comparison `a` holding makes comparison `b` hold (same name, same direction)."""
    (na, oa, ca), (nb, ob, cb) = a, b
    if na != nb:
        return False
    ca_m, cb_m = round_micro(ca), round_micro(cb)
    if oa in _LOWER and ob in _LOWER:
        return ca_m > cb_m or (ca_m == cb_m and (ob == ">=" or oa == ">"))
    if oa in _UPPER and ob in _UPPER:
        return ca_m < cb_m or (ca_m == cb_m and (ob == "<=" or oa == "<"))
    return False


def _implied_gates(sc: Scorecard) -> list[Finding]:
    findings = []
    shapes = [(i, g, comparisons(g)) for i, g in enumerate(sc.gates)]
    for j, gate, comps in shapes:
        if comps is None:
            continue
        for i, other, other_comps in shapes:
            if i == j or other_comps is None:
                continue
            # `other` passing makes `gate` pass: every comparison of `gate` follows from one of `other`'s,
            # and a NULL that `other` lets pass (missing: pass) is let pass by `gate` too
            if not all(any(_implies(o, c) for o in other_comps) for c in comps):
                continue
            if other.missing == "pass" and gate.missing == "fail":
                continue
            if i > j and all(any(_implies(c, o) for c in comps) for o in other_comps):
                continue  # the same condition twice: reported once, at the later gate
            findings.append(_implied(sc, j, gate, i, other))
            break
    return findings


def _implied(sc: Scorecard, j: int, gate: Gate, i: int, other: Gate) -> Finding:
    return Finding(
        "gate-implied",
        "warning",
        _where(sc, f"gates[{j}]"),
        gate.loc,
        f"gate {gate.id} (`{gate.when.text}`) passes whenever gate {other.id} (`{other.when.text}`) passes: "
        "it never changes who is eligible, it only adds a second reason to some failures",
        f"remove gate {gate.id}, or make it test something gate {other.id} does not",
    )


# --- lints of a period's data ------------------------------------------------------------------------------


def _data(sc: Scorecard, ranges: dict[str, Range], res: ScorecardResult, period: Period) -> list[Finding]:
    findings = []
    frame = res.frame
    for score in sc.scores:
        for i, part in enumerate(score.parts):
            if part.normalize is None or part.normalize.kind == "rank":
                continue  # a score's value / scale, or a percent rank: spread over the data by definition
            if part_range(part, ranges).low == part_range(part, ranges).high:
                continue  # part-constant already
            finding = _range_finding(sc, score, i, part, frame[part.ref], period)
            if finding is not None:
                findings.append(finding)
    findings += _empty_tiers(sc, ranges, res, period)
    findings += _pool(sc, res, period)
    return findings


def _range_finding(
    sc: Scorecard, score: Score, index: int, part: ScorePart, values: pl.Series, period: Period
) -> Finding | None:
    """`range-above-data`, `range-below-data` or `part-constant-data` for one part, or None."""
    norm = part.normalize
    assert norm is not None
    raw = sorted(float(v) for v in values.drop_nulls().drop_nans().to_list())
    path = _where(sc, f"scores.{score.name}.parts[{index}]")
    described = f"{part.ref} {describe_normalizer(norm)}"
    n = len(raw)
    who = f"{sc.name} entit{'y' if n == 1 else 'ies'}"
    normalized = [float(normalize_value(v, norm) or 0.0) for v in raw]
    if n == 0 or min(normalized) == max(normalized):
        shown = "no entity has a value" if n == 0 else f"all {n} {who} normalize to {_num(normalized[0])}"
        return Finding(
            "part-constant-data",
            "warning",
            path,
            part.loc,
            f"{described} in {score.name}: in {period.label} {shown}: its weight {number_text(part.weight)} "
            "moves no one",
            "check the metric's definition against the data, or the range against its values",
        )
    increasing = _increasing(norm, raw)
    ordered = raw if increasing else raw[::-1]  # from worst to best
    best95 = ordered[math.ceil(SHARE * n) - 1]  # 95 % of the entities are at most this good
    worst95 = ordered[n - math.ceil(SHARE * n)]  # 95 % are at least this good
    cmp_best, cmp_worst = ("≤", "≥") if increasing else ("≥", "≤")
    top = _top(norm)
    if float(normalize_value(best95, norm) or 0.0) <= 0.5:
        fix = "move the range to the values the data shows"
        if norm.kind in ("linear", "log"):
            low = float(norm.params[0])  # type: ignore[arg-type]
            if best95 != low and (best95 > low) == increasing:
                fix = f"narrow the range to the data, e.g. {norm.kind} [{number_text(low)}, {_num(best95)}]"
        return Finding(
            "range-above-data",
            "warning",
            path,
            part.loc,
            f"{described} in {score.name}, but {_pct(SHARE)} of the {n} {who} have {cmp_best} "
            f"{_num(best95)} in {period.label}: they get at most half of the part's points"
            + (f" (full points from {_num(top)})" if top is not None else ""),
            fix,
        )
    if float(normalize_value(worst95, norm) or 0.0) >= 1.0:
        return Finding(
            "range-below-data",
            "warning",
            path,
            part.loc,
            f"{described} in {score.name}, but {_pct(SHARE)} of the {n} {who} have {cmp_worst} "
            f"{_num(worst95)} in {period.label}: they all get the part's full points, so it tells them apart "
            "from no one",
            "move the full-points end past the values most entities reach (the best is "
            f"{_num(ordered[-1])}), or lower the part's weight if it is meant only as a penalty for the few "
            "short of it",
        )
    return None


def _increasing(norm: Normalizer, values: list[float]) -> bool:
    if norm.kind == "linear":
        a, b = (float(x) for x in norm.params)  # type: ignore[arg-type]
        return b > a
    if norm.kind == "bands":
        # bands may go either way: by their values at the data's ends
        low, high = (float(normalize_value(v, norm) or 0.0) for v in (values[0], values[-1]))
        return high >= low
    return True


def _top(norm: Normalizer) -> float | None:
    """The value from which the normalizer gives 1, for linear and log."""
    if norm.kind in ("linear", "log"):
        return float(norm.params[1])  # type: ignore[arg-type]
    return None


def _empty_tiers(
    sc: Scorecard, ranges: dict[str, Range], res: ScorecardResult, period: Period
) -> list[Finding]:
    import polars as pl

    reach = _rank_by_range(sc, ranges)
    per_tier = res.totals()["per_tier"]
    eligible = res.frame.filter(pl.col("eligible"))[sc.rank_by].drop_nulls().cast(pl.Float64).to_list()
    best = max(eligible) if eligible else None
    findings = []
    for i, tier in enumerate(sc.tiers):
        if per_tier.get(tier.name, 0):
            continue
        if reach is not None and round_micro(tier.min_score) > round_micro(reach.high):
            continue  # tier-unreachable says it already
        shown = "no entity is eligible"
        if best is not None:
            shown = f"the highest {sc.rank_by} of an eligible entity is {_num(best)}"
        findings.append(
            Finding(
                "tier-empty",
                "warning",
                _where(sc, f"tiers[{i}]"),
                tier.loc,
                f"no eligible {sc.name} entity is in tier {tier.name} (min_score "
                f"{number_text(tier.min_score)}) in {period.label}: {shown}",
                "lower min_score towards the data if the tier should be reached, or keep it as a goal",
            )
        )
    return findings


def _pool(sc: Scorecard, res: ScorecardResult, period: Period) -> list[Finding]:
    reward = sc.reward
    if reward is None or reward.pool == 0:
        return []
    totals = res.totals()
    unallocated = int(totals["unallocated"])
    if unallocated <= 0:
        return []
    granted = res.frame["grant"].fill_null(0)
    n = int((granted > 0).sum())
    loc = reward.loc or sc.loc
    if n == 0:
        message = (
            f"no eligible {sc.name} entity is in a tier in {period.label}: the whole pool of "
            f"{reward.pool:,} {reward.unit} stays unallocated"
        )
        fix = "let entities into the tiers (lower the lowest min_score, or the gates)"
    else:
        cap = reward.cap or 0
        message = (
            f"cap {cap:,} × {n} {sc.name} entit{'y' if n == 1 else 'ies'} in a tier = {cap * n:,} < pool "
            f"{reward.pool:,} in {period.label}: {unallocated:,} {reward.unit} cannot be spent"
        )
        fix = (
            f"raise cap to at least {-(-reward.pool // n):,}, lower the pool to {cap * n:,}, or let more "
            "entities into the tiers"
        )
    return [Finding("pool-unspendable", "error", _where(sc, "reward"), loc, message, fix)]


def _num(value: float) -> str:
    """A value as messages show it: at most 4 decimals, no trailing zeros."""
    if value in (math.inf, -math.inf):
        return "∞" if value > 0 else "-∞"
    if float(value).is_integer():
        return number_text(float(value))
    return f"{value:,.4f}".rstrip("0").rstrip(".")


def _pct(share: float) -> str:
    return f"{share * 100:g} %"
