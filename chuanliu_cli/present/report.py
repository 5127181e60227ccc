"""`chuanliu report`: one self-contained HTML file (inline CSS, SVG and a few lines of script; no network).

Everything counted over the population (score distributions, gate rates, tiers, pool, the movers summary)
is a polars expression over every entity; only the listed entities (the top N by rank, and any asked for
by id) get a row in the list and a full breakdown, so the page stays small at 500,000 entities (issue #21).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from chuanliu_cli.present.charts import bars, bin_counts, histogram

if TYPE_CHECKING:
    import polars as pl
    from markupsafe import Markup

    from chuanliu_cli.scoring.compare import Comparison
    from chuanliu_cli.scoring.explain import Explanation
    from chuanliu_cli.scoring.pipeline import RunResult

#: Entities listed with a full breakdown by default: the first in rank order (ineligible ones last).
DEFAULT_TOP = 2000
#: Rows of the month-over-month table (largest |Δ grant| first); its summary line counts everyone.
MAX_MOVERS = 50


@dataclass(frozen=True)
class GateRate:
    """How many entities pass a gate, fail it, and fail it alone."""

    id: str
    reason: str
    passed: int
    failed: int
    alone: int


def gate_rates(run: RunResult, scorecard: str) -> list[GateRate]:
    """Pass/fail counts per gate over every entity, and the entities for which it is the only failing
    gate."""
    import polars as pl

    res = run.scorecards[scorecard]
    gates = res.scorecard.gates
    if not gates:
        return []
    failed = pl.col("failed_gates").fill_null(pl.lit([], dtype=pl.List(pl.Utf8)))
    one = failed.list.len() == 1
    counts = res.frame.select(
        *(failed.list.contains(g.id).sum().alias(f"f{i}") for i, g in enumerate(gates)),
        *((one & failed.list.contains(g.id)).sum().alias(f"a{i}") for i, g in enumerate(gates)),
    ).row(0, named=True)
    total = res.frame.height
    return [
        GateRate(g.id, g.reason, total - counts[f"f{i}"], counts[f"f{i}"], counts[f"a{i}"])
        for i, g in enumerate(gates)
    ]


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


def listed_entities(
    run: RunResult, scorecard: str, top: int = DEFAULT_TOP, ids: Sequence[str] = ()
) -> pl.DataFrame:
    """The rows of the scorecard's frame that the report lists in full: the first `top` in rank order
    (ineligible entities last), and those of `ids`, in rank order. An id that is not in the scorecard
    raises DataError (explain's unknown-key error, with the nearest keys); callers should check their ids
    first and refuse them in their own words."""
    import polars as pl

    from chuanliu_cli.scoring.explain import unknown_key_error

    res = run.scorecards[scorecard]
    key = res.scorecard.key
    wanted = list(dict.fromkeys(str(i) for i in ids))
    if wanted:
        known = set(res.frame.filter(pl.col(key).is_in(wanted))[key].to_list())
        for k in wanted:
            if k not in known:
                raise unknown_key_error(run, scorecard, k)
    chosen = (pl.int_range(pl.len()) < max(top, 0)) | pl.col(key).is_in(wanted)
    return res.frame.filter(chosen)


def explain_listed(run: RunResult, scorecard: str, keys: Sequence[str]) -> list[Explanation]:
    """explain_entity for each of `keys`, in order, as `chuanliu explain` gives it: explain_entities, which
    explains them all at once (one scoring pass, one batched search for what each is missing)."""
    from chuanliu_cli.scoring.explain import explain_entities

    return explain_entities(run, scorecard, keys)


def build_report(
    run: RunResult,
    scorecard: str,
    movers: Comparison | None,
    generated_by: str,
    warnings: Sequence[str] = (),
    *,
    top: int = DEFAULT_TOP,
    ids: Sequence[str] = (),
    sections: Sequence[tuple[str, str, str]] = (),
) -> str:
    """The HTML text of the report for one scorecard of a scored period; `warnings` are shown under the
    header (the partial period is said there already).

    The distributions, gate rates, tier counts, pool and the movers summary cover every entity. The list
    and the per-entity breakdowns cover the first `top` entities in rank order (ineligible last) and
    those of `ids` (keys of the scorecard: an unknown one raises DataError, see listed_entities); the
    page says how many there are and how to get the full list (`--list-out FILE`). `sections` are
    (anchor, title, HTML) shown after the movers (integrity, sensitivity, impact: built by their modules,
    already escaped)."""
    import jinja2
    import polars as pl

    from chuanliu_cli.present.documents import entity_records

    res = run.scorecards[scorecard]
    sc = res.scorecard
    frame = res.frame
    listed = listed_entities(run, scorecard, top, ids)
    records = entity_records(res, include_ineligible=True, selected=listed)
    totals = res.totals()
    charts = []
    for score in sc.scores:
        counts, missing = bin_counts(frame[score.name], 0.0, score.scale)
        charts.append(
            {
                "name": score.name,
                "label": score.label or score.name,
                "count": frame.height - missing,
                "missing": missing,
                "svg": histogram(counts, 0.0, score.scale, _thresholds(run, scorecard, score.name)),
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
    tiers = (
        frame.filter(pl.col("eligible") & pl.col("tier").is_not_null())
        .group_by("tier")
        .agg(pl.len().alias("n"), pl.col("grant").fill_null(0).sum().alias("granted"))
    )
    for tier, n, granted in tiers.iter_rows():
        per_tier.setdefault(tier, [0, 0])
        per_tier[tier] = [int(n), int(granted)]
    pool_svg = (
        bars([(f"{t} ({n})", float(g), f"{g:,}") for t, (n, g) in per_tier.items()]) if sc.reward else ""
    )
    breakdowns = explain_listed(run, scorecard, [str(r[sc.key]) for r in records])
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
        breakdowns=[(ex, breakdown_text(ex)) for ex in breakdowns],
        legend=_legend(breakdowns),
        listing={
            "entities": frame.height,
            "listed": len(records),
            "top": min(max(top, 0), frame.height),
            "by_id": len(records) - min(max(top, 0), frame.height),
            "more": frame.height - len(records),
        },
        generated_by=generated_by,
        sections=[{"id": a, "title": t, "html": h} for a, t, h in sections],
        completeness=run.completeness_note(),
        warnings=[w for w in warnings if not w.startswith(f"period {run.period.label} is incomplete: ")],
    )


def _movers(cmp: Comparison | None) -> dict[str, Any] | None:
    """The movers summary (counts over everyone) and the MAX_MOVERS largest moves by |Δ grant|."""
    if cmp is None:
        return None
    import polars as pl

    moved = cmp.frame.filter((pl.col("grant_delta") != 0) | (pl.col("change") != "same"))
    return {
        "label_a": cmp.a.label,
        "label_b": cmp.b.label,
        "summary": cmp.summary(),
        "rows": moved.head(MAX_MOVERS).to_dicts(),
        "moved": moved.height,
    }


def breakdown_text(ex: Explanation) -> Markup:
    """One entity's breakdown as preformatted text (HTML-escaped): each score with its parts (raw value,
    normalized, weight, points), then each gate. A few elements per entity instead of a table of ~200
    cells keeps 2,000 breakdowns quick to open; the normalizers are in the legend above them."""
    from markupsafe import Markup, escape

    width = max((len(p.ref) for s in ex.scores for p in s.parts), default=4)
    width = max(width, 4)
    out = [
        Markup('<span class="dim">{}</span>\n').format(
            f"  {'part':<{width}}  {'raw':>16}  {'normalized':>10}  {'weight':>6}  {'points':>9}"
        )
    ]
    for s in ex.scores:
        head = f"{s.label or s.name} = {_num(s.value)} / {_num(s.scale, 0)}"
        out.append(Markup("<b>{}</b>{}\n").format(head, f" · {s.null_reason}" if s.null_reason else ""))
        for p in s.parts:
            line = (
                f"  {p.ref:<{width}}  {_num(p.raw, 4):>16}  {_num(p.normalized, 4):>10}  "
                f"{_num(p.weight, 0):>6}  {_num(p.points):>9}"
            )
            out.append(escape(line + (f"  ({p.note})" if p.note else "") + "\n"))
    gate_width = max((len(g.id) for g in ex.gates), default=0)
    for g in ex.gates:
        values = ", ".join(f"{k} = {_num(v, 4)}" for k, v in g.values.items())
        needs = f" · needs {'; '.join(g.needs)}" if g.needs else ""
        out.append(
            Markup('gate {} <span class="{}">{}</span>  {}\n').format(
                f"{g.id:<{gate_width}}",
                "ok" if g.passed else "bad",
                "pass" if g.passed else "fail",
                values + needs,
            )
        )
    return Markup("").join(out)


def _legend(breakdowns: Sequence[Explanation]) -> list[tuple[str, str, str, str]]:
    """(score, part, normalizer, weight) of every score part: the same for every entity."""
    if not breakdowns:
        return []
    return [
        (s.label or s.name, p.ref, p.normalizer, _num(p.weight, 0))
        for s in breakdowns[0].scores
        for p in s.parts
    ]


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
