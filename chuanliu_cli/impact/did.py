"""Difference-in-differences on the panel of periods, and the event study of staggered entry (pyfixest).

The dose design: log outcome_it = α_i + λ_i·t + γ_t + Σ_l β_l · dose_i,t−l + ρ · growth_i,t−1 + ε_it, with
dose = grant / cap and growth the change of the log outcome from t−2 to t−1; errors clustered by entity.
Entity intercepts and slopes (λ_i): merchants that the score favours also grow faster, so each entity
is compared with its own trend, not with the others' (plain two-way fixed effects find large "effects"
in data with no effect at all). The growth control: the score rewards the outcome's own growth, so a
merchant whose outcome jumped by chance in one period gets more traffic in it, and then falls back; the
control compares merchants with the same recent growth. The slopes are removed by projecting every
variable on (1, t) within each entity (Frisch–Waugh–Lovell) before pyfixest's regression.

The event study: entities first granted in different periods against those never granted, log outcome
on leads and lags of the first grant with entity and period fixed effects (the period of the first grant
is the reference): the leads are the parallel-trends check.
"""

from __future__ import annotations

import contextlib
import io
import math
import warnings
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd
    import polars as pl

#: Rows per entity the trend design needs (two are spent on its intercept and slope).
MIN_ROWS = 3
#: Entity-periods an event time needs to get its own coefficient in the event study.
MIN_EVENT = 5


@dataclass(frozen=True)
class DidEstimate:
    """The dose coefficient averaged over the horizon's lags, in log points, with its 95 % interval."""

    log_effect: float | None
    log_ci: tuple[float, float] | None
    n: int
    checks: dict[str, Any] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True)
class EventTime:
    """One lead (k < −1) or lag (k ≥ 0) of the event study: periods after the period of the first grant
    minus one (k = 0 is the first period a grant can change), in log points."""

    k: int
    log_effect: float
    log_ci: tuple[float, float]
    n: int


def _quiet(call: Any, *args: Any, **kwargs: Any) -> Any:
    with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return call(*args, **kwargs)


def estimate_did(long: pl.DataFrame, horizon: int, last: int) -> DidEstimate:
    """The dose design on `long` (columns key, t, dose, outcome; t = 0, 1, … the panel's periods, `last`
    the index of the last outcome period)."""
    import numpy as np
    import polars as pl
    from pyfixest import feols

    # `long` is balanced (every entity in every period), so a shift within an entity is a period back
    frame = long.sort("key", "t").with_columns(
        ly=pl.when((pl.col("outcome") > 0) & pl.col("outcome").is_finite()).then(pl.col("outcome").log())
    )
    doses = [f"dose_{lag}" for lag in range(1, horizon + 1)]
    frame = frame.with_columns(
        pl.col("ly").shift(1).over("key").alias("ly1"),
        pl.col("ly").shift(2).over("key").alias("ly2"),
        *[pl.col("dose").shift(lag).over("key").alias(f"dose_{lag}") for lag in range(1, horizon + 1)],
    )
    candidates = frame.filter(
        (pl.col("t") <= last)
        & (pl.col("t") >= max(2, horizon))
        & pl.all_horizontal(pl.col(doses).is_not_null())
    )
    rows = candidates.filter(
        pl.col("ly").is_not_null() & pl.col("ly1").is_not_null() & pl.col("ly2").is_not_null()
    )
    dropped_zero = candidates.height - rows.height
    rows = rows.with_columns(growth=pl.col("ly1") - pl.col("ly2"))
    rows = rows.filter(pl.len().over("key") >= MIN_ROWS)
    periods = sorted(set(rows["t"].to_list()))
    checks: dict[str, Any] = {
        "periods": None,
        "entities": rows["key"].n_unique(),
        "dropped_zero_outcome": dropped_zero,
        "trend": "each entity's own intercept and slope",
        "controls": ["growth of the log outcome in the period before"],
    }
    if (
        len(periods) < MIN_ROWS
        or rows.height == 0
        or float(rows.select(pl.col(doses).abs().sum()).sum_horizontal()[0]) == 0
    ):
        note = (
            "too few periods or no grants to compare: the dose design needs, for each entity, at least "
            f"{MIN_ROWS} periods with an outcome above 0 and the two periods before each of them"
        )
        checks["note"] = note
        return DidEstimate(None, None, rows.height, checks, (note,))
    dummies = [f"p_{t}" for t in periods[2:]]  # (1 and t absorb two of the period effects)
    rows = rows.with_columns([(pl.col("t") == int(d[2:])).cast(pl.Float64).alias(d) for d in dummies])
    variables = ["ly", *doses, "growth", *dummies]
    detrended = _detrend(rows, variables)
    formula = f"ly ~ {' + '.join([*doses, 'growth', *dummies])} - 1"
    try:
        fit = _quiet(feols, formula, data=detrended, vcov={"CRV1": "key"})
    except Exception as exc:  # pyfixest raises plain exceptions on degenerate panels
        note = f"the panel regression could not be fitted ({type(exc).__name__}: {exc})"
        checks["note"] = note
        return DidEstimate(None, None, rows.height, checks, (note,))
    coef = fit.coef()
    vcov = fit._vcov  # (pyfixest keeps the clustered covariance here; its order is that of coef())
    names = list(coef.index)
    index = [names.index(d) for d in doses if d in names]
    if len(index) != len(doses):
        note = "the grants do not vary within entities over these periods: nothing to estimate"
        checks["note"] = note
        return DidEstimate(None, None, rows.height, checks, (note,))
    weights = np.zeros(len(names))
    weights[index] = 1.0 / len(index)
    value = float(weights @ coef.to_numpy())
    se = float(math.sqrt(weights @ vcov @ weights))
    from scipy.stats import t as student

    groups = int(rows["key"].n_unique())
    q = float(student.ppf(0.975, max(groups - 1, 1)))
    checks["periods"] = periods
    checks["lags"] = [
        {"lag": lag, "log_estimate": round(float(coef[d]), 6), "se": round(float(math.sqrt(vcov[i, i])), 6)}
        for lag, d, i in zip(range(1, horizon + 1), doses, index, strict=True)
    ]
    return DidEstimate(value, (value - q * se, value + q * se), rows.height, checks)


def _detrend(rows: pl.DataFrame, variables: list[str]) -> pd.DataFrame:
    """Each variable minus its least-squares line in t within each entity (the entity intercepts and
    slopes, removed before the regression: Frisch–Waugh–Lovell)."""
    import polars as pl

    t = pl.col("t").cast(pl.Float64)
    tc = t - t.mean().over("key")
    stt = (tc * tc).sum().over("key")
    out = rows.select(
        "key",
        *[
            (pl.col(v) - pl.col(v).mean().over("key") - tc * (tc * pl.col(v)).sum().over("key") / stt).alias(
                v
            )
            for v in variables
        ],
    )
    return out.to_pandas()


def event_study(long: pl.DataFrame, last: int) -> tuple[list[EventTime], dict[str, Any]]:
    """Leads and lags of the first grant (staggered entry) against the never granted, and the joint test
    of the leads: (event times, pre_trends check)."""
    import numpy as np
    import polars as pl
    from pyfixest import feols

    granted = long.filter(pl.col("dose") > 0).group_by("key").agg(pl.col("t").min().alias("first"))
    start = int(long.select(pl.col("t").min()).item())
    frame = (
        long.filter(pl.col("t") <= last)
        .join(granted, on="key", how="left")
        .filter(pl.col("first").is_null() | (pl.col("first") > start))  # granted when first seen: no "before"
        .filter((pl.col("outcome") > 0) & pl.col("outcome").is_finite())
        .with_columns(ly=pl.col("outcome").log(), k=pl.col("t") - pl.col("first") - 1)
    )
    counts = frame.filter(pl.col("k").is_not_null() & (pl.col("k") != -1)).group_by("k").len()
    ks = sorted(int(k) for k, n in counts.iter_rows() if n >= MIN_EVENT)
    check: dict[str, Any] = {
        "leads": 0,
        "p_value": None,
        "entrants": int(frame.filter(pl.col("first").is_not_null())["key"].n_unique()),
    }
    if not ks or not any(k >= 0 for k in ks):
        check["note"] = "no entities first granted after the panel's first period: no event study"
        return [], check
    frame = frame.filter(pl.col("k").is_null() | pl.col("k").is_in([*ks, -1]))
    columns = {k: f"e_{'m' if k < 0 else ''}{abs(k)}" for k in ks}
    frame = frame.with_columns(
        [(pl.col("k") == k).fill_null(False).cast(pl.Float64).alias(c) for k, c in columns.items()]
    )
    data = frame.select("key", "t", "ly", *columns.values()).to_pandas()
    try:
        fit = _quiet(feols, f"ly ~ {' + '.join(columns.values())} | key + t", data=data, vcov={"CRV1": "key"})
    except Exception as exc:
        check["note"] = f"the event study could not be fitted ({type(exc).__name__}: {exc})"
        return [], check
    coef = fit.coef()
    ci = fit.confint()
    vcov = fit._vcov
    names = list(coef.index)
    n_at = dict(counts.iter_rows())
    rows = [
        EventTime(k, float(coef[c]), (float(ci.loc[c].iloc[0]), float(ci.loc[c].iloc[1])), int(n_at[k]))
        for k, c in columns.items()
        if c in names
    ]
    leads = [names.index(c) for k, c in columns.items() if k < -1 and c in names]
    check["leads"] = len(leads)
    if leads:
        from scipy.stats import chi2

        b = coef.to_numpy()[leads]
        v = vcov[np.ix_(leads, leads)]
        stat = float(b @ np.linalg.pinv(v) @ b)
        check["p_value"] = round(float(chi2.sf(stat, len(leads))), 6)
    return rows, check
