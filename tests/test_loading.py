"""Loading export files: validation of every §2 rule, rejects, idempotent upserts, all-or-nothing."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import pytest

from chuanliu_cli.errors import DataError
from chuanliu_cli.ingest.loader import LoadOptions, discover, load_files, table_for_file
from chuanliu_cli.store.database import memory_database, open_database

ORDER_HEADER = (
    "order_id,shop_id,buyer_id,item_id,promoter_id,sale_mode,carrier,order_time,paid_amount,quantity,"
    "status,refund_amount,refund_reason,commission"
)
GOOD_ORDER = "1000000000000001,ks1,b1,i1,,self,live,2023-05-01 20:00:00,100.00,1,completed,,,"


def _orders(write: Callable[..., Path], *rows: str, name: str = "orders.csv") -> Path:
    return write(name, "\n".join([ORDER_HEADER, *rows]) + "\n")


def _load(db_path: Path, table: str, path: Path, **opts: Any) -> Any:
    with open_database(str(db_path), "write") as db:
        return load_files(db, [(table, path)], LoadOptions(**opts))[0]


def _rows(db_path: Path, sql: str, params: list[Any] | None = None) -> list[tuple[Any, ...]]:
    con = duckdb.connect(str(db_path), read_only=True)
    try:
        return con.execute(sql, params).fetchall()
    finally:
        con.close()


def test_good_order_loads_with_exact_identifiers(tmp_path: Path, write: Callable[..., Path]) -> None:
    path = _orders(write, '0000123456789012,ks1,b1,,,self,live,2023-05-01 20:00:00,"1,234.50",2,completed,,,')
    result = _load(tmp_path / "db.duckdb", "orders", path)
    assert (result.rows_read, result.inserted, result.rejected) == (1, 1, 0)
    row = _rows(tmp_path / "db.duckdb", "SELECT order_id, paid_amount, quantity, net_amount FROM orders")
    assert row == [("0000123456789012", Decimal("1234.50"), 2, Decimal("1234.50"))]


@pytest.mark.parametrize(
    ("row", "reason"),
    [
        (",ks1,b1,,,self,live,2023-05-01 20:00:00,1,1,completed,,,", "column order_id: empty (required)"),
        ("1,,b1,,,self,live,2023-05-01 20:00:00,1,1,completed,,,", "column shop_id: empty (required)"),
        ("1,ks1,,,,self,live,2023-05-01 20:00:00,1,1,completed,,,", "column buyer_id: empty (required)"),
        (
            "1,ks1,b1,,,resale,live,2023-05-01 20:00:00,1,1,completed,,,",
            "column sale_mode: unknown value 'resale'",
        ),
        (
            "1,ks1,b1,,,self,radio,2023-05-01 20:00:00,1,1,completed,,,",
            "column carrier: unknown value 'radio'",
        ),
        (
            "1,ks1,b1,,,self,live,yesterday,1,1,completed,,,",
            "column order_time: 'yesterday' is not a timestamp",
        ),
        ("1,ks1,b1,,,self,live,,1,1,completed,,,", "column order_time: empty (required)"),
        (
            "1,ks1,b1,,,self,live,1969-12-31 00:00:00,1,1,completed,,,",
            "column order_time: '1969-12-31 00:00:00' is outside",
        ),
        ("1,ks1,b1,,,self,live,9999-01-01 00:00:00,1,1,completed,,,", "is outside 2000-2099"),
        (
            "1,ks1,b1,,,self,live,2023-05-01 20:00:00,abc,1,completed,,,",
            "column paid_amount: 'abc' is not an amount",
        ),
        (
            "1,ks1,b1,,,self,live,2023-05-01 20:00:00,-5,1,completed,,,",
            "column paid_amount: '-5' is below the minimum 0",
        ),
        ("1,ks1,b1,,,self,live,2023-05-01 20:00:00,,1,completed,,,", "column paid_amount: empty (required)"),
        (
            "1,ks1,b1,,,self,live,2023-05-01 20:00:00,1,0,completed,,,",
            "column quantity: '0' is below the minimum 1",
        ),
        (
            "1,ks1,b1,,,self,live,2023-05-01 20:00:00,1,1.5,completed,,,",
            "column quantity: '1.5' is not a whole number",
        ),
        ("1,ks1,b1,,,self,live,2023-05-01 20:00:00,1,1,lost,,,", "column status: unknown value 'lost'"),
        (
            "1,ks1,b1,,,self,live,2023-05-01 20:00:00,10,1,completed,20,,",
            "column refund_amount: 20.00 exceeds paid_amount 10.00",
        ),
        (
            "1,ks1,b1,,,self,live,2023-05-01 20:00:00,10,1,completed,-1,,",
            "column refund_amount: '-1' is below the minimum 0",
        ),
        (
            "1,ks1,b1,,,self,live,2023-05-01 20:00:00,10,1,completed,,,-3",
            "column commission: '-3' is below the minimum 0",
        ),
        (
            "1,ks1,b1,,,self,live,2023-05-01 20:00:00,1e13,1,completed,,,",
            "column paid_amount: '1e13' is out of range",
        ),
        ("1,ks1,b1,,,self,live,2023-05-01 20:00:00,1,1,completed,,", "has 13 fields, the header has 14"),
    ],
)
def test_each_order_rule_rejects_with_line_column_and_value(
    tmp_path: Path, write: Callable[..., Path], row: str, reason: str
) -> None:
    path = _orders(write, GOOD_ORDER, row)
    result = _load(tmp_path / "db.duckdb", "orders", path, max_reject_rate=1.0)
    assert result.rejected == 1, result.rejects
    assert result.rejects[0].line == "line 3"
    assert reason in result.rejects[0].reason
    kept = _rows(tmp_path / "db.duckdb", "SELECT line, reason, raw FROM rejected_rows")
    assert kept[0][0] == "line 3" and reason in kept[0][1]
    assert kept[0][2] == row
    assert _rows(tmp_path / "db.duckdb", "SELECT count(*) FROM orders") == [(1,)]


@pytest.mark.parametrize(
    ("header", "row", "reason"),
    [
        (
            "review_id,order_id,shop_id,quality_score,review_time",
            "r2,o1,ks1,6,2023-05-01 10:00:00",
            "column quality_score: '6' is above the maximum 5",
        ),
        (
            "review_id,order_id,shop_id,quality_score,review_time",
            "r2,o1,ks1,0,2023-05-01 10:00:00",
            "column quality_score: '0' is below the minimum 1",
        ),
        (
            "review_id,order_id,shop_id,quality_score,review_time",
            "r2,o1,ks1,4.5,2023-05-01 10:00:00",
            "column quality_score: '4.5' is not a whole number",
        ),
        (
            "review_id,order_id,shop_id,quality_score,review_time",
            "r2,o1,ks1,good,2023-05-01 10:00:00",
            "column quality_score: 'good' is not a score 1-5",
        ),
        (
            "review_id,order_id,shop_id,quality_score,review_time,complaint",
            "r2,o1,ks1,5,2023-05-01 10:00:00,maybe",
            "column complaint: 'maybe' is not a yes/no value",
        ),
        (
            "review_id,order_id,shop_id,quality_score,review_time,logistics_score",
            "r2,o1,ks1,5,2023-05-01 10:00:00,9",
            "column logistics_score: '9' is above the maximum 5",
        ),
    ],
)
def test_each_review_rule_rejects(
    tmp_path: Path, write: Callable[..., Path], header: str, row: str, reason: str
) -> None:
    good = ",".join(
        [
            "r1",
            "o1",
            "ks1",
            "5",
            "2023-05-01 10:00:00",
            *(["false"] if "complaint" in header else []),
            *(["5"] if "logistics" in header else []),
        ]
    )
    path = write("reviews.csv", f"{header}\n{good}\n{row}\n")
    result = _load(tmp_path / "db.duckdb", "reviews", path, max_reject_rate=1.0)
    assert result.rejected == 1 and reason in result.rejects[0].reason, result.rejects


LIVE_HEADER = (
    "live_id,shop_id,host_type,promoter_id,start_time,end_time,duration_minutes,viewers,new_followers,gmv"
)


@pytest.mark.parametrize(
    ("row", "reason"),
    [
        (
            "l2,ks1,promoter,,2023-05-01 10:00:00,,60,,,",
            "column promoter_id: empty, required when host_type is promoter",
        ),
        ("l2,ks1,self,,2023-05-01 10:00:00,,,,,", "columns end_time and duration_minutes: both empty"),
        (
            "l2,ks1,self,,2023-05-01 10:00:00,2023-05-01 09:00:00,,,,",
            "column end_time: 2023-05-01 09:00:00 is before start_time",
        ),
        ("l2,ks1,tv,,2023-05-01 10:00:00,,60,,,", "column host_type: unknown value 'tv'"),
        ("l2,ks1,self,,2023-05-01 10:00:00,,-1,,,", "column duration_minutes: '-1' is below the minimum 0"),
        ("l2,ks1,self,,2023-05-01 10:00:00,,60,-3,,", "column viewers: '-3' is below the minimum 0"),
    ],
)
def test_each_livestream_rule_rejects(
    tmp_path: Path, write: Callable[..., Path], row: str, reason: str
) -> None:
    path = write(
        "livestreams.csv",
        f"{LIVE_HEADER}\nl1,ks1,self,,2023-05-01 10:00:00,2023-05-01 11:30:00,,10,1,5\n{row}\n",
    )
    result = _load(tmp_path / "db.duckdb", "livestreams", path, max_reject_rate=1.0)
    assert result.rejected == 1 and reason in result.rejects[0].reason, result.rejects
    # duration derived from end_time when the export has no duration
    assert _rows(tmp_path / "db.duckdb", "SELECT duration_minutes FROM livestreams") == [(90.0,)]


@pytest.mark.parametrize(
    ("cell", "expected"),
    [
        ("1234.5", Decimal("1234.50")),
        ('"1,234.50"', Decimal("1234.50")),
        ('"¥1,234.50"', Decimal("1234.50")),
        ("￥88", Decimal("88.00")),
        ("1.2万", Decimal("12000.00")),
        (" 7 ", Decimal("7.00")),
    ],
)
def test_amount_forms(tmp_path: Path, write: Callable[..., Path], cell: str, expected: Decimal) -> None:
    path = _orders(write, f"1,ks1,b1,,,self,live,2023-05-01 20:00:00,{cell},1,completed,,,")
    _load(tmp_path / "db.duckdb", "orders", path)
    assert _rows(tmp_path / "db.duckdb", "SELECT paid_amount FROM orders") == [(expected,)]


@pytest.mark.parametrize("cell", ["-", ""])
def test_empty_and_dash_amounts_are_null(tmp_path: Path, write: Callable[..., Path], cell: str) -> None:
    path = _orders(write, f"1,ks1,b1,,,self,live,2023-05-01 20:00:00,5,1,completed,{cell},,")
    _load(tmp_path / "db.duckdb", "orders", path)
    assert _rows(tmp_path / "db.duckdb", "SELECT refund_amount FROM orders") == [(None,)]


@pytest.mark.parametrize(
    ("cell", "expected"),
    [
        ("2023-05-01 20:00:00", "2023-05-01 20:00:00"),
        ("2023/5/1 20:00", "2023-05-01 20:00:00"),
        ("2023-05-01T20:00:00+08:00", "2023-05-01 20:00:00"),
        ("2023-05-01T12:00:00Z", "2023-05-01 20:00:00"),
        ("2023-05-01T13:00:00+09:00", "2023-05-01 12:00:00"),
        ("1682942400000", "2023-05-01 20:00:00"),
        ("45047.5", "2023-05-01 12:00:00"),
    ],
)
def test_timestamp_forms(tmp_path: Path, write: Callable[..., Path], cell: str, expected: str) -> None:
    path = _orders(write, f"1,ks1,b1,,,self,live,{cell},5,1,completed,,,")
    _load(tmp_path / "db.duckdb", "orders", path)
    got = _rows(tmp_path / "db.duckdb", "SELECT strftime(order_time, '%Y-%m-%d %H:%M:%S') FROM orders")
    assert got == [(expected,)]


def test_sale_mode_defaults_from_promoter_and_net_and_quality_return(
    tmp_path: Path, write: Callable[..., Path]
) -> None:
    path = write(
        "orders.csv",
        """
        order_id,shop_id,buyer_id,promoter_id,order_time,paid_amount,status,refund_amount,refund_reason
        1,ks1,b1,dr1,2023-05-01 20:00:00,100,completed,30,质量问题
        2,ks1,b1,,2023-05-01 20:00:00,100,refunded,,不想要了
        3,ks1,b1,,2023-05-01 20:00:00,100,退款成功,,Counterfeit
        """,
    )
    _load(tmp_path / "db.duckdb", "orders", path)
    rows = _rows(
        tmp_path / "db.duckdb",
        "SELECT order_id, sale_mode, carrier, status, net_amount, quality_return FROM orders ORDER BY order_id",
    )
    assert rows == [
        ("1", "distribution", "other", "completed", Decimal("70.00"), True),
        ("2", "self", "other", "refunded", Decimal("0.00"), False),
        ("3", "self", "other", "refunded", Decimal("0.00"), True),
    ]


def test_chinese_values_map(tmp_path: Path, write: Callable[..., Path]) -> None:
    path = _orders(write, "1,ks1,b1,,dr1,达人合作成交,短视频成交,2023-05-01 20:00:00,5,1,已发货,,,")
    _load(tmp_path / "db.duckdb", "orders", path)
    assert _rows(tmp_path / "db.duckdb", "SELECT sale_mode, carrier, status FROM orders") == [
        ("distribution", "video", "shipped")
    ]


def test_idempotent_second_load_changes_nothing(tmp_path: Path, write: Callable[..., Path]) -> None:
    path = _orders(write, GOOD_ORDER, GOOD_ORDER.replace("0001", "0002"))
    first = _load(tmp_path / "db.duckdb", "orders", path)
    second = _load(tmp_path / "db.duckdb", "orders", path)
    assert (first.inserted, first.updated, first.unchanged) == (2, 0, 0)
    assert (second.inserted, second.updated, second.unchanged) == (0, 0, 2)
    assert _rows(tmp_path / "db.duckdb", "SELECT count(*) FROM orders") == [(2,)]
    assert _rows(tmp_path / "db.duckdb", "SELECT count(*) FROM loads") == [(2,)]


def test_changed_row_updates(tmp_path: Path, write: Callable[..., Path]) -> None:
    _load(tmp_path / "db.duckdb", "orders", _orders(write, GOOD_ORDER))
    changed = _orders(write, GOOD_ORDER.replace("completed", "refunded"), name="orders2.csv")
    result = _load(tmp_path / "db.duckdb", "orders", changed)
    assert (result.inserted, result.updated, result.unchanged) == (0, 1, 0)
    assert _rows(tmp_path / "db.duckdb", "SELECT status, net_amount FROM orders") == [
        ("refunded", Decimal("0.00"))
    ]


def test_duplicate_keys_last_occurrence_wins(tmp_path: Path, write: Callable[..., Path]) -> None:
    path = _orders(write, GOOD_ORDER, GOOD_ORDER.replace("100.00", "200.00"))
    result = _load(tmp_path / "db.duckdb", "orders", path)
    assert (result.inserted, result.duplicates) == (1, 1)
    assert _rows(tmp_path / "db.duckdb", "SELECT paid_amount FROM orders") == [(Decimal("200.00"),)]


def test_reject_rate_over_threshold_writes_nothing(tmp_path: Path, write: Callable[..., Path]) -> None:
    db = tmp_path / "db.duckdb"
    _load(db, "orders", _orders(write, GOOD_ORDER))
    bad = _orders(
        write, GOOD_ORDER.replace("0001", "0009"), "x,ks1,b1,,,self,live,nope,1,1,completed,,,", name="b.csv"
    )
    # (a file is refused when its rejects exceed both limits: here the share, and a row limit of 0)
    with pytest.raises(
        DataError,
        match=r"1 of 2 rows rejected, over both reject limits \(50.0% > max_reject_rate 1.0% and 1 > "
        r"max_reject_rows 0\)",
    ) as err:
        _load(db, "orders", bad, max_reject_rows=0)
    assert "b.csv line 3: column order_time: 'nope'" in err.value.details[0]
    assert _rows(db, "SELECT order_id FROM orders") == [("1000000000000001",)]
    assert _rows(db, "SELECT count(*) FROM loads") == [(1,)]
    assert _rows(db, "SELECT count(*) FROM rejected_rows") == [(0,)]


def test_reject_rate_fails_whole_invocation(tmp_path: Path, write: Callable[..., Path]) -> None:
    db = tmp_path / "db.duckdb"
    good = _orders(write, GOOD_ORDER, name="a.csv")
    bad = write(
        "reviews.csv", "review_id,order_id,shop_id,quality_score,review_time\nr1,o1,ks1,9,2023-05-01\n"
    )
    with open_database(str(db), "write") as handle, pytest.raises(DataError):
        load_files(handle, [("orders", good), ("reviews", bad)], LoadOptions(max_reject_rows=0))
    assert _rows(db, "SELECT count(*) FROM orders") == [(0,)]


def test_missing_required_column_names_file_and_column(tmp_path: Path, write: Callable[..., Path]) -> None:
    path = write(
        "orders.csv",
        "order_id,shop_id,buyer_id,order_time,paid_amount,sta tus\n1,ks1,b1,2023-05-01,5,completed\n",
    )
    with pytest.raises(DataError, match=r"orders.csv: missing required column status of orders") as err:
        _load(tmp_path / "db.duckdb", "orders", path)
    assert err.value.hint and "did you mean 'sta tus'" in err.value.hint
    # a stray file whose name has a table word (直播间商品.csv) is told how to get out of the way
    assert "a file that is no orders export but has a table word in its name: rename it" in err.value.hint


def test_repeated_header_and_blank_trailing_rows(tmp_path: Path, write: Callable[..., Path]) -> None:
    path = _orders(write, GOOD_ORDER, ORDER_HEADER, GOOD_ORDER.replace("0001", "0002"), "", ",,,,", "")
    result = _load(tmp_path / "db.duckdb", "orders", path)
    assert (result.rows_read, result.inserted, result.rejected) == (2, 2, 0)


def test_aliases_case_and_space_insensitive(tmp_path: Path, write: Callable[..., Path]) -> None:
    path = write(
        "orders.csv",
        " ORDER_ID ,Shop_Id,buyerId,下单时间,实付金额,订单状态\n1,ks1,b1,2023-05-01 20:00,5,交易成功\n",
    )
    result = _load(tmp_path / "db.duckdb", "orders", path)
    assert result.inserted == 1


def test_parquet_with_native_types(tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.table(
        {
            "order_id": pa.array([1234567890123456, 2], pa.int64()),
            "shop_id": ["ks1", "ks1"],
            "buyer_id": ["b1", "b2"],
            "sale_mode": ["self", "distribution"],
            "order_time": pa.array([1682942400000000, 1682942400000000], pa.timestamp("us")),
            "paid_amount": [10.5, 20.0],
            "status": ["completed", "bogus"],
        }
    )
    path = tmp_path / "orders.parquet"
    pq.write_table(table, path)
    result = _load(tmp_path / "db.duckdb", "orders", path, max_reject_rate=1.0)
    assert (result.inserted, result.rejected) == (1, 1)
    assert (
        result.rejects[0].line == "row 2"
        and "column status: unknown value 'bogus'" in result.rejects[0].reason
    )
    assert _rows(tmp_path / "db.duckdb", "SELECT order_id, paid_amount FROM orders") == [
        ("1234567890123456", Decimal("10.50"))
    ]


def test_discover_by_english_and_chinese_names(tmp_path: Path) -> None:
    for name in ("orders_2023-05.csv", "评价.csv", "直播明细.parquet", "店铺.xlsx", "notes.txt", "readme.md"):
        (tmp_path / name).write_text("x")
    found = [(t, p.name) for t, p in discover(tmp_path)]
    assert found == [
        ("orders", "orders_2023-05.csv"),
        ("reviews", "评价.csv"),
        ("livestreams", "直播明细.parquet"),
        ("shops", "店铺.xlsx"),
    ]
    assert table_for_file(Path("ORDERS.CSV")) == "orders"


def test_memory_database_loads_without_files(write: Callable[..., Path]) -> None:
    db = memory_database()
    result = load_files(db, [("orders", _orders(write, GOOD_ORDER))], LoadOptions())[0]
    assert result.inserted == 1


def test_json_lines_api_dump_with_fen_scale(tmp_path: Path, write: Callable[..., Path]) -> None:
    from chuanliu_cli.ingest.mapping import load_mapping

    path = write(
        "orders.jsonl",
        """
        {"oid": 2023050100000001, "sellerId": "ks1", "buyerOpenId": "u1", "itemId": 11, "num": 2, "cpsType": 2, "distributorId": "dr9", "payTime": 1682942400000, "actualPayAmount": 8800, "orderStatus": 70}
        {"oid": "0023050100000002", "sellerId": "ks1", "buyerOpenId": "u2", "num": 1, "cpsType": 1, "payTime": 1682942400000, "actualPayAmount": 1234, "orderStatus": 10}
        not json
        """,
    )
    scale = write("fen.yaml", "scale: {paid_amount: 0.01}\n")
    result = _load(tmp_path / "db.duckdb", "orders", path, max_reject_rate=0.5, mapping=load_mapping(scale))
    assert (result.inserted, result.rejected) == (2, 1)
    assert result.rejects[0].line == "line 3" and result.rejects[0].reason.startswith("not valid JSON")
    assert "column order_id" not in result.rejects[0].reason
    rows = _rows(
        tmp_path / "db.duckdb",
        "SELECT order_id, sale_mode, promoter_id, paid_amount, quantity, status FROM orders ORDER BY 1",
    )
    assert rows == [
        ("0023050100000002", "self", None, Decimal("12.34"), 1, "pending"),
        ("2023050100000001", "distribution", "dr9", Decimal("88.00"), 2, "completed"),
    ]


def test_excel_serial_and_big_float_ids_from_parquet(tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.table(
        {
            "order_id": pa.array([12345678901234568.0, 2.0], pa.float64()),
            "shop_id": ["ks1", "ks1"],
            "buyer_id": ["b1", "b2"],
            "sale_mode": ["self", "self"],
            "order_time": pa.array([45047.5, 1682942400000.0], pa.float64()),
            "paid_amount": [1.0, 2.0],
            "status": ["completed", "completed"],
        }
    )
    path = tmp_path / "orders.parquet"
    pq.write_table(table, path)
    _load(tmp_path / "db.duckdb", "orders", path)
    rows = _rows(
        tmp_path / "db.duckdb",
        "SELECT order_id, strftime(order_time, '%Y-%m-%d %H:%M') FROM orders ORDER BY 1",
    )
    assert rows == [("12345678901234568", "2023-05-01 12:00"), ("2", "2023-05-01 20:00")]


# --- issue #19: duplicates with different content, lifecycle regressions, small files ----------------------

SHORT_HEADER = "order_id,shop_id,buyer_id,sale_mode,order_time,paid_amount,status,refund_amount"


def _short_orders(path: Path, rows: list[str]) -> Path:
    """Orders with the columns the lifecycle rules read, as CSV or (by suffix) Parquet of text cells."""
    if path.suffix == ".parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        names = SHORT_HEADER.split(",")
        cells = [r.split(",") for r in rows]
        pq.write_table(
            pa.table({n: pa.array([c[i] or None for c in cells], pa.string()) for i, n in enumerate(names)}),
            path,
        )
    else:
        path.write_text("\n".join([SHORT_HEADER, *rows]) + "\n", encoding="utf-8")
    return path


def _order(n: int, status: str, refund: str = "", paid: str = "30.00", day: int = 1) -> str:
    return f"{n},ks1,b{n},self,2023-05-{day:02d} 20:00:00,{paid},{status},{refund}"


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_april_export_after_may_keeps_the_refunded_orders(tmp_path: Path, suffix: str) -> None:
    """The issue's case: May has 20 orders refunded; April (older) still has them shipped. Loading April
    after May must keep them refunded, say so with 5 examples, and count the refusals in `loads`."""
    db = tmp_path / "db.duckdb"
    may = [_order(n, "refunded", "30.00") for n in range(1, 21)] + [
        _order(n, "completed") for n in range(21, 101)
    ]
    april = [_order(n, "shipped") for n in range(1, 21)] + [_order(n, "completed") for n in range(21, 101)]
    _load(db, "orders", _short_orders(tmp_path / f"may{suffix}", may))
    result = _load(db, "orders", _short_orders(tmp_path / f"april{suffix}", april))
    assert (result.inserted, result.updated, result.unchanged, result.regressed) == (0, 0, 80, 20)
    assert _rows(db, "SELECT status, count(*), sum(refund_amount) FROM orders GROUP BY 1 ORDER BY 1") == [
        ("completed", 80, None),
        ("refunded", 20, Decimal("600.00")),
    ]
    [warning] = [w for w in result.warnings if "backwards" in w]
    assert warning.startswith(f"{tmp_path / f'april{suffix}'}: 20 update(s) would move rows backwards")
    assert "the stored rows were kept" in warning
    assert "order_id 1 status refunded → shipped, refund_amount 30.00 → empty" in warning
    assert warning.count("order_id ") == 5  # 5 examples
    assert _rows(db, "SELECT regressed, updated FROM loads ORDER BY load_id") == [(0, 0), (20, 0)]
    # every refusal is kept by key (the warning shows five), and so is every backward update applied
    changes = (
        "SELECT change, count(*), min(key::INT), max(key::INT) FROM load_changes WHERE load_id = ? GROUP BY 1"
    )
    assert _rows(db, changes, [result.load_id]) == [("backwards refused", 20, 1, 20)]
    # the older file is right after all: apply it
    allowed = _load(db, "orders", tmp_path / f"april{suffix}", allow_regress=True)
    assert (allowed.updated, allowed.regressed) == (20, 0)
    assert any("were applied as allowed" in w for w in allowed.warnings)
    assert _rows(db, changes, [allowed.load_id]) == [("update backwards", 20, 1, 20)]
    assert _rows(db, "SELECT count(*) FROM orders WHERE status = 'shipped' AND refund_amount IS NULL") == [
        (20,)
    ]


@pytest.mark.parametrize(
    ("stored", "incoming", "regressed"),
    [
        (("paid", ""), ("shipped", ""), False),
        (("shipped", ""), ("received", ""), False),
        (("received", ""), ("completed", ""), False),
        (("completed", ""), ("refunded", "30.00"), False),
        (("pending", ""), ("closed", ""), False),
        (("refunded", "10.00"), ("refunded", "30.00"), False),  # a larger refund is news
        (("paid", ""), ("pending", ""), True),
        (("completed", ""), ("shipped", ""), True),
        (("closed", ""), ("completed", ""), True),  # closed is final
        (("refunded", "30.00"), ("closed", "30.00"), True),  # refunded is final
        (("refunded", "30.00"), ("refunded", "10.00"), True),  # refund lowered
        (("refunded", "30.00"), ("refunded", ""), True),  # refund cleared
    ],
)
def test_order_lifecycle_regressions(
    tmp_path: Path, stored: tuple[str, str], incoming: tuple[str, str], regressed: bool
) -> None:
    db = tmp_path / "db.duckdb"
    _load(db, "orders", _short_orders(tmp_path / "new.csv", [_order(1, *stored)]))
    result = _load(db, "orders", _short_orders(tmp_path / "old.csv", [_order(1, *incoming)]))
    assert (result.updated, result.regressed) == ((0, 1) if regressed else (1, 0))
    kept = stored if regressed else incoming
    row = _rows(db, "SELECT status, coalesce(CAST(refund_amount AS VARCHAR), '') FROM orders")
    assert row == [kept]


def test_review_from_an_older_file_keeps_the_newer_scores(tmp_path: Path, write: Callable[..., Path]) -> None:
    db = tmp_path / "db.duckdb"
    header = "review_id,order_id,shop_id,quality_score,review_time\n"
    _load(
        db, "reviews", write("new.csv", header + "r1,o1,ks1,5,2023-05-20 10:00:00\nr2,o2,ks1,3,2023-05-01\n")
    )
    older = write("old.csv", header + "r1,o1,ks1,2,2023-05-10 10:00:00\nr2,o2,ks1,4,2023-05-02\n")
    result = _load(db, "reviews", older)
    assert (result.updated, result.regressed) == (1, 1)  # r2 is newer: updated; r1 is older: kept
    assert _rows(db, "SELECT review_id, quality_score FROM reviews ORDER BY 1") == [
        ("r1", 5),
        ("r2", 4),
    ]
    [warning] = [w for w in result.warnings if "backwards" in w]
    assert "review_id r1 review_time 2023-05-20 10:00:00 → 2023-05-10 10:00:00" in warning


def test_one_bad_row_in_an_80_row_file_loads(tmp_path: Path) -> None:
    """1.25 % of 80 rows is over the 1 % rate but not over 10 rows: the file loads (issue #19 point 7)."""
    rows = [_order(n, "completed") for n in range(1, 80)] + ["80,ks1,b80,self,never,30.00,completed,"]
    result = _load(tmp_path / "db.duckdb", "orders", _short_orders(tmp_path / "orders.csv", rows))
    assert (result.rows_read, result.inserted, result.rejected) == (80, 79, 1)
    assert _rows(tmp_path / "db.duckdb", "SELECT line FROM rejected_rows") == [("line 81",)]


def test_a_file_is_refused_only_over_both_reject_limits(tmp_path: Path) -> None:
    db = tmp_path / "db.duckdb"
    bad = "x,ks1,b1,self,never,30.00,completed,"
    eleven = _short_orders(tmp_path / "a.csv", [_order(n, "completed") for n in range(1, 70)] + [bad] * 11)
    with pytest.raises(DataError) as err:
        _load(db, "orders", eleven)
    assert err.value.message.endswith(
        "11 of 80 rows rejected, over both reject limits (13.8% > max_reject_rate 1.0% and 11 > "
        "max_reject_rows 10); nothing was written"
    )
    assert "--" not in err.value.message + str(err.value.hint)  # library wording: no command-line flags
    # the same file within either limit loads
    assert _load(db, "orders", eleven, max_reject_rows=11).rejected == 11
    many = [_order(n, "completed") for n in range(1, 2000)] + [bad] * 12
    assert _load(tmp_path / "b.duckdb", "orders", _short_orders(tmp_path / "b.csv", many)).rejected == 12


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
@pytest.mark.parametrize("into", ["empty", "upsert"])
def test_duplicate_keys_with_different_values_are_reported_by_key(
    tmp_path: Path, suffix: str, into: str
) -> None:
    """Both write paths (staged text, set-based Parquet), into an empty table and as an upsert."""
    db = tmp_path / "db.duckdb"
    if into == "upsert":
        _load(db, "orders", _short_orders(tmp_path / f"first{suffix}", [_order(99, "completed")]))
    rows = [
        _order(1, "paid", paid="10.00"),  # line 2
        _order(2, "completed"),  # line 3
        _order(1, "shipped", paid="12.00"),  # line 4: wins (last)
        _order(2, "completed"),  # line 5: identical repeat, only counted
        _order(3, "completed"),  # line 6
    ]
    path = _short_orders(tmp_path / f"orders{suffix}", rows)
    result = _load(db, "orders", path)
    assert (result.duplicates, result.conflicts, result.rejected) == (2, 1, 0)
    assert _rows(db, "SELECT order_id, status, paid_amount FROM orders WHERE order_id = '1'") == [
        ("1", "shipped", Decimal("12.00"))
    ]
    label = "row" if suffix == ".parquet" else "line"
    n = 1 if suffix == ".parquet" else 2  # Parquet rows count from 1, text lines after the header
    [warning] = [w for w in result.warnings if "different values" in w]
    assert f"order_id 1 {label} {n} ({label} {n + 2} kept) differs in paid_amount, status" in warning
    loaded = _rows(db, "SELECT line, reason, raw FROM rejected_rows")
    assert loaded == [
        (
            f"{label} {n}",
            f"duplicate order_id 1 ({label} {n + 2} kept, differs in paid_amount, status)",
            "1,ks1,b1,self,2023-05-01 20:00:00,10.00,paid,",
        )
    ]


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_on_duplicate_first_and_error(tmp_path: Path, suffix: str) -> None:
    rows = [_order(1, "paid", paid="10.00"), _order(1, "shipped", paid="12.00"), _order(2, "paid")]
    path = _short_orders(tmp_path / f"orders{suffix}", rows)
    first = _load(tmp_path / "first.duckdb", "orders", path, on_duplicate="first")
    assert first.conflicts == 1
    assert _rows(tmp_path / "first.duckdb", "SELECT status FROM orders WHERE order_id = '1'") == [("paid",)]
    db = tmp_path / "error.duckdb"
    with pytest.raises(DataError, match=r"1 row\(s\) repeat a key \(order_id\) with different values") as err:
        _load(db, "orders", path, on_duplicate="error")
    label = "row" if suffix == ".parquet" else "line"
    n = 1 if suffix == ".parquet" else 2
    assert err.value.details == [f"order_id 1: {label}s {n} and {n + 1} differ in paid_amount, status"]
    assert "nothing was written" in err.value.message
    # identical repeats are harmless under every policy
    same = _short_orders(tmp_path / f"same{suffix}", [_order(1, "paid"), _order(1, "paid")])
    assert _load(db, "orders", same, on_duplicate="error").duplicates == 1
    assert _rows(db, "SELECT count(*) FROM rejected_rows") == [(0,)]


# --- issue #19 point 1: the clean export after the `.0` one changes nothing ----------------------------------


def test_reloading_the_clean_export_after_the_point_zero_one_is_unchanged(tmp_path: Path) -> None:
    """100 orders whose ids a spreadsheet wrote as 2704810274450369.0, then the clean export of the same 100
    orders: 100 rows, the second load all unchanged (it gave 105 rows for 100 orders)."""
    header = "订单号,店铺ID,买家ID,售卖方式,下单时间,实付金额,订单状态\n"
    rows = [
        (2704810274450369 + i, f"{1000 + i % 2}", f"{5000 + i}", f"2023-05-{1 + i % 28:02d} 20:00:00")
        for i in range(100)
    ]
    damaged = tmp_path / "订单_damaged.csv"
    damaged.write_text(
        header + "".join(f"{o}.0,{s}.0,{b}.0,自营,{t},5,交易成功\n" for o, s, b, t in rows), encoding="utf-8"
    )
    clean = tmp_path / "订单_clean.csv"
    clean.write_text(
        header + "".join(f"{o},{s},{b},自营,{t},5,交易成功\n" for o, s, b, t in rows), encoding="utf-8"
    )
    db = tmp_path / "db.duckdb"
    first = _load(db, "orders", damaged)
    assert (first.inserted, first.rejected) == (100, 0)
    second = _load(db, "orders", clean)
    assert (second.inserted, second.updated, second.unchanged, second.rejected) == (0, 0, 100, 0)
    assert _rows(db, "SELECT count(*), min(order_id), max(order_id), min(shop_id) FROM orders") == [
        (100, "2704810274450369", "2704810274450468", "1000")
    ]


def test_text_cells_are_varchar_as_duckdb_reads_a_polars_frame() -> None:
    """A text file's batch (polars String columns) is typed VARCHAR without asking DuckDB per batch; DuckDB
    itself describes such a frame's columns as VARCHAR (empty and all-NULL columns included), and a frame
    with another type is still asked."""
    import duckdb
    import polars as pl

    from chuanliu_cli.arrays import ArrowStream
    from chuanliu_cli.ingest.loader import _duck_types

    frame = pl.DataFrame(
        {
            "a": pl.Series(["x", None], dtype=pl.String),
            "b": pl.Series([None, None], dtype=pl.String),
            "__line": pl.Series([2, 3], dtype=pl.Int64),
        }
    )
    con = duckdb.connect()
    for data in (frame, frame.clear()):
        con.register("t", ArrowStream(data))
        described = {r[0]: r[1] for r in con.execute("DESCRIBE SELECT * FROM t").fetchall()}
        assert described["a"] == described["b"] == "VARCHAR"
        assert _duck_types(con, data, ["a", "b"]) == {"a": "VARCHAR", "b": "VARCHAR"}
    assert _duck_types(con, frame, ["a", "__line"]) == {"a": "VARCHAR", "__line": "BIGINT"}


def test_reviews_naming_unloaded_orders_are_said(tmp_path: Path) -> None:
    """An orders workbook whose ids were numbers lost their leading zeros: the reviews naming `0007` match
    no order, and their orders' integrity flags are not checked; past 1 % of a file's reviews, the load
    says so with the first ids and lines. A review or two of an older, unloaded order is normal: no word."""
    orders = "order_id,shop_id,buyer_id,item_id,sale_mode,order_time,paid_amount,status\n"
    orders += "".join(f"{i},s1,b{i},i1,self,2023-05-01 20:00:00,5,completed\n" for i in range(1, 201))
    reviews = "review_id,order_id,shop_id,quality_score,review_time\n"
    reviews += "".join(f"r{i},{i:04d},s1,5,2023-05-03 10:00:00\n" for i in range(1, 6))
    reviews += "".join(f"r{i},{i},s1,5,2023-05-03 10:00:00\n" for i in range(6, 201))
    (tmp_path / "orders.csv").write_text(orders, encoding="utf-8")
    (tmp_path / "reviews.csv").write_text(reviews, encoding="utf-8")
    db = memory_database()
    [_, loaded] = load_files(db, discover(tmp_path), LoadOptions())
    [warning] = [w for w in loaded.warnings if "name an order that is not loaded" in w]
    assert warning == (
        f"{tmp_path / 'reviews.csv'}: 5 of 200 reviews (2.5%) name an order that is not loaded, e.g. order_id "
        "0001 (line 2), 0002 (line 3), 0003 (line 4): their orders' brushing and self-purchase flags cannot be "
        "checked. Load those orders; if they are loaded, compare the ids: a spreadsheet that kept order ids as "
        "numbers dropped their leading zeros (export ids as text)"
    )
    two = reviews.replace("r3,0003", "r3,3").replace("r4,0004", "r4,4").replace("r5,0005", "r5,5")
    (tmp_path / "reviews.csv").write_text(two, encoding="utf-8")
    [_, again] = load_files(memory_database(), discover(tmp_path), LoadOptions())
    assert not any("name an order that is not loaded" in w for w in again.warnings)
