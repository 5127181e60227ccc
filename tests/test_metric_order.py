"""The metric frame comes in key order whichever engine computed it: DuckDB sorts in the query (faster than
polars at millions of keys), an engine that returns rows in any order is sorted after (scoring/pipeline.py
compute_metrics); the rest of scoring relies on that order (the result order's fast path)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import duckdb
import polars as pl

from chuanliu_cli.engines.duckdb import DuckDBEngine
from chuanliu_cli.periods import parse_period
from chuanliu_cli.rules.effective import ruleset_for_period
from chuanliu_cli.scoring.pipeline import compute_metrics
from chuanliu_cli.store.database import memory_database

REPO = Path(__file__).resolve().parent.parent


def test_duckdb_sorts_when_asked() -> None:
    engine = DuckDBEngine(duckdb.connect())
    sql = "SELECT * FROM (VALUES ('b', 1), ('a', 2), ('c', 3), ('aa', 4)) AS t(k, v)"
    assert engine.query(sql, order_by="k")["k"].to_list() == ["a", "aa", "b", "c"]


class Shuffled:
    """DuckDB's rows in reverse key order, as an engine that does not sort (Spark) may return them."""

    dialect = "duckdb"

    def __init__(self, engine: DuckDBEngine) -> None:
        self.engine = engine
        self.asked: list[str | None] = []

    def query(self, sql: str, order_by: str | None = None) -> pl.DataFrame:
        self.asked.append(order_by)
        frame = self.engine.query(sql)
        return frame.sort(frame.columns[0], descending=True)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.engine, name)


def test_metrics_are_in_key_order_from_any_engine() -> None:
    from chuanliu_cli.ingest.discover import discover
    from chuanliu_cli.ingest.loader import LoadOptions, load_files

    db = memory_database(None)
    try:
        load_files(db, discover(REPO / "sample_data"), LoadOptions())
        ruleset, period = ruleset_for_period(None, "2023-05", check=True)
        assert period == parse_period("2023-05")
        sc = ruleset.scorecard("merchant")
        sorted_by_duckdb = compute_metrics(DuckDBEngine(db.con), ruleset, sc, period)
        shuffled = Shuffled(DuckDBEngine(db.con))
        sorted_after = compute_metrics(shuffled, ruleset, sc, period)
    finally:
        db.con.close()
    assert shuffled.asked == ["shop_id"]
    keys = sorted_by_duckdb["shop_id"].to_list()
    assert keys == sorted(keys) and len(keys) > 50
    assert sorted_after.equals(sorted_by_duckdb)
