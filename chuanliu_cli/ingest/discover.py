"""Which export files a directory holds, and which table each one feeds."""

from __future__ import annotations

from pathlib import Path

from chuanliu_cli.errors import DataError
from chuanliu_cli.schema import TABLES

# File name prefixes that `load --dir` recognises, most specific first.
DIR_PREFIXES: tuple[tuple[str, str], ...] = tuple(
    (prefix, table.name) for table in TABLES.values() for prefix in table.file_prefixes
)
_DATA_SUFFIXES = (".csv", ".tsv", ".txt", ".parquet", ".xlsx", ".xlsm", ".jsonl", ".ndjson", ".json")


def table_for_file(path: Path) -> str | None:
    """The table a file holds, from its name (`orders*`, `订单*`, …), or None."""
    name = path.name.lower()
    for prefix, table in sorted(DIR_PREFIXES, key=lambda p: -len(p[0])):
        if name.startswith(prefix.lower()):
            return table
    return None


def discover(directory: Path) -> list[tuple[str, Path]]:
    """The export files of a directory, recognised by name, as (table, path) in load order."""
    if not directory.is_dir():
        raise DataError(f"{directory}: not a directory")
    found: list[tuple[str, Path]] = []
    for path in sorted(directory.iterdir()):
        if path.is_file() and path.suffix.lower() in _DATA_SUFFIXES:
            table = table_for_file(path)
            if table is not None:
                found.append((table, path))
    if not found:
        raise DataError(
            f"{directory}: no export files found",
            hint="name them orders*, reviews*, livestreams*, shops* (or 订单*, 评价*, 直播*, 店铺*)",
        )
    order = list(TABLES)
    return sorted(found, key=lambda tp: (order.index(tp[0]), str(tp[1])))
