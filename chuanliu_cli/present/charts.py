"""Small inline-SVG charts (histogram with threshold lines, horizontal bars): no JavaScript, no network."""

from __future__ import annotations

import math
from collections.abc import Sequence
from html import escape
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import polars as pl

_W, _H = 560, 220
_PAD_L, _PAD_R, _PAD_T, _PAD_B = 44, 12, 14, 34
_BAR = "#4e79a7"
_LINE = "#e15759"


def _fmt(v: float) -> str:
    return f"{v:,.0f}" if abs(v) >= 100 else f"{v:.3g}"


def bin_counts(
    values: pl.Series, lo: float, hi: float, bins: int = 20, right_closed: bool = False
) -> tuple[list[int], int]:
    """How many finite `values` fall in each of `bins` equal bins of [lo, hi] (values outside go to the
    first or last bin), counted by one polars expression; and how many were left out (NULL, NaN, ±inf).

    Bins are [a, b), or (a, b] with `right_closed` (the sides of a `>` or `<=` threshold). Values are
    placed in whole millionths, as the gates compare them: 0.01 is in the bin [0.01, 0.02), never in
    [0, 0.01) by a float's last bit."""
    import polars as pl

    if hi <= lo:
        hi = lo + 1.0
    finite = values.cast(pl.Float64).drop_nulls()
    finite = finite.filter(finite.is_finite())
    low, high = round(lo * 1_000_000), round(hi * 1_000_000)
    span = max(high - low, 1)
    micro = (finite * 1_000_000).round().clip(low - span, high + span).cast(pl.Int64) - low
    index = ((micro * bins - 1) if right_closed else (micro * bins)) // span
    found = dict(index.clip(0, bins - 1).value_counts().iter_rows())
    return [int(found.get(i, 0)) for i in range(bins)], values.len() - finite.len()


def histogram(
    counts: Sequence[int],
    lo: float,
    hi: float,
    thresholds: Sequence[tuple[str, float]] = (),
) -> str:
    """An SVG histogram of bin counts (from bin_counts) on [lo, hi] with labelled vertical threshold
    lines."""
    if hi <= lo:
        hi = lo + 1.0
    bins = max(len(counts), 1)
    top = max(counts, default=0) or 1
    pw, ph = _W - _PAD_L - _PAD_R, _H - _PAD_T - _PAD_B
    parts = [
        f'<svg class="chart" role="img" width="{_W}" height="{_H}" viewBox="0 0 {_W} {_H}" '
        'xmlns="http://www.w3.org/2000/svg">',
        f'<line x1="{_PAD_L}" y1="{_PAD_T + ph}" x2="{_PAD_L + pw}" y2="{_PAD_T + ph}" stroke="#888"/>',
        f'<line x1="{_PAD_L}" y1="{_PAD_T}" x2="{_PAD_L}" y2="{_PAD_T + ph}" stroke="#888"/>',
        f'<text x="{_PAD_L - 6}" y="{_PAD_T + 4}" text-anchor="end" class="axis">{top}</text>',
        f'<text x="{_PAD_L - 6}" y="{_PAD_T + ph}" text-anchor="end" class="axis">0</text>',
    ]
    bw = pw / bins
    for i, c in enumerate(counts):
        if c:
            h = ph * c / top
            x = _PAD_L + i * bw
            left, right = _fmt(lo + i * (hi - lo) / bins), _fmt(lo + (i + 1) * (hi - lo) / bins)
            parts.append(
                f'<rect x="{x + 1:.1f}" y="{_PAD_T + ph - h:.1f}" width="{bw - 2:.1f}" height="{h:.1f}" '
                f'fill="{_BAR}"><title>{left}–{right}: {c}</title></rect>'
            )
    for k in range(5):
        v = lo + (hi - lo) * k / 4
        x = _PAD_L + pw * k / 4
        parts.append(f'<text x="{x:.1f}" y="{_H - 14}" text-anchor="middle" class="axis">{_fmt(v)}</text>')
    shown = [(name, t) for name, t in thresholds if lo <= t <= hi]
    for k, (name, t) in enumerate(shown):
        x = _PAD_L + pw * (t - lo) / (hi - lo)
        # a label in the right half reads leftwards from its line, so that it stays inside the chart; each
        # label on its own line (tier bounds close together), over a white halo where it crosses a bar
        side = f'x="{x - 3:.1f}" text-anchor="end"' if x > _PAD_L + pw / 2 else f'x="{x + 3:.1f}"'
        y = _PAD_T + 10 + 12 * (k % max(1, int(ph // 24)))
        parts.append(
            f'<line x1="{x:.1f}" y1="{_PAD_T}" x2="{x:.1f}" y2="{_PAD_T + ph}" stroke="{_LINE}" '
            'stroke-dasharray="4 3"/>'
            f'<text {side} y="{y}" class="thr">{escape(name)} {_fmt(t)}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def bars(items: Sequence[tuple[str, float, str]], unit: str = "") -> str:
    """Horizontal SVG bars: (label, value, note) per bar, scaled to the largest value."""
    rows = max(len(items), 1)
    height = 26 * rows + 16
    label_w = 200
    pw = _W - label_w - 120
    top = max((v for _, v, _ in items), default=0.0) or 1.0
    parts = [
        f'<svg class="chart" role="img" width="{_W}" height="{height}" viewBox="0 0 {_W} {height}" '
        'xmlns="http://www.w3.org/2000/svg">'
    ]
    for i, (label, value, note) in enumerate(items):
        y = 8 + 26 * i
        w = 0.0 if not math.isfinite(value) else pw * value / top
        parts.append(
            f'<text x="{label_w - 8}" y="{y + 14}" text-anchor="end" class="lbl">{escape(label)}</text>'
            f'<rect x="{label_w}" y="{y}" width="{max(w, 1):.1f}" height="18" fill="{_BAR}">'
            f"<title>{escape(label)}: {escape(note)}</title></rect>"
            f'<text x="{label_w + max(w, 1) + 6:.1f}" y="{y + 14}" class="val">'
            f"{escape(note)}{escape(unit)}</text>"
        )
    parts.append("</svg>")
    return "".join(parts)
