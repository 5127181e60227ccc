"""scoring/normalize.py: each normalizer's scalar form agrees with its vector form, NULL included."""

from __future__ import annotations

import math

import polars as pl
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from chuanliu_cli.rules.model import Normalizer
from chuanliu_cli.scoring.normalize import (
    describe_normalizer,
    normalize_expr,
    normalize_value,
    number_text,
    rank_value,
)

# finite and infinite values and NULL; NaN is not a metric value (engines give NULL for undefined results)
values = st.one_of(
    st.none(), st.floats(allow_nan=False, allow_infinity=True), st.integers(-50, 50).map(float)
)
bounds = st.floats(allow_nan=False, allow_infinity=False, min_value=-1e9, max_value=1e9)


@st.composite
def normalizers(draw: st.DrawFn) -> Normalizer | None:
    """Any normalizer the parser accepts, or none (the value clipped to [0, 1])."""
    kind = draw(st.sampled_from(["none", "linear", "log", "bands", "rank"]))
    if kind == "none":
        return None
    if kind == "linear":
        a, b = draw(st.lists(bounds, min_size=2, max_size=2, unique=True))
        # the parser refuses bounds whose reciprocal span is infinite or 0 (1 / (b - a)), e.g. [0, 5e-324]
        assume(math.isfinite(1 / (b - a)) and 1 / (b - a) != 0)
        return Normalizer("linear", (a, b))
    if kind == "log":
        a, b = sorted(draw(st.lists(bounds.map(abs), min_size=2, max_size=2, unique=True)))
        return Normalizer("log", (a, b))
    if kind == "bands":
        thresholds = sorted(draw(st.lists(bounds, min_size=1, max_size=5, unique=True)))
        levels = draw(st.lists(st.floats(0, 1), min_size=len(thresholds), max_size=len(thresholds)))
        return Normalizer("bands", tuple(zip(thresholds, levels, strict=True)))
    return Normalizer("rank", ())


def _vector(norm: Normalizer | None, xs: list[float | None]) -> list[float | None]:
    frame = pl.DataFrame({"x": xs}, schema={"x": pl.Float64})
    return frame.select(normalize_expr(pl.col("x"), norm).alias("x"))["x"].to_list()


def _scalar(norm: Normalizer | None, xs: list[float | None]) -> list[float | None]:
    population = sorted(x for x in xs if x is not None)
    return [normalize_value(x, norm, population) for x in xs]


@settings(max_examples=400, deadline=None)
@given(norm=normalizers(), xs=st.lists(values, min_size=1, max_size=12))
def test_scalar_and_vector_forms_agree(norm: Normalizer | None, xs: list[float | None]) -> None:
    vector, scalar = _vector(norm, xs), _scalar(norm, xs)
    # the same float steps in both forms, so the values are equal, not merely close
    assert scalar == vector, (norm, xs)
    assert all(v is None or 0.0 <= v <= 1.0 for v in scalar if norm is None or norm.kind != "bands")


@pytest.mark.parametrize(
    "norm",
    [
        None,
        Normalizer("linear", (1.0, 5.0)),
        Normalizer("log", (0.0, 200.0)),
        Normalizer("bands", ((1.0, 0.5), (5.0, 1.0))),
        Normalizer("rank", ()),
    ],
    ids=["clip", "linear", "log", "bands", "rank"],
)
def test_null_stays_null(norm: Normalizer | None) -> None:
    # a NULL must stay NULL in both forms, or `missing` (skip, or a value other than 0) never applies
    assert _vector(norm, [None, 3.0]) == _scalar(norm, [None, 3.0])
    assert _vector(norm, [None, 3.0])[0] is None


def test_rank_takes_the_population_with_the_value_itself() -> None:
    # 1, 2, 2, 4: the 2s have L = 1, E = 2, n = 4 -> (1 + 0.5) / 3
    assert rank_value(2.0, [1.0, 2.0, 2.0, 4.0]) == 0.5
    assert rank_value(4.0, [1.0, 2.0, 2.0, 4.0]) == 1.0
    assert rank_value(7.0, [7.0]) == 1.0
    assert rank_value(None, [1.0]) is None


def test_log_of_infinity_saturates() -> None:
    norm = Normalizer("log", (0.0, 200.0))
    assert _scalar(norm, [math.inf, -math.inf]) == [1.0, 0.0] == _vector(norm, [math.inf, -math.inf])


@pytest.mark.parametrize(
    ("norm", "text"),
    [
        (None, "value / scale"),
        (Normalizer("linear", (1, 5)), "linear [1, 5]"),
        (Normalizer("linear", (0.05, 0)), "linear [0.05, 0] (lower is better)"),
        (Normalizer("log", (0, 1_000_000)), "log [0, 1,000,000]"),
        (Normalizer("bands", ((1, 0.5), (5, 1))), "bands 1→0.5, 5→1"),
        (Normalizer("rank", ()), "rank (percent rank)"),
    ],
)
def test_describe_normalizer(norm: Normalizer | None, text: str) -> None:
    assert describe_normalizer(norm) == text


def test_number_text_as_yaml_writes_it() -> None:
    assert [number_text(v) for v in (35.0, 0.05, 1.5, 4_000_000_000)] == [
        "35",
        "0.05",
        "1.5",
        "4,000,000,000",
    ]
