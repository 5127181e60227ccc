"""The latest item and promoter names kept by the database (store/names.py): stored by every load of
orders, read only while they are the orders', and always the names NAME_QUERIES finds in the orders."""

from __future__ import annotations

from pathlib import Path

import duckdb
import polars as pl
import pytest

from chuanliu_cli.api import Session
from chuanliu_cli.engines.base import NAME_QUERIES
from chuanliu_cli.engines.duckdb import DuckDBEngine
from chuanliu_cli.ingest.loader import LoadOptions, discover, load_files
from chuanliu_cli.store import names
from chuanliu_cli.store.database import SCHEMA_VERSION, migrate, open_database, schema_version

REPO = Path(__file__).resolve().parent.parent
HEADER = (
    "order_id,shop_id,buyer_id,item_id,item_name,promoter_id,promoter_name,sale_mode,order_time,paid_amount,"
    "status\n"
)


def _load(db: str, *paths: Path) -> None:
    items = [item for path in paths for item in discover(path)]
    with open_database(db, "write") as handle:
        load_files(handle, items, LoadOptions())


def _names(db: str, key: str) -> tuple[bool, dict[str, str | None], dict[str, str | None]]:
    """Whether the kept names are current, the names the engine gives, and those the orders give."""
    with open_database(db, "read") as handle:
        current = names.current(handle.con)
        given = DuckDBEngine(handle.con).names(key)
        found = handle.con.execute(NAME_QUERIES[key]).fetchall()
    assert given is not None
    # (the stored names leave out the NULL key's, which names no row)
    named = {k: n for k, n in zip(given["k"], given["name"], strict=True) if k is not None}
    return current, named, {k: n for k, n, *_ in found if k is not None}


@pytest.fixture
def sample_db(tmp_path: Path) -> str:
    db = str(tmp_path / "sample.duckdb")
    _load(db, REPO / "sample_data")
    return db


@pytest.mark.parametrize("key", ["item_id", "promoter_id"])
def test_a_load_keeps_the_names_the_orders_give(sample_db: str, key: str) -> None:
    current, given, found = _names(sample_db, key)
    assert current
    assert given == found
    if key == "item_id":  # (the sample's orders name no promoter: a later load does, below)
        assert len(given) > 50
    with open_database(sample_db, "read") as handle:  # read from the kept table, not found again
        assert names.names_query(handle.con, key) == f"SELECT k, name FROM {names.KEPT[key]}"


def test_a_later_load_renames_an_item_and_a_promoter(
    sample_db: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    item, promoter = _renamed_pair(sample_db)
    later = tmp_path / "later"
    later.mkdir()
    (later / "orders.csv").write_text(
        HEADER + f"o-late-1,ks700045,u1,{item},新名字的商品,{promoter},新达人,distribution,"
        "2023-06-02 10:00:00,9.9,completed\n",
        encoding="utf-8",
    )
    refreshed = _spy_refresh(monkeypatch)
    _load(sample_db, later)
    assert refreshed == ["inserted"]  # only the names of the new order's item and promoter were found
    for key, value in (("item_id", item), ("promoter_id", promoter)):
        current, given, found = _names(sample_db, key)
        assert current and given == found and value in given
    assert _names(sample_db, "item_id")[1][item] == "新名字的商品"
    assert _names(sample_db, "promoter_id")[1] == {promoter: "新达人"}


def test_a_load_that_changes_an_order_finds_every_name_again(
    sample_db: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An order loaded again with another item: the old item's latest name may have been that order's, and
    the old item id is gone, so every name is found again; then a later insert-only load, then one that
    inserts nothing: the same names as the orders give, each time."""
    item, promoter = _renamed_pair(sample_db)
    with open_database(sample_db, "read") as handle:
        order, old_item = handle.con.execute(
            "SELECT order_id, item_id FROM orders WHERE item_id IS NOT NULL ORDER BY order_time DESC LIMIT 1"
        ).fetchall()[0]
    refreshed = _spy_refresh(monkeypatch)
    steps = [
        f"{order},ks700045,u1,{item},换了商品,{promoter},新达人,distribution,2023-05-31 23:59:00,9.9,completed\n",
        f"o-late-2,ks700045,u1,{old_item},再来一单,,,self,2023-06-03 10:00:00,9.9,completed\n",
        f"o-late-2,ks700045,u1,{old_item},再来一单,,,self,2023-06-03 10:00:00,9.9,completed\n",
    ]
    for n, row in enumerate(steps):
        folder = tmp_path / f"step{n}"
        folder.mkdir()
        (folder / "orders.csv").write_text(HEADER + row, encoding="utf-8")
        _load(sample_db, folder)
        for key in ("item_id", "promoter_id"):
            current, given, found = _names(sample_db, key)
            assert current and given == found, (n, key)
    assert refreshed == ["all", "inserted", "inserted"]
    assert _names(sample_db, "item_id")[1][old_item] == "再来一单"


def _spy_refresh(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """What each refresh of the kept names did ("inserted" or "all"), in order."""
    done: list[str] = []
    real = names.refresh

    def spy(con: duckdb.DuckDBPyConnection) -> str:
        done.append(real(con))
        return done[-1]

    monkeypatch.setattr(names, "refresh", spy)
    return done


def test_orders_changed_outside_a_load_are_named_by_the_orders(sample_db: str) -> None:
    """An order written by something other than `load` leaves the state behind: the names are found in
    the orders again, and the new name shows."""
    item, _promoter = _renamed_pair(sample_db)
    con = duckdb.connect(sample_db)
    con.execute(
        "INSERT INTO orders (order_id, shop_id, item_id, item_name, sale_mode, carrier, order_time, "
        "paid_amount, status) VALUES ('o-direct', 'ks700045', ?, '直接写入的名字', 'self', 'live', "
        "TIMESTAMP '2023-07-01 10:00:00', 10, 'completed')",
        [item],
    )
    con.close()
    current, given, found = _names(sample_db, "item_id")
    assert not current
    assert given == found and given[item] == "直接写入的名字"


def test_a_version_6_database_finds_its_names_when_migrated(tmp_path: Path) -> None:
    db = str(tmp_path / "v6.duckdb")
    con = duckdb.connect(db)
    migrate(con, upto=6)
    con.execute(
        "INSERT INTO orders (order_id, shop_id, item_id, item_name, sale_mode, carrier, order_time, "
        "paid_amount, status) VALUES ('o1', 's1', 'i1', '旧库的商品', 'self', 'live', "
        "TIMESTAMP '2023-05-01 09:00:00', 10, 'completed')"
    )
    con.close()
    with open_database(db, "write") as handle:
        assert schema_version(handle.con) == SCHEMA_VERSION == 7
        assert names.current(handle.con)
    current, given, found = _names(db, "item_id")
    assert current and given == found == {"i1": "旧库的商品"}


def test_product_lists_name_items_as_before(sample_db: str) -> None:
    """The product scorecard's names, read from the kept table, are those of --data (found in the orders
    of an in-memory load) and of NAME_QUERIES."""
    with Session(db=sample_db) as session:
        stored = session.eligible("2023-05", scorecard="product", include_ineligible=True, record=False)
    with Session(data=REPO / "sample_data") as session:
        memory = session.eligible("2023-05", scorecard="product", include_ineligible=True)
    a = stored.result.frame.select("item_id", "name").sort("item_id")
    b = memory.result.frame.select("item_id", "name").sort("item_id")
    assert a.equals(b) and a.height > 50 and a["name"].null_count() < a.height


def _renamed_pair(db: str) -> tuple[str, str]:
    """An item and a promoter of the loaded orders."""
    with open_database(db, "read") as handle:
        row = handle.con.execute(
            "SELECT item_id, promoter_id FROM orders WHERE item_id IS NOT NULL AND promoter_id IS NOT NULL "
            "ORDER BY order_id LIMIT 1"
        ).fetchall()
    return str(row[0][0]), str(row[0][1])


def test_names_query_of_a_key_without_names_is_none(sample_db: str) -> None:
    with open_database(sample_db, "read") as handle:
        assert names.names_query(handle.con, "buyer_id") is None
        assert pl.DataFrame(handle.con.sql(names.names_query(handle.con, "shop_id") or "")).height > 50
