"""`chuanliu rules check|show|sql|test|lint`: validate, render, compile, test and lint rulesets."""

from __future__ import annotations

import sys
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from chuanliu_cli.cli.emit import emit, settings, target, warn
from chuanliu_cli.cli.options import (
    DataOption,
    DbOption,
    EngineName,
    MemoryLimitOption,
    MonthOption,
    OutOption,
    OutputFormat,
    RulesOption,
    ScorecardOption,
    WaitOption,
    session,
)
from chuanliu_cli.errors import UsageError

if TYPE_CHECKING:
    from rich.console import Console

    from chuanliu_cli.present.documents import Document

RulesFileArgument = Annotated[
    Path | None,
    typer.Argument(
        envvar="CHUANLIU_RULES",
        help="Ruleset YAML [default: --rules, CHUANLIU_RULES, else the bundled chuanliu-2023].",
        show_default=False,
    ),
]


def _versions(file: Path | None) -> list[Any] | None:
    """The rulesets of a directory of versions (checked together: ranges, period kinds), or None for a
    file; the bundled default is such a directory."""
    from chuanliu_cli.rules.effective import default_rules_dir, load_versions

    directory = default_rules_dir() if file is None else file
    if not directory.is_dir():
        return None
    return list(load_versions(directory, check=True).rulesets)


def rules_check(file: RulesFileArgument = None) -> None:
    """Validate a ruleset, or every version in a directory of rulesets (parse, names and types, compile
    against the table schemas; a directory's ranges must neither overlap nor mix period kinds); exit 0 or
    3."""
    versions = _versions(file)
    for ruleset in versions if versions is not None else [file]:
        _check_one(ruleset)


def _check_one(rules: Any) -> None:
    from rich.table import Table

    from chuanliu_cli.api import check_rules

    ruleset, summary = check_rules(rules)
    warn(ruleset.warnings)  # valid, but surely not meant (a tier no entity can reach)
    if settings().quiet:
        return
    console = settings().console()
    if ruleset.effective is not None:
        console.print(f"{ruleset.name}: effective {ruleset.effective.text}")
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
    """Render a ruleset (or every version in a directory) as tables: metrics, scores and their parts,
    gates, tiers and reward."""
    from chuanliu_cli.api import load_rules
    from chuanliu_cli.present.ruleset import render_ruleset

    versions = _versions(file)
    console = settings().console()
    for ruleset in versions if versions is not None else [load_rules(file)]:
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


class CasesFormat(StrEnum):
    """`rules test` and `rules lint` write a report (table) or its JSON document."""

    table = "table"
    json = "json"


def rules_test(
    file: RulesFileArgument = None,
    cases: Annotated[
        Path | None,
        typer.Option("--cases", help="The case file [default: <ruleset>.cases.yaml beside the ruleset]."),
    ] = None,
    min_coverage: Annotated[
        float | None,
        typer.Option(
            "--min-coverage",
            min=0,
            max=100,
            help="Exit 1 unless this percentage of the gate outcomes (each gate passing and failing) and "
            "tiers of every scorecard was exercised by some case.",
        ),
    ] = None,
    fmt: Annotated[
        CasesFormat | None,
        typer.Option("--format", help="table, or the JSON document [default: -o's suffix, else table]."),
    ] = None,
    output: OutOption = None,
) -> None:
    """Run the ruleset's test cases: one line per case (PASS/FAIL), each failure with expected vs actual and
    the explanation, and the coverage of gates and tiers. Exit 0 when every case passes (and the coverage
    reaches --min-coverage), 1 otherwise, 3 for an invalid ruleset or case file."""
    from chuanliu_cli.api import run_rule_cases
    from chuanliu_cli.present.casetests import case_reports_json, failing, render_case_reports

    to = target(OutputFormat(fmt.value) if fmt is not None else None, output, piped="table")
    reports = run_rule_cases(file, cases)
    warn(w for r in reports for w in r.warnings)

    def table(console: Console) -> None:
        render_case_reports(console, reports, min_coverage)

    def document() -> Document:
        doc = case_reports_json(reports, min_coverage)
        return _report_document(doc, [c for r in doc["rulesets"] for c in r["cases"]])

    emit(to, document, table)
    if failing(reports, min_coverage):
        raise typer.Exit(1)


def _report_document(document: dict[str, Any], records: list[dict[str, Any]]) -> Document:
    """A report's JSON document (json); `records` are the records of jsonl and the rows of csv."""
    from chuanliu_cli.present.documents import Document

    columns = list(dict.fromkeys(k for r in records for k in r))
    return Document(document, records, records, columns)


class FailOn(StrEnum):
    """Which findings make `rules lint` exit 1."""

    error = "error"
    warning = "warning"


def rules_lint(
    file: RulesFileArgument = None,
    month: Annotated[
        str | None,
        typer.Option(
            "--month",
            help="Also lint against this period's data (--data DIR or the database): normalizer ranges "
            "beyond the values, tiers nobody reached, a pool that cannot be spent.",
        ),
    ] = None,
    data: DataOption = None,
    fmt: Annotated[
        CasesFormat | None,
        typer.Option("--format", help="table, or the JSON document [default: -o's suffix, else table]."),
    ] = None,
    output: OutOption = None,
    fail_on: Annotated[
        FailOn,
        typer.Option("--fail-on", help="Exit 1 on errors only (default), or on warnings too."),
    ] = FailOn.error,
    db: DbOption = None,
    memory_limit: MemoryLimitOption = None,
    wait: WaitOption = 60.0,
) -> None:
    """Lint a ruleset's design: unreachable tiers, multipliers that do not rise, weights that cannot matter,
    gates implied by others; with --month, against the period's data too. Each finding has a code, the
    ruleset path, FILE:LINE:COL, a message and a fix. Exit 0 when no error (warnings are printed), 1 when
    an error (or, with --fail-on warning, any finding), 3 for an invalid ruleset."""
    from chuanliu_cli.present.rulelint import lint_reports_json, render_lint_reports

    to = target(OutputFormat(fmt.value) if fmt is not None else None, output, piped="table")
    if month is None:
        if data is not None:
            raise UsageError("--data is read with --month: give the period to lint against")
        from chuanliu_cli.api import lint_rules

        reports = lint_rules(file)
    else:
        with session(db, data, memory_limit, wait) as s:
            reports = (s.lint_rules(month, file),)
    warn(dict.fromkeys(w for r in reports for w in r.warnings))

    def table(console: Console) -> None:
        render_lint_reports(console, reports)

    def document() -> Document:
        doc = lint_reports_json(reports)
        return _report_document(doc, [f for r in doc["rulesets"] for f in r["findings"]])

    emit(to, document, table)
    errors = any(r.errors for r in reports)
    if errors or (fail_on is FailOn.warning and any(r.findings for r in reports)):
        raise typer.Exit(1)
