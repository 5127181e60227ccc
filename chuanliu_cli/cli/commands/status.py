"""`chuanliu status`: what the database holds."""

from __future__ import annotations

from typing import TYPE_CHECKING

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


def status(
    fmt: TableFormatOption = None,
    output: OutOption = None,
    csv_encoding: CsvEncodingOption = None,
    labels: LabelsOption = Labels.en,
    db: DbOption = None,
    wait: WaitOption = 60.0,
) -> None:
    """Show what is loaded: rows per table, months covered, last loads, rejects, complete months."""
    from chuanliu_cli.present.documents import status_document

    to = target(fmt, output, "table", csv_encoding=csv_encoding, labels=labels)
    with session(db, wait=wait) as s:
        result = s.status()

    def table(console: Console) -> None:
        from chuanliu_cli.present.tables import render_status

        render_status(console, result.status, result.path, to.labels.value)

    emit(to, lambda: status_document(result.status, result.path), table)
