"""File discovery (ingest/discover.py): a directory's files to tables by name or header, every file accounted
for; `load FILE...` without a table; .xls files that are really HTML or CSV text."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import duckdb
import pytest

from chuanliu_cli.exit_codes import ExitCode
from chuanliu_cli.ingest.discover import (
    discover,
    discover_files,
    table_for_file,
    table_for_header,
    tables_in_name,
)

ORDERS = (
    "订单编号,店铺ID,买家ID,下单时间,实付金额,订单状态\n"
    "2704810274450369,ks1,b1,2023-05-01 10:00:00,5,交易成功\n"
    "2704810274450370,ks2,b2,2023-05-02 10:00:00,6,交易成功\n"
)
REVIEWS = "评价ID,订单编号,店铺ID,商品质量评分,评价时间\nr1,2704810274450369,ks1,5,2023-05-03 10:00:00\n"
LIVES = "live_id,shop_id,host_type,start_time,end_time\nl1,ks1,self,2023-05-01 20:00:00,2023-05-01 22:00:00\n"
SHOPS = "shop_id,shop_name\nks1,玉石坊\nks2,茶叶铺\n"


def _rows(db: Path, sql: str) -> list[tuple[Any, ...]]:
    con = duckdb.connect(str(db), read_only=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def _counts(db: Path) -> dict[str, int]:
    return {
        t: _rows(db, f"SELECT count(*) FROM {t}")[0][0] for t in ("orders", "reviews", "livestreams", "shops")
    }


def _issue_folder(folder: Path) -> Path:
    """The folder of issue #19: the orders file used to be skipped without a word."""
    folder.mkdir()
    (folder / "2023-05订单.csv").write_text(ORDERS, encoding="utf-8")
    (folder / "评价导出(1).csv").write_text(REVIEWS, encoding="utf-8")
    (folder / "Livestreams_May.CSV").write_text(LIVES, encoding="utf-8")
    (folder / "shop_list.csv").write_text(SHOPS, encoding="utf-8")
    return folder


def test_the_issue_folder_loads_all_four(invoke: Callable[..., Any], tmp_path: Path) -> None:
    data = _issue_folder(tmp_path / "exports")
    db = tmp_path / "c.duckdb"
    result = invoke("--db", str(db), "load", "--dir", str(data))
    assert result.exit_code == 0, result.output
    assert _counts(db) == {"orders": 2, "reviews": 1, "livestreams": 1, "shops": 2}
    assert "2023-05订单.csv" in result.output and "name: 订单" in result.output


def test_every_file_is_listed_loaded_or_skipped_with_why(invoke: Callable[..., Any], tmp_path: Path) -> None:
    data = _issue_folder(tmp_path / "exports")
    (data / ".DS_Store").write_bytes(b"\x00\x01")
    (data / "~$2023-05订单.xlsx").write_bytes(b"lock")
    (data / "说明.pdf").write_bytes(b"%PDF-1.4")
    (data / "notes.txt").write_text("备注\n本月数据已核对\n", encoding="utf-8")
    (data / "export(2).csv").write_text(ORDERS, encoding="utf-8")  # the header says orders
    (data / "old").mkdir()
    found = {f.path.name: (f.table, f.why) for f in discover_files(data)}
    assert found == {
        ".DS_Store": (None, "hidden or system file"),
        "~$2023-05订单.xlsx": (None, "hidden or system file"),
        "说明.pdf": (None, found["说明.pdf"][1]),
        "notes.txt": (
            None,
            "no table recognised: its name names no table and its header has no required column of any table",
        ),
        "export(2).csv": ("orders", "header: 6 of 6 required orders columns (its name names no table)"),
        "old": (None, "a folder (folders are not searched)"),
        "2023-05订单.csv": ("orders", "name: 订单"),
        "评价导出(1).csv": ("reviews", "name: 评价"),
        "Livestreams_May.CSV": ("livestreams", "name: Livestreams"),
        "shop_list.csv": ("shops", "name: shop"),
    }
    assert found["说明.pdf"][1].startswith("not an export: extension .pdf (supported: .csv .tsv")
    # two files for one table are both loaded, in load order
    assert [(t, p.name) for t, p in discover(data)] == [
        ("orders", "2023-05订单.csv"),
        ("orders", "export(2).csv"),
        ("reviews", "评价导出(1).csv"),
        ("livestreams", "Livestreams_May.CSV"),
        ("shops", "shop_list.csv"),
    ]
    # and the load summary shows the skipped ones too
    db = tmp_path / "c.duckdb"
    result = invoke("--db", str(db), "load", "--dir", str(data))
    assert result.exit_code == 0, result.output
    assert "skipped" in result.output and "notes.txt" in result.output and "说明.pdf" in result.output


def test_data_names_every_file_it_does_not_read(invoke: Callable[..., Any], tmp_path: Path) -> None:
    """`--data` shows no file list: a file with an export's extension that it leaves unread (its table
    was not recognised) is a warning on stderr and in the JSON; hidden files, folders and other
    extensions (说明.pdf) are not."""
    import json

    data = _issue_folder(tmp_path / "exports")
    (data / ".DS_Store").write_bytes(b"\x00\x01")
    (data / "old").mkdir()
    (data / "说明.pdf").write_bytes(b"%PDF-1.4")
    (data / "export_0501.csv").write_text("订单编号,店铺ID\n2704810274450371,ks3\n", encoding="utf-8")
    args = ["eligible", "--month", "2023-05", "--data", str(data)]
    result = invoke(*args, "--format", "json")
    assert result.exit_code == 0, result.output
    unread = [w for w in json.loads(result.stdout)["warnings"] if ": not read: " in w]
    assert [w.split(": not read: ")[0] for w in unread] == [f"{data}/export_0501.csv"]
    assert "header fits orders and reviews equally" in unread[0] and "put a table word" in unread[0]
    assert f"Warning: {data}/export_0501.csv: not read: " in result.stderr
    assert ".DS_Store" not in result.stderr and "old:" not in result.stderr and "说明" not in result.stderr
    quiet = invoke("-q", *args, "--format", "csv")  # warnings survive -q
    assert quiet.exit_code == 0 and "export_0501.csv: not read" in quiet.stderr
    strict = invoke(*args, "--strict")
    assert strict.exit_code == int(ExitCode.STRICT_WARNING), strict.output


def test_a_folder_holding_exports_is_named_with_them(invoke: Callable[..., Any], tmp_path: Path) -> None:
    """Exports put one folder per month (2023-05/orders.csv) are not read (folders are not searched): the
    folder is named with the exports it holds, on stderr and in the JSON; a folder of other files is not."""
    import json

    data = _issue_folder(tmp_path / "exports")
    for month in ("2023-04", "2023-05"):
        (data / month).mkdir()
        for name in ("orders.csv", "reviews.csv", "livestreams.csv", "直播间商品.csv", "notes.txt"):
            (data / month / name).write_text("x\n", encoding="utf-8")
    (data / "old").mkdir()
    (data / "old" / "说明.pdf").write_bytes(b"%PDF-1.4")
    (data / ".git").mkdir()
    (data / ".git" / "orders.csv").write_text("x\n", encoding="utf-8")
    result = invoke("eligible", "--month", "2023-05", "--data", str(data), "--format", "json")
    assert result.exit_code == 0, result.output
    folders = [w for w in json.loads(result.stdout)["warnings"] if "/: not read: " in w]
    assert folders == [
        f"{data}/{month}/: not read: a folder holding livestreams.csv, orders.csv, reviews.csv and 1 more; only "
        "the files directly in the folder are read: read that folder instead, or move its files up"
        for month in ("2023-04", "2023-05")
    ]
    assert f"Warning: {data}/2023-05/: not read: a folder holding" in result.stderr
    assert "old/" not in result.stderr and ".git" not in result.stderr


@pytest.mark.parametrize(
    ("name", "table"),
    [
        ("2023-05订单.csv", "orders"),
        ("评价导出(1).csv", "reviews"),
        ("Livestreams_May.CSV", "livestreams"),
        ("shop_list.csv", "shops"),
        ("ORDERS.CSV", "orders"),
        ("order-2023-05.xlsx", "orders"),
        ("may_orders.parquet", "orders"),
        ("myOrders.jsonl", "orders"),  # a camelCase step is a word boundary
        ("comments.tsv", "reviews"),
        ("comment_export.csv", "reviews"),
        ("live_sessions.xls", "livestreams"),
        ("直播场次.csv", "livestreams"),
        ("店铺列表.csv", "shops"),
        ("recorder.csv", None),  # `order` inside a word is not the word
        ("delivery.csv", None),  # nor `live`
        ("shopping.csv", None),
        ("直播订单.csv", None),  # two tables named: the header decides
        ("ShopOrders.csv", None),
        ("2023-05.csv", None),
    ],
)
def test_table_words_anywhere_any_case(name: str, table: str | None) -> None:
    assert table_for_file(Path(name)) == table


def test_longest_word_wins_where_words_overlap() -> None:
    assert tables_in_name("livestreams_2023.csv") == [("livestreams", "livestreams")]
    assert tables_in_name("直播订单.csv") == [("livestreams", "直播"), ("orders", "订单")]


def test_name_naming_two_tables_is_decided_by_the_header(tmp_path: Path) -> None:
    (tmp_path / "直播订单.csv").write_text(ORDERS, encoding="utf-8")
    (found,) = discover_files(tmp_path)
    assert found.table == "orders"
    assert found.why == "header: 6 of 6 required orders columns (its name names livestreams and orders)"


def test_header_ties_and_nothing_are_skipped_with_why() -> None:
    assert table_for_header(["订单编号", "店铺ID"]) == (
        None,
        "its header fits orders and reviews equally (2 required column(s) each)",
    )
    # a shops list: one required column, but all of them (shops) beats one of several
    assert table_for_header(["店铺ID", "店铺名称"])[0] == "shops"
    assert table_for_header(["备注"]) == (None, "its header has no required column of any table")


def test_a_directory_without_exports_says_why_for_each_file(
    invoke: Callable[..., Any], tmp_path: Path
) -> None:
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "readme.md").write_text("hello")
    result = invoke("--db", str(tmp_path / "c.duckdb"), "load", "--dir", str(tmp_path / "data"))
    assert result.exit_code == ExitCode.INVALID_DATA, result.output
    assert "no export files found" in result.output
    assert "readme.md: not an export: extension .md" in result.output


def test_load_files_without_a_table_infers_each(invoke: Callable[..., Any], tmp_path: Path) -> None:
    data = _issue_folder(tmp_path / "exports")
    db = tmp_path / "c.duckdb"
    files = sorted(str(p) for p in data.iterdir())
    result = invoke("--db", str(db), "load", *files)
    assert result.exit_code == 0, result.output
    assert _counts(db) == {"orders": 2, "reviews": 1, "livestreams": 1, "shops": 2}
    # `load orders FILE` still names the table, whatever the file is called
    other = tmp_path / "export.csv"
    other.write_text(ORDERS.replace("ks1", "ks9"), encoding="utf-8")
    result = invoke("--db", str(db), "load", "orders", str(other))
    assert result.exit_code == 0, result.output
    assert _rows(db, "SELECT shop_id FROM orders WHERE order_id = '2704810274450369'") == [("ks9",)]


def test_load_a_file_whose_table_cannot_be_told(invoke: Callable[..., Any], tmp_path: Path) -> None:
    path = tmp_path / "data.csv"
    path.write_text("订单编号,店铺ID\n1,ks1\n", encoding="utf-8")
    result = invoke("--db", str(tmp_path / "c.duckdb"), "load", str(path))
    assert result.exit_code == ExitCode.INVALID_DATA, result.output
    assert "its header fits orders and reviews equally" in result.output
    assert "name the table the files hold" in result.output
    result = invoke("--db", str(tmp_path / "c.duckdb"), "load", "nonsense")
    assert result.exit_code == ExitCode.USAGE, result.output
    assert "'nonsense' is neither a table nor a file" in result.output


# --- .xls files: HTML tables, CSV text, legacy workbooks ------------------------------------------------

HTML_XLS = """<html xmlns:x="urn:schemas-microsoft-com:office:excel">
<head><meta http-equiv="Content-Type" content="text/html; charset=utf-8"></head>
<body><table border="1">
<tr><th>订单编号</th><th>店铺ID</th><th>买家ID</th><th>下单时间</th><th>实付金额</th><th>订单状态</th></tr>
<tr><td style="mso-number-format:'\\@'">0001234567890123</td><td>ks1</td><td>买家&amp;甲</td>
<td>2023-05-01 10:00:00</td><td>1,234.50</td><td>交易成功</td></tr>
<tr><td>4830129377205612</td><td>ks2</td><td>b2</td><td>2023/5/2 10:00</td><td>88</td><td>已发货</td></tr>
</table></body></html>
"""


def test_html_table_named_xls_is_read_as_a_table(invoke: Callable[..., Any], tmp_path: Path) -> None:
    data = tmp_path / "exports"
    data.mkdir()
    (data / "订单导出.xls").write_text(HTML_XLS, encoding="utf-8")
    (data / "live.xls").write_text(LIVES.replace(",", "\t"), encoding="gb18030")  # TSV text named .xls
    db = tmp_path / "c.duckdb"
    result = invoke("--db", str(db), "load", "--dir", str(data))
    assert result.exit_code == 0, result.output
    assert _rows(db, "SELECT order_id, buyer_id, paid_amount FROM orders ORDER BY order_id") == [
        ("0001234567890123", "买家&甲", pytest.approx(1234.5)),
        ("4830129377205612", "b2", pytest.approx(88)),
    ]
    assert _rows(db, "SELECT live_id FROM livestreams") == [("l1",)]


def test_html_xls_without_a_table_and_legacy_xls_are_refused(
    invoke: Callable[..., Any], tmp_path: Path
) -> None:
    page = tmp_path / "订单.xls"
    page.write_text("<html><body><p>登录已过期</p></body></html>", encoding="utf-8")
    result = invoke("--db", str(tmp_path / "c.duckdb"), "load", str(page))
    assert result.exit_code == ExitCode.INVALID_DATA, result.output
    assert "an HTML file (named .xls) without a table with a header row" in result.output
    legacy = tmp_path / "orders.xls"
    legacy.write_bytes(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(600))
    result = invoke("--db", str(tmp_path / "c.duckdb"), "load", str(legacy))
    assert result.exit_code == ExitCode.INVALID_DATA, result.output
    assert "legacy Excel 97-2003 .xls workbook" in result.output
    assert "save it as .xlsx or .csv" in result.output
