"""The shared options, defined once (Annotated bundles), and the one place they become a library Session."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from chuanliu_cli.api import Session


class OutputFormat(StrEnum):
    """Every command that writes data writes these (present/writers.py)."""

    table = "table"
    csv = "csv"
    json = "json"
    jsonl = "jsonl"
    parquet = "parquet"
    xlsx = "xlsx"


class CsvEncoding(StrEnum):
    """The encodings of csv output: UTF-8, UTF-8 with a BOM (Excel), GB18030 (older Excel/WPS on Chinese
    Windows; it encodes every Unicode character, so it cannot fail)."""

    utf8 = "utf-8"
    utf8_sig = "utf-8-sig"
    gb18030 = "gb18030"


class Labels(StrEnum):
    """Column headers of tabular output: the stable English names, or Chinese (the ruleset's labels)."""

    en = "en"
    zh = "zh"


class EngineName(StrEnum):
    duckdb = "duckdb"
    spark = "spark"


class DuplicatePolicy(StrEnum):
    """Which occurrence of a key repeated with different values in one file is kept (or refuse the file)."""

    last = "last"
    first = "first"
    error = "error"


DbOption = Annotated[
    str | None,
    typer.Option("--db", envvar="CHUANLIU_DB", help="The database file [default: ./chuanliu.duckdb]."),
]
MemoryLimitOption = Annotated[
    str | None,
    typer.Option("--memory-limit", help="DuckDB memory limit, e.g. 4GB; past it DuckDB spills to disk."),
]
WaitOption = Annotated[
    float, typer.Option("--wait", min=0, help="Seconds to wait for another process holding the database.")
]
MonthOption = Annotated[str, typer.Option("--month", help="The period to score: 2023-05 (or 2023-W18).")]
ScorecardOption = Annotated[
    str | None, typer.Option("--scorecard", help="Which scorecard [default: the first, merchant].")
]
RulesOption = Annotated[
    Path | None,
    typer.Option(
        "--rules",
        envvar="CHUANLIU_RULES",
        help="Ruleset YAML, or a directory of versions with `effective` ranges (the one in force in the "
        "period is used) [default: the bundled chuanliu-2023-01 (2023-01..04), chuanliu-2023 (2023-05..)].",
    ),
]
DataOption = Annotated[
    Path | None,
    typer.Option(
        "--data", help="Score the exports in DIR in memory (validated like `load`), instead of --db."
    ),
]
FormatOption = Annotated[
    OutputFormat | None,
    typer.Option(
        "--format",
        help="Output format [default: from the -o file's suffix, else table on a terminal, csv otherwise].",
    ),
]
TableFormatOption = Annotated[
    OutputFormat | None,
    typer.Option("--format", help="Output format [default: from the -o file's suffix, else table]."),
]
OutOption = Annotated[
    Path | None,
    typer.Option(
        "-o",
        "--output",
        help="Write to FILE (atomically); a .csv .json .jsonl .parquet .xlsx name implies the format.",
    ),
]
CsvEncodingOption = Annotated[
    CsvEncoding | None,
    typer.Option(
        "--csv-encoding",
        help="Encoding of csv output: utf-8-sig for Excel, gb18030 for older Excel/WPS on Chinese Windows "
        "[default: utf-8].",
    ),
]
LabelsOption = Annotated[
    Labels,
    typer.Option(
        "--labels",
        help="Column headers of csv, xlsx, parquet and table: en, or zh (the ruleset's Chinese labels); "
        "json and jsonl keep the English keys.",
    ),
]
NoRecordOption = Annotated[
    bool, typer.Option("--no-record", help="Do not record this run in the database's `runs` table.")
]
RequireCompleteOption = Annotated[
    bool, typer.Option("--require-complete", help="Exit 6 if the period's data is incomplete.")
]
StrictOption = Annotated[
    bool,
    typer.Option(
        "--strict",
        help="Any warning (missing history, rejected rows, a gate nobody passes, ...) is exit 7, before any "
        "output file is written or the run recorded.",
    ),
]
MaxRejectRowsOption = Annotated[
    int,
    typer.Option(
        "--max-reject-rows",
        min=0,
        help="A file is refused only when its bad rows exceed both --max-reject-rate and this many rows.",
    ),
]
OnDuplicateOption = Annotated[
    DuplicatePolicy,
    typer.Option(
        "--on-duplicate",
        help="A key repeated in one file with different values: keep the last or first occurrence (the "
        "others go to rejected_rows), or error: refuse the load (exit 4).",
    ),
]
AllowRegressOption = Annotated[
    bool,
    typer.Option(
        "--allow-regress",
        help="Apply updates that move rows backwards (an order's status, a lower refund, an older review): "
        "the file is newer than what is stored. Without it the stored rows are kept, with a warning.",
    ),
]
IdsOption = Annotated[list[str] | None, typer.Option("--id", help="Only these entities (repeatable).")]
GroupOption = Annotated[
    str | None,
    typer.Option(
        "--group",
        metavar="GROUP_ID",
        help="Only one owner's shops (多店多号): the shops whose group_id in shops is GROUP_ID; with a "
        "scorecard grouped by key_from, that group. Unknown groups exit 4.",
    ),
]
TopOption = Annotated[
    int | None,
    typer.Option(
        "--top",
        min=1,
        help="Only the first N entities, in every format (ranks, grants and totals stay those of everyone).",
    ),
]
EngineOption = Annotated[
    EngineName,
    typer.Option(
        "--engine",
        help="Where the metric queries run: duckdb, or spark (pip install 'chuanliu[spark]'; reads --data "
        "or --spark-table).",
    ),
]
SparkMasterOption = Annotated[
    str, typer.Option("--spark-master", help="Spark master URL for --engine spark, e.g. yarn.")
]
SparkConfOption = Annotated[
    list[str] | None,
    typer.Option("--spark-conf", help="A Spark setting KEY=VALUE for --engine spark (repeatable)."),
]
SparkTableOption = Annotated[
    list[str] | None,
    typer.Option(
        "--spark-table",
        help="TABLE=NAME: read a table from Spark's catalog, e.g. orders=db.orders (repeatable).",
    ),
]


def session(
    db: str | None = None,
    data: Path | None = None,
    memory_limit: str | None = None,
    wait: float = 60.0,
    engine: EngineName = EngineName.duckdb,
    spark_master: str = "local[*]",
    spark_conf: list[str] | None = None,
    spark_table: list[str] | None = None,
) -> Session:
    """The library Session the data options describe: --data in memory, else --db (or the global --db,
    CHUANLIU_DB, ./chuanliu.duckdb), or Spark over --data or --spark-table."""
    from chuanliu_cli.api import Session
    from chuanliu_cli.cli.emit import settings
    from chuanliu_cli.errors import UsageError

    if engine is EngineName.duckdb:
        if spark_conf or spark_table:
            raise UsageError("--spark-conf and --spark-table need --engine spark")
        if data is not None:
            return Session(data=data, memory_limit=memory_limit, wait=wait)
        return Session(db=db or settings().db, memory_limit=memory_limit, wait=wait)
    from chuanliu_cli.engines.spark import SparkSettings, parse_pairs, spark_tables

    named = spark_tables(parse_pairs(spark_table or [], "--spark-table"))
    if data is None and not named:
        raise UsageError(
            "--engine spark reads --data DIR or --spark-table TABLE=NAME, not the database",
            hint="e.g. --engine spark --data exports/ or --spark-table orders=db.orders ...",
        )
    spark = SparkSettings(
        master=spark_master,
        conf=parse_pairs(spark_conf or [], "--spark-conf"),
        data=str(data) if data is not None else None,
        tables=named,
    )
    return Session(engine="spark", spark=spark, memory_limit=memory_limit, wait=wait)
