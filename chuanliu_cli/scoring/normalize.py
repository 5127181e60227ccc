"""The normalizers of SPEC §4, each in a vector form (a polars expression) and a scalar form, side by side.

The vector form scores a whole population at once (scoring.pipeline); the scalar form scores one value
(scoring.explain's search for the metric value that closes a gap). Both map a value to [0, 1] and keep NULL
(None) as NULL; tests/test_normalize.py checks that each pair agrees. `rank` needs the population: its
scalar form takes the sorted non-NULL values of the population, the entity's own value included.
Inputs are finite, infinite or NULL: metric values are never NaN for the scalar forms' purposes.
"""

from __future__ import annotations

import math
from bisect import bisect_left, bisect_right
from collections.abc import Sequence
from typing import TYPE_CHECKING, cast

from chuanliu_cli.rules.model import Normalizer

if TYPE_CHECKING:
    import polars as pl


def reciprocal(c: float) -> float:
    """1 / c (inf for 0): both forms divide by a constant as a multiplication by its reciprocal.

    polars divides a column of several rows by a constant that way but a one-row column exactly, so an
    explicit multiplication gives the same last bit for any frame length and for the scalar forms.
    """
    return math.inf if c == 0 else 1 / c


# --- no normalizer: the value clipped to [0, 1] -----------------------------------------------------------


def clip_expr(x: pl.Expr) -> pl.Expr:
    """clip(x, 0, 1) of every value."""
    return x.clip(0.0, 1.0)


def clip_value(x: float | None) -> float | None:
    """clip(x, 0, 1)."""
    return None if x is None else min(max(x, 0.0), 1.0)


# --- linear: [a, b] ---------------------------------------------------------------------------------------


def linear_expr(x: pl.Expr, a: float, b: float) -> pl.Expr:
    """clip((x − a) / (b − a), 0, 1); decreasing when a > b."""
    return ((x - a) * reciprocal(b - a)).clip(0.0, 1.0)


def linear_value(x: float | None, a: float, b: float) -> float | None:
    """clip((x − a) / (b − a), 0, 1); decreasing when a > b."""
    return None if x is None else min(max((x - a) * reciprocal(b - a), 0.0), 1.0)


# --- log: [a, b] ------------------------------------------------------------------------------------------


def log_expr(x: pl.Expr, a: float, b: float) -> pl.Expr:
    """clip(ln(1 + max(x − a, 0)) / ln(1 + b − a), 0, 1)."""
    # clip(lower_bound=0) rather than max_horizontal(…, 0): max_horizontal skips NULLs, so it would turn a
    # NULL metric into 0 and `missing` (skip or a default other than 0) would never apply to a log part.
    per_unit = reciprocal(math.log(1 + b - a))  # inf when b − a is below float precision next to 1
    return (((x - a).clip(lower_bound=0.0) + 1).log() * per_unit).clip(0.0, 1.0).fill_nan(None)


def log_value(x: float | None, a: float, b: float) -> float | None:
    """clip(ln(1 + max(x − a, 0)) / ln(1 + b − a), 0, 1)."""
    if x is None:
        return None
    out = min(max(math.log(max(x - a, 0.0) + 1) * reciprocal(math.log(1 + b - a)), 0.0), 1.0)
    return None if math.isnan(out) else out  # 0 × inf, as fill_nan(None) in the vector form


# --- bands: [[t1, v1], [t2, v2], ...] ---------------------------------------------------------------------


def bands_expr(x: pl.Expr, bands: Sequence[tuple[float, float]]) -> pl.Expr:
    """v of the largest threshold t ≤ x, else 0."""
    import polars as pl

    expr = pl.when(x.is_null()).then(None).otherwise(0.0)
    for t, v in bands:
        # later (higher) thresholds override earlier ones
        expr = pl.when(x >= float(t)).then(float(v)).otherwise(expr)
    return expr


def bands_value(x: float | None, bands: Sequence[tuple[float, float]]) -> float | None:
    """v of the largest threshold t ≤ x, else 0."""
    if x is None:
        return None
    out = 0.0
    for t, v in bands:
        if x >= float(t):
            out = float(v)
    return out


# --- rank: percent rank among the non-NULL values of the population ----------------------------------------


def rank_expr(x: pl.Expr) -> pl.Expr:
    """(L + (E − 1)/2) / (n − 1) over the column's non-NULL values; 1 when n = 1."""
    import polars as pl

    n = x.is_not_null().sum()
    # average rank = L + (E + 1) / 2, so (avg − 1) / (n − 1) = (L + (E − 1)/2) / (n − 1)
    return (
        pl.when(n <= 1)
        .then(pl.when(x.is_null()).then(None).otherwise(1.0))
        .otherwise((x.rank("average") - 1) * (1 / (n - 1)))
    )


def rank_value(x: float | None, population: Sequence[float]) -> float | None:
    """(L + (E − 1)/2) / (n − 1) among `population`: its non-NULL values, sorted, `x` itself included."""
    if x is None:
        return None
    n = len(population)
    if n <= 1:
        return 1.0
    below = bisect_left(population, x)
    equal = bisect_right(population, x) - below
    # the same float steps as rank_expr: the average rank (L + (E + 1)/2), less one, over n − 1
    return (below + (equal + 1) / 2 - 1) * reciprocal(n - 1)


# --- one normalizer by its kind ---------------------------------------------------------------------------


def _pair(norm: Normalizer) -> tuple[float, float]:
    a, b = cast(tuple[float, float], norm.params)
    return float(a), float(b)


def _bands(norm: Normalizer) -> tuple[tuple[float, float], ...]:
    return cast(tuple[tuple[float, float], ...], norm.params)


def normalize_expr(x: pl.Expr, norm: Normalizer | None) -> pl.Expr:
    """The normalized value in [0, 1] of `x` (NULL stays NULL); no normalizer clips to [0, 1]."""
    if norm is None:
        return clip_expr(x)
    if norm.kind == "linear":
        return linear_expr(x, *_pair(norm))
    if norm.kind == "log":
        return log_expr(x, *_pair(norm))
    if norm.kind == "bands":
        return bands_expr(x, _bands(norm))
    if norm.kind == "rank":
        return rank_expr(x)
    raise AssertionError(norm.kind)  # pragma: no cover - the parser admits no other kind


def normalize_value(
    x: float | None, norm: Normalizer | None, population: Sequence[float] = ()
) -> float | None:
    """The scalar twin of normalize_expr; `population` (sorted, `x` included) is read by `rank` only."""
    if norm is None:
        return clip_value(x)
    if norm.kind == "linear":
        return linear_value(x, *_pair(norm))
    if norm.kind == "log":
        return log_value(x, *_pair(norm))
    if norm.kind == "bands":
        return bands_value(x, _bands(norm))
    if norm.kind == "rank":
        return rank_value(x, population)
    raise AssertionError(norm.kind)  # pragma: no cover - the parser admits no other kind


# --- text -------------------------------------------------------------------------------------------------


def number_text(value: float) -> str:
    """A number as written in YAML: 35, 0.05, 1.5 (no trailing .0)."""
    return f"{value:,.10g}" if abs(value) >= 10_000 else f"{value:.10g}"


def describe_normalizer(normalizer: Normalizer | None) -> str:
    """`linear [1, 5]`, `log [0, 200]`, `bands 1→0.5, 5→1`, `rank`, or `value / scale`."""
    if normalizer is None:
        return "value / scale"
    if normalizer.kind == "bands":
        return "bands " + ", ".join(f"{number_text(t)}→{number_text(v)}" for t, v in _bands(normalizer))
    if normalizer.kind == "rank":
        return "rank (percent rank)"
    a, b = cast(tuple[float, float], normalizer.params)
    suffix = " (lower is better)" if normalizer.kind == "linear" and a > b else ""
    return f"{normalizer.kind} [{number_text(a)}, {number_text(b)}]{suffix}"
