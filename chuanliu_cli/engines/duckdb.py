"""The DuckDB engine: compiled metric queries on a connection (a database file, or --data in memory)."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from chuanliu_cli.arrays import ArrowStream, frame_of
from chuanliu_cli.engines.base import Engine
from chuanliu_cli.errors import DataError
from chuanliu_cli.sqltext import ident, literal

if TYPE_CHECKING:
    from collections.abc import Sequence

    import duckdb
    import polars as pl

    from chuanliu_cli.rules.model import Integrity


class DuckDBEngine:
    """Metric queries on a DuckDB connection (a database file or the in-memory load of --data)."""

    dialect = "duckdb"

    def __init__(self, con: duckdb.DuckDBPyConnection) -> None:
        self.con = con

    def query(self, sql: str, order_by: str | None = None) -> pl.DataFrame:
        """Run SQL (sorted by `order_by`: DuckDB sorts 2.7M string keys in half the time polars takes); a
        DuckDB error becomes a DataError naming the first line."""
        import duckdb

        if order_by is not None:
            sql = f"SELECT * FROM ({sql}) ORDER BY {ident(order_by)}"
        try:
            return frame_of(self.con.sql(sql))
        except duckdb.Error as exc:
            raise DataError(f"the metric query failed: {str(exc).splitlines()[0]}") from None

    def register(self, name: str, frame: pl.DataFrame) -> None:
        """Register a frame as a view."""
        self.con.register(name, ArrowStream(frame))

    def unregister(self, name: str) -> None:
        """Drop a registered view."""
        self.con.unregister(name)

    def data_window(self) -> dict[str, tuple[datetime | None, datetime | None]]:
        """min/max of each required table's time column."""
        from chuanliu_cli.store.status import data_window

        return data_window(self.con)

    def names(self, key: str, keys: Sequence[str] | None = None) -> pl.DataFrame | None:
        """Shop names for shop keys, the latest item name for item keys; with `keys`, those keys' only."""
        from chuanliu_cli.store.names import names_query

        sql = names_query(self.con, key)  # (the names a load stored, while they are the orders')
        if sql is None:
            return None
        if keys is not None:
            # (literals: DuckDB pushes `k IN (...)` below the GROUP BY, not a parameter list's unnest)
            sql = f"SELECT * FROM ({sql}) AS named WHERE k IN ({', '.join(map(literal, keys)) or 'NULL'})"
        return self.query(sql)

    def brushing_marks(self, integrity: Integrity) -> bool:
        """Whether the database keeps the brushing orders of these thresholds for its orders as they are."""
        from chuanliu_cli.store.brushing import current

        return current(self.con, integrity)


def as_engine(source: Engine | duckdb.DuckDBPyConnection) -> Engine:
    """An Engine for a DuckDB connection (engines pass through)."""
    if hasattr(source, "query") and hasattr(source, "dialect"):
        return source  # type: ignore[return-value]
    return DuckDBEngine(source)  # type: ignore[arg-type]
