"""Score formulas of SPEC §4 with hand-computed expectations: normalizers, missing values, requires, tiers."""

from __future__ import annotations

import math

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chuanliu_cli.rules.model import Loc, Normalizer, Requires, Score, Scorecard, ScorePart, Tier
from chuanliu_cli.scoring.normalize import normalize_expr
from chuanliu_cli.scoring.pipeline import compute_scores, score_entity, tier_for

L = Loc("t.yaml", 1, 1)


def _norm(kind: str, params: tuple = ()) -> Normalizer:
    return Normalizer(kind, params)  # type: ignore[arg-type]


def _apply(norm: Normalizer, xs: list[float | None]) -> list[float | None]:
    return (
        pl.DataFrame({"x": xs}, schema={"x": pl.Float64})
        .select(normalize_expr(pl.col("x"), norm).alias("x"))["x"]
        .to_list()
    )


@pytest.mark.parametrize(
    ("x", "expected"),
    [(3, 0.0), (4, 0.0), (15, 0.5), (26, 1.0), (40, 1.0), (None, None)],
)
def test_linear_increasing(x: float | None, expected: float | None) -> None:
    assert _apply(_norm("linear", (4, 26)), [x]) == [
        pytest.approx(expected) if expected is not None else None
    ]


@pytest.mark.parametrize(("x", "expected"), [(0.0, 1.0), (0.05, 0.0), (0.0125, 0.75), (0.2, 0.0), (-1, 1.0)])
def test_linear_decreasing_lower_is_better(x: float, expected: float) -> None:
    assert _apply(_norm("linear", (0.05, 0)), [x]) == [pytest.approx(expected)]


@pytest.mark.parametrize(
    ("x", "expected"),
    [
        (0, 0.0),
        (-5, 0.0),
        (200, 1.0),
        (500, 1.0),
        (99, math.log(100) / math.log(201)),
        (10, math.log(11) / math.log(201)),
    ],
)
def test_log(x: float, expected: float) -> None:
    assert _apply(_norm("log", (0, 200)), [x]) == [pytest.approx(expected)]


def test_log_with_offset() -> None:
    # ln(1 + max(x − a, 0)) / ln(1 + b − a) with a = 10, b = 110
    assert _apply(_norm("log", (10, 110)), [5, 10, 60, 110]) == pytest.approx(
        [0.0, 0.0, math.log(51) / math.log(101), 1.0]
    )


def test_bands() -> None:
    bands = _norm("bands", ((10, 0.2), (20, 0.5), (50, 1.0)))
    assert _apply(bands, [5, 10, 19.99, 20, 49, 50, 1000, None]) == [0.0, 0.2, 0.2, 0.5, 0.5, 1.0, 1.0, None]


def test_rank_percent_with_ties_and_nulls() -> None:
    # values 1, 2, 2, 4 and a NULL: n = 4; 2s have L = 1, E = 2 -> (1 + 0.5) / 3 = 0.5
    assert _apply(_norm("rank"), [1, 2, 2, 4, None]) == [0.0, 0.5, 0.5, 1.0, None]


def test_rank_single_entity_is_one() -> None:
    assert _apply(_norm("rank"), [7, None]) == [1.0, None]


def _card(scores: tuple[Score, ...], metrics: tuple = (), tiers: tuple[Tier, ...] = ()) -> Scorecard:
    return Scorecard("m", None, "shop_id", metrics, scores, scores[-1].name, (), tiers, None, L)


def test_weighted_score_and_score_of_scores() -> None:
    div = Score(
        "diligence",
        None,
        100,
        (
            ScorePart(50, L, metric="days", normalize=_norm("linear", (4, 26))),
            ScorePart(30, L, metric="hours", normalize=_norm("log", (0, 200))),
            ScorePart(20, L, metric="weeks", normalize=_norm("linear", (1, 4))),
        ),
        None,
        L,
    )
    store = Score(
        "store", None, 5, (ScorePart(1, L, metric="q", normalize=_norm("linear", (1, 5))),), None, L
    )
    total = Score(
        "total", None, 100, (ScorePart(30, L, score="diligence"), ScorePart(10, L, score="store")), None, L
    )
    frame = pl.DataFrame({"shop_id": ["a"], "days": [15.0], "hours": [200.0], "weeks": [2.5], "q": [4.0]})
    out = compute_scores(_card((div, store, total)), frame)
    # diligence = 100 × (50×0.5 + 30×1 + 20×0.5) / 100 = 65; store = 5 × 0.75 = 3.75
    # total = 100 × (30 × 0.65 + 10 × 0.75) / 40 = 67.5
    assert out.row(0, named=True)["diligence"] == pytest.approx(65.0)
    assert out.row(0, named=True)["store"] == pytest.approx(3.75)
    assert out.row(0, named=True)["total"] == pytest.approx(67.5)


def test_missing_default_zero_custom_value_and_skip() -> None:
    parts = (
        ScorePart(50, L, metric="a", normalize=_norm("linear", (0, 10))),
        ScorePart(50, L, metric="b", normalize=_norm("linear", (0, 10))),
    )
    zero = Score("zero", None, 100, parts, None, L)
    custom = Score(
        "custom",
        None,
        100,
        (parts[0], ScorePart(50, L, metric="b", normalize=parts[1].normalize, missing=0.5)),
        None,
        L,
    )
    skip = Score(
        "skip",
        None,
        100,
        (parts[0], ScorePart(50, L, metric="b", normalize=parts[1].normalize, missing="skip")),
        None,
        L,
    )
    frame = pl.DataFrame(
        {"shop_id": ["x"], "a": [8.0], "b": [None]},
        schema={"shop_id": pl.Utf8, "a": pl.Float64, "b": pl.Float64},
    )
    row = compute_scores(_card((zero, custom, skip)), frame).row(0, named=True)
    assert row["zero"] == pytest.approx(40.0)  # (50×0.8 + 50×0) / 100
    assert row["custom"] == pytest.approx(65.0)  # (50×0.8 + 50×0.5) / 100
    assert row["skip"] == pytest.approx(80.0)  # the part and its weight dropped


def test_all_parts_skipped_gives_null() -> None:
    s = Score(
        "s",
        None,
        100,
        (ScorePart(1, L, metric="a", normalize=_norm("linear", (0, 1)), missing="skip"),),
        None,
        L,
    )
    frame = pl.DataFrame({"shop_id": ["x"], "a": [None]}, schema={"shop_id": pl.Utf8, "a": pl.Float64})
    assert compute_scores(_card((s,)), frame)["s"].to_list() == [None]


@pytest.mark.parametrize(("reviews", "expected"), [(19.0, None), (20.0, 5.0), (None, None)])
def test_requires(reviews: float | None, expected: float | None) -> None:
    s = Score(
        "store",
        None,
        5,
        (ScorePart(1, L, metric="q", normalize=_norm("linear", (1, 5))),),
        Requires("n", 20, L),
        L,
    )
    frame = pl.DataFrame(
        {"shop_id": ["x"], "q": [5.0], "n": [reviews]},
        schema={"shop_id": pl.Utf8, "q": pl.Float64, "n": pl.Float64},
    )
    assert compute_scores(_card((s,)), frame)["store"].to_list() == [expected]


TIERS = (Tier("S", 80, 3, L), Tier("A", 65, 2, L), Tier("C", 35, 1, L))


@pytest.mark.parametrize(
    ("value", "tier"),
    [
        (80.0, "S"),
        (79.9999995, "S"),  # rounds half away from zero to 80.000000
        (79.9999994, "A"),
        (65.0, "A"),
        (64.99999949, "C"),
        (35.0, "C"),
        (34.999999, None),
        (None, None),
    ],
)
def test_tier_boundaries_at_six_decimals(value: float | None, tier: str | None) -> None:
    card = _card((Score("total", None, 100, (ScorePart(1, L, metric="a"),), None, L),), tiers=TIERS)
    assert tier_for(card, value) == tier


# --- one score arithmetic: a single entity scored with floats equals its row of the vectorized scoring ------

_METRICS = ("m0", "m1", "m2")
_metric_values = st.one_of(st.none(), st.floats(-1e4, 1e4), st.integers(-5, 50).map(float))


@st.composite
def _normalizers(draw: st.DrawFn) -> Normalizer | None:
    kind = draw(st.sampled_from(["none", "linear", "log", "bands", "rank"]))
    if kind == "none":
        return None
    if kind in ("linear", "log"):
        low = 0.0 if kind == "log" else -100.0
        a, b = draw(st.lists(st.floats(low, 1e4), min_size=2, max_size=2, unique=True))
        return _norm(kind, (a, b) if kind == "linear" else (min(a, b), max(a, b)))
    if kind == "bands":
        ts = sorted(draw(st.lists(st.floats(-100, 1e4), min_size=1, max_size=4, unique=True)))
        return _norm("bands", tuple((t, draw(st.floats(0, 1))) for t in ts))
    return _norm("rank")


_missing = st.one_of(st.just(0.0), st.floats(0, 1), st.just("skip"))
_weights = st.integers(1, 60).map(float)


@st.composite
def _scorecards(draw: st.DrawFn) -> Scorecard:
    """Two to three scores over three metrics: metric parts, score parts (plain or normalized), requires."""
    scores: list[Score] = []
    for i in range(draw(st.integers(2, 3))):
        parts = []
        for _ in range(draw(st.integers(1, 3))):
            if scores and draw(st.booleans()):
                ref = draw(st.sampled_from([s.name for s in scores]))
                norm = draw(st.one_of(st.none(), _normalizers()))
                parts.append(ScorePart(draw(_weights), L, score=ref, normalize=norm, missing=draw(_missing)))
            else:
                ref = draw(st.sampled_from(_METRICS))
                norm = draw(_normalizers())
                parts.append(ScorePart(draw(_weights), L, metric=ref, normalize=norm, missing=draw(_missing)))
        requires = None
        if draw(st.booleans()):
            requires = Requires(draw(st.sampled_from(_METRICS)), draw(st.floats(-10, 30)), L)
        scale = draw(st.sampled_from([100.0, 5.0, 1.0, 7.5]))
        scores.append(Score(f"s{i}", None, scale, tuple(parts), requires, L))
    return _card(tuple(scores))


@settings(max_examples=300, deadline=None)
@given(sc=_scorecards(), rows=st.lists(st.tuples(*[_metric_values] * 3), min_size=1, max_size=6))
def test_one_entity_with_floats_equals_its_row_of_the_frame(
    sc: Scorecard, rows: list[tuple[float | None, ...]]
) -> None:
    data: dict[str, list[object]] = {"shop_id": [f"e{i}" for i in range(len(rows))]}
    data.update({m: [r[j] for r in rows] for j, m in enumerate(_METRICS)})
    frame = pl.DataFrame(data, schema={"shop_id": pl.Utf8, **{m: pl.Float64 for m in _METRICS}})
    scored = compute_scores(sc, frame).to_dicts()
    ranked = {
        p.ref for s in sc.scores for p in s.parts if p.normalize is not None and p.normalize.kind == "rank"
    }
    for i, row in enumerate(scored):
        others = {
            name: [r[name] for j, r in enumerate(scored) if j != i and r[name] is not None] for name in ranked
        }
        alone = score_entity(sc, {m: row[m] for m in _METRICS}, others)

        # the same float steps in both forms, so equal, not merely close (NaN, from a linear range whose
        # reciprocal overflows such as (0, 5e-324), is the same outcome in both)
        def same(x: float | None, y: float | None) -> bool:
            both_nan = isinstance(x, float) and isinstance(y, float) and math.isnan(x) and math.isnan(y)
            return both_nan or x == y

        assert all(same(alone[s.name], row[s.name]) for s in sc.scores), (alone, row)


def test_a_null_log_part_counts_as_missing_or_is_skipped() -> None:
    # the log normalizer keeps NULL as NULL, so `missing` applies to a log part like to any other
    log = _norm("log", (0, 200))
    parts = (ScorePart(50, L, metric="a", normalize=_norm("linear", (0, 10))),)
    half = Score(
        "half", None, 100, (*parts, ScorePart(50, L, metric="b", normalize=log, missing=0.5)), None, L
    )
    skip = Score(
        "skip", None, 100, (*parts, ScorePart(50, L, metric="b", normalize=log, missing="skip")), None, L
    )
    frame = pl.DataFrame(
        {"shop_id": ["x"], "a": [8.0], "b": [None]},
        schema={"shop_id": pl.Utf8, "a": pl.Float64, "b": pl.Float64},
    )
    row = compute_scores(_card((half, skip)), frame).row(0, named=True)
    assert row["half"] == pytest.approx(65.0)  # (50×0.8 + 50×0.5) / 100
    assert row["skip"] == pytest.approx(80.0)


def test_scored_frame_shows_no_helper_column_and_keeps_gate_outcomes() -> None:
    from chuanliu_cli.periods import month_period
    from chuanliu_cli.rules.model import Expr, FormulaMetric, Gate
    from chuanliu_cli.scoring.gates import gate_column
    from chuanliu_cli.scoring.pipeline import finish_scorecard

    score = Score(
        "total", None, 100, (ScorePart(1, L, metric="a", normalize=_norm("linear", (0, 10))),), None, L
    )
    gate = Gate("enough", Expr("a >= 5", L), "too little", "fail", L)
    metric = FormulaMetric("a", None, Expr("1", L), L)
    card = Scorecard("m", None, "shop_id", (metric,), (score,), "total", (gate,), TIERS, None, L)
    frame = pl.DataFrame({"shop_id": ["x", "y", "z"], "a": [8.0, 2.0, None]})
    res = finish_scorecard(card, month_period(2023, 5), frame)
    assert res.frame.columns == [
        "shop_id",
        "name",
        "group_id",  # a shop's owner and category, NULL here: no shops table (SPEC §9 groups)
        "category",
        "a",
        "total",
        "eligible",
        "failed_gates",
        "tier",
        "rank",
        "grant",
        "grant_note",
    ]
    assert res.gate_outcomes is not None
    assert res.gate_outcomes.columns == ["shop_id", gate_column(gate)]
    assert dict(res.gate_outcomes.iter_rows()) == {"x": True, "y": False, "z": None}
