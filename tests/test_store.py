"""The database file: schema migrations, read-only opening, and the lock file shared between processes."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from chuanliu_cli.errors import BusyError, DataError
from chuanliu_cli.store.database import SCHEMA_VERSION, lock_path, open_database, schema_version

HOLD = """
import sys, time
from chuanliu_cli.store.database import open_database
with open_database(sys.argv[1], sys.argv[2], wait=10):
    print("held", flush=True)
    time.sleep(float(sys.argv[3]))
"""


def _hold(db: Path, mode: str, seconds: float) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(db), mode, str(seconds)], stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "held"
    return proc


def test_new_database_is_migrated(tmp_path: Path) -> None:
    db = tmp_path / "x.duckdb"
    with open_database(str(db), "write") as handle:
        assert schema_version(handle.con) == SCHEMA_VERSION
        tables = {
            r[0] for r in handle.con.execute("SELECT table_name FROM information_schema.tables").fetchall()
        }
    assert {"orders", "reviews", "livestreams", "shops", "loads", "rejected_rows", "chuanliu_meta"} <= tables
    assert lock_path(str(db)).exists()


def test_a_new_database_in_one_transaction_is_the_step_by_step_schema() -> None:
    """A new database takes every migration in one transaction; it ends with the very schema (tables,
    columns with types, defaults and constraints, sequences, indexes, meta rows) that migrating one
    version at a time gives, as an old database does."""
    import duckdb

    from chuanliu_cli.store.database import migrate

    def schema(con: duckdb.DuckDBPyConnection) -> list[object]:
        queries = [
            "SELECT table_name, column_name, column_index, data_type, column_default, is_nullable "
            "FROM duckdb_columns() ORDER BY ALL",
            "SELECT table_name, constraint_type, constraint_text FROM duckdb_constraints() ORDER BY ALL",
            "SELECT sequence_name, start_value, increment_by FROM duckdb_sequences() ORDER BY ALL",
            "SELECT index_name, table_name, sql FROM duckdb_indexes() ORDER BY ALL",
            "SELECT view_name, sql FROM duckdb_views() WHERE NOT internal ORDER BY ALL",
            "SELECT * FROM chuanliu_meta ORDER BY ALL",
        ]
        return [con.execute(q).fetchall() for q in queries]

    at_once = duckdb.connect()
    migrate(at_once)
    stepwise = duckdb.connect()
    for version in range(1, SCHEMA_VERSION + 1):
        migrate(stepwise, upto=version)  # (each call: an existing database, one step)
        assert schema_version(stepwise) == version
    assert schema_version(at_once) == SCHEMA_VERSION
    assert schema(at_once) == schema(stepwise)
    assert len(schema(at_once)[0]) > 50


def test_reader_needs_an_existing_database(tmp_path: Path) -> None:
    with (
        pytest.raises(DataError, match="does not exist"),
        open_database(str(tmp_path / "none.duckdb"), "read"),
    ):
        pass


def test_reader_is_read_only(tmp_path: Path) -> None:
    db = tmp_path / "x.duckdb"
    with open_database(str(db), "write"):
        pass
    import duckdb

    with open_database(str(db), "read") as handle, pytest.raises(duckdb.Error):
        handle.con.execute("CREATE TABLE t (x INT)")


def test_busy_writer_names_holder_pid(tmp_path: Path) -> None:
    db = tmp_path / "x.duckdb"
    proc = _hold(db, "write", 5)
    try:
        started = time.monotonic()
        with (
            pytest.raises(BusyError, match=rf"locked by pid {proc.pid}"),
            open_database(str(db), "write", wait=0),
        ):
            pass
        assert time.monotonic() - started < 2
        with pytest.raises(BusyError), open_database(str(db), "read", wait=0.3):
            pass
    finally:
        proc.kill()
        proc.wait()


def test_writer_waits_for_the_lock(tmp_path: Path) -> None:
    db = tmp_path / "x.duckdb"
    with open_database(str(db), "write"):
        pass
    proc = _hold(db, "write", 1.0)
    try:
        started = time.monotonic()
        with open_database(str(db), "write", wait=20):
            waited = time.monotonic() - started
        assert waited > 0.5
    finally:
        proc.wait()


def test_readers_share_and_block_writers(tmp_path: Path) -> None:
    db = tmp_path / "x.duckdb"
    with open_database(str(db), "write"):
        pass
    proc = _hold(db, "read", 5)
    try:
        with open_database(str(db), "read", wait=0):
            pass  # two readers at once are fine
        with pytest.raises(BusyError), open_database(str(db), "write", wait=0):
            pass
    finally:
        proc.kill()
        proc.wait()


def test_lock_released_when_holder_is_killed(tmp_path: Path) -> None:
    db = tmp_path / "x.duckdb"
    proc = _hold(db, "write", 60)
    proc.kill()
    proc.wait()
    with open_database(str(db), "write", wait=5):
        pass
    assert os.path.exists(lock_path(str(db)))


def test_memory_limit_is_applied_and_spill_directory_removed(tmp_path: Path) -> None:
    from chuanliu_cli.store.database import spill_directory

    db = tmp_path / "m.duckdb"
    with open_database(str(db), "write", memory_limit="300MB") as handle:
        limit = handle.con.execute("SELECT current_setting('memory_limit')").fetchall()[0][0]
        temp = handle.con.execute("SELECT current_setting('temp_directory')").fetchall()[0][0]
    assert limit.replace(" ", "").upper().startswith(("286", "300"))
    assert temp == str(spill_directory())
    assert not spill_directory().exists()


def test_bad_memory_limit_is_usage_error(tmp_path: Path) -> None:
    from chuanliu_cli.errors import UsageError

    with (
        pytest.raises(UsageError, match="invalid memory limit 'lots'"),
        open_database(str(tmp_path / "m.duckdb"), "write", memory_limit="lots"),
    ):
        pass


def test_completeness_needs_history_from_the_earliest_window_and_data_to_the_last_day() -> None:
    """SPEC §6: with only May loaded, May is incomplete for the default ruleset (90-day windows)."""
    from datetime import datetime

    from chuanliu_cli.periods import parse_period
    from chuanliu_cli.rules.compiler import history_needed
    from chuanliu_cli.rules.parser import default_ruleset_path, load_ruleset
    from chuanliu_cli.store.status import completeness

    may = parse_period("2023-05")
    needs = history_needed(load_ruleset(default_ruleset_path()), may)
    only_may = {t: (datetime(2023, 5, 1, 0, 5), datetime(2023, 5, 31, 23, 0)) for t in needs}
    state = completeness(may, needs, only_may)
    assert not state.complete
    assert state.describe() == (
        "needs orders from 2023-03-03 (90-day windows); data from 2023-05-01; "
        "needs reviews from 2023-03-03 (90-day windows); data from 2023-05-01"
    )
    history = {**only_may, "orders": (datetime(2023, 3, 3), only_may["orders"][1])}
    history["reviews"] = (datetime(2023, 2, 1), only_may["reviews"][1])
    assert completeness(may, needs, history).complete
    short = {**history, "livestreams": (datetime(2023, 5, 1), datetime(2023, 5, 30, 23, 59))}
    state = completeness(may, needs, short)
    assert not state.complete and state.short_tables == ("livestreams",)
    assert (
        state.describe() == "livestreams has no data on or after 2023-05-31 (its data ends 2023-05-30 23:59)"
    )
    both = {**short, "orders": (datetime(2023, 3, 3), datetime(2023, 5, 19, 23, 10))}
    assert completeness(may, needs, both).describe() == (
        "livestreams, orders have no data on or after 2023-05-31 "
        "(data ends: livestreams 2023-05-30 23:59, orders 2023-05-19 23:10)"
    )
    empty = {**history, "reviews": (None, None)}
    assert completeness(may, needs, empty).describe() == (
        "needs reviews from 2023-03-03 (90-day windows); no data"
    )


def test_a_refused_first_load_leaves_no_database_behind(tmp_path: Path, cli: Any) -> None:
    """Every row bad: the load is refused (exit 4) and the next command says the database does not exist."""
    bad = tmp_path / "orders.csv"
    bad.write_text("order_id,shop_id,buyer_id,order_time,paid_amount,status\n1,s,b,never,1,paid\n")
    db = tmp_path / "new.duckdb"
    result = cli("--db", str(db), "load", "orders", str(bad), "--max-reject-rows", "0")
    assert result.exit_code == 4, result.output
    assert not db.exists() and not Path(str(db) + ".wal").exists()
    status = cli("--db", str(db), "status")
    assert status.exit_code == 4 and "does not exist" in status.output


def test_a_refused_load_into_an_existing_database_keeps_it(tmp_path: Path, cli: Any) -> None:
    good = tmp_path / "orders.csv"
    good.write_text(
        "order_id,shop_id,buyer_id,order_time,paid_amount,status\n1,s,b,2023-05-01 10:00,1,paid\n"
    )
    bad = tmp_path / "more_orders.csv"
    bad.write_text("order_id,shop_id,buyer_id,order_time,paid_amount,status\n2,s,b,never,1,paid\n")
    db = tmp_path / "kept.duckdb"
    assert cli("--db", str(db), "load", "orders", str(good)).exit_code == 0
    assert cli("--db", str(db), "load", "orders", str(bad), "--max-reject-rows", "0").exit_code == 4
    assert db.exists()
    with open_database(str(db), "read") as handle:
        assert handle.con.execute("SELECT count(*) FROM orders").fetchall() == [(1,)]


def test_a_run_with_no_entities_is_recorded_with_no_result_rows(tmp_path: Path) -> None:
    """A month before any data (or a shops-only database) scores nobody: recording it is not an error."""
    from datetime import datetime

    from chuanliu_cli.periods import parse_period
    from chuanliu_cli.rules.parser import default_ruleset_path, load_ruleset
    from chuanliu_cli.scoring.pipeline import score_period
    from chuanliu_cli.store.runs import list_runs, record_run, run_results, snapshot_inputs

    db = str(tmp_path / "empty.duckdb")
    with open_database(db, "write") as handle:
        run = score_period(handle.con, load_ruleset(default_ruleset_path()), parse_period("2022-05"))
        assert run.scorecards["merchant"].frame.height == 0
        run_id = record_run(
            handle.con, run, "merchant", "eligible", snapshot_inputs(handle.con), datetime.now()
        )
        listed = list_runs(handle.con)
        assert [(r["run_id"], r["entities"], r["eligible"]) for r in listed] == [(run_id, 0, 0)]
        assert run_results(handle.con, run_id)[1].height == 0


def test_a_version_1_database_gains_promoter_name(tmp_path: Path) -> None:
    """Schema version 2 adds orders.promoter_name; a database written by version 1 is migrated by a writer."""
    db = str(tmp_path / "old.duckdb")
    with open_database(db, "write") as handle:
        handle.con.execute("ALTER TABLE orders DROP COLUMN promoter_name")
        handle.con.execute("UPDATE chuanliu_meta SET value = '1' WHERE key = 'schema_version'")
    with (
        pytest.raises(DataError, match=f"schema version 1, expected {SCHEMA_VERSION}"),
        open_database(db, "read"),
    ):
        pass
    with open_database(db, "write") as handle:
        assert schema_version(handle.con) == SCHEMA_VERSION
        columns = [r[0] for r in handle.con.execute("DESCRIBE orders").fetchall()]
        # (the marks of schema version 6 were there before promoter_name came back)
        assert columns[-5:] == [
            "net_amount",
            "quality_return",
            "brushing_mark",
            "self_purchase_mark",
            "promoter_name",
        ]


def test_a_version_2_database_keeps_its_runs_and_gains_stored_values(tmp_path: Path) -> None:
    """Schema version 3 moves run_results to a table that also holds each entity's values (and has no
    primary key); the runs recorded by version 2 stay readable, without values (so never served)."""
    import duckdb

    from chuanliu_cli.store.database import _MIGRATIONS
    from chuanliu_cli.store.runs import run_results

    db = str(tmp_path / "v2.duckdb")
    con = duckdb.connect(db)
    for version in (1, 2):
        for statement in _MIGRATIONS[version]:
            con.execute(statement)
    con.execute("INSERT INTO chuanliu_meta VALUES ('schema_version', '2')")
    con.execute(
        "INSERT INTO runs VALUES (1, now(), now(), 'eligible', '2023-05', DATE '2023-05-01', DATE '2023-06-01', "
        "true, 'merchant', 'r', 'abc', 'r.yaml', 10, 1, 1, 1, 1, 2, 1, 100, 100, '0.1')"
    )
    con.execute(
        "INSERT INTO run_results VALUES (1, 'merchant', 'ks1', 'A', 1, true, '', 'gold', 90.5, 100), "
        "(1, 'merchant', 'ks2', NULL, NULL, false, 'G1;G2', NULL, 10.0, 0)"
    )
    con.close()
    with open_database(db, "write") as handle:
        assert schema_version(handle.con) == SCHEMA_VERSION == 7
        head, rows = run_results(handle.con, 1)
        assert head["entities"] == 2
        assert [(r["entity"], r["failed_gates"], r["grant"]) for r in rows.iter_rows(named=True)] == [
            ("ks1", "", 100),
            ("ks2", "G1;G2", 0),
        ]
        stored = handle.con.execute("SELECT detail FROM runs").fetchall()
        assert stored == [(None,)]  # an old run has no stored values: find_stored_run never picks it
        kinds = handle.con.execute(
            "SELECT DISTINCT constraint_type FROM duckdb_constraints() WHERE table_name = 'run_results'"
        ).fetchall()
        assert kinds == [("NOT NULL",)]  # no primary key
