"""What the store holds: rows per table, months covered, recent loads, rejects and period completeness."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import TYPE_CHECKING

from chuanliu_cli.periods import Period, month_period, week_period
from chuanliu_cli.schema import REQUIRED_TABLES, TABLES
from chuanliu_cli.sqltext import ident
from chuanliu_cli.store.database import first_row, stored_timezone

if TYPE_CHECKING:
    import duckdb

    from chuanliu_cli.rules.model import Ruleset
    from chuanliu_cli.rules.windows import HistoryNeed


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
    # the last loads: load_id, table, file, rows read, inserted, updated, unchanged, rejected, finished at,
    # regressed (updates refused because they would have moved rows backwards)
    loads: list[tuple[object, ...]]
    rejects: int
    complete_months: list[str]
    incomplete_months: list[str]
    timezone: str | None
    # incomplete month -> what it lacks, e.g. "needs orders from 2023-03-03 (90-day windows)"
    month_notes: dict[str, str] = field(default_factory=dict)
    ruleset: str | None = None  # the ruleset whose windows decided completeness


@dataclass(frozen=True)
class MissingHistory:
    """A table whose data starts after the first day a period's windows read (SPEC §6)."""

    table: str
    needed_from: date
    data_from: date | None  # None: the table is empty
    because: str  # which windows need it, e.g. "90-day windows"

    def describe(self) -> str:
        """`needs orders from 2023-03-03 (90-day windows); data from 2023-05-01`."""
        have = f"data from {self.data_from}" if self.data_from else "no data"
        return f"needs {self.table} from {self.needed_from} ({self.because}); {have}"

    def to_dict(self) -> dict[str, str | None]:
        """The JSON shape (json `period.missing_history`, and a recorded run's detail)."""
        return {
            "table": self.table,
            "needed_from": self.needed_from.isoformat(),
            "data_from": self.data_from.isoformat() if self.data_from else None,
            "because": self.because,
        }

    @classmethod
    def from_dict(cls, data: dict[str, str | None]) -> MissingHistory:
        """The inverse of to_dict."""
        needed, have = data["needed_from"], data["data_from"]
        assert data["table"] is not None and needed is not None and data["because"] is not None
        return cls(
            data["table"],
            date.fromisoformat(needed),
            date.fromisoformat(have) if have else None,
            data["because"],
        )


@dataclass(frozen=True)
class Completeness:
    """Whether a period's data covers every window of a ruleset: history before, last day at the end."""

    missing_history: tuple[MissingHistory, ...]
    short_tables: tuple[str, ...]  # tables whose data ends before the period's last day
    last_day: date
    # where each table's data ends (its latest time), to say where a short table stops
    ends: Mapping[str, datetime | None] = field(default_factory=dict)

    @property
    def complete(self) -> bool:
        """True when nothing is missing."""
        return not self.missing_history and not self.short_tables

    def describe(self) -> str:
        """One line naming everything missing (empty when complete)."""
        parts = [m.describe() for m in self.missing_history]
        if self.short_tables:
            verb = "has" if len(self.short_tables) == 1 else "have"
            short = f"{', '.join(self.short_tables)} {verb} no data on or after {self.last_day}"
            ends = [(t, e) for t in self.short_tables if (e := self.ends.get(t)) is not None]
            if len(ends) == 1 and len(self.short_tables) == 1:
                short += f" (its data ends {ends[0][1]:%Y-%m-%d %H:%M})"
            elif ends:
                short += f" (data ends: {', '.join(f'{t} {e:%Y-%m-%d %H:%M}' for t, e in ends)})"
            parts.append(short)
        return "; ".join(parts)


def completeness(
    period: Period,
    needs: Mapping[str, HistoryNeed],
    window: Mapping[str, tuple[datetime | None, datetime | None]],
) -> Completeness:
    """Compare what the ruleset's windows read (`needs`, from rules.windows.history_needed) with the data
    each table holds (`window`: first and last time per table)."""
    missing: list[MissingHistory] = []
    short: list[str] = []
    for table, need in needs.items():
        first, last = window.get(table, (None, None))
        if first is None or first.date() > need.needed_from:
            missing.append(
                MissingHistory(table, need.needed_from, first.date() if first else None, need.because)
            )
        if last is not None and last.date() < period.last_day:  # (an empty table is said above)
            short.append(table)
    ends = {t: window.get(t, (None, None))[1] for t in short}
    return Completeness(tuple(missing), tuple(short), period.last_day, ends)


def data_window(con: duckdb.DuckDBPyConnection) -> dict[str, tuple[datetime | None, datetime | None]]:
    """The first and last time in each required table ((None, None) when it is empty)."""
    out: dict[str, tuple[datetime | None, datetime | None]] = {}
    for name in REQUIRED_TABLES:
        tc = TABLES[name].time_column
        assert tc is not None
        row = first_row(con.execute(f"SELECT min({ident(tc)}), max({ident(tc)}) FROM {ident(name)}"))
        out[name] = (row[0], row[1]) if row else (None, None)
    return out


def store_status(
    con: duckdb.DuckDBPyConnection, last_loads: int = 10, ruleset: Ruleset | None = None
) -> StoreStatus:
    """Collect the status of an open database; months are complete for `ruleset` (default: the bundled
    one) when the data covers every window its scorecards read."""
    from chuanliu_cli.rules.windows import history_needed

    if ruleset is None:
        from chuanliu_cli.rules.files import default_ruleset_path, load_ruleset_cached

        ruleset = load_ruleset_cached(default_ruleset_path(), check=False)
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
        'SELECT load_id, "table", file, rows_read, inserted, updated, unchanged, rejected, finished_at, '
        "regressed FROM loads ORDER BY load_id DESC LIMIT ?",
        [last_loads],
    ).fetchall()
    rej = first_row(con.execute("SELECT count(*) FROM rejected_rows"))
    window = data_window(con)
    complete: list[str] = []
    incomplete: list[str] = []
    notes: dict[str, str] = {}
    for m in sorted(all_months):
        period = month_period(int(m[:4]), int(m[5:7]))
        if ruleset.period == "week":
            # a weekly ruleset's windows are in weeks; a month is complete when its last week is
            period = week_period(period.last_day)
        state = completeness(period, history_needed(ruleset, period), window)
        if state.complete:
            complete.append(m)
        else:
            incomplete.append(m)
            notes[m] = state.describe()
    rejected = int(rej[0]) if rej else 0
    timezone = stored_timezone(con)
    return StoreStatus(tables, loads, rejected, complete, incomplete, timezone, notes, ruleset.name)
