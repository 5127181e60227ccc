"""`chuanliu score` and `chuanliu eligible`: a scored period, as a table or data."""

from __future__ import annotations

import contextlib
import shlex
import sys
from dataclasses import replace
from typing import TYPE_CHECKING, Annotated

import typer

from chuanliu_cli.cli.emit import emit, info, target, warn
from chuanliu_cli.cli.options import (
    CsvEncodingOption,
    DataOption,
    DbOption,
    EngineName,
    EngineOption,
    FormatOption,
    GroupOption,
    IdsOption,
    Labels,
    LabelsOption,
    MemoryLimitOption,
    MonthOption,
    NoRecordOption,
    OutOption,
    RequireCompleteOption,
    RulesOption,
    ScorecardOption,
    SparkConfOption,
    SparkMasterOption,
    SparkTableOption,
    StrictOption,
    TopOption,
    WaitOption,
    session,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from rich.console import Console

    from chuanliu_cli.api import ScoreResult, Session
    from chuanliu_cli.cli.emit import Target
    from chuanliu_cli.present.documents import Document, EntityDocument


def command_line() -> str:
    """This invocation as a shell line, recorded with the run."""
    return "chuanliu " + " ".join(shlex.quote(a) for a in sys.argv[1:])


@contextlib.contextmanager
def flag_hints() -> Iterator[None]:
    """The library's errors, with the hint in terms of this command's flags where one applies."""
    from chuanliu_cli.errors import IncompletePeriodError

    try:
        yield
    except IncompletePeriodError as exc:
        exc.hint = "load the rest of the period, or drop --require-complete"
        raise


def table_limit(console: Console, everything: bool) -> int | None:
    """How many rows a score/eligible table shows: the first TERMINAL_ROWS on a terminal, unless
    `everything` (--all, or rows already chosen with --top or --id); every row in a pipe or a file."""
    from chuanliu_cli.present.tables import TERMINAL_ROWS

    return TERMINAL_ROWS if console.is_terminal and not everything else None


def emit_recorded(
    s: Session,
    result: ScoreResult,
    to: Target,
    document: Callable[[], Document | EntityDocument],
    table: Callable[[Console], None],
) -> None:
    """Write the output while the run's rows go into the database (Session.recording: committed once the
    output is written, so that a list that could not be written is not a published one), then say where
    the run is. When only the recording fails, its error says that the output was written."""
    from chuanliu_cli.errors import ChuanliuError

    written = False
    try:
        with s.recording(result) as run:
            emit(to, document, table)
            written = True
    except ChuanliuError as exc:
        if written:
            where = f" to {to.output}" if to.output is not None else ""
            exc.details = [*exc.details, f"the output was written{where}; this run was not recorded"]
        raise
    recorded(run.result)


def recorded(result: ScoreResult) -> None:
    """Where the run was read from or recorded, if it was."""
    if result.run_id is not None and result.stored:
        info(
            f"Read from recorded run {result.run_id} (same ruleset, tool version and data; "
            f"chuanliu runs --id {result.run_id})"
        )
    elif result.run_id is not None:
        info(f"Recorded as run {result.run_id} (chuanliu runs --id {result.run_id})")


def score(
    month: MonthOption,
    scorecard: ScorecardOption = None,
    top: TopOption = None,
    ids: IdsOption = None,
    group: GroupOption = None,
    show_all: Annotated[
        bool,
        typer.Option("--all", help="On a terminal, show every row (the table shows the first 50)."),
    ] = False,
    rules: RulesOption = None,
    data: DataOption = None,
    fmt: FormatOption = None,
    output: OutOption = None,
    csv_encoding: CsvEncodingOption = None,
    labels: LabelsOption = Labels.en,
    no_record: NoRecordOption = False,
    require_complete: RequireCompleteOption = False,
    strict: StrictOption = False,
    db: DbOption = None,
    memory_limit: MemoryLimitOption = None,
    wait: WaitOption = 60.0,
    engine: EngineOption = EngineName.duckdb,
    spark_master: SparkMasterOption = "local[*]",
    spark_conf: SparkConfOption = None,
    spark_table: SparkTableOption = None,
) -> None:
    """Every entity of a scorecard ranked, with each score, eligibility (and failed gates) and tier."""
    from chuanliu_cli.present.documents import scores_document

    to = target(fmt, output, csv_encoding=csv_encoding, labels=labels)
    with (
        flag_hints(),
        session(db, data, memory_limit, wait, engine, spark_master, spark_conf, spark_table) as s,
    ):
        result = s.score(
            month,
            scorecard,
            rules,
            ids=ids,
            top=top,
            record=not no_record,
            require_complete=require_complete,
            command=command_line(),
            strict=strict,
            group=group,
            record_later=True,
        )
    warn(result.warnings)
    if result.stored:
        recorded(result)  # (read back from a recorded run)

    def table(console: Console) -> None:
        from chuanliu_cli.present.tables import render_scores

        render_scores(
            console,
            result.run,
            result.scorecard,
            result.frame,
            result.warnings,
            result.population,
            limit=table_limit(console, show_all or top is not None or bool(ids) or group is not None),
            labels=to.labels.value,
        )

    emit_recorded(
        s,
        result,
        to,
        lambda: scores_document(
            result.run, result.scorecard, True, result.warnings, result.population, result.selected
        ),
        table,
    )


def eligible(
    month: MonthOption,
    scorecard: ScorecardOption = None,
    show_all: Annotated[
        bool,
        typer.Option(
            "--all",
            help="Also list ineligible entities with their reasons; on a terminal, show every row (the "
            "table shows the first 50).",
        ),
    ] = False,
    top: TopOption = None,
    ids: Annotated[
        list[str] | None,
        typer.Option("--id", help="Only these entities, eligible or not (repeatable); unknown ids exit 4."),
    ] = None,
    group: GroupOption = None,
    rules: RulesOption = None,
    data: DataOption = None,
    fmt: FormatOption = None,
    output: OutOption = None,
    csv_encoding: CsvEncodingOption = None,
    labels: LabelsOption = Labels.en,
    no_record: NoRecordOption = False,
    require_complete: RequireCompleteOption = False,
    strict: StrictOption = False,
    db: DbOption = None,
    memory_limit: MemoryLimitOption = None,
    wait: WaitOption = 60.0,
    engine: EngineOption = EngineName.duckdb,
    spark_master: SparkMasterOption = "local[*]",
    spark_conf: SparkConfOption = None,
    spark_table: SparkTableOption = None,
) -> None:
    """The reward list: rank, key, name, tier, total and grant, with the pool and ruleset in the footer."""
    from chuanliu_cli.present.documents import scores_document

    to = target(fmt, output, csv_encoding=csv_encoding, labels=labels)
    with (
        flag_hints(),
        session(db, data, memory_limit, wait, engine, spark_master, spark_conf, spark_table) as s,
    ):
        result = s.eligible(
            month,
            scorecard,
            rules,
            record=not no_record,
            require_complete=require_complete,
            include_ineligible=show_all,
            command=command_line(),
            strict=strict,
            ids=ids,
            group=group,
            record_later=True,
        )
    chosen = bool(ids) or group is not None  # the entities asked for are listed, eligible or not
    warn(result.warnings)
    if top is not None and result.frame.height > top:
        # only the rows listed change: ranks, grants and totals stay those of everyone (as score --top)
        result = replace(result, selected=result.frame.head(top))

    def table(console: Console) -> None:
        from chuanliu_cli.present.tables import render_eligible  # (rich tables only when a table is printed)

        render_eligible(
            console,
            result.run,
            result.scorecard,
            show_all or chosen,
            result.warnings,
            result.population,
            result.selected,
            limit=table_limit(console, show_all or top is not None or chosen),
            labels=to.labels.value,
        )

    emit_recorded(
        s,
        result,
        to,
        lambda: scores_document(
            result.run,
            result.scorecard,
            show_all or chosen,
            result.warnings,
            result.population,
            result.selected,
        ),
        table,
    )
