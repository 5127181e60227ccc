"""`explain --against-month`: the month-over-month attribution as JSON, flat rows and a terminal table."""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

from chuanliu_cli.present.documents import clean

if TYPE_CHECKING:
    from rich.console import Console

    from chuanliu_cli.scoring.attribution import Attribution


def attribution_json(a: Attribution) -> dict[str, Any]:
    """`{period_then, period_now, rank_by, total_then, total_now, delta, tier_then, …, parts: [{part, kind,
    points_then, points_now, delta, metrics: [{name, then, now, points_then, points_now}]}]}`."""

    def tidy(v: Any) -> Any:
        if isinstance(v, dict):
            return {k: tidy(x) for k, x in v.items()}
        if isinstance(v, list | tuple):
            return [tidy(x) for x in v]
        return clean(v)

    data = tidy(dataclasses.asdict(a))
    data["delta"] = clean(a.delta)
    return dict(data)


def attribution_rows(a: Attribution, key: str) -> list[dict[str, Any]]:
    """Flat rows (section `against`) for csv and parquet, in the explanation's columns."""
    rows = []
    for p in a.parts:
        moved = "; ".join(f"{m.name} {_v(m.then)} → {_v(m.now)}" for m in p.metrics if m.then != m.now)
        rows.append(
            {
                "key": key,
                "section": f"against {a.period_then}",
                "name": p.part,
                "value": clean(p.delta),
                "passed": None,
                "detail": f"{_v(p.points_then)} → {_v(p.points_now)} points; {moved or 'no metric moved'}",
            }
        )
    return rows


def render_attribution(console: Console, a: Attribution) -> None:
    """`Since 2023-04: total 82.15 → 87.72 (+5.57), tier A → S`, then the parts, largest change first."""
    from rich.table import Table

    delta = "" if a.delta is None else f" ({a.delta:+.2f})"
    console.print(
        f"Since {a.period_then}: {a.rank_by} {_v(a.total_then)} → {_v(a.total_now)}{delta}; "
        f"tier {a.tier_then or '-'} → {a.tier_now or '-'}; "
        f"eligible {'✓' if a.eligible_then else '✗'} → {'✓' if a.eligible_now else '✗'}; "
        f"grant {_g(a.grant_then)} → {_g(a.grant_now)}"
        + (f" (ruleset {a.ruleset_then} → {a.ruleset_now})" if a.ruleset_then != a.ruleset_now else "")
    )
    if set(a.failed_then) != set(a.failed_now):
        console.print(
            f"Failed gates {', '.join(a.failed_then) or 'none'} → {', '.join(a.failed_now) or 'none'}"
        )
    table = Table(title=f"What moved {a.rank_by}, largest first", title_justify="left")
    for name in ("part", a.period_then, a.period_now, "change", "metrics that moved it"):
        table.add_column(name, justify="right" if name not in ("part", "metrics that moved it") else "left")
    for p in a.parts:
        moved = [m for m in p.metrics if m.then != m.now]
        table.add_row(
            p.part,
            _v(p.points_then),
            _v(p.points_now),
            f"{p.delta:+.2f}",
            "; ".join(f"{m.name} {_v(m.then)} → {_v(m.now)}" for m in moved[:3]) or "-",
        )
    console.print(table)


def _v(value: float | None) -> str:
    if value is None:
        return "-"
    if isinstance(value, float) and not value.is_integer():
        return f"{value:,.2f}"
    return f"{int(value):,}"


def _g(value: int | None) -> str:
    return "-" if value is None else f"{value:,}"
