"""The latest item and promoter names, kept by the database so that a scorecard keyed by item or promoter
does not find them again in every order at each scoring.

An item's name is that of its latest order, a promoter's that of its latest order that names it
(engines/base.NAME_QUERIES: the one definition, which Spark and a database without the kept names run as
they are). Finding them groups every order by key: 0.9 s of the product scorecard's 13 s at 20M orders,
and it grows with the orders however few entities are asked for. The names change only when orders do, so
every load of orders (or of a cps list, which names promoters) stores them again, in the load's
transaction, with `names_state`: the orders' row count and the newest load that changed orders. A query
reads the stored names only while that state matches the orders as they are (brushing.py's test);
otherwise it groups the orders as before. Both give the same names (tests/test_names_kept.py).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from chuanliu_cli.engines.base import NAME_QUERIES
from chuanliu_cli.store.brushing import orders_now

if TYPE_CHECKING:
    import duckdb

#: The stored names of each key that NAME_QUERIES finds in the orders.
KEPT = {"item_id": "item_names", "promoter_id": "promoter_names"}


def _kept(con: duckdb.DuckDBPyConnection) -> bool:
    """Whether this database keeps the names (schema version 7 and later)."""
    rows = con.execute(
        "SELECT count(*) FROM duckdb_tables() WHERE database_name = current_database() "
        "AND schema_name = 'main' AND table_name = 'names_state'"
    ).fetchall()
    return int(rows[0][0]) == 1


def current(con: duckdb.DuckDBPyConnection) -> bool:
    """Whether the stored names are those of the orders as they are."""
    if not _kept(con):
        return False
    state = con.execute("SELECT orders_rows, load_id FROM names_state").fetchall()
    return len(state) == 1 and (state[0][0], state[0][1]) == orders_now(con)


def names_query(con: duckdb.DuckDBPyConnection, key: str) -> str | None:
    """The query of `key`'s names (k, name, ...): the stored names while they are current, else
    NAME_QUERIES'; None for a key without names."""
    table = KEPT.get(key)
    if table is not None and current(con):
        return f"SELECT k, name FROM {table}"
    return NAME_QUERIES.get(key)


def refresh(con: duckdb.DuckDBPyConnection) -> None:
    """Store every kept key's names again, inside the caller's transaction, after the orders changed."""
    for key, table in KEPT.items():
        con.execute(f"CREATE OR REPLACE TABLE {table} AS {NAME_QUERIES[key]}")
    rows, load = orders_now(con)
    con.execute("DELETE FROM names_state")
    con.execute("INSERT INTO names_state VALUES (?, ?)", [rows, load])
