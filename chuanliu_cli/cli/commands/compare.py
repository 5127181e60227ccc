"""`chuanliu compare`: the same data under two rulesets, or one ruleset in two periods."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from chuanliu_cli.cli.emit import emit, target, warn
from chuanliu_cli.cli.options import (
    CsvEncodingOption,
    DataOption,
    DbOption,
    EngineName,
    EngineOption,
    FormatOption,
    IdsOption,
    Labels,
    LabelsOption,
    MemoryLimitOption,
    MonthOption,
    OutOption,
    RulesOption,
    ScorecardOption,
    SparkConfOption,
    SparkMasterOption,
    SparkTableOption,
    StrictOption,
    WaitOption,
    session,
)

if TYPE_CHECKING:
    from rich.console import Console


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
    ids: IdsOption = None,
    rules: RulesOption = None,
    data: DataOption = None,
    fmt: FormatOption = None,
    output: OutOption = None,
    csv_encoding: CsvEncodingOption = None,
    labels: LabelsOption = Labels.en,
    strict: StrictOption = False,
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
    from chuanliu_cli.present.documents import comparison_document

    to = target(fmt, output, csv_encoding=csv_encoding, labels=labels)
    if (against is None) == (against_month is None):
        raise UsageError("give --against B.yaml or --against-month M2 (one of them)")
    with session(db, data, memory_limit, wait, engine, spark_master, spark_conf, spark_table) as s:
        try:
            result = s.compare(month, against, against_month, scorecard, rules, strict=strict)
        except RulesetError as exc:
            if exc.hint and exc.hint.startswith("the error is in ruleset B"):
                exc.hint = f"the error is in ruleset B (--against {against})"
            raise
    warn(result.warnings)
    cmp = result.comparison

    def table(console: Console) -> None:
        from chuanliu_cli.present.tables import render_comparison

        listed = [r for r in cmp.rows if r["key"] in ids] if ids else (cmp.rows if show_all else None)
        render_comparison(console, cmp, listed, to.labels.value)

    emit(to, lambda: comparison_document(cmp, ids), table)
