"""`chuanliu impact`: did the traffic granted in a period change an outcome in the periods after it?"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from chuanliu_cli.cli.emit import emit, target, warn
from chuanliu_cli.cli.options import (
    CsvEncodingOption,
    DataOption,
    DbOption,
    Labels,
    LabelsOption,
    MemoryLimitOption,
    MonthOption,
    OutOption,
    RulesOption,
    ScorecardOption,
    StrictOption,
    TableFormatOption,
    WaitOption,
    session,
)

if TYPE_CHECKING:
    from rich.console import Console


def impact(
    month: MonthOption,
    outcome: Annotated[
        str, typer.Option("--outcome", help="The scorecard's metric measured after the grant.")
    ] = "self_live_gmv",
    horizon: Annotated[
        int,
        typer.Option(
            "--horizon", min=1, max=3, help="Periods after the grant period whose (mean) outcome is measured."
        ),
    ] = 1,
    scorecard: ScorecardOption = None,
    rules: RulesOption = None,
    data: DataOption = None,
    fmt: TableFormatOption = None,
    output: OutOption = None,
    csv_encoding: CsvEncodingOption = None,
    labels: LabelsOption = Labels.en,
    strict: StrictOption = False,
    db: DbOption = None,
    memory_limit: MemoryLimitOption = None,
    wait: WaitOption = 60.0,
) -> None:
    """Estimate the effect of the grants of --month on --outcome in the following period(s): regression
    discontinuity at each tier cutoff and difference-in-differences over the periods the data covers, as the
    relative change for a full cap, with 95 % intervals, N and checks (pip install 'chuanliu[impact]')."""
    from chuanliu_cli.impact.result import impact_document

    to = target(fmt, output, "table", csv_encoding=csv_encoding, labels=labels)
    with session(db, data, memory_limit, wait) as s:
        result = s.impact(month, outcome, horizon, scorecard, rules, strict=strict)
    warn(result.warnings)

    def table(console: Console) -> None:
        from chuanliu_cli.present.impact_tables import render_impact

        render_impact(console, result)

    emit(to, lambda: impact_document(result), table)
