"""A file without a column says nothing about it: the stored rows it updates keep their values of that
column (its new rows take the defaults), the derived columns follow the kept values, and it is said."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pytest

from chuanliu_cli.ingest import canonical
from chuanliu_cli.ingest.conversion import DECIDED_BY, unsaid_columns
from chuanliu_cli.ingest.loader import LoadOptions, load_files
from chuanliu_cli.ingest.mapping import default_mapping
from chuanliu_cli.schema import TABLES
from chuanliu_cli.store.database import memory_database

FULL = "order_id,shop_id,buyer_id,item_id,promoter_id,order_time,paid_amount,status,carrier,refund_amount,refund_reason,commission\n"
ROWS = [
    "o1,s1,b1,i1,,2023-05-01 20:00:00,30.00,paid,live,,,\n",
    "o2,s1,b2,i1,p1,2023-05-02 20:00:00,40.00,completed,card,5.00,质量问题,4.00\n",
    "o3,s2,b3,i2,,2023-05-03 20:00:00,50.00,received,video,50.00,不想要了,\n",
]
COLUMNS = TABLES["orders"].names


def _load(*files: tuple[str, str], tmp_path: Path) -> tuple[Any, list[Any]]:
    db = memory_database()
    items = []
    for i, (name, text) in enumerate(files):
        folder = tmp_path / f"f{i}"
        folder.mkdir(parents=True)
        path = folder / name
        path.write_text(text, encoding="utf-8")
        items.append(("orders", path))
    return db.con, load_files(db, items, LoadOptions())


def _orders(con: Any) -> list[tuple[Any, ...]]:
    return con.execute(f"SELECT {', '.join(COLUMNS)} FROM orders ORDER BY order_id").fetchall()


def test_a_second_file_without_carrier_keeps_the_stored_carrier(tmp_path: Path) -> None:
    """The later file moves o2 to refunded and adds o4; it has no carrier, refund or commission columns:
    o1-o3 keep theirs, o2's net amount and quality return follow its stored refund, o4 takes the defaults."""
    later = "order_id,shop_id,buyer_id,item_id,promoter_id,order_time,paid_amount,status\n"
    later += "o1,s1,b1,i1,,2023-05-01 20:00:00,30.00,paid\n"
    later += "o2,s1,b2,i1,p1,2023-05-02 20:00:00,40.00,refunded\n"
    later += "o4,s2,b4,i2,,2023-05-04 20:00:00,60.00,paid\n"
    con, results = _load(("orders.csv", FULL + "".join(ROWS)), ("orders-later.csv", later), tmp_path=tmp_path)
    got = {r[0]: dict(zip(COLUMNS, r, strict=True)) for r in _orders(con)}
    assert [got[k]["carrier"] for k in ("o1", "o2", "o3", "o4")] == ["live", "card", "video", "other"]
    assert str(got["o2"]["refund_amount"]) == "5.00" and str(got["o2"]["commission"]) == "4.00"
    assert got["o2"]["status"] == "refunded" and str(got["o2"]["net_amount"]) == "35.00"
    assert got["o2"]["quality_return"] is True
    assert got["o4"]["refund_amount"] is None and str(got["o4"]["net_amount"]) == "60.00"
    second = results[1]
    # o1 is the same row as stored (its missing columns kept): unchanged, not an update
    assert (second.inserted, second.updated, second.unchanged) == (1, 1, 1)
    assert second.warnings[-1] == (
        f"{tmp_path / 'f1' / 'orders-later.csv'} has no column carrier, refund_amount, refund_reason, "
        "commission: 2 rows of orders already stored keep their values of these (a row it adds takes the default)"
    )


def test_a_mapping_default_is_said_and_sets_the_stored_rows(tmp_path: Path) -> None:
    """Pages loaded without their carrier are `other`; loading them again with a mapping whose `defaults:`
    names the carrier sets it (the README's fix for the open platform's orders)."""
    from chuanliu_cli.ingest.mapping import load_mapping

    text = "order_id,shop_id,buyer_id,item_id,promoter_id,order_time,paid_amount,status\n"
    text += "o1,s1,b1,i1,,2023-05-01 20:00:00,30.00,paid\n"
    path, mapping = tmp_path / "orders.csv", tmp_path / "carrier-live.yaml"
    path.write_text(text, encoding="utf-8")
    mapping.write_text("defaults:\n  orders:\n    carrier: live\n", encoding="utf-8")
    db = memory_database()
    load_files(db, [("orders", path)], LoadOptions())
    assert db.con.execute("SELECT carrier FROM orders").fetchall() == [("other",)]
    [again] = load_files(db, [("orders", path)], LoadOptions(mapping=load_mapping(mapping)))
    assert db.con.execute("SELECT carrier FROM orders").fetchall() == [("live",)]
    assert again.updated == 1 and not any("keep" in w for w in again.warnings)


def test_shops_of_another_export_keep_their_group_and_category(tmp_path: Path) -> None:
    """A shop score export (店铺ID, 店铺名称, 店铺评分) updates the names it has, not the groups."""
    db = memory_database()
    first, later = tmp_path / "shops.csv", tmp_path / "店铺评分.csv"
    first.write_text(
        "shop_id,shop_name,group_id,category\ns1,Alpha,g1,服饰\ns2,Beta,g2,美妆\n", encoding="utf-8"
    )
    later.write_text("店铺ID,店铺名称,店铺评分\ns1,Alpha New,4.8\n", encoding="utf-8")
    [_, result] = load_files(db, [("shops", first), ("shops", later)], LoadOptions())
    rows = db.con.execute("SELECT shop_id, shop_name, group_id, category FROM shops ORDER BY 1").fetchall()
    assert rows == [("s1", "Alpha New", "g1", "服饰"), ("s2", "Beta", "g2", "美妆")]
    assert result.updated == 1
    assert result.warnings[-1] == (
        f"{later} has no column category, group_id: 1 row of shops already stored keeps its values of these "
        "(a row it adds takes the default)"
    )


@pytest.mark.parametrize("seed", range(6))
def test_a_partial_file_equals_the_full_file_with_the_stored_values(tmp_path: Path, seed: int) -> None:
    """Loading a file with some optional columns left out gives the table that loading the same rows with
    those columns copied from the stored rows (and left empty for new rows) gives."""
    rng = random.Random(seed)
    optional = ["promoter_id", "carrier", "refund_amount", "refund_reason", "commission"]
    dropped = set(rng.sample(optional, rng.randint(1, len(optional))))
    header = FULL.strip().split(",")
    kept_columns = [c for c in header if c not in dropped]
    stored = {r.split(",")[0]: r.strip().split(",") for r in ROWS}
    statuses = ["paid", "completed", "refunded", "received"]
    later_rows = []
    for key in ("o1", "o2", "o3", "o5"):
        row = list(
            stored.get(
                key, ["o5", "s3", "b5", "i3", "", "2023-05-05 20:00:00", "70.00", "paid", "", "", "", ""]
            )
        )
        row[7] = rng.choice(statuses)
        later_rows.append(row)
    partial = (
        ",".join(kept_columns)
        + "\n"
        + "".join(
            ",".join(v for c, v in zip(header, r, strict=True) if c not in dropped) + "\n" for r in later_rows
        )
    )
    completed = []
    for r in later_rows:
        source = stored.get(r[0])
        completed.append(
            [
                (source[i] if source is not None else "") if c in dropped else v
                for i, (c, v) in enumerate(zip(header, r, strict=True))
            ]
        )
    full = FULL + "".join(",".join(r) + "\n" for r in completed)
    con_a, _ = _load(("orders.csv", FULL + "".join(ROWS)), ("later.csv", partial), tmp_path=tmp_path / "a")
    con_b, _ = _load(("orders.csv", FULL + "".join(ROWS)), ("later.csv", full), tmp_path=tmp_path / "b")
    assert _orders(con_a) == _orders(con_b), sorted(dropped)


def test_decided_columns_are_the_ones_the_conversion_derives() -> None:
    """DECIDED_BY (conversion.py, sqlglot-free for the loader) names the columns canonical._outputs fills
    from others when the file lacks them: each such output reads exactly those columns."""
    for name, table in TABLES.items():
        outputs = canonical._outputs(default_mapping().for_table(name), canonical.Primitives("duckdb"))
        for column, expr in zip(table.columns, outputs, strict=True):
            read = {c.name for c in expr.find_all(canonical.exp.Column)} - {column.name}
            if column.derived:
                continue
            assert read == set(DECIDED_BY.get(column.name, ())), (name, column.name, read)
    assert "sale_mode" not in unsaid_columns(TABLES["orders"], ["order_id", "promoter_id"])
    assert "sale_mode" in unsaid_columns(TABLES["orders"], ["order_id"])
    assert "duration_minutes" in unsaid_columns(TABLES["livestreams"], ["live_id", "start_time"])


def test_a_file_of_new_keys_only_is_not_merged(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The next month's orders name no stored key: nothing is kept, and no merge is run for them."""
    from chuanliu_cli.ingest import loader

    asked: list[list[str]] = []
    real = loader.merge_sql

    def spy(table: str, unsaid: list[str], source: str, target: str) -> str:
        asked.append(unsaid)
        return real(table, unsaid, source, target)

    monkeypatch.setattr(loader, "merge_sql", spy)
    later = "order_id,shop_id,buyer_id,item_id,promoter_id,order_time,paid_amount,status\n"
    later += "o9,s1,b9,i1,,2023-06-01 20:00:00,9.00,paid\n"
    con, results = _load(("orders.csv", FULL + "".join(ROWS)), ("orders-06.csv", later), tmp_path=tmp_path)
    assert asked == [] and results[1].inserted == 1
    assert con.execute("SELECT carrier FROM orders WHERE order_id = 'o9'").fetchall() == [("other",)]
    later += "o1,s1,b1,i1,,2023-05-01 20:00:00,30.00,paid\n"
    _load(("orders.csv", FULL + "".join(ROWS)), ("orders-06.csv", later), tmp_path=tmp_path / "again")
    assert asked == [
        ["item_name", "carrier", "quantity", "refund_amount", "refund_reason", "commission", "promoter_name"]
    ]
