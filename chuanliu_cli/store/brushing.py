"""Each order's brushing and self-purchase flags, kept by the database (SPEC §11), so that scoring does not
find the bursts again (nor read every order's buyer and promoter to compare them).

Finding brushing runs means grouping every order by (shop, buyer) and time: at the platform shape (20M
orders) that doubled a scorecard's scoring. The runs change only when orders do, so every load of orders
finds them once, in the load's transaction, and sets the orders' `brushing_mark` and `self_purchase_mark`
(only where they change; a cps list changes an order's promoter, so the self-purchase flag is set here too,
after every file of the load). A load that only inserted orders (`inserted_since`) looks again only at the
(shop, buyer) pairs of its rows, since a run is one buyer's orders at one shop. `brushing_state` says for
which thresholds and which orders: the orders' row count and the newest load of orders. A query reads the
columns (rules/integrity, `marks=True`) only when the state matches the ruleset's thresholds and the table
as it is; otherwise it finds the flags itself as before. Both are the same orders: the marks are set from
the very expressions of rules/integrity (brushing_order_ids, self_purchase; tests hold them equal).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from chuanliu_cli.rules.model import Integrity
from chuanliu_cli.schema import BRUSHING_MARK, SELF_PURCHASE_MARK

if TYPE_CHECKING:
    import duckdb

#: The thresholds the database keeps the flag for: the SPEC §11 defaults.
DEFAULT = Integrity()
#: The loads that change stored orders: orders files, and cps lists (they mark orders as distribution
#: orders of a promoter, which can make an order a self-purchase). The loader refreshes the marks after
#: them, and the marks are current only while none came since.
ORDER_CHANGING_TABLES = ("orders", "cps_marks")


def orders_now(con: duckdb.DuckDBPyConnection) -> tuple[int, int | None]:
    """The orders' row count and the newest load that changed orders (an orders file or a cps list; None:
    none recorded)."""
    rows = con.execute(
        "SELECT (SELECT count(*) FROM orders), "
        '(SELECT max(load_id) FROM loads WHERE list_contains(?, "table"))',
        [list(ORDER_CHANGING_TABLES)],
    ).fetchall()
    count, load = rows[0]
    return int(count), None if load is None else int(load)


def _kept(con: duckdb.DuckDBPyConnection) -> bool:
    """Whether this database has the column and the state (schema version 6 and later)."""
    rows = con.execute(
        "SELECT count(*) FROM duckdb_columns() WHERE database_name = current_database() "
        "AND schema_name = 'main' AND table_name = 'orders' AND column_name = ?",
        [BRUSHING_MARK],
    ).fetchall()
    return int(rows[0][0]) == 1


def current(con: duckdb.DuckDBPyConnection, integrity: Integrity) -> bool:
    """Whether the orders' marks hold the flags of these thresholds for the orders as they are."""
    if not _kept(con):
        return False
    k, seconds = integrity.marks_key
    state = con.execute(
        "SELECT orders_rows, load_id FROM brushing_state WHERE orders = ? AND within_seconds = ?",
        [k, seconds],
    ).fetchall()
    return len(state) == 1 and (state[0][0], state[0][1]) == orders_now(con)


def inserted_since(con: duckdb.DuckDBPyConnection, rows: int | None, load: int | None) -> str | None:
    """A query of the order ids inserted since the orders were `rows` rows as of load `load` (a state kept
    with something derived from them), when inserting those is all that changed the orders since: every
    load since is of orders, updated none and recorded the keys it inserted (load_changes), and the row
    counts add up. None otherwise (no state, an update, a cps list, a first load into an empty table, rows
    written outside a load): then what is derived must be derived from every order again."""
    if rows is None or load is None:
        return None
    found = con.execute(
        "SELECT count(*) FILTER (WHERE \"table\" <> 'orders' OR updated <> 0), coalesce(sum(inserted), 0) "
        'FROM loads WHERE load_id > ? AND list_contains(?, "table")',
        [load, list(ORDER_CHANGING_TABLES)],
    ).fetchall()
    other, inserted = int(found[0][0]), int(found[0][1])
    changes = f"FROM load_changes WHERE load_id > {int(load)} AND \"table\" = 'orders'"
    recorded = con.execute(
        f"SELECT count(*), count(*) FILTER (WHERE change <> 'insert') {changes}"
    ).fetchall()
    now, _newest = orders_now(con)
    if other or recorded[0][1] or int(recorded[0][0]) != inserted or int(rows) + inserted != now:
        return None
    return f'SELECT "key" {changes}'


def over_orders(query: str, rows: str) -> str:
    """`query` (a statement that reads the table orders, its CTEs first if it has any) over the orders that
    `rows` selects: a CTE named orders, defined before the query's own, stands for the table."""
    assert not query.startswith("WITH RECURSIVE")
    scope = f"orders AS ({rows})"
    if query.startswith("WITH "):
        return f"WITH {scope}, {query.removeprefix('WITH ')}"
    return f"WITH {scope} {query}"


def _mark_queries() -> tuple[str, str]:
    """The SELECT of the brushing orders under the default thresholds and the self-purchase test of an order
    (alias orders), as DuckDB text: rendered from rules/integrity's trees once per build of chuanliu and kept
    in the cache of rules/cache.py (a load of the sample then does not import sqlglot)."""
    from chuanliu_cli.rules import cache

    def render() -> tuple[str, str]:
        from chuanliu_cli.rules.integrity import brushing_order_ids, self_purchase

        brushing = brushing_order_ids(DEFAULT).sql(dialect="duckdb")
        return brushing, self_purchase("orders").sql(dialect="duckdb")

    return cache.remembered("brushing-marks", cache.model_digest(DEFAULT), render)


def refresh(con: duckdb.DuckDBPyConnection) -> str:
    """Set the orders' brushing_mark (the default thresholds) and self_purchase_mark again, inside the
    caller's transaction, after the orders changed: when the load only inserted orders, only those of the
    (shop, buyer) pairs of its rows (a burst is one buyer's orders at one shop) and the self-purchase mark of
    its own rows; otherwise every order's. Which it did: "inserted" or "all"."""
    k, seconds = DEFAULT.marks_key
    state = con.execute(
        "SELECT orders_rows, load_id FROM brushing_state WHERE orders = ? AND within_seconds = ?",
        [k, seconds],
    ).fetchall()
    touched = inserted_since(con, state[0][0], state[0][1]) if len(state) == 1 else None
    query, purchase = _mark_queries()
    pairs = ""
    if touched is None:
        con.execute(f"CREATE OR REPLACE TEMP TABLE brushing_found AS {query}")
    else:
        con.execute(
            "CREATE OR REPLACE TEMP TABLE __pairs AS SELECT DISTINCT shop_id, buyer_id FROM orders "
            f"WHERE order_id IN ({touched}) AND shop_id IS NOT NULL AND buyer_id IS NOT NULL"
        )
        scope = (
            "SELECT o.* FROM main.orders AS o SEMI JOIN __pairs AS p ON o.shop_id = p.shop_id "
            "AND o.buyer_id = p.buyer_id"
        )
        con.execute(f"CREATE OR REPLACE TEMP TABLE brushing_found AS {over_orders(query, scope)}")
        pairs = (
            " AND EXISTS (SELECT 1 FROM __pairs AS p WHERE p.shop_id = orders.shop_id "
            "AND p.buyer_id = orders.buyer_id)"
        )
    # only the rows whose flag changes are written (new rows come in unmarked)
    con.execute(
        f"UPDATE orders SET {BRUSHING_MARK} = TRUE WHERE order_id IN (SELECT order_id FROM brushing_found) "
        f"AND NOT coalesce({BRUSHING_MARK}, FALSE)"
    )
    con.execute(
        f"UPDATE orders SET {BRUSHING_MARK} = FALSE WHERE coalesce({BRUSHING_MARK}, TRUE) "
        f"AND order_id NOT IN (SELECT order_id FROM brushing_found){pairs}"
    )
    con.execute("DROP TABLE brushing_found")
    con.execute("DROP TABLE IF EXISTS __pairs")
    only = "" if touched is None else f" AND order_id IN ({touched})"
    con.execute(
        f"UPDATE orders SET {SELF_PURCHASE_MARK} = {purchase} "
        f"WHERE {SELF_PURCHASE_MARK} IS DISTINCT FROM ({purchase}){only}"
    )
    rows, load = orders_now(con)
    con.execute("DELETE FROM brushing_state")
    con.execute("INSERT INTO brushing_state VALUES (?, ?, ?, ?)", [k, seconds, rows, load])
    return "all" if touched is None else "inserted"
