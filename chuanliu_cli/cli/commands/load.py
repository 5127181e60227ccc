"""`chuanliu load`: validate export files and upsert them into the database."""

from __future__ import annotations

import re
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from chuanliu_cli.cli.emit import settings, warn
from chuanliu_cli.cli.options import (
    AllowRegressOption,
    DbOption,
    DuplicatePolicy,
    MaxRejectRowsOption,
    MemoryLimitOption,
    OnDuplicateOption,
    StrictOption,
    WaitOption,
    session,
)

if TYPE_CHECKING:
    from rich.console import Console


class TableName(StrEnum):
    orders = "orders"
    reviews = "reviews"
    livestreams = "livestreams"
    shops = "shops"


def load(
    table: Annotated[
        str | None,
        typer.Argument(
            help="The table the files hold: orders, reviews, livestreams or shops (omit it to recognise "
            "each file's table by its name, else its header).",
            show_default=False,
            metavar="[TABLE]",
        ),
    ] = None,
    files: Annotated[
        list[Path] | None, typer.Argument(help="Export files (CSV, TSV, Parquet, XLSX, JSON lines).")
    ] = None,
    directory: Annotated[
        Path | None,
        typer.Option(
            "--dir",
            help="Load every export in DIR; a file's table is a word of its name (orders, order, 订单, "
            "reviews, 评价, comments, livestreams, live, 直播, shops, 店铺; anywhere, any case), else its "
            "header. The summary lists every file, loaded or skipped with why.",
        ),
    ] = None,
    max_reject_rate: Annotated[
        float,
        typer.Option(
            "--max-reject-rate", min=0.0, max=1.0, help="Largest share of bad rows a file may have."
        ),
    ] = 0.01,
    max_reject_rows: MaxRejectRowsOption = 10,
    on_duplicate: OnDuplicateOption = DuplicatePolicy.last,
    allow_regress: AllowRegressOption = False,
    strict: StrictOption = False,
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

    `load orders a.csv` loads files into a table; `load a.csv b.xlsx` recognises each file's table by its
    name, else its header. Bad rows are kept in `rejected_rows` (see `chuanliu rejects`); if a file's bad
    rows exceed both --max-reject-rate and --max-reject-rows nothing is written and the exit code is 4.
    Loading the same file twice changes nothing; an older export loaded over newer data leaves the newer
    rows as they are (--allow-regress applies it). With --strict any warning (a missing column, rejected
    rows, a regression) is exit 7 and nothing is written.
    """
    from chuanliu_cli.errors import ChuanliuError, UsageError

    files = list(files or [])
    if table is not None and table not in TableName.__members__:
        if not Path(table).is_file():
            raise UsageError(
                f"{table!r} is neither a table nor a file",
                hint=f"tables are {', '.join(TableName.__members__)}",
            )
        files.insert(0, Path(table))  # no table named: each file's table is recognised
        table = None
    if directory is not None and (table is not None or files):
        raise UsageError("give either [TABLE] FILE... or --dir DIR, not both")
    if directory is None and not files:
        raise UsageError(
            "give TABLE FILE... or --dir DIR",
            hint="e.g. chuanliu load orders orders.csv; without TABLE each file's table is recognised",
        )
    err = settings().console(stderr=True)
    try:
        with session(db, memory_limit=memory_limit, wait=wait) as s:
            result = s.load(
                table,
                files,
                directory=directory,
                max_reject_rate=max_reject_rate,
                max_reject_rows=max_reject_rows,
                on_duplicate=on_duplicate.value,
                allow_regress=allow_regress,
                strict=strict,
                encoding=encoding,
                sheet=sheet,
                mapping=mapping,
                timezone=timezone,
                progress=_progress_callback(err),
            )
    except ChuanliuError as exc:
        exc.message = flag_words(exc.message)
        exc.hint = flag_words(exc.hint) if exc.hint else exc.hint
        raise
    if not settings().quiet:
        from chuanliu_cli.present.tables import render_load_summary

        render_load_summary(settings().console(), result.files, result.discovered)
    warn([flag_words(w) for w in result.warnings])


# The library names its parameters (`encoding='big5'`, `sheet='订单'`); here they are the options.
_FLAGS = re.compile(r"\b(encoding|sheet|timezone)=('[^']*'|\S+)")
# bare parameter names of the reject limits and the duplicate and regression policies
_NAMES = re.compile(r"\b(max_reject_rate|max_reject_rows|on_duplicate|allow_regress)\b")
# a sheet named on a file that has none (the warning names the sheet unquoted)
_SHEET_IGNORED = re.compile(r": sheet (.+?) ignored: the file is ")
_PHRASES = {
    "name the sheet to read to choose another": "pick another with --sheet",
    "name one of them as the sheet to read": "pass one of them to --sheet",
    "or name the sheet to read": "or pick a sheet with --sheet",
    "load a directory as a directory of exports": "use load --dir for a directory",
    "add yours in a mapping file": "add yours with --mapping",
    "or into another database": "or use another --db",
    "the stored rows were kept": "the stored rows were kept (--allow-regress applies the file's)",
    "keep the last or the first occurrence of each key": "keep the last or the first occurrence of each key "
    "(--on-duplicate last|first)",
}


def flag_words(text: str) -> str:
    """A library message or hint in the command line's words: parameters become the options of `load`."""
    text = _FLAGS.sub(lambda m: f"--{m.group(1)} {m.group(2)}", text)
    text = _NAMES.sub(lambda m: "--" + m.group(1).replace("_", "-"), text)
    text = _SHEET_IGNORED.sub(lambda m: f": --sheet {m.group(1)} ignored: the file is ", text)
    for phrase, flag in _PHRASES.items():
        text = text.replace(phrase, flag)
    return text


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
