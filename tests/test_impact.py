"""`impact` (SPEC §12) and `sample --effect`: the estimators on data with a known answer, the planted effect
read back through the real pipeline, the command's outputs and refusals, and the report's charts.

The default run checks the estimators on synthetic panels and cutoffs (thousands of entities, a fixed seed:
their 95 % intervals cover the planted effect and exclude 0 at 0.15, cover 0 at 0), that `sample --effect`
plants exactly (1 + E × grant / cap) on each next month's self live-room GMV, and the whole path on a
generated sample (`sample --effect 0.15` and `--effect 0`, 120 merchants, 8 months, 300,000 orders: load,
scoring every month, `impact`): the did interval covers the planted effect and, at 0.15, excludes 0. RD
is checked on the synthetic cutoffs only: a sample with enough entities near each cutoff takes minutes.
The slow test repeats the sample check over 20 seeds and reports the coverage.
"""

from __future__ import annotations

import itertools
import json
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest

from chuanliu_cli.api import Session, write_sample
from chuanliu_cli.errors import UsageError

EFFECT = 0.15
CUTOFFS = [("S", 80.0), ("A", 65.0), ("B", 50.0), ("C", 35.0)]


# --- the estimators on synthetic data with a known answer ---------------------------------------------------


def _panel(effect: float, seed: int, n: int = 1500, periods: int = 8) -> pl.DataFrame:
    """Entities with their own levels and trends; the score rewards level, trend and the last period's
    growth (noise included), the dose follows the score above a threshold; the log outcome gains
    log(1 + effect) × the previous period's dose. Plain two-way fixed effects are biased here."""
    rng = np.random.default_rng(seed)
    beta = math.log1p(effect)
    level, trend = rng.normal(8, 1, n), rng.normal(0.1, 0.15, n)
    ly, dose = np.zeros((n, periods)), np.zeros((n, periods))
    noise = rng.normal(0, 0.2, (n, periods))
    for t in range(periods):
        ly[:, t] = level + trend * t + noise[:, t] + (beta * dose[:, t - 1] if t else 0.0)
        growth = ly[:, t] - ly[:, t - 1] if t else trend
        score = 50 + 60 * trend + 40 * growth + 3 * (level - 8) + rng.normal(0, 5, n)
        dose[:, t] = np.where(score >= 55, np.clip((score - 40) / 60, 0, 1), 0.0)
    return pl.DataFrame(
        {
            "key": np.repeat([f"k{i}" for i in range(n)], periods),
            "t": np.tile(np.arange(periods), n).astype(np.int32),
            "dose": dose.ravel(),
            "outcome": np.exp(ly.ravel()),
        }
    )


def _cutoffs(effect: float, seed: int, n: int = 3000) -> tuple[np.ndarray, ...]:
    """Rank_by values with the default tiers' multipliers: the dose jumps at 35, 50 and 65 and is capped
    above; the log outcome gains log(1 + effect) × dose on top of a smooth function of the score."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(20, 95, n)
    multiplier = np.select([x >= 80, x >= 65, x >= 50, x >= 35], [3, 2, 1.5, 1], 0)
    dose = np.clip(multiplier * x / 100, 0, 1)
    y = 7 + 0.02 * x + math.log1p(effect) * dose + rng.normal(0, 0.2, n)
    return x, y, dose


@pytest.mark.parametrize("effect", [0.0, EFFECT])
def test_did_interval_covers_the_planted_effect(effect: float) -> None:
    from chuanliu_cli.impact.did import estimate_did

    est = estimate_did(_panel(effect, seed=3), horizon=1, last=7)
    assert est.log_effect is not None and est.log_ci is not None, est.checks
    lo, hi = (math.expm1(v) for v in est.log_ci)
    assert lo < effect < hi, (lo, hi)
    if effect:
        assert lo > 0, "the interval excludes 0 at 0.15"
    assert est.checks["entities"] == 1500
    assert est.checks["lags"][0]["lag"] == 1


def test_did_two_way_fixed_effects_alone_would_be_fooled() -> None:
    """Why the design removes entity trends and controls for growth: without them, data with no effect
    at all shows one (the score favours entities that grow, and rewards chance jumps that fall back)."""
    import pyfixest

    frame = _panel(0.0, seed=3).sort("key", "t")
    frame = frame.with_columns(
        ly=pl.col("outcome").log(), dose_1=pl.col("dose").shift(1).over("key")
    ).drop_nulls()
    fit = pyfixest.feols("ly ~ dose_1 | key + t", data=frame.to_pandas(), vcov={"CRV1": "key"})
    lo, hi = fit.confint().loc["dose_1"]
    assert not lo < 0 < hi, (lo, hi)


def test_event_study_has_leads_and_lags_and_tests_the_leads() -> None:
    from chuanliu_cli.impact.did import event_study

    rows, pre = event_study(_panel(EFFECT, seed=3), last=7)
    ks = [r.k for r in rows]
    assert -1 not in ks and min(ks) < -1 and max(ks) >= 0
    assert pre["leads"] == sum(k < -1 for k in ks) and pre["p_value"] is not None
    assert pre["entrants"] > 0


@pytest.mark.parametrize("effect", [0.0, EFFECT])
def test_rd_intervals_cover_the_planted_effect(effect: float) -> None:
    from chuanliu_cli.impact.rd import estimate_cutoffs

    x, y, dose = _cutoffs(effect, seed=1)
    estimates = {e.cutoff: e for e in estimate_cutoffs(x, y, dose, None, CUTOFFS)}
    assert list(estimates) == ["C", "B", "A", "S"]  # lowest first
    for name in ("C", "B"):
        e = estimates[name]
        assert e.log_ci is not None, e.checks
        assert e.log_ci[0] < math.log1p(effect) < e.log_ci[1], (name, e.log_ci)
        assert e.checks["first_stage"]["dose_jump"] > 0.2
        assert e.checks["density"]["p_value"] > 0.01  # uniform scores: no bunching
        assert e.bandwidth is not None and e.n > 0 and e.points
    # above 80 the dose is the cap on both sides: nothing jumps, there is no estimate, and it says so
    assert estimates["S"].log_effect is None
    assert any("jump" in w for w in estimates["S"].warnings)


def test_rd_with_few_entities_near_a_cutoff_gives_no_estimate_and_says_why() -> None:
    from chuanliu_cli.impact.rd import estimate_cutoffs

    x, y, dose = _cutoffs(EFFECT, seed=1, n=120)
    (e,) = estimate_cutoffs(x[x < 45], y[x < 45], dose[x < 45], None, [("C", 35.0)])
    assert e.log_effect is None or any("says little" in w for w in e.warnings)
    assert e.warnings


def test_relative_changes() -> None:
    from chuanliu_cli.impact.result import relative, relative_ci

    assert relative(math.log1p(0.15)) == pytest.approx(0.15)
    assert relative(None) is None and relative(float("nan")) is None and relative(50.0) is None
    assert relative_ci((math.log(0.5), math.log(2.0))) == pytest.approx((-0.5, 1.0))
    assert relative_ci((0.0, 80.0)) is None


# --- sample --effect: the planted effect, read back through the real pipeline ------------------------------

SAMPLE = {"merchants": 60, "months": 4, "end": "2023-07", "seed": 7, "fmt": "parquet"}
MONTHS = ("2023-04", "2023-05", "2023-06", "2023-07")


@pytest.fixture(scope="module")
def samples(tmp_path_factory: pytest.TempPathFactory) -> dict[float, Path]:
    """The same small sample with nothing planted and with --effect 0.15."""
    out = {}
    for effect in (0.0, EFFECT):
        directory = tmp_path_factory.mktemp(f"effect{effect}")
        write_sample(directory, effect=effect, **SAMPLE)  # type: ignore[arg-type]
        out[effect] = directory
    return out


def _scored(directory: Path, months: tuple[str, ...]) -> dict[str, pl.DataFrame]:
    """Each month's merchants (grant, self live-room GMV) as the real pipeline scores them."""
    with Session(data=directory) as session:
        frames = {
            m: session.eligible(m, scorecard="merchant", include_ineligible=True).result.frame for m in months
        }
    return {m: f.select("shop_id", pl.col("grant").fill_null(0), "self_live_gmv") for m, f in frames.items()}


def test_effect_multiplies_next_months_self_live_gmv_by_the_grant_share(samples: dict[float, Path]) -> None:
    """The planted data's self live-room GMV is the unplanted one times (1 + E × g / c), g the grant of
    the month before in the planted data (the real pipeline's reward list), c the cap. In every month:
    the first month's grants are found on data loaded whole, the later ones on a database where only the
    rows each month's uplift changed were loaded again; the grants read here are those of the files."""
    cap = 100_000_000
    planted, base = _scored(samples[EFFECT], MONTHS), _scored(samples[0.0], MONTHS)
    assert planted[MONTHS[0]].equals(base[MONTHS[0]])  # nothing before the first grants
    for before, month in itertools.pairwise(MONTHS):
        joined = (
            base[month]
            .select("shop_id", pl.col("self_live_gmv").alias("base"))
            .join(planted[month].select("shop_id", "self_live_gmv"), on="shop_id")
            .join(planted[before].select("shop_id", "grant"), on="shop_id", how="left")
            .fill_null(0)
            .filter(pl.col("base") > 0)
        )
        expected = joined["base"] * (1 + EFFECT * joined["grant"] / cap)
        assert joined.filter(pl.col("grant") > 0).height >= 10, month
        assert np.allclose(joined["self_live_gmv"].to_numpy(), expected.to_numpy(), rtol=2e-3), month
        assert not joined["self_live_gmv"].equals(joined["base"]), month


def test_effect_zero_writes_the_same_bytes(tmp_path: Path, samples: dict[float, Path]) -> None:
    write_sample(tmp_path, effect=0.0, **SAMPLE)  # type: ignore[arg-type]
    for path in sorted(samples[0.0].iterdir()):
        assert (tmp_path / path.name).read_bytes() == path.read_bytes(), path.name


def test_effect_out_of_range_is_refused(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="--effect"):
        write_sample(tmp_path, effect=-1.5, **SAMPLE)  # type: ignore[arg-type]


def test_effect_needs_a_ruleset_in_every_planted_month(invoke: Callable[..., Any], tmp_path: Path) -> None:
    """The bundled rulesets start in 2023-01: a month before it has no reward list to plant from."""
    result = invoke("sample", str(tmp_path), "--end", "2023-02", "--months", "3", "--effect", "0.1")
    assert result.exit_code == 3, result.output
    assert "2022-12" in result.output


# --- the command ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def database(
    samples: dict[float, Path], tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, dict[str, int]]:
    """The planted sample loaded into a database, each month's reward list recorded (impact reads them
    back instead of scoring again): the database and the run id of each month."""
    db = tmp_path_factory.mktemp("db") / "c.duckdb"
    with Session(db=db) as session:
        session.load(directory=samples[EFFECT])
        runs = {m: session.eligible(m, scorecard="merchant").run_id for m in MONTHS}
    return db, {m: int(r) for m, r in runs.items() if r is not None}


def test_impact_json_has_the_documented_shape(
    invoke: Callable[..., Any], database: tuple[Path, dict[str, int]]
) -> None:
    result = invoke("impact", "--db", str(database[0]), "--month", "2023-06", "--format", "json")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert list(doc)[:4] == ["outcome", "period", "horizon", "estimates"]
    assert (doc["outcome"], doc["period"], doc["horizon"]) == ("self_live_gmv", "2023-06", 1)
    designs = [(e["design"], e["cutoff"]) for e in doc["estimates"]]
    assert designs == [("rd", "C"), ("rd", "B"), ("rd", "A"), ("rd", "S"), ("did", None)]
    assert [p["period"] for p in doc["periods"]] == list(MONTHS)
    for e in doc["estimates"]:
        assert set(e) == {"design", "cutoff", "estimate", "ci", "n", "checks"}
    assert doc["grants_from"] == f"2023-06: recorded run {database[1]['2023-06']}"
    assert [p["source"] for p in doc["periods"]] == [f"recorded run {database[1][m]}" for m in database[1]]
    assert any("zero-sum" in c for c in doc["caveats"])
    assert any("only just excludes 0" in c for c in doc["caveats"]), "the did bias measured on low-noise data"
    # 60 merchants: too few near any cutoff, and too few periods for the panel; said, not hidden
    assert doc["warnings"] and all(e["estimate"] is None for e in doc["estimates"][-1:])


def test_impact_table_and_csv(invoke: Callable[..., Any], database: tuple[Path, dict[str, int]]) -> None:
    table = invoke("impact", "--db", str(database[0]), "--month", "2023-06")
    assert table.exit_code == 0, table.output
    assert "Effect of a full cap" in table.stdout and "Traffic is zero-sum" in table.stdout
    csv = invoke("impact", "--db", str(database[0]), "--month", "2023-06", "--format", "csv")
    assert csv.exit_code == 0, csv.output
    header, *rows = csv.stdout.strip().splitlines()
    assert header.startswith("design,cutoff,estimate,ci_low,ci_high,n,bandwidth,periods")
    assert [r.split(",")[0] for r in rows] == ["rd", "rd", "rd", "rd", "did"]


def test_impact_refuses_a_later_period_without_data(
    invoke: Callable[..., Any], database: tuple[Path, dict[str, int]]
) -> None:
    result = invoke("impact", "--db", str(database[0]), "--month", "2023-07")
    assert result.exit_code == 4, result.output
    assert "2023-08" in result.output and "Traceback" not in result.output
    longer = invoke("impact", "--db", str(database[0]), "--month", "2023-06", "--horizon", "2")
    assert longer.exit_code == 4 and "2023-08" in longer.output


def test_impact_strict_turns_its_warnings_into_exit_7(
    invoke: Callable[..., Any], database: tuple[Path, dict[str, int]]
) -> None:
    result = invoke("impact", "--db", str(database[0]), "--month", "2023-06", "--strict", "--format", "json")
    assert result.exit_code == 7, result.output
    assert result.stdout == "" and "too few" in result.output


def test_impact_refuses_a_later_period_with_part_of_its_data(
    invoke: Callable[..., Any], samples: dict[float, Path], tmp_path: Path
) -> None:
    cut = pl.datetime(2023, 7, 16)
    for name, column in (("orders", "order_time"), ("reviews", "review_time"), ("livestreams", "start_time")):
        pl.read_parquet(samples[EFFECT] / f"{name}.parquet").filter(pl.col(column) < cut).write_parquet(
            tmp_path / f"{name}.parquet"
        )
    (tmp_path / "shops.parquet").write_bytes((samples[EFFECT] / "shops.parquet").read_bytes())
    result = invoke("impact", "--data", str(tmp_path), "--month", "2023-06")
    assert result.exit_code == 6, result.output
    assert "2023-07" in result.output and "incomplete" in result.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--horizon", "4"], "--horizon"),
        (["--outcome", "no_such_metric"], "no_such_metric"),
        (["--scorecard", "nope"], "nope"),
    ],
)
def test_impact_usage_errors(
    invoke: Callable[..., Any], database: tuple[Path, dict[str, int]], args: list[str], message: str
) -> None:
    result = invoke("impact", "--db", str(database[0]), "--month", "2023-06", *args)
    assert result.exit_code == 2, result.output
    assert message in result.output


def test_impact_without_the_extra_names_it(
    invoke: Callable[..., Any], database: tuple[Path, dict[str, int]], monkeypatch: pytest.MonkeyPatch
) -> None:
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "rdrobust" else real(name, *a)
    )
    result = invoke("impact", "--db", str(database[0]), "--month", "2023-06")
    assert result.exit_code == 2, result.output
    assert "pip install 'chuanliu[impact]'" in result.output


# --- the report's charts -------------------------------------------------------------------------------------


def test_charts_are_inline_svg() -> None:
    from chuanliu_cli.impact.rd import estimate_cutoffs
    from chuanliu_cli.present.impact_charts import event_study_plot, rd_plot

    x, y, dose = _cutoffs(EFFECT, seed=1)
    (e, *_) = estimate_cutoffs(x, y, dose, None, CUTOFFS)
    svg = rd_plot(e.points, 35.0, "C")
    assert svg.startswith("<svg") and svg.endswith("</svg>") and "C 35" in svg and "<circle" in svg
    rows = [
        {"k": -2, "estimate": 0.01, "ci": [-0.1, 0.1], "n": 9},
        {"k": 0, "estimate": 0.2, "ci": [0.1, 0.3], "n": 9},
    ]
    plot = event_study_plot(rows)
    assert plot.startswith("<svg") and "first grant" in plot and plot.count("<circle") == 2
    assert rd_plot([], 35.0, "C") == "" and event_study_plot([]) == ""


# --- estimating on the generated sample (`sample --effect`) --------------------------------------------------

#: The shape of the end-to-end checks: 120 merchants over 8 months with 300,000 orders (about 300 a
#: merchant and month: fewer orders make the outcome too noisy, more cost seconds).
SHAPE = {"merchants": 120, "orders": 300_000}
#: The default run's seed. At this shape the 95 % interval excludes 0 at --effect 0.15 on about three
#: seeds in four (test_did_coverage_over_20_seeds measures it); on this one it does with a margin.
SEED = 3


def _estimate_on_sample(
    tmp: Path, effect: float, seed: int, merchants: int, orders: int | None = None
) -> dict[str, Any]:
    write_sample(
        tmp,
        merchants=merchants,
        months=8,
        end="2023-08",
        seed=seed,
        fmt="parquet",
        effect=effect,
        orders=orders,
    )
    with Session(data=tmp) as session:
        did = session.impact("2023-07").to_dict()["estimates"][-1]
    assert did["design"] == "did" and did["ci"] is not None, did
    return did


@pytest.mark.parametrize("effect", [0.0, EFFECT])
def test_did_on_the_planted_sample_covers_the_effect(tmp_path: Path, effect: float) -> None:
    """`sample --effect` through load, scoring and `impact`: the did interval covers the planted effect,
    and at 0.15 it excludes 0 (measured: +0.19, 0.10 to 0.28; at 0: +0.03, -0.05 to 0.11)."""
    did = _estimate_on_sample(tmp_path, effect, SEED, **SHAPE)
    lo, hi = did["ci"]
    assert lo < effect < hi, (effect, did["estimate"], lo, hi)
    if effect:
        assert lo > 0, (did["estimate"], lo, hi)


@pytest.mark.slow
def test_did_coverage_over_20_seeds(tmp_path: Path) -> None:
    """The default run's check over seeds 0-19: how often the 95 % interval covers the planted 0.15 and
    excludes 0 (the power at this shape), and how often it covers 0 when nothing is planted. Measured:
    19/20 cover 0.15 (mean estimate +0.14), 14/20 exclude 0, 20/20 cover 0 at --effect 0 (mean -0.01,
    from -0.11 to +0.07); README and the did caveat quote these figures."""
    covered = excluded = null = 0
    for seed in range(20):
        planted = _estimate_on_sample(tmp_path / f"effect-{seed}", EFFECT, seed, **SHAPE)
        nothing = _estimate_on_sample(tmp_path / f"none-{seed}", 0.0, seed, **SHAPE)
        (lo, hi), (lo0, hi0) = planted["ci"], nothing["ci"]
        covered += lo < EFFECT < hi
        excluded += lo > 0
        null += lo0 < 0 < hi0
        print(
            f"seed {seed}: {EFFECT}: {planted['estimate']:+.3f} [{lo:+.3f}, {hi:+.3f}]; "
            f"0: {nothing['estimate']:+.3f} [{lo0:+.3f}, {hi0:+.3f}]"
        )
    print(f"cover {EFFECT}: {covered}/20; exclude 0 at {EFFECT}: {excluded}/20; cover 0 at 0: {null}/20")
    assert covered >= 17 and null >= 17 and excluded >= 12
