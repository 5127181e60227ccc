"""Typed, validated rows from raw cells (SPEC §2 parsing rules), once for DuckDB and Spark alike.

One query turns a relation of raw cells into the table's canonical columns plus `__reason`, the reason a
row must be rejected (NULL for a valid row). The query is built as sqlglot trees: per column the parse
expression, the checks with their reason text, defaults and derived columns, then the row checks. The
few operations whose SQL differs between engines (timestamp layouts, regular expressions, epoch
milliseconds and Excel serial dates, time zones, text to decimal, value lookups) are the methods of
`Primitives`, each with its DuckDB and its Spark rendering side by side. The DuckDB loader and the Spark
engine both take their SQL from `conversion_sql`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlglot import exp

from chuanliu_cli.ingest.conversion import (
    DURATION_TABLE,
    DURATION_TOLERANCE,
    ID_EDGES,
    SHOW_WARNINGS,
    Dialect,
)
from chuanliu_cli.ingest.mapping import TableMapping
from chuanliu_cli.schema import QUALITY_REFUND_REASONS, SQL_TYPES, Column, ColumnType, Table

if TYPE_CHECKING:
    import duckdb


# Timestamps before this or from this on are refused: they are typing errors, not Kuaishou orders.
MIN_TIME = "2000-01-01"
MAX_TIME = "2100-01-01"

#: Naive timestamp layouts (strftime; Spark gets the same layouts as its datetime patterns).
NAIVE_FORMATS = (
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
#: Layouts with a UTC offset (a trailing Z is read as +00:00 first).
AWARE_FORMATS = (
    "%Y-%m-%dT%H:%M:%S%z",
    "%Y-%m-%dT%H:%M:%S.%f%z",
    "%Y-%m-%d %H:%M:%S%z",
    "%Y-%m-%d %H:%M:%S.%f%z",
    "%Y-%m-%dT%H:%M%z",
)
# Patterns of the time parser (regular expressions, matched against the trimmed cell).
_EPOCH_MS = "[0-9]{12,13}"
_EXCEL_SERIAL = r"[0-9]{5}(\.[0-9]+)?"
_OFFSET = "([+-](0[0-9]|1[0-8]):?[0-5][0-9]|Z)"
# Amounts: ¥/￥, thousands separators, white space (RE2's \s, spelled out so Java reads it alike) and 元.
_AMOUNT_NOISE = "[,¥￥\t\n\f\r 元]"
#: The same without the comma: what is removed before asking whether the commas separate thousands.
_AMOUNT_MARKS = "[¥￥\t\n\f\r 元]"
#: An amount whose commas separate thousands: one to three digits, then groups of three (1,234 ·
#: 12,345,678.50 · 1,234.5万). A comma anywhere else is no thousands separator: `58,71` and `1.234,50`
#: are decimal commas (a European spreadsheet's), which dropping the commas would read as 5871 and 1.2345.
_GROUPED = r"[+-]?[0-9]{1,3}(,[0-9]{3})+(\.[0-9]*)?万?"
#: A cell of digits, points and commas only (after the marks): refused for its comma, it says so.
_DIGITS_AND_COMMAS = r"[+-]?[0-9.,]*[0-9][0-9.,]*万?"
#: 1899-12-30, day 0 of Excel's serial dates, in microseconds from the Unix epoch.
_EXCEL_EPOCH_MICROS = -2209161600 * 1_000_000


# --- small tree builders ------------------------------------------------------------------------------------
# sqlglot does not parenthesize constructed trees by precedence: every operand that is not atomic is wrapped.


def _s(value: str) -> exp.Expr:
    return exp.Literal.string(value)


def _n(value: float | int | str) -> exp.Expr:
    return exp.Literal.number(value)


def _col(name: str) -> exp.Expr:
    return exp.Column(this=exp.Identifier(this=name, quoted=True))


def _null() -> exp.Expr:
    return exp.Null()


def _p(node: exp.Expr) -> exp.Expr:
    atomic = exp.Column | exp.Literal | exp.Paren | exp.Func | exp.Null | exp.Boolean | exp.Cast | exp.Case
    return node if isinstance(node, atomic) else exp.Paren(this=node)


def _fn(name: str, *args: exp.Expr) -> exp.Expr:
    return exp.Anonymous(this=name, expressions=[a.copy() for a in args])


def _case(*whens: tuple[exp.Expr, exp.Expr], default: exp.Expr | None = None) -> exp.Expr:
    return exp.Case(
        ifs=[exp.If(this=c.copy(), true=v.copy()) for c, v in whens],
        default=default.copy() if default is not None else None,
    )


def _bin(cls: type[exp.Binary], a: exp.Expr, b: exp.Expr) -> exp.Expr:
    return cls(this=_p(a.copy()), expression=_p(b.copy()))


def _and(*conds: exp.Expr) -> exp.Expr:
    return exp.and_(*(_p(c.copy()) for c in conds), copy=False)


def _or(*conds: exp.Expr) -> exp.Expr:
    return exp.Paren(this=exp.or_(*(_p(c.copy()) for c in conds), copy=False))


def _not(cond: exp.Expr) -> exp.Expr:
    return exp.Not(this=exp.Paren(this=cond.copy()))


def _is_null(x: exp.Expr) -> exp.Expr:
    return exp.Is(this=_p(x.copy()), expression=exp.Null())


def _not_null(x: exp.Expr) -> exp.Expr:
    return exp.Not(this=_is_null(x))


def _in(x: exp.Expr, values: list[str] | tuple[str, ...]) -> exp.Expr:
    return exp.In(this=_p(x.copy()), expressions=[_s(v) for v in values])


def _concat(*parts: exp.Expr) -> exp.Expr:
    out = _p(parts[0].copy())
    for part in parts[1:]:
        out = exp.DPipe(this=out, expression=_p(part.copy()))
    return out


def _coalesce(*args: exp.Expr) -> exp.Expr:
    return exp.Coalesce(this=args[0].copy(), expressions=[a.copy() for a in args[1:]])


def _trim(x: exp.Expr) -> exp.Expr:
    return exp.Trim(this=x.copy())


def _spark_pattern(fmt: str) -> str:
    """A strftime layout as a Spark datetime pattern (one letter reads one or two digits, as DuckDB does)."""
    fmt = fmt.replace("%Y%m%d", "yyyyMMdd")  # adjacent numbers need fixed widths
    out = []
    parts = {"%Y": "yyyy", "%m": "M", "%d": "d", "%H": "H", "%M": "m", "%S": "s", "%f": "SSSSSS"}
    i = 0
    while i < len(fmt):
        two = fmt[i : i + 2]
        if two in parts:
            out.append(parts[two])
            i += 2
        elif fmt[i] == "T":
            out.append("'T'")
            i += 1
        else:
            out.append(fmt[i])
            i += 1
    return "".join(out)


@dataclass(frozen=True)
class Primitives:
    """The operations whose SQL differs per engine: each method renders DuckDB's and Spark's form."""

    dialect: Dialect

    @property
    def duck(self) -> bool:
        return self.dialect == "duckdb"

    def type(self, name: str) -> exp.DataType:
        """A column type (DuckDB's names); Spark's timestamps are naive (TIMESTAMP_NTZ), like DuckDB's."""
        if name == "TIMESTAMP":
            return exp.DataType.build("TIMESTAMP" if self.duck else "TIMESTAMPNTZ")
        return exp.DataType.build(name, dialect="duckdb")

    def cast(self, x: exp.Expr, to: str) -> exp.Expr:
        return exp.Cast(this=x.copy(), to=self.type(to))

    def try_cast(self, x: exp.Expr, to: str) -> exp.Expr:
        # (safe: sqlglot writes a Spark TRY_CAST only when told the cast may fail)
        return exp.TryCast(this=x.copy(), to=self.type(to), safe=True)

    def text(self, x: exp.Expr) -> exp.Expr:
        return self.cast(x, "VARCHAR")

    def full_match(self, x: exp.Expr, pattern: str) -> exp.Expr:
        """The whole text matches `pattern`."""
        if self.duck:
            return _fn("regexp_full_match", x, _s(pattern))
        # Java's $ also matches before a final line break; \z does not
        return exp.RegexpLike(this=_p(x.copy()), expression=_s(f"^(?:{pattern})\\z"))

    def ends_matching(self, x: exp.Expr, pattern: str) -> exp.Expr:
        """The text ends with a match of `pattern`."""
        if self.duck:
            return _fn("regexp_matches", x, _s(f"{pattern}$"))
        return exp.RegexpLike(this=_p(x.copy()), expression=_s(f"{pattern}\\z"))

    def replace_all(self, x: exp.Expr, pattern: str, replacement: str) -> exp.Expr:
        """Every match of `pattern` replaced."""
        if self.duck:
            return _fn("regexp_replace", x, _s(pattern), _s(replacement), _s("g"))
        return _fn("regexp_replace", x, _s(pattern.replace("$", "\\z")), _s(replacement))

    def extract(self, x: exp.Expr, pattern: str, group: int) -> exp.Expr:
        """The text of capture group `group` of the first match of `pattern`, '' when it did not take part."""
        if self.duck:
            return _fn("regexp_extract", x, _s(pattern), _n(group))
        return _fn("regexp_extract", x, _s(pattern.replace("$", "\\z")), _n(group))

    def replace_groups(self, x: exp.Expr, pattern: str, *groups: int) -> exp.Expr:
        """A text matching `pattern` (anchored) replaced by its capture `groups`, one after the other (a
        group that took no part gives nothing); any other text as it is."""
        if self.duck:
            return _fn("regexp_replace", x, _s(pattern), _s("".join(f"\\{g}" for g in groups)))
        return _fn("regexp_replace", x, _s(pattern.replace("$", "\\z")), _s("".join(f"${g}" for g in groups)))

    def finite(self, x: exp.Expr) -> exp.Expr:
        """A floating-point cell is a number: not NaN, not infinite."""
        if self.duck:
            return _fn("isfinite", x)
        # (Spark orders NaN above every number, infinity included)
        return _and(
            _not(_fn("isnan", x)), _bin(exp.LTE, exp.Abs(this=x.copy()), _n("1.7976931348623157E308"))
        )

    def decimal(self, text: exp.Expr, to: str = "DECIMAL(38,6)") -> exp.Expr:
        """Text as a decimal, NULL when it is not a number (1e5, +5, .5 and 1_000 are numbers)."""
        if self.duck:
            return self.try_cast(text, to)
        # DuckDB reads an underscore between two digits as a digit separator; Java's BigDecimal does not
        return self.try_cast(self.replace_all(text, "(?<=[0-9])_(?=[0-9])", ""), to)

    def plain_decimal(self, text: exp.Expr) -> exp.Expr | None:
        """DuckDB: the text as DECIMAL(38,6) when the cast reads it as it is (a cheap first try of
        `decimal_from_text`); None on Spark, whose casts trim and read numbers by other rules."""
        return self.try_cast(text, "DECIMAL(38,6)") if self.duck else None

    def usual_time(self, text: exp.Expr) -> exp.Expr | None:
        """DuckDB: the text in NAIVE_FORMATS[0] (2023-05-01 20:00:00), else NULL (a cheap first try of
        `time_from_text`); None on Spark."""
        return _fn("try_strptime", text, _s(NAIVE_FORMATS[0])) if self.duck else None

    def naive_time(self, text: exp.Expr) -> exp.Expr:
        """Text in one of NAIVE_FORMATS as a naive timestamp, else NULL."""
        if self.duck:
            return _fn("try_strptime", text, exp.Array(expressions=[_s(f) for f in NAIVE_FORMATS]))
        tries = [_fn("try_to_timestamp", text, _s(_spark_pattern(f))) for f in NAIVE_FORMATS]
        return self.cast(_coalesce(*tries), "TIMESTAMP")

    def aware_time(self, text: exp.Expr, timezone: str) -> exp.Expr:
        """Text in one of AWARE_FORMATS (offset +08:00 or +0800) as naive local time in `timezone`."""
        if self.duck:
            instant = _fn("try_strptime", text, exp.Array(expressions=[_s(f) for f in AWARE_FORMATS]))
            return self.to_local(instant, timezone)
        # to_timestamp_ltz fails (ANSI mode) where a layout does not match: each is tried first
        patterns = [_spark_pattern(f).replace("%z", z) for f in AWARE_FORMATS for z in ("XXX", "XX")]
        instant = _case(
            *(
                (_not_null(_fn("try_to_timestamp", text, _s(p))), _fn("to_timestamp_ltz", text, _s(p)))
                for p in patterns
            )
        )
        return self.to_local(instant, timezone)

    def to_local(self, instant: exp.Expr, timezone: str) -> exp.Expr:
        """An instant as naive local time in `timezone` (Spark's session computes in UTC)."""
        if self.duck:
            return _fn("timezone", _s(timezone), instant)
        local = _fn("from_utc_timestamp", self.cast(instant, "TIMESTAMP_LTZ"), _s(timezone))
        return self.cast(local, "TIMESTAMP")

    def epoch_ms(self, digits: exp.Expr, timezone: str) -> exp.Expr:
        """Text of 12-13 digits, milliseconds since 1970 UTC, as naive local time."""
        if self.duck:
            seconds = _bin(exp.Div, self.cast(digits, "BIGINT"), _n("1000.0"))
            return self.to_local(_fn("to_timestamp", seconds), timezone)
        return self.to_local(_fn("timestamp_millis", self.cast(digits, "BIGINT")), timezone)

    def excel_serial(self, number: exp.Expr) -> exp.Expr:
        """Text of an Excel serial date (days since 1899-12-30, a fraction of a day) as a naive timestamp."""
        micros = self.cast(
            _fn("round", _bin(exp.Mul, self.cast(number, "DOUBLE"), _n(86400000000))), "BIGINT"
        )
        if self.duck:
            return exp.Add(
                this=self.cast(_s("1899-12-30"), "TIMESTAMP"), expression=_fn("to_microseconds", micros)
            )
        since_1970 = _bin(exp.Add, micros, _n(_EXCEL_EPOCH_MICROS))
        return self.cast(_fn("timestamp_micros", since_1970), "TIMESTAMP")

    def lookup(self, key: exp.Expr, values: dict[str, str]) -> exp.Expr:
        """The canonical value of `key` in a value map, NULL for anything else."""
        pairs = sorted(values.items())
        if self.duck:
            return exp.Case(
                this=key.copy(), ifs=[exp.If(this=_s(k), true=_s(v)) for k, v in pairs], default=_null()
            )
        # one hash lookup per cell (a CASE computes the key once per value it lists)
        if not pairs:
            return self.cast(_null(), "VARCHAR")
        return _fn("try_element_at", _fn("map", *(_s(part) for item in pairs for part in item)), key)

    def whole_float_text(self, x: exp.Expr) -> exp.Expr:
        """A floating-point cell as text; whole numbers (spreadsheet ids) without a trailing .0."""
        if self.duck:
            whole = _and(
                _fn("isfinite", x),
                _bin(exp.EQ, x, exp.Floor(this=x.copy())),
                _bin(exp.LT, exp.Abs(this=x.copy()), _n("1e38")),
            )
            return _case((whole, self.text(self.try_cast(x, "HUGEINT"))), default=self.text(x))
        whole = _and(
            _not(_fn("isnan", x)),
            _bin(exp.LT, exp.Abs(this=x.copy()), _n("1e18")),
            _bin(exp.EQ, x, exp.Floor(this=x.copy())),
        )
        return _case((whole, self.text(self.cast(x, "BIGINT"))), default=self.text(x))

    def seconds_between(self, start: exp.Expr, end: exp.Expr) -> exp.Expr:
        """Whole seconds from `start` to `end` (second boundaries crossed, as DuckDB's date_diff counts)."""
        if self.duck:
            return _fn("date_diff", _s("second"), start, end)
        # the session is in UTC: a naive time read as UTC gives its wall-clock seconds
        return _bin(
            exp.Sub,
            _fn("unix_seconds", self.cast(end, "TIMESTAMP_LTZ")),
            _fn("unix_seconds", self.cast(start, "TIMESTAMP_LTZ")),
        )

    def concat_ws(self, separator: str, parts: list[exp.Expr]) -> exp.Expr:
        # (sqlglot writes exp.ConcatWs for DuckDB as NULL when any part is NULL: both engines skip NULLs)
        return _fn("concat_ws", _s(separator), *parts)


# --- the shared definition ----------------------------------------------------------------------------------


def _clean(x: exp.Expr, sql: Primitives) -> exp.Expr:
    """An amount's text without ¥, thousands separators, spaces and 元."""
    return sql.replace_all(_trim(x), _AMOUNT_NOISE, "")


def _blank(x: exp.Expr, sql: Primitives) -> exp.Expr:
    return _or(_is_null(x), _in(_clean(x, sql), ("", "-", "--")))


def decimal_from_text(x: exp.Expr, sql: Primitives) -> exp.Expr:
    """An amount or number written as text: 1,234.50, ¥88, 1.2万 (= 12000), as DECIMAL(38,6); NULL if not."""
    cleaned = _clean(x, sql)
    length = _bin(exp.Sub, exp.Length(this=cleaned.copy()), _n(1))
    before_wan = exp.Substring(this=cleaned.copy(), start=_n(1), length=length)
    wan = sql.try_cast(_bin(exp.Mul, sql.decimal(before_wan, "DECIMAL(28,6)"), _n(10000)), "DECIMAL(38,6)")
    # Most cells are plain numbers: a text the cast reads as it is gives what the cast of the cleaned text
    # gives (the cleaning removes only what a readable number cannot hold inside it and white space at its
    # ends, which the cast skips), at a tenth of the cost of the regular expressions below (tested).
    plain = sql.plain_decimal(x)
    return _case(
        *([(_not_null(plain), plain.copy())] if plain is not None else []),
        (_blank(x, sql), _null()),
        (_stray_comma(x, sql), _null()),
        (exp.EndsWith(this=cleaned.copy(), expression=_s("万")), wan),
        default=sql.decimal(cleaned),
    )


def _stray_comma(x: exp.Expr, sql: Primitives) -> exp.Expr:
    """True for an amount's text with a comma that does not separate thousands (58,71 · 1.234,50 · 1,2345):
    such a cell is not read, where dropping its commas would read another number."""
    marked = sql.replace_all(_trim(x), _AMOUNT_MARKS, "")
    has_comma = exp.Like(this=marked, expression=_s("%,%"))
    return _case((has_comma, _not(sql.full_match(marked.copy(), _GROUPED))), default=exp.false())


def decimal_comma(x: exp.Expr, sql: Primitives) -> exp.Expr:
    """True for a cell that `decimal_from_text` refuses for its comma alone: digits, points and a comma
    that separates no thousands (the reason then says so)."""
    marked = sql.replace_all(_trim(x), _AMOUNT_MARKS, "")
    return _and(_stray_comma(x, sql), sql.full_match(marked, _DIGITS_AND_COMMAS))


def time_from_text(x: exp.Expr, sql: Primitives, timezone: str) -> exp.Expr:
    """A timestamp written as text: the layouts of NAIVE_FORMATS, offsets, epoch ms, Excel serial dates."""
    t = _trim(x)
    # Most cells are in the first layout: it cannot match an epoch, a serial or an offset, and it is the
    # first naive layout tried, so its reading is the general path's; a tenth of that path's cost (tested).
    usual = sql.usual_time(x)
    return _case(
        *([(_not_null(usual), usual.copy())] if usual is not None else []),
        (_or(_is_null(x), _bin(exp.EQ, t, _s(""))), _null()),
        (sql.full_match(t, _EPOCH_MS), sql.epoch_ms(t, timezone)),
        (sql.full_match(t, _EXCEL_SERIAL), sql.excel_serial(t)),
        (sql.ends_matching(t, _OFFSET), sql.aware_time(sql.replace_all(t, "Z$", "+00:00"), timezone)),
        default=sql.naive_time(t),
    )


# --- ids (SPEC §2: ids are text) ---------------------------------------------------------------------------

#: White space around an id (conversion.ID_EDGES) as a regular expression's character class.
_SPACE = "[" + "".join(ID_EDGES) + "]"
#: An id a spreadsheet wrote in scientific notation (1.23457E+15, 1.2345678901234568e+15): its digits are
#: gone. `12E34`, with neither a decimal point nor a signed exponent, is not what a spreadsheet writes and
#: may be a code: it is kept as an id.
_SCIENTIFIC = "[0-9]+\\.[0-9]*[eE][+-]?[0-9]+|[0-9]+[eE][+-][0-9]+"
#: A whole id with a spreadsheet's trailing zeros (2704810274450369.0, 123.00).
_WHOLE_POINT_ZERO = "[0-9]+\\.0+"
_FLOATS = ("DOUBLE", "FLOAT", "REAL")


def is_id(col: Column) -> bool:
    """An id column: a text column named *_id (order_id, shop_id, buyer_id, item_id, promoter_id,
    review_id, live_id, group_id)."""
    return col.type == "text" and col.name.endswith("_id")


def _strip(x: exp.Expr, sql: Primitives) -> exp.Expr:
    return sql.replace_all(x, f"^{_SPACE}+|{_SPACE}+$", "")


def _drop_point_zero(x: exp.Expr, sql: Primitives) -> exp.Expr:
    return sql.replace_groups(x, "^([0-9]+)\\.0+$", 1)


def id_from_text(x: exp.Expr, sql: Primitives) -> exp.Expr:
    """An id as written in text, with the forms that protect it from a spreadsheet undone: surrounding
    white space (tabs, no-break and ideographic spaces), `="6496664491185286"`, a leading `'`, and a
    trailing `.0` on a whole number. NULL when nothing is left."""
    # each step reads the previous one once: Spark compiles a row's expressions into one method of at most
    # 64 KB, which repeated sub-expressions over seven id columns exceed
    unwrapped = sql.replace_groups(_strip(x, sql), '^(?:="(.*)"|\'(.*))$', 1, 2)
    return exp.Nullif(this=_drop_point_zero(_strip(unwrapped, sql), sql), expression=_s(""))


def _id_needs_work(raw: exp.Expr) -> exp.Expr:
    """A cheap test for the text ids `id_from_text` may change (most ids need nothing): a first character
    outside 0-z or `=` (white space, `'`, no-break spaces and any other non-ASCII lead to the full
    normalization, which leaves what it need not change), a last one of the white spaces, a `.…0` end."""
    # (ascii() of the first character costs a fifth of left(x, 1) IN (...), which builds a string per cell)
    first = exp.Unicode(this=raw.copy())
    return _or(
        _bin(exp.LT, first, _n(48)),
        _bin(exp.GT, first, _n(122)),
        _bin(exp.EQ, first, _n(61)),
        _in(exp.Right(this=raw.copy(), expression=_n(1)), ID_EDGES),
        exp.Like(this=raw.copy(), expression=_s("%.%0")),
    )


# --- durations ----------------------------------------------------------------------------------------------

#: Longest session accepted, in minutes; a duration that differs from end − start by more than
#: DURATION_TOLERANCE minutes is loaded as given, with a warning.
MAX_SESSION_MINUTES = 24 * 60
_NUM = "([0-9]+(?:\\.[0-9]+)?)"
#: 1小时20分, 1时20分钟, 80分钟, 4800秒, 1.5小时, 1小时20分30秒
_WITH_UNITS = f"(?:{_NUM}(?:小时|时))?(?:{_NUM}(?:分钟|分))?(?:{_NUM}秒)?"
#: 01:20:00 (h:mm:ss), 1:20 (h:mm)
_CLOCK = "([0-9]+):([0-5][0-9])(?::([0-5][0-9](?:\\.[0-9]+)?))?"


def duration_from_text(
    x: exp.Expr, sql: Primitives, unit: str | None = None, scale: float | None = None
) -> exp.Expr:
    """A duration written as text, in minutes (DOUBLE): a bare number is minutes (seconds with
    `unit="seconds"`, a header naming seconds); 1小时20分, 1时20分钟, 80分钟, 4800秒, 1.5小时, 01:20:00 and
    1:20 (h:mm) say their units themselves. NULL when it is none of these."""
    t = sql.replace_all(x, _SPACE, "")

    def part(pattern: str, group: int) -> exp.Expr:
        text = exp.Nullif(this=sql.extract(t, f"^(?:{pattern})$", group), expression=_s(""))
        return _coalesce(sql.try_cast(text, "DOUBLE"), _n("0.0"))

    def minutes(pattern: str) -> exp.Expr:
        hours = _bin(exp.Mul, part(pattern, 1), _n(60))
        return _bin(
            exp.Add, _bin(exp.Add, hours, part(pattern, 2)), _bin(exp.Div, part(pattern, 3), _n("60.0"))
        )

    bare = decimal_from_text(x, sql)
    if scale is not None:
        factor = sql.cast(_s(repr(scale)), "DECIMAL(38,12)")
        bare = sql.try_cast(_bin(exp.Mul, bare, factor), "DECIMAL(38,6)")
    bare = sql.cast(bare, "DOUBLE")
    if unit == "seconds":
        bare = _bin(exp.Div, bare, _n("60.0"))
    return _case(
        (_blank(x, sql), sql.cast(_null(), "DOUBLE")),
        (sql.full_match(t, _CLOCK), minutes(_CLOCK)),
        (sql.full_match(t, _WITH_UNITS), minutes(_WITH_UNITS)),
        default=bare,
    )


def _show(raw: exp.Expr, sql: Primitives) -> exp.Expr:
    """A raw cell for a message: quoted and cut to 60 characters."""
    # control characters (line breaks, ESC) would break the one-line message or reach the terminal
    cut = exp.Left(this=sql.text(raw), expression=_n(60))
    return _concat(_s("'"), sql.replace_all(cut, "[\\x00-\\x1f\\x7f]", "?"), _s("'"))


_IS_NUMBER = ("INT", "DOUBLE", "FLOAT", "DECIMAL", "REAL")


def _parse(
    col: Column, raw: exp.Expr, source_type: str, tm: TableMapping, timezone: str, sql: Primitives
) -> exp.Expr:
    """The raw cell `raw` (of DuckDB type `source_type`) parsed into the column's canonical type."""
    st = source_type.upper()
    is_text = st == "VARCHAR"
    is_number = any(k in st for k in _IS_NUMBER)
    scale = tm.scale.get(col.name)
    if is_id(col):
        if is_text:
            return _case(
                (_bin(exp.EQ, raw, _s("")), _null()),
                (_id_needs_work(raw), id_from_text(raw, sql)),
                default=raw,
            )
        if st in _FLOATS:
            return sql.whole_float_text(raw)
        if st.startswith("DECIMAL"):
            return _drop_point_zero(sql.text(raw), sql)
        return sql.text(raw)
    if col.type == "text":
        if is_text:
            # trim only cells that need it: most ids have no surrounding spaces, and trim copies
            padded = _or(
                *(
                    cls(this=raw.copy(), expression=_s(c))
                    for c in (" ", "\t")
                    for cls in (exp.StartsWith, exp.EndsWith)
                )
            )
            return _case(
                (_bin(exp.EQ, raw, _s("")), _null()),
                (padded, exp.Nullif(this=_trim(raw), expression=_s(""))),
                default=raw,
            )
        if st in ("DOUBLE", "FLOAT", "REAL"):
            return sql.whole_float_text(raw)
        return sql.text(raw)
    if col.type in ("enum", "boolean"):
        if col.type == "boolean" and st == "BOOLEAN":
            return sql.text(raw)
        values = tm.values.get(col.name, {})
        key = exp.Lower(this=_trim(sql.text(raw)))
        if is_number:
            # 1.0 from a spreadsheet is the code 1
            key = exp.Lower(this=_trim(sql.replace_all(sql.text(raw), "\\.0+$", "")))
        lookup = sql.lookup(key, values)
        if not is_text:
            return lookup
        # most exports already hold canonical values: a cheap IN test before the lookup
        return _case((_in(raw, sorted(set(values.values()))), raw), default=lookup)
    if col.type == "timestamp":
        if st == "TIMESTAMP" or st.startswith("TIMESTAMP_") or st == "DATE":
            return sql.cast(raw, "TIMESTAMP")
        if st == "TIMESTAMP WITH TIME ZONE":
            return sql.to_local(raw, timezone)
        if is_number:
            # epoch milliseconds are whole numbers; Excel serials keep their fraction of a day
            return _case(
                (
                    _bin(exp.GTE, raw, _n(100000000000)),
                    time_from_text(sql.text(sql.try_cast(raw, "BIGINT")), sql, timezone),
                ),
                default=time_from_text(sql.text(raw), sql, timezone),
            )
        return time_from_text(sql.text(raw), sql, timezone)
    # numeric kinds
    unit = tm.units.get(col.name)
    if col.name == "duration_minutes" and not is_number:
        return duration_from_text(sql.text(raw), sql, unit, scale)
    if scale is None and unit is None and (fast := _typed_number(col, st)) is not None:
        return sql.cast(raw, fast)
    value = sql.try_cast(raw, "DECIMAL(38,6)") if is_number else decimal_from_text(sql.text(raw), sql)
    if scale is not None:
        factor = sql.cast(_s(repr(scale)), "DECIMAL(38,12)")
        value = sql.try_cast(_bin(exp.Mul, value, factor), "DECIMAL(38,6)")
    if unit == "seconds":
        value = _bin(exp.Div, sql.cast(value, "DOUBLE"), _n("60.0"))
    return value


# integer types whose every value is below 1e12 (an amount's range), and the ones a BIGINT holds exactly
_INTS_BELOW_1E12 = ("TINYINT", "SMALLINT", "INTEGER", "UTINYINT", "USMALLINT", "UINTEGER")
_INTS = (*_INTS_BELOW_1E12, "BIGINT")
_DECIMAL = re.compile(r"DECIMAL\((\d+),\s*(\d+)\)")


def _typed_number(col: Column, source_type: str) -> str | None:
    """The type a typed column is cast to when it needs no parsing, or None for the general path.

    Typed Parquet columns already hold exact values: DECIMAL(14,2) amounts and BIGINT counts are used as
    they are, instead of a round trip through DECIMAL(38,6) (half the conversion time of a typed file).
    Wider or finer types (DECIMAL(38,0), 3 decimals, HUGEINT, UBIGINT) keep the general path, whose
    range checks and rounding apply.
    """
    if col.type == "amount":
        m = _DECIMAL.fullmatch(source_type)
        if m and int(m.group(2)) <= 2 and int(m.group(1)) - int(m.group(2)) <= 12:
            return "DECIMAL(14,2)"
        if source_type in _INTS_BELOW_1E12:
            return "DECIMAL(14,2)"
        return None
    if col.type in ("integer", "score") and source_type in _INTS:
        return "BIGINT"
    if col.type == "number" and source_type in _INTS:
        return "DOUBLE"  # (a DOUBLE column may hold NaN or infinity: general path)
    return None


#: The column types read as numbers (from text by `decimal_from_text`).
_NUMERIC: tuple[ColumnType, ...] = ("amount", "integer", "number", "score")

_CHECKS: dict[ColumnType, str] = {
    "enum": "unknown value {v} (expected {values})",
    "boolean": "{v} is not a yes/no value (expected {values}, ...)",
    "timestamp": "{v} is not a timestamp (e.g. 2023-05-01 20:00:00)",
    "amount": "{v} is not an amount (e.g. 1234.50, ¥1,234.50, 1.2万)",
    "integer": "{v} is not a number",
    "number": "{v} is not a number",
    "score": "{v} is not a score 1-5",
}


def _column_checks(col: Column, source_type: str, sql: Primitives) -> tuple[exp.Expr, exp.Expr]:
    """(reason, ok) for a column present in the file (its cells of DuckDB type `source_type`): a CASE giving
    the reason a cell is refused, and a cheap condition that is true only for cells that are certainly
    valid, so that a valid row skips building reason strings."""
    name = _col(col.name)
    raw = _col("raw$" + col.name)
    label = f"column {col.name}: "
    blanks = ("",) if col.type == "text" else ("", "-", "--")
    blank = _or(_is_null(raw), _in(_trim(sql.text(raw)), blanks))
    required = col.required and col.default is None and col.name != "sale_mode"
    empty = _s(label + "empty (required)") if required else _null()
    what = _CHECKS.get(col.type)
    if what is None:
        invalid = _null()
    else:
        listed = sorted(set(col.values.values())) if col.type == "enum" else sorted(col.values)[:8]
        before, after = what.replace("{values}", ", ".join(listed)).split("{v}")
        if col.name == "duration_minutes":
            before, after = "", " is not a duration (e.g. 90, 1小时20分, 01:20:00)"
        invalid = _concat(_s(label + before), _show(raw, sql), _s(after))
        if col.type in _NUMERIC and col.name != "duration_minutes" and source_type.upper() == "VARCHAR":
            why = " has a comma that separates no thousands (a decimal comma?); "
            advice = "export numbers with a decimal point (1234.50 or 1,234.50)"
            comma = _concat(_s(label), _show(raw, sql), _s(why + advice))
            invalid = _case((decimal_comma(raw, sql), comma), default=invalid)
    whens = [(_is_null(name), _case((blank, empty), default=invalid))]
    conditions: list[exp.Expr] = []

    def bad(condition: exp.Expr, text: str | exp.Expr, prefix: str = label) -> None:
        tail = _s(text) if isinstance(text, str) else text
        whens.append((condition, _concat(_s(prefix), _show(raw, sql), tail)))
        conditions.append(condition)

    st = source_type.upper()
    if is_id(col) and st == "VARCHAR":
        maybe = _or(
            exp.Like(this=name.copy(), expression=_s("%e%")), exp.Like(this=name.copy(), expression=_s("%E%"))
        )
        # (a CASE: the regular expression runs only on the few ids with an e; AND evaluates both sides)
        bad(
            _case((maybe, sql.full_match(name, _SCIENTIFIC)), default=exp.false()),
            " was rounded by a spreadsheet; export ids as text",
            prefix=f"{col.name} ",
        )
    if is_id(col) and st in _FLOATS:
        # (a whole number is the id the cell stores, all its digits: as the spreadsheet reader writes it)
        bad(
            _not(sql.finite(raw)), " is not a number, so not an id; export ids as text", prefix=f"{col.name} "
        )
    if col.name == "duration_minutes":
        shown = sql.text(sql.try_cast(name, "DECIMAL(38,1)"))
        bad(
            _bin(exp.GT, name, _n(MAX_SESSION_MINUTES)),
            _concat(_s(" is longer than 24 hours ("), shown, _s(" minutes)")),
        )

    if col.type == "timestamp":
        early = _bin(exp.LT, name, sql.cast(_s(MIN_TIME), "TIMESTAMP"))
        bad(
            _or(early, _bin(exp.GTE, name, sql.cast(_s(MAX_TIME), "TIMESTAMP"))),
            f" is outside {MIN_TIME[:4]}-2099",
        )
    if col.type == "amount":
        huge = (_bin(exp.GTE, name, _n(1000000000000)), _bin(exp.LTE, name, _n(-1000000000000)))
        bad(_or(*huge), " is out of range for an amount")
    if col.type in ("integer", "score"):
        bad(_bin(exp.NEQ, name, exp.Floor(this=name.copy())), " is not a whole number")
        huge = (_bin(exp.GTE, name, _n(1000000000000000)), _bin(exp.LTE, name, _n(-1000000000000000)))
        bad(_or(*huge), " is out of range")
    if col.type in _NUMERIC:
        if col.minimum is not None:
            bad(_bin(exp.LT, name, _n(repr(col.minimum))), f" is below the minimum {col.minimum:g}")
        if col.maximum is not None:
            bad(_bin(exp.GT, name, _n(repr(col.maximum))), f" is above the maximum {col.maximum:g}")
    # NULL parsed from NULL is fine unless required; NULL from a non-empty cell needs the full check
    null_ok = exp.false() if required else _is_null(raw)
    valid = _not(_or(*conditions)) if conditions else exp.true()
    ok = _case((_is_null(name), null_ok), default=valid)
    return _case(*whens), ok


def _row_checks(table: str, sql: Primitives) -> list[tuple[exp.Expr, exp.Expr]]:
    """(reason, ok) for the rules that involve two columns."""
    checks: list[tuple[exp.Expr, exp.Expr]] = []

    def text(x: exp.Expr) -> exp.Expr:
        return sql.text(x)

    if table == "orders":
        refund, paid = _col("refund_amount"), _col("paid_amount")
        checks.append(
            (
                _bin(exp.GT, refund, paid),
                _concat(
                    _s("column refund_amount: "),
                    text(sql.try_cast(refund, "DECIMAL(38,2)")),
                    _s(" exceeds paid_amount "),
                    text(sql.try_cast(paid, "DECIMAL(38,2)")),
                ),
            )
        )
    if table == "livestreams":
        start, end, duration = _col("start_time"), _col("end_time"), _col("duration_minutes")
        checks.append(
            (
                _and(_bin(exp.EQ, _col("host_type"), _s("promoter")), _is_null(_col("promoter_id"))),
                _s("column promoter_id: empty, required when host_type is promoter"),
            )
        )
        checks.append(
            (
                _and(
                    _is_null(end),
                    _is_null(duration),
                    _is_null(_col("raw$end_time")),
                    _is_null(_col("raw$duration_minutes")),
                ),
                _s("columns end_time and duration_minutes: both empty, one is required"),
            )
        )
        checks.append(
            (
                _bin(exp.LT, end, start),
                _concat(_s("column end_time: "), text(end), _s(" is before start_time "), text(start)),
            )
        )
        checks.append(
            (
                _bin(exp.GT, sql.seconds_between(start, end), _n(MAX_SESSION_MINUTES * 60)),
                _concat(
                    _s("column end_time: "),
                    text(end),
                    _s(" is more than 24 hours after start_time "),
                    text(start),
                ),
            )
        )
    return [(_case((cond, reason)), _not(_coalesce(cond, exp.false()))) for cond, reason in checks]


def _derived(col: Column, sql: Primitives) -> exp.Expr:
    """A derived column (net_amount, quality_return) from the row's other columns, typed."""
    paid, refund, status = _col("paid_amount"), _col("refund_amount"), _col("status")
    refunded = _bin(exp.EQ, status, _s("refunded"))
    if col.name == "net_amount":
        # SPEC §2: a refunded order with no refund amount counts as fully refunded.
        expr = _bin(exp.Sub, paid, _coalesce(refund, _case((refunded, paid), default=_n(0))))
    elif col.name == "quality_return":
        reason = exp.Lower(this=_trim(_col("refund_reason")))
        refunds = _bin(exp.GT, _coalesce(refund, _case((refunded, paid))), _n(0))
        expr = _coalesce(_and(refunds, _in(reason, sorted(QUALITY_REFUND_REASONS))), exp.false())
    else:  # pragma: no cover - a derived column without a rule is a programming error
        raise AssertionError(col.name)
    return sql.try_cast(expr, SQL_TYPES[col.type])


def render_merge(table: Table, unsaid: list[str], source: str, target: str, dialect: Dialect) -> str:
    """The SELECT of `source` (converted rows of `table`: its columns and `__line`) with the columns
    `unsaid` taken from the row of the same key in `target` where it has one, the derived columns computed
    again from the result, and for each of `unsaid` `__kept$<column>`: whether the row keeps a stored value
    that differs from the file's default (text of `merge_sql`, conversion.py)."""
    sql = Primitives(dialect)

    def q(name: str) -> str:
        return exp.to_identifier(name, quoted=True).sql(dialect)

    key = q(table.key)
    merged = []
    for col in table.columns:
        if col.derived:
            continue
        c = q(col.name)
        if col.name in unsaid:
            merged.append(f"CASE WHEN t.{key} IS NULL THEN f.{c} ELSE t.{c} END AS {c}")
        else:
            merged.append(f"f.{c} AS {c}")
    merged.append("f.__line AS __line")
    merged += [
        f"t.{key} IS NOT NULL AND f.{q(n)} IS DISTINCT FROM t.{q(n)} AS {q('__kept$' + n)}" for n in unsaid
    ]
    outputs = [
        f"{_derived(col, sql).sql(dialect)} AS {q(col.name)}" if col.derived else q(col.name)
        for col in table.columns
    ]
    inner = f"SELECT {', '.join(merged)} FROM {source} AS f LEFT JOIN {target} AS t ON f.{key} = t.{key}"
    kept = "".join(f", {q('__kept$' + n)}" for n in unsaid)
    return f"SELECT {', '.join(outputs)}, __line{kept} FROM ({inner}) AS m"


def _outputs(tm: TableMapping, sql: Primitives) -> list[exp.Expr]:
    """The final typed columns in storage order, with defaults and derived columns."""
    out: list[exp.Expr] = []
    for col in tm.table.columns:
        name = _col(col.name)
        sql_type = SQL_TYPES[col.type]
        if col.derived:
            out.append(_derived(col, sql))
            continue
        expr = name
        if col.name == "sale_mode":
            # SPEC §2: without a sale mode, an order with a promoter is a distribution order.
            promoted = _case((_not_null(_col("promoter_id")), _s("distribution")), default=_s("self"))
            expr = _coalesce(name, promoted)
        elif col.name == "duration_minutes":
            seconds = sql.seconds_between(_col("start_time"), _col("end_time"))
            expr = _coalesce(name, _bin(exp.Div, sql.cast(seconds, "DOUBLE"), _n("60.0")))
        elif (given := tm.defaults.get(col.name, col.default)) is not None:
            # (a mapping's `defaults:` before the schema's: the open platform's orders name no carrier)
            default = _s(given)
            if col.type not in ("text", "enum", "boolean"):
                default = sql.cast(default, sql_type)
            expr = _coalesce(name, default)
        if col.type == "boolean":
            expr = _bin(exp.EQ, expr, _s("true"))
        out.append(sql.try_cast(expr, sql_type))
    return out


def _csv_cell(raw: exp.Expr, sql: Primitives) -> exp.Expr:
    """A raw cell as a CSV field: empty for NULL, quoted when it holds , " or a line break."""
    text = sql.text(raw)
    quoted = _concat(_s('"'), _fn("replace", text, _s('"'), _s('""')), _s('"'))
    special = exp.RegexpLike(this=_p(text.copy()), expression=_s('[,"\r\n]'))
    return _case((_is_null(raw), _s("")), (special, quoted), default=text)


def _parsed_type(col: Column) -> str:
    """The type of a parsed value before defaults (NULL of an absent column is typed so for Spark)."""
    return {"timestamp": "TIMESTAMP", "text": "VARCHAR", "enum": "VARCHAR", "boolean": "VARCHAR"}.get(
        col.type, "DECIMAL(38,6)"
    )


def render_conversion(
    tm: TableMapping,
    present: dict[str, str],
    timezone: str,
    source: str,
    raw_text: list[str] | None,
    dialect: Dialect,
) -> str:
    """The text of `conversion_sql`'s SELECT, rendered from the trees (conversion.py keeps it)."""
    sql = Primitives(dialect)

    def q(name: str) -> str:
        return exp.to_identifier(name, quoted=True).sql(dialect)

    def r(node: exp.Expr) -> str:
        return node.sql(dialect)

    table = tm.table
    parsed: list[str] = ["__line"]
    for col in table.columns:
        if col.derived:
            continue
        if col.name not in present:
            nothing = _null() if sql.duck else sql.cast(_null(), _parsed_type(col))
            parsed.append(f"{r(nothing)} AS {q(col.name)}")
            parsed.append(f"NULL AS {q('raw$' + col.name)}")
            continue
        raw = _col("src$" + col.name)
        parsed.append(f"{r(_parse(col, raw, present[col.name], tm, timezone, sql))} AS {q(col.name)}")
        parsed.append(f"{r(raw)} AS {q('raw$' + col.name)}")
    # A row that could not be read as a row (wrong width, not JSON) says only that: its cells mean nothing.
    parsed.append("__shape")
    inner_cols = ", ".join(f"{q(c)} AS {q('src$' + c)}" for c in table.names if c in present)
    inner = f"SELECT __line, __shape{', ' if inner_cols else ''}{inner_cols} FROM {source}"
    # (a missing required column fails the whole file before any row is read)
    checks = [
        _column_checks(c, present[c.name], sql) for c in table.columns if not c.derived and c.name in present
    ]
    checks.extend(_row_checks(table.name, sql))
    # a row whose every cell is certainly valid skips the reason strings (most rows of most files)
    ok = _and(*(o for _, o in checks)) if checks else exp.true()
    reasons = sql.concat_ws("; ", [c for c, _ in checks]) if checks else _null()
    verdict = _case((ok, _null()), default=exp.Nullif(this=reasons, expression=_s("")))
    reason = _coalesce(_col("__shape"), verdict)
    outputs = [f"{r(o)} AS {q(c.name)}" for o, c in zip(_outputs(tm, sql), table.columns, strict=True)]
    extra = ""
    if raw_text is not None:
        cells = [_csv_cell(_col("raw$" + c), sql) for c in raw_text if c in present]
        joined = sql.concat_ws(",", cells) if cells else _s("")
        extra = f", {r(joined)} AS __raw"
    return (
        f"WITH src AS ({inner}), p AS (SELECT {', '.join(parsed)} FROM src) "
        f"SELECT {', '.join(outputs)}, __line, {r(reason)} AS __reason{extra} FROM p"
    )


def install_macros(con: duckdb.DuckDBPyConnection, timezone: str) -> None:
    """The parsing rules as temporary macros of this connection: chl_clean, chl_blank, chl_decimal(text)
    and chl_time(text), rendered from the same trees as `conversion_sql` (for ad-hoc checks of cells)."""
    sql = Primitives("duckdb")
    x = _col("x")
    macros = {
        "chl_clean": _clean(x, sql),
        "chl_blank": _blank(x, sql),
        "chl_decimal": decimal_from_text(x, sql),
        "chl_time": time_from_text(x, sql, timezone),
    }
    for name, body in macros.items():
        con.execute(f"CREATE OR REPLACE TEMP MACRO {name}(x) AS {body.sql('duckdb')}")


# --- warnings on valid rows ---------------------------------------------------------------------------------


def duration_warning_sql(table: str, source: str, dialect: Dialect = "duckdb") -> str | None:
    """The SELECT finding the valid sessions of `source` (a converted relation: canonical columns,
    `__line`, `__reason`) whose duration differs from end − start by more than DURATION_TOLERANCE
    minutes: the first SHOW_WARNINGS as (line, live_id, duration, end − start in minutes, how many in all).
    None for a table that has no such rule."""
    if table != DURATION_TABLE:
        return None
    sql = Primitives(dialect)
    start, end, duration = _col("start_time"), _col("end_time"), _col("duration_minutes")
    between = _bin(exp.Div, sql.cast(sql.seconds_between(start, end), "DOUBLE"), _n("60.0"))
    differs = _and(
        _is_null(_col("__reason")),
        _not_null(end),
        _not_null(duration),
        _bin(exp.GT, exp.Abs(this=_bin(exp.Sub, duration, between)), _n(DURATION_TOLERANCE)),
    )
    q = exp.to_identifier(source, quoted=False).sql(dialect)
    return (
        f"SELECT {_col('__line').sql(dialect)}, {_col('live_id').sql(dialect)}, {duration.sql(dialect)}, "
        f"{between.sql(dialect)}, count(*) OVER () FROM {q} WHERE {differs.sql(dialect)} "
        f"ORDER BY {_col('__line').sql(dialect)}, {_col('live_id').sql(dialect)} LIMIT {SHOW_WARNINGS}"
    )
