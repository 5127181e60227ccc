"""`chuanliu explain`: one entity in full, and what it is missing."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from chuanliu_cli.cli.emit import emit, target, warn
from chuanliu_cli.cli.options import (
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


def explain(
    entity: Annotated[str, typer.Argument(help="The entity's key (a shop_id for merchants).")],
    month: MonthOption,
    scorecard: ScorecardOption = None,
    rules: RulesOption = None,
    data: DataOption = None,
    fmt: TableFormatOption = None,
    output: OutOption = None,
    db: DbOption = None,
    memory_limit: MemoryLimitOption = None,
    wait: WaitOption = 60.0,
    engine: EngineOption = EngineName.duckdb,
    spark_master: SparkMasterOption = "local[*]",
    spark_conf: SparkConfOption = None,
    spark_table: SparkTableOption = None,
) -> None:
    """Why one entity is or is not eligible: every metric, score part and gate, and what it is missing."""
    from chuanliu_cli.present.documents import explanation_document

    to = target(fmt, output, piped="table")
    with session(db, data, memory_limit, wait, engine, spark_master, spark_conf, spark_table) as s:
        result = s.explain(entity, month, scorecard, rules)
    warn(result.warnings)

    def table(console: Console) -> None:
        from chuanliu_cli.present.tables import render_explanation

        render_explanation(console, result.explanation)

    emit(to, lambda: explanation_document(result.explanation), table)
