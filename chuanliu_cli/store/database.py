"""The DuckDB database file: locking, reader/writer connections, schema migrations, bookkeeping tables."""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import shutil
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from chuanliu_cli.errors import BusyError, DataError, UsageError
from chuanliu_cli.schema import TABLES, table_ddl
from chuanliu_cli.store.brushing import ORDER_CHANGING_TABLES
from chuanliu_cli.store.names import stored_query

if TYPE_CHECKING:
    import duckdb

SCHEMA_VERSION = 7
DEFAULT_DB = "chuanliu.duckdb"
MEMORY = ":memory:"
#: `load_changes.change`: what a load did to a key of a table that already held rows, and its words. A
#: backward update (a lifecycle regression) is refused, the stored row kept, unless --allow-regress.
BACKWARDS_APPLIED = "update backwards"
BACKWARDS_REFUSED = "backwards refused"
CHANGE_WORDS = {
    "insert": "inserted",
    "update": "updated",
    BACKWARDS_APPLIED: "updated backwards (allowed)",
    BACKWARDS_REFUSED: "backward updates refused (stored rows kept)",
}


class Cancelled(Exception):
    """A database step called off by the command it runs for (its output failed, or it was stopped)."""


# The database connections this process's main thread has open (open_database), so that a signal stops
# the query they run (interrupt_queries). Added and removed under the lock, which interrupt_queries holds:
# a connection is never interrupted while it closes.
_OPEN: set[Any] = set()
_OPEN_LOCK = threading.Lock()


@contextlib.contextmanager
def interruptible(con: duckdb.DuckDBPyConnection) -> Iterator[None]:
    """Within the block, a signal stops the query `con` runs (interrupt_queries), when the block runs in
    the main thread (the signal's thread). Leaves the set before the caller closes the connection."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    with _OPEN_LOCK:
        _OPEN.add(con)
    try:
        yield
    finally:
        with _OPEN_LOCK:
            _OPEN.discard(con)


def interrupt_queries() -> None:
    """Stop the query each open connection of the main thread runs (DuckDB raises InterruptException in
    it). For a signal: DuckDB notices one itself only while the main thread runs the query's tasks, not
    while it waits for its workers on a busy machine (it then ran a query of minutes to its end)."""
    with _OPEN_LOCK:
        for con in _OPEN:
            with contextlib.suppress(Exception):
                con.interrupt()


# Bookkeeping tables. Each migration step takes the schema from version N-1 to N; never edit a step once
# released, add a new one.
_MIGRATIONS: dict[int, tuple[str, ...]] = {
    1: (
        "CREATE TABLE IF NOT EXISTS chuanliu_meta (key VARCHAR PRIMARY KEY, value VARCHAR)",
        "CREATE SEQUENCE IF NOT EXISTS load_id_seq START 1",
        """CREATE TABLE IF NOT EXISTS loads (
            load_id BIGINT PRIMARY KEY,
            "table" VARCHAR NOT NULL,
            file VARCHAR NOT NULL,
            file_sha256 VARCHAR NOT NULL,
            rows_read BIGINT NOT NULL,
            inserted BIGINT NOT NULL,
            updated BIGINT NOT NULL,
            unchanged BIGINT NOT NULL,
            rejected BIGINT NOT NULL,
            duplicates BIGINT NOT NULL,
            time_min TIMESTAMP,
            time_max TIMESTAMP,
            started_at TIMESTAMP NOT NULL,
            finished_at TIMESTAMP NOT NULL,
            tool_version VARCHAR NOT NULL
        )""",
        """CREATE TABLE IF NOT EXISTS rejected_rows (
            load_id BIGINT NOT NULL,
            file VARCHAR NOT NULL,
            line VARCHAR NOT NULL,
            raw VARCHAR,
            reason VARCHAR NOT NULL
        )""",
        *(table_ddl(t) for t in TABLES.values()),
        "CREATE SEQUENCE IF NOT EXISTS run_id_seq START 1",
        """CREATE TABLE IF NOT EXISTS runs (
            run_id BIGINT PRIMARY KEY,
            started_at TIMESTAMP NOT NULL,
            finished_at TIMESTAMP NOT NULL,
            command VARCHAR NOT NULL,
            period VARCHAR NOT NULL,
            period_start DATE NOT NULL,
            period_end DATE NOT NULL,
            complete BOOLEAN NOT NULL,
            scorecard VARCHAR NOT NULL,
            ruleset_name VARCHAR NOT NULL,
            ruleset_sha256 VARCHAR NOT NULL,
            ruleset_path VARCHAR NOT NULL,
            orders_rows BIGINT NOT NULL,
            reviews_rows BIGINT NOT NULL,
            livestreams_rows BIGINT NOT NULL,
            shops_rows BIGINT NOT NULL,
            max_load_id BIGINT,
            entities BIGINT NOT NULL,
            eligible BIGINT NOT NULL,
            pool BIGINT,
            allocated BIGINT,
            tool_version VARCHAR NOT NULL
        )""",
        """CREATE TABLE IF NOT EXISTS run_results (
            run_id BIGINT NOT NULL,
            scorecard VARCHAR NOT NULL,
            entity VARCHAR NOT NULL,
            name VARCHAR,
            rank BIGINT,
            eligible BOOLEAN NOT NULL,
            failed_gates VARCHAR,
            tier VARCHAR,
            score DOUBLE,
            "grant" BIGINT,
            PRIMARY KEY (run_id, scorecard, entity)
        )""",
    ),
    # the promoter's display name from the orders export (达人昵称 / distributorName); the updates of a load
    # refused because they would move rows backwards (an older export loaded over newer data)
    2: (
        'ALTER TABLE orders ADD COLUMN IF NOT EXISTS "promoter_name" VARCHAR',
        "ALTER TABLE loads ADD COLUMN IF NOT EXISTS regressed BIGINT DEFAULT 0",
    ),
    # a recorded run keeps every entity's metrics, scores and gate outcomes (explain and score --id are
    # then served from it), and what the data covered; run_results loses its primary key: a run's rows
    # come from one frame keyed by entity, and the index cost 0.4 s per 100k rows recorded and memory
    # that grew with every run kept
    3: (
        """CREATE TABLE run_results_v3 (
            run_id BIGINT NOT NULL,
            scorecard VARCHAR NOT NULL,
            entity VARCHAR NOT NULL,
            name VARCHAR,
            rank BIGINT,
            eligible BOOLEAN NOT NULL,
            failed_gates VARCHAR,
            tier VARCHAR,
            score DOUBLE,
            "grant" BIGINT,
            grant_note VARCHAR,
            metric_values DOUBLE[],
            score_values DOUBLE[],
            gate_values BOOLEAN[],
            position BIGINT
        )""",
        "INSERT INTO run_results_v3 SELECT run_id, scorecard, entity, name, rank, eligible, failed_gates, "
        'tier, score, "grant", NULL, NULL, NULL, NULL, NULL FROM run_results '
        "ORDER BY run_id, scorecard, entity",
        "DROP TABLE run_results",
        "ALTER TABLE run_results_v3 RENAME TO run_results",
        # JSON: the names of the stored values, the data window, completeness; NULL for older runs
        "ALTER TABLE runs ADD COLUMN IF NOT EXISTS detail VARCHAR",
    ),
    # the program over time (SPEC §9): every recorded run's ruleset text by sha256, so that a run can be
    # re-explained and restated without the original file; and the keys each load inserted or changed in a
    # table that already held rows, so that a restatement names the loads behind each entity's change (a
    # first load of a table records nothing: every row of the table came from one of its first loads)
    4: (
        """CREATE TABLE IF NOT EXISTS rulesets (
            sha256 VARCHAR PRIMARY KEY,
            name VARCHAR NOT NULL,
            text VARCHAR NOT NULL,
            first_recorded TIMESTAMP NOT NULL
        )""",
        """CREATE TABLE IF NOT EXISTS load_changes (
            load_id BIGINT NOT NULL,
            "table" VARCHAR NOT NULL,
            "key" VARCHAR NOT NULL,
            change VARCHAR NOT NULL
        )""",
    ),
    # the marks of the open platform's cps lists (open.seller.order.cps.list), kept beside the orders: an
    # order a list names is a distribution order of its promoter whatever an orders page loaded before or
    # after the list says, so every orders load applies them again and the order of loading pages and lists
    # never matters; a mark whose order is not loaded yet waits here for it (the last list loaded wins)
    5: (
        """CREATE TABLE IF NOT EXISTS cps_marks (
            order_id VARCHAR PRIMARY KEY,
            promoter_id VARCHAR,
            promoter_name VARCHAR,
            load_id BIGINT NOT NULL,
            file VARCHAR NOT NULL,
            line VARCHAR NOT NULL
        )""",
    ),
    # integrity (SPEC §11): each order's brushing and self-purchase flags, kept up to date by every load of
    # orders for the thresholds in brushing_state (scoring reads them instead of finding the bursts again
    # while the state matches the orders: same row count, same newest load); a review's cheat/invalid
    # marker of the export (the open platform's cheatStatus/valid), which makes it suspicious
    6: (
        'ALTER TABLE orders ADD COLUMN IF NOT EXISTS "brushing_mark" BOOLEAN DEFAULT FALSE',
        'ALTER TABLE orders ADD COLUMN IF NOT EXISTS "self_purchase_mark" BOOLEAN DEFAULT FALSE',
        """CREATE TABLE IF NOT EXISTS brushing_state (
            orders INTEGER NOT NULL,
            within_seconds BIGINT NOT NULL,
            orders_rows BIGINT NOT NULL,
            load_id BIGINT
        )""",
        'ALTER TABLE reviews ADD COLUMN IF NOT EXISTS "cheat" BOOLEAN DEFAULT FALSE',
    ),
    # the latest item and promoter names, stored by every load of orders (store/names.py) with the orders
    # they are of; found here once for the orders already loaded
    7: (
        f"CREATE TABLE IF NOT EXISTS item_names AS {stored_query('item_id')}",
        f"CREATE TABLE IF NOT EXISTS promoter_names AS {stored_query('promoter_id')}",
        "CREATE TABLE IF NOT EXISTS names_state (orders_rows BIGINT NOT NULL, load_id BIGINT)",
        "DELETE FROM names_state",
        "INSERT INTO names_state SELECT (SELECT count(*) FROM orders), (SELECT max(load_id) FROM loads "
        f'WHERE list_contains({list(ORDER_CHANGING_TABLES)!r}, "table"))',
    ),
}


def first_row(cursor: duckdb.DuckDBPyConnection) -> tuple[Any, ...] | None:
    """The first row of a result, reading it to the end: DuckDB 2 keeps an unfinished result open on the
    connection and refuses the next statement."""
    rows = cursor.fetchall()
    return rows[0] if rows else None


def resolve_db_path(db: str | None) -> str:
    """The database path from `--db`, else `CHUANLIU_DB`, else `./chuanliu.duckdb`."""
    return db or os.environ.get("CHUANLIU_DB") or DEFAULT_DB


def lock_path(db_path: str) -> Path:
    """The lock file beside the database: `<database>.lock`."""
    return Path(db_path + ".lock")


def _lock_holders(path: Path) -> list[int]:
    """Pids holding a flock on `path`, read from /proc/locks (Linux); empty where that is not available."""
    try:
        inode = path.stat().st_ino
        text = Path("/proc/locks").read_text()
    except OSError:
        return []
    pids = []
    for line in text.splitlines():
        parts = line.split()
        # "1: FLOCK  ADVISORY  WRITE 1234 fd:01:5678 0 EOF" (a "->" marks a waiter)
        if "->" in parts or len(parts) < 6 or parts[1] != "FLOCK":
            continue
        with contextlib.suppress(ValueError):
            if int(parts[5].split(":")[-1]) == inode:
                pids.append(int(parts[4]))
    return sorted(set(pids))


@contextlib.contextmanager
def database_lock(
    db_path: str, mode: Literal["read", "write"], wait: float, cancel: threading.Event | None = None
) -> Iterator[None]:
    """Hold the database's lock file: exclusive for writers, shared for readers; wait up to `wait` seconds
    (or until `cancel` is set: Cancelled).

    DuckDB lets one process write or many read, never both, so readers share the lock and a writer
    waits for them (and they for it). The writer records its pid in the file for the busy message.
    """
    path = lock_path(db_path)
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise DataError(f"cannot create the lock file {path}: {exc.strerror}") from None
    op = fcntl.LOCK_EX if mode == "write" else fcntl.LOCK_SH
    deadline = time.monotonic() + max(wait, 0.0)
    try:
        while True:
            try:
                fcntl.flock(fd, op | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    holders = [p for p in _lock_holders(path) if p != os.getpid()]
                    if not holders:
                        with contextlib.suppress(OSError, ValueError):
                            holders = [int(os.pread(fd, 32, 0).decode().strip())]
                    who = ", ".join(f"pid {p}" for p in holders) or "another process"
                    raise BusyError(
                        f"database {db_path} is busy: locked by {who}",
                        hint=f"waited {wait:g} s; retry later, or wait longer",
                    ) from None
                if cancel is None:
                    time.sleep(0.05)
                elif cancel.wait(0.05):
                    raise Cancelled("called off while waiting for the database's lock") from None
        if mode == "write":
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        yield
    finally:
        with contextlib.suppress(OSError):
            fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


_MEMORY = re.compile(r"^\s*\d+(\.\d+)?\s*(B|KB|MB|GB|TB|KIB|MIB|GIB|TIB)\s*$", re.IGNORECASE)


def spill_directory() -> Path:
    """This process's directory for DuckDB to spill to (removed when the database is closed)."""
    return Path(tempfile.gettempdir()) / f"chuanliu-spill-{os.getpid()}"


def _connect(db_path: str, read_only: bool, memory_limit: str | None = None) -> duckdb.DuckDBPyConnection:
    import duckdb

    config: dict[str, str | bool | int | float | list[str]] = {}
    if memory_limit:
        if not _MEMORY.match(memory_limit):
            raise UsageError(f"invalid memory limit {memory_limit!r}", hint="e.g. 4GB or 512MB")
        # Past the limit DuckDB spills to disk; a private temp directory also works for read-only files.
        config["memory_limit"] = memory_limit
        config["temp_directory"] = str(spill_directory())
    try:
        con = duckdb.connect(db_path, read_only=read_only, config=config)
        # never DuckDB's own progress bar on the terminal (a migration's, a long query's): the loader
        # shows its own from query_progress()
        con.execute("SET enable_progress_bar_print = false")
        return con
    except duckdb.IOException as exc:
        raise DataError(f"cannot open database {db_path}: {exc}") from None
    except duckdb.Error as exc:
        raise DataError(f"cannot open database {db_path}: {exc}") from None


def stored_timezone(con: duckdb.DuckDBPyConnection) -> str | None:
    """The timezone the database's times are in, as its loads recorded it (None before any load)."""
    row = first_row(con.execute("SELECT value FROM chuanliu_meta WHERE key = 'timezone'"))
    return str(row[0]) if row else None


def schema_version(con: duckdb.DuckDBPyConnection) -> int:
    """The schema version recorded in the database (0 for a new, empty one)."""
    # (duckdb_tables(), not information_schema.tables: the view's first read cost 17 ms of every command)
    found = con.execute("SELECT count(*) FROM duckdb_tables() WHERE table_name = 'chuanliu_meta'")
    has_meta = first_row(found)
    if not has_meta or not has_meta[0]:
        return 0
    row = first_row(con.execute("SELECT value FROM chuanliu_meta WHERE key = 'schema_version'"))
    return int(row[0]) if row else 0


def migrate(con: duckdb.DuckDBPyConnection, upto: int = SCHEMA_VERSION) -> None:
    """Bring the schema up to SCHEMA_VERSION (tests: an older `upto`): a new database in one transaction, an
    existing one a step at a time, each in its own transaction."""
    current = schema_version(con)
    if current > SCHEMA_VERSION:
        raise DataError(
            f"the database has schema version {current}, newer than this tool's {SCHEMA_VERSION}",
            hint="upgrade chuanliu",
        )
    # a new database takes every step in one transaction (all or nothing, and one commit instead of one
    # per step: a third of creating `--data`'s in-memory database); an existing one, a step at a time
    pending = range(current + 1, upto + 1)
    if not pending:
        return
    for versions in [pending] if current == 0 else [range(v, v + 1) for v in pending]:
        con.execute("BEGIN TRANSACTION")
        for version in versions:
            for statement in _MIGRATIONS[version]:
                con.execute(statement)
        con.execute(
            "INSERT OR REPLACE INTO chuanliu_meta VALUES ('schema_version', ?)",
            [str(versions[-1])],
        )
        con.execute("COMMIT")


@dataclass
class Database:
    """An open database: the connection and where it lives."""

    path: str
    con: duckdb.DuckDBPyConnection
    read_only: bool

    @property
    def in_memory(self) -> bool:
        """True for the throw-away database of `--data DIR`."""
        return self.path == MEMORY


@contextlib.contextmanager
def open_database(
    db_path: str,
    mode: Literal["read", "write"],
    wait: float = 60.0,
    memory_limit: str | None = None,
    cancel: threading.Event | None = None,
) -> Iterator[Database]:
    """Open the database file under its lock; a writer creates and migrates it, a reader needs it to exist.
    `cancel` set while waiting for the lock raises Cancelled."""
    if db_path == MEMORY:
        yield memory_database(memory_limit)
        return
    if mode == "read" and not Path(db_path).exists():
        raise DataError(
            f"database {db_path} does not exist",
            hint="load data into it first, or use another database or a directory of exports",
        )
    with database_lock(db_path, mode, wait, cancel):
        # checked under the lock: another writer may have created it meanwhile
        created = mode == "write" and not Path(db_path).exists()
        con = _connect(db_path, read_only=mode == "read", memory_limit=memory_limit)
        try:
            with interruptible(con):  # (left before the connection closes below)
                if mode == "write":
                    migrate(con)
                else:
                    version = schema_version(con)
                    if version != SCHEMA_VERSION:
                        raise DataError(
                            f"database {db_path} has schema version {version}, expected {SCHEMA_VERSION}",
                            hint="run any `chuanliu load` to migrate it",
                        )
                yield Database(db_path, con, read_only=mode == "read")
        except BaseException:
            if created:
                # A refused first load leaves no empty database behind (the next command would find a
                # database with no data instead of "does not exist").
                con.close()
                for leftover in (Path(db_path), Path(db_path + ".wal")):
                    leftover.unlink(missing_ok=True)
            raise
        finally:
            con.close()
            shutil.rmtree(spill_directory(), ignore_errors=True)


def memory_database(memory_limit: str | None = None, schema: bool = True) -> Database:
    """A fresh in-memory database with the full schema (for `--data DIR` and tests); without `schema`, an
    empty one (for a copy of a whole database: store/datacache.py)."""
    con = _connect(MEMORY, read_only=False, memory_limit=memory_limit)
    if schema:
        migrate(con)
    return Database(MEMORY, con, read_only=False)


def disable_external_access(con: duckdb.DuckDBPyConnection) -> None:
    """Forbid file and network access for the rest of the connection (once the data is in)."""
    con.execute("SET enable_external_access = false")
    con.execute("SET lock_configuration = true")
