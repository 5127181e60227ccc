"""`chuanliu runs diff RUN`: a recorded run's period scored again with its own ruleset on today's data."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from chuanliu_cli.cli.emit import emit, target, warn
from chuanliu_cli.cli.options import (
    CsvEncodingOption,
    DbOption,
    Labels,
    LabelsOption,
    OutOption,
    RulesOption,
    TableFormatOption,
    WaitOption,
    session,
)

if TYPE_CHECKING:
    from rich.console import Console


def runs_diff(
    run_id: Annotated[int, typer.Argument(help="The run to restate (see `chuanliu runs`).")],
    rules: RulesOption = None,
    fmt: TableFormatOption = None,
    output: OutOption = None,
    csv_encoding: CsvEncodingOption = None,
    labels: LabelsOption = Labels.en,
    db: DbOption = None,
    wait: WaitOption = 60.0,
) -> None:
    """Restate a recorded run: who would now be listed differently (eligibility, tier, grant), the
    grant delta, and the loads since the run behind each change. `-o adjustments.csv` writes the
    adjustments for the next month's operations."""
    from chuanliu_cli.present.restate import diff_document, render_diff

    to = target(fmt, output, "table", csv_encoding=csv_encoding, labels=labels)
    with session(db, wait=wait) as s:
        result = s.runs_diff(run_id, rules)
    warn(result.warnings)

    def table(console: Console) -> None:
        render_diff(console, result)

    emit(to, lambda: diff_document(result), table)
