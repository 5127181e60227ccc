"""`chuanliu budget`: a scorecard's pools over a year, and what its budget has left."""

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
    OutOption,
    RulesOption,
    ScorecardOption,
    TableFormatOption,
    WaitOption,
    session,
)

if TYPE_CHECKING:
    from rich.console import Console

    from chuanliu_cli.present.documents import ColumnType, Document
    from chuanliu_cli.scoring.budget import BudgetYear

#: The columns of each period (csv, jsonl, parquet and the table).
BUDGET_COLUMNS = [
    "period",
    "ruleset",
    "pool",
    "allocated",
    "unallocated",
    "granted_to_date",
    "left_of_year",
    "source",
    "run_id",
    "basis",
    "complete",
    "sha256",
]


def budget(
    year: Annotated[int, typer.Option("--year", help="The year: 2023 (ISO weeks for a weekly ruleset).")],
    scorecard: ScorecardOption = None,
    rules: RulesOption = None,
    data: DataOption = None,
    fmt: TableFormatOption = None,
    output: OutOption = None,
    csv_encoding: CsvEncodingOption = None,
    labels: LabelsOption = Labels.en,
    db: DbOption = None,
    wait: WaitOption = 60.0,
) -> None:
    """Each period's pool, allocated and unallocated, and what the year's budget has left; each figure from
    the latest recorded `eligible` run of the period, or scored now with the ruleset in force then."""
    to = target(fmt, output, "table", csv_encoding=csv_encoding, labels=labels)
    with session(db, data, wait=wait) as s:
        result = s.budget(year, scorecard, rules)
    warn(result.warnings)

    def document() -> Document:
        from chuanliu_cli.present.documents import Document

        types: dict[str, ColumnType] = {c: "str" for c in BUDGET_COLUMNS}
        types["complete"] = "bool"
        for c in ("pool", "allocated", "unallocated", "granted_to_date", "left_of_year", "run_id"):
            types[c] = "int"
        return Document(result.to_dict(), result.rows, result.rows, list(BUDGET_COLUMNS), types)

    emit(to, document, lambda console: _table(console, result))


def _table(console: Console, result: BudgetYear) -> None:
    """The periods as a table, then the year's totals."""
    from rich.table import Table
    from rich.text import Text

    def n(value: int | None) -> str:
        return "-" if value is None else f"{value:,}"

    table = Table(title=f"{result.scorecard} · {result.year}", title_justify="left")
    for name in ("period", "ruleset", "pool", "allocated", "unallocated", "left of year", "from"):
        table.add_column(name, justify="right" if name not in ("period", "ruleset", "from") else "left")
    for p in result.periods:
        table.add_row(
            p.period.label,
            p.ruleset or "-",
            n(p.pool),
            n(p.allocated) if p.source != "none" else "-",
            n(p.unallocated),
            n(p.left),
            p.where,
        )
    console.print(table)
    doc = result.to_dict()
    after = doc["periods_after"]
    line = f"Granted in {result.year}: {doc['granted']:,}"
    if doc["left_of_year"] is not None:
        line += f" · left of the budget: {doc['left_of_year']:,}"
    if after:
        line += f" · {after} {result.kind}{'s' if after != 1 else ''} of the year after the data"
    console.print(Text(line, style="dim"))
    for p in result.periods:
        if p.basis and p.source == "scored" and p.basis != "fixed pool":
            console.print(Text(f"{p.period.label}: {p.basis}", style="dim"))
