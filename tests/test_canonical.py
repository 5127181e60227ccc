"""The canonicalization's trees: primitives rendered for both dialects, and the loader running what they render."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import duckdb
import pytest
from sqlglot import exp

from chuanliu_cli.ingest import conversion, loader
from chuanliu_cli.ingest.canonical import Primitives, install_macros
from chuanliu_cli.ingest.conversion import conversion_sql
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
    conversion.conversion_sql, in the DuckDB dialect, and run exactly that."""
    calls: list[tuple[str, str]] = []

    def spy(*args: Any, **kwargs: Any) -> tuple[str, list[str]]:
        sql, names = conversion.conversion_sql(*args, **kwargs)
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


# --- issue #19 point 1: ids damaged or protected by spreadsheets --------------------------------------------

ORDER_HEADER = "order_id,shop_id,buyer_id,item_id,promoter_id,sale_mode,order_time,paid_amount,status\n"


def _load_text(tmp_path: Path, table: str, text: str, name: str | None = None) -> tuple[Any, Any]:
    path = tmp_path / (name or f"{table}.csv")
    path.write_text(text, encoding="utf-8")
    db = memory_database()
    [result] = load_files(db, [(table, path)], LoadOptions(max_reject_rate=1.0))
    return db.con, result


def test_ids_in_scientific_notation_are_refused_with_the_cause(tmp_path: Path) -> None:
    """Six orders of two shops whose 订单号 a spreadsheet turned into 1.23457E+15 are six rejects, not one
    row; every id column is checked the same way."""
    rows = [f"1.23457E+15,s{i % 2},b{i},i1,,self,2023-05-01 20:00:00,5,paid\n" for i in range(6)]
    rows += [
        "o7,1.2345678901234568e+15,b7,i1,,self,2023-05-01 20:00:00,5,paid\n",
        "o8,s1,6.49666E+15,i1,,self,2023-05-01 20:00:00,5,paid\n",
        "o9,s1,b9,2.70481E+15,,self,2023-05-01 20:00:00,5,paid\n",
        "o10,s1,b10,i1,1.2E+10,self,2023-05-01 20:00:00,5,paid\n",
        # not what a spreadsheet writes (no decimal point, no signed exponent): a code, kept
        "12E34,s1,b11,i1,,self,2023-05-01 20:00:00,5,paid\n",
    ]
    con, result = _load_text(tmp_path, "orders", ORDER_HEADER + "".join(rows))
    assert result.rejected == 10 and result.duplicates == 0
    stored = con.execute("SELECT line, reason FROM rejected_rows").fetchall()
    reasons = [reason for _, reason in sorted(stored, key=lambda r: int(r[0].split()[-1]))]
    assert reasons[:6] == ["order_id '1.23457E+15' was rounded by a spreadsheet; export ids as text"] * 6
    assert reasons[6:] == [
        "shop_id '1.2345678901234568e+15' was rounded by a spreadsheet; export ids as text",
        "buyer_id '6.49666E+15' was rounded by a spreadsheet; export ids as text",
        "item_id '2.70481E+15' was rounded by a spreadsheet; export ids as text",
        "promoter_id '1.2E+10' was rounded by a spreadsheet; export ids as text",
    ]
    assert con.execute("SELECT order_id FROM orders").fetchall() == [("12E34",)]


@pytest.mark.parametrize("table", ["reviews", "livestreams", "shops"])
def test_scientific_ids_refused_in_every_table(tmp_path: Path, table: str) -> None:
    text = {
        "reviews": "review_id,order_id,shop_id,quality_score,review_time\n"
        "1.23457E+15,o1,s1,5,2023-05-02 10:00:00\n",
        "livestreams": "live_id,shop_id,host_type,start_time,duration_minutes\n1.23457E+15,s1,self,2023-05-02 10:00,5\n",
        "shops": "shop_id,shop_name\n1.23457E+15,x\n",
    }[table]
    _con, result = _load_text(tmp_path, table, text)
    key = {"reviews": "review_id", "livestreams": "live_id", "shops": "shop_id"}[table]
    assert [r.reason for r in result.rejects] == [
        f"{key} '1.23457E+15' was rounded by a spreadsheet; export ids as text"
    ]


def test_protected_ids_are_normalized(tmp_path: Path) -> None:
    """="6496664491185286", a leading ', tabs, no-break and ideographic spaces, and a trailing .0 or .00 on a
    whole id are what the id is without them (text cells; typed cells below)."""
    cells = [
        '"=""6496664491185286"""',  # the CSV form of ="6496664491185286"
        "'6496664491185287",
        "\t6496664491185288\t",
        "\u00a06496664491185289\u00a0",
        "\u30006496664491185290\u3000",
        "2704810274450369.0",
        "2704810274450370.00",
        " '2704810274450371.0 ",
        '"=""000123"""',
        "12.50",  # not a whole number: an id as written
    ]
    rows = [f"{c},s1,b1,\t i1\u00a0,'p1,self,2023-05-01 20:00:00,5,paid\n" for c in cells]
    con, result = _load_text(tmp_path, "orders", ORDER_HEADER + "".join(rows))
    assert result.rejected == 0
    got = con.execute("SELECT order_id, item_id, promoter_id FROM orders ORDER BY order_id").fetchall()
    assert [r[0] for r in got] == sorted(
        [
            "6496664491185286",
            "6496664491185287",
            "6496664491185288",
            "6496664491185289",
            "6496664491185290",
            "2704810274450369",
            "2704810274450370",
            "2704810274450371",
            "000123",
            "12.50",
        ]
    )
    assert {r[1:] for r in got} == {("i1", "p1")}


def test_typed_id_cells_parquet_and_jsonl(tmp_path: Path) -> None:
    """Typed Parquet ids (DOUBLE, DECIMAL with decimals, integers, strings with .0) and JSON numbers load as
    the plain digits; a NaN id is refused."""
    import decimal

    import pyarrow as pa
    import pyarrow.parquet as pq

    base = {
        "buyer_id": pa.array([7.0, 8.0, 9.0, 10.0]),
        "sale_mode": ["self"] * 4,
        "order_time": ["2023-05-01 20:00:00"] * 4,
        "paid_amount": ["5"] * 4,
        "status": ["paid"] * 4,
    }
    table = pa.table(
        {
            "order_id": pa.array([2704810274450369.0, 2.0, 3.5, float("nan")]),
            "shop_id": pa.array([decimal.Decimal("11.00")] * 4, pa.decimal128(20, 2)),
            "item_id": pa.array([12, 13, 14, 15], pa.int64()),
            "promoter_id": ["6496664491185286.0", " 1.0", None, "\u30005"],
            **base,
        }
    )
    pq.write_table(table, tmp_path / "orders.parquet")
    db = memory_database()
    [result] = load_files(db, [("orders", tmp_path / "orders.parquet")], LoadOptions(max_reject_rate=1.0))
    rows = db.con.execute(
        "SELECT order_id, shop_id, buyer_id, item_id, promoter_id FROM orders ORDER BY item_id"
    ).fetchall()
    assert rows == [
        ("2704810274450369", "11", "7", "12", "6496664491185286"),
        ("2", "11", "8", "13", "1"),
        ("3.5", "11", "9", "14", None),
    ]
    assert [r.reason for r in result.rejects] == [
        "order_id 'nan' is not a number, so not an id; export ids as text"
    ]
    jsonl = tmp_path / "orders.jsonl"
    jsonl.write_text(
        '{"order_id": 2704810274450369.0, "shop_id": "s1", "buyer_id": "b1", "sale_mode": "self", '
        '"order_time": "2023-05-01 20:00:00", "paid_amount": 5, "status": "paid"}\n'
        '{"order_id": "2704810274450370.0", "shop_id": "=\\"s1\\"", "buyer_id": 3.0, "sale_mode": "self", '
        '"order_time": "2023-05-01 20:00:00", "paid_amount": 5, "status": "paid"}\n',
        encoding="utf-8",
    )
    db = memory_database()
    load_files(db, [("orders", jsonl)], LoadOptions())
    assert db.con.execute("SELECT order_id, shop_id, buyer_id FROM orders ORDER BY 1").fetchall() == [
        ("2704810274450369", "s1", "b1"),
        ("2704810274450370", "s1", "3"),
    ]


# --- issue #19 point 4: live-session durations as exports write them ---------------------------------------

LIVE_HEADER = "live_id,shop_id,host_type,start_time,end_time,{}\n"


def _sessions(cells: list[str], end: str = "2023-05-01 21:20:00") -> str:
    return "".join(f"l{i},s1,self,2023-05-01 20:00:00,{end},{c}\n" for i, c in enumerate(cells, start=1))


def test_durations_with_units_are_minutes(tmp_path: Path) -> None:
    cells = [
        "1小时20分",
        "1时20分钟",
        "80分钟",
        "01:20:00",
        "1:20",
        "4800秒",
        "80",
        "1小时20分0秒",
        "1 小时 20 分",
    ]
    con, result = _load_text(tmp_path, "livestreams", LIVE_HEADER.format("直播时长") + _sessions(cells))
    assert result.rejected == 0 and not [w for w in result.warnings if "differs" in w]
    assert con.execute("SELECT DISTINCT duration_minutes FROM livestreams").fetchall() == [(80.0,)]
    con, result = _load_text(
        tmp_path,
        "livestreams",
        LIVE_HEADER.format("duration_minutes") + _sessions(["1.5小时"], "2023-05-01 21:30:00"),
    )
    assert con.execute("SELECT duration_minutes FROM livestreams").fetchall() == [(90.0,)]


@pytest.mark.parametrize("header", ["直播时长(秒)", "duration_seconds", "时长（秒）", "直播时长（秒）"])
def test_a_header_naming_seconds_makes_bare_numbers_seconds(tmp_path: Path, header: str) -> None:
    text = LIVE_HEADER.format(header) + _sessions(["4800", "4800.0", "80分钟", "01:20:00", "4800秒"])
    con, result = _load_text(tmp_path, "livestreams", text)
    assert result.rejected == 0
    assert con.execute("SELECT DISTINCT duration_minutes FROM livestreams").fetchall() == [(80.0,)]


def test_a_header_naming_seconds_in_typed_parquet(tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.table(
        {
            "live_id": ["l1", "l2"],
            "shop_id": ["s1", "s1"],
            "host_type": ["self", "self"],
            "start_time": ["2023-05-01 20:00:00"] * 2,
            "duration_seconds": pa.array([4800, 90], pa.int64()),
        }
    )
    pq.write_table(table, tmp_path / "livestreams.parquet")
    db = memory_database()
    load_files(db, [("livestreams", tmp_path / "livestreams.parquet")], LoadOptions())
    assert db.con.execute("SELECT duration_minutes FROM livestreams ORDER BY 1").fetchall() == [
        (1.5,),
        (80.0,),
    ]


def test_a_bare_number_under_a_header_without_unit_stays_minutes(tmp_path: Path) -> None:
    con, _ = _load_text(tmp_path, "livestreams", LIVE_HEADER.format("直播时长") + _sessions(["80"]))
    assert con.execute("SELECT duration_minutes FROM livestreams").fetchall() == [(80.0,)]


def test_impossible_sessions_are_refused_with_their_values(tmp_path: Path) -> None:
    text = (
        LIVE_HEADER.format("直播时长")
        + "l1,s1,self,2023-05-01 20:00:00,,25小时\n"
        + "l2,s1,self,2023-05-01 20:00:00,2023-05-02 20:00:01,\n"
        + "l3,s1,self,2023-05-01 20:00:00,2023-05-01 19:59:00,\n"
        + "l4,s1,self,2023-05-01 20:00:00,,1500\n"
        + "l5,s1,self,2023-05-01 20:00:00,2023-05-02 20:00:00,24小时\n"  # exactly 24 hours: loaded
        + "l6,s1,self,2023-05-01 20:00:00,,一小时\n"
    )
    con, result = _load_text(tmp_path, "livestreams", text)
    assert [r.reason for r in result.rejects] == [
        "column duration_minutes: '25小时' is longer than 24 hours (1500.0 minutes)",
        "column end_time: 2023-05-02 20:00:01 is more than 24 hours after start_time 2023-05-01 20:00:00",
        "column end_time: 2023-05-01 19:59:00 is before start_time 2023-05-01 20:00:00",
        "column duration_minutes: '1500' is longer than 24 hours (1500.0 minutes)",
        "column duration_minutes: '一小时' is not a duration (e.g. 90, 1小时20分, 01:20:00)",
    ]
    assert con.execute("SELECT live_id, duration_minutes FROM livestreams").fetchall() == [("l5", 1440.0)]


def test_a_duration_that_disagrees_with_the_times_is_loaded_and_warned(tmp_path: Path) -> None:
    cells = ["90", "86", "85", "1小时", "2小时", "20", "3小时", "4小时"]  # end − start is 80 minutes
    con, result = _load_text(tmp_path, "livestreams", LIVE_HEADER.format("直播时长") + _sessions(cells))
    assert result.rejected == 0 and con.execute("SELECT count(*) FROM livestreams").fetchone() == (8,)
    [warning] = [w for w in result.warnings if "differs" in w]
    assert warning == (
        f"{result.file}: 7 sessions whose duration_minutes differs from end_time − start_time by more than 5 "
        "minutes, loaded with the duration as given: line 2 (live_id l1): duration_minutes 90, end_time − "
        "start_time 80; line 3 (live_id l2): duration_minutes 86, end_time − start_time 80; line 5 (live_id "
        "l4): duration_minutes 60, end_time − start_time 80; line 6 (live_id l5): duration_minutes 120, "
        "end_time − start_time 80; line 7 (live_id l6): duration_minutes 20, end_time − start_time 80 …"
    )


def test_a_comma_that_separates_no_thousands_refuses_the_cell(tmp_path: Path) -> None:
    """A European spreadsheet's decimal comma (58,71; 1.234,50) and a comma out of the groups of three
    (1,2345) are refused with the cause: dropping the commas read them as 5871, 1.2345 and 12345. Commas
    that group thousands, with ¥, 元, spaces or 万 around them, still read."""
    cells = ["58,71", "1.234,50", "1,2345", "¥ 12,5 元", "0,5万"]
    good = {
        "1,234.50": "1234.50",
        "¥12,345,678": "12345678.00",
        "1,234.5万": "12345000.00",
        "1,234": "1234.00",
    }
    rows = [f'o{i},s1,b1,i1,,self,2023-05-01 20:00:00,"{c}",paid\n' for i, c in enumerate(cells)]
    rows += [f'g{i},s1,b1,i1,,self,2023-05-01 20:00:00,"{c}",paid\n' for i, c in enumerate(good)]
    con, result = _load_text(tmp_path, "orders", ORDER_HEADER + "".join(rows))
    advice = (
        " has a comma that separates no thousands (a decimal comma?); export numbers with a decimal point"
    )
    assert [r.reason for r in result.rejects] == [
        f"column paid_amount: '{c}'{advice} (1234.50 or 1,234.50)" for c in cells
    ]
    stored = con.execute(
        "SELECT order_id, CAST(paid_amount AS VARCHAR) FROM orders ORDER BY order_id"
    ).fetchall()
    assert stored == [(f"g{i}", v) for i, v in enumerate(good.values())]


def test_a_decimal_comma_is_null_in_both_dialects_renderings() -> None:
    """The comma rule is one tree rendered for DuckDB and Spark (Spark reads such cells in
    tests/test_spark.py's MESSY_ORDERS)."""
    from chuanliu_cli.ingest.canonical import decimal_from_text

    for sql in (DUCK, SPARK):
        assert "(,[0-9]{3})+" in decimal_from_text(X, sql).sql(sql.dialect)
    con = duckdb.connect()
    install_macros(con, "Asia/Shanghai")
    cells = ["58,71", "1.234,50", "1,2345", ",5", "1,234.50", "1,234"]
    got = con.execute("SELECT chl_decimal(x) FROM (SELECT unnest(?::VARCHAR[]) AS x)", [cells]).fetchall()
    assert [None if v is None else str(v) for (v,) in got] == [
        None,
        None,
        None,
        None,
        "1234.500000",
        "1234.000000",
    ]
