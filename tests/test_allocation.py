"""Reward-pool allocation (spec §4): hand-computed cases, invariants, and a literal reference."""

from __future__ import annotations

import decimal
import random
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chuanliu_cli.scoring.allocation import (
    NOTE_BELOW_MIN,
    NOTE_BELOW_TIER,
    NOTE_CAPPED,
    NOTE_NO_SCORE,
    NOTE_NO_WEIGHT,
    NOTE_NOT_ELIGIBLE,
    Allocation,
    Claim,
    allocate,
    exact_multiplier,
    rank_order,
    round_micro,
    rounded_score,
)


def c(key: str, score: float | Decimal | Fraction | int | None, mult: float | str | None = 1) -> Claim:
    return Claim(key=key, score=score, multiplier=mult, eligible=True)


def units(result: Allocation) -> dict[str, int]:
    return {key: g.grant for key, g in result.grants.items()}


# --- the literal algorithm, written straight from the spec, slow on purpose -----------------------------


@dataclass(frozen=True)
class Literal:
    grants: dict[str, int]
    shares: dict[str, Fraction]
    capped: frozenset[str]
    dropped: tuple[str, ...]


def literal_round6(score: float | Decimal | Fraction | int) -> Fraction:
    with decimal.localcontext() as ctx:
        ctx.prec = 200  # exact for every score the tests use; quantize also needs the room
        if isinstance(score, Fraction):
            dec = Decimal(score.numerator) / Decimal(score.denominator)
        elif isinstance(score, float):
            dec = Decimal(repr(score))
        else:
            dec = Decimal(score)
        return Fraction(dec.quantize(Decimal("0.000001"), rounding=ROUND_HALF_UP))


def literal_allocate(claims: list[Claim], pool: int, cap: int | None, min_grant: int | None) -> Literal:
    ranked = sorted(
        (cl for cl in claims if cl.eligible and cl.score is not None),
        key=lambda cl: (-literal_round6(cl.score), cl.key),  # type: ignore[arg-type]
    )
    rank = {cl.key: r for r, cl in enumerate(ranked)}
    weight = {
        cl.key: Fraction(Decimal(str(cl.multiplier))) * literal_round6(cl.score)  # type: ignore[arg-type]
        for cl in ranked
        if cl.multiplier is not None
    }
    active = [key for key in rank if weight.get(key, 0) > 0]
    dropped: list[str] = []
    while True:
        capped: set[str] = set()
        while True:  # step 2, literally
            free = [key for key in active if key not in capped]
            if not free:
                shares: dict[str, Fraction] = {}
                break
            rest = pool - len(capped) * (cap or 0)
            total = sum(weight[key] for key in free)
            shares = {key: rest * weight[key] / total for key in free}
            over = {key for key in free if cap is not None and shares[key] > cap}
            if not over:
                break
            capped |= over
        below = [key for key in shares if shares[key] < (min_grant or 0)]
        if not below:
            break
        lowest = max(below, key=rank.__getitem__)
        active.remove(lowest)
        dropped.append(lowest)
    grants = {cl.key: 0 for cl in claims}
    for key in capped:
        assert cap is not None
        grants[key] = cap
    for key, share in shares.items():
        grants[key] = share.numerator // share.denominator
    left = pool - sum(grants.values()) if shares else 0
    for key in sorted(shares, key=lambda k: (-(shares[k] - grants[k]), rank[k]))[:left]:
        grants[key] += 1
    return Literal(grants, shares, frozenset(capped), tuple(dropped))


# --- hand-computed examples ----------------------------------------------------------------------------


def test_proportional_split() -> None:
    result = allocate([c("a", 3.0), c("b", 2.0), c("c", 1.0)], pool=60)
    assert units(result) == {"a": 30, "b": 20, "c": 10}
    assert result.grants["a"].share == 30
    assert result.grants["a"].weight == 3
    assert (result.allocated, result.unallocated, result.dropped) == (60, 0, ())


def test_tier_multiplier_scales_weight() -> None:
    # 80 * 3 = 240 against 40 * 1.5 = 60: a 4:1 split of 100.
    result = allocate([c("s", 80, 3), c("b", 40, 1.5)], pool=100)
    assert units(result) == {"s": 80, "b": 20}
    assert result.grants["b"].weight == 60


def test_cap_water_fills_over_several_rounds() -> None:
    # Round 1: W=17, shares 58.8 / 29.4 / 5.9 / 5.9, only "a" passes 30.
    # Round 2: 70 left over W=7, "b" gets 50 > 30 and joins. Round 3: 40 over W=2, 20 each.
    result = allocate([c("a", 10), c("b", 5), c("c", 1), c("d", 1)], pool=100, cap=30)
    assert units(result) == {"a": 30, "b": 30, "c": 20, "d": 20}
    assert [result.grants[k].capped for k in "abcd"] == [True, True, False, False]
    assert result.grants["a"].note == NOTE_CAPPED
    assert result.grants["c"].share == 20
    assert result.unallocated == 0


def test_share_exactly_at_cap_is_not_capped() -> None:
    # Round 2 gives "b" exactly 5: "exceeds the cap" is strict, so "b" is uncapped with share 5.
    result = allocate([c("a", 2), c("b", 1)], pool=10, cap=5)
    assert units(result) == {"a": 5, "b": 5}
    assert (result.grants["a"].capped, result.grants["b"].capped) == (True, False)


def test_min_grant_drops_lowest_ranked_not_smallest_share() -> None:
    # Weights a=102, c=18 (score 18 x1), d=20 (score 10 x2); pool 140 so shares equal weights.
    # c (18) and d (20) are below 21; d is lower-ranked (score 10 < 18) so d goes, although c's share
    # is smaller. Recomputed over W=120: a = 119, c = 21, which is no longer below min_grant.
    claims = [c("a", 102), c("c", 18), c("d", 10, 2)]
    result = allocate(claims, pool=140, min_grant=21)
    assert units(result) == {"a": 119, "c": 21, "d": 0}
    assert result.dropped == ("d",)
    assert result.grants["d"].note == NOTE_BELOW_MIN
    assert result.grants["d"].share == 0
    assert result.grants["d"].weight == 20
    assert result.allocated == 140


def test_min_grant_drops_in_sequence() -> None:
    # 50/30/12/8 of 100 with min 20: d (8) goes, then c (12 -> 13.04) goes, leaving 62.5 / 37.5.
    result = allocate([c("a", 50), c("b", 30), c("c", 12), c("d", 8)], pool=100, min_grant=20)
    assert result.dropped == ("d", "c")
    assert units(result) == {"a": 63, "b": 37, "c": 0, "d": 0}


def test_largest_remainder_tie_goes_by_rank_order() -> None:
    # "z" and "a" have equal weight (1 x1, 0.5 x2), shares 1.5 each, one unit left: "z" ranks first
    # on score even though "a" sorts first by key.
    result = allocate([c("a", 0.5, 2), c("z", 1.0, 1)], pool=3)
    assert units(result) == {"z": 2, "a": 1}
    assert result.grants["a"].share == result.grants["z"].share == Fraction(3, 2)


def test_largest_remainder_tie_on_equal_scores_goes_by_key() -> None:
    result = allocate([c("c", 1), c("b", 1), c("a", 1)], pool=10)
    assert units(result) == {"a": 4, "b": 3, "c": 3}


def test_largest_remainder_prefers_larger_fraction() -> None:
    # Shares 10 * 5/8 = 6.25 and 10 * 3/8 = 3.75: the one unit left goes to the .75.
    result = allocate([c("a", 5), c("b", 3)], pool=10)
    assert units(result) == {"a": 6, "b": 4}


def test_everyone_capped_reports_unallocated() -> None:
    result = allocate([c("a", 1), c("b", 2), c("c", 3)], pool=100, cap=30)
    assert units(result) == {"a": 30, "b": 30, "c": 30}
    assert all(g.capped for g in result.grants.values())
    assert (result.allocated, result.unallocated) == (90, 10)


def test_nobody_eligible() -> None:
    claims = [Claim("a", 90, 3, eligible=False), Claim("b", 70, 2, eligible=False)]
    result = allocate(claims, pool=1000, cap=100, min_grant=10)
    assert units(result) == {"a": 0, "b": 0}
    assert {g.note for g in result.grants.values()} == {NOTE_NOT_ELIGIBLE}
    assert (result.allocated, result.unallocated) == (0, 1000)
    assert rank_order(claims) == []


def test_below_lowest_tier_takes_no_part() -> None:
    result = allocate([c("a", 90, 3), c("b", 20, None), c("n", None, None)], pool=1000)
    assert units(result) == {"a": 1000, "b": 0, "n": 0}
    assert result.grants["b"].note == NOTE_BELOW_TIER
    assert result.grants["b"].weight == 0
    assert result.grants["n"].note == NOTE_NO_SCORE


def test_non_positive_weight_takes_no_part() -> None:
    result = allocate([c("a", 1), c("neg", -5.0), c("zero", 0), c("tiny", 0.0000004)], pool=7)
    assert units(result) == {"a": 7, "neg": 0, "zero": 0, "tiny": 0}
    assert result.grants["neg"].note == NOTE_NO_WEIGHT
    assert result.grants["neg"].weight == -5
    assert result.grants["tiny"].weight == 0  # rounds to 0.000000


def test_rounding_to_six_decimals_makes_a_tie() -> None:
    # 1.0000005 rounds half away from zero to 1.000001, the same as 1.000001: a tie, so key order
    # decides rank and the odd unit goes to "a" although "b" has the larger raw score.
    claims = [c("b", 1.000001), c("a", 1.0000005)]
    result = allocate(claims, pool=3)
    assert [cl.key for cl in rank_order(claims)] == ["a", "b"]
    assert result.grants["a"].weight == result.grants["b"].weight == Fraction(1000001, 10**6)
    assert units(result) == {"a": 2, "b": 1}


@pytest.mark.parametrize(
    ("score", "micro"),
    [
        (1.0000005, 1000001),
        (-1.0000005, -1000001),  # half away from zero, not half up
        (0.0000004999, 0),
        (2.675, 2675000),  # the float 2.675 is below 2.675, but its repr is what counts
        (0.1, 100000),
        (Decimal("3.14159265"), 3141593),
        (Fraction(1, 3), 333333),
        (Fraction(-1, 2_000_000), -1),
        (7, 7_000_000),
    ],
)
def test_round_micro(score: float | Decimal | Fraction | int, micro: int) -> None:
    assert round_micro(score) == micro
    assert rounded_score(score) == Fraction(micro, 10**6)


@pytest.mark.parametrize(
    ("mult", "exact"),
    [
        (3, Fraction(3)),
        (1.5, Fraction(3, 2)),
        ("1.5", Fraction(3, 2)),
        (1.1, Fraction(11, 10)),
        (0, Fraction(0)),
    ],
)
def test_exact_multiplier(mult: float | str | int, exact: Fraction) -> None:
    assert exact_multiplier(mult) == exact


def test_rank_order_drops_ineligible_and_unscored() -> None:
    claims = [c("b", 5), Claim("x", 9, 1, eligible=False), c("n", None), c("a", 5), c("z", 6)]
    assert [cl.key for cl in rank_order(claims)] == ["z", "a", "b"]


def test_pool_zero() -> None:
    assert units(allocate([c("a", 1), c("b", 2)], pool=0)) == {"a": 0, "b": 0}
    dropped_all = allocate([c("a", 1), c("b", 2)], pool=0, min_grant=1)
    assert dropped_all.dropped == ("a", "b")
    assert dropped_all.unallocated == 0


def test_grants_listed_in_rank_order_then_by_key() -> None:
    claims = [Claim("q", 1, 1, eligible=False), c("b", 1), c("a", 2), c("n", None)]
    assert list(allocate(claims, pool=3).grants) == ["a", "b", "n", "q"]


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"pool": -1}, ValueError),
        ({"pool": 10, "cap": 0}, ValueError),
        ({"pool": 10, "min_grant": 0}, ValueError),
        ({"pool": 10, "cap": 5, "min_grant": 6}, ValueError),
        ({"pool": 10.0}, TypeError),
        ({"pool": True}, TypeError),
    ],
)
def test_invalid_amounts(kwargs: dict[str, object], error: type[Exception]) -> None:
    with pytest.raises(error):
        allocate([c("a", 1)], **kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("claims", "message"),
    [
        ([c("a", 1), c("a", 2)], "duplicate key 'a'"),
        ([c("a", float("nan"))], "not finite"),
        ([c("a", 1, -2)], "negative"),
        ([c("a", 1, "three")], "not a number"),
    ],
)
def test_invalid_claims(claims: list[Claim], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        allocate(claims, pool=10)


def test_large_pool_with_mass_drops_is_linear() -> None:
    # pool 0 with min_grant 1 drops every entity one at a time; the literal loop would be quadratic.
    claims = [c(f"k{i:05}", 1 + (i * 7919) % 10_000 / 100, 1 + i % 3) for i in range(20_000)]
    result = allocate(claims, pool=0, min_grant=1)
    assert len(result.dropped) == 20_000
    assert result.dropped[0] == rank_order(claims)[-1].key


# --- properties ----------------------------------------------------------------------------------------

scores = st.one_of(
    st.integers(1, 60),
    st.floats(0, 100, allow_nan=False, allow_infinity=False),
    st.decimals(min_value=0, max_value=10, places=7, allow_nan=False, allow_infinity=False),
    # rounding ties, then no weight at all
    st.sampled_from([0.0000005, 1.0000005, 2.5000005, 0.000001, 1.000001, -1.5, 0, None]),
)
multipliers = st.sampled_from([1, 1.5, 2, 3, "2.5", None])


@st.composite
def claim_lists(draw: st.DrawFn) -> list[Claim]:
    size = draw(st.integers(0, 12))
    keys = draw(
        st.lists(st.text("abcdefgh", min_size=1, max_size=3), min_size=size, max_size=size, unique=True)
    )
    eligible = st.sampled_from([True, True, True, False])
    return [Claim(key, draw(scores), draw(multipliers), draw(eligible)) for key in keys]


@st.composite
def problems(draw: st.DrawFn) -> tuple[list[Claim], int, int | None, int | None]:
    claims = draw(claim_lists())
    # Pools, caps and minimums of comparable size, so that caps bind and min_grant drops happen often.
    cap = draw(st.none() | st.integers(1, 120))
    pool = draw(st.integers(0, 10**9) if draw(st.integers(0, 5)) == 0 else st.integers(0, 600))
    min_grant = draw(st.none() | st.integers(1, cap if cap is not None else 200))
    return claims, pool, cap, min_grant


def participants(result: Allocation) -> list[str]:
    return [k for k, g in result.grants.items() if g.weight > 0 and g.note != NOTE_BELOW_MIN]


@settings(max_examples=400, deadline=None)
@given(problems())
def test_matches_literal_reference(problem: tuple[list[Claim], int, int | None, int | None]) -> None:
    claims, pool, cap, min_grant = problem
    result = allocate(claims, pool, cap, min_grant)
    expected = literal_allocate(claims, pool, cap, min_grant)
    assert units(result) == expected.grants
    assert result.dropped == expected.dropped
    assert {k for k, g in result.grants.items() if g.capped} == expected.capped
    assert {k: g.share for k, g in result.grants.items() if k in expected.shares} == expected.shares
    assert result.allocated == sum(expected.grants.values())


@settings(max_examples=300, deadline=None)
@given(problems())
def test_invariants(problem: tuple[list[Claim], int, int | None, int | None]) -> None:
    claims, pool, cap, min_grant = problem
    result = allocate(claims, pool, cap, min_grant)
    grants = result.grants
    assert set(grants) == {cl.key for cl in claims}
    assert result.allocated + result.unallocated == pool
    assert result.allocated == sum(g.grant for g in grants.values())
    active = participants(result)
    if active and not all(grants[k].capped for k in active):
        assert result.allocated == pool
    elif active:
        assert cap is not None
        assert result.unallocated == pool - len(active) * cap
    else:
        assert result.allocated == 0
    for g in grants.values():
        assert g.grant >= 0
        if cap is not None:
            assert g.grant <= cap
        if min_grant is not None and g.grant != 0:
            assert g.grant >= min_grant
    # Within a tier (same multiplier) a higher rounded score never gets less.
    tiered = [cl for cl in claims if cl.eligible and cl.score is not None and cl.multiplier is not None]
    for hi in tiered:
        for lo in tiered:
            same_tier = exact_multiplier(hi.multiplier) == exact_multiplier(lo.multiplier)  # type: ignore[arg-type]
            if same_tier and rounded_score(hi.score) > rounded_score(lo.score):  # type: ignore[arg-type]
                assert grants[hi.key].grant >= grants[lo.key].grant


@settings(max_examples=200, deadline=None)
@given(problems(), st.randoms(use_true_random=False))
def test_input_order_does_not_matter(
    problem: tuple[list[Claim], int, int | None, int | None], rnd: random.Random
) -> None:
    claims, pool, cap, min_grant = problem
    shuffled = list(claims)
    rnd.shuffle(shuffled)
    first, second = allocate(claims, pool, cap, min_grant), allocate(shuffled, pool, cap, min_grant)
    assert first == second
    assert list(first.grants) == list(second.grants)


@st.composite
def crowds(draw: st.DrawFn) -> tuple[list[Claim], int, int, int]:
    size = draw(st.integers(30, 300))
    # Heavy-tailed scores (like GMV) over three tiers: a few entities hit the cap, a long tail falls
    # below min_grant, and the drops lift the level until some more of the heavy ones cap as well.
    raw = draw(st.lists(st.integers(0, 24).map(lambda e: 2**e), min_size=size, max_size=size))
    claims = [Claim(f"k{i:03}", Fraction(s, 1000), 1 + i % 3, True) for i, s in enumerate(raw)]
    cap = draw(st.integers(1, 10**4))
    pool = draw(st.integers(0, size * cap))
    min_grant = draw(st.integers(1, cap))
    return claims, pool, cap, min_grant


@settings(max_examples=30, deadline=None)
@given(crowds())
def test_many_entities_match_literal(crowd: tuple[list[Claim], int, int, int]) -> None:
    # Larger populations exercise long drop sequences and several capping rounds together.
    claims, pool, cap, min_grant = crowd
    result = allocate(claims, pool, cap, min_grant)
    expected = literal_allocate(claims, pool, cap, min_grant)
    assert units(result) == expected.grants
    assert result.dropped == expected.dropped
    assert {k for k, g in result.grants.items() if g.capped} == expected.capped
