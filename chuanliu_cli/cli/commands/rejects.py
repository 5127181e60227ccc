"""`chuanliu rejects`: the rejected rows that `load` kept, with file, line, reason and the raw record."""

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

    from chuanliu_cli.present.documents import Document


def rejects(
    load_id: Annotated[
        int | None, typer.Option("--load", help="Only this load's rejected rows (its id in `status`).")
    ] = None,
    table: Annotated[
        str | None, typer.Option("--table", help="Only rows rejected from this table (orders, reviews, ...).")
    ] = None,
    limit: Annotated[
        int | None, typer.Option("--limit", min=1, help="At most this many rows [default: all].")
    ] = None,
    fmt: TableFormatOption = None,
    output: OutOption = None,
    csv_encoding: CsvEncodingOption = None,
    labels: LabelsOption = Labels.en,
    db: DbOption = None,
    wait: WaitOption = 60.0,
) -> None:
    """List the rows `load` rejected: load id, table, file, line, reason and the raw record, newest load
    first. The same rows in every format (table, csv, json, jsonl, parquet)."""
    to = target(fmt, output, "table", csv_encoding=csv_encoding, labels=labels)
    with session(db, wait=wait) as s:
        result = s.rejects(load_id, table, limit)

    def document() -> Document:
        from chuanliu_cli.present.documents import ColumnType, Document

        rows = [dict(r) for r in result.rows]
        types: dict[str, ColumnType] = {c: "int" if c == "load_id" else "str" for c in result.columns}
        return Document(result.to_dict(), rows, rows, list(result.columns), types)

    def table_view(console: Console) -> None:
        from chuanliu_cli.present.tables import render_rejects

        render_rejects(console, result.rows, result.total, to.labels.value)

    emit(to, document, table_view)
