"""`chuanliu rules check|show|sql`: validate, render and compile rulesets."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from chuanliu_cli.cli.emit import settings, warn
from chuanliu_cli.cli.options import EngineName, MonthOption, RulesOption, ScorecardOption

RulesFileArgument = Annotated[
    Path | None,
    typer.Argument(
        envvar="CHUANLIU_RULES",
        help="Ruleset YAML [default: --rules, CHUANLIU_RULES, else the bundled chuanliu-2023].",
        show_default=False,
    ),
]


def rules_check(file: RulesFileArgument = None) -> None:
    """Validate a ruleset (parse, names and types, compile against the table schemas); exit 0 or 3."""
    from rich.table import Table

    from chuanliu_cli.api import check_rules

    ruleset, summary = check_rules(file)
    warn(ruleset.warnings)  # valid, but surely not meant (a tier no entity can reach)
    if settings().quiet:
        return
    console = settings().console()
    console.print(f"{ruleset.path}: OK · {ruleset.name} · sha256 {ruleset.sha256} · period {ruleset.period}")
    table = Table(title="Scorecards", title_justify="left")
    for name in ("scorecard", "key", "metrics", "scores", "gates", "tiers", "pool"):
        table.add_column(name, justify="left" if name in ("scorecard", "key") else "right")
    for sc in summary.scorecards:
        table.add_row(
            sc.name,
            sc.key,
            str(sc.metrics),
            str(sc.scores),
            str(sc.gates),
            str(sc.tiers),
            f"{sc.pool:,}" if sc.pool is not None else "-",
        )
    console.print(table)


def rules_show(file: RulesFileArgument = None) -> None:
    """Render a ruleset as tables: metrics, scores and their parts, gates, tiers and reward."""
    from chuanliu_cli.api import load_rules
    from chuanliu_cli.present.ruleset import render_ruleset

    ruleset = load_rules(file)
    console = settings().console()
    for renderable in render_ruleset(ruleset):
        console.print(renderable)


def rules_sql(
    month: MonthOption,
    scorecard: ScorecardOption = None,
    rules: RulesOption = None,
    dialect: Annotated[
        EngineName, typer.Option("--dialect", help="Render the SQL for this engine's dialect.")
    ] = EngineName.duckdb,
) -> None:
    """Print the SQL compiled from the ruleset for a period: for each scorecard (or the one asked for), the
    one query that computes every metric of every entity (key, then each metric as a column), in the
    engine's dialect, as `chuanliu score` runs it. Nothing is run; no database is needed."""
    from chuanliu_cli.api import compile_rules

    ruleset, period, compiled = compile_rules(month, scorecard, rules, dialect.value)
    for name, sql in compiled:
        sys.stdout.write(f"-- scorecard {name} · {ruleset.name} · {period.label}\n{sql};\n\n")
