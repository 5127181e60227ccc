"""A tornado chart of a ruleset's sensitivity (SPEC §10), as inline SVG in the style of present/charts.py.

One row per knob, largest effect first: to the left of the centre line the effect of lowering the knob
(−20 % as a pale bar, −5 % as a dark one over it), to the right the effect of raising it, measured as
grant moved (Σ|Δ grant| / 2) or, without a reward, as entities entering plus leaving the eligible list.
"""

from __future__ import annotations

from html import escape
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from chuanliu_cli.design.sensitivity import Change, Sensitivity

_W = 680
_ROW = 24
_LABEL = 290
_LABEL_CHARS = 44  # about what fits in _LABEL pixels at the report's label size
_PAD_R, _PAD_T, _PAD_B = 12, 22, 10
_DOWN = "#e15759"  # lowering the knob
_UP = "#4e79a7"  # raising it
_PALE = 0.35


def _effect(change: Change, grants: bool) -> float:
    if grants:
        return float(change.grant_moved or 0)
    return float((change.entrants or 0) + (change.leavers or 0))


def _fmt(v: float) -> str:
    if v >= 1e9:
        return f"{v / 1e9:.3g}B"
    if v >= 1e6:
        return f"{v / 1e6:.3g}M"
    if v >= 1e4:
        return f"{v / 1e3:.3g}k"
    return f"{v:,.0f}"


def _short(path: str, scorecard: str) -> str:
    """The knob's path without the scorecard (the chart is of one), its tail kept when still too long."""
    path = path.removeprefix(f"{scorecard}.")
    return path if len(path) <= _LABEL_CHARS else "…" + path[-(_LABEL_CHARS - 1) :]


def tornado(sensitivity: Sensitivity, top: int = 15) -> str:
    """The SVG of the `top` knobs with the largest effect (knobs with no effect are left out; an empty
    chart says so)."""
    grants = sensitivity.allocated is not None
    unit = "grant moved" if grants else "entrants + leavers"
    rows = []
    for k in sensitivity.knobs:
        effects = {c.delta: _effect(c, grants) for c in k.changes}
        if any(effects.values()):
            rows.append((_short(k.knob.path, sensitivity.scorecard), effects))
    rows.sort(key=lambda r: (-max(r[1].values()), r[0]))
    rows = rows[:top]
    height = _PAD_T + _ROW * max(len(rows), 1) + _PAD_B
    parts = [
        f'<svg class="chart tornado" role="img" width="{_W}" height="{height}" viewBox="0 0 {_W} {height}" '
        'xmlns="http://www.w3.org/2000/svg">',
        f"<title>Sensitivity: {escape(unit)} when each value is lowered (left) or raised (right)</title>",
    ]
    if not rows:
        parts.append(
            f'<text x="{_W / 2}" y="{_PAD_T + 14}" text-anchor="middle" class="lbl">no value moves '
            "anything at ±5 % or ±20 %</text></svg>"
        )
        return "".join(parts)
    half = (_W - _LABEL - _PAD_R) / 2
    centre = _LABEL + half
    largest = max(max(e.values()) for _p, e in rows) or 1.0
    parts.append(
        f'<text x="{centre - 6:.1f}" y="{_PAD_T - 8}" text-anchor="end" class="axis">lower</text>'
        f'<text x="{centre + 6:.1f}" y="{_PAD_T - 8}" class="axis">higher · {escape(unit)}</text>'
    )
    for i, (path, effects) in enumerate(rows):
        y = _PAD_T + _ROW * i
        parts.append(
            f'<text x="{_LABEL - 8}" y="{y + 15}" text-anchor="end" class="lbl">{escape(path)}</text>'
        )
        for delta in sorted(effects, key=lambda d: -abs(d)):  # the wider change first, under the narrower
            value = effects[delta]
            if not value:
                continue
            w = half * value / largest
            x = centre if delta > 0 else centre - w
            colour = _UP if delta > 0 else _DOWN
            opacity = _PALE if abs(delta) > 0.1 else 1.0
            label = f"{path} {delta:+.0%}: {_fmt(value)} {unit}"
            parts.append(
                f'<rect x="{x:.1f}" y="{y + 3}" width="{max(w, 1):.1f}" height="{_ROW - 6}" fill="{colour}" '
                f'fill-opacity="{opacity}"><title>{escape(label)}</title></rect>'
            )
    parts.append(
        f'<line x1="{centre:.1f}" y1="{_PAD_T}" x2="{centre:.1f}" y2="{height - _PAD_B}" stroke="#888"/>'
    )
    parts.append("</svg>")
    return "".join(parts)
