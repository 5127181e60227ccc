"""`chuanliu runs`: the recorded runs, or one run's per-entity results."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from chuanliu_cli.cli.emit import emit, target
from chuanliu_cli.cli.options import (
    CsvEncodingOption,
    DbOption,
    Labels,
    LabelsOption,
    OutOption,
    TableFormatOption,
    WaitOption,
    session,
)

if TYPE_CHECKING:
    from rich.console import Console

    from chuanliu_cli.present.documents import Document, FrameDocument


def runs(
    ctx: typer.Context,
    run_id: Annotated[int | None, typer.Option("--id", help="Show this run's results.")] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, help="How many recent runs to list.")] = 20,
    fmt: TableFormatOption = None,
    output: OutOption = None,
    csv_encoding: CsvEncodingOption = None,
    labels: LabelsOption = Labels.en,
    db: DbOption = None,
    wait: WaitOption = 60.0,
) -> None:
    """List the recorded runs of `eligible`/`score`, or one run's per-entity results; `runs diff RUN`
    restates a run on today's data."""
    if ctx.invoked_subcommand is not None:
        return
    to = target(fmt, output, "table", csv_encoding=csv_encoding, labels=labels)
    with session(db, wait=wait) as s:
        result = s.runs(run_id, limit)

    def document() -> Document | FrameDocument:
        from chuanliu_cli.present.documents import run_detail_document, runs_document

        if result.run is None:
            return runs_document(list(result.runs))
        assert result.table is not None  # (a run's results always come with it)
        return run_detail_document(result.run, result.table)

    def table(console: Console) -> None:
        from chuanliu_cli.present.tables import render_run, render_runs

        if result.run is None:
            render_runs(console, list(result.runs), to.labels.value)
        else:
            assert result.table is not None
            render_run(console, result.run, result.table, to.labels.value)

    emit(to, document, table)
