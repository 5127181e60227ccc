"""Concurrent commands (SPEC §3, §7): writers serialize, readers wait and see all or nothing, --wait 0 exits 5."""

from __future__ import annotations

import itertools
import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb
import pytest

from chuanliu_cli.ingest.loader import LoadOptions, discover, load_files
from chuanliu_cli.store.database import lock_path, open_database

REPO = Path(__file__).resolve().parent.parent
#: The writer that readers wait for loads BIG rows (a few seconds); the others load ROWS.
BIG = 300_000
ROWS = 100_000

# Holds the database lock like a command would, until killed (or for argv[3] seconds).
HOLD = """
import sys, time
from chuanliu_cli.store.database import open_database
with open_database(sys.argv[1], sys.argv[2], wait=30):
    print("held", flush=True)
    time.sleep(float(sys.argv[3]))
"""


@dataclass(frozen=True)
class Files:
    """A database holding the sample data, and order files of May 2023 with disjoint keys (a has BIG rows)."""

    base: Path
    base_orders: int
    a: Path
    b: Path
    c: Path


@pytest.fixture(scope="session")
def files(tmp_path_factory: pytest.TempPathFactory) -> Files:
    root = tmp_path_factory.mktemp("concurrency")
    base = root / "base.duckdb"
    with open_database(str(base), "write") as db:
        load_files(db, discover(REPO / "sample_data"), LoadOptions())
    con = duckdb.connect()
    try:
        for name, rows in (("a", BIG), ("b", ROWS), ("c", ROWS)):
            # Self live-room orders of the sample's merchants: they change May's merchant results.
            con.execute(
                f"""COPY (SELECT '{name}' || lpad(cast(i AS VARCHAR), 8, '0') AS order_id,
                      'ks' || (700001 + i % 60) AS shop_id, 'u{name}' || (i % 5000) AS buyer_id,
                      'self' AS sale_mode, 'live' AS carrier,
                      TIMESTAMP '2023-05-01' + to_seconds(i % 2678400) AS order_time,
                      cast(1 + (i % 9000) / 100.0 AS DECIMAL(14,2)) AS paid_amount, 'completed' AS status
                    FROM range({rows}) t(i)) TO '{root / name}.parquet' (FORMAT PARQUET)"""
            )
    finally:
        con.close()
    count = duckdb.connect(str(base), read_only=True)
    try:
        orders = count.execute("SELECT count(*) FROM orders").fetchall()[0][0]
    finally:
        count.close()
    return Files(base, int(orders), root / "a.parquet", root / "b.parquet", root / "c.parquet")


@pytest.fixture
def db(files: Files, tmp_path: Path) -> Path:
    path = tmp_path / "chuanliu.duckdb"
    shutil.copyfile(files.base, path)
    return path


def spawn(db: Path, *args: str) -> subprocess.Popen[str]:
    """`chuanliu --db DB ARGS...` in a child process."""
    env = {**os.environ, "NO_COLOR": "1", "COLUMNS": "200"}
    env.pop("CHUANLIU_DB", None)
    env.pop("CHUANLIU_RULES", None)
    return subprocess.Popen(
        [sys.executable, "-m", "chuanliu_cli", "--db", str(db), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def hold(db: Path, mode: str, seconds: float = 60) -> subprocess.Popen[str]:
    """A process holding the database's lock (read or write) until it is killed."""
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(db), mode, str(seconds)], stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "held"
    return proc


def query(db: Path, sql: str) -> list[tuple[Any, ...]]:
    con = duckdb.connect(str(db), read_only=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def wait_for_lock(db: Path, proc: subprocess.Popen[str], timeout: float = 60) -> None:
    """Wait until `proc` holds the write lock (a writer records its pid in the lock file)."""
    deadline = time.monotonic() + timeout
    lock = lock_path(str(db))
    while time.monotonic() < deadline:
        assert proc.poll() is None, "the writer ended before it was seen holding the lock"
        try:
            if lock.read_text().strip() == str(proc.pid):
                return
        except OSError:
            pass
        time.sleep(0.005)
    raise AssertionError("the writer never took the lock")


def test_loads_at_once_serialize_and_all_apply(files: Files, db: Path) -> None:
    """Three loads started together, one of them a second copy of another's file: one after the other."""
    launched = datetime.now()
    sources = (files.b, files.c, files.c)
    procs = [spawn(db, "-q", "load", "orders", str(f), "--wait", "300") for f in sources]
    outputs = [p.communicate(timeout=600) for p in procs]
    for p, (_out, err) in zip(procs, outputs, strict=True):
        assert p.returncode == 0, err
    # Every row once: the file loaded twice is applied once (its second load finds every row unchanged).
    assert query(db, "SELECT count(*), count(DISTINCT order_id) FROM orders") == [
        (files.base_orders + 2 * ROWS, files.base_orders + 2 * ROWS)
    ]
    loads = query(
        db,
        "SELECT file, inserted, unchanged, started_at, finished_at FROM loads ORDER BY load_id DESC LIMIT 3",
    )
    assert sorted(r[0] for r in loads) == sorted(str(f) for f in sources)
    by_file = sorted((r[0] == str(files.c), r[1], r[2]) for r in loads)
    assert by_file == [(False, ROWS, 0), (True, 0, ROWS), (True, ROWS, 0)]
    # One after the other: each started only once the one before had finished ...
    spans = sorted((r[3], r[4]) for r in loads)
    assert all(end <= next_start for (_, end), (next_start, _) in itertools.pairwise(spans))
    # ... though all three were launched before the first one was done.
    assert launched < spans[0][0] < spans[0][1]


def test_readers_wait_for_a_writer_and_see_all_of_it(files: Files, db: Path, cli: Callable[..., Any]) -> None:
    month = ["--month", "2023-05", "--no-record", "--format", "json"]
    before = cli("--db", str(db), "eligible", *month)
    assert before.exit_code == 0, before.output
    writer = spawn(db, "-q", "load", "orders", str(files.a), "--wait", "60")
    wait_for_lock(db, writer)
    status = spawn(db, "status", "--wait", "120")
    eligible = spawn(db, "eligible", *month, "--wait", "120")
    readers_started_during_write = writer.poll() is None
    _out, err = writer.communicate(timeout=600)
    assert writer.returncode == 0, err
    status_out, status_err = status.communicate(timeout=600)
    eligible_out, eligible_err = eligible.communicate(timeout=600)
    assert status.returncode == 0, status_err
    assert eligible.returncode == 0, eligible_err
    assert readers_started_during_write
    # All of the write, not part of it: every row of the file, and the scores computed on all of them.
    rows = re.search(r"│ orders\s+│\s+([\d,]+) │", status_out)
    assert rows is not None, status_out
    assert int(rows.group(1).replace(",", "")) == files.base_orders + BIG
    after = cli("--db", str(db), "eligible", *month)
    assert after.exit_code == 0, after.output
    assert json.loads(eligible_out) == json.loads(after.stdout)
    assert json.loads(after.stdout) != json.loads(before.stdout)


def test_wait_0_exits_5_at_once_naming_the_holder(files: Files, db: Path, cli: Callable[..., Any]) -> None:
    holder = hold(db, "write")
    try:
        started = time.monotonic()
        load = spawn(db, "load", "orders", str(files.a), "--wait", "0")
        _out, err = load.communicate(timeout=60)
        assert load.returncode == 5, err
        assert time.monotonic() - started < 5
        assert f"locked by pid {holder.pid}" in err
        assert "Traceback" not in err
        for args in (
            ["status"],
            ["eligible", "--month", "2023-05", "--no-record"],
            ["score", "--month", "2023-05", "--no-record"],
            ["explain", "ks700001", "--month", "2023-05"],
            ["runs"],
            ["load", "orders", str(files.b)],
        ):
            t0 = time.monotonic()
            result = cli("--db", str(db), *args, "--wait", "0")
            assert result.exit_code == 5, (args, result.output)
            assert time.monotonic() - t0 < 3, args
            assert "busy" in result.output and f"pid {holder.pid}" in result.output, result.output
        # A short wait is honoured, then the same exit.
        t0 = time.monotonic()
        result = cli("--db", str(db), "status", "--wait", "0.5")
        assert result.exit_code == 5 and time.monotonic() - t0 >= 0.5
    finally:
        holder.kill()
        holder.wait()
    assert query(db, "SELECT count(*) FROM orders") == [(files.base_orders,)]


def test_writer_waits_for_a_reader(files: Files, db: Path, cli: Callable[..., Any]) -> None:
    reader = hold(db, "read", seconds=3)
    try:
        busy = cli("--db", str(db), "load", "orders", str(files.b), "--wait", "0")
        assert busy.exit_code == 5, busy.output
        t0 = time.monotonic()
        result = cli("--db", str(db), "-q", "load", "orders", str(files.b), "--wait", "60")
        assert result.exit_code == 0, result.output
        assert time.monotonic() - t0 >= 0.5  # it waited for the reader to finish
    finally:
        reader.kill()
        reader.wait()
    assert query(db, "SELECT count(*) FROM orders") == [(files.base_orders + ROWS,)]


def test_recording_runs_at_once_both_recorded(db: Path) -> None:
    procs = [
        spawn(db, "eligible", "--month", "2023-05", "--format", "csv", "--wait", "120") for _ in range(2)
    ]
    outputs = [p.communicate(timeout=600) for p in procs]
    for p, (_out, err) in zip(procs, outputs, strict=True):
        assert p.returncode == 0, err
    assert outputs[0][0] == outputs[1][0]
    runs = query(db, "SELECT run_id FROM runs")
    assert len(runs) == 2 and len(set(runs)) == 2
    assert query(db, "SELECT count(DISTINCT run_id) FROM run_results") == [(2,)]
