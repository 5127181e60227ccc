"""Typed, validated rows from text cells: one SQL query per batch turns raw cells into canonical columns
plus a reason for every row that must be rejected (SPEC §2 parsing rules)."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from chuanliu_cli.ingest.mapping import TableMapping
from chuanliu_cli.schema import QUALITY_REFUND_REASONS, SQL_TYPES, Column
from chuanliu_cli.sqltext import ident, literal

if TYPE_CHECKING:
    import duckdb

# Timestamps before this or from this on are refused: they are typing errors, not Kuaishou orders.
MIN_TIME = "2000-01-01"
MAX_TIME = "2100-01-01"

_NAIVE_FORMATS = (
    "%Y-%m-%d %H:%M:%S",
    "%Y-%m-%d %H:%M:%S.%f",
    "%Y-%m-%d %H:%M",
    "%Y-%m-%dT%H:%M:%S",
    "%Y-%m-%dT%H:%M:%S.%f",
    "%Y-%m-%dT%H:%M",
    "%Y/%m/%d %H:%M:%S",
    "%Y/%m/%d %H:%M",
    "%Y/%m/%d %H:%M:%S.%f",
    "%Y-%m-%d",
    "%Y/%m/%d",
    "%Y%m%d %H:%M:%S",
    "%Y年%m月%d日 %H:%M:%S",
    "%Y年%m月%d日 %H:%M",
    "%Y年%m月%d日",
)
_AWARE_FORMATS = (
    "%Y-%m-%dT%H:%M:%S%z",
    "%Y-%m-%dT%H:%M:%S.%f%z",
    "%Y-%m-%d %H:%M:%S%z",
    "%Y-%m-%d %H:%M:%S.%f%z",
    "%Y-%m-%dT%H:%M%z",
)


def _list(items: tuple[str, ...]) -> str:
    return "[" + ", ".join(literal(i) for i in items) + "]"


def install_macros(con: duckdb.DuckDBPyConnection, timezone: str) -> None:
    """Parsing helpers as temporary macros of this connection (`timezone` is a validated zone name)."""
    tz = literal(timezone)
    statements = [
        # Amounts: ¥/￥, thousands separators, spaces and 元 are dropped; a trailing 万 multiplies by 10,000.
        r"CREATE OR REPLACE TEMP MACRO chl_clean(x) AS regexp_replace(trim(x), '[,¥￥\s元]', '', 'g')",
        "CREATE OR REPLACE TEMP MACRO chl_blank(x) AS (x IS NULL OR chl_clean(x) IN ('', '-', '--'))",
        """CREATE OR REPLACE TEMP MACRO chl_decimal(x) AS CASE
            WHEN chl_blank(x) THEN NULL
            WHEN ends_with(chl_clean(x), '万')
                THEN try_cast(try_cast(left(chl_clean(x), -1) AS DECIMAL(28,6)) * 10000 AS DECIMAL(38,6))
            ELSE try_cast(chl_clean(x) AS DECIMAL(38,6)) END""",
        f"""CREATE OR REPLACE TEMP MACRO chl_time(x) AS CASE
            WHEN x IS NULL OR trim(x) = '' THEN NULL
            WHEN regexp_full_match(trim(x), '[0-9]{{12,13}}')
                THEN timezone({tz}, to_timestamp(cast(trim(x) AS BIGINT) / 1000.0))
            WHEN regexp_full_match(trim(x), '[0-9]{{5}}(\\.[0-9]+)?')
                THEN TIMESTAMP '1899-12-30'
                     + to_microseconds(cast(round(cast(trim(x) AS DOUBLE) * 86400000000) AS BIGINT))
            WHEN regexp_matches(trim(x), '([+-](0[0-9]|1[0-8]):?[0-5][0-9]|Z)$')
                THEN timezone({tz}, try_strptime(regexp_replace(trim(x), 'Z$', '+00:00'),
                                                 {_list(_AWARE_FORMATS)}))
            ELSE try_strptime(trim(x), {_list(_NAIVE_FORMATS)}) END""",
    ]
    for s in statements:
        con.execute(s)


def _show(raw: str) -> str:
    """SQL text that renders a raw cell for a message: quoted and cut to 60 characters."""
    # control characters (line breaks, ESC) would break the one-line message or reach the terminal
    cut = f"left(cast({raw} AS VARCHAR), 60)"
    return f"'''' || regexp_replace({cut}, '[\\x00-\\x1f\\x7f]', '?', 'g') || ''''"


def _parse(col: Column, raw: str, source_type: str, tm: TableMapping, timezone: str) -> str:
    """SQL parsing the raw cell `raw` (of DuckDB type `source_type`) into the column's canonical type."""
    st = source_type.upper()
    is_text = st == "VARCHAR"
    is_number = any(k in st for k in ("INT", "DOUBLE", "FLOAT", "DECIMAL", "REAL"))
    scale = tm.scale.get(col.name)
    if col.type == "text":
        if is_text:
            # trim only cells that need it: most ids have no surrounding spaces, and trim copies
            return (
                f"CASE WHEN {raw} = '' THEN NULL WHEN starts_with({raw}, ' ') OR ends_with({raw}, ' ') "
                f"OR starts_with({raw}, '\t') OR ends_with({raw}, '\t') THEN nullif(trim({raw}), '') "
                f"ELSE {raw} END"
            )
        if st in ("DOUBLE", "FLOAT", "REAL"):
            # Whole numbers stored as floats (spreadsheets) print without a trailing .0.
            return (
                f"CASE WHEN isfinite({raw}) AND {raw} = floor({raw}) AND abs({raw}) < 1e38 "
                f"THEN cast(try_cast({raw} AS HUGEINT) AS VARCHAR) ELSE cast({raw} AS VARCHAR) END"
            )
        return f"cast({raw} AS VARCHAR)"
    if col.type in ("enum", "boolean"):
        if col.type == "boolean" and st == "BOOLEAN":
            return f"cast({raw} AS VARCHAR)"
        values = tm.values.get(col.name, {})
        key = f"lower(trim(cast({raw} AS VARCHAR)))"
        if is_number:
            # 1.0 from a spreadsheet is the code 1
            key = f"lower(trim(regexp_replace(cast({raw} AS VARCHAR), '\\.0+$', '')))"
        whens = " ".join(f"WHEN {literal(k)} THEN {literal(v)}" for k, v in sorted(values.items()))
        lookup = f"CASE {key} {whens} ELSE NULL END"
        if not is_text:
            return lookup
        # most exports already hold canonical values: a cheap IN test before the lookup
        canonical = ", ".join(literal(v) for v in sorted(set(values.values())))
        return f"CASE WHEN {raw} IN ({canonical}) THEN {raw} ELSE {lookup} END"
    if col.type == "timestamp":
        if st == "TIMESTAMP" or st.startswith("TIMESTAMP_") or st == "DATE":
            return f"cast({raw} AS TIMESTAMP)"
        if st == "TIMESTAMP WITH TIME ZONE":
            return f"timezone({literal(timezone)}, {raw})"
        if is_number:
            # epoch milliseconds are whole numbers; Excel serials keep their fraction of a day
            return (
                f"CASE WHEN {raw} >= 100000000000 THEN chl_time(cast(try_cast({raw} AS BIGINT) AS VARCHAR)) "
                f"ELSE chl_time(cast({raw} AS VARCHAR)) END"
            )
        return f"chl_time(cast({raw} AS VARCHAR))"
    # numeric kinds
    if scale is None and (fast := _typed_number(col, st)) is not None:
        return fast.format(raw=raw)
    value = f"try_cast({raw} AS DECIMAL(38,6))" if is_number else f"chl_decimal(cast({raw} AS VARCHAR))"
    if scale is not None:
        value = f"try_cast({value} * cast({literal(repr(scale))} AS DECIMAL(38,12)) AS DECIMAL(38,6))"
    return value


# integer types whose every value is below 1e12 (an amount's range), and the ones a BIGINT holds exactly
_INTS_BELOW_1E12 = ("TINYINT", "SMALLINT", "INTEGER", "UTINYINT", "USMALLINT", "UINTEGER")
_INTS = (*_INTS_BELOW_1E12, "BIGINT")
_DECIMAL = re.compile(r"DECIMAL\((\d+),\s*(\d+)\)")


def _typed_number(col: Column, source_type: str) -> str | None:
    """SQL (with `{raw}`) for a typed column that needs no parsing, or None for the general path.

    Typed Parquet columns already hold exact values: DECIMAL(14,2) amounts and BIGINT counts are used as
    they are, instead of a round trip through DECIMAL(38,6) (half the conversion time of a typed file).
    Wider or finer types (DECIMAL(38,0), 3 decimals, HUGEINT, UBIGINT) keep the general path, whose
    range checks and rounding apply.
    """
    if col.type == "amount":
        m = _DECIMAL.fullmatch(source_type)
        if m and int(m.group(2)) <= 2 and int(m.group(1)) - int(m.group(2)) <= 12:
            return "cast({raw} AS DECIMAL(14,2))"
        if source_type in _INTS_BELOW_1E12:
            return "cast({raw} AS DECIMAL(14,2))"
        return None
    if col.type in ("integer", "score") and source_type in _INTS:
        return "cast({raw} AS BIGINT)"
    if col.type == "number" and source_type in _INTS:
        return "cast({raw} AS DOUBLE)"  # (a DOUBLE column may hold NaN or infinity: general path)
    return None


def conversion_sql(
    tm: TableMapping,
    present: dict[str, str],
    timezone: str,
    source: str = "batch",
    raw_text: list[str] | None = None,
) -> tuple[str, list[str]]:
    """The SELECT converting relation `source` into the table's columns, `__line` and `__reason`.

    `present` maps each canonical column found in the file to its DuckDB type in `source`. With
    `raw_text` (canonical columns in file order) the SELECT also has `__raw`: those cells as one CSV line,
    for `rejected_rows` (DuckDB computes it only when a query reads it). Returns the SQL and the output
    column names (the table's columns in storage order).
    """
    table = tm.table
    parsed: list[str] = ["__line"]
    checks: list[tuple[str, str]] = []
    for col in table.columns:
        if col.derived:
            continue
        name = ident(col.name)
        if col.name not in present:
            parsed.append(f"NULL AS {name}")
            parsed.append(f"NULL AS {ident('raw$' + col.name)}")
            continue
        raw = ident("src$" + col.name)
        parsed.append(f"{_parse(col, raw, present[col.name], tm, timezone)} AS {name}")
        parsed.append(f"{raw} AS {ident('raw$' + col.name)}")
    inner_cols = ", ".join(f"{ident(c)} AS {ident('src$' + c)}" for c in table.names if c in present)
    inner = f"SELECT __line, __shape{', ' if inner_cols else ''}{inner_cols} FROM {source}"
    for col in table.columns:
        if col.derived:
            continue
        checks.extend(_column_checks(col, present))
    checks.extend(_row_checks(table.name, present))
    outputs = _outputs(table.name, tm, present)
    # A row that could not be read as a row (wrong width, not JSON) says only that: its cells mean nothing.
    parsed.append("__shape")
    # a row whose every cell is certainly valid skips the reason strings (most rows of most files)
    ok = " AND ".join(o for _, o in checks) or "true"
    reasons = ", ".join(r for r, _ in checks) or "NULL"
    reason = f"coalesce(__shape, CASE WHEN {ok} THEN NULL ELSE nullif(concat_ws('; ', {reasons}), '') END)"
    extra = ""
    if raw_text is not None:
        cells = [_csv_cell(ident("raw$" + c)) for c in raw_text if c in present]
        joined = ", ".join(cells) or "''"
        extra = f", concat_ws(',', {joined}) AS __raw"
    sql = (
        f"WITH src AS ({inner}), p AS (SELECT {', '.join(parsed)} FROM src) "
        f"SELECT {', '.join(outputs)}, __line, {reason} AS __reason{extra} FROM p"
    )
    return sql, list(table.names)


def _csv_cell(raw: str) -> str:
    """SQL rendering a raw cell as a CSV field: empty for NULL, quoted when it holds , " or a line break."""
    text = f"cast({raw} AS VARCHAR)"
    return (
        f"CASE WHEN {raw} IS NULL THEN '' WHEN regexp_matches({text}, '[,\"\r\n]') "
        f"THEN '\"' || replace({text}, '\"', '\"\"') || '\"' ELSE {text} END"
    )


def _column_checks(col: Column, present: dict[str, str]) -> list[tuple[str, str]]:
    """(reason, ok) for a column: a CASE giving the reason a cell is refused, and a cheap condition that is
    true only for cells that are certainly valid, so that a valid row skips building reason strings."""
    if col.name not in present:
        return []  # a missing required column fails the whole file before any row is read
    name = ident(col.name)
    raw = ident("raw$" + col.name)
    label = f"column {col.name}: "
    blanks = "('')" if col.type == "text" else "('', '-', '--')"
    blank = f"{raw} IS NULL OR trim(cast({raw} AS VARCHAR)) IN {blanks}"
    required = col.required and col.default is None and col.name != "sale_mode"
    empty = literal(label + "empty (required)") if required else "NULL"
    what = {
        "enum": "unknown value {v} (expected " + ", ".join(sorted(set(col.values.values()))) + ")",
        "boolean": "{v} is not a yes/no value (expected " + ", ".join(sorted(col.values)[:8]) + ", ...)",
        "timestamp": "{v} is not a timestamp (e.g. 2023-05-01 20:00:00)",
        "amount": "{v} is not an amount (e.g. 1234.50, ¥1,234.50, 1.2万)",
        "integer": "{v} is not a number",
        "number": "{v} is not a number",
        "score": "{v} is not a score 1-5",
    }.get(col.type)
    if what is None:
        invalid = "NULL"
    else:
        before, after = what.split("{v}")
        invalid = f"{literal(label + before)} || {_show(raw)} || {literal(after)}"
    whens = [f"WHEN {name} IS NULL THEN CASE WHEN {blank} THEN {empty} ELSE {invalid} END"]
    conditions: list[str] = []

    def bad(condition: str, text: str) -> None:
        whens.append(f"WHEN {condition} THEN {literal(label)} || {_show(raw)} || {literal(text)}")
        conditions.append(f"({condition})")

    if col.type == "timestamp":
        bad(
            f"{name} < TIMESTAMP {literal(MIN_TIME)} OR {name} >= TIMESTAMP {literal(MAX_TIME)}",
            f" is outside {MIN_TIME[:4]}-2099",
        )
    if col.type == "amount":
        bad(f"{name} >= 1000000000000 OR {name} <= -1000000000000", " is out of range for an amount")
    if col.type in ("integer", "score"):
        bad(f"{name} <> floor({name})", " is not a whole number")
        bad(f"{name} >= 1000000000000000 OR {name} <= -1000000000000000", " is out of range")
    if col.type in ("amount", "integer", "number", "score"):
        if col.minimum is not None:
            bad(f"{name} < {col.minimum!r}", f" is below the minimum {col.minimum:g}")
        if col.maximum is not None:
            bad(f"{name} > {col.maximum!r}", f" is above the maximum {col.maximum:g}")
    # NULL parsed from NULL is fine unless required; NULL from a non-empty cell needs the full check
    null_ok = "false" if required else f"{raw} IS NULL"
    valid = f"NOT ({' OR '.join(conditions)})" if conditions else "true"
    ok = f"CASE WHEN {name} IS NULL THEN {null_ok} ELSE {valid} END"
    return [("CASE " + " ".join(whens) + " END", ok)]


def _row_checks(table: str, present: dict[str, str]) -> list[tuple[str, str]]:
    """(reason, ok) for the rules that involve two columns."""
    checks: list[tuple[str, str]] = []
    if table == "orders":
        checks.append(
            (
                "refund_amount > paid_amount",
                "'column refund_amount: ' || cast(try_cast(refund_amount AS DECIMAL(38,2)) AS VARCHAR) || "
                "' exceeds paid_amount ' || cast(try_cast(paid_amount AS DECIMAL(38,2)) AS VARCHAR)",
            )
        )
    if table == "livestreams":
        checks.append(
            (
                "host_type = 'promoter' AND promoter_id IS NULL",
                "'column promoter_id: empty, required when host_type is promoter'",
            )
        )
        checks.append(
            (
                'end_time IS NULL AND duration_minutes IS NULL AND "raw$end_time" IS NULL '
                'AND "raw$duration_minutes" IS NULL',
                "'columns end_time and duration_minutes: both empty, one is required'",
            )
        )
        checks.append(
            (
                "end_time < start_time",
                "'column end_time: ' || cast(end_time AS VARCHAR) || ' is before start_time ' || "
                "cast(start_time AS VARCHAR)",
            )
        )
    return [(f"CASE WHEN {cond} THEN {text} END", f"NOT coalesce({cond}, false)") for cond, text in checks]


def _outputs(table: str, tm: TableMapping, present: dict[str, str]) -> list[str]:
    """The final typed columns in storage order, with defaults and derived columns."""
    out = []
    for col in tm.table.columns:
        name = ident(col.name)
        sql_type = SQL_TYPES[col.type]
        if col.derived:
            if col.name == "net_amount":
                # SPEC §2: a refunded order with no refund amount counts as fully refunded.
                expr = (
                    "paid_amount - coalesce(refund_amount, "
                    "CASE WHEN status = 'refunded' THEN paid_amount ELSE 0 END)"
                )
            elif col.name == "quality_return":
                reasons = ", ".join(literal(r) for r in sorted(QUALITY_REFUND_REASONS))
                expr = (
                    "coalesce(coalesce(refund_amount, "
                    "CASE WHEN status = 'refunded' THEN paid_amount END) > 0 "
                    f"AND lower(trim(refund_reason)) IN ({reasons}), false)"
                )
            else:  # pragma: no cover - a derived column without a rule is a programming error
                raise AssertionError(col.name)
            out.append(f"try_cast({expr} AS {sql_type}) AS {name}")
            continue
        expr = name
        if col.name == "sale_mode":
            # SPEC §2: without a sale mode, an order with a promoter is a distribution order.
            expr = f"coalesce({name}, CASE WHEN promoter_id IS NOT NULL THEN 'distribution' ELSE 'self' END)"
        elif col.name == "duration_minutes":
            expr = f"coalesce({name}, date_diff('second', start_time, end_time) / 60.0)"
        elif col.default is not None:
            default = literal(col.default)
            if col.type not in ("text", "enum", "boolean"):
                default = f"cast({default} AS {sql_type})"
            expr = f"coalesce({name}, {default})"
        if col.type == "boolean":
            expr = f"({expr}) = 'true'"
        out.append(f"try_cast({expr} AS {sql_type}) AS {name}")
    return out
