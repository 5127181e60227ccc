"""The set-based Parquet load (DuckDB reads the file inside the load's statements) against the batch path.

Both paths must give the same tables, the same counts and the same rejects for the same file, whether the
table is empty (rows are appended, duplicates settled afterwards) or already holds rows (upsert).
"""

from __future__ import annotations

from dataclasses import astuple
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from chuanliu_cli.ingest import loader
from chuanliu_cli.ingest.loader import LoadOptions, load_files
from chuanliu_cli.store.database import open_database

T = pa.timestamp("us")


def _orders_table(rows: list[tuple[Any, ...]], amount: pa.DataType = pa.decimal128(14, 2)) -> pa.Table:
    names = ["order_id", "shop_id", "buyer_id", "item_name", "sale_mode", "order_time", "paid_amount"]
    names += ["quantity", "status", "refund_amount"]
    types = [pa.string()] * 5 + [T, amount, pa.int64(), pa.string(), amount]
    cols = list(zip(*rows, strict=True))
    return pa.table({n: pa.array(c, t) for n, c, t in zip(names, cols, types, strict=True)})


def _t(day: int, hour: int = 10) -> Any:
    import datetime as dt

    return dt.datetime(2023, 5, day, hour)


D = Decimal
ROWS = [
    ("o1", "ks1", "b1", 'mug, "blue"', "self", _t(1), D("10.00"), 1, "completed", None),
    ("o2", "ks1", "b2", None, "distribution", _t(2), D("20.50"), 2, "completed", D("5.00")),
    ("o3", "ks2", "b3", "tea", "self", _t(3), D("-1.00"), 1, "completed", None),  # rejected: below 0
    ("o4", "ks2", "b4", "pot", "self", _t(4), D("30.00"), 1, "refunded", D("40.00")),  # refund > paid
    ("o1", "ks1", "b1", "mug", "self", _t(5), D("11.00"), 1, "completed", None),  # duplicate: wins
    ("o5", "ks3", "b5", "cup", "已完成", _t(6), D("7.25"), 3, "completed", None),  # 已完成 is no sale mode
    ("o6", "ks3", "b6", "cup", "self", _t(7), D("8.00"), 1, "已完成", None),  # mapped status
]


def _load(db: Path, path: Path, monkeypatch: pytest.MonkeyPatch, set_based: bool, **opts: Any) -> Any:
    with monkeypatch.context() as m:
        if not set_based:
            m.setattr(loader, "_set_based", lambda p: False)
        else:
            real = loader._set_based
            m.setattr(loader, "_set_based", lambda p: bool(real(p)) or pytest.fail("not set-based"))
        with open_database(str(db), "write") as store:
            return load_files(store, [("orders", path)], LoadOptions(**opts))[0]


def _table(db: Path, columns: str = "*") -> list[tuple[Any, ...]]:
    con = duckdb.connect(str(db), read_only=True)
    try:
        return con.execute(f"SELECT {columns} FROM orders ORDER BY order_id").fetchall()
    finally:
        con.close()


def _summary(result: Any) -> tuple[Any, ...]:
    rejects = [(r.line, r.reason, r.raw) for r in result.all_rejects or result.rejects]
    counts = astuple(result)[4:12]  # rows_read … time_max
    return counts, rejects


def test_first_load_matches_the_batch_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "orders.parquet"
    pq.write_table(_orders_table(ROWS), path)
    fast = _load(tmp_path / "fast.duckdb", path, monkeypatch, True, max_reject_rate=0.5)
    slow = _load(tmp_path / "slow.duckdb", path, monkeypatch, False, max_reject_rate=0.5)
    assert _table(tmp_path / "fast.duckdb") == _table(tmp_path / "slow.duckdb")
    assert _summary(fast) == _summary(slow)
    assert (fast.rows_read, fast.inserted, fast.rejected, fast.duplicates) == (7, 3, 3, 1)
    # the duplicate's last occurrence won
    rows = {r[0]: r[1:] for r in _table(tmp_path / "fast.duckdb", "order_id, item_name, paid_amount")}
    assert rows["o1"] == ("mug", D("11.00"))
    reasons = {r.line: r.reason for r in fast.rejects}
    assert reasons["row 3"] == "column paid_amount: '-1.00' is below the minimum 0"
    assert reasons["row 4"] == "column refund_amount: 40.00 exceeds paid_amount 30.00"
    assert reasons["row 6"].startswith("column sale_mode: unknown value '已完成'")
    raw = {r.line: r.raw for r in fast.rejects}
    assert raw["row 3"] == "o3,ks2,b3,tea,self,2023-05-03 10:00:00,-1.00,1,completed,"


def test_upsert_matches_the_batch_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    first = tmp_path / "first.parquet"
    pq.write_table(_orders_table(ROWS[:2] + ROWS[5:]), first)
    changed = [
        ("o1", "ks1", "b1", "mug", "self", _t(5), D("11.00"), 1, "completed", None),  # changed
        ("o2", "ks1", "b2", None, "distribution", _t(2), D("20.50"), 2, "completed", D("5.00")),  # same
        ("o7", "ks4", "b7", "new", "self", _t(8), D("1.00"), 1, "completed", None),  # new
        ("o7", "ks4", "b7", "newer", "self", _t(9), D("2.00"), 1, "completed", None),  # new, repeated
        ("o8", "ks4", "b8", "bad", "self", _t(9), D("-2.00"), 1, "completed", None),  # rejected
    ]
    second = tmp_path / "second.parquet"
    pq.write_table(_orders_table(changed), second)
    results = {}
    for mode, set_based in (("fast", True), ("slow", False)):
        db = tmp_path / f"{mode}.duckdb"
        _load(db, first, monkeypatch, set_based, max_reject_rate=0.5)
        results[mode] = _load(db, second, monkeypatch, set_based, max_reject_rate=0.5)
    assert _table(tmp_path / "fast.duckdb") == _table(tmp_path / "slow.duckdb")
    assert _summary(results["fast"]) == _summary(results["slow"])
    r = results["fast"]
    assert (r.rows_read, r.inserted, r.updated, r.unchanged, r.rejected, r.duplicates) == (5, 1, 1, 1, 1, 1)
    rows = {r[0]: r[1:] for r in _table(tmp_path / "fast.duckdb", "order_id, item_name, paid_amount")}
    assert rows["o7"] == ("newer", D("2.00")) and rows["o1"] == ("mug", D("11.00")) and len(rows) == 4
    # loading the same file again changes nothing
    again = _load(tmp_path / "fast.duckdb", second, monkeypatch, True, max_reject_rate=0.5)
    assert (again.inserted, again.updated, again.unchanged) == (0, 0, 3)


def test_wide_and_fine_decimals_take_the_general_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """DECIMAL(38,0) and 3 decimals are range-checked and rounded as text amounts are."""
    rows = [
        ("o1", "ks1", "b1", None, "self", _t(1), D("12.345"), 1, "completed", None),
        ("o2", "ks1", "b2", None, "self", _t(1), D("1000000000000.000"), 1, "completed", None),
    ]
    path = tmp_path / "orders.parquet"
    pq.write_table(_orders_table(rows, pa.decimal128(38, 3)), path)
    fast = _load(tmp_path / "fast.duckdb", path, monkeypatch, True, max_reject_rate=1.0)
    slow = _load(tmp_path / "slow.duckdb", path, monkeypatch, False, max_reject_rate=1.0)
    assert _table(tmp_path / "fast.duckdb") == _table(tmp_path / "slow.duckdb")
    assert _summary(fast) == _summary(slow)
    assert [r.reason for r in fast.rejects] == [
        "column paid_amount: '1000000000000.000' is out of range for an amount"
    ]


def test_too_many_rejects_writes_nothing_and_lists_the_first(tmp_path: Path) -> None:
    from chuanliu_cli.errors import DataError

    bad = [(f"o{i}", "ks1", "b1", None, "self", _t(1), D("-1.00"), 1, "completed", None) for i in range(50)]
    path = tmp_path / "orders.parquet"
    pq.write_table(_orders_table(bad + ROWS[:2]), path)
    db = tmp_path / "db.duckdb"
    with pytest.raises(DataError) as err, open_database(str(db), "write") as store:
        load_files(store, [("orders", path)], LoadOptions())
    assert "50 of 52 rows rejected" in err.value.message
    assert len(err.value.details) == 5 and err.value.details[0].endswith(
        "row 1: column paid_amount: '-1.00' is below the minimum 0"
    )
    assert not db.exists()  # nothing written: not even the empty database this first load created


def test_glob_characters_in_the_name_take_the_batch_path(tmp_path: Path) -> None:
    path = tmp_path / "订单[5月]*.parquet"
    pq.write_table(_orders_table(ROWS[:2]), path)
    pq.write_table(_orders_table(ROWS[5:]), tmp_path / "订单[5月]x.parquet")  # would match the glob
    with open_database(str(tmp_path / "db.duckdb"), "write") as store:
        result = load_files(store, [("orders", path)], LoadOptions())[0]
    assert (result.rows_read, result.inserted) == (2, 2)
    assert [r[0] for r in _table(tmp_path / "db.duckdb")] == ["o1", "o2"]


def test_progress_is_reported_for_a_set_based_file(tmp_path: Path) -> None:
    path = tmp_path / "orders.parquet"
    pq.write_table(_orders_table(ROWS[:2]), path)
    seen: list[tuple[str, int, int | None]] = []
    with open_database(str(tmp_path / "db.duckdb"), "write") as store:
        load_files(store, [("orders", path)], LoadOptions(), progress=lambda *a: seen.append(a))
    assert seen and seen[-1] == (str(path), 2, 2)
