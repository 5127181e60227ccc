"""`chuanliu report`: one self-contained HTML file (inline CSS, SVG and a few lines of script; no network)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from chuanliu_cli.present.charts import bars, histogram

if TYPE_CHECKING:
    from chuanliu_cli.scoring.compare import Comparison
    from chuanliu_cli.scoring.pipeline import RunResult

#: Entities that get a full breakdown section (in rank order); the rest are listed only.
MAX_BREAKDOWNS = 300


@dataclass(frozen=True)
class GateRate:
    """How many entities pass a gate, fail it, and fail it alone."""

    id: str
    reason: str
    passed: int
    failed: int
    alone: int


def gate_rates(run: RunResult, scorecard: str) -> list[GateRate]:
    """Pass/fail counts per gate, and the entities for which it is the only failing gate."""
    res = run.scorecards[scorecard]
    failed_lists = [list(f or []) for f in res.frame["failed_gates"].to_list()]
    total = len(failed_lists)
    out = []
    for g in res.scorecard.gates:
        failed = sum(g.id in f for f in failed_lists)
        alone = sum(f == [g.id] for f in failed_lists)
        out.append(GateRate(g.id, g.reason, total - failed, failed, alone))
    return out


def _thresholds(run: RunResult, scorecard: str, score: str) -> list[tuple[str, float]]:
    from chuanliu_cli.scoring.gates import comparisons

    sc = run.scorecards[scorecard].scorecard
    out: list[tuple[str, float]] = []
    if score == sc.rank_by:
        out += [(f"tier {t.name}", t.min_score) for t in sc.tiers]
    for g in sc.gates:
        for name, _op, constant in comparisons(g) or []:
            if name == score:
                out.append((f"gate {g.id}", constant))
    return out


def build_report(
    run: RunResult,
    scorecard: str,
    movers: Comparison | None,
    generated_by: str,
    warnings: Sequence[str] = (),
) -> str:
    """The HTML text of the report for one scorecard of a scored period; `warnings` are shown under the
    header (the partial period is said there already)."""
    import jinja2

    from chuanliu_cli.present.documents import entity_records
    from chuanliu_cli.scoring.explain import explain_entity

    res = run.scorecards[scorecard]
    sc = res.scorecard
    records = entity_records(res, include_ineligible=True)
    totals = res.totals()
    charts = []
    for score in sc.scores:
        values = [v for v in res.frame[score.name].to_list() if v is not None]
        charts.append(
            {
                "name": score.name,
                "label": score.label or score.name,
                "count": len(values),
                "missing": res.frame.height - len(values),
                "svg": histogram(values, 0.0, score.scale, _thresholds(run, scorecard, score.name)),
            }
        )
    rates = gate_rates(run, scorecard)
    gate_svg = bars(
        [
            (r.id, r.passed / max(r.passed + r.failed, 1) * 100, f"{r.passed}/{r.passed + r.failed} pass")
            for r in rates
        ]
    )
    per_tier: dict[str, list[int]] = {t.name: [0, 0] for t in sc.tiers}
    for rec in records:
        if rec["tier"] is not None and rec["eligible"]:
            per_tier[rec["tier"]][0] += 1
            per_tier[rec["tier"]][1] += rec["grant"] or 0
    pool_svg = (
        bars([(f"{t} ({n})", float(g), f"{g:,}") for t, (n, g) in per_tier.items()]) if sc.reward else ""
    )
    ranked = [r for r in records if r["rank"] is not None] + [r for r in records if r["rank"] is None]
    breakdowns = [explain_entity(run, scorecard, str(r[sc.key])) for r in ranked[:MAX_BREAKDOWNS]]
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("chuanliu_cli", "data"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["num"] = _num
    template = env.get_template("report.html.j2")
    return template.render(
        run=run,
        sc=sc,
        key=sc.key,
        records=records,
        totals=totals,
        charts=charts,
        rates=rates,
        gate_svg=gate_svg,
        pool_svg=pool_svg,
        per_tier=per_tier,
        movers=_movers(movers),
        breakdowns=breakdowns,
        more=max(len(ranked) - MAX_BREAKDOWNS, 0),
        generated_by=generated_by,
        completeness=run.completeness_note(),
        warnings=[w for w in warnings if not w.startswith(f"period {run.period.label} is incomplete: ")],
    )


def _movers(cmp: Comparison | None) -> dict[str, Any] | None:
    if cmp is None:
        return None
    summary = cmp.summary()
    moved = [r for r in cmp.rows if r["grant_delta"] or r["change"] != "same"]
    return {"label_a": cmp.a.label, "label_b": cmp.b.label, "summary": summary, "rows": moved[:50]}


def _num(value: Any, digits: int = 2) -> str:
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "✓" if value else "✗"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if value != value:
            return "–"
        return f"{value:,.{digits}f}"
    return str(value)
