"""`chuanliu rules test` output: one line per case like pytest, the failures with expected vs actual and
the explain trace, and the coverage of gates and tiers; or the same as one JSON document."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from chuanliu_cli.rules.cases import Between, MissingGate

if TYPE_CHECKING:
    from rich.console import Console

    from chuanliu_cli.scoring.casetests import CaseReport, CaseResult


def render_case_reports(
    console: Console, reports: Sequence[CaseReport], min_coverage: float | None = None
) -> None:
    """Each ruleset's report (a directory of versions has several), then the totals when there are several."""
    from rich.text import Text

    for report in reports:
        render_case_report(console, report, min_coverage)
    if len(reports) > 1:
        failed = sum(len(r.failed) for r in reports)
        total = sum(len(r.results) for r in reports)
        bad = failed or any(_below(r, min_coverage) for r in reports)
        console.print(
            Text(
                f"{len(reports)} rulesets: {total - failed} passed, {failed} failed",
                style="bold red" if bad else "bold green",
            )
        )


def failing(reports: Sequence[CaseReport], min_coverage: float | None) -> bool:
    """Whether a case failed, or a ruleset's coverage is below `min_coverage` (exit 1)."""
    return any(r.failed or _below(r, min_coverage) for r in reports)


def _below(report: CaseReport, min_coverage: float | None) -> bool:
    return min_coverage is not None and report.coverage_percent < min_coverage


def render_case_report(console: Console, report: CaseReport, min_coverage: float | None = None) -> None:
    """PASS/FAIL per case, then each failure in full, then coverage and the summary line."""
    from rich.rule import Rule
    from rich.text import Text

    from chuanliu_cli.present.tables import render_explanation

    rs = report.ruleset
    console.print(Text(f"{rs.name} · {rs.path} · cases {report.path}", style="bold"))
    for r in report.results:
        mark = Text("PASS", style="green") if r.passed else Text("FAIL", style="bold red")
        line = Text.assemble(mark, f"  {_title(r)}")
        console.print(line)
    if report.failed:
        console.print(Rule("failures"))
        for r in report.failed:
            console.print(Text(f"FAIL {_title(r)} · {r.case.loc}", style="bold red"))
            for m in r.mismatches:
                console.print(Text(f"  {m.describe()}  ({m.loc})"))
            if r.explanation is not None:
                render_explanation(console, r.explanation)
            console.print()
    console.print(Rule("coverage"))
    for name in dict.fromkeys(i.scorecard for i in report.coverage):
        items = [i for i in report.coverage if i.scorecard == name]
        parts = []
        for kind, label in (
            ("gate passes", "gates passing"),
            ("gate fails", "gates failing"),
            ("tier", "tiers"),
        ):
            of = [i for i in items if i.kind == kind]
            if of:
                parts.append(f"{label} {sum(i.seen for i in of)}/{len(of)}")
        console.print(Text(f"{name}: " + ", ".join(parts)))
    seen = sum(i.seen for i in report.coverage)
    console.print(Text(f"coverage {report.coverage_percent:.1f}% ({seen} of {len(report.coverage)})"))
    for item in report.unexercised:
        console.print(Text(f"  not exercised: {item.describe()}", style="yellow"))
    failed, total = len(report.failed), len(report.results)
    summary = f"{total - failed} passed, {failed} failed"
    if _below(report, min_coverage):
        summary += f"; coverage {report.coverage_percent:.1f}% is below --min-coverage {min_coverage:g}"
    bad = failed or _below(report, min_coverage)
    console.print(Text(summary, style="bold red" if bad else "bold green"))


def _title(r: CaseResult) -> str:
    return f"{r.case.scorecard} · {r.case.name} · {r.entity} · {r.case.period} ({r.case.kind})"


def case_reports_json(reports: Sequence[CaseReport], min_coverage: float | None = None) -> dict[str, Any]:
    """The JSON document of `rules test --format json` (shape documented in the README): each ruleset's
    report under `rulesets`, and the totals."""
    failed = sum(len(r.failed) for r in reports)
    total = sum(len(r.results) for r in reports)
    return {
        "rulesets": [case_report_json(r, min_coverage) for r in reports],
        "summary": {"rulesets": len(reports), "cases": total, "passed": total - failed, "failed": failed},
    }


def case_report_json(report: CaseReport, min_coverage: float | None = None) -> dict[str, Any]:
    """One ruleset's report as JSON."""
    from chuanliu_cli.present.documents import explanation_json

    seen = sum(i.seen for i in report.coverage)
    return {
        "ruleset": {
            "name": report.ruleset.name,
            "sha256": report.ruleset.sha256,
            "path": report.ruleset.path,
        },
        "cases_file": report.path,
        "summary": {
            "cases": len(report.results),
            "passed": len(report.results) - len(report.failed),
            "failed": len(report.failed),
        },
        "cases": [
            {
                "name": r.case.name,
                "location": str(r.case.loc),
                "scorecard": r.case.scorecard,
                "period": r.case.period,
                "kind": r.case.kind,
                "entity": r.entity,
                "passed": r.passed,
                "mismatches": [
                    {
                        "field": m.field,
                        "expected": _plain(m.expected),
                        "actual": _plain(m.actual),
                        "location": str(m.loc),
                    }
                    for m in r.mismatches
                ],
                "actual": _plain(r.actual),
                "explanation": None if r.explanation is None else explanation_json(r.explanation),
            }
            for r in report.results
        ],
        "coverage": {
            "percent": round(report.coverage_percent, 2),
            "exercised": seen,
            "total": len(report.coverage),
            "min_coverage": min_coverage,
            "items": [
                {"scorecard": i.scorecard, "kind": i.kind, "name": i.name, "cases": list(i.cases)}
                for i in report.coverage
            ],
        },
        "warnings": list(report.warnings),
    }


def _plain(value: Any) -> Any:
    """Expected and actual values as JSON: `{"between": [a, b]}`, numbers, lists and mappings."""
    import math

    if isinstance(value, Between):
        return value.low if value.low == value.high else {"between": [value.low, value.high]}
    if isinstance(value, MissingGate):
        return {name: amount for name, (amount, _loc) in value.amounts.items()}
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value
