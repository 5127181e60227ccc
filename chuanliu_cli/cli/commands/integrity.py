"""`chuanliu integrity`: the rows the integrity flags catch in a period, and threshold bunching."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from chuanliu_cli.cli.emit import emit, target, warn
from chuanliu_cli.cli.options import (
    CsvEncodingOption,
    DataOption,
    DbOption,
    EngineName,
    EngineOption,
    MemoryLimitOption,
    MonthOption,
    OutOption,
    RulesOption,
    ScorecardOption,
    SparkConfOption,
    SparkMasterOption,
    SparkTableOption,
    TableFormatOption,
    WaitOption,
    session,
)

if TYPE_CHECKING:
    from rich.console import Console


def integrity(
    month: MonthOption,
    scorecard: ScorecardOption = None,
    rows: Annotated[
        bool,
        typer.Option("--rows", help="List every flagged row (flag, table, key, shop, promoter, buyer…)."),
    ] = False,
    rules: RulesOption = None,
    data: DataOption = None,
    fmt: TableFormatOption = None,
    output: OutOption = None,
    csv_encoding: CsvEncodingOption = None,
    db: DbOption = None,
    memory_limit: MemoryLimitOption = None,
    wait: WaitOption = 60.0,
    engine: EngineOption = EngineName.duckdb,
    spark_master: SparkMasterOption = "local[*]",
    spark_conf: SparkConfOption = None,
    spark_table: SparkTableOption = None,
) -> None:
    """Gaming in a period: brushing and self-purchase orders, idle live sessions and suspicious reviews
    (rows, GMV and shops per flag; the entities with the largest flagged share), and bunching of entities
    just over each gate and tier threshold (binomial test). csv/jsonl/parquet: one line per flag, or
    every flagged row with --rows."""
    from chuanliu_cli.present.integrity import integrity_document, render_integrity

    to = target(fmt, output, "table", csv_encoding=csv_encoding)
    with session(db, data, memory_limit, wait, engine, spark_master, spark_conf, spark_table) as s:
        result = s.integrity(month, scorecard, rules, rows)
    warn(result.warnings)

    def table(console: Console) -> None:
        render_integrity(console, result)

    emit(to, lambda: integrity_document(result), table)
