"""`chuanliu load`: validate export files and upsert them into the store in one transaction (SPEC §3)."""

from __future__ import annotations

import bisect
import contextlib
import re
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from chuanliu_cli import __version__
from chuanliu_cli.arrays import ArrowStream
from chuanliu_cli.errors import DataError, StrictError, UsageError
from chuanliu_cli.ingest.conversion import conversion_sql, merge_sql, row_warnings, unsaid_columns
from chuanliu_cli.ingest.discover import discover as discover  # public here too
from chuanliu_cli.ingest.discover import table_for_file as table_for_file
from chuanliu_cli.ingest.mapping import (
    Mapping,
    TableMapping,
    collision_notes,
    default_mapping,
)
from chuanliu_cli.ingest.readers import FileReader, file_sha256, open_file
from chuanliu_cli.schema import TABLES
from chuanliu_cli.sqltext import ident, literal
from chuanliu_cli.store import brushing, names
from chuanliu_cli.store.database import BACKWARDS_APPLIED, BACKWARDS_REFUSED, first_row, stored_timezone

if TYPE_CHECKING:
    import duckdb
    import polars as pl
    import pyarrow as pa

    from chuanliu_cli.store.database import Database

DEFAULT_TIMEZONE = "Asia/Shanghai"
#: How many rejected rows a failed load lists.
SHOW_REJECTS = 5


@dataclass
class Reject:
    """One rejected row: where it was, what it held, and why."""

    file: str
    line: str
    raw: str
    reason: str

    def __str__(self) -> str:
        return f"{self.file} {self.line}: {self.reason}"


@dataclass
class FileResult:
    """What loading one file (or sheet) did."""

    table: str
    file: str
    sha256: str
    path: str = ""  # the file itself (a workbook's sheets share it)
    rows_read: int = 0
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected: int = 0
    duplicates: int = 0
    time_min: datetime | None = None
    time_max: datetime | None = None
    seconds: float = 0.0
    load_id: int | None = None
    rejects: list[Reject] = field(default_factory=list)  # the first few, for messages
    warnings: list[str] = field(default_factory=list)
    all_rejects: list[Reject] = field(default_factory=list, repr=False)
    # updates refused because they would move a stored row backwards (not counted in `updated`)
    regressed: int = 0
    # of `duplicates`: the occurrences that differ from the one kept (each also in rejected_rows)
    conflicts: int = 0
    # a cps list's marks whose orders are not loaded yet (kept in cps_marks, applied when they are)
    pending: int = 0

    @property
    def reject_rate(self) -> float:
        """Rejected rows as a share of the rows read."""
        return self.rejected / self.rows_read if self.rows_read else 0.0


DuplicatePolicy = Literal["last", "first", "error"]


@dataclass(frozen=True)
class LoadOptions:
    """How to read and validate files."""

    mapping: Mapping = field(default_factory=default_mapping)
    encoding: str | None = None
    sheet: str | None = None
    max_reject_rate: float = 0.01
    timezone: str = DEFAULT_TIMEZONE
    # a file is refused only when its rejects exceed both limits: a small file may have a few bad rows
    max_reject_rows: int = 10
    # a key repeated inside one file with different values: keep its last or first occurrence, or refuse
    on_duplicate: DuplicatePolicy = "last"
    # apply updates that move rows backwards (an older export over newer data) instead of keeping the rows
    allow_regress: bool = False
    # any warning (a missing column, rejected rows, a regression, ...) refuses the load: nothing is written
    strict: bool = False

    def too_many_rejects(self, rejected: int, read: int) -> bool:
        """Whether `rejected` of `read` rows exceed both reject limits (the file is then refused)."""
        return bool(read) and rejected > self.max_reject_rows and rejected / read > self.max_reject_rate

    def over_limits(self, rejected: int, read: int) -> str:
        """The words of a refusal over the reject limits: `rejected of read rows rejected, over ...`."""
        return (
            f"{rejected} of {read} rows rejected, over both reject limits "
            f"({rejected / read:.1%} > max_reject_rate {self.max_reject_rate:.1%} and "
            f"{rejected} > max_reject_rows {self.max_reject_rows})"
        )


ProgressCallback = Callable[[str, int, int | None], None]


@dataclass
class _Prepared:
    table: str
    reader: FileReader
    tm: TableMapping
    columns: dict[str, int]  # canonical column -> file column index
    notes: list[str] = field(default_factory=list)
    # an open-platform cps list: its rows mark stored orders (applied after the files' rows are loaded)
    marks: bool = False

    def warnings(self) -> list[str]:
        """Header collisions, and optional columns whose absence silently changes results."""
        out = list(self.notes)
        for col in self.tm.table.columns:
            if col.derived or col.required or col.name in self.columns or col.name in self.tm.defaults:
                continue
            if col.name in _WATCHED:
                if self.reader.method is not None and col.name == "promoter_id":
                    continue  # (a comment's promoter is its order's, which scoring takes when it has none)
                how = ""
                if self.reader.method is not None:
                    how = f"; {self.reader.method} responses do not say: a mapping file can (defaults: "
                    how += f"{{{col.name}: ...}})"
                out.append(f"{self.reader.name}: no column {col.name} ({_WATCHED[col.name]}{how})")
        return out


# Optional columns that the default ruleset depends on: a file without them loads, but says so.
_WATCHED = {
    "carrier": "售卖载体; every order it adds counts as 'other', so none is a live-room order",
    "refund_amount": "退款金额; of the orders it adds, only those with status refunded count as refunded",
    "promoter_id": "达人ID; the distribution orders it adds have no promoter",
}


def _prepare(table: str, path: Path, options: LoadOptions) -> list[_Prepared]:
    """Open a file and map its headers; a missing required column fails here, before anything is written."""
    if table not in TABLES:
        raise UsageError(f"unknown table {table!r}", hint=f"tables are {', '.join(TABLES)}")
    tm = options.mapping.for_table(table)
    prepared = []
    for reader in open_file(path, options.encoding, options.sheet):
        if reader.method is not None:
            prepared.append(_prepare_responses(table, reader, tm))
            continue
        columns = tm.resolve(reader.headers)
        missing = [c.name for c in tm.table.columns if c.required and c.name not in columns]
        # sale_mode may be derived from promoter_id (SPEC §2)
        missing = [c for c in missing if c != "sale_mode"]
        if table == "livestreams" and not ({"end_time", "duration_minutes"} & columns.keys()):
            missing.append("end_time or duration_minutes")
        if missing:
            col = missing[0]
            # only headers that map to nothing else can be a misspelling of the missing column
            used = set(columns.values())
            spare = [h for i, h in enumerate(reader.headers) if i not in used]
            close = tm.closest_alias(col.split(" ")[0], spare)
            shown = ", ".join(reader.headers[:20]) + (" …" if len(reader.headers) > 20 else "")
            raise DataError(
                f"{reader.name}: missing required column {col} of {table} (found: {shown})",
                hint=(f"did you mean {close!r}? " if close else "")
                + f"accepted headers for {col.split(' ')[0]}: "
                + ", ".join(tm.aliases.get(col.split(" ")[0], [])[:8])
                + "; add yours in a mapping file"
                + f" (a file that is no {table} export but has a table word in its name: rename it or move it"
                " out of the folder)",
            )
        notes = []
        if options.sheet is not None and reader.format != "xlsx":
            notes.append(
                f"{reader.name}: sheet {options.sheet} ignored: the file is {reader.format}, not a workbook"
            )
        notes.extend(collision_notes(tm, reader.headers, reader.name))
        # (the mapping of this file: a header may give its numbers a unit, 直播时长(秒) is seconds)
        prepared.append(_Prepared(table, reader, tm.for_headers(reader.headers), columns, notes))
    if not prepared:
        raise DataError(f"{path}: no sheet with a header row that maps to {table}")
    return prepared


def _prepare_responses(table: str, reader: FileReader, tm: TableMapping) -> _Prepared:
    """A file of open-platform responses: its method's table must be `table`; its columns are canonical, its
    amounts in fen (the scale of the format over any mapping's), a cps list's rows mark orders."""
    from chuanliu_cli.ingest.formats.openplatform import METHODS, marks_mapping

    method = next(m for m in METHODS if m.name == reader.method)
    if method.table != table:
        raise DataError(
            f"{reader.name}: holds {method.name} responses ({method.table}), not {table}",
            hint=f"load it as {method.table}, or name no table: responses are recognised by their shape",
        )
    if method.marks_orders:
        marks = marks_mapping(tm)
        return _Prepared(table, reader, marks, marks.resolve(reader.headers), marks=True)
    tm = replace(tm.for_headers(reader.headers), scale={**tm.scale, **reader.scale})
    return _Prepared(table, reader, tm, tm.resolve(reader.headers))


def load_files(
    db: Database,
    items: list[tuple[str, Path]],
    options: LoadOptions,
    progress: ProgressCallback | None = None,
) -> list[FileResult]:
    """Load files into the database in one transaction; all or nothing.

    Every file is opened and its headers checked before anything is written. If any file's rejected share
    exceeds `max_reject_rate`, nothing at all is written and DataError lists its first rejects.
    """
    prepared = [p for table, path in items for p in _prepare(table, path, options)]
    # the cps lists of the open platform mark orders: after every file's rows are in (orders among them)
    prepared = [p for p in prepared if not p.marks] + [p for p in prepared if p.marks]
    con = db.con
    _check_timezone(con, options.timezone, db.read_only)
    results: list[FileResult] = []
    con.execute("BEGIN TRANSACTION")
    try:
        for p in prepared:
            load = _mark_orders if p.marks else _load_one
            results.append(load(con, p, options, progress))
        _check_reject_rates(results, options)
        if options.strict and (warned := load_warnings(results)):
            raise StrictError(warned)  # before COMMIT: the transaction is rolled back
        for r in results:
            _write_rejects(con, r)
        if any(r.table in brushing.ORDER_CHANGING_TABLES for r in results):
            brushing.refresh(con)  # the flags of the orders as now loaded (SPEC §11)
            names.refresh(con)  # the latest item and promoter names
        con.execute(
            "INSERT OR REPLACE INTO chuanliu_meta VALUES ('timezone', ?)",
            [options.timezone],
        )
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    return results


def load_warnings(results: Sequence[FileResult]) -> list[str]:
    """What a load must say even under -q: each file's warnings, and its rejected rows with the first."""
    warnings: list[str] = []
    for r in results:
        warnings.extend(r.warnings)
        if r.rejected:
            first = "".join(f"\n  {x}" for x in r.rejects[:3])
            warnings.append(f"{r.file}: {r.rejected} row(s) rejected; the first:{first}")
    return warnings


def _write_rejects(con: duckdb.DuckDBPyConnection, result: FileResult) -> None:
    """All rejected rows of a file in one statement (row by row took ~0.5 ms each)."""
    import polars as pl

    rejects = result.all_rejects
    if not rejects:
        return
    assert result.load_id is not None
    table = pl.DataFrame(
        {
            "load_id": pl.Series([result.load_id] * len(rejects), dtype=pl.Int64),
            "file": pl.Series([r.file for r in rejects], dtype=pl.String),
            "line": pl.Series([r.line for r in rejects], dtype=pl.String),
            "raw": pl.Series([r.raw[:10_000] for r in rejects], dtype=pl.String),
            "reason": pl.Series([r.reason for r in rejects], dtype=pl.String),
        }
    )
    con.register("rejects_batch", ArrowStream(table))
    try:
        con.execute("INSERT INTO rejected_rows SELECT * FROM rejects_batch")
    finally:
        con.unregister("rejects_batch")
    result.all_rejects = []


def _check_reject_rates(results: list[FileResult], options: LoadOptions) -> None:
    """SPEC §3: a file (all its sheets together) with too many rejects fails the whole load.

    Too many is more than both limits: a share of the rows (max_reject_rate) and a number of rows
    (max_reject_rows), so that one bad row does not refuse an 80-row file.
    """
    by_file: dict[str, list[FileResult]] = {}
    for r in results:
        by_file.setdefault(r.path, []).append(r)
    for path, parts in by_file.items():
        read = sum(r.rows_read for r in parts)
        rejected = sum(r.rejected for r in parts)
        if options.too_many_rejects(rejected, read):
            name = parts[0].file if len(parts) == 1 else path
            raise DataError(
                f"{name}: {options.over_limits(rejected, read)}; nothing was written",
                hint="fix the file, or raise a reject limit (max_reject_rate or max_reject_rows) to load "
                "the good rows",
                details=[str(x) for r in parts for x in r.rejects][:SHOW_REJECTS],
            )


def _check_timezone(con: duckdb.DuckDBPyConnection, timezone: str, read_only: bool) -> None:
    stored = stored_timezone(con)
    if stored is not None and stored != timezone:
        raise UsageError(
            f"the database holds times in {stored}, not {timezone}",
            hint=f"load with timezone={stored}, or into another database",
        )


def _stage_batches(
    con: duckdb.DuckDBPyConnection,
    p: _Prepared,
    options: LoadOptions,
    result: FileResult,
    progress: ProgressCallback | None,
) -> list[Reject]:
    """Convert every batch of the file into the table `stage`; returns every rejected row.

    `stage` is an ordinary table created inside the load's transaction, not a TEMP one: DuckDB writes the
    row groups of a large uncommitted insert to the database file as it goes, where a temp table stays in
    memory (3M CSV rows: 0.85 GB flat instead of 1.3 GB and growing). It never commits: it is dropped
    before COMMIT, or rolled back with everything else.
    """
    import duckdb

    rejects: list[Reject] = []
    names = list(p.columns)
    selected = [p.columns[c] for c in names]
    created = False
    for batch in p.reader.batches(selected):
        n = len(batch.lines)
        table = batch.table(selected, names)
        try:
            present = _duck_types(con, table, names)
        except DataError as exc:
            raise DataError(f"{p.reader.name}: {exc.message}", exc.hint) from None
        sql, _ = conversion_sql(p.tm, present, options.timezone, source="batch")
        # DuckDB keeps what is registered referenced until the transaction ends (the whole load): the
        # holder lets go of the batch once its statement ran, so memory does not grow with the file.
        shops_from_orders = p.reader.method is not None and p.table == "reviews" and "shop_id" in names
        holder = ArrowStream(table)
        con.register("batch_in" if shops_from_orders else "batch", holder)
        if shops_from_orders:
            _shop_from_order(con, names)
        try:
            if not created:
                con.execute(f"CREATE OR REPLACE TABLE stage AS {sql}")
                created = True
            else:
                con.execute(f"INSERT INTO stage {sql}")
        except duckdb.Error as exc:
            raise DataError(
                f"{p.reader.name}: cannot convert rows {batch.first_line()}–{batch.last_line()}: "
                f"{str(exc).splitlines()[0]}"
            ) from None
        finally:
            with contextlib.suppress(duckdb.Error):
                if shops_from_orders:
                    con.execute("DROP VIEW IF EXISTS batch")
                    con.unregister("batch_in")
                else:
                    con.unregister("batch")
            holder.release()
            del table
        bad = con.execute(
            "SELECT __line, __reason FROM stage WHERE __reason IS NOT NULL AND __line BETWEEN ? AND ? "
            "ORDER BY __line",
            [batch.first_line(), batch.last_line()],
        ).fetchall()
        if bad:
            lines = batch.line_numbers()
            for line, reason in bad:
                k = bisect.bisect_left(lines, line)
                rejects.append(Reject(p.reader.name, p.reader.where(line, reason), batch.raw(k), reason))
        result.rows_read += n
        if progress is not None:
            progress(p.reader.name, result.rows_read, p.reader.total_rows)
    if not created:
        import polars as pl

        empty = pl.DataFrame(
            {**{c: pl.Series([], dtype=pl.String) for c in names}, "__line": pl.Series([], dtype=pl.Int64)}
            | {"__shape": pl.Series([], dtype=pl.String)}
        )
        sql, _ = conversion_sql(p.tm, {c: "VARCHAR" for c in names}, options.timezone, source="batch")
        con.register("batch", ArrowStream(empty))
        con.execute(f"CREATE OR REPLACE TABLE stage AS {sql}")
        con.unregister("batch")
    return rejects


def _shop_from_order(con: duckdb.DuckDBPyConnection, names: list[str]) -> None:
    """The view `batch`: the comments of `batch_in` with the shop of their order where they name none (SPEC
    §2: the open platform's comments carry no shop). A comment whose order is not loaded says so.

    (The promoter is left to scoring, which takes it from the order when a review has none: a cps list
    loaded later changes an order's promoter, and its reviews follow.)"""
    cols = ", ".join(
        "coalesce(b.shop_id, o.shop_id) AS shop_id" if n == "shop_id" else f"b.{ident(n)}" for n in names
    )
    missing = (
        "'column shop_id: the comment names no shop and its order ' || b.order_id || ' is not loaded; "
        "load its orders (open.order.cursor.list responses or an orders export) first or in the same command'"
    )
    con.execute(
        f"CREATE OR REPLACE TEMP VIEW batch AS SELECT {cols}, b.__line, "
        "CASE WHEN b.__shape IS NULL AND b.shop_id IS NULL AND o.order_id IS NULL AND b.order_id IS NOT NULL "
        f"THEN {missing} ELSE b.__shape END AS __shape "
        "FROM batch_in b LEFT JOIN orders o ON o.order_id = b.order_id"
    )


def _duck_types(
    con: duckdb.DuckDBPyConnection, table: pl.DataFrame | pa.Table, names: list[str]
) -> dict[str, str]:
    """The DuckDB type of each canonical column of a batch."""
    import polars as pl

    if isinstance(table, pl.DataFrame):
        if all(table.schema[n] == pl.String for n in names):
            return {n: "VARCHAR" for n in names}  # (a text file's cells: what DuckDB says of polars text)
        empty: pl.DataFrame | pa.Table = table.clear()
    else:
        import pyarrow as pa

        # no rows (a slice would hold the whole batch; Schema.empty_table imports pandas)
        empty = pa.Table.from_batches([], schema=table.schema)
    con.register("batch_types", ArrowStream(empty))
    try:
        rows = con.execute("DESCRIBE SELECT * FROM batch_types").fetchall()
    finally:
        con.unregister("batch_types")
    return _check_types({r[0]: str(r[1]) for r in rows}, names)


def _check_types(types: dict[str, str], names: list[str]) -> dict[str, str]:
    """The types of the columns `names`; nested and binary types are refused (no export holds them)."""
    for n in names:
        kind = types[n].upper()
        if any(k in kind for k in ("STRUCT", "MAP", "[]", "LIST", "UNION", "INTERVAL", "BLOB", "BIT")):
            raise DataError(
                f"column {n} holds {types[n]} values, not text, numbers or times",
                hint="export that column as plain values",
            )
    return {n: types[n] for n in names}


def _load_one(
    con: duckdb.DuckDBPyConnection, p: _Prepared, options: LoadOptions, progress: ProgressCallback | None
) -> FileResult:
    started = datetime.now()
    t0 = time.perf_counter()
    table = TABLES[p.table]
    # the file's digest is computed meanwhile (hashlib releases the GIL; DuckDB works on its own threads)
    hasher = ThreadPoolExecutor(max_workers=1)
    digest = hasher.submit(file_sha256, p.reader.path)
    hasher.shutdown(wait=False)
    result = FileResult(p.table, p.reader.name, "", str(p.reader.path))
    result.warnings = p.warnings()
    target = ident(table.name)
    existing = first_row(con.execute(f"SELECT count(*) FROM (SELECT 1 FROM {target} LIMIT 1)"))
    was_empty = not (existing and existing[0])
    set_based = _set_based(p)
    if set_based:
        source = _parquet_source(con, p, options)
        result.rows_read = p.reader.total_rows or 0
    else:
        rejects = _stage_batches(con, p, options, result, progress)
        source = "stage"
    source = _with_marks(con, p, source, result)
    if result.rows_read == 0 and p.reader.method is None:
        # (an empty page of responses is the last page of a cursor, not a mistake)
        result.warnings.append(f"{p.reader.name}: no data rows (only a header)")
    with _polling(con, p, progress, set_based), _damaged(p, set_based):
        if was_empty:
            valid, conflicts = _insert_into_empty(con, p, source, result, options)
        else:
            valid, conflicts = _upsert(con, p, source, result, options)
        if set_based:
            rejects = _parquet_rejects(con, p, source, result.rows_read - valid, options)
        duplicate_rejects = _conflict_rejects(con, p, source, set_based, conflicts, options)
        # valid rows loaded as given but doubtful (a duration that disagrees with the session's times)
        result.warnings.extend(row_warnings(con, p.table, source, p.reader.name, p.reader.line_label))
        result.warnings.extend(_unknown_orders(con, p, source))
    # what reading found (an encoding that changes part-way, a summary sheet left out) is said, not lost
    result.warnings.extend(p.reader.notes)
    # (a set-based file past the reject rate fetched only its first rejects: count them all)
    result.rejected = result.rows_read - valid
    result.rejects = rejects[:SHOW_REJECTS]
    result.load_id = _next_load_id(con)
    # written once every file passed the reject-rate check; the differing duplicates are kept there too
    result.all_rejects = rejects + duplicate_rejects
    result.sha256 = digest.result()
    if not was_empty and (result.inserted or result.updated or result.regressed):
        con.execute(
            "INSERT INTO load_changes SELECT ?, ?, key, change FROM __touched", [result.load_id, p.table]
        )
        con.execute("DROP TABLE __touched")
    _record_load(con, p, result, started, t0)
    con.execute("DROP VIEW IF EXISTS marked")
    con.execute("DROP TABLE IF EXISTS stage")
    con.execute("DROP VIEW IF EXISTS src")
    con.execute("DROP VIEW IF EXISTS src_file")
    return result


#: The share of a reviews file's valid rows naming an order that is not loaded above which the load says so
#: (a review of an order older than the loaded months is normal; a tenth of them is not).
UNKNOWN_ORDERS_SHARE = 0.01


def _unknown_orders(con: duckdb.DuckDBPyConnection, p: _Prepared, source: str) -> list[str]:
    """A warning when more than UNKNOWN_ORDERS_SHARE of a reviews file's valid rows name an order that is
    not loaded: their orders' integrity flags cannot be checked, and ids that differ only by leading zeros
    (an orders workbook whose ids were numbers) match nothing, without a word otherwise."""
    if p.table != "reviews":
        return []
    unmatched = (
        f"FROM {source} r ANTI JOIN orders o ON r.order_id = o.order_id "
        "WHERE r.__reason IS NULL AND r.order_id IS NOT NULL"
    )
    counts = first_row(
        con.execute(
            f"SELECT (SELECT count(*) FROM {source} WHERE __reason IS NULL AND order_id IS NOT NULL), "
            f"(SELECT count(*) {unmatched})"
        )
    )
    total, unknown = (int(counts[0]), int(counts[1])) if counts else (0, 0)
    if not unknown or unknown <= UNKNOWN_ORDERS_SHARE * total:
        return []
    examples = con.execute(f"SELECT r.order_id, r.__line {unmatched} ORDER BY r.__line LIMIT 3").fetchall()
    shown = ", ".join(f"{order} ({p.reader.line_label} {line})" for order, line in examples)
    return [
        f"{p.reader.name}: {unknown:,} of {total:,} reviews ({unknown / total:.1%}) name an order that is "
        f"not loaded, e.g. order_id {shown}: their orders' brushing and self-purchase flags cannot be "
        "checked. Load those orders; if they are loaded, compare the ids: a spreadsheet that kept order ids "
        "as numbers dropped their leading zeros (export ids as text)"
    ]


def _next_load_id(con: duckdb.DuckDBPyConnection) -> int:
    row = first_row(con.execute("SELECT nextval('load_id_seq')"))
    assert row is not None
    return int(row[0])


def _record_load(
    con: duckdb.DuckDBPyConnection, p: _Prepared, result: FileResult, started: datetime, t0: float
) -> None:
    """The `loads` row of one file (or sheet)."""
    result.seconds = time.perf_counter() - t0
    con.execute(
        'INSERT INTO loads (load_id, "table", file, file_sha256, rows_read, inserted, updated, unchanged, '
        "rejected, duplicates, time_min, time_max, started_at, finished_at, tool_version, regressed) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            result.load_id,
            result.table,
            str(Path(p.reader.path).resolve()) + (f"[{p.reader.sheet}]" if p.reader.sheet else ""),
            result.sha256,
            result.rows_read,
            result.inserted,
            result.updated,
            result.unchanged,
            result.rejected,
            result.duplicates,
            result.time_min,
            result.time_max,
            started,
            datetime.now(),
            __version__,
            result.regressed,
        ],
    )


# --- open-platform cps lists: marks kept beside the orders --------------------------------------------------

#: An order `o` as the cps mark `m` (a row of cps_marks, or NULLs) makes it: a distribution order of the
#: mark's promoter (the order's own when the mark names none), named by the mark, else by the order when
#: the promoter stays the same.
_MARKED = {
    "sale_mode": "CASE WHEN m.order_id IS NULL THEN {o}.sale_mode ELSE 'distribution' END",
    "promoter_id": "coalesce(m.promoter_id, {o}.promoter_id)",
    "promoter_name": "CASE WHEN m.order_id IS NULL THEN {o}.promoter_name WHEN m.promoter_name IS NOT NULL "
    "THEN m.promoter_name WHEN m.promoter_id IS NULL OR m.promoter_id = {o}.promoter_id "
    "THEN {o}.promoter_name END",
}


def _unlike_mark(o: str) -> str:
    """Whether order `o` differs from what its mark `m` makes it (the mark then changes it)."""
    return " OR ".join(f"({_MARKED[c].format(o=o)}) IS DISTINCT FROM {o}.{c}" for c in _MARKED)


def _contradicts_mark(o: str) -> str:
    """Whether order `o`'s own data said otherwise than its mark `m`: self-sold, or another promoter."""
    return (
        f"({o}.sale_mode = 'self' OR (m.promoter_id IS NOT NULL AND {o}.promoter_id IS NOT NULL "
        f"AND {o}.promoter_id <> m.promoter_id))"
    )


def _said_otherwise(name: str, rows: list[tuple[str, str, str | None, str | None]], how: str) -> str:
    """The warning naming the orders whose own data a cps mark overrides: (order, mode, promoter, mark's)."""
    said = [
        f"order {oid} {mode}{f' (promoter {was})' if was else ''} → distribution (promoter {now or was})"
        for oid, mode, was, now in rows
    ]
    more = f"; … {len(said) - SHOW_REJECTS} more" if len(said) > SHOW_REJECTS else ""
    return (
        f"{name}: {len(said)} order(s) whose own data said self-sold or another promoter are distribution "
        f"orders of {how}: {'; '.join(said[:SHOW_REJECTS])}{more}"
    )


def _with_marks(con: duckdb.DuckDBPyConnection, p: _Prepared, source: str, result: FileResult) -> str:
    """The rows of an orders file with the stored cps marks applied (the temp view `marked`), before they are
    compared with the stored orders: so an orders page loaded after a cps list keeps its marks, and loading
    it again changes nothing. `source` itself when no mark is stored (the usual case: no cost). The orders
    whose own data said otherwise are named in a warning."""
    if p.table != "orders" or first_row(con.execute("SELECT 1 FROM cps_marks LIMIT 1")) is None:
        return source
    replaced = ", ".join(f"{e.format(o='s')} AS {ident(c)}" for c, e in _MARKED.items())
    con.execute(
        f"CREATE OR REPLACE TEMP VIEW marked AS SELECT s.* REPLACE ({replaced}) FROM {source} s "
        "LEFT JOIN cps_marks m ON m.order_id = s.order_id"
    )
    said = con.execute(
        f"SELECT s.order_id, s.sale_mode, s.promoter_id, m.promoter_id FROM {source} s JOIN cps_marks m "
        f"ON m.order_id = s.order_id WHERE s.__reason IS NULL AND {_contradicts_mark('s')} "
        "ORDER BY s.__line"
    ).fetchall()
    if said:
        result.warnings.append(_said_otherwise(p.reader.name, said, "the cps lists loaded before"))
    return "marked"


def _mark_orders(
    con: duckdb.DuckDBPyConnection, p: _Prepared, options: LoadOptions, progress: ProgressCallback | None
) -> FileResult:
    """Load a cps list (open.seller.order.cps.list): keep its rows as marks in `cps_marks` and apply them to
    the stored orders; each order it names becomes a distribution order of its promoter.

    The orders table is the one place scorecards read sale_mode and promoter_id from (scoring stays one
    table, and the reviews of a marked order follow it: scoring takes a review's promoter from its order).
    The marks are kept, and every later orders load applies them to its rows (`_with_marks`), so that
    loading an orders page again does not undo them and the order of loading pages and lists never
    matters. A mark whose order is not loaded yet waits in cps_marks and is said (`pending`), never dropped.
    A later list's mark of the same order replaces the earlier one; within one list the last row wins.
    The file's counts are its marks', as rows of the table cps_marks (inserted: new, updated: replacing
    another mark of the order, unchanged: stored as they are, so that loading a list again says nothing
    changed); the orders they change are recorded in load_changes, and those whose own data said otherwise
    (self-sold, another promoter) are named in a warning.
    """
    started = datetime.now()
    t0 = time.perf_counter()
    result = FileResult("cps_marks", p.reader.name, "", str(p.reader.path))
    result.warnings = list(p.notes)
    rejects = _stage_batches(con, p, options, result, progress)
    valid = first_row(con.execute("SELECT count(*) FROM stage WHERE __reason IS NULL"))
    assert valid is not None
    con.execute(
        "CREATE OR REPLACE TEMP TABLE marks AS SELECT order_id, promoter_id, promoter_name, __line "
        "FROM stage WHERE __reason IS NULL "
        "QUALIFY row_number() OVER (PARTITION BY order_id ORDER BY __line DESC) = 1"
    )
    counts = first_row(con.execute("SELECT count(*) FROM marks"))
    assert counts is not None
    result.duplicates = int(valid[0]) - int(counts[0])
    result.load_id = _next_load_id(con)
    # the marks kept: new ones, and those that differ from the stored mark of their order (an identical one
    # keeps the load that first gave it)
    lines = con.execute(
        "SELECT m.__line, c.order_id IS NULL FROM marks m LEFT JOIN cps_marks c ON c.order_id = m.order_id "
        "WHERE c.order_id IS NULL OR c.promoter_id IS DISTINCT FROM m.promoter_id "
        "OR c.promoter_name IS DISTINCT FROM m.promoter_name"
    ).fetchall()
    result.inserted = sum(1 for _, new in lines if new)
    result.updated = len(lines) - result.inserted
    result.unchanged = int(counts[0]) - len(lines)
    if lines:
        import polars as pl

        where = pl.DataFrame(
            {
                "__line": pl.Series([int(r[0]) for r in lines], dtype=pl.Int64),
                "__where": pl.Series([p.reader.where(int(r[0])) for r in lines], dtype=pl.String),
            }
        )
        con.register("mark_lines", ArrowStream(where))
        try:
            con.execute(
                "DELETE FROM cps_marks WHERE order_id IN "
                "(SELECT m.order_id FROM marks m SEMI JOIN mark_lines w ON w.__line = m.__line)"
            )
            con.execute(
                "INSERT INTO cps_marks SELECT m.order_id, m.promoter_id, m.promoter_name, ?, ?, w.__where "
                "FROM marks m JOIN mark_lines w ON w.__line = m.__line",
                [result.load_id, p.reader.name],
            )
        finally:
            con.unregister("mark_lines")
    pending = con.execute(
        "SELECT m.order_id, m.__line FROM marks m ANTI JOIN orders o ON o.order_id = m.order_id "
        "ORDER BY m.__line"
    ).fetchall()
    changed = con.execute(
        "SELECT m.order_id, o.sale_mode, o.promoter_id, m.promoter_id, "
        f"{_contradicts_mark('o')} FROM marks m JOIN orders o "
        f"ON o.order_id = m.order_id WHERE {_unlike_mark('o')} ORDER BY m.__line"
    ).fetchall()
    result.pending = len(pending)
    if changed:
        assignments = ", ".join(f"{ident(c)} = {e.format(o='orders')}" for c, e in _MARKED.items())
        con.execute(
            f"UPDATE orders SET {assignments} FROM marks m "
            f"WHERE orders.order_id = m.order_id AND ({_unlike_mark('orders')})"
        )
        said = [row[:4] for row in changed if row[4]]
        if said:
            result.warnings.append(_said_otherwise(p.reader.name, said, "the cps list's promoter"))
        con.execute(
            "INSERT INTO load_changes SELECT ?, 'orders', CAST(order_id AS VARCHAR), 'update' "
            "FROM (SELECT unnest(?::VARCHAR[]) AS order_id)",
            [result.load_id, [row[0] for row in changed]],
        )
    if pending:
        shown = "; ".join(
            f"order {oid} ({p.reader.where(int(line))})" for oid, line in pending[:SHOW_REJECTS]
        )
        more = f"; … {len(pending) - SHOW_REJECTS} more" if len(pending) > SHOW_REJECTS else ""
        result.warnings.append(
            f"{p.reader.name}: {len(pending)} cps row(s) name orders that are not loaded yet: {shown}{more}; "
            "their marks are kept and apply when those orders are loaded (open.order.cursor.list responses "
            "or an orders export)"
        )
    result.rejected = result.rows_read - int(valid[0])
    result.all_rejects = rejects
    result.rejects = rejects[:SHOW_REJECTS]
    result.sha256 = file_sha256(p.reader.path)
    _record_load(con, p, result, started, t0)
    con.execute("DROP TABLE IF EXISTS stage")
    con.execute("DROP TABLE IF EXISTS marks")
    return result


@dataclass(frozen=True)
class _Conflict:
    """A key repeated in one file with different values: the occurrence dropped and the one kept."""

    key: str
    line: int
    kept: int
    columns: str  # the columns whose values differ, "status, paid_amount"


def _conflicts(
    con: duckdb.DuckDBPyConnection, p: _Prepared, source: str, options: LoadOptions
) -> list[_Conflict]:
    """The valid rows whose key the file repeats and whose values differ from the occurrence kept (the
    last or first, by line); repeats equal to it are harmless and only counted. Raises DataError when the
    policy is to refuse such files. Runs only when the file repeats a key."""
    table = TABLES[p.table]
    key = ident(table.key)
    pick = "min" if options.on_duplicate == "first" else "max"
    compared = [c.name for c in table.columns if not c.derived and c.name != table.key]
    differs = ", ".join(
        f"CASE WHEN s.{ident(c)} IS DISTINCT FROM k.{ident(c)} THEN {literal(c)} END" for c in compared
    )
    rows = con.execute(
        f"WITH valid AS (SELECT * FROM {source} WHERE __reason IS NULL), "
        f"kept AS (SELECT {key}, {pick}(__line) AS __line FROM valid GROUP BY {key} HAVING count(*) > 1) "
        "SELECT * FROM ("
        f"SELECT CAST(s.{key} AS VARCHAR) AS dup_key, s.__line AS dup_line, d.__line AS kept_line, "
        f"concat_ws(', ', {differs or 'NULL'}) AS differs FROM valid s "
        f"JOIN kept d ON s.{key} = d.{key} AND s.__line <> d.__line "
        f"JOIN valid k ON k.{key} = d.{key} AND k.__line = d.__line"
        ") WHERE differs <> '' ORDER BY dup_line"
    ).fetchall()
    found = [_Conflict(str(k), int(line), int(kept), str(cols)) for k, line, kept, cols in rows]
    if found and options.on_duplicate == "error":
        label, where = p.reader.line_label, p.reader.where

        def both(a: int, b: int) -> str:
            return f"{label}s {a} and {b}" if p.reader.locate is None else f"{where(a)} and {where(b)}"

        raise DataError(
            f"{p.reader.name}: {len(found)} row(s) repeat a key ({table.key}) with different values and the "
            "duplicate policy is to refuse them; nothing was written",
            hint="remove the repeated rows, or keep the last or the first occurrence of each key",
            details=[
                f"{table.key} {c.key}: {both(min(c.line, c.kept), max(c.line, c.kept))} differ in {c.columns}"
                for c in found[:SHOW_REJECTS]
            ],
        )
    return found


def _conflict_rejects(
    con: duckdb.DuckDBPyConnection,
    p: _Prepared,
    source: str,
    set_based: bool,
    conflicts: list[_Conflict],
    options: LoadOptions,
) -> list[Reject]:
    """The dropped occurrences of differing duplicates as rows of `rejected_rows`, with their raw record."""
    if not conflicts:
        return []
    lines = sorted({c.line for c in conflicts})
    if set_based:
        raw = dict(
            con.execute(
                f"SELECT __line, __raw FROM {source} WHERE __line IN (SELECT unnest(?::BIGINT[]))", [lines]
            ).fetchall()
        )
    else:
        raw = _raw_lines(p, options, set(lines))
    key, where = TABLES[p.table].key, p.reader.where
    return [
        Reject(
            p.reader.name,
            where(c.line),
            raw.get(c.line, ""),
            f"duplicate {key} {c.key} ({where(c.kept)} kept, differs in {c.columns})",
        )
        for c in conflicts
    ]


def _raw_lines(p: _Prepared, options: LoadOptions, wanted: set[int]) -> dict[int, str]:
    """The raw records of some lines of a file already staged: the file is read again up to the last of
    them (the staged rows hold converted values only; keeping every raw record would double the stage for
    the rare file that repeats keys with different values)."""
    out: dict[int, str] = {}
    last = max(wanted)
    for reader in open_file(p.reader.path, options.encoding, options.sheet):
        if reader.sheet != p.reader.sheet:
            continue
        for batch in reader.batches([p.columns[c] for c in p.columns]):
            numbers = batch.line_numbers()
            for k, line in enumerate(numbers):
                if line in wanted:
                    out[line] = batch.raw(k)
            if numbers and numbers[-1] >= last:
                break
        break
    return out


def _conflict_warning(p: _Prepared, result: FileResult, conflicts: list[_Conflict], keep: str) -> None:
    """Differing duplicates are reported by key with the columns that differ, the first few in a warning."""
    if not conflicts:
        return
    key, where = TABLES[p.table].key, p.reader.where
    shown = "; ".join(
        f"{key} {c.key} {where(c.line)} ({where(c.kept)} kept) differs in {c.columns}"
        for c in conflicts[:SHOW_REJECTS]
    )
    more = f"; … {len(conflicts) - SHOW_REJECTS} more" if len(conflicts) > SHOW_REJECTS else ""
    result.warnings.append(
        f"{p.reader.name}: {len(conflicts)} row(s) repeat a key ({key}) with different values; the {keep} "
        f"occurrence of each key was kept and the others are listed in rejected_rows: {shown}{more}"
    )


def _insert_into_empty(
    con: duckdb.DuckDBPyConnection, p: _Prepared, source: str, result: FileResult, options: LoadOptions
) -> tuple[int, list[_Conflict]]:
    """A first load of a table: append the valid rows as they come, then settle duplicate keys.

    There is nothing to compare with, so the valid rows go straight into the table (no staged copy, memory
    independent of the file). The table then holds exactly the file's valid rows, so its key count tells
    whether the file repeated a key; the rare file that did is fixed up: the last (or first) occurrence
    wins. Returns the number of valid rows and the repeats that differ from the occurrence kept.
    """
    name = p.table
    table = TABLES[name]
    cols = ", ".join(ident(c) for c in table.names)
    key, target = ident(table.key), ident(name)
    row = first_row(
        con.execute(f"INSERT INTO {target} ({cols}) SELECT {cols} FROM {source} WHERE __reason IS NULL")
    )
    valid = int(row[0]) if row else 0
    span = _time_span(name)
    stats = first_row(con.execute(f"SELECT count(DISTINCT {key}), {span} FROM {target}"))
    assert stats is not None
    distinct = int(stats[0])
    result.duplicates = valid - distinct
    conflicts: list[_Conflict] = []
    if result.duplicates:
        conflicts = _conflicts(con, p, source, options)
        pick = "min" if options.on_duplicate == "first" else "max"
        con.execute(
            f"CREATE OR REPLACE TEMP TABLE dupkeys AS SELECT {key}, {pick}(__line) AS __line FROM {source} "
            f"WHERE __reason IS NULL GROUP BY {key} HAVING count(*) > 1"
        )
        con.execute(f"DELETE FROM {target} WHERE {key} IN (SELECT {key} FROM dupkeys)")
        picked = ", ".join(f"s.{ident(c)}" for c in table.names)
        con.execute(
            f"INSERT INTO {target} ({cols}) SELECT {picked} FROM {source} s SEMI JOIN dupkeys d "
            f"ON s.{key} = d.{key} AND s.__line = d.__line WHERE s.__reason IS NULL"
        )
        con.execute("DROP TABLE dupkeys")
        stats = first_row(con.execute(f"SELECT count(DISTINCT {key}), {span} FROM {target}"))
        assert stats is not None
    result.conflicts = len(conflicts)
    _conflict_warning(p, result, conflicts, "first" if options.on_duplicate == "first" else "last")
    result.inserted = distinct
    result.time_min, result.time_max = stats[1], stats[2]
    return valid, conflicts


def _time_span(name: str, prefix: str = "") -> str:
    """`min(t), max(t)` of the table's time column (`NULL, NULL` for shops), for the loads record."""
    column = TABLES[name].time_column
    if column is None:
        return "NULL, NULL"
    return f"min({prefix}{ident(column)}), max({prefix}{ident(column)})"


#: An order's status moves forward along this path; refunded and closed are final (SPEC §2 values).
ORDER_LIFECYCLE = ("pending", "paid", "shipped", "received", "completed")
ORDER_FINAL = ("refunded", "closed")


def _regressions(name: str) -> list[tuple[str, str, str]]:
    """The lifecycle regressions of a table: (column, condition, 'stored → incoming' text), with `t` the
    stored row and `f` the file's. An update matching any of them would move the row backwards."""
    if name == "orders":
        path = "[" + ", ".join(literal(s) for s in ORDER_LIFECYCLE) + "]"
        final = ", ".join(literal(s) for s in ORDER_FINAL)
        return [
            (
                "status",
                f"f.status IS DISTINCT FROM t.status AND (t.status IN ({final}) OR "
                f"coalesce(list_position({path}, f.status) < list_position({path}, t.status), false))",
                "t.status || ' → ' || f.status",
            ),
            (
                "refund_amount",
                "t.refund_amount IS NOT NULL "
                "AND (f.refund_amount IS NULL OR f.refund_amount < t.refund_amount)",
                "CAST(t.refund_amount AS VARCHAR) || ' → ' "
                "|| coalesce(CAST(f.refund_amount AS VARCHAR), 'empty')",
            ),
        ]
    if name == "reviews":
        stamp = "'%Y-%m-%d %H:%M:%S'"
        return [
            (
                "review_time",
                "f.review_time < t.review_time",
                f"strftime(t.review_time, {stamp}) || ' → ' || strftime(f.review_time, {stamp})",
            )
        ]
    return []


def _upsert(
    con: duckdb.DuckDBPyConnection, p: _Prepared, source: str, result: FileResult, options: LoadOptions
) -> tuple[int, list[_Conflict]]:
    """Insert the file's new keys and replace its changed rows; rows equal to the stored ones stay, and so
    do rows an update would move backwards (unless `allow_regress`).

    One pass counts everything (valid rows, distinct keys, time span, new, changed and regressing keys); a
    second deletes the changed rows (usually none) and a third appends every key the table no longer has.
    Nothing is staged: the joins spill to disk under a memory limit like any DuckDB query.
    """
    name = p.table
    table = TABLES[name]
    cols = [ident(c) for c in table.names]
    key, target = ident(table.key), ident(name)
    same = " AND ".join(f"f.{c} IS NOT DISTINCT FROM t.{c}" for c in cols if c != key) or "true"
    span = _time_span(name, "f.")
    fresh = f"(SELECT {', '.join(cols)}, __line FROM {source} WHERE __reason IS NULL)"
    rules = _regressions(name)
    backwards = " OR ".join(f"({cond})" for _, cond, _ in rules) or "false"

    def counts() -> tuple[int, int, datetime | None, datetime | None, int, int, int]:
        row = first_row(
            con.execute(
                f"SELECT count(*), count(DISTINCT f.{key}), {span}, count(*) FILTER (WHERE t.{key} IS NULL), "
                f"count(*) FILTER (WHERE t.{key} IS NOT NULL AND NOT ({same})), "
                f"count(*) FILTER (WHERE t.{key} IS NOT NULL AND NOT ({same}) AND ({backwards})) "
                f"FROM {fresh} f LEFT JOIN {target} t ON f.{key} = t.{key}"
            )
        )
        assert row is not None
        return int(row[0]), int(row[1]), row[2], row[3], int(row[4]), int(row[5]), int(row[6])

    valid, distinct, result.time_min, result.time_max, new, changed, regressed = counts()
    # The columns the file does not have, nor a mapping's `defaults:` for it, keep their stored values in
    # the rows it updates (a mapping's default is said: loading pages again with `carrier: live` sets it).
    # Only a file that names stored keys pays for it (a month's new orders do not).
    unsaid = unsaid_columns(table, [*p.columns, *p.tm.defaults]) if valid > new else []
    if unsaid:
        con.execute(f"CREATE OR REPLACE TABLE fresh_merged AS {merge_sql(name, unsaid, fresh, target)}")
        fresh = "fresh_merged"
        valid, distinct, result.time_min, result.time_max, new, changed, regressed = counts()
    result.duplicates = valid - distinct
    conflicts: list[_Conflict] = []
    if result.duplicates:
        conflicts = _conflicts(con, p, source, options)
        # Duplicate keys within the file: the last (or first) occurrence wins.
        order = "ASC" if options.on_duplicate == "first" else "DESC"
        con.execute(
            f"CREATE OR REPLACE TABLE fresh AS SELECT * FROM {fresh} "
            f"QUALIFY row_number() OVER (PARTITION BY {key} ORDER BY __line {order}) = 1"
        )
        fresh = "fresh"
        _, _, result.time_min, result.time_max, new, changed, regressed = counts()
    result.conflicts = len(conflicts)
    _conflict_warning(p, result, conflicts, "first" if options.on_duplicate == "first" else "last")
    if unsaid:
        _kept_warning(con, p, fresh, unsaid, result)
    backwards = "'update'"
    if regressed:
        _regression_warning(con, p, fresh, rules, same, result, regressed, options.allow_regress)
        if options.allow_regress:
            applied = literal(BACKWARDS_APPLIED)
            backwards = f"CASE WHEN f.{key} IN (SELECT __key FROM regressed) THEN {applied} ELSE 'update' END"
        else:
            # keep the stored rows: the file's backward rows take no further part
            if fresh != "fresh":
                con.execute(f"CREATE OR REPLACE TABLE fresh AS SELECT * FROM {fresh}")
                fresh = "fresh"
            con.execute(f"DELETE FROM fresh WHERE {key} IN (SELECT __key FROM regressed)")
            result.regressed = regressed
            changed -= regressed
    result.inserted, result.updated = new, changed
    result.unchanged = distinct - new - changed - result.regressed
    if new or changed or regressed:
        # the keys this load adds or changes, for the provenance of later restatements (load_changes), and
        # the backward updates it refused (or applied, as allowed), every one of them and not only the five
        # its warning shows
        refused = (
            f" UNION ALL SELECT CAST(__key AS VARCHAR), {literal(BACKWARDS_REFUSED)} FROM regressed"
            if regressed and not options.allow_regress
            else ""
        )
        con.execute(
            f"CREATE OR REPLACE TEMP TABLE __touched AS SELECT CAST(f.{key} AS VARCHAR) AS key, "
            f"CASE WHEN t.{key} IS NULL THEN 'insert' ELSE {backwards} END AS change FROM {fresh} f "
            f"LEFT JOIN {target} t ON f.{key} = t.{key} WHERE t.{key} IS NULL OR NOT ({same}){refused}"
        )
    con.execute("DROP TABLE IF EXISTS regressed")
    if changed:
        con.execute(
            f"DELETE FROM {target} WHERE {key} IN (SELECT f.{key} FROM {fresh} f "
            f"JOIN {target} t ON f.{key} = t.{key} WHERE NOT ({same}))"
        )
    if new or changed:
        con.execute(
            f"INSERT INTO {target} ({', '.join(cols)}) SELECT {', '.join('f.' + c for c in cols)} "
            f"FROM {fresh} f ANTI JOIN {target} t ON f.{key} = t.{key}"
        )
    con.execute("DROP TABLE IF EXISTS fresh")
    con.execute("DROP TABLE IF EXISTS fresh_merged")
    return valid, conflicts


def _kept_warning(
    con: duckdb.DuckDBPyConnection, p: _Prepared, fresh: str, unsaid: list[str], result: FileResult
) -> None:
    """Say which columns the file does not have kept stored values in the rows it updates (values its
    defaults would have replaced), and in how many rows."""
    flags = [ident("__kept$" + n) for n in unsaid]
    counts = ", ".join(f"count(*) FILTER (WHERE {f})" for f in flags)
    row = first_row(
        con.execute(f"SELECT count(*) FILTER (WHERE {' OR '.join(flags)}), {counts} FROM {fresh}")
    )
    if not row or not row[0]:
        return
    kept = [n for n, k in zip(unsaid, row[1:], strict=True) if k]
    n = int(row[0])
    these = "this" if len(kept) == 1 else "these"
    result.warnings.append(
        f"{p.reader.name} has no column {', '.join(kept)}: {n:,} row{'s' if n != 1 else ''} of {p.table} "
        f"already stored keep{'s' if n == 1 else ''} {'its' if n == 1 else 'their'} values of {these} (a row "
        "it adds takes the default)"
    )


def _regression_warning(
    con: duckdb.DuckDBPyConnection,
    p: _Prepared,
    fresh: str,
    rules: list[tuple[str, str, str]],
    same: str,
    result: FileResult,
    count: int,
    allowed: bool,
) -> None:
    """Collect the keys of backward updates in the temp table `regressed` and warn with the first few:
    key, column, stored → incoming."""
    table = TABLES[p.table]
    key, target = ident(table.key), ident(p.table)
    what = ", ".join(
        f"CASE WHEN {cond} THEN {literal(column + ' ')} || {text} END" for column, cond, text in rules
    )
    backwards = " OR ".join(f"({cond})" for _, cond, _ in rules)
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE regressed AS SELECT f.{key} AS __key, f.__line AS __line, "
        f"concat_ws(', ', {what}) AS __what FROM {fresh} f JOIN {target} t ON f.{key} = t.{key} "
        f"WHERE NOT ({same}) AND ({backwards})"
    )
    examples = con.execute(
        f"SELECT __key, __what FROM regressed ORDER BY __line LIMIT {SHOW_REJECTS}"
    ).fetchall()
    shown = "; ".join(f"{table.key} {k} {w}" for k, w in examples)
    if allowed:
        result.warnings.append(
            f"{p.reader.name}: {count} update(s) move rows backwards and were applied as allowed: {shown}"
        )
    else:
        result.warnings.append(
            f"{p.reader.name}: {count} update(s) would move rows backwards (an older export loaded over "
            f"newer data?); the stored rows were kept: {shown}"
        )


# --- Parquet: one set-based statement instead of Python batches -------------------------------------------

_GLOB = re.compile(r"[*?\[\]{}]")


def _set_based(p: _Prepared) -> bool:
    """Whether a file is read by DuckDB's own Parquet reader inside the load's statements.

    Parquet files are; their mapped columns must have names DuckDB can tell apart (it binds names without
    regard to case) and a path that is not a glob pattern to read_parquet. Others take the batch path.
    """
    if p.reader.format != "parquet" or _GLOB.search(str(p.reader.path)):
        return False
    headers = [p.reader.headers[i] for i in p.columns.values()]
    return len({h.lower() for h in p.reader.headers}) == len(p.reader.headers) and all(headers)


def _parquet_source(con: duckdb.DuckDBPyConnection, p: _Prepared, options: LoadOptions) -> str:
    """The temp view `src`: the file's rows converted, with `__line`, `__reason` and `__raw`."""
    path = literal(str(p.reader.path))
    renamed = ", ".join(f"{ident(p.reader.headers[i])} AS {ident(c)}" for c, i in p.columns.items())
    con.execute(
        "CREATE OR REPLACE TEMP VIEW src_file AS SELECT file_row_number + 1 AS __line, "
        f"CAST(NULL AS VARCHAR) AS __shape{', ' if renamed else ''}{renamed} "
        f"FROM read_parquet({path}, file_row_number = true)"
    )
    with _damaged(p, True):
        rows = con.execute("DESCRIBE SELECT * FROM src_file").fetchall()
    try:
        if p.reader.arrow_schema is not None:
            # the file's declared types too: DuckDB reads an arrow duration as a plain number
            declared = p.reader.arrow_schema.empty_table().select(list(p.columns.values()))
            _duck_types(con, declared.rename_columns(list(p.columns)), list(p.columns))
        present = _check_types({r[0]: str(r[1]) for r in rows}, list(p.columns))
    except DataError as exc:
        raise DataError(f"{p.reader.name}: {exc.message}", exc.hint) from None
    sql, _ = conversion_sql(p.tm, present, options.timezone, source="src_file", raw_text=list(p.columns))
    con.execute(f"CREATE OR REPLACE TEMP VIEW src AS {sql}")
    return "src"


def _parquet_rejects(
    con: duckdb.DuckDBPyConnection, p: _Prepared, source: str, count: int, options: LoadOptions
) -> list[Reject]:
    """The rejected rows of a Parquet file in row order: all of them, or the first few when they are too
    many to load anyway (the reject-rate check then fails the load)."""
    if count <= 0:
        return []
    rows_read = p.reader.total_rows or 0
    limit = SHOW_REJECTS if options.too_many_rejects(count, rows_read) else count
    bad = con.execute(
        f"SELECT __line, __reason, __raw FROM {source} WHERE __reason IS NOT NULL "
        f"ORDER BY __line LIMIT {limit}"
    ).fetchall()
    return [Reject(p.reader.name, f"{p.reader.line_label} {line}", raw, reason) for line, reason, raw in bad]


@contextlib.contextmanager
def _damaged(p: _Prepared, active: bool) -> Iterator[None]:
    """A set-based file's pages are read only by these statements: a read failure is the file's fault."""
    import duckdb

    try:
        yield
    except duckdb.Error as exc:
        if not active:
            raise
        raise DataError(
            f"{p.reader.name}: damaged Parquet file: {str(exc).splitlines()[0]}",
            hint="export the file again; nothing was written",
        ) from None


@contextlib.contextmanager
def _polling(
    con: duckdb.DuckDBPyConnection, p: _Prepared, progress: ProgressCallback | None, active: bool
) -> Iterator[None]:
    """Report the progress of DuckDB's statements on a set-based file (it reads the file itself)."""
    total = p.reader.total_rows
    if not active or progress is None or not total:
        yield
        return
    import threading

    con.execute("SET enable_progress_bar = true")
    con.execute("SET enable_progress_bar_print = false")
    con.execute("SET progress_bar_time = 0")
    stop = threading.Event()
    callback = progress

    def poll() -> None:
        done = 0
        while not stop.wait(0.2):
            share = con.query_progress()
            if share >= 0:
                done = max(done, int(total * min(share, 100.0) / 100.0))
                callback(p.reader.name, done, total)

    thread = threading.Thread(target=poll, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
        con.execute("SET enable_progress_bar = false")
    callback(p.reader.name, total, total)
