"""The conversion query's text as the loader asks for it, without building it when it is kept.

`canonical` builds the query as sqlglot trees and renders it (a few hundred milliseconds a table, and
sqlglot's import); the text is kept by its inputs in this process and in the cache of rules/cache.py, so
that a command whose queries are kept neither imports sqlglot nor renders anything.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

    import duckdb

    from chuanliu_cli.ingest.mapping import TableMapping
    from chuanliu_cli.schema import Table

Dialect = Literal["duckdb", "spark"]

#: A duration that differs from end − start by more than this many minutes is loaded as given, with a warning.
DURATION_TOLERANCE = 5
#: Rows shown in a warning about valid rows.
SHOW_WARNINGS = 5
#: The table whose valid rows are checked for a duration that disagrees with the times.
DURATION_TABLE = "livestreams"


#: White space around an id that every reading of an id removes (a loaded cell, an id asked for on the
#: command line): spaces, tabs, line breaks, no-break and ideographic spaces, zero-width space, BOM.
ID_EDGES = (" ", "\t", "\n", "\r", "\f", "\u00a0", "\u3000", "\u200b", "\ufeff")


def bare_id(text: str) -> str:
    """An id as given (`" ks700001"`, pasted from a sheet) without the white space a load removes too."""
    return text.strip("".join(ID_EDGES))


#: Columns that a file without them still decides from other columns it has (canonical._outputs): a
#: sale mode from the promoter, a session's duration from its times.
DECIDED_BY = {"sale_mode": ("promoter_id",), "duration_minutes": ("start_time", "end_time")}


def unsaid_columns(table: Table, present: Iterable[str]) -> list[str]:
    """The stored columns a file with the columns `present` (with those a mapping's `defaults:` gives it)
    says nothing about: not in it, not derived, not decided by columns it has. A row the file updates
    keeps its stored values of these (its new rows take the defaults): a second export without the
    carrier does not turn every live-room order into 'other'."""
    have = set(present)
    return [
        c.name
        for c in table.columns
        if not c.derived
        and c.name not in have
        and not (c.name in DECIDED_BY and have.issuperset(DECIDED_BY[c.name]))
    ]


# Rendered queries by their inputs (the mapping by its content): the loader converts a file batch by batch
# with the same columns and types, and rendering the trees costs a few hundred milliseconds a table, so the
# text is also kept in the cache of rules/cache.py, from one command to the next.
_RENDERED: dict[tuple[object, ...], str] = {}


def conversion_sql(
    tm: TableMapping,
    present: dict[str, str],
    timezone: str,
    source: str = "batch",
    raw_text: list[str] | None = None,
    dialect: Dialect = "duckdb",
) -> tuple[str, list[str]]:
    """The SELECT converting relation `source` into the table's columns, `__line` and `__reason`.

    `source` has the canonical column names, `__line` and `__shape` (the reason a row could not be read
    as a row, else NULL). `present` maps each canonical column found in it to its type, in DuckDB's names
    (VARCHAR, DOUBLE, DECIMAL(14,2), TIMESTAMP WITH TIME ZONE, ...). With `raw_text` (canonical columns in
    file order) the SELECT also has `__raw`: those cells as one CSV line, for `rejected_rows` (DuckDB
    computes it only when a query reads it). Returns the SQL in `dialect` and the output column names (the
    table's columns in storage order).
    """
    from chuanliu_cli.rules import cache

    question = (tuple(present.items()), timezone, source, tuple(raw_text or ()), raw_text is None, dialect)
    digest = cache.model_digest(tm)

    def render() -> str:
        from chuanliu_cli.ingest import canonical  # (sqlglot: only when the text is not kept)

        return canonical.render_conversion(tm, present, timezone, source, raw_text, dialect)

    text = _kept("conversion", (digest, *question), (digest, repr(question)), render)
    return text, list(tm.table.names)


def merge_sql(table: str, unsaid: list[str], source: str, target: str) -> str:
    """The SELECT of `source`'s converted rows with the columns the file says nothing about (`unsaid`,
    unsaid_columns) kept from the stored row of the same key in `target`, the derived columns computed
    again, and `__kept$<column>` for each of `unsaid` (the row keeps a stored value that differs from the
    file's default)."""
    question = (table, tuple(unsaid), source, target)

    def render() -> str:
        from chuanliu_cli.ingest import canonical  # (sqlglot: only when the text is not kept)
        from chuanliu_cli.schema import TABLES

        return canonical.render_merge(TABLES[table], unsaid, source, target, "duckdb")

    return _kept("merge", ("merge", *question), repr(question), render)


def _kept(
    kind: str, key: tuple[object, ...], question: str | tuple[str, ...], render: Callable[[], str]
) -> str:
    """`render()`'s text, kept by `key` in this process and by `question` in the cache of rules/cache.py
    (`kind`), so that a command whose queries are kept renders nothing."""
    from chuanliu_cli.rules import cache

    hit = _RENDERED.get(key)
    if hit is None:
        if len(_RENDERED) > 256:
            _RENDERED.clear()
        hit = cache.remembered(kind, question, render)
        _RENDERED[key] = hit
    return hit


def duration_warning(source: str, rows: list[tuple[object, ...]], line_label: str = "line") -> str | None:
    """The warning for the rows of `duration_warning_sql` (None when there are none)."""
    if not rows:
        return None
    n = int(str(rows[0][4]))
    sessions = "session" if n == 1 else "sessions"
    shown = "; ".join(
        (f"{line_label} {line} " if line is not None else "")
        + f"(live_id {key}): duration_minutes {float(str(d)):g}, end_time − start_time {float(str(b)):g}"
        for line, key, d, b, _n_ in rows
    )
    return (
        f"{source}: {n} {sessions} whose duration_minutes differs from end_time − start_time by more than "
        f"{DURATION_TOLERANCE} minutes, loaded with the duration as given: {shown}"
        + (" …" if n > len(rows) else "")
    )


def row_warnings(
    con: duckdb.DuckDBPyConnection, table: str, source: str, name: str, line_label: str
) -> list[str]:
    """Warnings about valid rows of the converted relation `source` of file `name` (loaded as they are):
    sessions whose duration disagrees with their times."""
    if table != DURATION_TABLE:
        return []  # (no query to render: `cache.remembered` keeps no None)
    from chuanliu_cli.rules import cache

    def render() -> str | None:
        from chuanliu_cli.ingest import canonical

        return canonical.duration_warning_sql(table, source)

    sql = cache.remembered("duration-warning", (table, source), render)
    if sql is None:
        return []
    text = duration_warning(name, con.execute(sql).fetchall(), line_label)
    return [text] if text else []
