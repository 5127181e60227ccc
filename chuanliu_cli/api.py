"""The public library (SPEC §8): a `Session` over a database, a directory of exports or Spark.

    >>> from chuanliu_cli.api import Session
    >>> with Session(data="sample_data") as session:          # doctest: +SKIP
    ...     reward = session.eligible("2023-05")
    >>> reward.frame.select("shop_id", "tier", "grant")       # doctest: +SKIP

Every method returns a frozen dataclass (polars frames, the pipeline's RunResult/ScorecardResult) whose
`warnings` say what a person should know (an incomplete period, rejected rows of `data=`); the library never
prints. Failures raise the typed errors of `chuanliu_cli.errors`. The command line is one client of this
module: it parses options, makes one call and writes the result.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from chuanliu_cli.errors import DataError, UsageError

if TYPE_CHECKING:
    import polars as pl

    from chuanliu_cli.design.calibrate import Calibration
    from chuanliu_cli.design.sensitivity import Sensitivity
    from chuanliu_cli.engines.spark import SparkSettings
    from chuanliu_cli.impact.result import ImpactResult
    from chuanliu_cli.ingest.discover import DiscoveredFile
    from chuanliu_cli.ingest.loader import DuplicatePolicy, FileResult
    from chuanliu_cli.periods import Period
    from chuanliu_cli.rules.model import Ruleset
    from chuanliu_cli.rules.validate import RulesetSummary
    from chuanliu_cli.scoring.attribution import Attribution
    from chuanliu_cli.scoring.budget import BudgetYear
    from chuanliu_cli.scoring.casetests import CaseReport
    from chuanliu_cli.scoring.compare import Comparison
    from chuanliu_cli.scoring.explain import Explanation
    from chuanliu_cli.scoring.integrity import IntegrityResult
    from chuanliu_cli.scoring.pipeline import RunResult, ScorecardResult
    from chuanliu_cli.scoring.rulelint import LintReport
    from chuanliu_cli.store.database import Database
    from chuanliu_cli.store.status import StoreStatus

from chuanliu_cli.scoring.history import HistoryResult
from chuanliu_cli.scoring.restate import RunsDiffResult

__all__ = [
    "CompareResult",
    "ExplainResult",
    "HistoryResult",
    "LoadResult",
    "Recording",
    "RejectsResult",
    "ReportResult",
    "RunsDiffResult",
    "RunsResult",
    "ScoreResult",
    "Session",
    "StatusResult",
    "check_rules",
    "compile_rules",
    "lint_rules",
    "load_rules",
    "run_rule_cases",
    "write_sample",
]

EngineName = Literal["duckdb", "spark"]
PathLike = str | Path


# --- results -----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LoadResult:
    """What `Session.load` did, file by file (rows read, inserted, updated, unchanged, rejected), and for a
    directory (or files given without their table) every file looked at: its table, or why it was skipped."""

    files: tuple[FileResult, ...]
    warnings: tuple[str, ...] = ()
    discovered: tuple[DiscoveredFile, ...] = ()


@dataclass(frozen=True)
class Population:
    """Who a scored period's ranks and grants are relative to."""

    entities: int
    relative: bool  # True: a directory of exports, perhaps one merchant's own; not the whole platform
    note: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """The `population` object of the JSON document."""
        return {"entities": self.entities, "relative": self.relative, "note": self.note}


@dataclass(frozen=True)
class ScoreResult:
    """A scored period: the whole run, the scorecard asked for, and the entities selected.

    `frame` holds the selected entities in rank order (for `eligible`, only the eligible ones unless
    `include_ineligible`); `result` is the scorecard's full result; `run_id` is the recorded run, if any.
    """

    run: RunResult
    scorecard: str
    include_ineligible: bool = True
    warnings: tuple[str, ...] = ()
    run_id: int | None = None
    population: Population | None = None
    selected: pl.DataFrame | None = None  # score(ids=, top=): the rows asked for, of the whole result
    # True when the result was read back from recorded run `run_id` (same ruleset, tool and data) rather
    # than scored again; nothing new is then recorded
    stored: bool = False
    # a run to record once its output is written (`record_later`; Session.record): the data's snapshot
    # taken while scoring, when scoring started, and the command
    pending: tuple[Any, datetime, str] | None = None

    @property
    def result(self) -> ScorecardResult:
        """The scorecard's result (frame, allocation, totals)."""
        return self.run.scorecards[self.scorecard]

    @property
    def frame(self) -> pl.DataFrame:
        """Each selected entity: key, name, metrics, scores, eligible, failed_gates, tier, rank, grant."""
        frame = self.result.frame if self.selected is None else self.selected
        return frame if self.include_ineligible else frame.filter(frame["eligible"])

    @property
    def totals(self) -> dict[str, Any]:
        """Pool, allocated, unallocated, entity and eligible counts, eligible entities per tier."""
        return self.result.totals()

    @property
    def complete(self) -> bool:
        """True when the data covers every window the ruleset reads."""
        return self.run.complete

    def to_dict(self) -> dict[str, Any]:
        """The documented JSON shape of SPEC §6 (what `--format json` writes)."""
        from chuanliu_cli.present.documents import run_document

        return run_document(
            self.run, self.scorecard, self.include_ineligible, self.warnings, self.population, self.selected
        )


@dataclass
class Recording:
    """A run being recorded while its output is written (Session.recording): `result` gets its run id once
    the block has ended and the run is committed."""

    result: ScoreResult


@dataclass(frozen=True)
class ExplainResult:
    """One entity in full: metrics, score parts, gates, tier, grant and what it is missing."""

    explanation: Explanation
    run: RunResult
    scorecard: str
    warnings: tuple[str, ...] = ()
    # explain --against-month: the ranking score part by part against the other period
    attribution: Attribution | None = None

    def to_dict(self) -> dict[str, Any]:
        """The explanation as JSON-able data (what `explain --format json` writes); with an attribution,
        under the key `against`."""
        from chuanliu_cli.present.documents import explanation_json

        data = explanation_json(self.explanation)
        if self.attribution is not None:
            from chuanliu_cli.present.attribution import attribution_json

            data["against"] = attribution_json(self.attribution)
        return data


@dataclass(frozen=True)
class CompareResult:
    """Side A against side B (two rulesets, or one ruleset in two periods), entity by entity."""

    comparison: Comparison
    warnings: tuple[str, ...] = ()

    @property
    def frame(self) -> pl.DataFrame:
        """One row per entity in either population: change, tiers, totals, grants and their delta."""
        from chuanliu_cli.present.documents import comparison_flat

        return comparison_flat(self.comparison)


@dataclass(frozen=True)
class ReportResult:
    """The HTML report (self-contained), and the file it was written to, if any."""

    html: str
    run: RunResult
    scorecard: str
    movers: Comparison | None
    path: Path | None = None
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True)
class RunsResult:
    """Recorded runs (newest first), or with `run_id` one run and its per-entity results."""

    runs: tuple[dict[str, Any], ...] = ()
    run: dict[str, Any] | None = None
    # the one run's results in rank order: entity, name, rank, eligible, failed_gates, tier, score, grant
    table: pl.DataFrame | None = None

    @property
    def results(self) -> tuple[dict[str, Any], ...]:
        """The one run's results as one dict per entity (`table` holds them as columns)."""
        return () if self.table is None else tuple(self.table.iter_rows(named=True))

    @property
    def frame(self) -> pl.DataFrame:
        """The runs, or the one run's results, as a frame."""
        import polars as pl

        if self.run is not None and self.table is not None:
            return self.table
        return pl.DataFrame(list(self.runs), infer_schema_length=None)


@dataclass(frozen=True)
class RejectsResult:
    """Rejected rows kept by `load` (newest load first, then by line): load id, table, file, line, reason
    and the raw record; `total` counts every row that matched, `rows` holds at most the limit asked for."""

    rows: tuple[dict[str, Any], ...]
    total: int

    @property
    def columns(self) -> tuple[str, ...]:
        """The columns of each row: load_id, table, file, line, reason, raw."""
        from chuanliu_cli.store.rejects import REJECT_COLUMNS

        return REJECT_COLUMNS

    @property
    def frame(self) -> pl.DataFrame:
        """The rows as a frame (columns load_id, table, file, line, reason, raw)."""
        import polars as pl

        schema = {c: pl.Int64 if c == "load_id" else pl.String for c in self.columns}
        return pl.DataFrame(list(self.rows), schema=schema)

    def to_dict(self) -> dict[str, Any]:
        """The JSON shape of `rejects --format json`: the total and the rows."""
        return {"total": self.total, "rejected_rows": [dict(r) for r in self.rows]}


@dataclass(frozen=True)
class StatusResult:
    """What a database holds: rows per table, months covered, last loads, rejects."""

    status: StoreStatus
    path: str


@dataclass(frozen=True)
class SensitivityResult:
    """`Session.sensitivity`: the run as written, each knob's changes, and the warnings."""

    run: RunResult
    sensitivity: Sensitivity
    warnings: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        """SPEC §10: {"knobs": [{"path", "value", "changes": [{"delta", "eligible", "entrants", "leavers",
        "grant_moved"}]}]}, with the ruleset, scorecard, period and the result as written beside it."""
        s = self.sensitivity
        return {
            "ruleset": {"name": self.run.ruleset.name, "sha256": self.run.ruleset.sha256},
            "scorecard": s.scorecard,
            "period": self.run.period.label,
            "base": {"eligible": s.eligible, "allocated": s.allocated},
            "knobs": [k.to_dict() for k in s.knobs],
            "warnings": list(self.warnings),
        }


# --- rulesets, without a session ---------------------------------------------------------------------------


def load_rules(rules: str | Path | Ruleset | None = None, check: bool = False) -> Ruleset:
    """The ruleset of a file (default: the bundled one); `check` also binds it to the table schemas, so a
    ruleset that could not run raises RulesetError before any data is read."""
    from chuanliu_cli.rules.model import Ruleset

    if not isinstance(rules, Ruleset):
        from chuanliu_cli.rules.files import default_ruleset_path, load_ruleset_cached

        return load_ruleset_cached(Path(rules) if rules is not None else default_ruleset_path(), check)
    if check:
        from chuanliu_cli.rules.validate import check_ruleset_against_schema

        check_ruleset_against_schema(rules)
    return rules


def check_rules(rules: str | Path | Ruleset | None = None) -> tuple[Ruleset, RulesetSummary]:
    """Validate a ruleset (parse, names and types, compile against the table schemas): RulesetError or the
    ruleset and its summary (metrics, scores, gates, tiers and pool per scorecard)."""
    from chuanliu_cli.rules.validate import check_ruleset_against_schema

    ruleset = load_rules(rules)
    return ruleset, check_ruleset_against_schema(ruleset)


def compile_rules(
    period: str,
    scorecard: str | None = None,
    rules: str | Path | Ruleset | None = None,
    dialect: EngineName = "duckdb",
) -> tuple[Ruleset, Period, list[tuple[str, str]]]:
    """The SQL compiled from a ruleset for a period: (scorecard, sql) for every scorecard, or one."""
    from chuanliu_cli.rules.compiler import compile_scorecard
    from chuanliu_cli.rules.effective import ruleset_for_period

    ruleset, p = ruleset_for_period(rules, period)
    names = [sc.name for sc in ruleset.scorecards]
    chosen = [scorecard_name(ruleset, scorecard)] if scorecard else names
    return ruleset, p, [(n, compile_scorecard(ruleset, n, p, dialect=dialect).sql) for n in chosen]


def scorecard_name(ruleset: Ruleset, name: str | None) -> str:
    """`name`, checked against the ruleset's scorecards; the first scorecard when None."""
    names = [sc.name for sc in ruleset.scorecards]
    if name is None:
        return names[0]
    if name in names:
        return name
    import difflib

    close = difflib.get_close_matches(name, names, n=1)
    raise UsageError(
        f"unknown scorecard {name!r}",
        hint=(f"did you mean {close[0]!r}? " if close else "") + f"scorecards: {', '.join(names)}",
    )


def write_sample(
    outdir: PathLike,
    merchants: int = 60,
    months: int = 3,
    end: str = "2023-05",
    seed: int = 42,
    headers: Literal["en", "zh"] = "en",
    encoding: Literal["utf-8", "gb18030"] = "utf-8",
    fmt: Literal["csv", "parquet", "xlsx", "api"] = "csv",
    orders: int | None = None,
    effect: float = 0.0,
    late_refunds: bool = False,
) -> dict[str, Path]:
    """Write the deterministic synthetic dataset (the same arguments give byte-identical files); `effect`
    plants a known effect of the grants on the next month's self live-room GMV (SPEC §12); `late_refunds`
    also writes late/orders_late_refunds.<fmt>, refunds exported after the last month's list (a restatement
    to show with `runs diff`)."""
    from chuanliu_cli.periods import parse_period
    from chuanliu_cli.sample import generate_sample

    parse_period(end)  # a clear error for a bad month before anything is written
    return generate_sample(
        Path(outdir),
        merchants=merchants,
        months=months,
        end=end,
        seed=seed,
        headers=headers,
        encoding=encoding,
        fmt=fmt,
        orders=orders,
        effect=effect,
        late_refunds=late_refunds,
    )


# --- the session -------------------------------------------------------------------------------------------


class Session:
    """Where the data is: a database file (`db=`, default CHUANLIU_DB or ./chuanliu.duckdb), a directory of
    exports loaded into memory (`data=`), or Spark (`engine="spark"` over `data=` or `spark=` settings).

    Use it as a context manager. It opens lazily: a directory is loaded (and validated like `load`) on the
    first call that reads it and kept until the session closes; Spark likewise. A database file is opened
    for each call only, under its lock (read-only to score, for writing to load or record a run), so other
    processes can use it between calls.
    """

    def __init__(
        self,
        db: PathLike | None = None,
        data: PathLike | None = None,
        engine: EngineName = "duckdb",
        spark: SparkSettings | None = None,
        memory_limit: str | None = None,
        wait: float = 60.0,
    ) -> None:
        if db is not None and data is not None:
            raise UsageError("a session reads a database (db=) or a directory of exports (data=), not both")
        if engine not in ("duckdb", "spark"):
            raise UsageError(f"unknown engine {engine!r}", hint="use duckdb or spark")
        if spark is not None and engine != "spark":
            raise UsageError("Spark settings (spark=) need engine='spark'")
        if engine == "spark":
            if db is not None:
                raise UsageError(
                    "the Spark engine reads a directory of exports or catalog tables, not a database"
                )
            from chuanliu_cli.engines.spark import SparkSettings

            spark = spark or SparkSettings()
            if data is not None:
                spark = replace(spark, data=str(data))
            if spark.data is None and not spark.tables:
                raise UsageError(
                    "the Spark engine needs a directory of exports (data=) or catalog tables "
                    "(SparkSettings.tables)"
                )
        self.db = str(db) if db is not None else None
        self.data = Path(data) if data is not None else None
        self.engine: EngineName = engine
        self.spark = spark
        self.memory_limit = memory_limit
        self.wait = wait
        self._memory: Database | None = None
        self._spark_engine: Any = None
        self._data_warnings: tuple[str, ...] = ()
        # the timezone a directory of exports is loaded in: the first scored ruleset's (SPEC §2: naive times
        # are in the ruleset's timezone), Asia/Shanghai before any
        self._data_timezone = "Asia/Shanghai"
        self._held: Any = None  # the read connection a `_source()` holds open for the ones inside it

    # -- lifecycle --

    def __enter__(self) -> Session:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Release what the session opened (the in-memory data, the Spark tables)."""
        if self._memory is not None:
            self._memory.con.close()
            self._memory = None
        if self._spark_engine is not None:
            self._spark_engine.close()
            self._spark_engine = None

    @property
    def db_path(self) -> str:
        """The database file this session reads and writes."""
        from chuanliu_cli.store.database import resolve_db_path

        return resolve_db_path(self.db)

    @property
    def reads_database(self) -> bool:
        """True when the data is a database file (not `data=` in memory, not Spark)."""
        return self.data is None and self.engine == "duckdb"

    def _require_database(self, what: str) -> str:
        if not self.reads_database:
            raise UsageError(f"{what} needs a database (db=); this session reads a directory or Spark")
        return self.db_path

    @contextlib.contextmanager
    def _source(self) -> Iterator[Any]:
        """What the metric queries run on: the database read-only, the in-memory data, or Spark."""
        from chuanliu_cli.store.database import disable_external_access, interruptible, open_database

        if self.spark is not None:
            if self._spark_engine is None:
                from chuanliu_cli.engines.spark import SparkEngine

                self._spark_engine = SparkEngine.open(self.spark)
                # rows the canonicalization refused are left out, and said, as with data= on DuckDB
                self._data_warnings = tuple(self._spark_engine.reject_warnings())
            yield self._spark_engine
            return
        if self.data is not None:
            if self._memory is None:
                self._memory = self._load_data(self.data)
            with interruptible(self._memory.con):  # (a signal stops its query as on a database file)
                yield self._memory.con
            return
        if self._held is not None:  # inside another `_source()`: its connection (one open per command)
            yield self._held
            return
        _protect(self.db_path, f"the database {self.db_path}")
        _protect(self.db_path + ".wal", f"the database's log {self.db_path}.wal")
        with open_database(self.db_path, "read", self.wait, self.memory_limit) as db:
            disable_external_access(db.con)
            self._held = db.con
            try:
                yield db.con
            finally:
                self._held = None

    def _load_data(self, directory: Path) -> Database:
        """The exports of `directory` in a fresh in-memory database, validated like `load`; then no file
        or network access for the rest of the connection (rulesets cannot read files)."""
        from chuanliu_cli.ingest.discover import discover_with_warnings
        from chuanliu_cli.ingest.loader import LoadOptions, load_files, load_warnings
        from chuanliu_cli.store import datacache
        from chuanliu_cli.store.database import disable_external_access, interruptible, memory_database

        items, unread = discover_with_warnings(directory)
        for _, path in items:
            _protect(path, f"the export {path} this command reads")
        options = LoadOptions(timezone=self._data_timezone)
        entry = datacache.entry_key(items, options)  # the same files loaded before: their database
        cached = entry if entry is not None and datacache.has(entry) else None
        db = memory_database(self.memory_limit, schema=cached is None)
        try:
            kept = None if cached is None else datacache.restore(db.con, cached)
            if cached is not None and kept is None:
                db.con.close()  # (it may hold part of a copy)
                db = memory_database(self.memory_limit)
            if kept is None:
                with interruptible(db.con):
                    kept = load_warnings(load_files(db, items, options))
                # (kept only when the files still have the bytes the key was made of)
                if entry is not None and datacache.entry_key(items, options) == entry:
                    datacache.store(db.con, entry, kept)
            self._data_warnings = (*unread, *kept)
            disable_external_access(db.con)
        except BaseException:
            db.con.close()
            raise
        return db

    # -- loading --

    def load(
        self,
        table: str | None = None,
        files: Sequence[PathLike] = (),
        *,
        directory: PathLike | None = None,
        max_reject_rate: float = 0.01,
        max_reject_rows: int = 10,
        on_duplicate: DuplicatePolicy = "last",
        allow_regress: bool = False,
        strict: bool = False,
        encoding: str | None = None,
        sheet: str | None = None,
        mapping: PathLike | None = None,
        timezone: str = "Asia/Shanghai",
        progress: Callable[[str, int, int | None], None] | None = None,
    ) -> LoadResult:
        """Validate export files and upsert them into the database, all or nothing: `table` and its `files`,
        `files` alone (each file's table recognised by its name, else its header), or every export of
        `directory` (the same way; the result lists every file of it, loaded or skipped with why).

        A file whose bad rows exceed both `max_reject_rate` (a share) and `max_reject_rows` (a number)
        raises DataError and nothing is written. A key repeated in one file with different values keeps its
        last or first occurrence (`on_duplicate`; "error" raises DataError) and the others go to
        `rejected_rows`. An update that would move a stored row backwards (an order's status, a lower
        refund, an older review) keeps the stored row and warns, unless `allow_regress`. With `strict`,
        any warning raises StrictError and nothing is written.
        """
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        from chuanliu_cli.ingest.discover import discover_files, infer, load_order, no_exports, read_header
        from chuanliu_cli.ingest.loader import LoadOptions, load_files, load_warnings
        from chuanliu_cli.ingest.mapping import load_mapping
        from chuanliu_cli.schema import TABLES
        from chuanliu_cli.store.database import open_database

        path = self._require_database("loading")
        if isinstance(files, str | os.PathLike):  # load("orders", "orders.csv"): one file, not its letters
            files = [files]
        if directory is not None and (table is not None or files):
            raise UsageError("give a table and its files, or a directory, not both")
        if directory is None and not files:
            raise UsageError("give a table and its files, or a directory of exports")
        if table is not None and table not in TABLES:
            raise UsageError(f"unknown table {table!r}", hint=f"use one of {', '.join(TABLES)}")
        try:
            ZoneInfo(timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise UsageError(f"unknown timezone {timezone!r}", hint="e.g. Asia/Shanghai") from None
        if on_duplicate not in ("last", "first", "error"):
            raise UsageError(f"unknown duplicate policy {on_duplicate!r}", hint="use last, first or error")
        if max_reject_rows < 0:
            raise UsageError(f"max_reject_rows must be 0 or more, not {max_reject_rows}")
        options = LoadOptions(
            load_mapping(Path(mapping) if mapping is not None else None),
            encoding,
            sheet,
            max_reject_rate,
            timezone,
            max_reject_rows=max_reject_rows,
            on_duplicate=on_duplicate,
            allow_regress=allow_regress,
            strict=strict,
        )
        discovered: list[DiscoveredFile] = []
        if directory is not None:
            discovered = discover_files(Path(directory), options.mapping, encoding)
            items = load_order(discovered)
            if not items:
                raise no_exports(directory, discovered)
        elif table is None:
            discovered = [infer(Path(f), read_header(encoding), options.mapping) for f in files]
            unknown = [f for f in discovered if f.table is None]
            if unknown:
                raise DataError(
                    f"{unknown[0].path}: {unknown[0].why}",
                    hint=f"name the table the files hold ({', '.join(TABLES)})",
                    details=[f"{f.path}: {f.why}" for f in unknown[1:]],
                )
            items = load_order(discovered)
        else:
            items = [(table, Path(f)) for f in files]
        with open_database(path, "write", self.wait, self.memory_limit) as db:
            results = load_files(db, items, options, progress=progress)
        return LoadResult(tuple(results), tuple(load_warnings(results)), tuple(discovered))

    def status(self) -> StatusResult:
        """What the database holds: rows per table, months covered, last loads, rejects, complete months."""
        from chuanliu_cli.store.database import open_database
        from chuanliu_cli.store.status import store_status

        path = self._require_database("status")
        with open_database(path, "read", self.wait) as handle:
            return StatusResult(store_status(handle.con), path)

    def rejects(
        self, load_id: int | None = None, table: str | None = None, limit: int | None = None
    ) -> RejectsResult:
        """The rejected rows `load` kept (all, one load's, or one table's; at most `limit`), each with its
        file, line, reason and raw record. An unknown load id raises DataError."""
        from chuanliu_cli.store.database import open_database
        from chuanliu_cli.store.rejects import list_rejects

        path = self._require_database("the rejected rows")
        with open_database(path, "read", self.wait) as handle:
            found = list_rejects(handle.con, load_id, table, limit)
        return RejectsResult(found.rows, found.total)

    # -- scoring --

    def score(
        self,
        period: str,
        scorecard: str | None = None,
        rules: str | Path | Ruleset | None = None,
        ids: Sequence[str] | None = None,
        top: int | None = None,
        record: bool = True,
        require_complete: bool = False,
        command: str | None = None,
        strict: bool = False,
        group: str | None = None,
        record_later: bool = False,
    ) -> ScoreResult:
        """Every entity of a scorecard ranked (only `ids`, or the first `top`, when given), with each score,
        eligibility and tier. With a database and `record`, the run is recorded in `runs`, under `command`
        (default: this call); with `record_later`, only once `record(result)` is called (after the
        output). An id that is not in the population raises DataError (exit 4), naming the nearest ones.
        `group`: only one owner's shops (those whose group_id it is; see `choose`). With `strict`, any
        warning raises StrictError and nothing is recorded."""

        def finish(scored: ScoreResult) -> ScoreResult:
            res = scored.result
            frame = self.choose(scored, res.frame, ids, group)
            if top is not None:
                frame = frame.head(top)
            if frame.height != res.size or res.stored_size is not None:
                # only the rows shown change: totals, ranks and grants stay those of the whole population
                scored = replace(scored, selected=frame)
            return scored

        return self._score(
            period,
            scorecard,
            rules,
            record,
            require_complete,
            command or f"Session.score({period!r})",
            strict,
            reuse=bool(ids),
            only=list(ids) if ids and group is None else None,  # a group's shops: every row is read
            finish=finish,
            record_later=record_later,
        )

    def eligible(
        self,
        period: str,
        scorecard: str | None = None,
        rules: str | Path | Ruleset | None = None,
        record: bool = True,
        require_complete: bool = False,
        include_ineligible: bool = False,
        command: str | None = None,
        strict: bool = False,
        ids: Sequence[str] | None = None,
        group: str | None = None,
        record_later: bool = False,
    ) -> ScoreResult:
        """The reward list: eligible entities with rank, tier, total and grant (and, with
        `include_ineligible`, the others with their failed gates). `require_complete` raises
        IncompletePeriodError when the data does not cover the period; with a database and `record` the
        run is recorded in `runs`, under `command` (default: this call; with `record_later`, once
        `record(result)` is called). With `strict`, any warning raises
        StrictError and nothing is recorded. `ids` or `group` (see `choose`) list only those entities,
        eligible or not (an asked entity is never left out silently)."""

        def finish(scored: ScoreResult) -> ScoreResult:
            if include_ineligible or group is not None:
                # every listed shop is accounted for: those without activity follow, not in the population
                res = scored.result
                if res.key == "shop_id":
                    from chuanliu_cli.engines.duckdb import as_engine
                    from chuanliu_cli.scoring.pipeline import score_absent

                    with self._source() as source:
                        shops = as_engine(source).names("shop_id")
                    present = set(res.frame[res.key].to_list())
                    idle = [] if shops is None else sorted(str(k) for k in shops["k"] if k not in present)
                    if idle and shops is not None:
                        scored = replace(scored, selected=score_absent(res, idle, shops).frame)
            if ids or group is not None:
                base = scored.result.frame if scored.selected is None else scored.selected
                chosen = self.choose(scored, base, ids, group)
                return replace(scored, selected=chosen, include_ineligible=True)
            return replace(scored, include_ineligible=include_ineligible)

        return self._score(
            period,
            scorecard,
            rules,
            record,
            require_complete,
            command or f"Session.eligible({period!r})",
            strict,
            finish=finish,
            record_later=record_later,
        )

    def choose(
        self, scored: ScoreResult, frame: pl.DataFrame, ids: Sequence[str] | None, group: str | None
    ) -> pl.DataFrame:
        """The rows of `frame` (rows of `scored`'s result) that `ids` and `group` ask for, in its order; all
        of them when neither is given. Each id must be a key of the result (else DataError, exit 4, with
        the nearest keys). `group`: for a shop-keyed scorecard, its shops whose group_id is `group` (a
        group_id no shop in `shops` has is DataError with the nearest); for a scorecard grouped by
        key_from, the group's own row; for any other scorecard a UsageError."""
        import polars as pl

        from chuanliu_cli.ingest.conversion import bare_id
        from chuanliu_cli.scoring.explain import unknown_key_error

        res = scored.result
        if not ids and group is None:
            return frame
        ids = [bare_id(i) for i in ids or ()]
        known = set(frame[res.key].to_list())
        for wanted in ids:
            if wanted not in known:
                raise unknown_key_error(scored.run, scored.scorecard, wanted)
        keep = pl.col(res.key).is_in(ids)
        if group is not None:
            if res.scorecard.key_from is not None:
                if group not in known:
                    raise unknown_key_error(scored.run, scored.scorecard, group)
                keep = keep | (pl.col(res.key) == group)
            elif res.key == "shop_id" and "group_id" in frame.columns:
                with self._source() as source:
                    _require_group(source, group)
                keep = keep | (pl.col("group_id") == group)
            else:
                raise UsageError(
                    f"--group lists one owner's shops: scorecard {scored.scorecard} is keyed by {res.key}",
                    hint="use it with a scorecard keyed by shop_id, or one grouped by key_from",
                )
        return frame.filter(keep)

    def explain(
        self,
        key: str,
        period: str,
        scorecard: str | None = None,
        rules: str | Path | Ruleset | None = None,
        against_period: str | None = None,
    ) -> ExplainResult:
        """Why one entity is or is not eligible, and what it is missing. A key the data knows but that
        did nothing in the period (a shop in `shops`, an item sold before) is explained with its
        no-activity values, as not in the population; a key of another scorecard, or one the data never
        saw, raises DataError naming the scorecard or the nearest keys. With `against_period`, the
        ranking score's parts are compared with that period's, largest change first (`attribution`)."""
        if not isinstance(key, str):  # (ids are text: 700001 has lost any leading zero already)
            raise UsageError(f"an id is text, not {key!r}", hint=f"write it as text: '{key}'")
        from chuanliu_cli.ingest.conversion import bare_id

        key = bare_id(key)  # (as a load reads the id: " ks700001" pasted from a sheet is ks700001)
        if against_period is not None:
            from chuanliu_cli.scoring.attribution import attribute

            now = self.explain(key, period, scorecard, rules)
            then = self.explain(key, against_period, scorecard, rules)
            attribution = attribute(
                then.explanation, now.explanation, then.run.ruleset.name, now.run.ruleset.name
            )
            warnings = [*now.warnings, *(f"{against_period}: {w}" for w in then.warnings)]
            return replace(now, warnings=tuple(dict.fromkeys(warnings)), attribution=attribution)

        with self._source():  # one open of the database for the whole explanation
            return self._explain(key, period, scorecard, rules)

    def _explain(
        self, key: str, period: str, scorecard: str | None, rules: str | Path | Ruleset | None
    ) -> ExplainResult:
        """explain() in one period, inside the `_source()` it holds."""
        from chuanliu_cli.rules.effective import ruleset_for_period
        from chuanliu_cli.scoring.explain import explain_entity, population_needed, unknown_key_error
        from chuanliu_cli.scoring.pipeline import score_absent

        ruleset, _p = ruleset_for_period(rules, period)  # (through the cache; _score checks it)
        # a recorded run gives the entity's row, and everyone's values only of what a `rank` part reads
        needed = population_needed(ruleset.scorecard(scorecard_name(ruleset, scorecard)))
        scored = self._score(
            period, scorecard, rules, False, False, None, reuse=True, only=[key], needed=needed
        )
        run, name = scored.run, scored.scorecard
        res = run.scorecards[name]
        if key not in set(res.frame[res.key].to_list()):
            with self._source() as source:
                known = _key_exists(source, res.key, key)
                elsewhere = None if known else _other_scorecard(source, run.ruleset, name, key)
                names = _names_of(source, res.key) if known else {}
            if not known:
                raise unknown_key_error(run, name, key, elsewhere)
            run = replace(run, scorecards={**run.scorecards, name: score_absent(res, [key], names)})
        ex = explain_entity(run, name, key, self._population(scored.run, name).note)
        from chuanliu_cli.engines.duckdb import as_engine
        from chuanliu_cli.scoring.flagcounts import explain_flags

        with self._source() as source:  # the entity's rows the integrity flags catch (SPEC §11)
            flags = explain_flags(as_engine(source), run.ruleset, run.period, res.scorecard.row_key, key)
        ex = replace(ex, integrity=flags)
        return ExplainResult(ex, run, name, scored.warnings)

    def compare(
        self,
        period: str,
        against: str | Path | Ruleset | None = None,
        against_period: str | None = None,
        scorecard: str | None = None,
        rules: str | Path | Ruleset | None = None,
        strict: bool = False,
    ) -> CompareResult:
        """What-if: `rules` (A) against the ruleset `against` (B) in `period`, or the ruleset in `period`
        (A) against `against_period` (B): entrants, leavers, tier moves and grant deltas. With `strict`,
        any warning of either side raises StrictError."""
        from chuanliu_cli.errors import RulesetError, StrictError
        from chuanliu_cli.rules.effective import ruleset_for_period
        from chuanliu_cli.scoring.compare import Side, compare_results
        from chuanliu_cli.scoring.pipeline import score_period

        if (against is None) == (against_period is None):
            raise UsageError("compare against another ruleset or another period (one of them)")
        ruleset_a, period_a = ruleset_for_period(rules, period, check=True)
        try:
            if against is not None:
                ruleset_b, period_b = ruleset_for_period(against, period, check=True)
            else:  # the same rules in the other period: the version in force then (SPEC §9)
                ruleset_b, period_b = ruleset_for_period(rules, str(against_period), check=True)
        except RulesetError as exc:
            exc.hint = f"the error is in ruleset B ({against if against is not None else against_period})"
            raise
        if period_a.kind != period_b.kind:
            raise UsageError("the two rulesets score different period kinds (month vs week)")
        name = scorecard_name(ruleset_a, scorecard)
        scorecard_name(ruleset_b, name)
        with self._source() as source:
            run_a = score_period(source, ruleset_a, period_a, upto=name)
            run_b = score_period(source, ruleset_b, period_b, upto=name)
        label_a = f"{ruleset_a.name} ({Path(str(ruleset_a.path)).name})" if against else period_a.label
        label_b = f"{ruleset_b.name} ({Path(str(ruleset_b.path)).name})" if against else period_b.label
        if against is None and ruleset_a.sha256 != ruleset_b.sha256:  # across a version change (SPEC §9)
            label_a, label_b = f"{label_a} ({ruleset_a.name})", f"{label_b} ({ruleset_b.name})"
        comparison = compare_results(
            Side(label_a, run_a, run_a.scorecards[name]), Side(label_b, run_b, run_b.scorecards[name])
        )
        warnings = list(self._data_warnings)
        for side, run in (("A", run_a), ("B", run_b)):
            warnings.extend(f"{side}: {w}" for w in run_warnings(run, name))
        warnings = list(dict.fromkeys(warnings))  # (each side's data warnings are the same lines)
        if strict and warnings:
            raise StrictError(warnings)
        return CompareResult(comparison, tuple(warnings))

    def report(
        self,
        period: str,
        scorecard: str | None = None,
        against_period: str | None = None,
        rules: str | Path | Ruleset | None = None,
        output: PathLike | None = None,
        generated_by: str | None = None,
        strict: bool = False,
        top: int = 2000,
        ids: Sequence[str] = (),
        list_output: PathLike | None = None,
        group: str | None = None,
        integrity: bool = True,
        sensitivity: bool = False,
        impact: bool = False,
    ) -> ReportResult:
        """One self-contained HTML report (reward list, distributions, gates, pool, movers against
        `against_period`, default the previous period); written atomically to `output` when given.
        Distributions, gates and movers cover every entity; the list and the per-entity breakdowns cover
        the first `top` in rank order and `ids` (an id not in the population raises DataError, exit 4).
        `list_output` (csv, json, jsonl or parquet by its suffix) gets every entity, as `score` writes
        them. `group` adds one owner's shops to `ids` (as `score(group=)` chooses them). Sections after
        the movers: `integrity` (flag counts and threshold bunching, SPEC §11; on by default),
        `sensitivity` (a tornado chart of the knobs, SPEC §10) and `impact` (the RD and event-study plots of
        the previous period's grants on this one, SPEC §12; needs chuanliu[impact])."""
        from chuanliu_cli import __version__
        from chuanliu_cli.errors import RulesetError
        from chuanliu_cli.periods import parse_period
        from chuanliu_cli.present.report import build_report
        from chuanliu_cli.present.writers import atomic_write, check_writable
        from chuanliu_cli.rules.effective import ruleset_for_period
        from chuanliu_cli.scoring.compare import Side, compare_results
        from chuanliu_cli.scoring.pipeline import score_period

        path = Path(output) if output is not None else None
        if path is not None:
            check_writable(path)
        list_path = Path(list_output) if list_output is not None else None
        list_format = _list_format(list_path) if list_path is not None else None
        if top < 0:
            raise UsageError(f"--top must be 0 or more, not {top}")
        ruleset, p = ruleset_for_period(rules, period, check=True)
        previous = parse_period(against_period, ruleset.period) if against_period else p.previous()
        name = scorecard_name(ruleset, scorecard)
        try:  # the movers: against the version in force then, which may lack the scorecard (or any range)
            found = ruleset_for_period(rules, previous, check=True)[0]
            scorecard_name(found, name)
            ruleset_before: Ruleset | None = found
        except (RulesetError, UsageError):
            ruleset_before = None
        sections: list[tuple[str, str, str]] = []
        with self._source() as source:
            run = score_period(source, ruleset, p, upto=name)
            before = score_period(source, ruleset_before, previous, upto=name) if ruleset_before else None
            if integrity:
                from chuanliu_cli.engines.duckdb import as_engine
                from chuanliu_cli.present.integrity_report import integrity_section
                from chuanliu_cli.scoring.integrity import integrity_report

                res = run.scorecards[name]
                flags = integrity_report(as_engine(source), run.ruleset, run.period, res, False)
                sections.append(("integrity", "", integrity_section(flags, res)))  # (its own heading)
        if sensitivity:
            from chuanliu_cli.design.sensitivity import sensitivity as knobs
            from chuanliu_cli.design.variants import Variants
            from chuanliu_cli.present.tornado import tornado

            spread = knobs(Variants.of(run.ruleset, run.scorecards[name]))
            sections.append(("sensitivity", "Sensitivity 敏感度 (±5 %, ±20 %)", tornado(spread)))
        if impact:
            from chuanliu_cli.present.impact_charts import impact_html

            effect = self.impact(previous.label, scorecard=name, rules=rules)
            title = f"Impact 增量: the grants of {previous.label} on {effect.outcome}"
            sections.append(("impact", title, impact_html(effect)))
        movers = None
        if before is not None and before.scorecards[name].frame.height:
            movers = compare_results(
                Side(previous.label, before, before.scorecards[name]),
                Side(p.label, run, run.scorecards[name]),
            )
        if ids or group is not None:
            scored = ScoreResult(run, name)
            chosen = self.choose(scored, run.scorecards[name].frame, ids, group)
            ids = list(dict.fromkeys([*ids, *(str(k) for k in chosen[scored.result.key].to_list())]))
        warnings = [*self._data_warnings, *run_warnings(run, name)]
        if strict and warnings:
            from chuanliu_cli.errors import StrictError

            raise StrictError(warnings)
        html = build_report(
            run,
            name,
            movers,
            generated_by or f"chuanliu {__version__}",
            warnings,
            top=top,
            ids=ids,
            sections=sections,
        )
        if list_path is not None and list_format is not None:
            from chuanliu_cli.present.documents import scores_document
            from chuanliu_cli.present.writers import write_document

            document = scores_document(run, name, warnings=warnings, population=self._population(run, name))
            if list_format == "xlsx":
                from chuanliu_cli.present.xlsx import write_xlsx

                with atomic_write(list_path, "wb") as f:
                    write_xlsx(f, document)
            else:
                with atomic_write(list_path, "wb") as f:
                    write_document(f, list_format, document)  # type: ignore[arg-type]  # (checked above)
        if path is not None:
            with atomic_write(path) as f:
                f.write(html)
        return ReportResult(html, run, name, movers, path, tuple(warnings))

    def runs(self, run_id: int | None = None, limit: int = 20) -> RunsResult:
        """The recorded runs of `eligible`/`score`, newest first, or one run's per-entity results."""
        from chuanliu_cli.store.database import open_database
        from chuanliu_cli.store.runs import list_runs, run_results

        path = self._require_database("the recorded runs")
        with open_database(path, "read", self.wait) as handle:
            if run_id is None:
                return RunsResult(runs=tuple(list_runs(handle.con, limit)))
            run, table = run_results(handle.con, run_id)
        return RunsResult(run=run, table=table)

    def runs_diff(self, run_id: int, rules: str | Path | Ruleset | None = None) -> RunsDiffResult:
        """Restate run `run_id`: its period scored again with the run's own ruleset (the text recorded
        with the run; `rules` only when the database predates that and the file's sha256 is the run's)
        on today's data; the entities whose eligibility, tier or grant changed, with the loads since."""
        from chuanliu_cli.scoring.restate import diff_run

        self._require_database("a restatement")
        given = load_rules(rules, check=True) if rules is not None else None
        with self._source() as source:
            diff, run = diff_run(source, run_id, given)
        warnings = [*diff.warnings, *run_warnings(run, diff.scorecard)]
        return RunsDiffResult(diff, tuple(dict.fromkeys(warnings)))

    def history(
        self,
        key: str,
        start: str,
        end: str,
        scorecard: str | None = None,
        rules: str | Path | Ruleset | None = None,
    ) -> HistoryResult:
        """One entity month by month from `start` to `end` (inclusive): the ruleset version in force,
        eligibility, failed gates, tier, rank, total and grant, read from the recorded run of the period
        when its ruleset, tool and data are unchanged (else scored, and nothing recorded). A key that no
        period knows raises DataError (exit 4) with the nearest keys."""
        import polars as pl

        from chuanliu_cli.periods import parse_period

        first, last = parse_period(start), parse_period(end)
        if first.kind != last.kind:
            raise UsageError(f"--from {start} and --to {end} are periods of different kinds")
        if last.start < first.start:
            raise UsageError(f"--to {end} is before --from {start}")
        periods = []
        p = first
        while p.start <= last.start:
            periods.append(p)
            p = p.shift(1)
        if len(periods) > 120:
            raise UsageError(f"{len(periods)} periods from {start} to {end}: at most 120 at once")
        rows: list[dict[str, Any]] = []
        warnings: list[str] = []
        key_name = None
        last_scored = None
        for p in periods:
            scored = self._score(p.label, scorecard, rules, False, False, None, reuse=True, only=[key])
            res = scored.result
            key_name = res.key
            last_scored = scored
            warnings.extend(f"{p.label}: {w}" for w in scored.warnings)
            mine = res.frame.filter(pl.col(res.key) == key)
            run = scored.run
            row: dict[str, Any] = {
                "period": p.label,
                "ruleset": run.ruleset.name,
                "sha256": run.ruleset.sha256,
                "source": f"run {scored.run_id}" if scored.stored else "scored",
                "complete": run.complete,
                "in_population": mine.height > 0,
                "eligible": False,
                "failed_gates": [],
                "tier": None,
                "rank": None,
                "ranked": res.ranked if res.ranked is not None else int(res.frame["rank"].drop_nulls().len()),
                "total": None,
                "grant": None,
            }
            if mine.height:
                r = mine.row(0, named=True)
                sc = res.scorecard
                row.update(
                    eligible=bool(r["eligible"]),
                    failed_gates=list(r["failed_gates"] or []),
                    tier=r["tier"],
                    rank=r["rank"],
                    total=r[sc.rank_by],
                    grant=r["grant"] if sc.reward is not None else None,
                )
            rows.append(row)
        if not any(r["in_population"] for r in rows):
            from chuanliu_cli.scoring.explain import unknown_key_error

            assert last_scored is not None
            with self._source() as source:
                known = _key_exists(source, last_scored.result.key, key)
            if not known:
                raise unknown_key_error(last_scored.run, last_scored.scorecard, key)
        assert key_name is not None and last_scored is not None
        return HistoryResult(
            key, key_name, last_scored.scorecard, tuple(rows), tuple(dict.fromkeys(warnings))
        )

    def _score(
        self,
        period: str,
        scorecard: str | None,
        rules: str | Path | Ruleset | None,
        record: bool,
        require_complete: bool,
        command: str | None,
        strict: bool = False,
        reuse: bool = False,
        only: Sequence[str] | None = None,
        labelled: Sequence[str] | None = None,
        needed: Sequence[str] = (),
        finish: Callable[[ScoreResult], ScoreResult] | None = None,
        record_later: bool = False,
    ) -> ScoreResult:
        """Check the ruleset, score the period, check completeness, record the run (database only).
        `finish` (the rows a caller asks for: an unknown id or group raises) runs before the run is
        recorded: a command that fails records nothing. With `record_later` the run is not recorded but
        kept in `pending` for Session.record, once the caller has written its output.
        With `strict`, any warning raises StrictError before anything is recorded. With `reuse` (explain,
        score --id), a recorded run of the same ruleset, tool version and data is read back instead of
        scoring again, and nothing new is recorded; `labelled` then names the only rows whose shop labels
        the caller shows (default: `only`) and `needed` the values it needs over everyone beside the rows
        `only` (see load_stored_run)."""
        from chuanliu_cli.errors import IncompletePeriodError, StrictError
        from chuanliu_cli.rules.effective import ruleset_for_period
        from chuanliu_cli.scoring.budget import pace_rewards
        from chuanliu_cli.scoring.pipeline import score_period

        started = datetime.now()
        # an invalid ruleset never scores anything; a directory gives the version in force in the period
        ruleset, p = ruleset_for_period(rules, period, check=True)
        _protect(ruleset.path, f"the ruleset {ruleset.path}")
        name = scorecard_name(ruleset, scorecard)
        record = record and self.reads_database
        inputs = None
        stored_id = None
        if self._memory is None:
            self._data_timezone = ruleset.timezone
        with self._source() as source:
            zone_warning = timezone_warning(self._times_zone(source), ruleset)
            if self.reads_database and (record or reuse):
                from chuanliu_cli.store.runs import find_stored_run, load_stored_run, snapshot_inputs

                inputs = snapshot_inputs(source)
                if reuse:
                    # a budget's pool for the period first: a stored run is read back only with that pool
                    ruleset = pace_rewards(source, ruleset, p, [name])
                    stored_id = find_stored_run(source, ruleset, p, name, inputs)
                    reward = ruleset.scorecard(name).reward
                    if stored_id is not None and reward is not None and reward.budget is not None:
                        from chuanliu_cli.store.runs import recorded_pool

                        if recorded_pool(source, stored_id) != reward.pool:
                            stored_id = None  # the budget paces another pool now: score again
            if stored_id is not None:
                run = load_stored_run(source, stored_id, ruleset, p, only, labelled, needed)
                record = False
            else:
                run = score_period(source, ruleset, p, upto=name)
        if not run.complete and require_complete:
            raise IncompletePeriodError(
                incomplete_message(run), hint="load the rest of the period, or do not require it complete"
            )
        warnings = [*self._data_warnings, *([zone_warning] if zone_warning else []), *run_warnings(run, name)]
        if strict and warnings:
            raise StrictError(warnings)  # before the run is recorded: strict writes nothing
        population = self._population(run, name)
        scored = ScoreResult(
            run, name, True, tuple(warnings), stored_id, population, stored=stored_id is not None
        )
        if finish is not None:
            scored = finish(scored)
        if record and inputs is not None:
            scored = replace(scored, pending=(inputs, started, command or f"chuanliu_cli.api {period}"))
            if not record_later:
                scored = self.record(scored)
        return scored

    def record(self, scored: ScoreResult) -> ScoreResult:
        """Record a run scored with `record_later` (its `pending` snapshot) in `runs` and `run_results`;
        a result with nothing pending is returned as it is."""
        with self.recording(scored) as done:
            pass
        return done.result

    @contextlib.contextmanager
    def recording(self, scored: ScoreResult) -> Iterator[Recording]:
        """Record a run scored with `record_later` while the block writes its output: the rows are inserted
        meanwhile and committed once the block ends without an error (a list that could not be written,
        a full disk, is not recorded as published); then `.result` is the result with its run id. An error
        or a signal in the block records nothing. A result with nothing pending is kept as it is."""
        done = Recording(scored)
        if scored.pending is None:
            yield done
            return
        from chuanliu_cli.store.recording import recording

        inputs, started, command = scored.pending
        run, name, limit = scored.run, scored.scorecard, self.memory_limit
        with recording(self.db_path, self.wait, limit, run, name, command, inputs, started) as rec:
            yield done
        done.result = replace(scored, run_id=rec.run_id, pending=None)

    def _times_zone(self, source: Any) -> str | None:
        """The timezone the data's times are in: the database's (recorded by its loads), the Spark
        settings', or None when no load said (an empty database)."""
        if self._spark_engine is not None and source is self._spark_engine:
            return str(self.spark.timezone) if self.spark is not None else None
        from chuanliu_cli.store.database import stored_timezone

        return stored_timezone(source)

    def _population(self, run: RunResult, scorecard: str) -> Population:
        """Who the ranks and grants are relative to: a directory of exports (`data=`) may be one merchant's
        own files, so its ranks and grants are labelled as relative to the entities it holds."""
        n = run.scorecards[scorecard].size
        if self.data is None:
            return Population(n, False, None)
        key = run.scorecards[scorecard].key
        note = (
            f"ranks, tiers and grants are relative to the {n} {key} value{'s' if n != 1 else ''} loaded from "
            f"{self.data}; grants assume these are the whole population"
        )
        return Population(n, True, note)

    def budget(
        self, year: int, scorecard: str | None = None, rules: str | Path | Ruleset | None = None
    ) -> BudgetYear:
        """A scorecard's pools over `year` (SPEC §9): per period the pool, allocated, unallocated and what
        the year's budget has left, each from the latest recorded `eligible` run or scored now with the
        ruleset in force then (scoring/budget.py); through the last period the data reaches."""
        from chuanliu_cli.scoring.budget import budget_year

        with self._source() as source:
            found = budget_year(source, rules, year, scorecard)
        return replace(found, warnings=(*self._data_warnings, *found.warnings))

    # -- ruleset design (SPEC §10) --

    def calibrate(
        self,
        periods: Sequence[str],
        targets: Sequence[str],
        output: PathLike,
        scorecard: str | None = None,
        rules: str | Path | Ruleset | None = None,
        against: str | Path | Ruleset | None = None,
    ) -> Calibration:
        """Choose the ruleset's tunable values ({tune: [low, high]}) of one scorecard so that the targets
        are met over `periods` (or come closest), and write the ruleset with those numbers to `output`
        (atomically). See design/calibrate.py for the targets, the distance and the search."""
        from chuanliu_cli.design.calibrate import calibrate_ruleset
        from chuanliu_cli.periods import parse_period
        from chuanliu_cli.present.writers import atomic_write, check_writable

        ruleset = load_rules(rules, check=True)
        old = load_rules(against, check=True) if against is not None else None
        out = Path(output)
        check_writable(out)
        if out.resolve() == Path(str(ruleset.path)).resolve():
            raise UsageError(
                f"-o {out} is the ruleset being calibrated",
                hint="write the calibrated ruleset to another file: the tunable one calibrates again",
            )
        chosen = [parse_period(p, ruleset.period) for p in dict.fromkeys(periods)]
        with self._source() as source:
            result = calibrate_ruleset(source, ruleset, chosen, targets, scorecard, str(out), old)
        with atomic_write(out) as f:
            f.write(result.written.text)
        data = [*self._data_warnings]
        scored = run_warnings(result.runs[0], result.scorecard)
        return replace(result, warnings=tuple(dict.fromkeys((*data, *result.warnings, *scored))))

    def sensitivity(
        self,
        period: str,
        scorecard: str | None = None,
        rules: str | Path | Ruleset | None = None,
    ) -> SensitivityResult:
        """Each threshold, weight, min_score, cap and pool of a scorecard moved by ±5 % and ±20 %: eligible
        count, entrants, leavers and grant moved against the ruleset as written (design/sensitivity.py)."""
        from chuanliu_cli.design.sensitivity import sensitivity
        from chuanliu_cli.design.variants import Variants
        from chuanliu_cli.rules.effective import ruleset_for_period
        from chuanliu_cli.scoring.pipeline import score_period

        ruleset, p = ruleset_for_period(rules, period, check=True)  # a directory: the version in force
        name = scorecard_name(ruleset, scorecard)
        with self._source() as source:
            run = score_period(source, ruleset, p, upto=name)
        found = sensitivity(Variants.of(run.ruleset, run.scorecards[name]))  # (a budget: its paced pool)
        warnings = [*self._data_warnings, *run_warnings(run, name)]
        warnings += [
            f"gate {g} of {name}: its thresholds are not varied ({why})"
            for g, why in found.whole_gates.items()
        ]
        return SensitivityResult(run, found, tuple(warnings))

    def integrity(
        self,
        period: str,
        scorecard: str | None = None,
        rules: str | Path | Ruleset | None = None,
        rows: bool = False,
    ) -> IntegrityResult:
        """The integrity flags of a period (SPEC §11): per flag the rows, amount and shops caught, the
        entities with the largest flagged share, threshold bunching of the scorecard's gates and tiers, and
        with `rows` every flagged row (scoring/integrity.py)."""
        from chuanliu_cli.engines.duckdb import as_engine
        from chuanliu_cli.scoring.integrity import integrity_report

        scored = self._score(period, scorecard, rules, False, False, None, reuse=True)
        with self._source() as source:
            result = integrity_report(
                as_engine(source), scored.run.ruleset, scored.run.period, scored.result, rows
            )
        return replace(result, warnings=scored.warnings)

    def lint_rules(self, period: str, rules: str | Path | Ruleset | None = None) -> LintReport:
        """`rules lint --month`: the ruleset's design lints (rulelint.lint_ruleset) and those the period's
        data shows: normalizer ranges beyond the values, parts every entity scores alike, tiers nobody
        reached, a pool that cannot be spent. Every scorecard is scored for `period` (nothing is recorded);
        of a directory of versions, the version in force in `period` is linted."""
        from chuanliu_cli.rules.effective import ruleset_for_period
        from chuanliu_cli.scoring.pipeline import score_period
        from chuanliu_cli.scoring.rulelint import lint_ruleset

        ruleset, p = ruleset_for_period(rules, period, check=True)  # a directory: the version in force
        with self._source() as source:
            run = score_period(source, ruleset, p)
        warnings = [*self._data_warnings, *ruleset.warnings]
        if not run.complete:
            warnings.append(incomplete_message(run))
        return lint_ruleset(ruleset, run, warnings)

    def impact(
        self,
        period: str,
        outcome: str = "self_live_gmv",
        horizon: int = 1,
        scorecard: str | None = None,
        rules: str | Path | Ruleset | None = None,
        strict: bool = False,
    ) -> ImpactResult:
        """Did the grants of `period` change `outcome` (a metric of the scorecard) in the `horizon` (1 to 3)
        periods after it (SPEC §12)? Regression discontinuity at each tier cutoff and difference-in-
        differences on the panel of periods the data covers; each period's grants are read from its
        recorded run when the inputs are unchanged, else scored. Needs the extra chuanliu[impact]
        (UsageError naming it otherwise); a later period without data raises DataError, one only partly
        covered IncompletePeriodError. With `strict`, any warning raises StrictError."""
        from chuanliu_cli.impact import require_libraries

        require_libraries()
        if not 1 <= horizon <= 3:
            raise UsageError(f"--horizon must be 1, 2 or 3, not {horizon}")
        from chuanliu_cli.impact.panel import gather
        from chuanliu_cli.impact.result import evaluate
        from chuanliu_cli.rules.effective import ruleset_for_period

        ruleset, p = ruleset_for_period(rules, period, check=True)
        name = scorecard_name(ruleset, scorecard)
        sc = ruleset.scorecard(name)
        names = [m.name for m in sc.metrics] + [x.name for x in sc.scores]
        if outcome not in names:
            import difflib

            close = difflib.get_close_matches(outcome, names, n=1)
            raise UsageError(
                f"--outcome {outcome!r} is not a metric or score of scorecard {name} ({ruleset.name})",
                hint=(f"did you mean {close[0]!r}? " if close else "") + "metrics: " + ", ".join(names[:12]),
            )
        scored: dict[str, ScoreResult] = {}

        def score(label: str) -> ScoreResult:
            if label not in scored:
                scored[label] = self._score(label, name, rules, False, False, None, reuse=True, labelled=[])
            return scored[label]

        result = evaluate(gather(score, p, horizon, outcome), horizon, name)
        warnings = tuple(dict.fromkeys([*self._data_warnings, *result.warnings]))
        if strict and warnings:
            from chuanliu_cli.errors import StrictError

            raise StrictError(list(warnings))
        return replace(result, warnings=warnings)


def _list_format(path: Path) -> str:
    """The data format a `--list-out` file's suffix asks for; UsageError for any other suffix."""
    from chuanliu_cli.present.writers import check_writable, format_from_suffix

    fmt = format_from_suffix(path)
    if fmt not in ("csv", "json", "jsonl", "parquet", "xlsx"):
        raise UsageError(
            f"cannot tell the format of --list-out {path}",
            hint="name it .csv, .json, .jsonl, .parquet or .xlsx",
        )
    check_writable(path)
    return fmt


def _key_exists(source: Any, column: str, key: str) -> bool:
    """Whether any table of the data has `key` in its column `column` (at any time)."""
    return any(n for n in _key_counts(source, column, key).values())


def _key_counts(source: Any, column: str, key: str) -> dict[str, int]:
    """Rows holding `key` in `column`, per canonical table that has the column (the value is a literal
    quoted by sqlglot, never formatted into the SQL by hand)."""
    from sqlglot import exp

    from chuanliu_cli.engines.duckdb import as_engine
    from chuanliu_cli.schema import TABLES

    engine = as_engine(source)
    counts = {}
    for table in TABLES.values():
        if column not in table.names:
            continue
        query = (
            exp.select(exp.Count(this=exp.Star()).as_("n"))
            .from_(exp.to_table(table.name))
            .where(exp.EQ(this=exp.column(column, quoted=True), expression=exp.Literal.string(key)))
        )
        frame = engine.query(query.sql(dialect=engine.dialect))
        counts[table.name] = int(frame.item(0, 0)) if frame.height else 0
    return counts


def _other_scorecard(source: Any, ruleset: Ruleset, scorecard: str, key: str) -> str | None:
    """`is a promoter_id (scorecard promoter)` when `key` is a key of another scorecard's entities."""
    for sc in ruleset.scorecards:
        if sc.name != scorecard and _key_exists(source, sc.key, key):
            return f"is a {sc.key}: it is scored by scorecard {sc.name}"
    return None


def _require_group(source: Any, group: str) -> None:
    """DataError (exit 4) unless a shop in `shops` has group_id `group`, naming the nearest group ids."""
    import difflib

    from chuanliu_cli.engines.duckdb import as_engine

    shops = as_engine(source).names("shop_id")
    groups = sorted({str(g) for g in shops["group_id"].drop_nulls()}) if shops is not None else []
    if group in groups:
        return
    # the closest first, ties in group order (get_close_matches would put zt880060 before zt880001)
    ratio = {g: difflib.SequenceMatcher(None, group, g).ratio() for g in groups}
    near = sorted((g for g in groups if ratio[g] >= 0.5), key=lambda g: (-ratio[g], g))[:3]
    if near:
        hint = "nearest known: " + ", ".join(near)
    else:
        hint = (
            "no shop has a similar group_id" if groups else "no shop has a group_id: load shops with group_id"
        )
    raise DataError(f"unknown group_id {group!r}: no shop in shops has it", hint=hint)


def _names_of(source: Any, column: str) -> dict[str, str | None]:
    """Display names of every known key of `column` (shops: all of them, with or without activity)."""
    from chuanliu_cli.engines.duckdb import as_engine

    frame = as_engine(source).names(column)
    if frame is None:
        return {}
    return {str(k): (None if n is None else str(n)) for k, n in frame.select("k", "name").iter_rows()}


def incomplete_message(run: RunResult) -> str:
    """What an incomplete period lacks, in one line."""
    return f"period {run.period.label} is incomplete: {run.completeness_note()}"


def run_warnings(run: RunResult, scorecard: str) -> list[str]:
    """Everything a person must know about a scored period: the ruleset's own warnings, missing data,
    and the data lints (a gate nobody passes, an empty list, a filter that matches nothing, ...)."""
    from chuanliu_cli.scoring.lints import data_lints

    warnings = list(run.ruleset.warnings)
    if not run.complete:
        warnings.append(incomplete_message(run))
    warnings.extend(data_lints(run, scorecard))
    return warnings


# --- ruleset design: test cases (issue #24) ----------------------------------------------------------------


def run_rule_cases(
    rules: str | Path | Ruleset | None = None, cases: PathLike | None = None
) -> tuple[CaseReport, ...]:
    """Run a ruleset's test cases (`cases`, default `<ruleset>.cases.yaml` beside the ruleset): each case's
    result against its expectations, and the coverage of the ruleset's gates and tiers. A directory of
    versions (default: the bundled one, whose versions ship their cases) runs each version with the cases
    beside it, one report each. An invalid ruleset or case file, or a version without cases, raises
    RulesetError (CaseFileError), every problem located."""
    from chuanliu_cli.errors import RulesetError
    from chuanliu_cli.rules.cases import CaseFileError, default_cases_path, load_cases
    from chuanliu_cli.scoring.casetests import run_cases

    files = _ruleset_files(rules)
    if files is None:
        ruleset = load_rules(rules, check=True)
        path = Path(cases) if cases is not None else default_cases_path(ruleset.path)
        return (run_cases(ruleset, load_cases(path, ruleset)),)
    if cases is not None:
        raise UsageError(
            f"{rules}: a directory holds several rulesets, each with its own cases beside it",
            hint="give RULES as a ruleset file to run it with --cases",
        )
    reports, errors = [], []
    for file in files:
        try:
            ruleset = load_rules(file, check=True)
            reports.append(run_cases(ruleset, load_cases(default_cases_path(file), ruleset)))
        except RulesetError as exc:
            errors.extend(exc.errors)
    if errors:
        raise CaseFileError(errors)
    return tuple(reports)


def lint_rules(rules: str | Path | Ruleset | None = None) -> tuple[LintReport, ...]:
    """The design lints of a ruleset without data (scoring/rulelint.py): unreachable tiers, multipliers that
    do not rise, parts and scores whose weights cannot matter, gates implied by others; one report per
    version of a directory (default: the bundled one). With a period's data: `Session.lint_rules`."""
    from chuanliu_cli.scoring.rulelint import lint_ruleset

    files = _ruleset_files(rules)
    chosen: list[str | Path | Ruleset | None] = list(files) if files is not None else [rules]
    return tuple(lint_ruleset(r, None, r.warnings) for r in (load_rules(c, check=True) for c in chosen))


def _ruleset_files(rules: str | Path | Ruleset | None) -> list[Path] | None:
    """The versions of a directory of rulesets (None, the default: the bundled directory), or None when
    `rules` is one ruleset (a file or a model)."""
    from chuanliu_cli.errors import RulesetError
    from chuanliu_cli.rules.effective import default_rules_dir, ruleset_files

    if rules is None:
        directory = default_rules_dir()
    elif isinstance(rules, str | Path) and Path(rules).is_dir():
        directory = Path(rules)
    else:
        return None
    files = ruleset_files(directory)
    if not files:
        raise RulesetError([f"{directory}: the directory holds no ruleset (*.yaml)"])
    return files


def _protect(path: str | Path | None, what: str) -> None:
    """`-o` never replaces a file this command reads (present/writers.protect_from_output)."""
    if path is None or str(path) == ":memory:":
        return
    from chuanliu_cli.present.writers import protect_from_output

    protect_from_output(path, what)


def timezone_warning(data_zone: str | None, ruleset: Ruleset) -> str | None:
    """The warning when the data's times were read in another timezone than the ruleset's (SPEC §2: naive
    times are in the ruleset's timezone): periods then start and end hours off."""
    if data_zone is None or data_zone == ruleset.timezone:
        return None
    return (
        f"the ruleset {ruleset.name} is in timezone {ruleset.timezone}, but the data's times were read in "
        f"{data_zone}: its periods start and end at {data_zone} midnight. Load the data with --timezone "
        f"{ruleset.timezone} (into a new database), or set `timezone: {data_zone}` in the ruleset"
    )
