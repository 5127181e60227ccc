"""Regression discontinuity at the tier cutoffs (rdrobust, rddensity).

Among the entities eligible in the grant period, the grant jumps where the rank_by value crosses a tier's
`min_score`: from 0 at the lowest tier (or from below min_grant), and by the multiplier's step at each
boundary above it. The design is fuzzy: the jump in log outcome divided by the jump in dose = grant / cap
is the effect of a full cap, local to entities scoring near the cutoff. Each cutoff uses the entities
between its neighbouring cutoffs, so that no other jump enters its local fit; the outcome of the grant
period (log) is a covariate (it is fixed before the grant and absorbs most of the differences between
entities). Bandwidths are rdrobust's MSE-optimal ones; the confidence intervals robust bias-corrected.
"""

from __future__ import annotations

import contextlib
import io
import itertools
import math
import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np

#: Fewer entities than this on either side within the bandwidth: the estimate says little (a warning).
MIN_SIDE = 20
#: Fewer entities than this on either side of a cutoff: no estimate at all.
MIN_FIT = 10


@dataclass(frozen=True)
class RdPoint:
    """A bin of the RD plot: the mean log outcome of the entities whose rank_by value is in the bin."""

    x: float
    y: float
    n: int


@dataclass(frozen=True)
class RdEstimate:
    """One cutoff: the effect of a full cap in log points (None when it cannot be estimated), its robust
    95 % interval, the entities within the bandwidth, and the checks."""

    cutoff: str  # the tier whose min_score it is
    value: float  # the cutoff's min_score
    log_effect: float | None
    log_ci: tuple[float, float] | None
    n: int
    bandwidth: float | None
    checks: dict[str, Any] = field(default_factory=dict)
    points: tuple[RdPoint, ...] = ()
    warnings: tuple[str, ...] = ()


def _entities(n: int) -> str:
    return "entity" if n == 1 else "entities"


def estimate_cutoffs(
    x: np.ndarray,
    y: np.ndarray,
    dose: np.ndarray,
    baseline: np.ndarray | None,
    cutoffs: list[tuple[str, float]],
) -> list[RdEstimate]:
    """An RD estimate at each (tier, min_score) cutoff, lowest first. `x` is the rank_by value, `y` the log
    outcome, `dose` grant / cap, `baseline` the log outcome of the grant period (or None)."""
    ordered = sorted(cutoffs, key=lambda c: c[1])
    values = [v for _, v in ordered]
    out = []
    for i, (tier, c) in enumerate(ordered):
        low = values[i - 1] if i > 0 else -math.inf
        high = values[i + 1] if i + 1 < len(values) else math.inf
        inside = (x > low) & (x < high) if i > 0 else x < high
        out.append(
            _estimate(
                tier,
                c,
                (low, high),
                x[inside],
                y[inside],
                dose[inside],
                None if baseline is None else baseline[inside],
            )
        )
    return out


def _quiet(call: Any, *args: Any, **kwargs: Any) -> Any:
    """rdrobust and rddensity print notes and numpy warnings; the library never prints."""
    with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return call(*args, **kwargs)


def _estimate(
    tier: str,
    c: float,
    window: tuple[float, float],
    x: np.ndarray,
    y: np.ndarray,
    dose: np.ndarray,
    baseline: np.ndarray | None,
) -> RdEstimate:
    from rdrobust import rdrobust

    left, right = int((x < c).sum()), int((x >= c).sum())
    checks: dict[str, Any] = {"bandwidth": None, "left": left, "right": right}
    points = _bins(x, y, c, window)
    notes: list[str] = []
    if min(left, right) < MIN_FIT:
        note = (
            f"cutoff {tier} ({c:g}): only {left} {_entities(left)} below and {right} above among the "
            "eligible; too few to estimate anything"
        )
        checks["note"] = note
        return RdEstimate(tier, c, None, None, left + right, None, checks, points, (note,))
    covs = baseline if baseline is not None and np.isfinite(baseline).all() else None
    try:
        fit = _quiet(rdrobust, y, x, c=c, fuzzy=dose, covs=covs)
        first = _quiet(rdrobust, dose, x, c=c)
    except Exception as exc:  # rdrobust raises bare exceptions on degenerate data
        note = f"cutoff {tier} ({c:g}): rdrobust could not fit ({type(exc).__name__}: {exc})"
        checks["note"] = note
        return RdEstimate(tier, c, None, None, left + right, None, checks, points, (note,))
    coef = float(fit.coef.iloc[0, 0])
    lo, hi = (float(v) for v in fit.ci.iloc[2])  # the robust bias-corrected row
    n_left, n_right = (int(v) for v in fit.N_h)
    h = float(fit.bws.iloc[0, 0])
    jump = float(first.coef.iloc[0, 0])
    jlo, jhi = (float(v) for v in first.ci.iloc[2])
    checks.update(
        bandwidth=round(h, 6),
        within_bandwidth={"left": n_left, "right": n_right},
        first_stage={"dose_jump": _r(jump), "ci": [_r(jlo), _r(jhi)]},
        density=_density(x, c),
        placebo=_placebos(x, y, c, window),
        covariate="log outcome of the grant period" if covs is not None else None,
    )
    if min(n_left, n_right) < MIN_SIDE:
        notes.append(
            f"cutoff {tier} ({c:g}): only {n_left} {_entities(n_left)} below and {n_right} above within the "
            f"bandwidth (±{h:.3g}); the estimate says little"
        )
    if jlo <= 0 <= jhi:
        notes.append(
            f"cutoff {tier} ({c:g}): the grant does not clearly jump there (dose jump {jump:.3g}, 95 % CI "
            f"{jlo:.3g} to {jhi:.3g}); the estimate divides by that jump and is not informative"
        )
    density = checks["density"]
    if density.get("p_value") is not None and density["p_value"] < 0.05:
        notes.append(
            f"cutoff {tier} ({c:g}): more or fewer entities sit just above the cutoff than just below "
            f"(density test p = {density['p_value']:.3g}): scores may be steered across it (bunching)"
        )
    if not (math.isfinite(coef) and math.isfinite(lo) and math.isfinite(hi)):
        return RdEstimate(tier, c, None, None, n_left + n_right, h, checks, points, tuple(notes))
    return RdEstimate(tier, c, coef, (lo, hi), n_left + n_right, h, checks, points, tuple(notes))


def _density(x: np.ndarray, c: float) -> dict[str, Any]:
    """The manipulation test of Cattaneo, Jansson and Ma (rddensity): is the density of the rank_by value
    continuous at the cutoff?"""
    from rddensity import rddensity

    try:
        test = _quiet(rddensity, X=x, c=c)
        p = float(test.test["p_jk"])
    except Exception as exc:
        return {"p_value": None, "note": f"{type(exc).__name__}: {exc}"}
    return {"p_value": _r(p) if math.isfinite(p) else None}


def _placebos(x: np.ndarray, y: np.ndarray, c: float, window: tuple[float, float]) -> list[dict[str, Any]]:
    """Sharp RD of the log outcome at the medians of each side (where nothing jumps): estimates far from 0
    there mean the outcome moves with the score by itself, and the cutoff's estimate is suspect."""
    from rdrobust import rdrobust

    out = []
    for side in (x[(x < c) & (x > window[0])], x[(x >= c) & (x < window[1])]):
        if len(side) < 2 * MIN_FIT:
            continue
        p = float(np.median(side))
        inside = (x >= side.min()) & (x <= side.max())
        try:
            fit = _quiet(rdrobust, y[inside], x[inside], c=p)
        except Exception:
            continue
        coef, pv = float(fit.coef.iloc[0, 0]), float(fit.pv.iloc[2, 0])
        if math.isfinite(coef) and math.isfinite(pv):
            out.append({"at": _r(p), "jump": _r(coef), "p_value": _r(pv)})
    return out


def _bins(
    x: np.ndarray, y: np.ndarray, c: float, window: tuple[float, float], n_bins: int = 12
) -> tuple[RdPoint, ...]:
    """Mean log outcome in equal-width bins on each side of the cutoff (the RD plot)."""
    lo = max(float(x.min()) if len(x) else c, window[0])
    hi = min(float(x.max()) if len(x) else c, window[1])
    points = []
    for a, b in ((lo, c), (c, hi)):
        if b <= a:
            continue
        edges = np.linspace(a, b, n_bins // 2 + 1)
        for e0, e1 in itertools.pairwise(edges):
            inside = (x >= e0) & ((x < e1) if e1 < b or b == c else (x <= e1))
            if inside.any():
                points.append(RdPoint(float((e0 + e1) / 2), float(y[inside].mean()), int(inside.sum())))
    return tuple(points)


def _r(value: float) -> float:
    return round(float(value), 6)
