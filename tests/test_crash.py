"""Crash safety (SPEC §3, §7): `load` and `-o` killed with SIGKILL at many moments leave the old or new state."""

from __future__ import annotations

import hashlib
import os
import select
import shutil
import signal
import stat
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import pytest
from typer.testing import CliRunner

from chuanliu_cli.cli.app import app
from chuanliu_cli.ingest.loader import LoadOptions, discover, load_files
from chuanliu_cli.store.database import open_database

REPO = Path(__file__).resolve().parent.parent
#: The big file of the default moments (a load of a few seconds: every moment is still a distinct point of it;
#: the slow tests kill a 3M-row load at every 5 %).
BIG_ROWS = 1_000_000
SLOW_BIG_ROWS = 3_000_000
#: Orders of the follow-up load that must succeed after every crash.
NEXT_ROWS = 10
TABLE_KEYS = {"orders": "order_id", "reviews": "review_id", "livestreams": "live_id", "shops": "shop_id"}

# The `chuanliu` command line, run in a child process with two passive hooks: every statement of the load
# that matters is reported on the pipe CHL_EVENTS_FD ("start TAG" before it runs, "end TAG" after), and
# CHL_PAUSE=KIND:TAG makes the child sleep right after reporting that event, so that the test can kill it
# at exactly that point. `fsync` and `write` pause inside the atomic writer of `-o FILE`.
DRIVER = r"""
import os, sys, time

fd = int(os.environ["CHL_EVENTS_FD"])
pause = os.environ.get("CHL_PAUSE", "")


def emit(kind, tag):
    os.write(fd, f"{kind} {tag}\n".encode())
    if f"{kind}:{tag}" == pause:
        os.write(fd, f"paused {tag}\n".encode())
        time.sleep(3600)


TAGS = (
    ("BEGIN", "begin"),
    ("CREATE OR REPLACE TABLE STAGE", "stage"),
    ("INSERT INTO STAGE", "stage"),
    ("CREATE OR REPLACE TEMP VIEW SRC ", "stage"),
    ("CREATE OR REPLACE TABLE FRESH", "dedupe"),
    ("CREATE OR REPLACE TEMP TABLE CHANGES", "compare"),
    ("SELECT COUNT(*), COUNT(DISTINCT F.", "compare"),
    ('DELETE FROM "ORDERS"', "delete"),
    ('INSERT OR REPLACE INTO "ORDERS"', "insert"),
    ('INSERT INTO "ORDERS"', "insert"),
    ("INSERT INTO LOADS", "loads"),
    ("COMMIT", "commit"),
)


def classify(sql):
    text = " ".join(str(sql).split()).upper()
    for prefix, tag in TAGS:
        if text.startswith(prefix):
            return tag
    return None


class Connection:
    def __init__(self, con):
        self._con = con

    def __getattr__(self, name):
        return getattr(self._con, name)

    def execute(self, sql, *args, **kwargs):
        tag = classify(sql)
        if tag:
            emit("start", tag)
        result = self._con.execute(sql, *args, **kwargs)
        if tag:
            emit("end", tag)
        return result

    def close(self):
        emit("start", "close")
        self._con.close()
        emit("end", "close")


import chuanliu_cli.store.database as store

real_connect = store._connect
store._connect = lambda *a, **k: Connection(real_connect(*a, **k))

if pause == "start:fsync":
    os.fsync = lambda fileno: emit("start", "fsync")
if pause == "start:write":
    real_fdopen = os.fdopen

    class HalfWriter:
        def __init__(self, f):
            self._f = f

        def __getattr__(self, name):
            return getattr(self._f, name)

        def __enter__(self):
            self._f.__enter__()
            return self

        def __exit__(self, *exc):
            return self._f.__exit__(*exc)

        def write(self, data):
            self._f.write(data[: len(data) // 2])
            self._f.flush()
            emit("start", "write")

    os.fdopen = lambda *a, **k: HalfWriter(real_fdopen(*a, **k))

from chuanliu_cli.cli.app import main

sys.argv = ["chuanliu", *sys.argv[1:]]
main()
"""


# --- the child process and its events -------------------------------------------------------------------


class Child:
    """A `chuanliu` child process under the hook driver, with the events it reported and when."""

    def __init__(self, driver: Path, args: list[str], log: Path, pause: str | None = None) -> None:
        read, write = os.pipe()
        env = {**os.environ, "CHL_EVENTS_FD": str(write), "CHL_PAUSE": pause or "", "NO_COLOR": "1"}
        env.pop("CHUANLIU_DB", None)
        env.pop("CHUANLIU_RULES", None)
        self.log = log
        self.started = time.monotonic()
        with log.open("wb") as out:
            self.proc = subprocess.Popen(
                [sys.executable, str(driver), *args], pass_fds=(write,), env=env, stdout=out, stderr=out
            )
        os.close(write)
        self._fd = read
        self._buffer = b""
        self._eof = False
        self.events: list[tuple[str, str, float]] = []  # (kind, tag, seconds since start)

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def pump(self, timeout: float) -> None:
        """Read the events available within `timeout` seconds."""
        if self._eof:
            time.sleep(timeout)
            return
        ready, _, _ = select.select([self._fd], [], [], timeout)
        if not ready:
            return
        data = os.read(self._fd, 65536)
        if not data:
            self._eof = True
            return
        self._buffer += data
        *lines, self._buffer = self._buffer.split(b"\n")
        now = self.elapsed()
        for line in lines:
            kind, tag = line.decode().split(" ", 1)
            self.events.append((kind, tag, now))

    def drain(self) -> None:
        """Read every event the (dead) child wrote before it died."""
        while not self._eof:
            self.pump(0.5)
        os.close(self._fd)

    def first(self, kind: str, tag: str) -> float | None:
        """When the event was first seen, or None."""
        return next((t for k, g, t in self.events if k == kind and g == tag), None)

    def seen(self, kind: str, tag: str) -> bool:
        return self.first(kind, tag) is not None

    def last_event(self) -> str:
        return " ".join(self.events[-1][:2]) if self.events else "(none)"

    def run_until(self, kill_when: Callable[[Child], bool], timeout: float = 600.0) -> bool:
        """SIGKILL the child as soon as `kill_when` holds; False if it exited by itself first."""
        deadline = time.monotonic() + timeout
        while True:
            if kill_when(self):
                self.proc.send_signal(signal.SIGKILL)
                self.proc.wait()
                self.drain()
                return True
            if self.proc.poll() is not None:
                self.drain()
                return False
            if time.monotonic() > deadline:
                self.proc.kill()
                self.proc.wait()
                raise AssertionError(
                    f"child did not reach its kill moment in {timeout} s: {self.log.read_text()}"
                )
            self.pump(0.002)


# --- database states --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class State:
    """What a database holds, as fingerprints; equal states hold the same rows."""

    tables: tuple[tuple[str, int, int], ...]  # (table, rows, sum of row hashes)
    loads: tuple[tuple[Any, ...], ...]  # every loads row but its timestamps
    rejected: int
    meta: tuple[tuple[str, str], ...]

    def rows(self, table: str) -> int:
        return next(n for t, n, _ in self.tables if t == table)


def read_state(db: Path) -> State:
    """The database's state, after checking it is consistent: keys unique, `loads` agrees with the rows."""
    con = duckdb.connect(str(db), read_only=True)
    try:
        tables = []
        for table, key in TABLE_KEYS.items():
            rows, keys, digest = con.execute(
                f'SELECT count(*), count(DISTINCT "{key}"), coalesce(sum(hash(t)), 0) FROM "{table}" t'
            ).fetchall()[0]
            assert rows == keys, f"{db}: duplicate primary keys in {table}"
            loaded = con.execute(
                'SELECT coalesce(sum(inserted), 0) FROM loads WHERE "table" = ?', [table]
            ).fetchall()[0][0]
            assert loaded == rows, (
                f"{db}: loads says {loaded} {table} rows were inserted, the table has {rows}"
            )
            tables.append((table, int(rows), int(digest)))
        loads = con.execute(
            'SELECT load_id, "table", file, file_sha256, rows_read, inserted, updated, unchanged, rejected, '
            "duplicates, time_min, time_max, tool_version FROM loads ORDER BY load_id"
        ).fetchall()
        assert len({r[0] for r in loads}) == len(loads), f"{db}: duplicate load ids"
        per_load = dict(con.execute("SELECT load_id, count(*) FROM rejected_rows GROUP BY ALL").fetchall())
        for row in loads:
            assert per_load.pop(row[0], 0) == row[8], f"{db}: load {row[0]} rejected count disagrees"
        assert not per_load, f"{db}: rejected rows of unknown loads {sorted(per_load)}"
        rejected = con.execute("SELECT count(*) FROM rejected_rows").fetchall()[0][0]
        meta = con.execute("SELECT key, value FROM chuanliu_meta ORDER BY key").fetchall()
        return State(tuple(tables), tuple(loads), int(rejected), tuple(meta))
    finally:
        con.close()


def file_digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def copy_db(src: Path, dst: Path) -> Path:
    shutil.copyfile(src, dst)
    return dst


# --- session data ------------------------------------------------------------------------------------------


@dataclass
class Crash:
    """Everything the crash tests share: the big file, the database before, the measured reference load."""

    root: Path
    driver: Path
    big: Path
    big_rows: int
    base: Path
    before: State
    next_csv: Path
    after: State | None = None
    reference_db: Path | None = None
    seconds: float = 0.0  # the reference load, from start to the end of its COMMIT
    durations: dict[str, float] = field(default_factory=dict)  # statement tag -> seconds


def _big_parquet(path: Path, rows: int) -> None:
    """An orders export with the required columns in native Parquet types, keys disjoint from the sample's."""
    con = duckdb.connect()
    try:
        con.execute(
            f"""COPY (SELECT 'crash' || lpad(cast(i AS VARCHAR), 9, '0') AS order_id,
                  'ks' || (700000 + i % 600) AS shop_id, 'buyer' || (i % 90000) AS buyer_id,
                  TIMESTAMP '2023-03-01' + to_seconds(i % 7948800) AS order_time,
                  cast((i % 100000) / 100.0 AS DECIMAL(14,2)) AS paid_amount,
                  CASE WHEN i % 50 = 0 THEN 'refunded' ELSE 'completed' END AS status
                FROM range({rows}) t(i)) TO '{path}' (FORMAT PARQUET)"""
        )
    finally:
        con.close()


@dataclass
class Base:
    """The hook driver, a database holding the sample data, and a small file for the follow-up load."""

    root: Path
    driver: Path
    db: Path
    state: State
    next_csv: Path


@pytest.fixture(scope="session")
def base(tmp_path_factory: pytest.TempPathFactory) -> Base:
    root = tmp_path_factory.mktemp("crash")
    driver = root / "driver.py"
    driver.write_text(DRIVER)
    db = root / "base.duckdb"
    with open_database(str(db), "write") as handle:
        load_files(handle, discover(REPO / "sample_data"), LoadOptions())
    next_csv = root / "orders_next.csv"
    next_csv.write_text(
        "order_id,shop_id,buyer_id,sale_mode,order_time,paid_amount,status\n"
        + "".join(f"next{i},ks1,b{i},self,2023-05-02 10:00:00,{i + 1},completed\n" for i in range(NEXT_ROWS))
    )
    return Base(root, driver, db, read_state(db), next_csv)


@pytest.fixture(scope="session")
def base_without_orders(base: Base) -> Base:
    """The sample data without orders: the big file is then a first load into an empty table, which
    appends straight into it (no staging, no comparison) and settles duplicate keys afterwards."""
    db = base.root / "base-without-orders.duckdb"
    items = [(t, p) for t, p in discover(REPO / "sample_data") if t != "orders"]
    with open_database(str(db), "write") as handle:
        load_files(handle, items, LoadOptions())
    return Base(base.root, base.driver, db, read_state(db), base.next_csv)


def _setup(base: Base, name: str, rows: int) -> Crash:
    root = base.root / name
    root.mkdir()
    big = root / "orders_big.parquet"
    _big_parquet(big, rows)
    crash = Crash(root, base.driver, big, rows, base.db, base.state, base.next_csv)
    _reference(crash)
    return crash


def _reference(crash: Crash) -> None:
    """Load the big file under the driver, killed right after its COMMIT: the measured full load."""
    db = copy_db(crash.base, crash.root / "reference.duckdb")
    child = Child(
        crash.driver,
        ["-q", "--db", str(db), "load", "orders", str(crash.big)],
        crash.root / "reference.log",
        pause="end:commit",
    )
    assert child.run_until(lambda c: c.seen("paused", "commit")), child.log.read_text()
    crash.seconds = child.first("end", "commit") or child.elapsed()
    for tag in ("stage", "dedupe", "compare", "delete", "insert", "loads", "commit"):
        start, end = child.first("start", tag), child.first("end", tag)
        if start is not None and end is not None:
            crash.durations[tag] = end - start
    # The kill moments need these statements; if the loader changes its SQL, update DRIVER's TAGS.
    missing = {"stage", "insert", "loads", "commit"} - crash.durations.keys()
    assert not missing, f"the load ran no statement tagged {sorted(missing)}: {child.events}"
    crash.after = read_state(db)
    crash.reference_db = db
    # The after state is the before state plus exactly the file's rows, and one more load.
    before, after = crash.before, crash.after
    assert after.rows("orders") == before.rows("orders") + crash.big_rows
    assert len(after.loads) == len(before.loads) + 1
    assert after.loads[-1][1:6] == (
        "orders",
        str(crash.big),
        file_digest(crash.big),
        crash.big_rows,
        crash.big_rows,
    )
    expected = _orders_subset_digest(db, crash.big)
    assert expected[0] == expected[1]


def _orders_subset_digest(db: Path, big: Path) -> tuple[int, int]:
    """(hash sum of the file's rows as loaded, the same computed from the file): the load copied them exactly."""
    con = duckdb.connect(str(db), read_only=True)
    try:
        digest = "sum(hash(order_id, shop_id, buyer_id, order_time, paid_amount, status))"
        [(loaded,)] = con.execute(f"SELECT {digest} FROM orders WHERE order_id LIKE 'crash%'").fetchall()
        [(source,)] = con.execute(f"SELECT {digest} FROM read_parquet('{big}')").fetchall()
        return int(loaded), int(source)
    finally:
        con.close()


@pytest.fixture(scope="session")
def crash(base: Base) -> Crash:
    return _setup(base, "big", BIG_ROWS)


@pytest.fixture(scope="session")
def crash_slow(base: Base) -> Crash:
    return _setup(base, "bigger", SLOW_BIG_ROWS)


@pytest.fixture(scope="session")
def crash_first_load(base_without_orders: Base) -> Crash:
    return _setup(base_without_orders, "big-first-load", BIG_ROWS)


# --- kill moments --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Moment:
    """When to kill: at a fraction of the measured load, inside a statement, at a pause point, or at the WAL."""

    fraction: float | None = None  # of the reference load's duration, from the start
    inside: tuple[str, float] | None = None  # (statement tag, fraction of its measured duration)
    pause: str | None = None  # "end:loads": right after the statement, before anything else
    wal: bool = False  # during COMMIT, once the write-ahead log exists

    def condition(self, crash: Crash, db: Path, before: str = "insert") -> Callable[[Child], bool]:
        """When to kill. Timed moments are capped by an event (the start of statement `before`, the end of
        the statement inside which to kill), so that a run faster than the reference is still killed where
        it was meant to be, not after it finished."""
        if self.fraction is not None:
            limit = self.fraction * crash.seconds
            return lambda c: c.elapsed() >= limit or c.seen("start", before)
        if self.inside is not None:
            tag, part = self.inside
            if tag not in crash.durations:
                pytest.fail(f"the reference load ran no statement tagged {tag!r}; update DRIVER's TAGS")
            delay = part * crash.durations[tag]
            return lambda c: (
                c.seen("end", tag) or ((s := c.first("start", tag)) is not None and c.elapsed() - s >= delay)
            )
        if self.pause is not None:
            tag = self.pause.split(":")[1]
            return lambda c: c.seen("paused", tag)
        wal = Path(f"{db}.wal")
        return lambda c: c.seen("end", "commit") or (c.seen("start", "commit") and wal.exists())


# With the reference load, killed right after its COMMIT returned, these are the moments of the default run;
# the reading ones are cheap, the others each cost about a full load.
DEFAULT_MOMENTS = {
    "reading-5%": Moment(fraction=0.05),
    "reading-12%": Moment(fraction=0.12),
    "reading-20%": Moment(fraction=0.20),
    "reading-30%": Moment(fraction=0.30),
    "reading-45%": Moment(fraction=0.45),
    "source-ready": Moment(pause="end:stage"),
    "compare-mid": Moment(inside=("compare", 0.5)),
    "insert-mid": Moment(inside=("insert", 0.5)),
    "loads-written": Moment(pause="end:loads"),
    "commit-wal": Moment(wal=True),
}


def _kill_and_verify(crash: Crash, moment: Moment, name: str, cli: Callable[..., Any]) -> str:
    """Kill a load of the big file at `moment`, then check the database; returns "before" or "after"."""
    db = copy_db(crash.base, crash.root / f"{name}.duckdb")
    child = Child(
        crash.driver,
        ["-q", "--db", str(db), "load", "orders", str(crash.big)],
        crash.root / f"{name}.log",
        pause=moment.pause,
    )
    killed = child.run_until(moment.condition(crash, db))
    assert killed, f"{name}: the load finished before its kill moment (rc {child.proc.returncode})"
    where = f"{name} (killed at {child.elapsed():.2f} s of {crash.seconds:.2f} s, last event {child.last_event()!r})"
    return _verify(crash, db, where, child.seen("start", "commit"), child.seen("end", "commit"), cli)


def _verify(
    crash: Crash, db: Path, where: str, commit_called: bool, commit_returned: bool, cli: Callable[..., Any]
) -> str:
    """The database opens, is consistent, holds the state before or after, and takes the next load."""
    # A reader opens it (read-only, as `status` does) ...
    status = cli("--db", str(db), "status", "--wait", "5")
    assert status.exit_code == 0, f"{where}: status failed: {status.output}"
    # ... and finds it consistent, holding exactly the state before or after the load.
    state = read_state(db)
    if state == crash.before:
        outcome = "before"
    elif state == crash.after:
        outcome = "after"
    else:
        raise AssertionError(f"{where}: neither the state before nor the state after the load: {state}")
    if not commit_called:
        assert outcome == "before", f"{where}: killed before COMMIT, yet the load is in the database"
    if commit_returned:
        assert outcome == "after", f"{where}: killed after COMMIT returned, yet the load is lost"
    # The next load succeeds and adds exactly its rows.
    again = cli("-q", "--db", str(db), "load", "orders", str(crash.next_csv), "--wait", "5")
    assert again.exit_code == 0, f"{where}: the next load failed: {again.output}"
    final = read_state(db)
    assert final.rows("orders") == state.rows("orders") + NEXT_ROWS, where
    assert len(final.loads) == len(state.loads) + 1, where
    return outcome


# --- the tests --------------------------------------------------------------------------------------------


#: Kill moments left to the slow run: reading positions the every-5-percent test covers, and moments
#: next to those kept (the default suite stays under 5 minutes on 2 cores).
SLOW_MOMENTS = frozenset(
    {
        "reading-5%",
        "reading-12%",
        "reading-20%",
        "reading-45%",
        "compare-mid",
        "source-ready",
        "loads-written",
    }
)


@pytest.mark.parametrize(
    "name", [pytest.param(n, marks=pytest.mark.slow) if n in SLOW_MOMENTS else n for n in DEFAULT_MOMENTS]
)
def test_killed_load_leaves_state_before_or_after(crash: Crash, cli: Callable[..., Any], name: str) -> None:
    _kill_and_verify(crash, DEFAULT_MOMENTS[name], name, cli)


FIRST_LOAD_MOMENTS = {
    "source-ready": Moment(pause="end:stage"),
    "insert-start": Moment(inside=("insert", 0.05)),
    "insert-mid": Moment(inside=("insert", 0.5)),
    "loads-written": Moment(pause="end:loads"),
    "commit-wal": Moment(wal=True),
}


@pytest.mark.parametrize(
    "name",
    [pytest.param(n, marks=pytest.mark.slow) if n != "insert-mid" else n for n in FIRST_LOAD_MOMENTS],
)
def test_killed_first_load_into_an_empty_table(
    crash_first_load: Crash, cli: Callable[..., Any], name: str
) -> None:
    """The first load of a table appends into the table itself: killed anywhere, it is all or nothing."""
    assert crash_first_load.before.rows("orders") == 0
    _kill_and_verify(crash_first_load, FIRST_LOAD_MOMENTS[name], f"first-{name}", cli)


def test_killed_right_after_commit_keeps_the_load(crash: Crash, cli: Callable[..., Any]) -> None:
    """The measured reference load was killed after its COMMIT returned, before the database was closed."""
    assert crash.reference_db is not None
    assert _verify(crash, crash.reference_db, "after-commit", True, True, cli) == "after"


@pytest.mark.slow
@pytest.mark.parametrize("percent", range(5, 100, 5))
def test_killed_load_at_every_5_percent_3m_rows(
    crash_slow: Crash, cli: Callable[..., Any], percent: int
) -> None:
    db = copy_db(crash_slow.base, crash_slow.root / f"p{percent}.duckdb")
    child = Child(
        crash_slow.driver,
        ["-q", "--db", str(db), "load", "orders", str(crash_slow.big)],
        crash_slow.root / f"p{percent}.log",
    )
    # Capped by the start of closing the database: a run faster than the reference is killed there.
    assert child.run_until(Moment(fraction=percent / 100).condition(crash_slow, db, before="close"))
    where = f"{percent}% (killed at {child.elapsed():.2f} s, last event {child.last_event()!r})"
    _verify(crash_slow, db, where, child.seen("start", "commit"), child.seen("end", "commit"), cli)


SLOW_MOMENTS = {
    "compare-start": Moment(inside=("compare", 0.05)),
    "insert-start": Moment(inside=("insert", 0.05)),
    "insert-late": Moment(inside=("insert", 0.9)),
    "loads-start": Moment(pause="start:loads"),
    "commit-called": Moment(pause="start:commit"),
    "commit-start": Moment(inside=("commit", 0.1)),
    "commit-mid": Moment(inside=("commit", 0.5)),
    "commit-late": Moment(inside=("commit", 0.9)),
    "closing": Moment(pause="start:close"),
}


@pytest.mark.slow
@pytest.mark.parametrize("name", list(SLOW_MOMENTS))
def test_killed_load_at_more_statements_3m_rows(
    crash_slow: Crash, cli: Callable[..., Any], name: str
) -> None:
    _kill_and_verify(crash_slow, SLOW_MOMENTS[name], name, cli)


# --- -o FILE ---------------------------------------------------------------------------------------------------


@dataclass
class Output:
    """An old output file and the new one that a full `eligible -o` run writes, and how long that run takes."""

    old: bytes
    new: bytes
    seconds: float
    args: list[str]


@pytest.fixture(scope="session")
def output(base: Base) -> Output:
    args = ["eligible", "--month", "2023-05", "--no-record", "--format", "csv", "--db", str(base.db)]
    old_file = base.root / "old.csv"
    old_args = [a if a != "2023-05" else "2023-04" for a in args]
    result = CliRunner().invoke(app, [*old_args, "-o", str(old_file)])
    assert result.exit_code == 0, result.output
    target = base.root / "measure.csv"
    child = Child(base.driver, [*args, "-o", str(target)], base.root / "measure.log")
    assert not child.run_until(lambda c: False)
    assert child.proc.returncode == 0, child.log.read_text()
    new, old = target.read_bytes(), old_file.read_bytes()
    assert new != old and new.count(b"\n") > 10
    return Output(old, new, child.elapsed(), args)


OUTPUT_MOMENTS = {
    "80%": Moment(fraction=0.8),
    "half-written": Moment(pause="start:write"),
    "written-not-renamed": Moment(pause="start:fsync"),
}


@pytest.mark.parametrize("name", list(OUTPUT_MOMENTS))
def test_killed_output_keeps_old_file_whole(
    base: Base, output: Output, cli: Callable[..., Any], name: str
) -> None:
    folder = base.root / f"out-{name.replace('%', 'pct')}"
    folder.mkdir()
    target = folder / "list.csv"
    target.write_bytes(output.old)
    moment = OUTPUT_MOMENTS[name]
    if moment.fraction is not None:
        limit = moment.fraction * output.seconds
        condition: Callable[[Child], bool] = lambda c: c.elapsed() >= limit  # noqa: E731
    else:
        tag = (moment.pause or "").split(":")[1]
        condition = lambda c: c.seen("paused", tag)  # noqa: E731
    child = Child(
        base.driver, [*output.args, "-o", str(target)], base.root / f"{folder.name}.log", moment.pause
    )
    killed = child.run_until(condition)
    content = target.read_bytes()
    assert content in (output.old, output.new), f"{name}: {target} is neither the old nor the new file"
    if moment.pause is not None:
        assert killed and content == output.old, f"{name}: the new file appeared before it was complete"
    # What an interrupted write leaves is a hidden temp file beside the target, never a damaged target.
    assert all(p == target or p.name.startswith(".list.csv.") for p in folder.iterdir())
    # The next run replaces the old file with the complete new one.
    done = cli(*output.args, "-o", str(target))
    assert done.exit_code == 0, done.output
    assert target.read_bytes() == output.new


def test_output_file_keeps_usual_permissions(base: Base, output: Output, cli: Callable[..., Any]) -> None:
    folder = base.root / "modes"
    folder.mkdir()
    umask = os.umask(0)
    os.umask(umask)
    new, existing = folder / "new.csv", folder / "existing.csv"
    existing.write_bytes(output.old)
    existing.chmod(0o644)
    for target in (new, existing):
        result = cli(*output.args, "-o", str(target))
        assert result.exit_code == 0, result.output
    assert stat.S_IMODE(new.stat().st_mode) == 0o666 & ~umask
    assert stat.S_IMODE(existing.stat().st_mode) == 0o644
