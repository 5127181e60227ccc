"""The brushing orders the database keeps (SPEC §11), so that scoring does not find the bursts again.

Finding brushing runs means grouping every order by (shop, buyer) and time: at the platform shape (20M
orders) that more than doubled a scorecard's query. The runs change only when orders do, so every load of
orders finds them once, in the load's transaction, for the default thresholds and any others kept, and
`brushing_state` says for which orders they hold: the orders' row count and the newest load of orders.
A query reads them (rules/integrity `marks=True`) only when that state still matches the table;
otherwise, or for thresholds not kept, it finds them itself as before. Both are the same orders: the
stored ones are computed by the very query of rules/integrity.brushing_order_ids.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from chuanliu_cli.rules.model import Integrity

if TYPE_CHECKING:
    import duckdb

#: The thresholds every database keeps brushing orders for: the SPEC §11 defaults.
DEFAULT = Integrity()


def _orders_now(con: duckdb.DuckDBPyConnection) -> tuple[int, int | None]:
    """The orders' row count and the newest load of orders (None: none recorded)."""
    rows = con.execute(
        "SELECT (SELECT count(*) FROM orders), (SELECT max(load_id) FROM loads WHERE \"table\" = 'orders')"
    ).fetchall()
    count, load = rows[0]
    return int(count), None if load is None else int(load)


def _has_tables(con: duckdb.DuckDBPyConnection) -> bool:
    rows = con.execute(
        "SELECT count(*) FROM duckdb_tables() WHERE database_name = current_database() "
        "AND schema_name = 'main' AND table_name IN ('brushing_marks', 'brushing_state')"
    ).fetchall()
    return int(rows[0][0]) == 2


def current(con: duckdb.DuckDBPyConnection, integrity: Integrity) -> bool:
    """Whether the database keeps the brushing orders of these thresholds for its orders as they are."""
    if not _has_tables(con):
        return False
    k, seconds = integrity.marks_key
    state = con.execute(
        "SELECT orders_rows, load_id FROM brushing_state WHERE orders = ? AND within_seconds = ?",
        [k, seconds],
    ).fetchall()
    return bool(state) and (state[0][0], state[0][1]) == _orders_now(con)


def refresh(con: duckdb.DuckDBPyConnection) -> int:
    """Find the brushing orders again for every thresholds kept (the defaults always), inside the caller's
    transaction, after the orders changed; the number of brushing orders at the default thresholds."""
    from chuanliu_cli.rules.integrity import brushing_order_ids

    kept = {DEFAULT.marks_key}
    stored = con.execute("SELECT orders, within_seconds FROM brushing_state").fetchall()
    kept |= {(int(k), int(s)) for k, s in stored}
    rows, load = _orders_now(con)
    found = 0
    for k, seconds in sorted(kept):
        integrity = Integrity(brushing_orders=k, brushing_within=seconds / 60)
        con.execute("DELETE FROM brushing_marks WHERE orders = ? AND within_seconds = ?", [k, seconds])
        query = brushing_order_ids(integrity).sql(dialect="duckdb")
        con.execute(f"INSERT INTO brushing_marks SELECT {k}, {seconds}, order_id FROM ({query})")
        con.execute("INSERT OR REPLACE INTO brushing_state VALUES (?, ?, ?, ?)", [k, seconds, rows, load])
        if (k, seconds) == DEFAULT.marks_key:
            count = con.execute(
                "SELECT count(*) FROM brushing_marks WHERE orders = ? AND within_seconds = ?", [k, seconds]
            ).fetchall()
            found = int(count[0][0])
    return found
