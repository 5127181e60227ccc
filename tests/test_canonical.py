"""The canonicalization's trees: primitives rendered for both dialects, and the loader running what they render."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import duckdb
import pytest
from sqlglot import exp

from chuanliu_cli.ingest import canonical, loader
from chuanliu_cli.ingest.canonical import Primitives, conversion_sql, install_macros
from chuanliu_cli.ingest.loader import LoadOptions, load_files
from chuanliu_cli.ingest.mapping import default_mapping
from chuanliu_cli.store.database import memory_database

X = exp.column("x", quoted=True)
DUCK, SPARK = Primitives("duckdb"), Primitives("spark")


@pytest.mark.parametrize(
    ("build", "duck", "spark"),
    [
        (
            lambda s: s.full_match(X, "[0-9]{5}"),
            "REGEXP_FULL_MATCH(\"x\", '[0-9]{5}')",
            "`x` RLIKE '^(?:[0-9]{5})\\\\z'",
        ),
        (
            lambda s: s.replace_all(X, "Z$", "+00:00"),
            "REGEXP_REPLACE(\"x\", 'Z$', '+00:00', 'g')",
            "REGEXP_REPLACE(`x`, 'Z\\\\z', '+00:00')",
        ),
        (
            lambda s: s.try_cast(X, "DECIMAL(38,6)"),
            'TRY_CAST("x" AS DECIMAL(38, 6))',
            "TRY_CAST(`x` AS DECIMAL(38, 6))",
        ),
        (lambda s: s.cast(X, "TIMESTAMP"), 'CAST("x" AS TIMESTAMP)', "CAST(`x` AS TIMESTAMP_NTZ)"),
        (
            lambda s: s.to_local(X, "Asia/Shanghai"),
            "TIMEZONE('Asia/Shanghai', \"x\")",
            "CAST(FROM_UTC_TIMESTAMP(CAST(`x` AS TIMESTAMP_LTZ), 'Asia/Shanghai') AS TIMESTAMP_NTZ)",
        ),
        (
            lambda s: s.lookup(X, {"a": "b"}),
            "CASE \"x\" WHEN 'a' THEN 'b' ELSE NULL END",
            "TRY_ELEMENT_AT(MAP('a', 'b'), `x`)",
        ),
        (lambda s: s.concat_ws("; ", [X, X]), 'CONCAT_WS(\'; \', "x", "x")', "CONCAT_WS('; ', `x`, `x`)"),
    ],
    ids=["full_match", "replace_all", "try_cast", "timestamp", "to_local", "lookup", "concat_ws"],
)
def test_primitive_renderings(build: Any, duck: str, spark: str) -> None:
    assert build(DUCK).sql("duckdb") == duck
    assert build(SPARK).sql("spark") == spark


def test_spark_reads_epoch_ms_and_excel_serials_exactly() -> None:
    assert DUCK.epoch_ms(X, "UTC").sql("duckdb") == (
        "TIMEZONE('UTC', TO_TIMESTAMP(CAST(\"x\" AS BIGINT) / 1000.0))"
    )
    assert "TIMESTAMP_MILLIS(CAST(`x` AS BIGINT))" in SPARK.epoch_ms(X, "UTC").sql("spark")
    # 1899-12-30 (Excel's day 0) is -2209161600 s from the Unix epoch
    assert "+ (-2209161600000000)" in SPARK.excel_serial(X).sql("spark")


def test_both_dialects_render_the_whole_query() -> None:
    tm = default_mapping().for_table("orders")
    present = {c.name: "VARCHAR" for c in tm.table.columns if not c.derived}
    duck, names = conversion_sql(tm, present, "Asia/Shanghai")
    spark, _ = conversion_sql(tm, present, "Asia/Shanghai", source="raw", dialect="spark")
    assert names == list(tm.table.names)
    assert "`" not in duck and "TRY_STRPTIME" in duck
    assert '"order_id"' not in spark and "TRY_TO_TIMESTAMP" in spark and "TRY_STRPTIME" not in spark
    assert conversion_sql(tm, present, "Asia/Shanghai")[0] is duck  # rendered once per column set


def test_the_rendered_query_converts_cells(tmp_path: Path) -> None:
    """The DuckDB rendering over a relation of text cells: values and reasons."""
    tm = default_mapping().for_table("orders")
    cells = {
        "order_id": ["o1", "o2"],
        "shop_id": [" s1 ", "s1"],
        "buyer_id": ["b1", "b2"],
        "sale_mode": ["自营", "self"],
        "order_time": ["44986.268380", "2023-02-30 10:00:00"],
        "paid_amount": ["1.2万", "¥1,234.50"],
        "status": ["30", "unknown"],
    }
    con = duckdb.connect()
    columns = ", ".join(f"unnest({v!r}) AS {k}" for k, v in cells.items())
    con.execute(f"CREATE TABLE batch AS SELECT {columns}, unnest([2, 3]) AS __line, NULL::VARCHAR AS __shape")
    sql, _ = conversion_sql(tm, {c: "VARCHAR" for c in cells}, "Asia/Shanghai")
    rows = con.execute(
        f"SELECT order_id, shop_id, cast(order_time AS VARCHAR), paid_amount, status, __reason FROM ({sql})"
    ).fetchall()
    assert rows[0][:5] == ("o1", "s1", "2023-03-01 06:26:28.032", 12000, "paid")
    assert rows[0][5] is None
    assert rows[1][5] == (
        "column order_time: '2023-02-30 10:00:00' is not a timestamp (e.g. 2023-05-01 20:00:00); "
        "column status: unknown value 'unknown' (expected closed, completed, paid, pending, received, refunded, "
        "shipped)"
    )


def test_macros_are_the_same_trees() -> None:
    con = duckdb.connect()
    install_macros(con, "Asia/Shanghai")
    row = con.execute("SELECT chl_decimal('1.2万'), cast(chl_time('1683129600000') AS VARCHAR)").fetchone()
    assert row == (12000, "2023-05-04 00:00:00")


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_the_loader_runs_the_rendered_sql(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fmt: str) -> None:
    """Both of the loader's paths (batches, and a Parquet file read by DuckDB) get their SQL from
    canonical.conversion_sql, in the DuckDB dialect, and run exactly that."""
    calls: list[tuple[str, str]] = []

    def spy(*args: Any, **kwargs: Any) -> tuple[str, list[str]]:
        sql, names = canonical.conversion_sql(*args, **kwargs)
        calls.append((kwargs.get("dialect", "duckdb"), sql))
        return sql, names

    monkeypatch.setattr(loader, "conversion_sql", spy)
    path = tmp_path / f"orders.{fmt}"
    con = duckdb.connect()
    con.execute(
        "CREATE TABLE t AS SELECT 'o1' AS order_id, 's1' AS shop_id, 'b1' AS buyer_id, 'self' AS sale_mode, "
        "'2023-05-01 20:00:00' AS order_time, '5' AS paid_amount, 'paid' AS status"
    )
    con.execute(f"COPY t TO '{path}' (FORMAT {fmt})")
    db = memory_database()
    executed: list[str] = []
    inner = db.con
    real = inner.execute

    class Recording:
        def __getattr__(self, name: str) -> Any:
            return getattr(inner, name)

        def execute(self, sql: str, *args: Any) -> Any:
            executed.append(sql)
            return real(sql, *args)

    db.con = Recording()  # type: ignore[assignment]
    load_files(db, [("orders", path)], LoadOptions())
    assert calls and all(d == "duckdb" for d, _ in calls)
    assert any(sql in statement for _, sql in calls for statement in executed)
    assert real("SELECT count(*) FROM orders").fetchone() == (1,)
