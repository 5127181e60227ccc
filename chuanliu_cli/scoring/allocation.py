"""The reward pool: tier weights, capped water-filling, min_grant drops and largest remainder, exactly."""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from fractions import Fraction
from typing import Final, TypeAlias

Score: TypeAlias = float | Decimal | Fraction | int
Multiplier: TypeAlias = float | Decimal | Fraction | int | str

NOTE_NOT_ELIGIBLE: Final = "not eligible"
NOTE_NO_SCORE: Final = "no score"
NOTE_BELOW_TIER: Final = "below lowest tier"
NOTE_NO_WEIGHT: Final = "weight not positive"
NOTE_BELOW_MIN: Final = "below min_grant"
NOTE_CAPPED: Final = "capped"

# Scores are compared and weighted in millionths: the spec rounds rank_by to 6 decimals.
_MICRO: Final = 10**6
_ZERO: Final = Fraction(0)


@dataclass(frozen=True)
class Claim:
    """One entity's input: rank_by value, tier multiplier (None below the lowest tier), eligibility."""

    key: str
    score: Score | None
    multiplier: Multiplier | None
    eligible: bool


@dataclass(frozen=True)
class Grant:
    """One entity's outcome; `share` is the exact share before rounding, 0 for non-participants."""

    key: str
    grant: int
    share: Fraction
    weight: Fraction
    capped: bool
    note: str | None


@dataclass(frozen=True)
class Allocation:
    """The whole pool: a grant for every input key, totals, and the min_grant drops in removal order."""

    grants: dict[str, Grant]
    pool: int
    allocated: int
    unallocated: int
    dropped: tuple[str, ...]


def round_micro(score: Score) -> int:
    """Return `score` rounded half away from zero to 6 decimals, as an integer number of millionths.

    A float is read through its shortest repr, so 0.1 means 1/10 rather than the nearest binary fraction.
    """
    num, den = _exact_ratio(score, "score")
    magnitude = (2 * abs(num) * _MICRO + den) // (2 * den)  # floor(|x| * 10**6 + 1/2)
    return -magnitude if num < 0 else magnitude


def rounded_score(score: Score) -> Fraction:
    """Return `score` rounded half away from zero to 6 decimals, exactly."""
    return Fraction(round_micro(score), _MICRO)


def exact_multiplier(multiplier: Multiplier) -> Fraction:
    """Return a tier multiplier as an exact rational: 1.5 and "1.5" both mean 3/2; negatives are refused."""
    value: object = multiplier
    if isinstance(multiplier, str):
        try:
            value = Decimal(multiplier.strip())
        except InvalidOperation:
            raise ValueError(f"tier multiplier {multiplier!r} is not a number") from None
    elif isinstance(multiplier, float):
        if not math.isfinite(multiplier):
            raise ValueError(f"tier multiplier {multiplier!r} is not finite")
        # str(), not the binary value: a multiplier written 1.1 in the ruleset means 11/10.
        value = Decimal(str(multiplier))
    num, den = _exact_ratio(value, "tier multiplier")
    if num < 0:
        raise ValueError(f"tier multiplier {multiplier!r} is negative")
    return Fraction(num, den)


def rank_order(claims: Iterable[Claim]) -> list[Claim]:
    """Return the eligible claims that have a score in rank order.

    Rank order is the 6-decimal rounded score descending, then key ascending, so it agrees with the
    rounded values that tier thresholds see. Ineligible and unscored claims have no rank and are left out.
    """
    return [claim for claim, _ in _ranked(list(claims))]


def allocate(
    claims: Iterable[Claim], pool: int, cap: int | None = None, min_grant: int | None = None
) -> Allocation:
    """Share `pool` whole units among the claims exactly as spec §4 prescribes.

    Weights are multiplier * rounded score; caps are water-filled; while some uncapped share is below
    `min_grant` the lowest-ranked such entity is dropped and everything is recomputed; the rest is rounded
    by largest remainder, ties in rank order. `cap=None` means no cap, `min_grant=None` means 0. When every
    participant is capped, `pool - capped * cap` stays unallocated. The result does not depend on the order
    of `claims`. Raises ValueError for duplicate keys, a negative pool, a non-positive cap or min_grant,
    a min_grant above the cap (a capped grant would then break the min_grant guarantee), non-finite
    scores or negative multipliers.
    """
    items = list(claims)
    _check_amounts(pool, cap, min_grant)
    _check_keys(items)

    # Step 1. Participants (A) in rank order; None in `outcome` marks a participant whose grant comes later,
    # so the finished mapping lists keys in rank order, then the unranked by key.
    outcome: dict[str, Grant | None] = {}
    part_claims: list[Claim] = []
    part_micro: list[int] = []
    part_mult: list[Fraction] = []
    tiers: dict[tuple[type, object], Fraction] = {}  # a ruleset has a handful of multipliers: convert once
    for claim, micro in _ranked(items):
        if claim.multiplier is None:
            outcome[claim.key] = Grant(claim.key, 0, _ZERO, _ZERO, False, NOTE_BELOW_TIER)
            continue
        tag = (type(claim.multiplier), claim.multiplier)
        if tag not in tiers:
            tiers[tag] = exact_multiplier(claim.multiplier)
        mult = tiers[tag]
        if mult.numerator * micro <= 0:
            weight = mult * Fraction(micro, _MICRO)
            outcome[claim.key] = Grant(claim.key, 0, _ZERO, weight, False, NOTE_NO_WEIGHT)
            continue
        outcome[claim.key] = None
        part_claims.append(claim)
        part_micro.append(micro)
        part_mult.append(mult)
    for claim in sorted((c for c in items if c.key not in outcome), key=lambda c: c.key):
        note = NOTE_NO_SCORE if claim.eligible else NOTE_NOT_ELIGIBLE
        outcome[claim.key] = Grant(claim.key, 0, _ZERO, _ZERO, False, note)

    # Integer weights over one common denominator: every comparison below is then between integers,
    # which keeps 100k-entity pools fast without giving up exactness.
    lcm = math.lcm(*{m.denominator for m in part_mult}) if part_mult else 1
    weights = [
        micro * m.numerator * (lcm // m.denominator) for micro, m in zip(part_micro, part_mult, strict=True)
    ]
    scale = lcm * _MICRO  # true weight = weights[i] / scale

    # Steps 2 and 3.
    state = _WaterFill(weights, pool, cap)
    dropped: list[int] = []
    if min_grant is not None:
        # Literal step 3 drops the lowest-ranked uncapped entity with share < min_grant and recomputes.
        # Dropping an uncapped entity never lowers the water level (share per unit weight), so an entity
        # found at or above min_grant never falls below it later. Hence one bottom-up pass in rank order,
        # testing each entity against the current level, drops exactly the literal sequence, in order.
        for i in range(len(weights) - 1, -1, -1):
            if state.free_weight == 0:
                break  # everyone left is capped: no uncapped share can be below min_grant
            if state.rest * weights[i] < min_grant * state.free_weight:  # share_i < min_grant, uncapped
                state.remove(i)
                dropped.append(i)

    # Step 4. Capped members get the cap; the uncapped are rounded by largest remainder.
    dropped_set = set(dropped)
    free = [i for i in range(len(weights)) if i not in dropped_set and not state.capped[i]]
    units = [0] * len(weights)
    shares = [_ZERO] * len(weights)
    if free:
        remainders: list[tuple[int, int]] = []
        for i in free:
            numerator = state.rest * weights[i]
            units[i], rem = divmod(numerator, state.free_weight)
            shares[i] = Fraction(numerator, state.free_weight)
            remainders.append((-rem, i))
        # The shares of the uncapped sum to exactly `rest`, so what the floors leave is a whole number
        # smaller than the number of non-zero remainders: nobody gets two units and nobody passes the cap.
        left = state.rest - sum(units[i] for i in free)
        remainders.sort()  # largest remainder first, then rank order (i is the rank)
        for _, i in remainders[:left]:
            units[i] += 1

    grants: dict[str, Grant] = {}
    allocated = 0
    i = 0  # participants appear in `outcome` in rank order, the order of their indices
    for key, done in outcome.items():
        if done is not None:
            grants[key] = done
            continue
        weight = Fraction(weights[i], scale)
        if i in dropped_set:
            grants[key] = Grant(key, 0, _ZERO, weight, False, NOTE_BELOW_MIN)
        elif state.capped[i]:
            assert cap is not None  # only a cap can mark an entity capped
            grants[key] = Grant(key, cap, Fraction(cap), weight, True, NOTE_CAPPED)
            allocated += cap
        else:
            grants[key] = Grant(key, units[i], shares[i], weight, False, None)
            allocated += units[i]
        i += 1
    return Allocation(
        grants=grants,
        pool=pool,
        allocated=allocated,
        unallocated=pool - allocated,
        dropped=tuple(part_claims[i].key for i in dropped),
    )


class _WaterFill:
    """The water-filled caps of the current participants, kept up to date as entities are removed.

    Uncapped entity i's share is rest * weights[i] / free_weight, with rest = pool - |C| * cap.
    """

    def __init__(self, weights: list[int], pool: int, cap: int | None) -> None:
        self.weights = weights
        self.cap = cap
        self.rest = pool
        self.free_weight = sum(weights)
        self.capped = [False] * len(weights)
        self.removed = [False] * len(weights)
        # Shares are proportional to weight, so C is always a heaviest-first prefix of the participants.
        self.by_weight = sorted(range(len(weights)), key=lambda i: -weights[i])
        self.next = 0  # position in by_weight of the heaviest entity not yet capped
        self._fill()

    def remove(self, i: int) -> None:
        """Take uncapped entity i out of the pool and re-level."""
        self.removed[i] = True
        self.free_weight -= self.weights[i]
        self._fill()

    def _fill(self) -> None:
        # The spec caps every over-cap entity at once per round; capping the heaviest one at a time
        # reaches the same result. Capping an over-cap entity raises the level for the rest, so an
        # entity once capped stays capped, and the final state is the unique level λ where
        # Σ min(cap, λ * w) = pool with the capped set {λ * w > cap}, whichever order gets there.
        if self.cap is None:
            return
        cap = self.cap
        while self.next < len(self.by_weight):
            i = self.by_weight[self.next]
            if self.removed[i]:
                self.next += 1
                continue
            if self.rest * self.weights[i] <= cap * self.free_weight:  # share_i <= cap
                return
            self.capped[i] = True
            self.rest -= cap
            self.free_weight -= self.weights[i]
            self.next += 1


def _ranked(claims: list[Claim]) -> list[tuple[Claim, int]]:
    """The eligible claims with a score and their rounded score in millionths, in rank order."""
    scored = [
        (claim, round_micro(claim.score)) for claim in claims if claim.eligible and claim.score is not None
    ]
    scored.sort(key=lambda pair: (-pair[1], pair[0].key))
    return scored


def _exact_ratio(value: object, what: str) -> tuple[int, int]:
    """Numerator and positive denominator of an int, Fraction, float (via its repr) or Decimal."""
    if isinstance(value, bool):
        raise TypeError(f"{what} must be a number, not {value!r}")
    if isinstance(value, int):
        return value, 1
    if isinstance(value, Fraction):
        return value.numerator, value.denominator
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"{what} {value!r} is not finite")
        return Decimal(repr(value)).as_integer_ratio()
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise ValueError(f"{what} {value!r} is not finite")
        return value.as_integer_ratio()
    raise TypeError(f"{what} must be an int, float, Decimal or Fraction, not {type(value).__name__}")


def _check_amounts(pool: int, cap: int | None, min_grant: int | None) -> None:
    for name, value in (("pool", pool), ("cap", cap), ("min_grant", min_grant)):
        if value is None and name != "pool":
            continue
        if not isinstance(value, int) or isinstance(value, bool):
            raise TypeError(f"{name} must be a whole number of units, not {value!r}")
    if pool < 0:
        raise ValueError(f"pool must be ≥ 0, got {pool}")
    if cap is not None and cap <= 0:
        raise ValueError(f"cap must be positive or absent, got {cap}")
    if min_grant is not None and min_grant <= 0:
        raise ValueError(f"min_grant must be positive or absent, got {min_grant}")
    if cap is not None and min_grant is not None and min_grant > cap:
        raise ValueError(f"min_grant {min_grant} exceeds cap {cap}: a capped grant would be below min_grant")


def _check_keys(claims: list[Claim]) -> None:
    seen: set[str] = set()
    for claim in claims:
        if claim.key in seen:
            raise ValueError(f"duplicate key {claim.key!r}: each entity may claim once")
        seen.add(claim.key)
