"""`chuanliu explain`: one entity in full, and what it is missing."""

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
    TableFormatOption,
    WaitOption,
    session,
)

if TYPE_CHECKING:
    from rich.console import Console

    from chuanliu_cli.present.documents import Document


def explain(
    entity: Annotated[str, typer.Argument(help="The entity's key (a shop_id for merchants).")],
    month: MonthOption,
    scorecard: ScorecardOption = None,
    against_month: Annotated[
        str | None,
        typer.Option("--against-month", help="Also: what moved the ranking score since this period."),
    ] = None,
    rules: RulesOption = None,
    data: DataOption = None,
    fmt: TableFormatOption = None,
    output: OutOption = None,
    csv_encoding: CsvEncodingOption = None,
    labels: LabelsOption = Labels.en,
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

    to = target(fmt, output, "table", csv_encoding=csv_encoding, labels=labels)
    from chuanliu_cli.errors import DataError

    with session(db, data, memory_limit, wait, engine, spark_master, spark_conf, spark_table) as s:
        try:
            result = s.explain(entity, month, scorecard, rules, against_month)
        except DataError as exc:
            marker = "it is scored by scorecard "
            if exc.hint and marker in exc.hint:
                other = exc.hint.rsplit(marker, 1)[1]
                exc.hint = f"{exc.hint.split(':')[0]}: add --scorecard {other}"
            raise
    warn(result.warnings)

    def table(console: Console) -> None:
        from chuanliu_cli.present.tables import render_explanation

        render_explanation(console, result.explanation, to.labels.value)
        if result.attribution is not None:
            from chuanliu_cli.present.attribution import render_attribution

            render_attribution(console, result.attribution)

    def document() -> Document:
        doc = explanation_document(result.explanation)
        if result.attribution is None:
            return doc
        from dataclasses import replace

        from chuanliu_cli.present.attribution import attribution_json, attribution_rows

        rows = attribution_rows(result.attribution, result.explanation.key)
        body = {**doc.document, "against": attribution_json(result.attribution)}
        return replace(doc, document=body, records=[*doc.records, *rows], rows=[*doc.rows, *rows])

    emit(to, document, table)
