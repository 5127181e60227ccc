"""Each order's brushing and self-purchase flags, kept by the database (SPEC §11), so that scoring does not
find the bursts again (nor read every order's buyer and promoter to compare them).

Finding brushing runs means grouping every order by (shop, buyer) and time: at the platform shape (20M
orders) that doubled a scorecard's scoring. The runs change only when orders do, so every load of orders
finds them once, in the load's transaction, and sets the orders' `brushing_mark` and `self_purchase_mark`
(only where they change; a cps list changes an order's promoter, so the self-purchase flag is set here
too, after every file of the load). `brushing_state` says for which thresholds and which orders: the
orders' row count and the newest load of orders. A query reads the columns (rules/integrity,
`marks=True`) only when the state matches the ruleset's thresholds and the table as it is; otherwise it
finds the flags itself as before. Both are the same orders: the marks are set from the very expressions
of rules/integrity (brushing_order_ids, self_purchase; tests hold them equal).
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


def refresh(con: duckdb.DuckDBPyConnection) -> int:
    """Set every order's brushing_mark (the default thresholds) and self_purchase_mark again, inside the
    caller's transaction, after the orders changed; the number of brushing orders."""
    from chuanliu_cli.rules.integrity import brushing_order_ids, self_purchase

    query = brushing_order_ids(DEFAULT).sql(dialect="duckdb")
    con.execute(f"CREATE OR REPLACE TEMP TABLE brushing_found AS {query}")
    # only the rows whose flag changes are written (new rows come in unmarked)
    con.execute(
        f"UPDATE orders SET {BRUSHING_MARK} = TRUE WHERE order_id IN (SELECT order_id FROM brushing_found) "
        f"AND NOT coalesce({BRUSHING_MARK}, FALSE)"
    )
    con.execute(
        f"UPDATE orders SET {BRUSHING_MARK} = FALSE WHERE coalesce({BRUSHING_MARK}, TRUE) "
        "AND order_id NOT IN (SELECT order_id FROM brushing_found)"
    )
    found = con.execute("SELECT count(*) FROM brushing_found").fetchall()
    con.execute("DROP TABLE brushing_found")
    purchase = self_purchase("orders").sql(dialect="duckdb")
    con.execute(
        f"UPDATE orders SET {SELF_PURCHASE_MARK} = {purchase} "
        f"WHERE {SELF_PURCHASE_MARK} IS DISTINCT FROM ({purchase})"
    )
    k, seconds = DEFAULT.marks_key
    rows, load = orders_now(con)
    con.execute("DELETE FROM brushing_state")
    con.execute("INSERT INTO brushing_state VALUES (?, ?, ?, ?)", [k, seconds, rows, load])
    return int(found[0][0])
