"""`chuanliu load`: validate export files and upsert them into the database."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from chuanliu_cli.cli.emit import settings, warn
from chuanliu_cli.cli.options import DbOption, MemoryLimitOption, WaitOption, session

if TYPE_CHECKING:
    from rich.console import Console


class TableName(StrEnum):
    orders = "orders"
    reviews = "reviews"
    livestreams = "livestreams"
    shops = "shops"


def load(
    table: Annotated[
        TableName | None,
        typer.Argument(help="The table the files hold (omit with --dir).", show_default=False),
    ] = None,
    files: Annotated[list[Path] | None, typer.Argument(help="Export files (CSV, Parquet, XLSX).")] = None,
    directory: Annotated[
        Path | None,
        typer.Option(
            "--dir",
            help="Load every export in DIR, recognised by name: orders*, reviews*, livestreams*, shops* "
            "(or 订单*, 评价*, 直播*, 店铺*).",
        ),
    ] = None,
    max_reject_rate: Annotated[
        float,
        typer.Option(
            "--max-reject-rate", min=0.0, max=1.0, help="Largest share of bad rows a file may have."
        ),
    ] = 0.01,
    encoding: Annotated[
        str | None, typer.Option("--encoding", help="Text encoding of CSV files [default: detected].")
    ] = None,
    sheet: Annotated[str | None, typer.Option("--sheet", help="XLSX: load only this sheet.")] = None,
    mapping: Annotated[
        Path | None, typer.Option("--mapping", help="YAML file of extra column aliases, value maps, scales.")
    ] = None,
    timezone: Annotated[
        str, typer.Option("--timezone", help="Timezone of naive times in the files.")
    ] = "Asia/Shanghai",
    db: DbOption = None,
    memory_limit: MemoryLimitOption = None,
    wait: WaitOption = 60.0,
) -> None:
    """Validate export files and upsert them into the database, all or nothing.

    Bad rows are kept in `rejected_rows`; if a file's share of bad rows exceeds --max-reject-rate nothing
    is written and the exit code is 4. Loading the same file twice changes nothing.
    """
    from chuanliu_cli.errors import UsageError

    if directory is not None and (table is not None or files):
        raise UsageError("give either TABLE FILE... or --dir DIR, not both")
    if directory is None and (table is None or not files):
        raise UsageError("give TABLE FILE... or --dir DIR", hint="e.g. chuanliu load orders orders.csv")
    err = settings().console(stderr=True)
    with session(db, memory_limit=memory_limit, wait=wait) as s:
        result = s.load(
            table.value if table is not None else None,
            files or (),
            directory=directory,
            max_reject_rate=max_reject_rate,
            encoding=encoding,
            sheet=sheet,
            mapping=mapping,
            timezone=timezone,
            progress=_progress_callback(err),
        )
    if not settings().quiet:
        from chuanliu_cli.present.tables import render_load_summary

        render_load_summary(settings().console(), result.files)
    warn(result.warnings)


def _progress_callback(err: Console) -> Any:
    """A Rich progress bar on stderr for big files, only when stderr is a terminal."""
    if settings().quiet or not err.is_terminal:
        return None
    from rich.progress import Progress

    state: dict[str, Any] = {}

    def update(name: str, rows: int, total: int | None) -> None:
        if "bar" not in state and rows < 1_000_000 and (total is None or total < 1_000_000):
            return
        if "bar" not in state:
            progress = Progress(console=err, transient=True)
            progress.start()
            state["bar"] = progress
            state["tasks"] = {}
        tasks = state["tasks"]
        if name not in tasks:
            tasks[name] = state["bar"].add_task(f"loading {name}", total=total)
        state["bar"].update(tasks[name], completed=rows, description=f"loading {name}: {rows:,} rows")

    return update
