"""`chuanliu report`: one self-contained HTML report."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from chuanliu_cli.cli.emit import info, warn
from chuanliu_cli.cli.options import (
    DataOption,
    DbOption,
    GroupOption,
    MemoryLimitOption,
    MonthOption,
    RulesOption,
    ScorecardOption,
    StrictOption,
    WaitOption,
    session,
)


def report(
    month: MonthOption,
    output: Annotated[Path, typer.Option("-o", "--output", help="The HTML file to write (atomically).")],
    scorecard: ScorecardOption = None,
    against_month: Annotated[
        str | None,
        typer.Option("--against-month", help="Month for the movers section [default: the previous one]."),
    ] = None,
    rules: RulesOption = None,
    data: DataOption = None,
    strict: StrictOption = False,
    top: Annotated[
        int,
        typer.Option("--top", help="Entities listed with a full breakdown, in rank order.", min=0),
    ] = 2000,
    ids: Annotated[
        list[str] | None,
        typer.Option("--id", help="Also list this entity in full (repeatable); unknown ids exit 4."),
    ] = None,
    group: GroupOption = None,
    list_out: Annotated[
        Path | None,
        typer.Option(
            "--list-out",
            help="Write every entity beside the report (.csv, .json, .jsonl or .parquet, as `score` does).",
        ),
    ] = None,
    integrity: Annotated[
        bool,
        typer.Option("--integrity/--no-integrity", help="The integrity section (flags and bunching)."),
    ] = True,
    sensitivity: Annotated[
        bool,
        typer.Option("--sensitivity", help="Add the sensitivity tornado chart (±5 %, ±20 % of each knob)."),
    ] = False,
    impact: Annotated[
        bool,
        typer.Option(
            "--impact",
            help="Add the RD and event-study plots of the previous month's grants (needs chuanliu[impact]).",
        ),
    ] = False,
    db: DbOption = None,
    memory_limit: MemoryLimitOption = None,
    wait: WaitOption = 60.0,
) -> None:
    """One self-contained HTML report: reward list, score distributions, gates, pool, movers, integrity,
    breakdowns (and, when asked, sensitivity and impact)."""
    with session(db, data, memory_limit, wait) as s:
        result = s.report(
            month,
            scorecard,
            against_month,
            rules,
            output=output,
            strict=strict,
            top=top,
            ids=ids or (),
            list_output=list_out,
            group=group,
            integrity=integrity,
            sensitivity=sensitivity,
            impact=impact,
        )
    warn(result.warnings)
    info(f"Wrote {output} ({len(result.html.encode()) / 1024:,.0f} KiB)")
    if list_out is not None:
        info(f"Wrote every entity to {list_out}")
