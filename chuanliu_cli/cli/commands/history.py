"""`chuanliu history ID`: one entity month by month."""

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
    ScorecardOption,
    TableFormatOption,
    WaitOption,
    session,
)

if TYPE_CHECKING:
    from rich.console import Console


def history(
    key: Annotated[str, typer.Argument(help="The entity (shop id, promoter id, item id…).")],
    start: Annotated[str, typer.Option("--from", help="The first period, e.g. 2023-01.")],
    end: Annotated[str, typer.Option("--to", help="The last period, e.g. 2023-06.")],
    scorecard: ScorecardOption = None,
    rules: RulesOption = None,
    fmt: TableFormatOption = None,
    output: OutOption = None,
    csv_encoding: CsvEncodingOption = None,
    labels: LabelsOption = Labels.en,
    db: DbOption = None,
    wait: WaitOption = 60.0,
) -> None:
    """Per period: the ruleset version in force, eligible, failed gates, tier, rank, total and grant
    (from the recorded run of the period when its inputs are unchanged, else scored)."""
    from chuanliu_cli.present.history import history_document, render_history

    to = target(fmt, output, "table", csv_encoding=csv_encoding, labels=labels)
    with session(db, wait=wait) as s:
        result = s.history(key, start, end, scorecard, rules)
    warn(result.warnings)

    def table(console: Console) -> None:
        render_history(console, result)

    emit(to, lambda: history_document(result), table)
