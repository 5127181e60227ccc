"""The rejected rows kept by `load` (SPEC §3 `rejected_rows`), with the table of the load that kept them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from chuanliu_cli.errors import DataError, UsageError
from chuanliu_cli.schema import TABLES
from chuanliu_cli.store.database import first_row

if TYPE_CHECKING:
    import duckdb

#: The columns of a listed rejected row, in order.
REJECT_COLUMNS = ("load_id", "table", "file", "line", "reason", "raw")


@dataclass(frozen=True)
class RejectedRows:
    """Rejected rows in the order they were kept (newest load first, then by line), and how many rows
    matched in all (`rows` holds at most the limit asked for)."""

    rows: tuple[dict[str, Any], ...]
    total: int


def list_rejects(
    con: duckdb.DuckDBPyConnection,
    load_id: int | None = None,
    table: str | None = None,
    limit: int | None = None,
) -> RejectedRows:
    """The rows of `rejected_rows` (all, one load's, or one table's), each with its load's table.

    An unknown load id raises DataError naming the latest loads; an unknown table raises UsageError.
    """
    if table is not None and table not in TABLES:
        raise UsageError(f"unknown table {table!r}", hint=f"tables are {', '.join(TABLES)}")
    if load_id is not None and not first_row(con.execute("SELECT 1 FROM loads WHERE load_id = ?", [load_id])):
        latest = [
            str(r[0])
            for r in con.execute("SELECT load_id FROM loads ORDER BY load_id DESC LIMIT 5").fetchall()
        ]
        raise DataError(
            f"no load {load_id} in this database",
            hint=f"the latest loads are {', '.join(latest)}" if latest else "nothing has been loaded yet",
        )
    where: list[str] = []
    params: list[object] = []
    if load_id is not None:
        where.append("r.load_id = ?")
        params.append(load_id)
    if table is not None:
        where.append('l."table" = ?')
        params.append(table)
    clause = f"WHERE {' AND '.join(where)}" if where else ""
    joined = f"FROM rejected_rows r JOIN loads l ON l.load_id = r.load_id {clause}"
    count = first_row(con.execute(f"SELECT count(*) {joined}", params))
    total = int(count[0]) if count else 0
    # "line 12" and "row 3": in number order, not text order
    number = "TRY_CAST(regexp_extract(r.line, '(\\d+)$', 1) AS BIGINT)"
    cap = "" if limit is None else f" LIMIT {int(limit)}"
    rows = con.execute(
        f'SELECT r.load_id, l."table", r.file, r.line, r.reason, r.raw {joined} '
        f"ORDER BY r.load_id DESC, {number}, r.line{cap}",
        params,
    ).fetchall()
    return RejectedRows(tuple(dict(zip(REJECT_COLUMNS, row, strict=True)) for row in rows), total)
