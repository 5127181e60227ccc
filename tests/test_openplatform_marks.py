"""The marks of open-platform cps lists kept in cps_marks (ingest/loader.py): applied to the orders whatever the
order of loading pages and lists, idempotent, pending until their orders arrive, and the same on Spark."""

from __future__ import annotations

import json
import shutil
import textwrap
from pathlib import Path
from typing import Any

import duckdb
import pytest

from chuanliu_cli.api import Session
from chuanliu_cli.errors import DataError

DATA = Path(__file__).resolve().parent / "data" / "openplatform"
PAGE1, PAGE2, CPS = DATA / "orders_page1.json", DATA / "orders_page2.json", DATA / "cps_orders.json"

RULES = """\
version: 1
name: marks
period: month
filters:
  valid_order: status not in ('pending', 'closed')
scorecards:
  merchant:
    key: shop_id
    metrics:
      gmv: {from: orders, where: valid_order, value: sum(net_amount)}
      distribution_gmv: {from: orders, where: "valid_order and sale_mode = 'distribution'", value: sum(net_amount)}
    scores:
      total: {parts: [{metric: gmv, weight: 1, normalize: {linear: [0, 200]}}]}
    rank_by: total
  promoter:
    key: promoter_id
    metrics:
      gmv: {from: orders, where: "valid_order and sale_mode = 'distribution'", value: sum(net_amount)}
    scores:
      total: {parts: [{metric: gmv, weight: 1, normalize: {linear: [0, 200]}}]}
    rank_by: total
"""


def _load(db: Path, *files: Path, **options: Any) -> Any:
    with Session(db=db) as s:
        return s.load(None, list(files), **options)


def _rows(db: Path, sql: str) -> list[tuple[Any, ...]]:
    con = duckdb.connect(str(db), read_only=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def _state(db: Path, rules: Path) -> tuple[list[tuple[Any, ...]], list[list[dict[str, Any]]]]:
    """The orders table and the reward list of both scorecards."""
    orders = _rows(db, "SELECT * FROM orders ORDER BY order_id")
    lists = []
    with Session(db=db) as s:
        for card in ("merchant", "promoter"):
            frame = s.eligible("2023-05", scorecard=card, rules=rules, record=False).frame
            lists.append(frame.to_dicts())
    return orders, lists


ORDERINGS = {
    "orders, then cps": [[PAGE1, PAGE2], [CPS]],
    "cps, then orders": [[CPS], [PAGE1, PAGE2]],
    "cps between the pages": [[PAGE2], [CPS], [PAGE1]],
    "orders, cps, orders again": [[PAGE1, PAGE2], [CPS], [PAGE1, PAGE2]],
    "one command": [[CPS, PAGE2, PAGE1]],
}


def test_every_order_of_loading_gives_the_same_orders_and_reward_lists(tmp_path: Path) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text(textwrap.dedent(RULES), encoding="utf-8")
    states = {}
    for k, (name, steps) in enumerate(ORDERINGS.items()):
        db = tmp_path / f"db{k}.duckdb"
        with Session(db=db) as s:
            for files in steps:
                s.load(None, files)
        states[name] = _state(db, rules)
    first = states["orders, then cps"]
    for name, state in states.items():
        assert state == first, name
    orders, (merchants, promoters) = first
    marked = {o[0]: (o[6], o[5]) for o in orders if o[0] in ("2704810274450371", "2704810274450373")}
    assert marked == {
        "2704810274450371": ("distribution", "88001"),
        "2704810274450373": ("distribution", "88002"),
    }
    assert [(p["promoter_id"], p["gmv"]) for p in promoters] == [("88002", 100.01), ("88001", 70.0)]
    assert {m["shop_id"]: m["distribution_gmv"] for m in merchants} == {"1001": 70.0, "1002": 100.01}


def test_loading_a_page_or_a_list_again_changes_nothing(tmp_path: Path) -> None:
    db = tmp_path / "db.duckdb"
    _load(db, PAGE1, PAGE2, CPS)
    before = _rows(db, "SELECT * FROM orders ORDER BY order_id")
    changes = _rows(db, "SELECT count(*) FROM load_changes")
    # page 2 says 373 is self-sold: the mark stored before makes it what it was, and the load says why
    again = _load(db, PAGE2)
    page = again.files[0]
    assert (page.inserted, page.updated, page.unchanged, page.rejected) == (0, 0, page.rows_read, 0)
    assert any(
        "order 2704810274450373 self → distribution (promoter 88002)" in w and "cps lists loaded before" in w
        for w in again.warnings
    )
    cps = _load(db, CPS).files[0]
    assert (cps.inserted, cps.updated, cps.unchanged, cps.pending, cps.rejected) == (0, 0, 3, 1, 0)
    assert _rows(db, "SELECT * FROM orders ORDER BY order_id") == before
    assert _rows(db, "SELECT count(*) FROM load_changes") == changes
    assert _rows(db, "SELECT count(*) FROM cps_marks") == [(3,)]


def test_a_pending_mark_applies_when_its_order_arrives(tmp_path: Path) -> None:
    db = tmp_path / "db.duckdb"
    first = _load(db, CPS, PAGE1)
    cps = first.files[-1]
    assert (cps.inserted, cps.pending) == (3, 2)  # 371 is so already; 373, 9999 wait for their orders
    assert any("2 cps row(s) name orders that are not loaded yet" in w for w in first.warnings)
    loaded = _load(db, PAGE2)
    assert loaded.files[0].inserted == 3
    assert _rows(db, "SELECT sale_mode, promoter_id FROM orders WHERE order_id = '2704810274450373'") == [
        ("distribution", "88002")
    ]
    # a first load of 373 records nothing in load_changes (an insert); the marks row says where it came from
    assert _rows(db, "SELECT file, line FROM cps_marks WHERE order_id = '2704810274450373'") == [
        (str(CPS), "data.cpsOrderList[1]")
    ]


def test_a_later_list_replaces_the_mark_and_names_the_promoter(tmp_path: Path) -> None:
    db = tmp_path / "db.duckdb"
    _load(db, PAGE1, PAGE2, CPS)
    later = tmp_path / "cps_later.json"
    row = {
        "oid": 2704810274450371,
        "distributorId": 88003,
        "distributorName": "小楠优选",
        "cpsOrderStatus": 30,
    }
    later.write_text(json.dumps({"result": 1, "data": {"cpsOrderList": [row]}}), encoding="utf-8")
    result = _load(db, later)
    assert (result.files[0].table, result.files[0].updated) == ("cps_marks", 1)  # the mark of 371 replaced
    # the order's own page named 88001: said
    assert any("order 2704810274450371 distribution (promoter 88001) → distribution (promoter 88003)" in w
               for w in result.warnings)  # fmt: skip
    _load(db, PAGE1)  # its page again: the later mark stays
    query = "SELECT sale_mode, promoter_id, promoter_name FROM orders WHERE order_id = '2704810274450371'"
    assert _rows(db, query) == [("distribution", "88003", "小楠优选")]
    change = _rows(
        db, "SELECT l.file FROM load_changes c JOIN loads l USING (load_id) WHERE c.key LIKE '%371'"
    )
    assert [Path(f).name for (f,) in change] == ["cps_later.json"]


def test_an_orders_export_loaded_after_a_list_is_marked_too(tmp_path: Path) -> None:
    db = tmp_path / "db.duckdb"
    _load(db, CPS)
    export = tmp_path / "orders.csv"
    export.write_text(
        "order_id,shop_id,buyer_id,sale_mode,order_time,paid_amount,status\n"
        "2704810274459999,1003,b9,self,2023-05-20 10:00:00,25.00,completed\n",
        encoding="utf-8",
    )
    result = _load(db, export)
    assert any("order 2704810274459999 self → distribution (promoter 88002)" in w for w in result.warnings)
    assert _rows(db, "SELECT sale_mode, promoter_id FROM orders") == [("distribution", "88002")]


def test_bad_cps_rows_are_rejected_and_count_against_the_limits(tmp_path: Path) -> None:
    bad = tmp_path / "cps_bad.json"
    rows = [{"oid": 2.704810274450371e15, "distributorId": 1}, {"oid": 2704810274450371, "distributorId": 1}]
    bad.write_text(json.dumps({"result": 1, "data": {"cpsOrderList": rows}}), encoding="utf-8")
    with pytest.raises(DataError, match="1 of 2 rows rejected"):
        _load(tmp_path / "db.duckdb", bad, max_reject_rows=0)
    result = _load(tmp_path / "db.duckdb", bad)
    assert (result.files[0].rejected, result.files[0].pending) == (1, 1)
    assert "floating-point number" in _rows(tmp_path / "db.duckdb", "SELECT reason FROM rejected_rows")[0][0]


@pytest.mark.spark
def test_spark_applies_the_marks_whatever_the_file_order(tmp_path: Path) -> None:
    """Spark reads a directory in one go: a cps list whose name sorts before the orders pages, and one with a
    promoter's name, give the orders the database gives."""
    folder = tmp_path / "responses"
    folder.mkdir()
    shutil.copy(CPS, folder / "a_cps.json")
    shutil.copy(PAGE1, folder / "b_orders1.json")
    shutil.copy(PAGE2, folder / "c_orders2.json")
    shutil.copy(DATA / "comments.jsonl", folder / "comments.jsonl")
    shutil.copy(DATA / "livestreams.csv", folder / "livestreams.csv")
    row = {"oid": 2704810274450371, "distributorId": 88003, "distributorName": "小楠优选"}
    (folder / "z_cps.json").write_text(json.dumps({"result": 1, "data": {"cpsOrderList": [row]}}), "utf-8")
    rules = tmp_path / "rules.yaml"
    rules.write_text(textwrap.dedent(RULES), encoding="utf-8")
    lists = []
    for engine in ("duckdb", "spark"):
        with Session(data=folder, engine=engine) as s:
            lists.append(
                s.eligible("2023-05", scorecard="promoter", rules=rules, record=False).frame.to_dicts()
            )
    assert lists[0] == lists[1]
    assert [(p["promoter_id"], p["name"]) for p in lists[1]] == [("88002", None), ("88003", "小楠优选")]
