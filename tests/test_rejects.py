"""`chuanliu rejects` and Session.rejects: the rows `load` kept in rejected_rows, in every output format."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from chuanliu_cli.api import Session
from chuanliu_cli.errors import DataError, UsageError
from chuanliu_cli.exit_codes import ExitCode

HEADER = "order_id,shop_id,buyer_id,sale_mode,order_time,paid_amount,status"
GOOD = [f"{n},ks1,b{n},self,2023-05-01 20:00:00,10,completed" for n in range(1, 40)]


@pytest.fixture
def db(tmp_path: Path, write: Callable[..., Path]) -> Path:
    """Two loads with rejects: orders (a bad time, a bad amount, a differing duplicate), reviews (a bad
    score)."""
    orders = write(
        "orders.csv",
        "\n".join(
            [
                HEADER,
                *GOOD,
                "40,ks1,b40,self,never,10,completed",
                '41,ks1,"b,41",self,2023-05-01 20:00:00,ten,completed',
                "1,ks1,b1,self,2023-05-01 20:00:00,11,completed",
            ]
        )
        + "\n",
    )
    reviews = write(
        "reviews.csv",
        "review_id,order_id,shop_id,quality_score,review_time\n"
        + "".join(f"r{n},{n},ks1,5,2023-05-02\n" for n in range(1, 20))
        + "r20,20,ks1,77,2023-05-02\n",
    )
    path = tmp_path / "r.duckdb"
    with Session(db=path) as s:
        s.load("orders", [orders])
        s.load("reviews", [reviews])
    return path


def test_library_lists_every_reject_with_its_table(db: Path) -> None:
    with Session(db=db) as s:
        everything = s.rejects()
        orders = s.rejects(table="orders")
        first_load = s.rejects(load_id=1)
        one = s.rejects(limit=1)
    assert everything.total == 4 and len(everything.rows) == 4
    # newest load first, then in line order
    assert [(r["load_id"], r["table"], r["line"]) for r in everything.rows] == [
        (2, "reviews", "line 21"),
        (1, "orders", "line 2"),
        (1, "orders", "line 41"),
        (1, "orders", "line 42"),
    ]
    assert orders.rows == first_load.rows and len(orders.rows) == 3
    by_line = {r["line"]: r for r in orders.rows}
    assert by_line["line 2"]["reason"] == "duplicate order_id 1 (line 43 kept, differs in paid_amount)"
    assert by_line["line 2"]["raw"] == "1,ks1,b1,self,2023-05-01 20:00:00,10,completed"
    assert by_line["line 42"]["raw"] == '41,ks1,"b,41",self,2023-05-01 20:00:00,ten,completed'
    assert by_line["line 42"]["reason"].startswith("column paid_amount: 'ten' is not an amount")
    assert (one.total, len(one.rows)) == (4, 1)
    assert everything.frame.columns == ["load_id", "table", "file", "line", "reason", "raw"]
    assert everything.to_dict()["total"] == 4


def test_unknown_load_and_table(db: Path) -> None:
    with Session(db=db) as s:
        with pytest.raises(DataError, match="no load 9 in this database") as err:
            s.rejects(load_id=9)
        assert err.value.hint == "the latest loads are 2, 1"
        with pytest.raises(UsageError, match="unknown table 'order'"):
            s.rejects(table="order")
        assert s.rejects(load_id=2, table="orders").rows == ()


def test_cli_table(invoke: Callable[..., Any], db: Path) -> None:
    result = invoke("--db", str(db), "rejects", "--format", "table")
    assert result.exit_code == 0, result.output
    for text in ("Rejected rows", "orders.csv", "line 41", "reviews", "duplicate"):
        assert text in result.output
    limited = invoke("--db", str(db), "rejects", "--limit", "2", "--format", "table")
    assert "Showing 2 of 4 rejected rows." in limited.output
    none = invoke("--db", str(db), "rejects", "--load", "2", "--table", "orders", "--format", "table")
    assert none.exit_code == 0 and "No rejected rows." in none.output


@pytest.mark.parametrize("fmt", ["csv", "json", "jsonl", "parquet"])
def test_cli_every_format_to_a_file(invoke: Callable[..., Any], db: Path, tmp_path: Path, fmt: str) -> None:
    out = tmp_path / f"rejects.{fmt}"
    result = invoke("--db", str(db), "rejects", "--table", "orders", "-o", str(out))
    assert result.exit_code == 0, result.output
    if fmt == "parquet":
        import pyarrow.parquet as pq

        rows = pq.read_table(out).to_pylist()
    elif fmt == "csv":
        import csv

        rows = list(csv.DictReader(out.open(encoding="utf-8")))
    elif fmt == "json":
        document = json.loads(out.read_text(encoding="utf-8"))
        assert document["total"] == 3
        rows = document["rejected_rows"]
    else:
        rows = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert [r["line"] for r in rows] == ["line 2", "line 41", "line 42"]
    assert list(rows[0]) == ["load_id", "table", "file", "line", "reason", "raw"]
    assert str(rows[2]["raw"]) == '41,ks1,"b,41",self,2023-05-01 20:00:00,ten,completed'
    assert {str(r["load_id"]) for r in rows} == {"1"}


def test_cli_errors(invoke: Callable[..., Any], db: Path, tmp_path: Path) -> None:
    unknown = invoke("--db", str(db), "rejects", "--load", "7")
    assert unknown.exit_code == ExitCode.INVALID_DATA and "no load 7" in unknown.output
    table = invoke("--db", str(db), "rejects", "--table", "nope")
    assert table.exit_code == ExitCode.USAGE and "unknown table 'nope'" in table.output
    missing = invoke("--db", str(tmp_path / "none.duckdb"), "rejects")
    assert missing.exit_code == ExitCode.INVALID_DATA and "does not exist" in missing.output
