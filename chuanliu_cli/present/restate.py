"""`runs diff`: a restated run as a document (json, jsonl, csv, parquet) and as a terminal table."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from chuanliu_cli.present.documents import Document

if TYPE_CHECKING:
    from rich.console import Console

    from chuanliu_cli.scoring.restate import RunsDiffResult

#: Types of the diff's columns in parquet (the key column and text columns are inferred as text).
_TYPES: dict[str, Any] = {
    "eligible_before": "bool",
    "eligible_after": "bool",
    "rank_before": "int",
    "rank_after": "int",
    "grant_before": "int",
    "grant_after": "int",
    "grant_delta": "int",
}


def diff_summary(result: RunsDiffResult) -> dict[str, Any]:
    """The counts of a restatement: entities changed by kind and the grant moved."""
    frame = result.diff.frame
    kinds = frame["change"].value_counts(sort=True).rows() if frame.height else []
    return {
        "changed": frame.height,
        "by_change": {k: int(n) for k, n in kinds},
        "allocated_before": result.diff.allocated_before,
        "allocated_after": result.diff.allocated_after,
        "grant_delta": int(frame["grant_delta"].sum()) if frame.height else 0,
        "grant_moved": int(frame["grant_delta"].abs().sum()) if frame.height else 0,
    }


def diff_document(result: RunsDiffResult) -> Document:
    """The JSON document `{run, ruleset, scorecard, period, summary, loads_after, entities, warnings}`; the
    rows of csv, jsonl and parquet are the changed entities (an adjustments file for the next month)."""
    d = result.diff
    rows = d.frame.to_dicts()
    run = {k: (v.isoformat() if hasattr(v, "isoformat") else v) for k, v in d.run.items()}
    loads = [{k: (v.isoformat() if hasattr(v, "isoformat") else v) for k, v in r.items()} for r in d.loads]
    document = {
        "run": run,
        "ruleset": {"name": d.ruleset.name, "sha256": d.ruleset.sha256},
        "scorecard": d.scorecard,
        "period": {
            "label": d.period.label,
            "start": d.period.start.isoformat(),
            "end": d.period.end.isoformat(),
        },
        "summary": diff_summary(result),
        "loads_after": loads,
        "entities": rows,
        "warnings": list(result.warnings),
    }
    return Document(document, rows, rows, list(d.frame.columns), dict(_TYPES))


def render_diff(console: Console, result: RunsDiffResult) -> None:
    """The restatement on a terminal: what was scored, the loads since, the changed entities."""
    from rich.table import Table

    d = result.diff
    s = diff_summary(result)
    console.print(
        f"Run {d.run['run_id']} ({d.scorecard}, {d.period.label}, {d.ruleset.name} "
        f"{d.ruleset.sha256[:12]}) scored again on today's data."
    )
    if d.loads:
        console.print(f"{len(d.loads)} load(s) since the run:")
        for r in d.loads:
            console.print(
                f"  load {r['load_id']} {r['table']}: {r['file']} ({r['inserted']} inserted, "
                f"{r['updated']} updated)"
            )
    if not d.frame.height:
        console.print("No entity's eligibility, tier or grant changed.")
        return
    table = Table(
        title=f"{s['changed']} entit{'y' if s['changed'] == 1 else 'ies'} changed", title_justify="left"
    )
    for name in (d.key, "name", "change", "eligible", "tier", "grant", "delta", "metrics changed", "loads"):
        table.add_column(name, justify="right" if name in ("grant", "delta") else "left", overflow="fold")
    for r in d.frame.iter_rows(named=True):
        table.add_row(
            r[d.key],
            r["name"] or "",
            r["change"],
            f"{_yes(r['eligible_before'])} → {_yes(r['eligible_after'])}",
            f"{r['tier_before'] or '-'} → {r['tier_after'] or '-'}",
            f"{_n(r['grant_before'])} → {_n(r['grant_after'])}",
            f"{r['grant_delta']:+,}",
            r["metrics_changed"],
            r["loads"],
        )
    console.print(table)
    console.print(
        f"Allocated {_n(s['allocated_before'])} → {_n(s['allocated_after'])}; "
        f"grant moved {s['grant_moved']:,} (net {s['grant_delta']:+,})."
    )


def _yes(value: bool | None) -> str:
    return "-" if value is None else ("✓" if value else "✗")


def _n(value: int | None) -> str:
    return "-" if value is None else f"{value:,}"
