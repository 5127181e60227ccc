"""Inline-SVG charts of `impact` for the HTML report: an RD plot per cutoff and the event-study plot.

Like present/charts.py: no JavaScript, no network, the same sizes and classes (`chart`, `axis`, `thr`).
`impact_html` is the report's impact section for one ImpactResult: the estimates table of `chuanliu impact`
(present/impact_tables.py), the warnings, each chart with what its estimate says, and the caveats.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from html import escape
from typing import TYPE_CHECKING, Any

# the sizes and colours of present/charts.py, so that the report's charts match
_W, _H = 560, 220
_PAD_L, _PAD_R, _PAD_T, _PAD_B = 44, 12, 14, 34
_BAR = "#4e79a7"
_LINE = "#e15759"


def _fmt(v: float) -> str:
    return f"{v:,.0f}" if abs(v) >= 100 else f"{v:.3g}"


if TYPE_CHECKING:
    from chuanliu_cli.impact.rd import RdPoint
    from chuanliu_cli.impact.result import ImpactResult


def _frame(x_lo: float, x_hi: float, y_lo: float, y_hi: float, y_label: str) -> tuple[list[str], Any, Any]:
    """The axes and the two scales (data → pixels) of a chart."""
    pw, ph = _W - _PAD_L - _PAD_R, _H - _PAD_T - _PAD_B
    if x_hi <= x_lo:
        x_hi = x_lo + 1.0
    if y_hi <= y_lo:
        y_hi = y_lo + 1.0

    def sx(v: float) -> float:
        return _PAD_L + pw * (v - x_lo) / (x_hi - x_lo)

    def sy(v: float) -> float:
        return _PAD_T + ph * (1 - (v - y_lo) / (y_hi - y_lo))

    parts = [
        f'<svg class="chart" role="img" width="{_W}" height="{_H}" viewBox="0 0 {_W} {_H}" '
        'xmlns="http://www.w3.org/2000/svg">',
        f'<line x1="{_PAD_L}" y1="{_PAD_T + ph}" x2="{_PAD_L + pw}" y2="{_PAD_T + ph}" stroke="#888"/>',
        f'<line x1="{_PAD_L}" y1="{_PAD_T}" x2="{_PAD_L}" y2="{_PAD_T + ph}" stroke="#888"/>',
        f'<text x="{_PAD_L - 6}" y="{_PAD_T + 4}" text-anchor="end" class="axis">{_fmt(y_hi)}</text>',
        f'<text x="{_PAD_L - 6}" y="{_PAD_T + ph}" text-anchor="end" class="axis">{_fmt(y_lo)}</text>',
        f'<text x="{_PAD_L + 4}" y="{_PAD_T + 10}" class="axis">{escape(y_label)}</text>',
    ]
    for k in range(5):
        v = x_lo + (x_hi - x_lo) * k / 4
        parts.append(
            f'<text x="{sx(v):.1f}" y="{_H - 14}" text-anchor="middle" class="axis">{_fmt(v)}</text>'
        )
    return parts, sx, sy


def rd_plot(points: Sequence[RdPoint], cutoff: float, name: str, y_label: str = "log outcome") -> str:
    """Binned means of the log outcome against the rank_by value, one dot per bin (its area ∝ entities),
    a straight fit on each side and the cutoff as a dashed line: a visible step at the line is the jump."""
    if not points:
        return ""
    xs = [p.x for p in points]
    ys = [p.y for p in points]
    pad = (max(ys) - min(ys)) * 0.1 or 0.5
    parts, sx, sy = _frame(min([*xs, cutoff]), max([*xs, cutoff]), min(ys) - pad, max(ys) + pad, y_label)
    top = max(p.n for p in points)
    for p in points:
        r = 2 + 4 * math.sqrt(p.n / top)
        parts.append(
            f'<circle cx="{sx(p.x):.1f}" cy="{sy(p.y):.1f}" r="{r:.1f}" fill="{_BAR}">'
            f"<title>{_fmt(p.x)}: {p.y:.3f} ({p.n} entities)</title></circle>"
        )
    for side in ([p for p in points if p.x < cutoff], [p for p in points if p.x >= cutoff]):
        line = _fit(side)
        if line is not None:
            (x0, y0), (x1, y1) = line
            parts.append(
                f'<line x1="{sx(x0):.1f}" y1="{sy(y0):.1f}" x2="{sx(x1):.1f}" y2="{sy(y1):.1f}" '
                f'stroke="{_BAR}" stroke-width="2"/>'
            )
    x = sx(cutoff)
    parts.append(
        f'<line x1="{x:.1f}" y1="{_PAD_T}" x2="{x:.1f}" y2="{_H - _PAD_B}" stroke="{_LINE}" '
        'stroke-dasharray="4 3"/>'
        f'<text x="{x + 3:.1f}" y="{_PAD_T + 22}" class="thr">{escape(name)} {_fmt(cutoff)}</text>'
    )
    parts.append("</svg>")
    return "".join(parts)


def _fit(points: Sequence[RdPoint]) -> tuple[tuple[float, float], tuple[float, float]] | None:
    """The least-squares line through a side's bins, weighted by their entities (its two end points)."""
    if len(points) < 2:
        return None
    w = sum(p.n for p in points)
    mx = sum(p.n * p.x for p in points) / w
    my = sum(p.n * p.y for p in points) / w
    sxx = sum(p.n * (p.x - mx) ** 2 for p in points)
    if sxx <= 0:
        return None
    b = sum(p.n * (p.x - mx) * (p.y - my) for p in points) / sxx
    lo, hi = min(p.x for p in points), max(p.x for p in points)
    return (lo, my + b * (lo - mx)), (hi, my + b * (hi - mx))


def event_study_plot(rows: Sequence[dict[str, Any]]) -> str:
    """Each lead and lag (k) with its 95 % interval as a relative change; 0 as a dashed line, and the
    reference period (k = −1, the period of the first grant) between the leads and the lags."""
    shown = [r for r in rows if r.get("estimate") is not None and None not in r.get("ci", [None])]
    if not shown:
        return ""
    ks = [int(r["k"]) for r in shown]
    lows = [float(r["ci"][0]) for r in shown]
    highs = [float(r["ci"][1]) for r in shown]
    y_lo, y_hi = min([*lows, 0.0]), max([*highs, 0.0])
    pad = (y_hi - y_lo) * 0.08 or 0.1
    parts, sx, sy = _frame(
        min([*ks, -1]) - 0.5, max([*ks, -1]) + 0.5, y_lo - pad, y_hi + pad, "relative change"
    )
    parts.append(
        f'<line x1="{_PAD_L}" y1="{sy(0):.1f}" x2="{_W - _PAD_R}" y2="{sy(0):.1f}" stroke="#888" '
        'stroke-dasharray="4 3"/>'
    )
    x_ref = sx(-1)
    parts.append(
        f'<line x1="{x_ref:.1f}" y1="{_PAD_T}" x2="{x_ref:.1f}" y2="{_H - _PAD_B}" stroke="{_LINE}" '
        'stroke-dasharray="4 3"/>'
        f'<text x="{x_ref + 3:.1f}" y="{_PAD_T + 22}" class="thr">first grant</text>'
    )
    for r, k, lo, hi in zip(shown, ks, lows, highs, strict=True):
        x = sx(k)
        colour = _LINE if k < -1 else _BAR
        parts.append(
            f'<line x1="{x:.1f}" y1="{sy(lo):.1f}" x2="{x:.1f}" y2="{sy(hi):.1f}" stroke="{colour}" '
            'stroke-width="2"/>'
            f'<circle cx="{x:.1f}" cy="{sy(float(r["estimate"])):.1f}" r="4" fill="{colour}">'
            f"<title>k = {k}: {float(r['estimate']) * 100:+.1f} % ({lo * 100:+.1f} % to {hi * 100:+.1f} %), "
            f"{r.get('n', 0)} entity-periods</title></circle>"
        )
    parts.append("</svg>")
    return "".join(parts)


def impact_html(result: ImpactResult) -> str:
    """The report's impact section: heading, the estimates table, the warnings, the RD plot of every
    cutoff that has bins (its estimate, interval and own warnings under it, not above), the event study,
    the caveats."""
    from chuanliu_cli.present.impact_tables import COLUMNS, RIGHT, estimate_cells, heading, interval

    def cell(tag: str, name: str, text: str) -> str:
        style = ' style="text-align:right"' if name in RIGHT else ""
        style = ' style="white-space:nowrap"' if name == "95 % CI" else style
        return f"<{tag}{style}>{escape(text)}</{tag}>"

    head = "".join(cell("th", name, name) for name in COLUMNS)
    body = "".join(
        "<tr>" + "".join(cell("td", name, text) for name, text in zip(COLUMNS, cells, strict=True)) + "</tr>"
        for cells in estimate_cells(result)
    )
    parts = [
        f'<p class="meta">{escape(heading(result))}</p>',
        f"<h3>Effect of a full cap (relative change)</h3><table><thead><tr>{head}</tr></thead>"
        f"<tbody>{body}</tbody></table>",
    ]
    plotted = [e for e in result.estimates if e.design == "rd" and e.points]
    beside = {w for e in plotted for w in e.warnings}  # said under their plot
    parts.extend(f'<p class="warn">⚠ {escape(w)}</p>' for w in result.warnings if w not in beside)
    for e in plotted:
        value = float(e.checks.get("cutoff_value", 0.0))
        said = (
            f"estimate {e.estimate * 100:+.1f} % for a full cap, 95 % interval {interval(e.ci)}"
            if e.estimate is not None
            else "no estimate"
        )
        notes = "".join(f"<br>⚠ {escape(w)}" for w in e.warnings)
        svg = rd_plot(e.points, value, e.cutoff or "", f"log {result.outcome}")
        parts.append(
            f"<h3>{escape(f'RD at tier {e.cutoff} ({_fmt(value)})')}</h3>{svg}"
            f'<p class="meta">{escape(said)}{notes}</p>'
        )
    events = event_study_plot(result.event_study)
    if events:
        parts.append(
            f"<h3>Event study: periods since the first grant</h3>{events}"
            '<p class="meta">red: before the first grant (the parallel-trends check); blue: after it</p>'
        )
    caveats = "".join(f"<li>{escape(c)}</li>" for c in result.caveats)
    parts.append(f'<ul class="meta">{caveats}</ul>')
    return "".join(parts)
