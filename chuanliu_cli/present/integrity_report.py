"""The HTML report's integrity section (SPEC §11): the flag counts and, per gate or tier threshold, a chart
of the entities either side of it with the bunching test. HTML fragments with inline SVG, no JavaScript; the
report template places them (present/report.py)."""

from __future__ import annotations

from html import escape
from typing import TYPE_CHECKING

from chuanliu_cli.present.charts import bars, bin_counts, histogram

if TYPE_CHECKING:
    from chuanliu_cli.scoring.integrity import Bunching, IntegrityResult
    from chuanliu_cli.scoring.pipeline import ScorecardResult

#: Bins of the window's width shown each side of a threshold.
SIDE_BINS = 4


def flag_counts_html(result: IntegrityResult) -> str:
    """A table of the flags: rows, amount, shops, promoters, excluded or counted by the ruleset, and bars
    of the rows caught per flag."""
    from chuanliu_cli.rules.integrity import FLAG_LABELS

    head = "".join(
        f"<th>{escape(h)}</th>" for h in ("flag", "table", "rows", "amount", "shops", "promoters", "ruleset")
    )
    body = []
    for f in result.flags:
        title = escape(FLAG_LABELS[f.flag])
        body.append(
            f'<tr><td title="{title}">{escape(f.flag)}</td><td>{escape(f.table)}</td>'
            f'<td class="num">{f.rows:,}</td><td class="num">{f.amount:,.2f}</td>'
            f'<td class="num">{f.shops:,}</td><td class="num">{f.promoters:,}</td>'
            f"<td>{'excluded' if f.excluded else 'counted'}</td></tr>"
        )
    table = (
        f'<table class="integrity-flags"><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table>'
    )
    chart = bars([(f.flag, float(f.rows), f"{f.rows:,}") for f in result.flags], " rows")
    return table + chart


def bunching_chart(res: ScorecardResult, test: Bunching) -> str:
    """The entities' values in SIDE_BINS windows each side of the threshold (the test compares the two
    bins next to it), with the threshold line and the test's outcome in the caption."""
    import polars as pl

    lo, hi = test.threshold - SIDE_BINS * test.window, test.threshold + SIDE_BINS * test.window
    frame = res.frame.filter(pl.col("eligible")) if test.rule.startswith("tier ") else res.frame
    values = frame[test.metric].cast(pl.Float64)
    # the test's sides: [t, t + w) and [t − w, t), or (t, t + w] and (t − w, t] for `>` and `<=`
    right = test.op in (">", "<=")
    inside = ((values > lo) & (values <= hi)) if right else ((values >= lo) & (values < hi))
    values = values.filter(values.is_not_null() & inside)
    counts, _left_out = bin_counts(values, lo, hi, 2 * SIDE_BINS, right_closed=right)
    svg = histogram(counts, lo, hi, [(test.rule, test.threshold)])
    p = "-" if test.p_value is None else f"{test.p_value:.3g}"
    caption = (
        f"{escape(test.rule)}: {escape(test.metric)} {escape(test.op)} {test.threshold:g} · "
        f"{test.passing} just passing vs {test.failing} just failing (window {test.window:g}) · p = {p} · "
        f"{test.verdict}"
    )
    css = "bunching flagged" if test.flagged else "bunching"
    return f'<figure class="{css}">{svg}<figcaption>{caption}</figcaption></figure>'


def integrity_section(result: IntegrityResult, res: ScorecardResult) -> str:
    """The whole section: the flag counts, then a bunching chart per threshold (flagged ones first)."""
    tests = sorted(result.bunching, key=lambda b: (not b.flagged, b.rule, b.metric))
    charts = "".join(bunching_chart(res, b) for b in tests if b.metric in res.frame.columns)
    return (
        f'<section class="integrity"><h2>Integrity · {escape(result.period.label)}</h2>'
        f"{flag_counts_html(result)}<h3>Threshold bunching ({escape(result.scorecard)})</h3>"
        f"{charts}</section>"
    )
