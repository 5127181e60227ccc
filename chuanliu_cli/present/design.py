"""`rules calibrate` and `rules sensitivity`: their documents (json, csv, ...) and terminal tables."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rich.table import Table
from rich.text import Text

from chuanliu_cli.present.documents import Document

if TYPE_CHECKING:
    from rich.console import Console

    from chuanliu_cli.design.calibrate import Calibration
    from chuanliu_cli.design.sensitivity import Sensitivity

#: The flat columns of `rules sensitivity` (one row per knob and delta) in csv, jsonl and parquet.
SENSITIVITY_COLUMNS = ["path", "value", "delta", "to", "eligible", "entrants", "leavers", "grant_moved"]


def _number(value: float) -> str:
    from chuanliu_cli.rules.tuning import number_text

    text = number_text(value)
    return f"{int(value):,}" if "." not in text and abs(value) >= 10_000 else text


def sensitivity_document(document: dict[str, Any], sensitivity: Sensitivity) -> Document:
    """The JSON document as given (SPEC §10), and one flat row per knob and delta."""
    rows = [
        {
            "path": k.knob.path,
            "value": k.knob.value,
            "delta": c.delta,
            "to": c.value,
            "eligible": c.eligible,
            "entrants": c.entrants,
            "leavers": c.leavers,
            "grant_moved": c.grant_moved,
        }
        for k in sensitivity.knobs
        for c in k.changes
    ]
    return Document(document, rows, rows, SENSITIVITY_COLUMNS)


def render_sensitivity(console: Console, sensitivity: Sensitivity, period: str) -> None:
    """One row per knob; per delta: entrants, leavers and grant moved against the ruleset as written."""
    s = sensitivity
    allocated = f" · allocated {s.allocated:,}" if s.allocated is not None else ""
    console.print(
        Text(f"{s.scorecard} · {period} · as written: {s.eligible} eligible{allocated}", style="bold")
    )
    deltas = [c.delta for c in s.knobs[0].changes] if s.knobs else []
    table = Table(
        title="Sensitivity: +entrants −leavers · grant moved (Σ|Δ grant| / 2)", title_justify="left"
    )
    table.add_column("knob")
    table.add_column("as written", justify="right")
    for d in deltas:
        table.add_column(f"{d:+.0%}", justify="right")
    for k in s.knobs:
        cells = []
        for c in k.changes:
            if c.eligible is None:
                cells.append("invalid")
                continue
            moved = f" · {c.grant_moved:,}" if c.grant_moved is not None else ""
            cells.append(
                "·"
                if not (c.entrants or c.leavers or c.grant_moved)
                else f"+{c.entrants} −{c.leavers}{moved}"
            )
        table.add_row(k.knob.path, _number(k.knob.value), *cells)
    console.print(table)


def calibration_document(document: dict[str, Any]) -> Document:
    """The JSON document as given; one flat row per target (and period) for csv."""
    rows = [dict(t) for t in document["targets"]]
    return Document(document, rows, rows, ["target", "period", "actual", "share", "met", "distance"])


def render_calibration(console: Console, calibration: Calibration, output: str) -> None:
    """The values chosen, each target as met or missed, and the comparison with the old ruleset."""
    from chuanliu_cli.present.tables import render_comparison

    c = calibration
    s = c.search
    values = Table(
        title=f"Values chosen for {c.scorecard} ({s.evaluations} variants evaluated)", title_justify="left"
    )
    for name in ("tunable", "range", "chosen"):
        values.add_column(name, justify="left" if name == "tunable" else "right")
    for t in c.tunables:
        note = "" if t.path not in s.unused else " (no target depends on it)"
        values.add_row(t.path, f"[{_number(t.low)}, {_number(t.high)}]", _number(s.chosen[t.path]) + note)
    console.print(values)
    targets = Table(title="Targets", title_justify="left")
    for name in ("target", "period", "actual", "share", "", "distance (pp)"):
        targets.add_column(name, justify="left" if name in ("target", "period", "") else "right")
    for m in s.measured:
        share = f"{100 * m.actual / m.base:.2f} %" if m.base else "-"
        mark = Text("met", style="green") if m.met else Text("missed", style="red")
        targets.add_row(m.target.text, m.period, f"{m.actual:,}", share, mark, f"{m.distance:.4g}")
    console.print(targets)
    if s.met:
        console.print(Text(f"Every target met. Wrote {output}.", style="bold green"))
    else:
        console.print(
            Text(
                f"The targets cannot all be met with these ranges: wrote the closest result found to "
                f"{output} (distance {s.distance:.4g} percentage points, the sum over the targets).",
                style="bold yellow",
            )
        )
    render_comparison(console, c.comparison, None)
