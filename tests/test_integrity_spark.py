"""The integrity flags on Spark (pyspark, local mode): the same flagged rows, entity counts and bunching as
DuckDB, on the planted sample and on a dense generated set (no planting: an exact order count) where bursts
of one buyer happen by chance."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from chuanliu_cli.engines.duckdb import DuckDBEngine
from chuanliu_cli.periods import parse_period
from chuanliu_cli.rules.model import Integrity
from chuanliu_cli.rules.parser import default_ruleset_path, load_ruleset
from chuanliu_cli.scoring.integrity import ROW_COLUMNS, entity_flags, integrity_report, rows_query
from chuanliu_cli.scoring.pipeline import score_period
from tests.conftest import REPO

pytestmark = pytest.mark.spark


@pytest.fixture(scope="module")
def spark() -> Iterator[Any]:
    from chuanliu_cli.engines.spark import spark_session

    session = spark_session("local[2]")
    yield session
    session.stop()


@pytest.fixture(scope="module")
def dense(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """100k orders of 8 merchants: their regular buyers order in bursts by chance."""
    from chuanliu_cli.sample import generate_sample

    out = tmp_path_factory.mktemp("dense")
    generate_sample(out, merchants=8, months=3, end="2023-05", seed=11, fmt="parquet", orders=100_000)
    return out


def _engines(spark: Any, data: Path) -> tuple[Any, Any]:
    from chuanliu_cli.engines.spark import SparkEngine, SparkSettings
    from chuanliu_cli.ingest.loader import LoadOptions, discover, load_files
    from chuanliu_cli.store.database import memory_database

    db = memory_database()
    load_files(db, discover(data), LoadOptions())
    return DuckDBEngine(db.con), SparkEngine.open(SparkSettings(data=str(data)), spark)


def _sorted(frame: pl.DataFrame) -> pl.DataFrame:
    frame = frame.with_columns(pl.col("amount").cast(pl.Float64), pl.col("time").cast(pl.Datetime("us")))
    return frame.sort(list(ROW_COLUMNS), nulls_last=True)


@pytest.mark.parametrize(
    ("data", "integrity"),
    [
        ("sample", Integrity()),
        ("dense", Integrity()),
        ("dense", Integrity(brushing_orders=2, brushing_within=7.5, idle_min_viewers_per_hour=40.5)),
    ],
    ids=["sample", "dense", "dense-tuned"],
)
def test_spark_flags_the_same_rows(spark: Any, dense: Path, data: str, integrity: Integrity) -> None:
    duck, engine = _engines(spark, REPO / "sample_data" if data == "sample" else dense)
    with engine:
        for month in ("2023-04", "2023-05"):
            period = parse_period(month)
            a = duck.query(rows_query(integrity, period, "duckdb"))
            b = engine.query(rows_query(integrity, period, "spark"))
            assert a.height > 0 or month == "2023-04"
            assert _sorted(a).equals(_sorted(b)), month
            for key in ("shop_id", "promoter_id"):
                x, y = (entity_flags(e, integrity, period, key).sort("key") for e in (duck, engine))
                assert x.equals(y), (month, key)


def test_spark_reports_the_same_bunching_and_scores(spark: Any, dense: Path) -> None:
    ruleset = load_ruleset(default_ruleset_path())
    period = parse_period("2023-05")
    duck, engine = _engines(spark, dense)
    with engine:
        reports = []
        for e in (duck, engine):
            run = score_period(e, ruleset, period)
            reports.append(integrity_report(e, ruleset, period, run.scorecards["merchant"], True))
    a, b = reports
    assert a.flags == b.flags and a.bunching == b.bunching
    assert {f.flag for f in a.flags if f.rows} >= {"brushing", "suspicious"}
