"""Rich tables for the terminal, and the csv/json/jsonl/parquet writers; everything takes a Console."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING

from rich.table import Table

if TYPE_CHECKING:
    from rich.console import Console

    from chuanliu_cli.loading.loader import FileResult
    from chuanliu_cli.status import StoreStatus


def _fmt_time(t: datetime | None) -> str:
    return t.strftime("%Y-%m-%d %H:%M:%S") if t else "-"


def _n(v: int) -> str:
    return f"{v:,}"


def render_load_summary(console: Console, results: Sequence[FileResult]) -> None:
    """The summary table of `chuanliu load`: one row per file."""
    table = Table(title="Loaded", title_justify="left")
    for name in ("table", "file", "read", "inserted", "updated", "unchanged", "rejected", "duplicates"):
        table.add_column(name, justify="right" if name not in ("table", "file") else "left")
    table.add_column("time range covered")
    table.add_column("s", justify="right")
    for r in results:
        table.add_row(
            r.table,
            r.file,
            _n(r.rows_read),
            _n(r.inserted),
            _n(r.updated),
            _n(r.unchanged),
            _n(r.rejected),
            _n(r.duplicates),
            f"{_fmt_time(r.time_min)} → {_fmt_time(r.time_max)}" if r.time_min else "-",
            f"{r.seconds:.1f}",
        )
    console.print(table)
    if results and all(r.inserted == 0 and r.updated == 0 for r in results):
        console.print("Nothing changed: every row was already loaded.")


def render_status(console: Console, status: StoreStatus, db_path: str) -> None:
    """The tables of `chuanliu status`."""
    tz = f" (times in {status.timezone})" if status.timezone else ""
    console.print(f"[bold]Database[/bold] {db_path}{tz}")
    t = Table(title="Tables", title_justify="left")
    for name in ("table", "rows", "from", "to"):
        t.add_column(name, justify="right" if name == "rows" else "left")
    for ts in status.tables:
        t.add_row(ts.name, _n(ts.rows), _fmt_time(ts.time_min), _fmt_time(ts.time_max))
    console.print(t)
    months = sorted({m for ts in status.tables for m in ts.months})
    if months:
        m = Table(title="Rows per month", title_justify="left")
        m.add_column("month")
        timed = [ts for ts in status.tables if ts.months or ts.time_min is not None]
        for ts in timed:
            m.add_column(ts.name, justify="right")
        m.add_column("complete for scoring")
        for month in months:
            done = "✓" if month in status.complete_months else "✗ partial"
            m.add_row(month, *(_n(ts.months.get(month, 0)) for ts in timed), done)
        console.print(m)
    else:
        console.print("No data loaded yet: run `chuanliu load --dir DIR`.")
    if status.loads:
        lt = Table(title="Last loads", title_justify="left")
        for name in ("id", "table", "file", "read", "inserted", "updated", "unchanged", "rejected", "finished"):
            lt.add_column(name, justify="right" if name not in ("table", "file", "finished") else "left")
        for load_id, table, file, read, ins, upd, unch, rej, finished in status.loads:
            lt.add_row(
                str(load_id), str(table), str(file), *(_n(int(str(x))) for x in (read, ins, upd, unch, rej)),
                _fmt_time(finished if isinstance(finished, datetime) else None),
            )
        console.print(lt)
    console.print(f"Rejected rows kept: {_n(status.rejects)} (table rejected_rows)")
