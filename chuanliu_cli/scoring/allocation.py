"""The reward pool: tier weights, capped water-filling, min_grant drops and largest remainder, exactly.

One implementation, two faces: `rank_tier_allocate` takes columns (a million entities in about a second)
and `allocate` takes `Claim` objects; both rank with `_rank_order` and share the pool with `_share_pool`,
which work on integer numpy arrays (int64 where the bounds provably fit, Python ints otherwise).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from fractions import Fraction
from typing import TYPE_CHECKING, Any, Final, TypeAlias

if TYPE_CHECKING:
    import numpy as np
    import polars as pl

    from chuanliu_cli.rules.model import Reward, Tier

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
# Integer arrays are int64 when every value and intermediate product provably stays within this bound.
_INT64_MAX: Final = 2**63 - 1


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


@dataclass(frozen=True)
class RankedAllocation:
    """Tiers, ranks and grants of every entity as polars Series in input order, and the pool's totals.

    `tier` (Utf8), `rank` (Int64, 1 = first), `grant` (Int64) and `grant_note` (Utf8) are named as the
    scored frame's columns. Without a reward `grant` and `grant_note` are all NULL and `pool`, `allocated`
    and `unallocated` are None. `dropped` lists the keys removed below min_grant, in removal order.
    """

    tier: pl.Series
    rank: pl.Series
    grant: pl.Series
    grant_note: pl.Series
    pool: int | None
    allocated: int | None
    unallocated: int | None
    dropped: tuple[str, ...]


def round_micro(score: Score) -> int:
    """Return `score` rounded half away from zero to 6 decimals, as an integer number of millionths.

    A float is read through its shortest repr, so 0.1 means 1/10 rather than the nearest binary fraction.
    """
    num, den = _exact_ratio(score, "score")
    magnitude = (2 * abs(num) * _MICRO + den) // (2 * den)  # floor(|x| * 10**6 + 1/2)
    return -magnitude if num < 0 else magnitude


def round_micro_array(values: Any) -> tuple[np.ndarray, np.ndarray]:
    """Return `round_micro` of every float in `values` and the mask of missing (NaN) values.

    The first array is int64 millionths (0 where missing), or Python ints (dtype object) when some result
    does not fit in int64. Exactly round_micro for every finite float: the float product x * 10**6 is
    within 2**-52 relative of the exact decimal repr(x) * 10**6, so wherever its fractional part is farther
    than 2**-49 relative from .5 both round alike; the values closer to a .5 boundary, and those whose
    product passes 2**52, go through round_micro one by one. Raises ValueError for an infinite value.
    """
    import numpy as np

    x = np.asarray(values, dtype=np.float64)
    missing = np.isnan(x)
    infinite = np.isinf(x)
    if infinite.any():
        raise ValueError(f"score {float(x[infinite][0])!r} is not finite")
    with np.errstate(over="ignore", invalid="ignore"):
        y = np.abs(np.where(missing, 0.0, x)) * 1e6
    fast = y < 2.0**52
    y = np.where(fast, y, 0.0)
    whole = np.floor(y)
    frac = y - whole  # exact below 2**52
    fast &= np.abs(frac - 0.5) > y * 2.0**-49 + 2.0**-1000
    magnitude = whole.astype(np.int64) + (frac > 0.5)
    micro: np.ndarray = np.where(np.signbit(x), -magnitude, magnitude)
    slow = np.flatnonzero(~fast & ~missing)
    if slow.size:
        exact = [round_micro(v) for v in x[slow].tolist()]
        if any(abs(v) > _INT64_MAX for v in exact):
            micro = micro.astype(object)
        micro[slow] = exact
    micro[missing] = 0
    return micro, missing


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
    items = list(claims)
    scored, micro = _scored(items)
    return [scored[i] for i in _rank_order(micro, _key_series(scored)).tolist()]


# The grant notes of rank_tier_allocate, by code.
_NOTES: Final[list[str | None]] = [
    NOTE_NOT_ELIGIBLE,
    NOTE_BELOW_TIER,
    NOTE_NO_WEIGHT,
    NOTE_BELOW_MIN,
    NOTE_CAPPED,
    None,
]


def rank_tier_allocate(
    keys: pl.Series | Sequence[str],
    values: pl.Series | np.ndarray | Sequence[float | None],
    eligible: pl.Series | np.ndarray | Sequence[bool | None],
    tiers: Sequence[Tier],
    reward: Reward | None,
) -> RankedAllocation:
    """Tier, rank and allocate a whole scorecard at once (SPEC §4), as columns in input order.

    `values` are the rank_by values: a polars Series or a list (NULL/None missing; NaN or ±inf on an
    eligible entity is refused, as round_micro refuses it) or a float64 numpy array (NaN missing).
    `eligible` NULL counts as not eligible. `tiers` are highest first: an eligible entity with a value gets
    the first tier whose min_score ≤ its value rounded to 6 decimals. Entities that are eligible and have a
    value are ranked (rounded value descending, then key ascending). With a reward the pool is allocated
    as `allocate` does; eligible entities without a value get the note "not eligible", like ineligible
    ones. Raises ValueError for missing or duplicate keys, non-finite values of eligible entities, or the
    reward's invalid amounts.
    """
    import numpy as np
    import polars as pl

    key_s = keys if isinstance(keys, pl.Series) else pl.Series("key", list(keys), dtype=pl.Utf8)
    n = key_s.len()
    _check_keys_unique(key_s)
    elig = _bool_array(eligible, n)
    val, not_finite = _float_array(values, n)
    bad = np.flatnonzero(elig & not_finite)
    if bad.size:
        i = int(bad[0])
        raise ValueError(f"{key_s[i]!r}: rank_by value {float(val[i])!r} is not finite")
    if reward is not None:
        _check_amounts(reward.pool, reward.cap, reward.min_grant)

    ranked = np.flatnonzero(elig & ~np.isnan(val))
    micro, _ = round_micro_array(val[ranked])
    tier_of = np.full(ranked.size, -1, dtype=np.int64)
    for t in range(len(tiers) - 1, -1, -1):  # the first tier in `tiers` that the value reaches wins
        tier_of[micro >= round_micro(tiers[t].min_score)] = t
    order = _rank_order(micro, key_s.gather(ranked))
    pos = ranked[order]  # input positions in rank order
    micro, tier_of = micro[order], tier_of[order]

    tier_code = np.full(n, len(tiers), dtype=np.int64)  # len(tiers) means no tier
    tier_code[pos] = np.where(tier_of >= 0, tier_of, len(tiers))
    tier_col = pl.Series("tier", [t.name for t in tiers] + [None], dtype=pl.Utf8).gather(tier_code)
    rank = np.zeros(n, dtype=np.int64)
    rank[pos] = np.arange(1, pos.size + 1)
    is_ranked = np.zeros(n, dtype=bool)
    is_ranked[pos] = True
    rank_col = _masked("rank", rank, is_ranked)
    if reward is None:
        return RankedAllocation(
            tier=tier_col,
            rank=rank_col,
            # (a list of n Nones took 0.2 s at 2.7M entities)
            grant=pl.repeat(None, n, dtype=pl.Int64, eager=True).alias("grant"),
            grant_note=pl.repeat(None, n, dtype=pl.Utf8, eager=True).alias("grant_note"),
            pool=None,
            allocated=None,
            unallocated=None,
            dropped=(),
        )

    # Only the tiers somebody reaches are read: allocate() never sees the multiplier of an empty tier.
    used = sorted(set(tier_of[tier_of >= 0].tolist()))
    mults = {t: exact_multiplier(tiers[t].multiplier) for t in used}
    tiered = np.flatnonzero(tier_of >= 0)
    weight, _scale = _integer_weights(micro[tiered], tier_of[tiered], mults)
    positive = weight > 0
    members = tiered[positive]  # A in rank order, as indices into `pos`
    shares = _share_pool(weight[positive], reward.pool, reward.cap, reward.min_grant)

    # grant_note codes, in the order of _NOTES
    note = np.full(n, _NOTES.index(NOTE_NOT_ELIGIBLE), dtype=np.int64)
    note[pos] = _NOTES.index(NOTE_BELOW_TIER)
    note[pos[tiered]] = _NOTES.index(NOTE_NO_WEIGHT)
    member_note = np.full(members.size, _NOTES.index(None), dtype=np.int64)
    member_note[shares.capped] = _NOTES.index(NOTE_CAPPED)
    member_note[shares.removed] = _NOTES.index(NOTE_BELOW_MIN)
    note[pos[members]] = member_note
    grant = np.zeros(n, dtype=shares.units.dtype)
    grant[pos[members]] = shares.units
    allocated = int(shares.units.sum())
    dropped = key_s.gather(pos[members[shares.dropped]]).to_list() if shares.dropped.size else []
    return RankedAllocation(
        tier=tier_col,
        rank=rank_col,
        grant=pl.Series("grant", grant.tolist() if grant.dtype == object else grant, dtype=pl.Int64),
        grant_note=pl.Series("grant_note", _NOTES, dtype=pl.Utf8).gather(note),
        pool=reward.pool,
        allocated=allocated,
        unallocated=reward.pool - allocated,
        dropped=tuple(dropped),
    )


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
    import numpy as np

    items = list(claims)
    _check_amounts(pool, cap, min_grant)
    _check_keys(items)

    # Step 1. Rank, then weigh: A (the participants) in rank order.
    scored, micro_all = _scored(items)
    order = _rank_order(micro_all, _key_series(scored))
    ranked = [scored[i] for i in order.tolist()]
    micro = micro_all[order]
    tag_of: dict[tuple[type, object], int] = {}  # a ruleset has a handful of multipliers: convert once
    mults: dict[int, Fraction] = {}
    mult_of = np.full(len(ranked), -1, dtype=np.int64)
    for r, claim in enumerate(ranked):
        if claim.multiplier is None:
            continue
        tag = (type(claim.multiplier), claim.multiplier)
        if tag not in tag_of:
            tag_of[tag] = len(tag_of)
            mults[tag_of[tag]] = exact_multiplier(claim.multiplier)
        mult_of[r] = tag_of[tag]
    tiered = np.flatnonzero(mult_of >= 0)
    weight, scale = _integer_weights(micro[tiered], mult_of[tiered], mults)
    positive = weight > 0
    members = tiered[positive]
    shares = _share_pool(weight[positive], pool, cap, min_grant)

    # Steps 2 to 4 are done; list the grants in rank order, then the unranked by key.
    weight_of: list[int | None] = [None] * len(ranked)  # None: below the lowest tier
    for r, w in zip(tiered.tolist(), weight.tolist(), strict=True):
        weight_of[r] = w
    member_of = [-1] * len(ranked)
    member_rank = members.tolist()
    for m, r in enumerate(member_rank):
        member_of[r] = m
    units = shares.units.tolist()
    numerators = shares.numerators.tolist()
    capped, removed = shares.capped.tolist(), shares.removed.tolist()
    grants: dict[str, Grant] = {}
    for r, claim in enumerate(ranked):
        key, w, m = claim.key, weight_of[r], member_of[r]
        if w is None:
            grants[key] = Grant(key, 0, _ZERO, _ZERO, False, NOTE_BELOW_TIER)
        elif m < 0:
            grants[key] = Grant(key, 0, _ZERO, Fraction(w, scale), False, NOTE_NO_WEIGHT)
        elif removed[m]:
            grants[key] = Grant(key, 0, _ZERO, Fraction(w, scale), False, NOTE_BELOW_MIN)
        elif capped[m]:
            grants[key] = Grant(key, units[m], Fraction(units[m]), Fraction(w, scale), True, NOTE_CAPPED)
        else:
            share = Fraction(numerators[m], shares.free_weight)
            grants[key] = Grant(key, units[m], share, Fraction(w, scale), False, None)
    ranked_keys = set(grants)
    for claim in sorted((c for c in items if c.key not in ranked_keys), key=lambda c: c.key):
        note = NOTE_NO_SCORE if claim.eligible else NOTE_NOT_ELIGIBLE
        grants[claim.key] = Grant(claim.key, 0, _ZERO, _ZERO, False, note)
    allocated = sum(units)
    return Allocation(
        grants=grants,
        pool=pool,
        allocated=allocated,
        unallocated=pool - allocated,
        dropped=tuple(ranked[member_rank[m]].key for m in shares.dropped.tolist()),
    )


# --- the shared core -----------------------------------------------------------------------------------


def _rank_order(micro: np.ndarray, keys: pl.Series) -> np.ndarray:
    """The permutation putting entities in rank order: rounded score descending, then key ascending.

    Keys are compared as Python compares str (by code point), which is polars' byte order of UTF-8.
    Only entities tied on the rounded score need their keys compared, so only those are sorted by key:
    ordering a million strings costs more than everything else here.
    """
    import numpy as np

    order = np.argsort(-micro, kind="stable")
    tied = np.zeros(order.size, dtype=bool)
    if order.size > 1:
        in_order = micro[order]
        same = in_order[1:] == in_order[:-1]
        tied[1:] |= same
        tied[:-1] |= same
    if tied.any():
        at = np.flatnonzero(tied)
        group = _tie_groups(at, micro[order[at]])
        members = order[at]
        key_rank = np.empty(at.size, dtype=np.int64)
        key_rank[keys.gather(members).arg_sort().to_numpy()] = np.arange(at.size)
        order[at] = members[np.lexsort((key_rank, group))]
    return order


def _tie_groups(at: np.ndarray, micro: np.ndarray) -> np.ndarray:
    """Number the runs of equal rounded scores among the tied positions `at` (ascending) 0, 1, 2, …"""
    import numpy as np

    start = np.ones(at.size, dtype=bool)
    start[1:] = (at[1:] != at[:-1] + 1) | (micro[1:] != micro[:-1])
    return np.cumsum(start) - 1


def _check_keys_unique(keys: pl.Series) -> None:
    """Raise ValueError for a missing or duplicate key."""
    if keys.null_count():
        raise ValueError("an entity key is missing: every entity needs a key")
    n = keys.len()
    if keys.is_sorted():  # the usual case (frames come sorted by key): neighbours tell
        same = keys.slice(1) == keys.slice(0, max(n - 1, 0))
        duplicated = bool(same.any())
    else:
        duplicated = keys.n_unique() != n
    if duplicated:
        first = keys.filter(keys.is_duplicated()).min()
        raise ValueError(f"duplicate key {first!r}: each entity may claim once")


def _integer_weights(
    micro: np.ndarray, mult_of: np.ndarray, mults: dict[int, Fraction]
) -> tuple[np.ndarray, int]:
    """Weights multiplier * micro / 10**6 as integers over one common denominator, and that denominator.

    Every comparison of the allocation is then between integers. The array is int64 when the sum of the
    absolute weights fits, Python ints otherwise.
    """
    import numpy as np

    lcm = math.lcm(*(m.denominator for m in mults.values())) if mults else 1
    factor = {t: m.numerator * (lcm // m.denominator) for t, m in mults.items()}
    top_micro = int(np.abs(micro).max()) if micro.size else 0
    bound = max(micro.size, 1) * max(top_micro, 1) * max(factor.values(), default=0)
    table = np.zeros(max(factor, default=-1) + 1, dtype=object)
    for t, f in factor.items():
        table[t] = f
    if bound <= _INT64_MAX:
        weight = micro.astype(np.int64) * table.astype(np.int64)[mult_of]
    else:
        weight = micro.astype(object) * table[mult_of]
    return weight, lcm * _MICRO


@dataclass(frozen=True)
class _Shares:
    """Steps 2 to 4 over participants in rank order (arrays indexed by rank among participants).

    `numerators[i] / free_weight` is uncapped entity i's exact share (0 for the others).
    """

    units: np.ndarray
    capped: np.ndarray
    removed: np.ndarray
    dropped: np.ndarray  # indices, in removal order
    numerators: np.ndarray
    free_weight: int


def _exact(array: np.ndarray, bound: int) -> np.ndarray:
    """`array` itself (int64) if `bound` bounds every value computed from it, else as Python ints."""
    return array if bound <= _INT64_MAX and array.dtype != object else array.astype(object)


def _share_pool(
    weight: np.ndarray,
    pool: int,
    cap: int | None,
    min_grant: int | None,
    scalar_run: int = 16,
    window: int = 256,
) -> _Shares:
    """Water-fill the caps, drop below min_grant, round by largest remainder: SPEC §4 steps 2 to 4.

    `weight` holds the positive integer weights of A in rank order. Uncapped entity i's share is
    rest * weight[i] / free_weight, with rest = pool - |C| * cap and free_weight the weight of A ∖ C.
    `scalar_run` and `window` tune the drop pass (see _Level.drop_below), never its result.
    """
    import numpy as np

    m = weight.size
    total = int(weight.sum()) if m else 0
    top = int(weight.max()) if m else 0
    capped = np.zeros(m, dtype=bool)
    removed = np.zeros(m, dtype=bool)
    rest, free_weight = pool, total

    # Step 2. Shares are proportional to weight, so C is a heaviest-first prefix: the first k heaviest
    # are capped while the (k+1)-th's share with k capped exceeds the cap. The spec caps every over-cap
    # entity at once per round; capping the heaviest one at a time reaches the same, unique level λ where
    # Σ min(cap, λ * w) = pool with C = {λ * w > cap}, whichever order gets there.
    by_weight = np.argsort(-weight, kind="stable")
    nxt = 0
    if cap is not None and m:
        # With k capped the rest is pool - k * cap, so at most pool // cap + 1 can ever be tested.
        tested = min(m, pool // cap + 1)
        heavy = weight[by_weight[:tested]]
        before = np.cumsum(heavy) - heavy  # weight of the k heaviest
        bound = pool * top + cap * total
        left_of_k = pool - _exact(np.arange(tested), bound) * cap
        over = left_of_k * _exact(heavy, bound) > cap * (total - _exact(before, bound))
        nxt = tested if over.all() else int(np.argmin(over))
        capped[by_weight[:nxt]] = True
        rest -= nxt * cap
        free_weight -= int(before[nxt]) if nxt < tested else int(before[-1] + heavy[-1])

    # Step 3. Literally: drop the lowest-ranked uncapped entity with share < min_grant and start over.
    # Dropping an uncapped entity never lowers the level (share per unit weight), so an entity found at or
    # above min_grant never falls below it later. Hence one bottom-up pass in rank order, testing each
    # entity against the current level, drops exactly the literal sequence, in order; and only entities
    # below min_grant at the first level can ever be dropped, so the pass visits just those.
    level = _Level(weight, by_weight, capped, removed, rest, free_weight, nxt, cap)
    if min_grant is not None and free_weight > 0:
        level.drop_below(min_grant, top, scalar_run, window)
    rest, free_weight = level.rest, level.free_weight
    dropped = level.drop_order()

    # Step 4. Capped members get the cap; the uncapped are rounded by largest remainder.
    unit_bound = max(pool, cap or 0)
    units = np.zeros(m, dtype=np.int64 if unit_bound <= _INT64_MAX else object)
    numerators = np.zeros(m, dtype=np.int64 if rest * top <= _INT64_MAX else object)
    if cap is not None:
        units[capped] = cap
    free = np.flatnonzero(~capped & ~removed)
    if free.size:
        numerator = _exact(weight[free], rest * top) * rest
        floor, remainder = numerator // free_weight, numerator % free_weight
        # The shares of the uncapped sum to exactly `rest`, so what the floors leave is a whole number
        # smaller than the number of non-zero remainders: nobody gets two units and nobody passes the cap.
        left = rest - int(floor.sum())
        if left:
            # largest remainder first, then rank order: `free` is in rank order and the sort is stable
            floor[np.argsort(-remainder, kind="stable")[:left]] += 1
        units[free] = floor
        numerators[free] = numerator
    return _Shares(units, capped, removed, dropped, numerators, free_weight)


class _Level:
    """The water level during the min_grant pass: capped and removed entities, rest and free weight.

    `by_weight[nxt]` is the heaviest entity not yet capped (removed ones are skipped when reached).
    """

    def __init__(
        self,
        weight: np.ndarray,
        by_weight: np.ndarray,
        capped: np.ndarray,
        removed: np.ndarray,
        rest: int,
        free_weight: int,
        nxt: int,
        cap: int | None,
    ) -> None:
        self.weight, self.by_weight, self.capped, self.removed = weight, by_weight, capped, removed
        self.rest, self.free_weight, self.nxt, self.cap = rest, free_weight, nxt, cap
        self._dropped: list[np.ndarray] = []

    def drop_order(self) -> np.ndarray:
        """The removed entities, in removal order."""
        import numpy as np

        return np.concatenate(self._dropped) if self._dropped else np.zeros(0, dtype=np.int64)

    def drop_below(self, min_grant: int, top: int, scalar_run: int, window: int) -> None:
        """Visit the entities below min_grant at the current level bottom-up and drop those still below.

        The visits are one at a time in Python where drops and skips alternate, and in numpy batches
        (checked with prefix sums, exactly) along runs where each visited entity is dropped and nobody
        reaches the cap; a batch ends at the first entity for which that does not hold, which is then
        visited alone. `scalar_run` visits follow each batch that stopped early, doubling while batches
        keep stopping early; batch windows double while they run to their end.
        """
        import numpy as np

        bound = max(self.rest * top, min_grant * self.free_weight)
        below = _exact(self.weight, bound) * self.rest < min_grant * self.free_weight
        visits = np.flatnonzero(below & ~self.capped)[::-1]  # lowest-ranked first
        visit_weight = self.weight[visits]
        p, run = 0, scalar_run
        while p < visits.size and self.free_weight > 0:
            stop = min(p + run, visits.size)
            for i, w in zip(visits[p:stop].tolist(), visit_weight[p:stop].tolist(), strict=True):
                if self.free_weight == 0:
                    break  # everyone left is capped: no uncapped share can be below min_grant
                self._visit(i, w, min_grant)
            p, span, start = stop, window, stop
            while p < visits.size and self.free_weight > 0:
                size = min(span, visits.size - p)
                done = self._batch(visits[p : p + size], visit_weight[p : p + size], min_grant, top)
                p += done
                if done < size:
                    break
                span *= 2
            run = scalar_run if p - start >= window else min(2 * run, 4096)

    def _visit(self, i: int, w: int, min_grant: int) -> None:
        import numpy as np

        if self.rest * w >= min_grant * self.free_weight:
            return  # capped meanwhile, or lifted by the drops below it
        self.removed[i] = True
        self._dropped.append(np.array([i], dtype=np.int64))
        self.free_weight -= w
        self._relevel()

    def _relevel(self) -> None:
        """Cap the heaviest uncapped while its share exceeds the cap."""
        if self.cap is None:
            return
        while (j := self._heaviest()) is not None:
            wj = int(self.weight[j])
            if self.rest * wj <= self.cap * self.free_weight:
                return
            self.capped[j] = True
            self.rest -= self.cap
            self.free_weight -= wj
            self.nxt += 1

    def _heaviest(self) -> int | None:
        """The heaviest entity neither capped nor removed, or None."""
        while self.nxt < self.by_weight.size:
            j = int(self.by_weight[self.nxt])
            if not self.removed[j]:
                return j
            self.nxt += 1
        return None

    def _batch(self, index: np.ndarray, w: np.ndarray, min_grant: int, top: int) -> int:
        """Visit a prefix of `index` at once; return its length.

        Entities at or above min_grant at the current level are skipped (the level only rises); the others
        are dropped as long as each is below min_grant when its turn comes, with the free weight of the
        drops before it, and nobody reaches the cap after it. The first entity for which that fails ends
        the prefix, unvisited.
        """
        import numpy as np

        free = self.free_weight
        bound = max(self.rest * top, min_grant * free, (self.cap or 0) * free)
        w = _exact(w, bound)
        below = np.flatnonzero(w * self.rest < min_grant * free)
        wb = w[below]
        at_visit = free - (np.cumsum(wb) - wb)  # the free weight when entity k is visited
        ok = wb * self.rest < min_grant * at_visit
        if self.cap is not None:
            heaviest = self._heaviest()
            if heaviest is not None:
                # after each drop the heaviest uncapped stays at or below the cap (should the batch drop
                # that one, its weight still bounds the next heaviest's)
                ok &= self.rest * int(self.weight[heaviest]) <= self.cap * (at_visit - wb)
        done = int(np.argmin(ok)) if not ok.all() else ok.size
        if done:
            drops = index[below[:done]]
            self.removed[drops] = True
            self._dropped.append(drops)
            self.free_weight -= int(wb[:done].sum())
        return index.size if done == ok.size else int(below[done])


def _scored(claims: list[Claim]) -> tuple[list[Claim], np.ndarray]:
    """The eligible claims with a score, and their rounded scores in millionths."""
    import numpy as np

    scored = [claim for claim in claims if claim.eligible and claim.score is not None]
    if all(type(claim.score) is float for claim in scored):  # the usual case, vectorized
        micro, missing = round_micro_array(np.array([c.score for c in scored], dtype=np.float64))
        if missing.any():  # a NaN score is no missing score here: None is
            raise ValueError("score nan is not finite")
        return scored, micro
    exact = [round_micro(claim.score) for claim in scored]  # type: ignore[arg-type]
    big = any(abs(v) > _INT64_MAX for v in exact)
    return scored, np.array(exact, dtype=object if big else np.int64)


def _key_series(claims: list[Claim]) -> pl.Series:
    import polars as pl

    return pl.Series("key", [c.key for c in claims], dtype=pl.Utf8)


def _bool_array(values: Any, n: int) -> np.ndarray:
    """A column of booleans as a numpy array, NULL as False."""
    import numpy as np
    import polars as pl

    if isinstance(values, np.ndarray) and values.dtype == bool:
        out = values
    else:
        series = values if isinstance(values, pl.Series) else pl.Series(list(values), dtype=pl.Boolean)
        out = series.cast(pl.Boolean).fill_null(False).to_numpy()
    if out.shape != (n,):
        raise ValueError(f"eligible has {out.size} values for {n} keys")
    return out


def _float_array(values: Any, n: int) -> tuple[np.ndarray, np.ndarray]:
    """A column of numbers as float64 with NaN for missing, and the mask of NaN or infinite inputs.

    A NaN in a numpy array means missing; in a polars Series or a list, only NULL (None) does.
    """
    import numpy as np
    import polars as pl

    if isinstance(values, np.ndarray):
        out = values.astype(np.float64)
        not_finite = np.isinf(out)
    else:
        series = values if isinstance(values, pl.Series) else pl.Series(list(values), dtype=pl.Float64)
        if series.dtype.is_integer():
            too_big = series.abs().max()
            if too_big is not None and too_big > 2**53:  # type: ignore[operator]
                raise ValueError(f"rank_by value {too_big!r} is too large to rank exactly as a float")
        elif not series.dtype.is_float() and series.dtype != pl.Null:
            raise TypeError(f"rank_by values must be numbers, not {series.dtype}")
        series = series.cast(pl.Float64)
        not_finite = (~series.is_finite()).fill_null(False).to_numpy()
        out = series.to_numpy().astype(np.float64)  # NULL becomes NaN
    if out.shape != (n,):
        raise ValueError(f"rank_by has {out.size} values for {n} keys")
    return out, not_finite


def _masked(name: str, values: np.ndarray, valid: np.ndarray) -> pl.Series:
    """An Int64 Series of `values`, NULL where not `valid`."""
    import polars as pl

    series = pl.Series(name, values, dtype=pl.Int64)
    if valid.all():
        return series
    return pl.select(pl.when(pl.Series(valid)).then(series).alias(name)).to_series()


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
