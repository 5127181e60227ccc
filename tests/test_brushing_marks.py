"""The brushing flag kept by the database (store/brushing.py, orders.brushing_mark): set by every load of
orders, read by scoring only while it matches the orders, and always the orders the scoring-time query
finds."""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pytest

from chuanliu_cli.ingest.loader import LoadOptions, discover, load_files
from chuanliu_cli.periods import parse_period
from chuanliu_cli.rules.compiler import compile_scorecard
from chuanliu_cli.rules.integrity import brushing_order_ids
from chuanliu_cli.rules.model import Integrity
from chuanliu_cli.rules.parser import load_ruleset
from chuanliu_cli.store import brushing
from chuanliu_cli.store.database import SCHEMA_VERSION, migrate, open_database, schema_version

REPO = Path(__file__).resolve().parent.parent
HEADER = "order_id,shop_id,buyer_id,sale_mode,order_time,paid_amount,status\n"


def _load(db: str, *paths: Path) -> None:
    items = [item for path in paths for item in discover(path)]
    with open_database(db, "write") as handle:
        load_files(handle, items, LoadOptions())


def _kept(db: str) -> set[str]:
    with open_database(db, "read") as handle:
        return {
            r[0] for r in handle.con.execute("SELECT order_id FROM orders WHERE brushing_mark").fetchall()
        }


def _found(db: str, integrity: Integrity | None = None) -> set[str]:
    """The brushing orders as a query finds them, over every order."""
    query = brushing_order_ids(integrity or Integrity()).sql(dialect="duckdb")
    with open_database(db, "read") as handle:
        return {r[0] for r in handle.con.execute(query).fetchall()}


def _current(db: str, integrity: Integrity | None = None) -> bool:
    with open_database(db, "read") as handle:
        return brushing.current(handle.con, integrity or Integrity())


@pytest.fixture
def sample_db(tmp_path: Path) -> str:
    db = str(tmp_path / "sample.duckdb")
    _load(db, REPO / "sample_data")
    return db


def test_a_load_keeps_the_brushing_orders_a_query_finds(sample_db: str) -> None:
    kept = _kept(sample_db)
    assert kept and kept == _found(sample_db)
    assert _current(sample_db)
    assert not _current(sample_db, Integrity(brushing_orders=4))  # other thresholds: found by the query


def test_a_later_load_finds_its_new_bursts_and_loses_the_broken_ones(sample_db: str, tmp_path: Path) -> None:
    before = _kept(sample_db)
    late = tmp_path / "late" / "orders_late.csv"
    late.parent.mkdir()
    burst = "".join(
        f"late{i},ks100001,bx,self,2023-05-20 10:{10 * i:02d}:00,9.9,completed\n" for i in range(3)
    )
    # one order of a kept run closed afterwards: the run is broken (a closed order is no valid order)
    with open_database(sample_db, "read") as handle:
        broken = handle.con.execute(
            "SELECT o.order_id, o.shop_id, o.buyer_id, o.sale_mode, strftime(o.order_time, '%Y-%m-%d %H:%M:%S'), "
            "o.paid_amount FROM orders o WHERE o.brushing_mark ORDER BY o.order_id LIMIT 1"
        ).fetchall()[0]
    closed = ",".join(str(v) for v in broken) + ",closed\n"
    late.write_text(HEADER + burst + closed, encoding="utf-8")
    done: list[str] = []
    real = brushing.refresh
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(brushing, "refresh", lambda con: done.append(real(con)) or done[-1])
        _load(sample_db, late.parent)
    assert done == ["all"]  # an order changed (closed): every pair's runs are found again
    after = _kept(sample_db)
    assert {"late0", "late1", "late2"} <= after
    assert broken[0] not in after
    assert after == _found(sample_db)
    assert before - after and after - before
    assert _current(sample_db)


def test_the_kept_self_purchase_flag_follows_the_orders_and_their_cps_marks(
    sample_db: str, tmp_path: Path
) -> None:
    def kept_and_found() -> tuple[set[str], set[str]]:
        with open_database(sample_db, "read") as handle:
            con = handle.con
            kept = {
                r[0] for r in con.execute("SELECT order_id FROM orders WHERE self_purchase_mark").fetchall()
            }
            found = "sale_mode = 'distribution' AND buyer_id = promoter_id"
            return kept, {r[0] for r in con.execute(f"SELECT order_id FROM orders WHERE {found}").fetchall()}

    kept, found = kept_and_found()
    assert kept and kept == found  # the sample plants a promoter buying through its own link
    late = tmp_path / "late" / "orders_late.csv"
    late.parent.mkdir()
    late.write_text(
        "order_id,shop_id,buyer_id,sale_mode,promoter_id,order_time,paid_amount,status\n"
        "self1,ks100001,dr1,distribution,dr1,2023-05-20 10:00:00,9.9,completed\n"
        "self2,ks100001,dr2,distribution,dr3,2023-05-20 10:00:00,9.9,completed\n",
        encoding="utf-8",
    )
    _load(sample_db, late.parent)
    kept, found = kept_and_found()
    assert "self1" in kept and "self2" not in kept and kept == found
    assert _current(sample_db)


def test_a_cps_list_alone_sets_the_self_purchase_flag_of_the_orders_it_marks(
    sample_db: str, tmp_path: Path
) -> None:
    """A cps list changes stored orders (distribution, its promoter): a load of the list alone sets the
    flags again, so that an order bought by the promoter that now carries it is a self-purchase."""
    import json

    with open_database(sample_db, "read") as handle:
        oid, buyer = handle.con.execute(
            "SELECT order_id, buyer_id FROM orders WHERE sale_mode = 'self' AND buyer_id IS NOT NULL "
            "AND order_time >= TIMESTAMP '2023-05-01' ORDER BY order_id LIMIT 1"
        ).fetchall()[0]
    page = {
        "result": 1,
        "data": {
            "cpsOrderList": [
                {"oid": oid, "distributorId": buyer, "promoterId": buyer, "orderTradeAmount": 100,
                 "cpsOrderStatus": 60}
            ]
        },
    }  # fmt: skip
    folder = tmp_path / "cps"
    folder.mkdir()
    (folder / "cps_list.json").write_text(json.dumps(page), encoding="utf-8")
    _load(sample_db, folder)
    with open_database(sample_db, "read") as handle:
        row = handle.con.execute(
            "SELECT sale_mode, promoter_id, self_purchase_mark FROM orders WHERE order_id = ?", [oid]
        ).fetchall()
    assert row == [("distribution", buyer, True)]
    assert _current(sample_db)


def test_orders_changed_outside_a_load_are_never_read_from_the_marks(sample_db: str) -> None:
    with open_database(sample_db, "write") as handle:
        handle.con.execute("DELETE FROM orders WHERE order_id IN (SELECT min(order_id) FROM orders)")
    assert not _current(sample_db)


def test_scoring_with_and_without_the_kept_marks_gives_the_same_list(
    sample_db: str, tmp_path: Path, invoke: Callable[..., Any]
) -> None:
    args = ["eligible", "--month", "2023-05", "--no-record", "--format", "csv", "--db", sample_db]
    kept = invoke(*args, "-o", str(tmp_path / "kept.csv"))
    assert kept.exit_code == 0, kept.output
    with open_database(sample_db, "write") as handle:
        handle.con.execute("DELETE FROM brushing_state")  # as a database older than the marks
    assert not _current(sample_db)
    found = invoke(*args, "-o", str(tmp_path / "found.csv"))
    assert found.exit_code == 0, found.output
    assert (tmp_path / "kept.csv").read_bytes() == (tmp_path / "found.csv").read_bytes()


def test_integrity_rows_and_explain_are_the_same_with_and_without_the_kept_marks(
    sample_db: str, tmp_path: Path, invoke: Callable[..., Any]
) -> None:
    rows = ["integrity", "--month", "2023-05", "--rows", "--format", "csv", "--db", sample_db]
    explain = [
        "explain",
        "ks700041",
        "--month",
        "2023-05",
        "--format",
        "json",
        "--db",
        sample_db,
    ]
    kept = [invoke(*rows, "-o", str(tmp_path / "kept.csv")), invoke(*explain)]
    assert all(r.exit_code == 0 for r in kept), [r.output for r in kept]
    with open_database(sample_db, "write") as handle:
        handle.con.execute("DELETE FROM brushing_state")
    found = [invoke(*rows, "-o", str(tmp_path / "found.csv")), invoke(*explain)]
    assert all(r.exit_code == 0 for r in found), [r.output for r in found]
    assert (tmp_path / "kept.csv").read_bytes() == (tmp_path / "found.csv").read_bytes()
    assert (
        "brushing" in (tmp_path / "kept.csv").read_text()
        and "self_purchase" in (tmp_path / "kept.csv").read_text()
    )
    assert kept[1].stdout == found[1].stdout and '"brushing_orders": 7' in kept[1].stdout


def test_the_compiled_query_reads_the_marks_only_when_told() -> None:
    ruleset = load_ruleset(REPO / "rules" / "chuanliu.yaml")
    may = parse_period("2023-05")
    kept = compile_scorecard(ruleset, "merchant", may, marks=True).sql
    found = compile_scorecard(ruleset, "merchant", may).sql
    assert '"brushing_mark"' in kept and "brushing_pairs" not in kept
    assert '"brushing_mark"' not in found and "brushing_pairs" in found
    # orders read their marks (no join on order_id); reviews look their order up among the marked ones
    assert 'LEFT JOIN "brushing_orders"' not in kept and '"self_purchase_mark"' in kept
    assert (
        'COALESCE("t"."order_id" IN (\n        SELECT\n          "order_id"\n        FROM "brushing_orders"'
        in kept
    )
    assert 'LEFT JOIN "brushing_orders"' in found and '"self_purchase_mark"' not in found


@pytest.mark.parametrize("seed", range(3))
def test_kept_marks_match_the_definition_over_random_orders(
    tmp_path: Path, seed: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Random bursty orders loaded in two files, the second load inserting only (so its marks are found
    for the shop-buyer pairs of its rows only): the kept marks equal a brute force of SPEC §11."""
    done: list[str] = []
    real = brushing.refresh
    monkeypatch.setattr(brushing, "refresh", lambda con: done.append(real(con)) or done[-1])
    rng = random.Random(seed)
    t0 = datetime(2023, 5, 10, 20, 0, 0)
    rows = []
    for i in range(400):
        shop, buyer = f"s{rng.randrange(3)}", f"b{rng.randrange(6)}"
        minutes = rng.choice((rng.uniform(0, 20000), rng.uniform(0, 200), round(rng.uniform(0, 100))))
        status = rng.choice(("completed",) * 6 + ("refunded", "closed", "pending"))
        time = (t0 + timedelta(seconds=round(minutes * 60))).strftime("%Y-%m-%d %H:%M:%S")
        rows.append((f"x{i:03d}", shop, buyer, time, status))
    db = str(tmp_path / "r.duckdb")
    for part in (rows[:250], rows[250:]):
        folder = tmp_path / f"part{len(part)}"
        folder.mkdir()
        text = "".join(f"{o},{s},{b},self,{t},10,{st}\n" for o, s, b, t, st in part)
        (folder / "orders.csv").write_text(HEADER + text, encoding="utf-8")
        _load(db, folder)
    expected: set[str] = set()
    for pair in {(r[1], r[2]) for r in rows}:
        valid = sorted(
            (r[3], r[0]) for r in rows if (r[1], r[2]) == pair and r[4] not in ("pending", "closed")
        )
        for j in range(len(valid) - 2):
            first = datetime.fromisoformat(valid[j][0])
            if datetime.fromisoformat(valid[j + 2][0]) - first < timedelta(minutes=60):
                expected |= {oid for _t, oid in valid[j : j + 3]}
    assert _kept(db) == expected
    assert done == ["all", "inserted"]


def test_a_version_5_database_gains_the_cheat_marker_and_its_marks_at_the_next_load(tmp_path: Path) -> None:
    db = str(tmp_path / "v5.duckdb")
    con = duckdb.connect(db)
    migrate(con, upto=5)
    con.execute("ALTER TABLE reviews DROP COLUMN cheat")  # the reviews table of schema version 5
    con.execute(
        "INSERT INTO reviews (review_id, order_id, shop_id, quality_score, review_time) "
        "VALUES ('r1', 'o1', 's1', 5, TIMESTAMP '2023-05-01 10:00:00')"
    )
    con.execute(
        "INSERT INTO orders (order_id, shop_id, sale_mode, carrier, order_time, paid_amount, status) "
        "VALUES ('o1', 's1', 'self', 'live', TIMESTAMP '2023-05-01 09:00:00', 10, 'completed')"
    )
    con.close()
    with open_database(db, "write") as handle:
        assert schema_version(handle.con) == SCHEMA_VERSION == 7
        assert handle.con.execute("SELECT review_id, cheat FROM reviews").fetchall() == [("r1", False)]
        assert handle.con.execute("SELECT order_id, brushing_mark FROM orders").fetchall() == [("o1", False)]
        assert not brushing.current(handle.con, Integrity())  # no orders load yet: found by the query
    _load(db, REPO / "sample_data")
    assert _current(db) and _kept(db) == _found(db)
