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
from chuanliu_cli.store.brushing import inserted_since, orders_now, over_orders

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


def stored_query(key: str) -> str:
    """What is stored for `key`: NAME_QUERIES' rows but the one of the NULL key (which names nothing: no
    result row has a NULL key, and a join never matches it)."""
    return f"SELECT * FROM ({NAME_QUERIES[key]}) AS named WHERE named.k IS NOT NULL"


def names_query(con: duckdb.DuckDBPyConnection, key: str) -> str | None:
    """The query of `key`'s names (k, name, ...): the stored names while they are current, else
    NAME_QUERIES'; None for a key without names."""
    table = KEPT.get(key)
    if table is not None and current(con):
        return f"SELECT k, name FROM {table}"
    return NAME_QUERIES.get(key)


def refresh(con: duckdb.DuckDBPyConnection) -> str:
    """Store the kept keys' names again, inside the caller's transaction, after the orders changed: only
    those of the items and promoters of the orders inserted since the stored state when nothing else
    changed (a new month's orders: proportional to the load), else all of them. Which it did: "inserted"
    or "all"."""
    state = con.execute("SELECT orders_rows, load_id FROM names_state").fetchall()
    touched = inserted_since(con, state[0][0], state[0][1]) if len(state) == 1 else None
    for key, table in KEPT.items():
        if touched is None:
            con.execute(f"CREATE OR REPLACE TABLE {table} AS {stored_query(key)}")
            continue
        con.execute(
            f"CREATE OR REPLACE TEMP TABLE __named AS SELECT DISTINCT {key} AS k FROM orders "
            f"WHERE order_id IN ({touched}) AND {key} IS NOT NULL"
        )
        con.execute(f"DELETE FROM {table} WHERE k IN (SELECT k FROM __named)")
        scope = f"SELECT * FROM main.orders WHERE {key} IN (SELECT k FROM __named)"
        con.execute(f"INSERT INTO {table} {over_orders(stored_query(key), scope)}")
        con.execute("DROP TABLE __named")
    rows, load = orders_now(con)
    con.execute("DELETE FROM names_state")
    con.execute("INSERT INTO names_state VALUES (?, ?)", [rows, load])
    return "all" if touched is None else "inserted"
