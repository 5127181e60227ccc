"""`chuanliu rules lint` output: one block per finding, as linters print them (location, severity, code,
ruleset path; the message; the fix), then the counts."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.console import Console

    from chuanliu_cli.scoring.rulelint import LintReport


def render_lint_reports(console: Console, reports: Sequence[LintReport]) -> None:
    """Each ruleset's findings (a directory of versions has several rulesets)."""
    for report in reports:
        render_lint_report(console, report)


def lint_reports_json(reports: Sequence[LintReport]) -> dict[str, Any]:
    """The JSON document of `rules lint --format json`: each ruleset's findings under `rulesets`, and the
    totals."""
    errors = sum(len(r.errors) for r in reports)
    findings = sum(len(r.findings) for r in reports)
    return {
        "rulesets": [r.to_dict() for r in reports],
        "summary": {"rulesets": len(reports), "errors": errors, "warnings": findings - errors},
    }


def render_lint_report(console: Console, report: LintReport) -> None:
    """Each finding in file order, then `N errors, M warnings` (or that the ruleset is clean)."""
    from rich.text import Text

    rs = report.ruleset
    scope = f" · data of {report.period.label}" if report.period is not None else " · the ruleset alone"
    console.print(Text(f"{rs.name} · {rs.path}{scope}", style="bold"))
    for f in report.findings:
        style = "bold red" if f.severity == "error" else "bold yellow"
        console.print(Text.assemble((f"{f.loc}: {f.severity} {f.code}", style), f"  {f.path}"))
        console.print(Text(f"  {f.message}"))
        console.print(Text(f"  fix: {f.fix}", style="dim"))
    errors = len(report.errors)
    warnings = len(report.findings) - errors
    if not report.findings:
        console.print(Text("no findings", style="bold green"))
        return
    summary = f"{errors} error{'s' if errors != 1 else ''}, {warnings} warning{'s' if warnings != 1 else ''}"
    console.print(Text(summary, style="bold red" if errors else "bold yellow"))
