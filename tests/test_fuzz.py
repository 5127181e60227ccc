"""Fuzzing the amount, timestamp and expression parsers: they parse, or fail with the tool's own error."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from zoneinfo import ZoneInfo

import duckdb
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from sqlglot import exp

from chuanliu_cli.errors import ChuanliuError, RulesetError
from chuanliu_cli.ingest.canonical import install_macros
from chuanliu_cli.ingest.loader import LoadOptions, load_files
from chuanliu_cli.rules.expressions import Names, check_expression, parse_expression
from chuanliu_cli.rules.model import Expr, Loc
from chuanliu_cli.rules.parser import parse_ruleset
from chuanliu_cli.rules.sqlsubset import AGGREGATES, SCALAR_FUNCTIONS
from chuanliu_cli.schema import TABLES
from chuanliu_cli.store.database import memory_database

SHANGHAI = ZoneInfo("Asia/Shanghai")
FUZZ = settings(deadline=None, max_examples=200, suppress_health_check=[HealthCheck.too_slow])
#: Cheap properties (pure Python parsing) get more examples; loading a file costs ~0.1 s an example.
FUZZ_MANY = settings(FUZZ, max_examples=800)
FUZZ_FEW = settings(FUZZ, max_examples=30)

# Text without surrogates (they cannot be written to a UTF-8 file at all).
TEXT = st.text(st.characters(exclude_categories=["Cs"]), max_size=40)
DIGITS = st.text("0123456789", min_size=1, max_size=40)
AMOUNT_LIKE = st.builds(
    lambda sign, cur, whole, frac, wan, space: f"{space}{cur}{sign}{whole}{frac}{wan}{space}",
    st.sampled_from(["", "-", "+"]),
    st.sampled_from(["", "¥", "￥", "元"]),
    st.one_of(DIGITS, st.integers(0, 10**15).map(lambda n: f"{n:,}")),
    st.one_of(st.just(""), DIGITS.map(lambda d: "." + d), st.just(".")),
    st.sampled_from(["", "万", " 万", "e3", "E-2", "万万", "元"]),
    st.sampled_from(["", " ", "\t", "\u3000"]),
)
TIME_LIKE = st.builds(
    lambda y, mo, d, h, mi, s, sep, tail: f"{y}{sep}{mo}{sep}{d} {h}:{mi}:{s}{tail}",
    st.integers(0, 99999),
    st.integers(0, 99),
    st.integers(0, 99),
    st.integers(0, 99),
    st.integers(0, 99),
    st.integers(0, 99),
    st.sampled_from(["-", "/", ""]),
    st.sampled_from(["", "Z", "+08:00", "-0530", "+99:99", ".5", ".1234567", "+08", "+14:00"]),
)
EPOCH_LIKE = st.one_of(
    st.integers(-(10**14), 10**14).map(str),
    st.floats(allow_nan=True).map(str),
    st.integers(0, 99999).map(str),
)
CELL = st.one_of(TEXT, AMOUNT_LIKE, TIME_LIKE, EPOCH_LIKE)


@pytest.fixture(scope="module")
def con() -> Iterator[duckdb.DuckDBPyConnection]:
    connection = duckdb.connect()
    install_macros(connection, "Asia/Shanghai")
    yield connection
    connection.close()


def parse_cells(
    con: duckdb.DuckDBPyConnection, cells: list[str]
) -> list[tuple[Decimal | None, datetime | None]]:
    """chl_decimal and chl_time of each cell, evaluated over a column as the loader does."""
    rows = con.execute(
        "SELECT i, chl_decimal(x), chl_time(x) FROM (SELECT unnest(?::VARCHAR[]) AS x, "
        "unnest(range(len(?::VARCHAR[]))) AS i) ORDER BY i",
        [cells, cells],
    ).fetchall()
    return [(d, t) for _i, d, t in rows]


# --- the parsing macros --------------------------------------------------------------------------------------


@FUZZ
@given(st.lists(st.one_of(CELL, TEXT.filter(lambda t: "\x00" not in t)), min_size=1, max_size=30))
@example(["", " ", "-", "--", "万", "¥", ".", "1e400", "NaN", "inf", "0x10", "1_000", "9" * 40])
@example(["00000", "99999", "9999999999999", "-86400000", "2023-02-30 10:00:00", "2023-05-01T10:00:00+14:00"])
def test_macros_return_a_value_or_null(con: duckdb.DuckDBPyConnection, cells: list[str]) -> None:
    cells = [c.replace("\x00", "") for c in cells]
    # Times are fetched as text: year 0 ('0/1/1 0:0') parses, and is refused later by the 2000-2099 check.
    rows = con.execute(
        "SELECT chl_decimal(x), cast(chl_time(x) AS VARCHAR) FROM (SELECT unnest(?::VARCHAR[]) AS x)", [cells]
    ).fetchall()
    assert len(rows) == len(cells)
    for amount, time in rows:
        assert amount is None or isinstance(amount, Decimal)
        assert time is None or isinstance(time, str)


@FUZZ
@given(
    st.integers(0, 10**12),
    st.integers(0, 99),
    st.booleans(),
    st.sampled_from(["", "¥", "￥"]),
    st.booleans(),
)
def test_amount_forms_agree_with_python(
    con: duckdb.DuckDBPyConnection, whole: int, cents: int, commas: bool, currency: str, wan: bool
) -> None:
    number = f"{whole:,}" if commas else str(whole)
    text = f"{currency}{number}.{cents:02d}{'万' if wan else ''}"
    expected = Decimal(f"{whole}.{cents:02d}") * (10000 if wan else 1)
    [(amount, _)] = parse_cells(con, [text])
    assert amount == expected, text


@FUZZ
@given(
    st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2099, 12, 31, 23, 59, 59)),
    st.sampled_from(
        [
            "%Y-%m-%d %H:%M:%S",
            "%Y-%m-%dT%H:%M:%S",
            "%Y/%m/%d %H:%M:%S",
            "%Y-%m-%d %H:%M:%S.%f",
            "%Y年%m月%d日 %H:%M:%S",
            "%Y%m%d %H:%M:%S",
            "unpadded",
        ]
    ),
)
def test_naive_timestamp_forms_agree_with_python(
    con: duckdb.DuckDBPyConnection, moment: datetime, form: str
) -> None:
    if form == "unpadded":
        text = f"{moment.year}/{moment.month}/{moment.day} {moment.hour}:{moment.minute:02d}"
        expected = moment.replace(second=0, microsecond=0)
    else:
        text = moment.strftime(form)
        expected = moment if "%f" in form else moment.replace(microsecond=0)
    [(_, time)] = parse_cells(con, [text])
    assert time == expected, text


@FUZZ
@given(
    st.datetimes(min_value=datetime(2000, 1, 2), max_value=datetime(2099, 12, 30)),
    st.integers(-14 * 60, 14 * 60).map(lambda m: timezone(timedelta(minutes=m))),
    st.booleans(),
)
def test_aware_timestamps_and_epoch_ms_convert_to_local(
    con: duckdb.DuckDBPyConnection, moment: datetime, zone: timezone, zulu: bool
) -> None:
    aware = moment.replace(microsecond=0, tzinfo=UTC if zulu else zone)
    text = aware.isoformat().replace("+00:00", "Z") if zulu else aware.isoformat()
    local = aware.astimezone(SHANGHAI).replace(tzinfo=None)
    millis = str(int(aware.timestamp()) * 1000 + moment.microsecond // 1000)
    from_millis = local + timedelta(milliseconds=moment.microsecond // 1000)
    [(_, time), (_, epoch)] = parse_cells(con, [text, millis])
    assert time == local, text
    if len(millis) in (12, 13):
        assert epoch == from_millis, millis


def test_amount_in_wan_beyond_range_is_null(con: duckdb.DuckDBPyConnection) -> None:
    [(amount, _)] = parse_cells(con, ["9" * 32 + "万"])
    assert amount is None


# --- whole rows through the loader ---------------------------------------------------------------------------


def one_row_csv(cells: dict[str, str]) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(list(cells))
    writer.writerow(list(cells.values()))
    return out.getvalue().encode("utf-8")


ORDER = {
    "order_id": "1",
    "shop_id": "ks1",
    "buyer_id": "b1",
    "sale_mode": "self",
    "carrier": "live",
    "order_time": "2023-05-01 10:00:00",
    "paid_amount": "10",
    "quantity": "1",
    "status": "paid",
    "refund_amount": "",
}


@pytest.mark.slow  # (the parser-level fuzz tests above cover the same cells in the default run)
@FUZZ_FEW
@given(
    st.fixed_dictionaries(
        {},
        optional={
            "paid_amount": st.one_of(AMOUNT_LIKE, TEXT, EPOCH_LIKE),
            "refund_amount": st.one_of(AMOUNT_LIKE, TEXT),
            "order_time": st.one_of(TIME_LIKE, EPOCH_LIKE, TEXT),
            "quantity": st.one_of(DIGITS, EPOCH_LIKE, TEXT),
            "status": st.one_of(st.sampled_from(["paid", "已发货", "10", "交易成功"]), TEXT),
            "order_id": TEXT,
            "carrier": TEXT,
        },
    )
)
def test_loading_a_fuzzed_order_rejects_or_loads(
    con: duckdb.DuckDBPyConnection, tmp_path_factory: pytest.TempPathFactory, changes: dict[str, str]
) -> None:
    path = tmp_path_factory.mktemp("fuzz") / "orders.csv"
    path.write_bytes(one_row_csv({**ORDER, **changes}))
    db = memory_database()
    try:
        try:
            [result] = load_files(db, [("orders", path)], LoadOptions(max_reject_rate=1.0))
        except ChuanliuError:
            return  # the tool's own error (e.g. a NUL byte): fine
        assert result.rows_read == 1 and result.inserted + result.rejected == 1
        if result.inserted:
            row = db.con.execute(
                "SELECT paid_amount, order_time, quantity, refund_amount FROM orders"
            ).fetchall()
            paid, when, quantity, refund = row[0]
            assert paid >= 0 and quantity >= 1 and (refund is None or 0 <= refund <= paid)
            assert datetime(2000, 1, 1) <= when < datetime(2100, 1, 1)
        else:
            [reason] = db.con.execute("SELECT reason FROM rejected_rows").fetchall()[0]
            assert reason.startswith(("column ", "columns ", "has ")), reason
    finally:
        db.con.close()


@settings(deadline=None, max_examples=40)
@given(st.floats(allow_nan=True, allow_infinity=True))
@example(float("nan"))
@pytest.mark.slow  # (the csv fuzz test covers the same parse in the default run)
def test_loading_a_fuzzed_parquet_amount_rejects_or_loads(
    tmp_path_factory: pytest.TempPathFactory, amount: float
) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = tmp_path_factory.mktemp("fuzzpq") / "orders.parquet"
    columns = {k: [v] for k, v in ORDER.items() if k != "paid_amount"}
    pq.write_table(pa.table({**columns, "paid_amount": pa.array([amount], pa.float64())}), path)
    db = memory_database()
    try:
        [result] = load_files(db, [("orders", path)], LoadOptions(max_reject_rate=1.0))
        assert result.inserted + result.rejected == 1
    finally:
        db.con.close()


# --- rules expressions ---------------------------------------------------------------------------------------

NAMES = (
    "status",
    "paid_amount",
    "net_amount",
    "order_time",
    "shop_id",
    "gmv",
    "total",
    "x",
    "merchant.eligible",
)
FUNCTIONS = (
    *AGGREGATES,
    *SCALAR_FUNCTIONS,
    "date_part",
    "read_csv",
    "glob",
    "getenv",
    "exists",
    "list_filter",
)
TOKENS = (
    *NAMES,
    *FUNCTIONS,
    "1",
    "0",
    "-1",
    "2.5",
    "1e400",
    "'paid'",
    "'it''s'",
    "'a;b'",
    "'--'",
    '"quoted"',
    "null",
    "true",
    "(",
    ")",
    ",",
    "+",
    "-",
    "*",
    "/",
    "%",
    "=",
    "<>",
    "!=",
    "<",
    ">=",
    "||",
    "::",
    "->",
    "and",
    "or",
    "not",
    "in",
    "between",
    "like",
    "is",
    "case",
    "when",
    "then",
    "else",
    "end",
    "cast",
    "as",
    "int",
    "varchar",
    "distinct",
    "over",
    "filter",
    "where",
    "select",
    "from",
    "union",
    "attach",
    "copy",
    "to",
    "pragma",
    ";",
    "--",
    "/*",
    "*/",
    "$1",
    "?",
    "[",
    "]",
    "{",
    "}",
    "year",
    "'month'",
)
SQLISH = st.lists(st.sampled_from(TOKENS), min_size=1, max_size=25).map(" ".join)


def well_formed() -> st.SearchStrategy[str]:
    """Expressions built from the allowed grammar (and a few forbidden functions), nested."""
    leaf = st.sampled_from([*NAMES, "1", "2.5", "'paid'", "null", "true", "*"])

    def extend(inner: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
        return st.one_of(
            st.tuples(inner, st.sampled_from(["+", "-", "*", "/", "=", "<", "and", "or", "||"]), inner).map(
                lambda t: f"({t[0]} {t[1]} {t[2]})"
            ),
            st.tuples(st.sampled_from(FUNCTIONS), st.lists(inner, min_size=1, max_size=3)).map(
                lambda t: f"{t[0]}({', '.join(t[1])})"
            ),
            inner.map(lambda e: f"not {e}"),
            inner.map(lambda e: f"cast({e} as double)"),
            st.tuples(inner, inner, inner).map(lambda t: f"case when {t[0]} then {t[1]} else {t[2]} end"),
            inner.map(lambda e: f"{e} in ('a', 'b', 1)"),
            inner.map(lambda e: f"{e} between 1 and 2"),
            inner.map(lambda e: f"{e} is not null"),
        )

    return st.recursive(leaf, extend, max_leaves=12)


ALLOWED_NODES: tuple[type[exp.Expr], ...] = (
    exp.Column,
    exp.Identifier,
    exp.Literal,
    exp.Boolean,
    exp.Null,
    exp.Star,
    exp.Distinct,
    exp.Paren,
    exp.Neg,
    exp.Not,
    exp.And,
    exp.Or,
    exp.Add,
    exp.Sub,
    exp.Mul,
    exp.Div,
    exp.Mod,
    exp.EQ,
    exp.NEQ,
    exp.GT,
    exp.GTE,
    exp.LT,
    exp.LTE,
    exp.Between,
    exp.Like,
    exp.ILike,
    exp.In,
    exp.Is,
    exp.Case,
    exp.If,
    exp.Cast,
    exp.DataType,
    exp.DataTypeParam,
    exp.Var,
    exp.Anonymous,  # only date_part, checked below
    *AGGREGATES.values(),
    *SCALAR_FUNCTIONS.values(),
    exp.DateTrunc,
    exp.TimestampTrunc,
)
EXPR_NAMES = [
    Names("where", frozenset(TABLES["orders"].names), "column", " of orders", frozenset({"valid_order"})),
    Names("value", frozenset(TABLES["orders"].names), "column", " of orders"),
    Names("formula", frozenset({"gmv", "x"}), "metric"),
    Names("when", frozenset({"gmv", "total"}), "metric or score"),
]


def check_tree(text: str) -> None:
    """Parse `text`: either RulesetError, or a tree made only of whitelisted parts."""
    try:
        tree = parse_expression(Expr(text, Loc("r.yaml", 3, 5)))
    except RulesetError as e:
        assert e.errors and all(line.startswith("r.yaml:") for line in e.errors), e.errors
        return
    for node in tree.walk():
        assert isinstance(node, ALLOWED_NODES), f"{type(node).__name__} accepted in {text!r}"
        if isinstance(node, exp.Anonymous):
            assert str(node.name).lower() == "date_part", text
    rendered = tree.sql(dialect="duckdb")
    assert ";" not in re.sub(r"'(?:[^']|'')*'", "", rendered), rendered


@FUZZ_MANY
@given(st.one_of(TEXT, SQLISH, well_formed()))
@example("count(*) /* ) from read_csv('/etc/passwd') */")
@example("status = 'paid'; drop table orders")
@example("(" * 120 + "1" + ")" * 120)
def test_expression_parser_accepts_only_the_subset(text: str) -> None:
    check_tree(text)
    for names in EXPR_NAMES:
        try:
            checked = check_expression(Expr(text, Loc("r.yaml", 3, 5)), names)
        except RulesetError:
            continue
        assert all(line.startswith("r.yaml:") for line in checked.errors), checked.errors


RULESET = """\
version: 1
name: fuzz
scorecards:
  merchant:
    key: shop_id
    metrics:
      gmv:
        from: orders
        where: {where}
        value: {value}
    scores:
      total:
        scale: {scale}
        parts:
          - {{metric: gmv, weight: {weight}, normalize: {{linear: [{low}, {high}]}}}}
    tiers:
      - {{name: A, min_score: {min_score}, multiplier: {multiplier}}}
    reward: {{pool: {pool}}}
"""
# Integers stay below 10**300: past float range NodeReader.number() crashes (see test_hostile_rules.py).
YAML_NUMBER = st.one_of(
    st.integers(-(10**200), 10**200).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(
        lambda f: {"nan": ".nan", "inf": ".inf", "-inf": "-.inf"}.get(str(f), str(f))
    ),
    st.sampled_from(
        ["0x1F", "0o17", "1_000", "1:30", "+1", "-0", "1e3", "'1'", "null", "[]", "{}", "yes", "~"]
    ),
)


@FUZZ
@given(
    st.fixed_dictionaries(
        {
            "where": st.one_of(SQLISH, well_formed()).map(
                lambda s: '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'
            ),
            "value": st.one_of(st.just("sum(net_amount)"), well_formed()).map(
                lambda s: '"' + s.replace('"', '\\"') + '"'
            ),
            "scale": YAML_NUMBER,
            "weight": YAML_NUMBER,
            "low": YAML_NUMBER,
            "high": YAML_NUMBER,
            "min_score": YAML_NUMBER,
            "multiplier": YAML_NUMBER,
            "pool": YAML_NUMBER,
        }
    )
)
def test_ruleset_parser_builds_or_reports_located_errors(slots: dict[str, str]) -> None:
    try:
        parse_ruleset(RULESET.format(**slots), "r.yaml")
    except RulesetError as e:
        assert e.errors and all(re.match(r"r\.yaml:\d+:\d+: ", line) for line in e.errors), e.errors


@FUZZ_MANY
@given(st.text(max_size=300))
@example("a: &a [*a]")
@example("version: 1\nname: !!python/object/apply:os.system ['true']")
@example("- [" * 50)
def test_ruleset_parser_on_any_text(text: str) -> None:
    try:
        parse_ruleset(text, "r.yaml")
    except RulesetError as e:
        assert e.errors and all(re.match(r"r\.yaml:\d+:\d+: ", line) for line in e.errors), e.errors
