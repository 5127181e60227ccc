"""`chuanliu rules lint` output: one block per finding, as linters print them (location, severity, code,
ruleset path; the message; the fix), then the counts."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rich.console import Console

    from chuanliu_cli.scoring.rulelint import LintReport


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
