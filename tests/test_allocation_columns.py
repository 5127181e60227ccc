"""Tiers, ranks and grants as columns (rank_tier_allocate, round_micro_array): against a literal SPEC §4."""

from __future__ import annotations

import decimal
import math
import random
import struct
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from fractions import Fraction
from types import SimpleNamespace
from typing import Any

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chuanliu_cli.rules.model import Loc, Reward, Tier
from chuanliu_cli.scoring.allocation import (
    NOTE_BELOW_MIN,
    NOTE_BELOW_TIER,
    NOTE_CAPPED,
    NOTE_NO_WEIGHT,
    NOTE_NOT_ELIGIBLE,
    Allocation,
    Claim,
    RankedAllocation,
    _share_pool,
    allocate,
    rank_tier_allocate,
    round_micro,
    round_micro_array,
)

L = Loc("t.yaml", 1, 1)

# --- the literal SPEC §4, slow and naive on purpose ------------------------------------------------------


def r6(value: float) -> Fraction:
    """The value's shortest repr rounded half away from zero to 6 decimals."""
    with decimal.localcontext() as ctx:
        ctx.prec = 400  # exact for every float: quantize needs room for all integer digits
        return Fraction(Decimal(repr(value)).quantize(Decimal("0.000001"), rounding=ROUND_HALF_UP))


@dataclass(frozen=True)
class Expected:
    tier: list[str | None]
    rank: list[int | None]
    grant: list[int | None]
    note: list[str | None]
    dropped: tuple[str, ...]
    allocated: int | None


def literal(
    keys: list[str],
    values: list[float | None],
    eligible: list[bool | None],
    tiers: list[Tier],
    reward: Reward | None,
) -> Expected:
    n = len(keys)
    ranked = [i for i in range(n) if eligible[i] and values[i] is not None]
    tier: list[str | None] = [None] * n
    for i in ranked:
        tier[i] = next((t.name for t in tiers if r6(values[i]) >= r6(t.min_score)), None)  # type: ignore[arg-type]
    ranked.sort(key=lambda i: (-r6(values[i]), keys[i]))  # type: ignore[arg-type]
    rank: list[int | None] = [None] * n
    for r, i in enumerate(ranked, start=1):
        rank[i] = r
    if reward is None:
        return Expected(tier, rank, [None] * n, [None] * n, (), None)
    pool, cap, min_grant = reward.pool, reward.cap, reward.min_grant
    mult = {t.name: Fraction(Decimal(str(t.multiplier))) for t in tiers}
    weight = {i: mult[tier[i]] * r6(values[i]) for i in ranked if tier[i] is not None}  # type: ignore[arg-type,index]
    active = [i for i in ranked if weight.get(i, 0) > 0]
    dropped: list[int] = []
    while True:
        capped: set[int] = set()
        while True:  # step 2: every over-cap entity joins C at once, per round
            free = [i for i in active if i not in capped]
            shares: dict[int, Fraction] = {}
            if not free:
                break
            rest = pool - len(capped) * (cap or 0)
            total = sum(weight[i] for i in free)
            shares = {i: rest * weight[i] / total for i in free}
            over = {i for i in free if cap is not None and shares[i] > cap}
            if not over:
                break
            capped |= over
        below = [i for i in shares if shares[i] < (min_grant or 0)]
        if not below:
            break
        lowest = max(below, key=lambda i: rank[i])  # type: ignore[arg-type,return-value]
        active.remove(lowest)
        dropped.append(lowest)
    grant: list[int | None] = [0] * n
    for i in capped:
        grant[i] = cap
    for i, share in shares.items():
        grant[i] = math.floor(share)
    left = pool - sum(g for g in grant if g is not None) if shares else 0
    for i in sorted(shares, key=lambda i: (-(shares[i] - math.floor(shares[i])), rank[i]))[:left]:
        grant[i] = grant[i] + 1  # type: ignore[operator]
    note: list[str | None] = [NOTE_NOT_ELIGIBLE] * n
    for i in ranked:
        if tier[i] is None:
            note[i] = NOTE_BELOW_TIER
        elif weight[i] <= 0:
            note[i] = NOTE_NO_WEIGHT
        elif i in dropped:
            note[i] = NOTE_BELOW_MIN
        elif i in capped:
            note[i] = NOTE_CAPPED
        else:
            note[i] = None
    return Expected(tier, rank, grant, note, tuple(keys[i] for i in dropped), sum(grant))  # type: ignore[arg-type]


def columns(result: RankedAllocation) -> Expected:
    return Expected(
        result.tier.to_list(),
        result.rank.to_list(),
        result.grant.to_list(),
        result.grant_note.to_list(),
        result.dropped,
        result.allocated,
    )


# --- generated problems ----------------------------------------------------------------------------------

values_st = st.one_of(
    st.none(),
    st.floats(-5, 100, allow_nan=False),
    st.integers(-2, 60).map(float),
    # rounding ties at the 7th decimal, equal after rounding, nothing left after rounding
    st.sampled_from([0.0000005, 1.0000005, 1.000001, 2.5000005, 2.500001, 0.0000004, -1.5, 0.0, 5.0]),
)
multiplier_st = st.sampled_from([1, 1.5, 2, 3, "1.1", "2.5", 0.3, 0])
min_score_st = st.sampled_from([-1.0, 0.0, 1.0, 1.0000005, 2.5, 5.0, 20.0, 50.0])


@st.composite
def problems(draw: st.DrawFn, max_size: int = 12) -> dict[str, Any]:
    size = draw(st.integers(0, max_size))
    keys = draw(st.lists(st.text("abZé", min_size=1, max_size=3), min_size=size, max_size=size, unique=True))
    values = [draw(values_st) for _ in keys]
    eligible = [draw(st.sampled_from([True, True, True, False, None])) for _ in keys]
    mins = sorted(draw(st.sets(min_score_st, min_size=0, max_size=3)), reverse=True)
    tiers = [Tier(f"T{i}", m, draw(multiplier_st), L) for i, m in enumerate(mins)]  # type: ignore[arg-type]
    reward = None
    if draw(st.integers(0, 4)):
        cap = draw(st.none() | st.integers(1, 120))
        pool = draw(st.integers(0, 10**9) if draw(st.integers(0, 5)) == 0 else st.integers(0, 600))
        min_grant = draw(st.none() | st.integers(1, cap if cap is not None else 200))
        reward = Reward(pool, cap=cap, min_grant=min_grant)
    return {"keys": keys, "values": values, "eligible": eligible, "tiers": tiers, "reward": reward}


@settings(max_examples=500, deadline=None)
@given(problems())
def test_matches_literal_spec(problem: dict[str, Any]) -> None:
    assert columns(rank_tier_allocate(**problem)) == literal(**problem)


def claims_rank_and_allocate(sc: Any, frame: pl.DataFrame) -> tuple[pl.DataFrame, Allocation | None]:
    """The pipeline's ranking before issue #21, kept as a reference: Python sort on round_micro, tier_for
    per value, one Claim per entity through allocate()."""
    keys = frame[sc.key].to_list()
    values = frame[sc.rank_by].to_list()
    eligible = frame["eligible"].to_list()
    tiers = [_tier_for(sc, v) if e else None for v, e in zip(values, eligible, strict=True)]
    order = sorted(
        (i for i, e in enumerate(eligible) if e and values[i] is not None),
        key=lambda i: (-round_micro(values[i]), keys[i]),
    )
    ranks: list[int | None] = [None] * len(keys)
    for r, i in enumerate(order, start=1):
        ranks[i] = r
    multipliers = {t.name: t.multiplier for t in sc.tiers}
    grants: list[int | None] = [None] * len(keys)
    notes: list[str | None] = [None] * len(keys)
    allocation = None
    if sc.reward is not None:
        claims = [
            Claim(
                key=keys[i],
                score=values[i],
                multiplier=multipliers.get(tiers[i]) if tiers[i] is not None else None,  # type: ignore[arg-type]
                eligible=bool(eligible[i]) and values[i] is not None,
            )
            for i in range(len(keys))
        ]
        allocation = allocate(claims, sc.reward.pool, sc.reward.cap, sc.reward.min_grant)
        for i, k in enumerate(keys):
            g = allocation.grants[k]
            grants[i] = g.grant
            notes[i] = g.note
    frame = frame.with_columns(
        pl.Series("tier", tiers, dtype=pl.Utf8),
        pl.Series("rank", ranks, dtype=pl.Int64),
        pl.Series("grant", grants, dtype=pl.Int64),
        pl.Series("grant_note", notes, dtype=pl.Utf8),
    )
    return frame, allocation


def _tier_for(sc: Any, value: float | None) -> str | None:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    micro = round_micro(value)
    for tier in sc.tiers:
        if micro >= round_micro(tier.min_score):
            return tier.name
    return None


@settings(max_examples=200, deadline=None)
@given(problems())
def test_matches_the_claims_path(problem: dict[str, Any]) -> None:
    frame = pl.DataFrame(
        {"k": problem["keys"], "v": problem["values"], "eligible": problem["eligible"]},
        schema={"k": pl.Utf8, "v": pl.Float64, "eligible": pl.Boolean},
    )
    sc = SimpleNamespace(key="k", rank_by="v", tiers=problem["tiers"], reward=problem["reward"])
    old, allocation = claims_rank_and_allocate(sc, frame)
    new = rank_tier_allocate(frame["k"], frame["v"], frame["eligible"], problem["tiers"], problem["reward"])
    for name in ("tier", "rank", "grant", "grant_note"):
        assert getattr(new, name).to_list() == old[name].to_list(), name
        assert getattr(new, name).dtype == old[name].dtype
    if allocation is None:
        assert (new.pool, new.allocated, new.unallocated, new.dropped) == (None, None, None, ())
    else:
        assert (new.pool, new.allocated, new.unallocated) == (
            allocation.pool,
            allocation.allocated,
            allocation.unallocated,
        )
        assert new.dropped == allocation.dropped


@settings(max_examples=100, deadline=None)
@given(problems(), st.randoms(use_true_random=False))
def test_input_order_does_not_matter(problem: dict[str, Any], rnd: random.Random) -> None:
    first = rank_tier_allocate(**problem)
    order = list(range(len(problem["keys"])))
    rnd.shuffle(order)
    shuffled = {
        **problem,
        **{name: [problem[name][i] for i in order] for name in ("keys", "values", "eligible")},
    }
    second = rank_tier_allocate(**shuffled)
    for name in ("tier", "rank", "grant", "grant_note"):
        assert [getattr(first, name)[i] for i in order] == getattr(second, name).to_list()
    assert (first.dropped, first.allocated) == (second.dropped, second.allocated)


# --- the drop pass: numpy batches against one-at-a-time, on populations where both happen ----------------


def literal_weights(weight: list[int], pool: int, cap: int | None, min_grant: int | None) -> list[int]:
    """The grants of the literal spec for integer weights already in rank order."""
    active = [i for i in range(len(weight)) if weight[i] > 0]
    while True:
        capped: set[int] = set()
        while True:
            free = [i for i in active if i not in capped]
            shares: dict[int, Fraction] = {}
            if not free:
                break
            rest = pool - len(capped) * (cap or 0)
            total = sum(weight[i] for i in free)
            shares = {i: Fraction(rest * weight[i], total) for i in free}
            over = {i for i in free if cap is not None and shares[i] > cap}
            if not over:
                break
            capped |= over
        below = [i for i in shares if shares[i] < (min_grant or 0)]
        if not below:
            break
        active.remove(max(below))
    grants = [0] * len(weight)
    for i in capped:
        assert cap is not None
        grants[i] = cap
    for i, share in shares.items():
        grants[i] = math.floor(share)
    left = pool - sum(grants) if shares else 0
    for i in sorted(shares, key=lambda i: (-(shares[i] - math.floor(shares[i])), i))[:left]:
        grants[i] += 1
    return grants


@st.composite
def crowds(draw: st.DrawFn) -> tuple[list[int], int, int | None, int]:
    size = draw(st.integers(1, 90))
    # Heavy-tailed weights: a few hit the cap, a long tail falls below min_grant, and drops lift the level
    # until some heavy ones cap as well; skips and drops alternate in the tail.
    weight = draw(st.lists(st.integers(0, 20).map(lambda e: 2**e), min_size=size, max_size=size))
    weight.sort(reverse=True)  # rank order follows the score: with one tier, the weight
    cap = draw(st.none() | st.integers(1, 10**4))
    pool = draw(st.integers(0, size * (cap or 10**4)))
    min_grant = draw(st.integers(1, cap or 10**4))
    return weight, pool, cap, min_grant


@settings(max_examples=150, deadline=None)
@given(crowds(), st.integers(1, 5), st.integers(1, 9))
def test_batched_drop_pass_matches_one_at_a_time(
    crowd: tuple[list[int], int, int | None, int], scalar_run: int, window: int
) -> None:
    weight, pool, cap, min_grant = crowd
    expected = literal_weights(weight, pool, cap, min_grant)
    # allocate() reaches the same core through Claim objects (a score of w millionths weighs w)
    claims = [Claim(f"k{i:04}", Fraction(w, 10**6), 1, True) for i, w in enumerate(weight)]
    assert [g.grant for g in allocate(claims, pool, cap, min_grant).grants.values()] == expected
    for dtype in (np.int64, object):
        shares = _share_pool(np.array(weight, dtype=dtype), pool, cap, min_grant, scalar_run, window)
        assert shares.units.tolist() == expected
        one_by_one = _share_pool(np.array(weight, dtype=dtype), pool, cap, min_grant, 10**9, 1)
        assert shares.dropped.tolist() == one_by_one.dropped.tolist()
        assert shares.capped.tolist() == one_by_one.capped.tolist()


def test_large_population_matches_allocate() -> None:
    # 20k entities, heavy-tailed, three tiers: long runs of drops and skips go through the numpy batches.
    rnd = random.Random(7)
    n = 20_000
    keys = [f"k{i:05}" for i in range(n)]
    values = [round(rnd.paretovariate(1.5) * 10, rnd.choice([2, 7])) for _ in range(n)]
    tiers = [Tier("S", 50, 3, L), Tier("A", 20, "1.5", L), Tier("B", 10, 1, L)]  # type: ignore[arg-type]
    reward = Reward(2_000_000, cap=2_000, min_grant=25)
    result = rank_tier_allocate(keys, values, [True] * n, tiers, reward)
    mult: dict[str, int | str] = {"S": 3, "A": "1.5", "B": 1}
    claims = [
        Claim(k, v, mult[t] if t is not None else None, True)
        for k, v, t in zip(keys, values, result.tier.to_list(), strict=True)
    ]
    old = allocate(claims, reward.pool, reward.cap, reward.min_grant)
    assert result.grant.to_list() == [old.grants[k].grant for k in keys]
    assert result.grant_note.to_list() == [old.grants[k].note for k in keys]
    assert result.dropped == old.dropped
    assert 1000 < len(result.dropped) < n // 2
    assert result.allocated == reward.pool


# --- hand-checked cases and input forms ------------------------------------------------------------------

TIERS = [Tier("S", 80, 3, L), Tier("A", 65, "1.5", L)]  # type: ignore[arg-type]


def test_hand_computed() -> None:
    # weights: a 90*3 = 270, b 70*1.5 = 105, c 70*1.5 = 105 (tie: key order), d below A, e ineligible.
    result = rank_tier_allocate(
        ["c", "a", "d", "b", "e"],
        [70.0, 90.0, 10.0, 70.0, 99.0],
        [True, True, True, True, False],
        TIERS,
        Reward(480, cap=200),
    )
    # 270/480 of 480 = 270 > 200: a capped; 280 left over 210: b and c get 140 each.
    assert result.tier.to_list() == ["A", "S", None, "A", None]
    assert result.rank.to_list() == [3, 1, 4, 2, None]
    assert result.grant.to_list() == [140, 200, 0, 140, 0]
    assert result.grant_note.to_list() == [None, NOTE_CAPPED, NOTE_BELOW_TIER, None, NOTE_NOT_ELIGIBLE]
    assert (result.pool, result.allocated, result.unallocated, result.dropped) == (480, 480, 0, ())
    assert [s.name for s in (result.tier, result.rank, result.grant, result.grant_note)] == [
        "tier",
        "rank",
        "grant",
        "grant_note",
    ]
    assert [s.dtype for s in (result.tier, result.rank, result.grant, result.grant_note)] == [
        pl.Utf8,
        pl.Int64,
        pl.Int64,
        pl.Utf8,
    ]


def test_without_reward_grants_are_null() -> None:
    result = rank_tier_allocate(["a", "b"], [90.0, None], [True, True], TIERS, None)
    assert result.grant.to_list() == [None, None]
    assert result.grant_note.to_list() == [None, None]
    assert result.rank.to_list() == [1, None]
    assert (result.pool, result.allocated, result.unallocated, result.dropped) == (None, None, None, ())


def test_input_forms_agree() -> None:
    keys, values, eligible = ["b", "a", "c"], [70.0, None, 90.0], [True, True, None]
    expected = columns(rank_tier_allocate(keys, values, eligible, TIERS, Reward(100, min_grant=10)))
    as_series = rank_tier_allocate(
        pl.Series(keys), pl.Series(values), pl.Series(eligible), TIERS, Reward(100, min_grant=10)
    )
    as_numpy = rank_tier_allocate(
        pl.Series(keys),
        np.array([70.0, np.nan, 90.0]),  # NaN means missing in a numpy array
        np.array([True, True, False]),
        TIERS,
        Reward(100, min_grant=10),
    )
    assert columns(as_series) == expected == columns(as_numpy)
    assert expected.grant == [100, 0, 0]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"keys": ["a", "a"]}, "duplicate key 'a'"),
        ({"keys": pl.Series(["a", None])}, "key is missing"),
        ({"values": [float("nan"), 1.0]}, "'a': rank_by value nan is not finite"),
        ({"values": [1.0, float("inf")]}, "'b': rank_by value inf is not finite"),
        ({"reward": Reward(-1)}, "pool must be"),
        ({"tiers": [Tier("S", 0, -1, L)]}, "negative"),
    ],
)
def test_refusals(kwargs: dict[str, Any], message: str) -> None:
    args: dict[str, Any] = {
        "keys": ["a", "b"],
        "values": [1.0, 2.0],
        "eligible": [True, True],
        "tiers": TIERS,
        "reward": Reward(10),
    } | kwargs
    with pytest.raises(ValueError, match=message):
        rank_tier_allocate(**args)


def test_ineligible_non_finite_is_no_error() -> None:
    result = rank_tier_allocate(
        ["a", "b"], [float("inf"), 1.0], [False, True], [Tier("S", 0, 1, L)], Reward(5)
    )
    assert result.grant.to_list() == [0, 5]


def test_huge_values_stay_exact() -> None:
    # 1e300 has no int64 millionths: Python ints all the way, still exact.
    result = rank_tier_allocate(["a", "b"], [1e300, 3e300], [True, True], [Tier("S", 0, 1, L)], Reward(7))
    assert result.grant.to_list() == [2, 5]  # 1.75 and 5.25
    assert result.rank.to_list() == [2, 1]


# --- round_micro_array -----------------------------------------------------------------------------------


def _random_floats(count: int, seed: int) -> list[float]:
    rnd = random.Random(seed)
    out: list[float] = []
    for _ in range(count):
        kind = rnd.randrange(6)
        if kind == 0:  # a .5 at the 7th decimal, as a decimal literal reads
            out.append(float(f"{rnd.randrange(-(10**9), 10**9)}.{rnd.randrange(10**6):06}5"))
        elif kind == 1:  # the floats next to such a boundary
            x = float(f"{rnd.randrange(10**7)}.{rnd.randrange(10**6):06}5")
            out.append(math.nextafter(x, rnd.choice([math.inf, -math.inf])))
        elif kind == 2:  # any magnitude
            out.append(rnd.uniform(-1, 1) * 10.0 ** rnd.randrange(-12, 20))
        elif kind == 3:  # any bit pattern
            (x,) = struct.unpack("<d", rnd.getrandbits(64).to_bytes(8, "little"))
            out.append(x if math.isfinite(x) else 0.0)
        elif kind == 4:  # short decimals
            out.append(round(rnd.uniform(-1e4, 1e4), rnd.randrange(10)))
        else:
            out.append(rnd.choice([0.0, -0.0, 5e-324, -5e-324, 2.225e-308, 4.5e9, 9.2e12, 9.3e12, 1.7e308]))
    return out


@pytest.mark.parametrize("seed", range(4))
def test_round_micro_array_is_round_micro(seed: int) -> None:
    floats = _random_floats(20_000, seed)
    micro, missing = round_micro_array(np.array(floats))
    assert micro.tolist() == [round_micro(x) for x in floats]
    assert not missing.any()


def test_round_micro_array_types_and_missing() -> None:
    micro, missing = round_micro_array(np.array([1.0000005, np.nan, -2.675, 0.1]))
    assert micro.dtype == np.int64
    assert micro.tolist() == [1000001, 0, -2675000, 100000]
    assert missing.tolist() == [False, True, False, False]
    big, _ = round_micro_array(np.array([1e13, 1.0]))  # 1e19 millionths pass int64
    assert big.dtype == object
    assert big.tolist() == [10**19, 10**6]
    with pytest.raises(ValueError, match="not finite"):
        round_micro_array(np.array([1.0, -np.inf]))


def test_rank_by_all_null_ranks_nobody() -> None:
    result = rank_tier_allocate(["a", "b"], pl.Series([None, None]), [True, True], TIERS, Reward(9))
    assert result.rank.to_list() == [None, None]
    assert result.grant_note.to_list() == [NOTE_NOT_ELIGIBLE, NOTE_NOT_ELIGIBLE]
    assert (result.allocated, result.unallocated) == (0, 9)
