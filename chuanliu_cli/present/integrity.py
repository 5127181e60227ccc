"""`integrity`: the flags of a period, the entities most affected and threshold bunching, as a document
and as terminal tables."""

from __future__ import annotations

from dataclasses import asdict
from typing import TYPE_CHECKING, Any

from chuanliu_cli.present.documents import Document, clean

if TYPE_CHECKING:
    from rich.console import Console

    from chuanliu_cli.scoring.integrity import IntegrityResult

FLAG_COLUMNS = ["flag", "table", "rows", "amount", "shops", "promoters", "excluded"]
_FLAG_TYPES: dict[str, Any] = {
    "rows": "int",
    "amount": "float",
    "shops": "int",
    "promoters": "int",
    "excluded": "bool",
}
_ROW_TYPES: dict[str, Any] = {"amount": "float", "time": "str"}


def _row_records(result: IntegrityResult) -> list[dict[str, Any]]:
    if result.rows is None:
        return []
    out = []
    for r in result.rows.iter_rows(named=True):
        out.append(
            {
                **r,
                "time": r["time"].isoformat(sep=" ") if r["time"] is not None else None,
                "amount": float(r["amount"]) if r["amount"] is not None else None,
            }
        )
    return out


def integrity_document(result: IntegrityResult) -> Document:
    """`{ruleset, scorecard, period, key, flags, entities, bunching, rows?, warnings}` for json; csv, jsonl
    and parquet hold the flagged rows with --rows, else one line per flag."""
    from chuanliu_cli.scoring.integrity import ROW_COLUMNS, TOP_ENTITIES

    flags = [asdict(f) for f in result.flags]
    entities = [
        {k: clean(v) for k, v in r.items()} for r in result.entities.head(TOP_ENTITIES).iter_rows(named=True)
    ]
    bunching = [{k: clean(v) for k, v in asdict(b).items()} for b in result.bunching]
    rows = _row_records(result)
    document: dict[str, Any] = {
        "ruleset": {"name": result.ruleset.name, "sha256": result.ruleset.sha256},
        "scorecard": result.scorecard,
        "period": {
            "label": result.period.label,
            "start": str(result.period.start),
            "end": str(result.period.end),
        },
        "key": result.key,
        "flags": flags,
        "entities": entities,
        "entities_flagged": result.entities.height,
        "bunching": bunching,
        "warnings": list(result.warnings),
    }
    if result.rows is not None:
        document["rows"] = rows
        return Document(document, rows, rows, list(ROW_COLUMNS), dict(_ROW_TYPES))
    return Document(document, flags, flags, FLAG_COLUMNS, dict(_FLAG_TYPES))


def _num(value: float | None, digits: int = 2) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def render_integrity(console: Console, result: IntegrityResult) -> None:
    """The flags, the entities with the largest flagged share, bunching, and the rows when asked."""
    from rich.table import Table

    from chuanliu_cli.rules.integrity import FLAG_LABELS
    from chuanliu_cli.scoring.integrity import TOP_ENTITIES

    title = f"Integrity · {result.ruleset.name} · {result.period.label}"
    flags = Table(title=title, title_justify="left")
    for name in ("flag", "table", "rows", "amount", "shops", "promoters", "in this ruleset", "meaning"):
        flags.add_column(
            name, justify="right" if name in ("rows", "amount", "shops", "promoters") else "left"
        )
    for f in result.flags:
        flags.add_row(
            f.flag,
            f.table,
            f"{f.rows:,}",
            "-" if f.table == "reviews" else _num(f.amount),  # a review has no amount
            f"{f.shops:,}",
            f"{f.promoters:,}",
            "excluded" if f.excluded else "counted",
            FLAG_LABELS[f.flag],
        )
    console.print(flags)
    frame = result.entities
    if frame.height:
        shown = min(frame.height, TOP_ENTITIES)
        top = Table(
            title=f"{result.key}: largest flagged share ({shown} of {frame.height})", title_justify="left"
        )
        columns = [
            ("key", result.key),
            ("flagged_orders", "flagged orders"),
            ("orders", "orders"),
            ("flagged_gmv", "flagged GMV"),
            ("gmv", "GMV"),
            ("idle_sessions", "idle sessions"),
            ("sessions", "sessions"),
            ("suspicious_reviews", "suspicious reviews"),
            ("reviews", "reviews"),
            ("share", "share"),
        ]
        columns = [(c, label) for c, label in columns if c in frame.columns]
        for c, label in columns:
            top.add_column(label, justify="left" if c == "key" else "right")
        for r in frame.head(TOP_ENTITIES).iter_rows(named=True):
            cells = []
            for c, _label in columns:
                v = r[c]
                if c == "key":
                    cells.append(str(v))
                elif c == "share":
                    cells.append("-" if v is None else f"{v:.1%}")
                elif c.endswith("gmv"):
                    cells.append(_num(v))
                else:
                    cells.append(f"{v:,}")
            top.add_row(*cells)
        console.print(top)
    else:
        console.print(f"No {result.key} has a flagged row in {result.period.label}.")
    bunch = Table(title=f"Threshold bunching ({result.scorecard})", title_justify="left")
    for name in ("rule", "threshold", "window", "just passing", "just failing", "p", "bunched"):
        bunch.add_column(name, justify="left" if name in ("rule", "bunched") else "right")
    for b in result.bunching:
        bunch.add_row(
            b.rule,
            f"{b.metric} {b.op} {b.threshold:g}",
            f"{b.window:g}",
            str(b.passing),
            str(b.failing),
            "-" if b.p_value is None else f"{b.p_value:.4g}",
            "⚠ yes" if b.flagged else ("no" if b.p_value is not None else b.verdict),
        )
    console.print(bunch)
    if result.rows is not None:
        from chuanliu_cli.present.bulktable import print_table
        from chuanliu_cli.scoring.integrity import ROW_COLUMNS

        title = f"Flagged rows ({result.rows.height:,})"

        def make() -> Table:
            rows = Table(title=title, title_justify="left")
            for name in ROW_COLUMNS:
                rows.add_column(name, justify="right" if name == "amount" else "left")
            return rows

        # (text cells, never Rich markup: an id or a name holding `[...]` is shown as it is)
        records = _row_records(result)
        texts = [
            ["" if r[c] is None else (f"{r[c]:,.2f}" if c == "amount" else str(r[c])) for r in records]
            for c in ROW_COLUMNS
        ]
        print_table(console, make, texts)
