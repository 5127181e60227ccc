"""The `chuanliu` command line: parse options, call the library, render, map errors to exit codes."""

from __future__ import annotations

import contextlib
import functools
import os
import sys
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from chuanliu_cli import __version__
from chuanliu_cli.errors import ChuanliuError
from chuanliu_cli.exit_codes import ExitCode

if TYPE_CHECKING:
    from rich.console import Console


@dataclass
class Settings:
    """Global options, shared by every command through the click context."""

    quiet: bool = False
    verbose: bool = False
    no_color: bool = False
    db: str | None = None

    def console(self, stderr: bool = False) -> Console:
        """A console for data (stdout) or messages (stderr), honouring --no-color and NO_COLOR."""
        from rich.console import Console

        no_color = self.no_color or bool(os.environ.get("NO_COLOR"))
        console = Console(stderr=stderr, no_color=no_color, highlight=False, soft_wrap=False)
        if not console.is_terminal and not os.environ.get("COLUMNS"):
            # Piped or redirected output is read later, in a file or a mail: do not squeeze it to 80.
            console.width = 160
        return console


_SETTINGS = Settings()


def _settings() -> Settings:
    return _SETTINGS


def _error(message: str) -> None:
    """Print a one-line error on stderr (no markup interpretation of user data)."""
    from rich.console import Console
    from rich.text import Text

    console = Console(stderr=True, no_color=bool(os.environ.get("NO_COLOR")), highlight=False, soft_wrap=True)
    console.print(Text(message, style="bold red" if message.startswith("Error") else ""))


def _handle_errors(func: Callable[..., Any]) -> Callable[..., Any]:
    """The one place where exceptions become messages and exit codes (every command is wrapped)."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except (typer.Exit, typer.Abort):
            raise
        except ChuanliuError as exc:
            if _SETTINGS.verbose:
                traceback.print_exc()
            lines = getattr(exc, "errors", None) or [exc.message]
            for line in lines:
                _error(f"Error: {line}")
            for detail in exc.details:
                _error(f"  {detail}")
            if exc.hint:
                _error(f"Hint: {exc.hint}")
            raise typer.Exit(int(exc.exit_code)) from None
        except KeyboardInterrupt:
            _error("Error: interrupted")
            raise typer.Exit(130) from None
        except Exception as exc:
            if _SETTINGS.verbose:
                traceback.print_exc()
            first = str(exc).splitlines()[0] if str(exc) else ""
            _error(f"Error: internal error: {type(exc).__name__}: {first} (a bug; rerun with -v for details)")
            raise typer.Exit(int(ExitCode.INTERNAL)) from None

    return wrapper


def command(typer_app: typer.Typer, name: str | None = None) -> Callable[[Callable[..., Any]], Any]:
    """Register a command on `typer_app` with the error handling of `_handle_errors`."""

    def register(func: Callable[..., Any]) -> Any:
        return typer_app.command(name)(_handle_errors(func))

    return register


_EXIT_HELP = (
    "Exit codes: " + ", ".join(f"{c.value} {c.name.lower().replace('_', ' ')}" for c in ExitCode) + "."
)

app = typer.Typer(
    name="chuanliu",
    help="Score merchants and influencers for Kuaishou's Chuanliu Plan (川流计划) from their exports.\n\n"
    + _EXIT_HELP,
    context_settings={"help_option_names": ["-h", "--help"]},
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode=None,
    pretty_exceptions_enable=False,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"chuanliu {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Show the version and exit.")
    ] = False,
    quiet: Annotated[
        bool, typer.Option("-q", "--quiet", help="Print nothing but errors (and data).")
    ] = False,
    verbose: Annotated[bool, typer.Option("-v", "--verbose", help="Show tracebacks of errors.")] = False,
    no_color: Annotated[bool, typer.Option("--no-color", help="No colours (also: NO_COLOR=1).")] = False,
    db: Annotated[
        str | None,
        typer.Option("--db", envvar="CHUANLIU_DB", help="The database file [default: ./chuanliu.duckdb]."),
    ] = None,
) -> None:
    """Score merchants and influencers for Kuaishou's Chuanliu Plan (川流计划) from their exports."""
    global _SETTINGS
    _SETTINGS = Settings(quiet=quiet, verbose=verbose, no_color=no_color, db=db)


# --- shared options ----------------------------------------------------------------------------------------

DbOption = Annotated[
    str | None,
    typer.Option("--db", envvar="CHUANLIU_DB", help="The database file [default: ./chuanliu.duckdb]."),
]
MemoryLimitOption = Annotated[
    str | None,
    typer.Option("--memory-limit", help="DuckDB memory limit, e.g. 4GB; past it DuckDB spills to disk."),
]
WaitOption = Annotated[
    float, typer.Option("--wait", min=0, help="Seconds to wait for another process holding the database.")
]


def _db_path(db: str | None) -> str:
    from chuanliu_cli.store.database import resolve_db_path

    return resolve_db_path(db or _settings().db)


# --- load --------------------------------------------------------------------------------------------------


class TableName(StrEnum):
    orders = "orders"
    reviews = "reviews"
    livestreams = "livestreams"
    shops = "shops"


@command(app)
def load(
    table: Annotated[
        TableName | None,
        typer.Argument(help="The table the files hold (omit with --dir).", show_default=False),
    ] = None,
    files: Annotated[list[Path] | None, typer.Argument(help="Export files (CSV, Parquet, XLSX).")] = None,
    directory: Annotated[
        Path | None,
        typer.Option(
            "--dir",
            help="Load every export in DIR, recognised by name: orders*, reviews*, livestreams*, shops* "
            "(or 订单*, 评价*, 直播*, 店铺*).",
        ),
    ] = None,
    max_reject_rate: Annotated[
        float,
        typer.Option(
            "--max-reject-rate", min=0.0, max=1.0, help="Largest share of bad rows a file may have."
        ),
    ] = 0.01,
    encoding: Annotated[
        str | None, typer.Option("--encoding", help="Text encoding of CSV files [default: detected].")
    ] = None,
    sheet: Annotated[str | None, typer.Option("--sheet", help="XLSX: load only this sheet.")] = None,
    mapping: Annotated[
        Path | None, typer.Option("--mapping", help="YAML file of extra column aliases, value maps, scales.")
    ] = None,
    timezone: Annotated[
        str, typer.Option("--timezone", help="Timezone of naive times in the files.")
    ] = "Asia/Shanghai",
    db: DbOption = None,
    memory_limit: MemoryLimitOption = None,
    wait: WaitOption = 60.0,
) -> None:
    """Validate export files and upsert them into the database, all or nothing.

    Bad rows are kept in `rejected_rows`; if a file's share of bad rows exceeds --max-reject-rate nothing
    is written and the exit code is 4. Loading the same file twice changes nothing.
    """
    from chuanliu_cli.errors import UsageError
    from chuanliu_cli.ingest.loader import discover

    items: list[tuple[str, Path]] = []
    if directory is not None:
        if table is not None or files:
            raise UsageError("give either TABLE FILE... or --dir DIR, not both")
        items = discover(directory)
    else:
        if table is None or not files:
            raise UsageError("give TABLE FILE... or --dir DIR", hint="e.g. chuanliu load orders orders.csv")
        items = [(table.value, f) for f in files]
    _run_load(items, max_reject_rate, encoding, sheet, mapping, timezone, wait, db, memory_limit)


def _load_options(
    max_reject_rate: float, encoding: str | None, sheet: str | None, mapping: Path | None, timezone: str
) -> Any:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    from chuanliu_cli.errors import UsageError
    from chuanliu_cli.ingest.loader import LoadOptions
    from chuanliu_cli.ingest.mapping import load_mapping

    try:
        ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise UsageError(f"unknown timezone {timezone!r}", hint="e.g. Asia/Shanghai") from None
    return LoadOptions(load_mapping(mapping), encoding, sheet, max_reject_rate, timezone)


def _run_load(
    items: list[tuple[str, Path]],
    max_reject_rate: float,
    encoding: str | None,
    sheet: str | None,
    mapping: Path | None,
    timezone: str,
    wait: float,
    db_option: str | None,
    memory_limit: str | None,
) -> None:
    from chuanliu_cli.ingest.loader import load_files
    from chuanliu_cli.present.tables import render_load_summary
    from chuanliu_cli.store.database import open_database

    settings = _settings()
    options = _load_options(max_reject_rate, encoding, sheet, mapping, timezone)
    err = settings.console(stderr=True)
    with open_database(_db_path(db_option), "write", wait, memory_limit) as db:
        results = load_files(db, items, options, progress=_progress_callback(err, settings))
    if not settings.quiet:
        render_load_summary(settings.console(), results)
    for r in results:
        for warning in r.warnings if not settings.quiet else []:
            _error(f"Warning: {warning}")
        if r.rejected and not settings.quiet:
            _error(f"Warning: {r.file}: {r.rejected} row(s) rejected and kept in table rejected_rows; first:")
            for x in r.rejects[:3]:
                _error(f"  {x}")


def _progress_callback(err: Console, settings: Settings) -> Any:
    """A Rich progress bar on stderr for big files, only when stderr is a terminal."""
    if settings.quiet or not err.is_terminal:
        return None
    from rich.progress import Progress

    state: dict[str, Any] = {}

    def update(name: str, rows: int, total: int | None) -> None:
        if "bar" not in state and rows < 1_000_000 and (total is None or total < 1_000_000):
            return
        if "bar" not in state:
            progress = Progress(console=err, transient=True)
            progress.start()
            state["bar"] = progress
            state["tasks"] = {}
        tasks = state["tasks"]
        if name not in tasks:
            tasks[name] = state["bar"].add_task(f"loading {name}", total=total)
        state["bar"].update(tasks[name], completed=rows, description=f"loading {name}: {rows:,} rows")

    return update


# --- status ------------------------------------------------------------------------------------------------


@command(app)
def status(db: DbOption = None, wait: WaitOption = 60.0) -> None:
    """Show what is loaded: rows per table, months covered, last loads, rejects, complete months."""
    from chuanliu_cli.present.tables import render_status
    from chuanliu_cli.store.database import open_database
    from chuanliu_cli.store.status import store_status

    path = _db_path(db)
    with open_database(path, "read", wait) as handle:
        st = store_status(handle.con)
    render_status(_settings().console(), st, path)


# --- sample ------------------------------------------------------------------------------------------------


class Headers(StrEnum):
    en = "en"
    zh = "zh"


class SampleEncoding(StrEnum):
    utf8 = "utf-8"
    gb18030 = "gb18030"


class SampleFormat(StrEnum):
    csv = "csv"
    parquet = "parquet"
    xlsx = "xlsx"


@command(app)
def sample(
    outdir: Annotated[Path, typer.Argument(help="Directory to write the files into (created).")],
    merchants: Annotated[int, typer.Option("--merchants", min=1, help="Number of merchants.")] = 60,
    months: Annotated[int, typer.Option("--months", min=1, max=36, help="Months of data.")] = 3,
    end: Annotated[str, typer.Option("--end", help="Last month (YYYY-MM).")] = "2023-05",
    seed: Annotated[int, typer.Option("--seed", help="Random seed.")] = 42,
    headers: Annotated[Headers, typer.Option("--headers", help="English or Chinese headers.")] = Headers.en,
    encoding: Annotated[
        SampleEncoding, typer.Option("--encoding", help="CSV text encoding.")
    ] = SampleEncoding.utf8,
    fmt: Annotated[SampleFormat, typer.Option("--format", help="File format.")] = SampleFormat.csv,
    orders: Annotated[
        int | None, typer.Option("--orders", min=1, help="Target number of orders (for scale tests).")
    ] = None,
) -> None:
    """Write a deterministic synthetic dataset: the same options give byte-identical files."""
    from chuanliu_cli.periods import parse_period
    from chuanliu_cli.sample import generate_sample

    parse_period(end)  # a clear usage error for a bad month
    written = generate_sample(
        outdir,
        merchants=merchants,
        months=months,
        end=end,
        seed=seed,
        headers=headers.value,
        encoding=encoding.value,
        fmt=fmt.value,
        orders=orders,
    )
    settings = _settings()
    if not settings.quiet:
        for table, path in written.items():
            settings.console().print(f"{table}: {path}")


# --- scoring -----------------------------------------------------------------------------------------------


class OutputFormat(StrEnum):
    table = "table"
    csv = "csv"
    json = "json"
    jsonl = "jsonl"
    parquet = "parquet"


MonthOption = Annotated[str, typer.Option("--month", help="The period to score: 2023-05 (or 2023-W18).")]
ScorecardOption = Annotated[
    str | None, typer.Option("--scorecard", help="Which scorecard [default: the first, merchant].")
]
RulesOption = Annotated[
    Path | None,
    typer.Option(
        "--rules", envvar="CHUANLIU_RULES", help="Ruleset YAML [default: the bundled chuanliu-2023]."
    ),
]
DataOption = Annotated[
    Path | None,
    typer.Option(
        "--data", help="Score the exports in DIR in memory (validated like `load`), instead of --db."
    ),
]
FormatOption = Annotated[
    OutputFormat | None,
    typer.Option("--format", help="Output format [default: table on a terminal, csv otherwise]."),
]
OutOption = Annotated[Path | None, typer.Option("-o", "--output", help="Write to FILE (atomically).")]
NoRecordOption = Annotated[
    bool, typer.Option("--no-record", help="Do not record this run in the database's `runs` table.")
]
RequireCompleteOption = Annotated[
    bool, typer.Option("--require-complete", help="Exit 6 if the period's data is incomplete.")
]


class EngineName(StrEnum):
    duckdb = "duckdb"
    spark = "spark"


EngineOption = Annotated[
    EngineName,
    typer.Option(
        "--engine",
        help="Where the metric queries run: duckdb, or spark (pip install 'chuanliu[spark]'; reads --data "
        "or --spark-table).",
    ),
]
SparkMasterOption = Annotated[
    str, typer.Option("--spark-master", help="Spark master URL for --engine spark, e.g. yarn.")
]
SparkConfOption = Annotated[
    list[str] | None,
    typer.Option("--spark-conf", help="A Spark setting KEY=VALUE for --engine spark (repeatable)."),
]
SparkTableOption = Annotated[
    list[str] | None,
    typer.Option(
        "--spark-table",
        help="TABLE=NAME: read a table from Spark's catalog, e.g. orders=db.orders (repeatable).",
    ),
]


def _ruleset(rules: Path | None, check: bool = False) -> Any:
    """The ruleset of --rules / CHUANLIU_RULES / the bundled default; `check` also binds it to the schema."""
    from chuanliu_cli.rules.parser import default_ruleset_path, load_ruleset

    ruleset = load_ruleset(rules if rules is not None else default_ruleset_path())
    if check:
        # An invalid ruleset never scores anything (exit 3), type errors included.
        from chuanliu_cli.rules.validate import check_ruleset_against_schema

        check_ruleset_against_schema(ruleset)
    return ruleset


def _check_scorecard(name: str, names: list[str]) -> str:
    if name in names:
        return name
    import difflib

    from chuanliu_cli.errors import UsageError

    close = difflib.get_close_matches(name, names, n=1)
    raise UsageError(
        f"unknown scorecard {name!r}",
        hint=(f"did you mean {close[0]!r}? " if close else "") + f"scorecards: {', '.join(names)}",
    )


def _spark_settings(
    engine: EngineName, data: Path | None, master: str, conf: list[str] | None, tables: list[str] | None
) -> Any:
    """The Spark settings of --engine spark and the --spark-* options; None for DuckDB."""
    from chuanliu_cli.errors import UsageError

    if engine is EngineName.duckdb:
        if conf or tables:
            raise UsageError("--spark-conf and --spark-table need --engine spark")
        return None
    from chuanliu_cli.engines.spark import SparkSettings, parse_pairs, spark_tables

    named = spark_tables(parse_pairs(tables or [], "--spark-table"))
    if data is None and not named:
        raise UsageError(
            "--engine spark reads --data DIR or --spark-table TABLE=NAME, not the database",
            hint="e.g. --engine spark --data exports/ or --spark-table orders=db.orders ...",
        )
    return SparkSettings(
        master=master,
        conf=parse_pairs(conf or [], "--spark-conf"),
        data=str(data) if data is not None else None,
        tables=named,
    )


@contextlib.contextmanager
def _scoring_connection(
    data: Path | None, db_option: str | None, wait: float, memory_limit: str | None, spark: Any = None
) -> Iterator[Any]:
    """A connection holding the data: the database read-only, an in-memory load of --data DIR, or
    (with `spark`, SparkSettings) a Spark engine over --data or --spark-table."""
    from chuanliu_cli.store.database import disable_external_access, memory_database, open_database

    if spark is not None:
        from chuanliu_cli.engines.spark import SparkEngine

        with SparkEngine.open(spark) as engine:
            yield engine
        return
    if data is not None:
        from chuanliu_cli.ingest.loader import LoadOptions, discover, load_files

        db = memory_database(memory_limit)
        try:
            results = load_files(db, discover(data), LoadOptions())
            for r in results:
                if r.rejected and not _settings().quiet:
                    _error(f"Warning: {r.file}: {r.rejected} row(s) rejected; first: {r.rejects[0]}")
            disable_external_access(db.con)
            yield db.con
        finally:
            db.con.close()
        return
    with open_database(_db_path(db_option), "read", wait, memory_limit) as db:
        disable_external_access(db.con)
        yield db.con


def _score(
    db: str | None,
    month: str,
    rules: Path | None,
    data: Path | None,
    scorecard: str | None,
    wait: float,
    require_complete: bool,
    record: bool = False,
    memory_limit: str | None = None,
    spark: Any = None,
) -> tuple[Any, str]:
    """Score the period; with a database and `record`, add the run to `runs` and `run_results`."""
    from datetime import datetime

    from chuanliu_cli.errors import IncompletePeriodError
    from chuanliu_cli.periods import parse_period
    from chuanliu_cli.scoring.pipeline import score_period

    started = datetime.now()
    ruleset = _ruleset(rules, check=True)
    period = parse_period(month, ruleset.period)
    names = [sc.name for sc in ruleset.scorecards]
    name = _check_scorecard(scorecard or names[0], names)
    with _scoring_connection(data, db, wait, memory_limit, spark) as con:
        run = score_period(con, ruleset, period, upto=name)
        inputs = None
        if record and data is None and spark is None:
            from chuanliu_cli.store.runs import snapshot_inputs

            inputs = snapshot_inputs(con)
    if not run.complete:
        message = (
            f"period {period.label} is incomplete: {', '.join(run.incomplete_tables)} "
            f"{'has' if len(run.incomplete_tables) == 1 else 'have'} no data on or after {period.last_day}"
        )
        if require_complete:
            raise IncompletePeriodError(
                message, hint="load the rest of the period, or drop --require-complete"
            )
        if not _settings().quiet:
            _error(f"Warning: {message}")
    if inputs is not None:
        import shlex

        from chuanliu_cli.store.database import open_database
        from chuanliu_cli.store.runs import record_run

        command_line = "chuanliu " + " ".join(shlex.quote(a) for a in sys.argv[1:])
        with open_database(_db_path(db), "write", wait) as handle:
            run_id = record_run(handle.con, run, name, command_line, inputs, started)
        if not _settings().quiet:
            _error(f"Recorded as run {run_id} (chuanliu runs --id {run_id})")
    return run, name


def _output_format(fmt: OutputFormat | None, output: Path | None, console: Console) -> OutputFormat:
    """--format, else what the -o file name says (list.json), else table on a terminal and csv otherwise."""
    from chuanliu_cli.present.writers import format_from_suffix

    if fmt is not None:
        return fmt
    implied = format_from_suffix(output)
    if implied is not None:
        return OutputFormat(implied)
    return OutputFormat.table if (output is None and console.is_terminal) else OutputFormat.csv


def _check_output(output: Path | None) -> None:
    """Refuse an unwritable -o before any work is done (and before a run is recorded)."""
    if output is not None:
        from chuanliu_cli.present.writers import check_writable

        check_writable(output)


def _emit(
    run: Any,
    name: str,
    fmt: OutputFormat | None,
    output: Path | None,
    include_ineligible: bool,
    table_renderer: Callable[[Console], None],
) -> None:
    from chuanliu_cli.present.writers import (
        atomic_write,
        columns_of,
        parquet_bytes,
        render_text,
        run_document,
    )

    settings = _settings()
    console = settings.console()
    fmt = _output_format(fmt, output, console)
    if fmt is OutputFormat.table:
        if output is not None:
            from rich.console import Console as RichConsole

            with atomic_write(output) as f:
                table_renderer(RichConsole(file=f, width=160, no_color=True, highlight=False))
        else:
            table_renderer(console)
        return
    doc = run_document(run, name, include_ineligible)
    res = run.scorecards[name]
    columns = columns_of(res)
    if fmt is OutputFormat.parquet:
        data = parquet_bytes(doc, columns, res)
        if output is None:
            if console.is_terminal:
                from chuanliu_cli.errors import UsageError

                raise UsageError("parquet is binary: write it to a file with -o FILE")
            sys.stdout.buffer.write(data)
            sys.stdout.flush()
        else:
            with atomic_write(output, "wb") as f:
                f.write(data)
        return
    text = render_text(fmt.value, doc, columns)  # type: ignore[arg-type]
    if output is None:
        sys.stdout.write(text)
        sys.stdout.flush()
    else:
        with atomic_write(output) as f:
            f.write(text)


@command(app)
def score(
    month: MonthOption,
    scorecard: ScorecardOption = None,
    top: Annotated[int | None, typer.Option("--top", min=1, help="Only the first N entities.")] = None,
    ids: Annotated[list[str] | None, typer.Option("--id", help="Only these entities (repeatable).")] = None,
    rules: RulesOption = None,
    data: DataOption = None,
    fmt: FormatOption = None,
    output: OutOption = None,
    no_record: NoRecordOption = False,
    require_complete: RequireCompleteOption = False,
    db: DbOption = None,
    memory_limit: MemoryLimitOption = None,
    wait: WaitOption = 60.0,
    engine: EngineOption = EngineName.duckdb,
    spark_master: SparkMasterOption = "local[*]",
    spark_conf: SparkConfOption = None,
    spark_table: SparkTableOption = None,
) -> None:
    """Every entity of a scorecard ranked, with each score, eligibility (and failed gates) and tier."""
    import polars as pl

    _check_output(output)
    spark = _spark_settings(engine, data, spark_master, spark_conf, spark_table)
    run, name = _score(
        db, month, rules, data, scorecard, wait, require_complete, not no_record, memory_limit, spark
    )
    res = run.scorecards[name]
    frame = res.frame
    if ids:
        frame = frame.filter(pl.col(res.key).is_in(ids))
    if top is not None:
        frame = frame.head(top)
    if frame.height != res.frame.height:
        from dataclasses import replace

        run = replace(run, scorecards={**run.scorecards, name: replace(res, frame=frame)})
    from chuanliu_cli.present.tables import render_scores

    _emit(run, name, fmt, output, True, lambda c: render_scores(c, run, name, frame))


@command(app)
def eligible(
    month: MonthOption,
    scorecard: ScorecardOption = None,
    show_all: Annotated[
        bool, typer.Option("--all", help="Also list ineligible entities with their reasons.")
    ] = False,
    rules: RulesOption = None,
    data: DataOption = None,
    fmt: FormatOption = None,
    output: OutOption = None,
    no_record: NoRecordOption = False,
    require_complete: RequireCompleteOption = False,
    db: DbOption = None,
    memory_limit: MemoryLimitOption = None,
    wait: WaitOption = 60.0,
    engine: EngineOption = EngineName.duckdb,
    spark_master: SparkMasterOption = "local[*]",
    spark_conf: SparkConfOption = None,
    spark_table: SparkTableOption = None,
) -> None:
    """The reward list: rank, key, name, tier, total and grant, with the pool and ruleset in the footer."""
    _check_output(output)
    spark = _spark_settings(engine, data, spark_master, spark_conf, spark_table)
    run, name = _score(
        db, month, rules, data, scorecard, wait, require_complete, not no_record, memory_limit, spark
    )

    def table(console: Console) -> None:
        from chuanliu_cli.present.tables import render_eligible  # (rich tables only when a table is printed)

        render_eligible(console, run, name, show_all)

    _emit(run, name, fmt, output, show_all, table)


class ExplainFormat(StrEnum):
    table = "table"
    json = "json"


@command(app)
def explain(
    entity: Annotated[str, typer.Argument(help="The entity's key (a shop_id for merchants).")],
    month: MonthOption,
    scorecard: ScorecardOption = None,
    rules: RulesOption = None,
    data: DataOption = None,
    fmt: Annotated[ExplainFormat, typer.Option("--format", help="Output format.")] = ExplainFormat.table,
    output: OutOption = None,
    db: DbOption = None,
    memory_limit: MemoryLimitOption = None,
    wait: WaitOption = 60.0,
    engine: EngineOption = EngineName.duckdb,
    spark_master: SparkMasterOption = "local[*]",
    spark_conf: SparkConfOption = None,
    spark_table: SparkTableOption = None,
) -> None:
    """Why one entity is or is not eligible: every metric, score part and gate, and what it is missing."""
    import json

    from chuanliu_cli.present.tables import explanation_json, render_explanation
    from chuanliu_cli.present.writers import atomic_write
    from chuanliu_cli.scoring.explain import explain_entity

    _check_output(output)
    spark = _spark_settings(engine, data, spark_master, spark_conf, spark_table)
    run, name = _score(db, month, rules, data, scorecard, wait, False, False, memory_limit, spark)
    ex = explain_entity(run, name, entity)
    if fmt is ExplainFormat.json:
        text = json.dumps(explanation_json(ex), ensure_ascii=False, indent=2) + "\n"
        if output is None:
            sys.stdout.write(text)
        else:
            with atomic_write(output) as f:
                f.write(text)
        return
    if output is not None:
        from rich.console import Console as RichConsole

        with atomic_write(output) as f:
            render_explanation(RichConsole(file=f, width=160, no_color=True, highlight=False), ex)
        return
    render_explanation(_settings().console(), ex)


@command(app)
def runs(
    run_id: Annotated[int | None, typer.Option("--id", help="Show this run's results.")] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, help="How many recent runs to list.")] = 20,
    fmt: Annotated[ExplainFormat, typer.Option("--format", help="Output format.")] = ExplainFormat.table,
    db: DbOption = None,
    wait: WaitOption = 60.0,
) -> None:
    """List the recorded runs of `eligible`/`score`, or one run's per-entity results."""
    import json

    from chuanliu_cli.present.tables import render_run, render_runs
    from chuanliu_cli.store.database import open_database
    from chuanliu_cli.store.runs import list_runs, run_results

    with open_database(_db_path(db), "read", wait) as handle:
        if run_id is None:
            listed: Any = list_runs(handle.con, limit)
        else:
            listed = run_results(handle.con, run_id)
    if fmt is ExplainFormat.json:
        doc = listed if run_id is None else {"run": listed[0], "results": listed[1]}
        sys.stdout.write(json.dumps(doc, ensure_ascii=False, indent=2, default=str) + "\n")
        return
    console = _settings().console()
    if run_id is None:
        render_runs(console, listed)
    else:
        render_run(console, *listed)


@command(app)
def compare(
    month: MonthOption,
    against: Annotated[
        Path | None, typer.Option("--against", help="Ruleset B, compared with --rules (A).")
    ] = None,
    against_month: Annotated[
        str | None, typer.Option("--against-month", help="Compare the ruleset across two periods instead.")
    ] = None,
    scorecard: ScorecardOption = None,
    show_all: Annotated[bool, typer.Option("--all", help="List every entity, not only the summary.")] = False,
    ids: Annotated[list[str] | None, typer.Option("--id", help="Only these entities (repeatable).")] = None,
    rules: RulesOption = None,
    data: DataOption = None,
    fmt: FormatOption = None,
    output: OutOption = None,
    db: DbOption = None,
    memory_limit: MemoryLimitOption = None,
    wait: WaitOption = 60.0,
    engine: EngineOption = EngineName.duckdb,
    spark_master: SparkMasterOption = "local[*]",
    spark_conf: SparkConfOption = None,
    spark_table: SparkTableOption = None,
) -> None:
    """What-if: who enters, who leaves, tier moves and grant deltas between two rulesets (or months)."""
    from chuanliu_cli.errors import RulesetError, UsageError
    from chuanliu_cli.periods import parse_period
    from chuanliu_cli.scoring.compare import Side, compare_results
    from chuanliu_cli.scoring.pipeline import score_period

    _check_output(output)
    if (against is None) == (against_month is None):
        raise UsageError("give --against B.yaml or --against-month M2 (one of them)")
    spark = _spark_settings(engine, data, spark_master, spark_conf, spark_table)
    ruleset_a = _ruleset(rules, check=True)
    try:
        ruleset_b = _ruleset(against, check=True) if against is not None else ruleset_a
    except RulesetError as exc:
        exc.hint = f"the error is in ruleset B (--against {against})"
        raise
    period_a = parse_period(month, ruleset_a.period)
    period_b = parse_period(against_month, ruleset_b.period) if against_month else period_a
    if period_a.kind != period_b.kind:
        raise UsageError("the two rulesets score different period kinds (month vs week)")
    names = [sc.name for sc in ruleset_a.scorecards]
    name = _check_scorecard(scorecard or names[0], names)
    _check_scorecard(name, [sc.name for sc in ruleset_b.scorecards])
    with _scoring_connection(data, db, wait, memory_limit, spark) as con:
        run_a = score_period(con, ruleset_a, period_a, upto=name)
        run_b = score_period(con, ruleset_b, period_b, upto=name)
    label_a = f"{ruleset_a.name} ({Path(str(ruleset_a.path)).name})" if against else period_a.label
    label_b = f"{ruleset_b.name} ({Path(str(ruleset_b.path)).name})" if against else period_b.label
    comparison = compare_results(
        Side(label_a, run_a, run_a.scorecards[name]), Side(label_b, run_b, run_b.scorecards[name])
    )
    _emit_comparison(comparison, fmt, output, show_all, ids)


def _emit_comparison(
    comparison: Any, fmt: OutputFormat | None, output: Path | None, show_all: bool, ids: list[str] | None
) -> None:
    import json

    from chuanliu_cli.present.tables import render_comparison
    from chuanliu_cli.present.writers import atomic_write, comparison_rows, parquet_table_bytes, write_csv

    settings = _settings()
    console = settings.console()
    rows = comparison.rows
    if ids:
        rows = [r for r in rows if r["key"] in ids]
    fmt = _output_format(fmt, output, console)
    if fmt is OutputFormat.table:
        listed = rows if (show_all or ids) else None
        if output is None:
            render_comparison(console, comparison, listed)
        else:
            from rich.console import Console as RichConsole

            with atomic_write(output) as f:
                render_comparison(
                    RichConsole(file=f, width=160, no_color=True, highlight=False), comparison, listed
                )
        return
    flat = comparison_rows(rows)
    if fmt is OutputFormat.parquet:
        if output is None:
            from chuanliu_cli.errors import UsageError

            raise UsageError("parquet is binary: write it to a file with -o FILE")
        with atomic_write(output, "wb") as f:
            f.write(parquet_table_bytes(flat))
        return
    if fmt is OutputFormat.json:
        text = (
            json.dumps(
                {"scorecard": comparison.scorecard, "summary": comparison.summary(), "entities": rows},
                ensure_ascii=False,
                indent=2,
            )
            + "\n"
        )
    elif fmt is OutputFormat.jsonl:
        text = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)
    else:
        import io

        buf = io.StringIO()
        write_csv(buf, flat, list(flat[0]) if flat else ["key"])
        text = buf.getvalue()
    if output is None:
        sys.stdout.write(text)
    else:
        with atomic_write(output) as f:
            f.write(text)


@command(app)
def report(
    month: MonthOption,
    output: Annotated[Path, typer.Option("-o", "--output", help="The HTML file to write (atomically).")],
    scorecard: ScorecardOption = None,
    against_month: Annotated[
        str | None,
        typer.Option("--against-month", help="Month for the movers section [default: the previous one]."),
    ] = None,
    rules: RulesOption = None,
    data: DataOption = None,
    db: DbOption = None,
    memory_limit: MemoryLimitOption = None,
    wait: WaitOption = 60.0,
) -> None:
    """One self-contained HTML report: reward list, score distributions, gates, pool, movers, breakdowns."""
    from chuanliu_cli.periods import parse_period
    from chuanliu_cli.present.report import build_report
    from chuanliu_cli.present.writers import atomic_write
    from chuanliu_cli.scoring.compare import Side, compare_results
    from chuanliu_cli.scoring.pipeline import score_period

    _check_output(output)
    ruleset = _ruleset(rules, check=True)
    period = parse_period(month, ruleset.period)
    previous = parse_period(against_month, ruleset.period) if against_month else period.previous()
    names = [sc.name for sc in ruleset.scorecards]
    name = _check_scorecard(scorecard or names[0], names)
    with _scoring_connection(data, db, wait, memory_limit) as con:
        run = score_period(con, ruleset, period, upto=name)
        before = score_period(con, ruleset, previous, upto=name)
    movers = None
    if before.scorecards[name].frame.height:
        movers = compare_results(
            Side(previous.label, before, before.scorecards[name]),
            Side(period.label, run, run.scorecards[name]),
        )
    if not run.complete and not _settings().quiet:
        _error(f"Warning: period {period.label} is incomplete: {', '.join(run.incomplete_tables)}")
    html = build_report(run, name, movers, f"chuanliu {__version__}")
    with atomic_write(output) as f:
        f.write(html)
    if not _settings().quiet:
        _error(f"Wrote {output} ({len(html.encode()) / 1024:,.0f} KiB)")


# --- rules -------------------------------------------------------------------------------------------------

rules_app = typer.Typer(
    name="rules",
    help="Check, show and compile rulesets.",
    context_settings={"help_option_names": ["-h", "--help"]},
    no_args_is_help=True,
)
app.add_typer(rules_app, name="rules")

RulesFileArgument = Annotated[
    Path | None,
    typer.Argument(
        envvar="CHUANLIU_RULES",
        help="Ruleset YAML [default: --rules, CHUANLIU_RULES, else the bundled chuanliu-2023].",
        show_default=False,
    ),
]


@command(rules_app, "check")
def rules_check(file: RulesFileArgument = None) -> None:
    """Validate a ruleset (parse, names and types, compile against the table schemas); exit 0 or 3."""
    from rich.table import Table

    from chuanliu_cli.rules.validate import check_ruleset_against_schema

    ruleset = _ruleset(file)
    summary = check_ruleset_against_schema(ruleset)
    settings = _settings()
    if settings.quiet:
        return
    console = settings.console()
    console.print(f"{ruleset.path}: OK · {ruleset.name} · sha256 {ruleset.sha256} · period {ruleset.period}")
    table = Table(title="Scorecards", title_justify="left")
    for name in ("scorecard", "key", "metrics", "scores", "gates", "tiers", "pool"):
        table.add_column(name, justify="left" if name in ("scorecard", "key") else "right")
    for sc in summary.scorecards:
        table.add_row(
            sc.name,
            sc.key,
            str(sc.metrics),
            str(sc.scores),
            str(sc.gates),
            str(sc.tiers),
            f"{sc.pool:,}" if sc.pool is not None else "-",
        )
    console.print(table)


@command(rules_app, "show")
def rules_show(file: RulesFileArgument = None) -> None:
    """Render a ruleset as tables: metrics, scores and their parts, gates, tiers and reward."""
    from chuanliu_cli.present.ruleset import render_ruleset

    ruleset = _ruleset(file)
    console = _settings().console()
    for renderable in render_ruleset(ruleset):
        console.print(renderable)


@command(rules_app, "sql")
def rules_sql(
    month: MonthOption,
    scorecard: ScorecardOption = None,
    rules: RulesOption = None,
    dialect: Annotated[
        EngineName, typer.Option("--dialect", help="Render the SQL for this engine's dialect.")
    ] = EngineName.duckdb,
) -> None:
    """Print the SQL compiled from the ruleset for a period (every scorecard, or one)."""
    from chuanliu_cli.periods import parse_period
    from chuanliu_cli.rules.compiler import compile_scorecard

    ruleset = _ruleset(rules)
    period = parse_period(month, ruleset.period)
    names = [sc.name for sc in ruleset.scorecards]
    chosen = [_check_scorecard(scorecard, names)] if scorecard else names
    for name in chosen:
        compiled = compile_scorecard(ruleset, name, period, dialect=dialect.value)
        sys.stdout.write(f"-- scorecard {name} · {ruleset.name} · {period.label}\n{compiled.sql};\n\n")


def main() -> None:
    """Entry point of the `chuanliu` console script."""
    app(prog_name="chuanliu")


if __name__ == "__main__":  # pragma: no cover
    main()
