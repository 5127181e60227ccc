"""The terminal view of `impact`: one row per estimate with its interval, N, bandwidth or periods and checks;
the event study; the caveats."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rich.table import Table

if TYPE_CHECKING:
    from rich.console import Console

    from chuanliu_cli.impact.result import ImpactResult


def _pct(v: float | None) -> str:
    return "-" if v is None else f"{v * 100:+.1f} %"


def _p(v: Any) -> str:
    return "-" if v is None else f"{float(v):.3f}"


def _checks(e: dict[str, Any]) -> str:
    """The checks of one estimate, in a few words."""
    c = e["checks"]
    if c.get("note"):
        return str(c["note"])
    if e["design"] == "rd":
        placebo = [p["p_value"] for p in c.get("placebo") or []]
        first = c.get("first_stage") or {}
        density = (c.get("density") or {}).get("p_value")
        return (
            f"dose jump {first.get('dose_jump', 0):.3f}; density p {_p(density)}; "
            f"placebo p min {_p(min(placebo)) if placebo else '-'}"
        )
    pre = c.get("pre_trends") or {}
    return (
        f"{c.get('entities')} entities; {c.get('dropped_zero_outcome')} entity-periods without an outcome "
        "above 0 left out; "
        f"pre-trends p {_p(pre.get('p_value'))} ({pre.get('leads', 0)} leads)"
    )


#: The columns of the estimates table (terminal and the report's impact section); right-aligned: RIGHT.
COLUMNS = ("design", "cutoff", "estimate", "95 % CI", "N", "bandwidth / periods", "checks")
RIGHT = frozenset({"estimate", "N"})


def interval(ci: Any) -> str:
    """A 95 % interval as relative changes ("-": none)."""
    return "-" if ci is None else f"{_pct(ci[0])} to {_pct(ci[1])}"


def estimate_cells(result: ImpactResult) -> list[tuple[str, ...]]:
    """Each estimate as the cells of COLUMNS."""
    rows: list[tuple[str, ...]] = []
    for e in result.to_dict()["estimates"]:
        c = e["checks"]
        span = (
            f"±{c['bandwidth']:.3g}"
            if c.get("bandwidth") is not None
            else (f"{c['periods'][0]} to {c['periods'][-1]}" if c.get("periods") else "-")
        )
        rows.append(
            (
                e["design"],
                e["cutoff"] or "-",
                _pct(e["estimate"]),
                interval(e["ci"]),
                f"{e['n']:,}",
                span,
                _checks(e),
            )
        )
    return rows


def heading(result: ImpactResult) -> str:
    """What was estimated, on what, and where the grants come from."""
    return (
        f"Impact of the grants of {result.period} ({result.scorecard}) on {result.outcome}, "
        f"horizon {result.horizon}; grants: {result.grants_from}"
    )


def render_impact(console: Console, result: ImpactResult) -> None:
    """The estimates, the event study and the caveats of `chuanliu impact`."""
    doc = result.to_dict()
    console.print(heading(result))
    table = Table(title="Effect of a full cap (relative change)", title_justify="left")
    for name in COLUMNS:
        table.add_column(name, justify="right" if name in RIGHT else "left")
    for cells in estimate_cells(result):
        table.add_row(*cells)
    console.print(table)
    if doc["event_study"]:
        events = Table(
            title="Event study: periods since the first grant (k = 0: the first period it can change; "
            "k < -1: before it, the parallel-trends check)",
            title_justify="left",
        )
        for name in ("k", "estimate", "95 % CI", "N"):
            events.add_column(name, justify="right")
        for row in doc["event_study"]:
            lo, hi = row["ci"]
            events.add_row(str(row["k"]), _pct(row["estimate"]), f"{_pct(lo)} to {_pct(hi)}", str(row["n"]))
        console.print(events)
    console.print("What the numbers mean:")
    for line in result.caveats:
        console.print(f"  - {line}", soft_wrap=False)
