"""What the store holds: rows per table, months covered, recent loads, rejects and period completeness."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

from chuanliu_cli.periods import Period, month_period
from chuanliu_cli.schema import REQUIRED_TABLES, TABLES
from chuanliu_cli.sqltext import ident
from chuanliu_cli.store.database import first_row

if TYPE_CHECKING:
    import duckdb


@dataclass
class TableStatus:
    """One data table: row count, time span and rows per month."""

    name: str
    rows: int
    time_min: datetime | None
    time_max: datetime | None
    months: dict[str, int] = field(default_factory=dict)


@dataclass
class StoreStatus:
    """Everything `chuanliu status` shows."""

    tables: list[TableStatus]
    loads: list[tuple[object, ...]]
    rejects: int
    complete_months: list[str]
    incomplete_months: list[str]
    timezone: str | None


def data_window(con: duckdb.DuckDBPyConnection) -> dict[str, tuple[datetime | None, datetime | None]]:
    """The first and last time in each required table ((None, None) when it is empty)."""
    out: dict[str, tuple[datetime | None, datetime | None]] = {}
    for name in REQUIRED_TABLES:
        tc = TABLES[name].time_column
        assert tc is not None
        row = first_row(con.execute(f"SELECT min({ident(tc)}), max({ident(tc)}) FROM {ident(name)}"))
        out[name] = (row[0], row[1]) if row else (None, None)
    return out


def is_complete(period: Period, ends: dict[str, datetime | None]) -> bool:
    """SPEC §6: a period is complete when each required table has data on or after its last day."""
    return all(end is not None and end.date() >= period.last_day for end in ends.values())


def incomplete_tables(period: Period, ends: dict[str, datetime | None]) -> list[str]:
    """The required tables whose data stops before the period's last day."""
    return [n for n, end in ends.items() if end is None or end.date() < period.last_day]


def store_status(con: duckdb.DuckDBPyConnection, last_loads: int = 10) -> StoreStatus:
    """Collect the status of an open database."""
    tables = []
    all_months: set[str] = set()
    for name, table in TABLES.items():
        row = first_row(con.execute(f"SELECT count(*) FROM {ident(name)}"))
        ts = TableStatus(name, int(row[0]) if row else 0, None, None)
        if table.time_column:
            tc = ident(table.time_column)
            span = first_row(con.execute(f"SELECT min({tc}), max({tc}) FROM {ident(name)}"))
            if span:
                ts.time_min, ts.time_max = span
            for month, count in con.execute(
                f"SELECT strftime({tc}, '%Y-%m') AS m, count(*) FROM {ident(name)} GROUP BY m ORDER BY m"
            ).fetchall():
                ts.months[str(month)] = int(count)
                all_months.add(str(month))
        tables.append(ts)
    loads = con.execute(
        'SELECT load_id, "table", file, rows_read, inserted, updated, unchanged, rejected, finished_at '
        "FROM loads ORDER BY load_id DESC LIMIT ?",
        [last_loads],
    ).fetchall()
    rej = first_row(con.execute("SELECT count(*) FROM rejected_rows"))
    ends = {t: hi for t, (_, hi) in data_window(con).items()}
    complete: list[str] = []
    incomplete: list[str] = []
    for m in sorted(all_months):
        period = month_period(int(m[:4]), int(m[5:7]))
        (complete if is_complete(period, ends) else incomplete).append(m)
    tz = first_row(con.execute("SELECT value FROM chuanliu_meta WHERE key = 'timezone'"))
    return StoreStatus(tables, loads, int(rej[0]) if rej else 0, complete, incomplete, tz[0] if tz else None)
