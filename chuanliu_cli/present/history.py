"""`history`: one entity period by period, as a document and as a terminal table."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from chuanliu_cli.present.documents import Document, clean

if TYPE_CHECKING:
    from rich.console import Console

    from chuanliu_cli.scoring.history import HistoryResult

_TYPES: dict[str, Any] = {
    "complete": "bool",
    "in_population": "bool",
    "eligible": "bool",
    "rank": "int",
    "ranked": "int",
    "total": "float",
    "grant": "int",
}


def history_document(result: HistoryResult) -> Document:
    """`{key, scorecard, periods: [...], warnings}`; csv/parquet rows join the failed gates with `;`."""
    from chuanliu_cli.scoring.history import HISTORY_COLUMNS

    records = [{k: clean(v) for k, v in r.items()} for r in result.rows]
    rows = [{**r, "failed_gates": ";".join(r["failed_gates"])} for r in records]
    document = {
        "key": {result.key_name: result.key},
        "scorecard": result.scorecard,
        "periods": records,
        "warnings": list(result.warnings),
    }
    return Document(document, records, rows, list(HISTORY_COLUMNS), dict(_TYPES))


def render_history(console: Console, result: HistoryResult) -> None:
    """The periods as a table, newest last, with where each line comes from."""
    from rich.table import Table

    table = Table(title=f"{result.key_name} {result.key}: {result.scorecard}", title_justify="left")
    for name in ("period", "ruleset", "eligible", "failed gates", "tier", "rank", "total", "grant", "from"):
        table.add_column(name, justify="right" if name in ("rank", "total", "grant") else "left")
    for r in result.rows:
        if not r["in_population"]:
            absent = "not in the population (no activity)"
            table.add_row(r["period"], r["ruleset"], "-", absent, "", "", "", "", r["source"])
            continue
        table.add_row(
            r["period"] + ("" if r["complete"] else " (partial)"),
            r["ruleset"],
            "✓" if r["eligible"] else "✗",
            ", ".join(r["failed_gates"]),
            r["tier"] or "-",
            f"{r['rank']}/{r['ranked']}" if r["rank"] is not None else "-",
            "-" if r["total"] is None else f"{r['total']:.2f}",
            "-" if r["grant"] is None else f"{r['grant']:,}",
            r["source"],
        )
    console.print(table)
