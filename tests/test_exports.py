"""Real merchant-backend exports through `chuanliu load`: encodings, XLSX cells, value forms, mappings, --dir."""

from __future__ import annotations

import codecs
import csv
import io
import zipfile
from collections.abc import Callable
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import polars as pl
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from chuanliu_cli.errors import ChuanliuError
from chuanliu_cli.exit_codes import ExitCode

DATA = Path(__file__).resolve().parent / "data" / "exports"

ZH_HEADER = "订单编号,店铺ID,买家ID,售卖方式,售卖载体,下单时间,实付金额,订单状态,退款金额,退款原因"
ZH_ROWS = (
    '0001234567890123,ks700001,买家甲,自营成交,直播间成交,2023/5/1 20:00,"1,234.50",交易成功,,',
    "4830129377205612,ks700002,买家丙,达人合作成交,商品卡成交,1682942400000,￥88,已发货,-,质量问题",
)
ORDER_COLUMNS = (
    "order_id, shop_id, buyer_id, sale_mode, carrier, strftime(order_time, '%Y-%m-%d %H:%M:%S'), "
    "paid_amount, status, refund_amount, refund_reason, net_amount, quality_return"
)


def _rows(db: Path, sql: str) -> list[tuple[Any, ...]]:
    con = duckdb.connect(str(db), read_only=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def _orders(db: Path) -> list[tuple[Any, ...]]:
    return _rows(db, f"SELECT {ORDER_COLUMNS} FROM orders ORDER BY order_id")


def _load(invoke: Callable[..., Any], db: Path, *args: str) -> Any:
    """`chuanliu --db DB load ARGS...`, asserting success."""
    result = invoke("--db", str(db), "load", *args)
    assert result.exit_code == 0, result.output
    return result


def _fails(invoke: Callable[..., Any], db: Path, *args: str) -> str:
    """`chuanliu --db DB load ARGS...`, asserting exit 4 without a traceback; returns the output."""
    result = invoke("--db", str(db), "load", *args)
    assert result.exit_code == ExitCode.INVALID_DATA, result.output
    assert "Traceback" not in result.output
    return str(result.output)


# --- encodings -------------------------------------------------------------------------------------------


def test_gb18030_export_with_chinese_headers_loads_exact_values(
    invoke: Callable[..., Any], tmp_path: Path
) -> None:
    # CRLF lines, a 4-byte GB18030 character (𠮷, not in GBK), a repeated header, blank trailing rows.
    db = tmp_path / "c.duckdb"
    result = _load(invoke, db, "orders", str(DATA / "orders_gb18030.csv"))
    assert "orders_gb18030.csv" in result.output
    assert _orders(db) == [
        (
            "0001234567890123", "ks700001", "买家甲", "self", "live", "2023-05-01 20:00:00",
            Decimal("1234.50"), "completed", None, None, Decimal("1234.50"), False,
        ),
        (
            "4830129377205611", "ks700001", "买家乙", "distribution", "video", "2023-05-01 20:00:00",
            Decimal("1234.50"), "refunded", Decimal("1234.50"), "质量问题", Decimal("0.00"), True,
        ),
        (
            "4830129377205612", "ks700002", "买家丙", "self", "card", "2023-05-01 20:00:00",
            Decimal("88.00"), "shipped", None, None, Decimal("88.00"), False,
        ),
        (
            "4830129377205613", "ks700002", "买家𠮷", "distribution", "other", "2023-05-01 12:00:00",
            Decimal("12000.00"), "completed", Decimal("20.00"), "不想要了", Decimal("11980.00"), False,
        ),
    ]  # fmt: skip
    assert _rows(db, "SELECT rows_read, inserted, rejected FROM loads") == [(4, 4, 0)]


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "gbk", "gb18030", "utf-16"])
def test_encodings_are_detected(invoke: Callable[..., Any], tmp_path: Path, encoding: str) -> None:
    path = tmp_path / "orders.csv"
    path.write_bytes("\n".join([ZH_HEADER, *ZH_ROWS, ""]).encode(encoding))
    db = tmp_path / "c.duckdb"
    _load(invoke, db, "orders", str(path))
    assert _orders(db) == [
        (
            "0001234567890123", "ks700001", "买家甲", "self", "live", "2023-05-01 20:00:00",
            Decimal("1234.50"), "completed", None, None, Decimal("1234.50"), False,
        ),
        (
            "4830129377205612", "ks700002", "买家丙", "distribution", "card", "2023-05-01 20:00:00",
            Decimal("88.00"), "shipped", None, "质量问题", Decimal("88.00"), False,
        ),
    ]  # fmt: skip


def _ascii_then(tail: bytes) -> tuple[bytes, int]:
    """An orders file whose first MiB and more is ASCII, then `tail`; returns it and the offset of `tail`."""
    head = "order_id,shop_id,buyer_id,order_time,paid_amount,status,refund_reason\n"
    rows = "".join(f"{n:016d},ks1,b{n},2023-05-01 20:00:00,1.00,completed,\n" for n in range(1, 17_000))
    text = (head + rows).encode("ascii")
    assert len(text) > 1 << 20  # beyond the 1 MiB that detection reads
    return text + tail, len(text)


def test_late_gbk_after_an_ascii_first_mebibyte_still_loads(
    invoke: Callable[..., Any], tmp_path: Path
) -> None:
    data, _ = _ascii_then(
        "9999999999999999,ks1,买家,2023-05-02 20:00:00,2.00,退款成功,质量问题\n".encode("gbk")
    )
    path = tmp_path / "orders.csv"
    path.write_bytes(data)
    db = tmp_path / "c.duckdb"
    _load(invoke, db, "orders", str(path))
    assert _rows(db, "SELECT count(*) FROM orders") == [(17_000,)]
    assert _rows(
        db, "SELECT buyer_id, status, refund_reason FROM orders WHERE order_id = '9999999999999999'"
    ) == [("买家", "refunded", "质量问题")]


def test_late_invalid_bytes_exit_4_with_byte_offset(invoke: Callable[..., Any], tmp_path: Path) -> None:
    data, at = _ascii_then(b"1,ks1,b1,2023-05-02 20:00:00,2.00,completed,\xff\xfe\n")
    path = tmp_path / "orders.csv"
    path.write_bytes(data)
    db = tmp_path / "c.duckdb"
    out = _fails(invoke, db, "orders", str(path))
    bad = at + len(b"1,ks1,b1,2023-05-02 20:00:00,2.00,completed,")
    assert f"orders.csv: byte offset {bad}: invalid gb18030 byte sequence" in out
    assert f"not UTF-8 from byte offset {bad}" in out
    assert not db.exists()  # the 16,999 good rows were rolled back, and the new database with them


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 8, "byte offset 0: bytes b'\\x89PNG' are not UTF-8"),
        (b"order_id,shop_id\n1,ks1\xff\n", "byte offset 22: bytes b'\\xff\\n' are not UTF-8"),
        (b"order_id,shop_id\n1,\x00\x00\x00\n", "byte offset 19: a NUL byte; not a text export"),
    ],
    ids=["png", "stray-ff", "nul"],
)
def test_binary_or_invalid_file_exit_4_with_byte_offset(
    invoke: Callable[..., Any], tmp_path: Path, content: bytes, message: str
) -> None:
    path = tmp_path / "orders.csv"
    path.write_bytes(content)
    out = _fails(invoke, tmp_path / "c.duckdb", "orders", str(path))
    assert f"orders.csv: {message}" in out


def test_encoding_option_overrides_detection(invoke: Callable[..., Any], tmp_path: Path) -> None:
    # Big5 bytes happen to be valid GB18030, so only --encoding reads this traditional-Chinese export right.
    path = tmp_path / "orders.csv"
    path.write_text(
        "訂單編號,店鋪ID,買家ID,售賣方式,售賣載體,下單時間,實付金額,訂單狀態\n"
        "0001234567890123,ks700001,買家甲,self,live,2023-05-01 20:00:00,5,completed\n",
        encoding="big5",
    )
    mapping = tmp_path / "big5.yaml"
    mapping.write_text(
        "orders:\n  order_id: [訂單編號]\n  shop_id: [店鋪ID]\n  buyer_id: [買家ID]\n  sale_mode: [售賣方式]\n"
        "  carrier: [售賣載體]\n  order_time: [下單時間]\n  paid_amount: [實付金額]\n  status: [訂單狀態]\n",
        encoding="utf-8",
    )
    db = tmp_path / "c.duckdb"
    out = _fails(invoke, db, "orders", str(path), "--mapping", str(mapping))
    assert "missing required column order_id of orders" in out  # read as GB18030, no header maps
    _load(invoke, db, "orders", str(path), "--mapping", str(mapping), "--encoding", "big5")
    assert _rows(db, "SELECT order_id, buyer_id FROM orders") == [("0001234567890123", "買家甲")]
    # and an explicit --encoding is never second-guessed
    gb = tmp_path / "gb.csv"
    gb.write_bytes(f"{ZH_HEADER}\n{ZH_ROWS[0]}\n".encode("gb18030"))
    out = _fails(invoke, db, "orders", str(gb), "--encoding", "utf-8")
    assert "gb.csv: byte offset 0: invalid utf-8 byte sequence" in out


# --- XLSX ------------------------------------------------------------------------------------------------

XLSX_HEADER = [
    "订单编号", "店铺ID", "买家ID", "商品名称", "售卖方式", "售卖载体", "下单时间", "实付金额",
    "商品数量", "订单状态", "退款金额", "退款原因", "预估佣金",
]  # fmt: skip


def _orders_workbook(path: Path) -> Path:
    """A backend-style workbook: a notes sheet, the orders sheet with every kind of cell, an empty sheet."""
    import xlsxwriter

    book = xlsxwriter.Workbook(str(path))
    stamp = book.add_format({"num_format": "yyyy-mm-dd hh:mm:ss"})
    day = book.add_format({"num_format": "yyyy-mm-dd"})
    shaded = book.add_format({"bg_color": "#EEEEEE"})
    notes = book.add_worksheet("说明")
    notes.write_string(0, 0, "订单导出说明")
    notes.write_string(1, 0, "金额单位：元")
    notes.write_string(3, 0, "导出时间 2023-06-01 08:00")
    ws = book.add_worksheet("订单")
    ws.write_row(0, 0, XLSX_HEADER)
    # row 2: a 16-digit order number stored as a number, a datetime cell, numeric amount and quantity
    ws.write_number(1, 0, 1234567890123456)
    ws.write_row(1, 1, ["ks1", "u1", "和田玉手镯", "自营成交", "直播间成交"])
    ws.write_datetime(1, 6, datetime(2023, 5, 1, 20, 0, 0), stamp)
    ws.write_number(1, 7, 1234.5)
    ws.write_number(1, 8, 2)
    ws.write_string(1, 9, "交易成功")
    ws.write_number(1, 12, 12.5)
    # rows 3-4: text with leading zeros, merged item name, text amounts and times, formulas
    ws.write_string(2, 0, "0001234567890123")
    ws.write_row(2, 1, ["ks1", "u2"])
    ws.merge_range(2, 3, 3, 3, "礼盒装")
    ws.write_row(2, 4, ["达人合作成交", "短视频成交", "2023/5/1 20:00", "¥1,234.50"])
    ws.write_number(2, 8, 1)
    ws.write_row(2, 9, ["退款成功", "￥88", "质量问题"])
    ws.write_formula(2, 12, "=10+2.5", None, 12.5)  # cached value, as Excel saves it
    ws.write_number(3, 0, 45047)  # an order number that looks like an Excel date serial stays a number
    ws.write_row(3, 1, ["ks1", "u3"])
    ws.write_row(3, 4, ["自营成交", "商品卡成交"])
    ws.write_number(3, 6, 45047.5)  # a date serial without a date format
    ws.write_row(3, 7, ["1.2万", 1, "已发货", "-"])
    ws.write_formula(3, 12, "=A4*0", None, "")  # never calculated: no cached value
    # row 5: the header again (concatenated exports); row 6: an ISO time with offset, a formula amount
    ws.write_row(4, 0, XLSX_HEADER)
    ws.write_row(5, 0, ["4830129377205611", "ks2", "u4", "拖鞋", "超级链接成交", "其他成交"])
    ws.write_string(5, 6, "2023-05-01T20:00:00+08:00")
    ws.write_formula(5, 7, "=1000+234.5", None, 1234.5)
    ws.write_string(5, 9, "交易成功")
    ws.write_string(5, 10, "")
    # row 7: epoch milliseconds as a number; rows 8-9 blank (one only formatted); row 10: a date cell
    ws.write_row(6, 0, ["4830129377205612", "ks2", "u5", None, "自营成交", "直播间"])
    ws.write_number(6, 6, 1682942400000)
    ws.write_row(6, 7, [99.9, None, "completed"])
    ws.write_blank(8, 0, None, shaded)
    ws.write_row(9, 0, ["4830129377205613", "ks2", "u6", "  ", "self", "live"])
    ws.write_datetime(9, 6, datetime(2023, 5, 2), day)
    ws.write_row(9, 7, [88, 1, "completed", 0])
    for r in (10, 11, 12):  # trailing blank rows that only carry formatting
        ws.write_blank(r, 0, None, shaded)
        ws.write_blank(r, 5, None, shaded)
    book.add_worksheet("Sheet3")
    book.close()
    return path


XLSX_ORDERS = [
    (
        "0001234567890123", "ks1", "u2", "礼盒装", "distribution", "video", "2023-05-01 20:00:00",
        Decimal("1234.50"), 1, "refunded", Decimal("88.00"), "质量问题", Decimal("12.50"),
    ),
    (
        "1234567890123456", "ks1", "u1", "和田玉手镯", "self", "live", "2023-05-01 20:00:00",
        Decimal("1234.50"), 2, "completed", None, None, Decimal("12.50"),
    ),
    (
        "45047", "ks1", "u3", None, "self", "card", "2023-05-01 12:00:00",
        Decimal("12000.00"), 1, "shipped", None, None, None,
    ),
    (
        "4830129377205611", "ks2", "u4", "拖鞋", "distribution", "other", "2023-05-01 20:00:00",
        Decimal("1234.50"), 1, "completed", None, None, None,
    ),
    (
        "4830129377205612", "ks2", "u5", None, "self", "live", "2023-05-01 20:00:00",
        Decimal("99.90"), 1, "completed", None, None, None,
    ),
    (
        "4830129377205613", "ks2", "u6", None, "self", "live", "2023-05-02 00:00:00",
        Decimal("88.00"), 1, "completed", Decimal("0.00"), None, None,
    ),
]  # fmt: skip

XLSX_COLUMNS = (
    "order_id, shop_id, buyer_id, item_name, sale_mode, carrier, strftime(order_time, '%Y-%m-%d %H:%M:%S'), "
    "paid_amount, quantity, status, refund_amount, refund_reason, commission"
)


@pytest.mark.parametrize("sheet", [None, "订单", " 订单 "])
def test_xlsx_cells_become_exact_text(invoke: Callable[..., Any], tmp_path: Path, sheet: str | None) -> None:
    path = _orders_workbook(tmp_path / "订单导出.xlsx")
    db = tmp_path / "c.duckdb"
    result = _load(invoke, db, "orders", str(path), *(["--sheet", sheet] if sheet else []))
    assert "订单导出.xlsx[订单]" in result.output
    assert _rows(db, f"SELECT {XLSX_COLUMNS} FROM orders ORDER BY order_id") == XLSX_ORDERS
    assert _rows(db, "SELECT file, rows_read, rejected FROM loads") == [(f"{path.resolve()}[订单]", 6, 0)]


def test_xlsx_streams_in_batches(
    invoke: Callable[..., Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import chuanliu_cli.ingest.formats.xlsx as xlsx

    monkeypatch.setattr(xlsx, "XLSX_BATCH_ROWS", 2)
    path = _orders_workbook(tmp_path / "orders.xlsx")
    readers = xlsx.open_xlsx(path, None)
    assert [(r.sheet, r.name, r.line_label, r.headers) for r in readers] == [
        ("订单", f"{path}[订单]", "row", XLSX_HEADER)
    ]
    batches = list(readers[0].batches([0, 6]))
    assert [b.line_numbers() for b in batches] == [[2, 3], [4, 6], [7, 10]]
    assert [b.columns[0].to_list() for b in batches] == [
        ["1234567890123456", "0001234567890123"],
        ["45047", "4830129377205611"],
        ["4830129377205612", "4830129377205613"],
    ]
    assert batches[1].raw(0) == "45047,ks1,u3,,自营成交,商品卡成交,45047.5,1.2万,1,已发货,-"
    # a 16-digit order number in a number cell: a spreadsheet may have rounded its last digit (said once
    # the sheet is read; the epoch milliseconds of 13 digits and the text ids are not)
    assert readers[0].notes == [
        f"{path}[订单]: column 订单编号 has 1 number cell of 16 or more digits (e.g. 1234567890123456 in row 2): "
        "a spreadsheet keeps 15 significant digits, so the last digits of such ids may have been rounded to 0 "
        "(orders then merge or match no review); export ids as text"
    ]
    db = tmp_path / "c.duckdb"
    loaded = _load(invoke, db, "orders", str(path))
    assert "column 订单编号 has 1 number cell of 16 or more digits" in loaded.stderr
    assert _rows(db, f"SELECT {XLSX_COLUMNS} FROM orders ORDER BY order_id") == XLSX_ORDERS


def test_xlsx_unknown_or_headerless_sheet_exit_4(invoke: Callable[..., Any], tmp_path: Path) -> None:
    path = _orders_workbook(tmp_path / "orders.xlsx")
    db = tmp_path / "c.duckdb"
    out = _fails(invoke, db, "orders", str(path), "--sheet", "订 单")
    assert "orders.xlsx: no sheet '订 单'; the sheets are: '说明', '订单', 'Sheet3'" in out
    assert "did you mean --sheet '订单'?" in out
    out = _fails(invoke, db, "orders", str(path), "--sheet", "说明")
    assert "orders.xlsx[说明]: missing required column order_id of orders (found: 订单导出说明)" in out
    out = _fails(invoke, db, "orders", str(path), "--sheet", "Sheet3")
    assert "orders.xlsx[Sheet3]: the sheet is empty (no header row)" in out


def test_sheet_option_on_a_csv_warns_and_loads(invoke: Callable[..., Any], tmp_path: Path) -> None:
    path = tmp_path / "orders.csv"
    path.write_text(
        "order_id,shop_id,buyer_id,order_time,paid_amount,status\n1,ks1,b1,2023-05-01 10:00:00,5,completed\n"
    )
    result = _load(invoke, tmp_path / "c.duckdb", "orders", str(path), "--sheet", "订单")
    assert f"Warning: {path}: --sheet 订单 ignored: the file is csv, not a workbook" in result.output
    assert _rows(tmp_path / "c.duckdb", "SELECT order_id FROM orders") == [("1",)]


def test_xlsx_every_data_sheet_loads_and_rejects_name_sheet_and_row(
    invoke: Callable[..., Any], tmp_path: Path
) -> None:
    import xlsxwriter

    path = tmp_path / "reviews.xlsx"
    book = xlsxwriter.Workbook(str(path))
    header = ["评价ID", "订单编号", "店铺ID", "商品质量评分", "评价时间", "是否投诉"]
    # 第一页: a blank first row, the header in sheet row 2. 第二页: header, a blank row, data from row 3.
    first = book.add_worksheet("第一页")
    first.write_row(1, 0, header)
    first.write_row(2, 0, [100000000000001, "0001", "ks1", 5, "2023-05-03 10:00:00", True])
    second = book.add_worksheet("第二页")
    second.write_row(0, 0, header)
    second.write_row(2, 0, [100000000000002, "0002", "ks1", 4.0, "2023-05-03 11:00:00", False])
    second.write_row(3, 0, [100000000000003, "0003", "ks1", 9, "2023-05-03 12:00:00", "暂无投诉"])
    second.write_row(4, 0, [100000000000004, "0004", "ks1", 5, "2023-05-03 13:00:00", False, "备注"])
    book.close()
    db = tmp_path / "c.duckdb"
    result = _load(invoke, db, "reviews", str(path), "--max-reject-rate", "0.7")
    assert "reviews.xlsx[第二页] row 4: column quality_score: '9' is above the maximum 5" in result.output
    assert _rows(db, "SELECT review_id, order_id, quality_score, complaint FROM reviews ORDER BY 1") == [
        ("100000000000001", "0001", 5, True),
        ("100000000000002", "0002", 4, False),
    ]
    assert _rows(db, "SELECT file, line, reason, raw FROM rejected_rows ORDER BY line") == [
        (
            f"{path}[第二页]", "row 4", "column quality_score: '9' is above the maximum 5",
            "100000000000003,0003,ks1,9,2023-05-03 12:00:00,暂无投诉",
        ),
        (
            f"{path}[第二页]", "row 5", "has a value in column G beyond the 6 headers",
            "100000000000004,0004,ks1,5,2023-05-03 13:00:00,false,备注",
        ),
    ]  # fmt: skip


def _zip(entries: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, body in entries.items():
            zf.writestr(name, body)
    return buf.getvalue()


def _damaged_sheet(tmp_path: Path) -> bytes:
    """A valid workbook whose sheet XML is cut off in the middle of a row."""
    good = _orders_workbook(tmp_path / "good.xlsx").read_bytes()
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(good)) as src, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            body = src.read(info)
            if info.filename == "xl/worksheets/sheet2.xml":
                body = body[: body.index(b'<row r="3"') + 30]
            dst.writestr(info.filename, body)
    return out.getvalue()


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (
            lambda tmp: _zip(
                {"xl/workbook.xml": b"<workbook/>", "xl/worksheets/sheet1.xml": bytes(30 << 20)}
            ),
            "orders.xlsx: refused: compression ratio",
        ),
        (lambda tmp: _zip({"hello.txt": b"hello"}), "orders.xlsx: a zip archive but not an XLSX workbook"),
        (
            lambda tmp: _orders_workbook(tmp / "w.xlsx").read_bytes()[:3000],
            "orders.xlsx: not a readable XLSX",
        ),
        (
            lambda tmp: b"order_id,shop_id\n1,ks1\n",
            "orders.xlsx: not a readable XLSX workbook (damaged or not",
        ),
        (
            lambda tmp: b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(600),
            "orders.xlsx: an encrypted workbook or a legacy .xls file",
        ),
        (_damaged_sheet, "orders.xlsx[订单]: damaged sheet after row 2"),
    ],
    ids=["zip-bomb", "no-workbook", "truncated", "csv-named-xlsx", "encrypted", "damaged-sheet"],
)
def test_damaged_or_hostile_xlsx_exit_4(
    invoke: Callable[..., Any], tmp_path: Path, build: Callable[[Path], bytes], message: str
) -> None:
    path = tmp_path / "orders.xlsx"
    path.write_bytes(build(tmp_path))
    out = _fails(invoke, tmp_path / "c.duckdb", "orders", str(path))
    assert message in out


def test_legacy_xls_is_explained_not_read_as_text(invoke: Callable[..., Any], tmp_path: Path) -> None:
    path = tmp_path / "订单.xls"
    path.write_bytes(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(600))
    out = _fails(invoke, tmp_path / "c.duckdb", "orders", str(path))
    assert "订单.xls: an encrypted workbook or a legacy .xls file, not an XLSX workbook" in out
    assert "save it as .xlsx" in out


def test_xlsx_over_size_limit_is_refused_before_opening(
    invoke: Callable[..., Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import chuanliu_cli.ingest.formats.xlsx as xlsx

    monkeypatch.setattr(xlsx, "MAX_UNCOMPRESSED_BYTES", 1000)
    path = _orders_workbook(tmp_path / "orders.xlsx")
    out = _fails(invoke, tmp_path / "c.duckdb", "orders", str(path))
    assert "orders.xlsx: refused: the workbook would inflate to" in out


def test_xlsx_cell_text_rules() -> None:
    from datetime import time, timedelta

    from chuanliu_cli.ingest.formats.xlsx import _cell_text

    assert [
        _cell_text(v)
        for v in (
            1234567890123456.0, 1.2345678901234568e16, 45047, 12.34, 1e-05, 0.1 + 0.2, -0.0, True, False,
            datetime(2023, 5, 1, 20, 0, 0), datetime(2023, 5, 1, 20, 0, 0, 500_000), date(2023, 5, 2),
            time(20, 30), timedelta(minutes=90), "0001", "", None, "#N/A",
        )
    ] == [
        "1234567890123456", "12345678901234568", "45047", "12.34", "0.00001", "0.30000000000000004", "0",
        "true", "false", "2023-05-01 20:00:00", "2023-05-01 20:00:00.500", "2023-05-02 00:00:00",
        "20:30:00", "1:30:00", "0001", None, None, "#N/A",
    ]  # fmt: skip


# --- value forms, mappings -------------------------------------------------------------------------------


def test_duration_minutes_or_end_time(invoke: Callable[..., Any], tmp_path: Path) -> None:
    path = tmp_path / "直播.csv"
    path.write_text(
        "直播ID,店铺ID,账号类型,达人ID,开播时间,下播时间,直播时长（分钟）,累计观看人数,成交金额\n"
        "L1,ks1,店铺号,,2023/5/1 20:00,2023/5/1 21:30,,120,1.2万\n"
        "L2,ks1,合作达人,dr1,2023-05-02T20:00:00+08:00,,45.5,,-\n"
        "L3,ks1,自播,,2023-05-03 20:00:00,2023-05-03 22:00:00,100,,\n",
        encoding="gb18030",
    )
    db = tmp_path / "c.duckdb"
    _load(invoke, db, "livestreams", str(path))
    sql = (
        "SELECT live_id, host_type, promoter_id, strftime(start_time, '%Y-%m-%d %H:%M'), "
        "strftime(end_time, '%H:%M'), duration_minutes, viewers, gmv FROM livestreams ORDER BY 1"
    )
    assert _rows(db, sql) == [
        ("L1", "self", None, "2023-05-01 20:00", "21:30", 90.0, 120, Decimal("12000.00")),
        ("L2", "promoter", "dr1", "2023-05-02 20:00", None, 45.5, None, None),
        # both given: the export's own duration is kept, not recomputed from the times
        ("L3", "self", None, "2023-05-03 20:00", "22:00", 100.0, None, None),
    ]


def test_mapping_adds_alias_and_value_map(invoke: Callable[..., Any], tmp_path: Path) -> None:
    path = tmp_path / "orders.csv"
    path.write_text(
        "订单编号,店铺编号,买家ID,售卖方式,下单时间,实付金额,订单状态\n"
        "0001,ks1,b1,直播自营,2023-05-01 20:00:00,5,交易成功\n"
        "0002,ks1,b2,达人带货,2023-05-01 21:00:00,6,交易成功\n",
        encoding="utf-8",
    )
    db = tmp_path / "c.duckdb"
    out = _fails(invoke, db, "orders", str(path))
    assert "missing required column shop_id of orders" in out
    mapping = tmp_path / "mapping.yaml"
    mapping.write_text(
        "orders:\n  shop_id: [店铺编号]\nvalues:\n  sale_mode: {直播自营: self, 达人带货: distribution}\n",
        encoding="utf-8",
    )
    _load(invoke, db, "orders", str(path), "--mapping", str(mapping))
    assert _rows(db, "SELECT order_id, shop_id, sale_mode, carrier FROM orders ORDER BY 1") == [
        ("0001", "ks1", "self", "other"),
        ("0002", "ks1", "distribution", "other"),
    ]


def test_open_platform_fields_with_fen_scale(invoke: Callable[..., Any], tmp_path: Path) -> None:
    db = tmp_path / "c.duckdb"
    csv = str(DATA / "open_platform_orders.csv")
    _load(invoke, db, "orders", csv, "--mapping", str(DATA / "open_platform.yaml"))
    sql = (
        "SELECT order_id, shop_id, buyer_id, item_name, quantity, sale_mode, promoter_id, "
        "strftime(order_time, '%Y-%m-%d %H:%M'), paid_amount, status FROM orders ORDER BY 1"
    )
    assert _rows(db, sql) == [
        ("2305011234567890", "ks700001", "f8c1a2b3d4e5", "和田玉手镯", 1, "self", None,
         "2023-05-01 20:00", Decimal("1234.50"), "completed"),
        ("2305011234567891", "ks700001", "f8c1a2b3d4e6", "纯棉短袖T恤", 2, "distribution", "dr58571939",
         "2023-05-01 21:00", Decimal("88.00"), "paid"),
        ("2305011234567892", "ks700002", "f8c1a2b3d4e7", "每日坚果礼盒", 1, "self", None,
         "2023-05-01 22:00", Decimal("0.99"), "closed"),
    ]  # fmt: skip


def test_unmapped_required_column_lists_found_columns_and_closest_alias(
    invoke: Callable[..., Any], tmp_path: Path
) -> None:
    path = tmp_path / "订单.csv"
    path.write_bytes(
        ZH_HEADER.replace("订单编号", "订单编码").encode("gb18030") + b"\n" + ZH_ROWS[0].encode("gb18030")
    )
    out = _fails(invoke, tmp_path / "c.duckdb", "orders", str(path))
    assert (
        "订单.csv: missing required column order_id of orders (found: 订单编码, 店铺ID, 买家ID, 售卖方式, "
        "售卖载体, 下单时间, 实付金额, 订单状态, 退款金额, 退款原因)" in out
    )
    assert "did you mean '订单编码'?" in out
    assert "accepted headers for order_id: order_id, 订单号, 订单编号" in out


# --- load --dir: every format of the sample gives the English CSV's rows ---------------------------------

#: The options of both samples: small enough for a fast test, big enough for every table and value.
SAMPLE_ARGS = ("--merchants=12", "--months=1", "--end=2023-05", "--seed=7")
KEYS = {"orders": "order_id", "reviews": "review_id", "livestreams": "live_id", "shops": "shop_id"}


def _contents(db: Path) -> dict[str, list[tuple[Any, ...]]]:
    return {t: _rows(db, f"SELECT * FROM {t} ORDER BY {k}") for t, k in KEYS.items()}


@pytest.fixture(scope="module")
def english_sample(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[tuple[Any, ...]]]:
    """The tables loaded from the English UTF-8 CSV sample."""
    from chuanliu_cli.ingest.loader import LoadOptions, discover, load_files
    from chuanliu_cli.sample import generate_sample
    from chuanliu_cli.store.database import open_database

    out = tmp_path_factory.mktemp("sample-en")
    generate_sample(out / "data", merchants=12, months=1, end="2023-05", seed=7)
    with open_database(str(out / "en.duckdb"), "write") as db:
        results = load_files(db, discover(out / "data"), LoadOptions())
    assert [r.rejected for r in results] == [0, 0, 0, 0]
    contents = _contents(out / "en.duckdb")
    assert all(contents.values())
    return contents


@pytest.mark.parametrize(
    ("encoding", "fmt"),
    [("gb18030", "csv"), ("utf-8", "xlsx"), ("utf-8", "parquet")],
    ids=["csv", "xlsx", "pq"],
)
def test_load_dir_chinese_exports_match_english_csv(
    invoke: Callable[..., Any],
    tmp_path: Path,
    english_sample: dict[str, list[tuple[Any, ...]]],
    encoding: str,
    fmt: str,
) -> None:
    data = tmp_path / "导出"
    made = invoke(
        "sample", str(data), *SAMPLE_ARGS, "--headers", "zh", "--encoding", encoding, "--format", fmt
    )
    assert made.exit_code == 0, made.output
    assert sorted(p.name for p in data.iterdir()) == sorted(
        f"{n}.{fmt}" for n in ("订单", "评价", "直播", "店铺")
    )
    db = tmp_path / "c.duckdb"
    _load(invoke, db, "--dir", str(data))
    loads = _rows(db, 'SELECT "table", file, rejected FROM loads ORDER BY load_id')
    assert [(t, Path(f).name.split("[")[0], r) for t, f, r in loads] == [
        ("orders", f"订单.{fmt}", 0),
        ("reviews", f"评价.{fmt}", 0),
        ("livestreams", f"直播.{fmt}", 0),
        ("shops", f"店铺.{fmt}", 0),
    ]
    assert _contents(db) == english_sample


# --- concatenated and multi-part exports (issue #19 point 6) -------------------------------------------


def test_concatenated_utf8_bom_files_skip_the_repeated_header(
    invoke: Callable[..., Any], tmp_path: Path
) -> None:
    part = f"{ZH_HEADER}\n{{}}\n"
    path = tmp_path / "orders.csv"
    path.write_bytes(
        codecs.BOM_UTF8
        + part.format(ZH_ROWS[0]).encode()
        + codecs.BOM_UTF8
        + part.format(ZH_ROWS[1]).encode()
    )
    db = tmp_path / "c.duckdb"
    _load(invoke, db, "orders", str(path))
    assert _rows(db, "SELECT order_id, buyer_id FROM orders ORDER BY order_id") == [
        ("0001234567890123", "买家甲"),
        ("4830129377205612", "买家丙"),
    ]
    assert _rows(db, "SELECT count(*) FROM rejected_rows") == [(0,)]


def test_gb18030_part_then_utf8_part_is_read_line_by_line(invoke: Callable[..., Any], tmp_path: Path) -> None:
    from chuanliu_cli.ingest.readers import open_file

    gb = f"{ZH_HEADER}\n{ZH_ROWS[0]}\n".encode("gb18030")
    utf8 = f"{ZH_HEADER}\n{ZH_ROWS[1]}\n".encode()
    path = tmp_path / "orders.csv"
    path.write_bytes(gb + utf8)
    db = tmp_path / "c.duckdb"
    _load(invoke, db, "orders", str(path))
    assert _rows(db, "SELECT order_id, buyer_id, status FROM orders ORDER BY order_id") == [
        ("0001234567890123", "买家甲", "completed"),
        ("4830129377205612", "买家丙", "shipped"),
    ]
    # the reader says where each encoding was used, once the file has been read
    (reader,) = open_file(path)
    rows = [r for b in reader.batches([2]) for r in (b.rows or [])]
    assert [r[2] for r in rows] == ["买家甲", "买家丙"]
    assert reader.notes == [
        f"{path}: the encoding changes part-way (lines 1-2 GB18030, lines 3-4 UTF-8); each part was read "
        "in its own encoding (concatenated exports?)"
    ]


def test_a_utf8_file_is_not_said_to_switch(tmp_path: Path) -> None:
    from chuanliu_cli.ingest.readers import open_file

    path = tmp_path / "orders.csv"
    path.write_bytes(f"{ZH_HEADER}\n{ZH_ROWS[0]}\n{ZH_ROWS[1]}\n".encode())
    (reader,) = open_file(path)
    assert sum(len(b.lines) for b in reader.batches([0])) == 2
    assert reader.notes == []


def _summary_first_workbook(path: Path) -> Path:
    import xlsxwriter

    book = xlsxwriter.Workbook(str(path))
    summary = book.add_worksheet("汇总")
    summary.write_row(0, 0, ["店铺ID", "订单数", "成交金额"])
    summary.write_row(1, 0, ["ks700001", 1, 1234.5])
    ws = book.add_worksheet("订单明细")
    ws.write_row(0, 0, ZH_HEADER.split(","))
    for n, row in enumerate(ZH_ROWS, start=1):
        cells = next(csv.reader([row]))
        ws.write_row(n, 0, cells)
    book.close()
    return path


def test_xlsx_with_a_summary_sheet_first_reads_the_data_sheet(
    invoke: Callable[..., Any], tmp_path: Path
) -> None:
    from chuanliu_cli.ingest.readers import open_file

    path = _summary_first_workbook(tmp_path / "订单.xlsx")
    readers = open_file(path)
    assert [r.sheet for r in readers] == ["订单明细"]
    assert readers[0].notes == [
        f"{path}: read sheet '订单明细'; left out sheet '汇总' (店铺ID, 订单数, 成交金额): not an export's "
        "header (name the sheet to read to choose another)"
    ]
    db = tmp_path / "c.duckdb"
    _load(invoke, db, "orders", str(path))
    assert _rows(db, "SELECT order_id FROM orders ORDER BY order_id") == [
        ("0001234567890123",),
        ("4830129377205612",),
    ]
    # naming the summary sheet still reads it, and fails on its missing columns
    out = _fails(invoke, db, "orders", str(path), "--sheet", "汇总")
    assert "orders.xlsx" not in out and "[汇总]: missing required column order_id of orders" in out


_LINE_TEXT = st.text(alphabet='ab,1 云源珠宝\ufeff\r"', max_size=12)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(_LINE_TEXT, st.sampled_from(["utf-8", "utf-8", "gb18030", "gb18030", "utf-8-bom"])),
        max_size=25,
    ),
    st.integers(4, 60),
    st.booleans(),
)
@example([("a", "utf-8"), ("云", "utf-8"), ("云", "gb18030")], 7, True)  # a run's last line inside a chunk
@example([("云", "utf-8"), ("云", "utf-8"), ("云", "gb18030")], 4, True)  # a run over two whole chunks
@example([("云", "gb18030"), ("a", "utf-8"), ("珠宝", "utf-8"), ("b", "utf-8")], 5, False)
def test_whole_utf8_chunks_read_as_line_by_line(
    tmp_path_factory: pytest.TempPathFactory, lines: list[tuple[str, str]], chunk: int, final_newline: bool
) -> None:
    """A chunk of a detected-encoding file that is UTF-8 throughout (no line starting with a byte order
    mark) is decoded at once instead of line by line: the same lines, and the same note when the encoding
    changes part-way, as decoding every line alone (the reader's chunks made small, so that files of a few
    lines have many, some UTF-8 throughout and some not)."""
    from chuanliu_cli.ingest import readers

    data = b"".join(
        (codecs.BOM_UTF8 + text.encode() if enc == "utf-8-bom" else text.encode(enc.removesuffix("-bom")))
        + b"\n"
        for text, enc in lines
    )
    if not final_newline:
        data += b"tail"
    path = tmp_path_factory.mktemp("chunks") / "mixed.csv"
    path.write_bytes(data)

    def read(whole: bool) -> tuple[list[str], list[str]]:
        notes: list[str] = []
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(readers, "_CHUNK_BYTES", chunk)
            if not whole:
                mp.setattr(readers, "_utf8_lines", lambda data, cut: None)
            try:
                return list(readers._mixed_lines(path, notes)), notes
            except ChuanliuError as exc:
                return ["error", str(exc)], notes

    assert read(whole=True) == read(whole=False)


@pytest.mark.parametrize(
    ("rows", "selected", "expected"),
    [
        ([["a", "", "c"], ["d", "e", "f"]], [0, 2], {0: ["a", "d"], 2: ["c", "f"]}),
        # rows of other widths (rejected later with their shape): cut or padded, empty cells NULL
        ([["a", "", "c"], ["d"], ["f", "g", "h", "i"]], [1, 2], {1: [None, None, "g"], 2: ["c", None, "h"]}),
        ([["x", "y"]], [1, 1], {1: ["y"]}),
        ([], [0, 3], {0: [], 3: []}),
    ],
)
def test_text_batch_columns(
    rows: list[list[str]], selected: list[int], expected: dict[int, list[str | None]]
) -> None:
    """A text batch's columns are polars text, one per selected file column, NULL for an empty cell, a row
    of another width cut or padded; the rows themselves are kept as they were read (for rejected_rows)."""
    from chuanliu_cli.ingest.formats.base import text_batch

    as_read = [list(r) for r in rows]
    batch = text_batch(rows, list(range(2, 2 + len(rows))), selected, {})
    assert {i: c.to_list() for i, c in batch.columns.items()} == expected
    assert batch.rows == as_read
    assert batch.line_numbers() == list(range(2, 2 + len(rows)))
    assert all(c.dtype == pl.String for c in batch.columns.values())
