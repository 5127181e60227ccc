"""The safe SQL subset of rules expressions: whitelist, hostile input, name resolution, carets."""

from __future__ import annotations

import pytest

from chuanliu_cli.errors import RulesetError
from chuanliu_cli.rules.expressions import (
    Names,
    check_expression,
    compile_result_expression,
    empty_value,
    guard_divisions,
    parse_expression,
    syntax_errors,
)
from chuanliu_cli.rules.model import Expr, Loc

ORDERS = frozenset({"status", "sale_mode", "net_amount", "paid_amount", "order_time", "shop_id", "buyer_id"})


def at(text: str, line: int = 3, col: int = 10) -> Expr:
    """An expression written at r.yaml:3:10 (single line: offsets map to columns one to one)."""
    return Expr(text, Loc("r.yaml", line, col))


def where(**kw: object) -> Names:
    return Names("where", ORDERS, "column", " of orders", filters=frozenset({"valid_order"}), **kw)  # type: ignore[arg-type]


def value() -> Names:
    return Names("value", ORDERS, "column", " of orders", filters=frozenset({"valid_order"}))


HOSTILE = [
    # (expression, column of the caret, message start, caret)
    ("read_csv('/etc/passwd')", 10, "table function read_csv is not allowed", "^^^^^^^^"),
    ("attach 'evil.db' as e", 10, "SQL statements are not allowed (ATTACH)", "^^^^^^"),
    ("copy orders to '/tmp/x.csv'", 10, "SQL statements are not allowed (COPY)", "^^^^"),
    ("install httpfs", 10, "SQL statements are not allowed (INSTALL)", "^^^^^^^"),
    ("load httpfs", 10, "SQL statements are not allowed (LOAD)", "^^^^"),
    ("1; drop table orders", 11, "`;` is not allowed", "^"),
    ("status = 'paid' -- and 1=1", 26, "SQL comments (--) are not allowed", "^^^^^^^^^^"),
    ("status /* x */ = 'paid'", 17, "SQL comments (/* */) are not allowed", "^^^^^^^"),
    ("(select 1)", 11, "SQL statements are not allowed (SELECT)", "^^^^^^"),
    ("status in (select status from orders)", 21, "IN takes a list of literal values", "^^^^^^"),
    ("glob('*') is null", 10, "table function glob is not allowed", "^^^^"),
    ("read_text('/etc/passwd') = ''", 10, "table function read_text is not allowed", "^^^^^^^^^"),
    ("pragma database_list", 10, "SQL statements are not allowed (PRAGMA)", "^^^^^^"),
    ("set enable_external_access = true", 10, "SQL statements are not allowed (SET)", "^^^"),
    ("frobnicate(net_amount) > 1", 10, "unknown function frobnicate (allowed: count, sum,", "^^^^^^^^^^"),
    ("getenv('HOME') = 'x'", 10, "unknown function getenv", "^^^^^^"),
    ("current_setting('threads') > 1", 10, "unknown function current_setting", "^^^^^^^^^^^^^^^"),
    ("list_transform([1, 2], x -> x + 1) = 1", 10, "unknown function list_transform", "^^^^^^^^^^^^^^"),
    ("sum(net_amount) over () > 1", 26, "window functions (OVER) are not allowed", "^^^^"),
    ("net_amount ^ 2 > 1", 21, "operator ^ is not allowed; write power(x, y)", "^"),
    ("coutn(*) > 1", 10, "unknown function coutn; did you mean 'count'?", "^^^^^"),
    ("log(net_amount) > 1", 10, "unknown function log; did you mean 'log10'?", "^^^"),
    ("$1 = 1", 10, "parameters are not allowed", "^^"),
    ("cast(net_amount as int[]) is null", 29, "cannot cast to INT[]", "^^^^^"),
    ("count(*) filter (where true) > 1", 19, "FILTER clauses are not allowed", "^^^^^^"),
    ("net_amount // 2 > 1", 21, "operator // is not allowed", "^^"),
    ("orders.db.status = 'x'", 10, "only plain names", "^^^^^^^^^^^^^^^^"),
    ("date_trunc('fortnight', order_time) is null", 22, "unknown date unit 'fortnight'", "^^^^^^^^^"),
    ("status is 1", 20, "IS must be followed by NULL, TRUE or FALSE", "^"),
    ("status = 'a' and", 23, "cannot parse expression: incomplete", "^^^"),
    ("'unterminated", 10, "cannot read expression", "^^^^^^^^^^^^^"),
]


@pytest.mark.parametrize(("text", "col", "message", "carets"), HOSTILE, ids=[h[0] for h in HOSTILE])
def test_hostile_expressions_are_rejected_with_location_and_caret(
    text: str, col: int, message: str, carets: str
) -> None:
    errors = syntax_errors(at(text))
    assert errors, text
    head, shown, caret_line = errors[0].split("\n")
    assert head.startswith(f"r.yaml:3:{col}: {message}"), errors[0]
    assert shown == f"    {text}"
    assert caret_line == " " * (4 + col - 10) + carets
    with pytest.raises(RulesetError):
        parse_expression(at(text))


ALLOWED = [
    "status not in ('pending', 'closed')",
    "sale_mode = 'distribution' and not (status = 'closed' or status is null)",
    "net_amount between -1 and 2.5e3",
    "lower(status) like 'p%' or upper(sale_mode) ilike 'D%'",
    "length(buyer_id) > 3 and buyer_id is not null",
    "case when net_amount > 100 then 'big' when net_amount > 10 then 'mid' else 'small' end = 'big'",
    "cast(net_amount as decimal(14, 2)) > 1 and net_amount::double < 2",
    "date_part('year', order_time) = 2023 and extract(month from order_time) = 5",
    "date_trunc('week', order_time) = cast('2023-05-01' as timestamp)",
    "coalesce(net_amount, 0) / nullif(paid_amount, 0) > greatest(0.5, least(1, 2))",
    "abs(round(net_amount, 2)) + floor(net_amount) + ceil(net_amount) + sqrt(power(net_amount, 2)) > 0",
    "ln(1 + net_amount) > log10(100) and net_amount % 2 = 0",
    "status = 'a;b' and sale_mode = '-- not a comment' and buyer_id <> '/* nor this */'",
    "status in ('paid', -1, 2.5, null, true)",
]


@pytest.mark.parametrize("text", ALLOWED)
def test_allowed_expressions_pass(text: str) -> None:
    assert syntax_errors(at(text)) == []
    assert check_expression(at(text), where()).errors == []


@pytest.mark.parametrize(
    "text",
    [
        "count(*)",
        "count(distinct buyer_id)",
        "sum(net_amount) / count(*)",
        "avg(case when status = 'paid' then 1.0 else 0.0 end)",
        "min(net_amount) + max(net_amount) + median(net_amount) + stddev(net_amount)",
        "sum(case when valid_order then net_amount end)",
    ],
)
def test_value_expressions_aggregate(text: str) -> None:
    assert check_expression(at(text), value()).errors == []


def test_unknown_column_suggests_the_closest() -> None:
    errors = check_expression(at("staus = 'paid'"), where()).errors
    assert errors == [
        "r.yaml:3:10: unknown column 'staus' of orders; did you mean 'status'?\n    staus = 'paid'\n    ^^^^^"
    ]


def test_filter_names_are_booleans_in_where() -> None:
    checked = check_expression(at("valid_order and sale_mode = 'self'"), where())
    assert checked.errors == []
    assert checked.filters == {"valid_order"}
    assert checked.names == {"sale_mode"}


def test_aggregate_in_where_is_rejected() -> None:
    errors = check_expression(at("sum(net_amount) > 1"), where()).errors
    assert errors[0].startswith("r.yaml:3:10: aggregate sum() not allowed here: `where` is evaluated per row")


def test_value_needs_an_aggregate() -> None:
    errors = check_expression(at("net_amount * 2"), value()).errors
    assert errors[0].startswith("r.yaml:3:10: value must aggregate rows, e.g. count(*) or sum(net_amount)")


def test_value_rejects_nested_aggregates_and_bare_columns() -> None:
    errors = check_expression(at("sum(count(*)) + net_amount"), value()).errors
    assert [e.split("\n")[0] for e in errors] == [
        "r.yaml:3:14: aggregates cannot be nested",
        "r.yaml:3:26: 'net_amount' must be inside an aggregate (count, sum, ...)",
    ]


def test_scorecard_fields_in_where() -> None:
    names = where(scorecards={"merchant": None, "promoter": "scorecard 'promoter' is evaluated after 'x'"})
    ok = check_expression(at("merchant.eligible and merchant.total > 50"), names)
    assert ok.errors == []
    assert ok.scorecard_fields == {("merchant", "eligible"), ("merchant", "total")}
    bad = check_expression(at("merchant.eligable or promoter.tier = 'A' or merchnt.tier = 'S'"), names).errors
    assert [e.split("\n")[0] for e in bad] == [
        "r.yaml:3:10: unknown scorecard field 'merchant.eligable'; did you mean 'eligible'?",
        "r.yaml:3:31: scorecard 'promoter' is evaluated after 'x'",
        "r.yaml:3:54: unknown scorecard 'merchnt'; did you mean 'merchant'?",
    ]


def test_formula_sees_metric_names_only() -> None:
    names = Names(
        "formula",
        frozenset({"gmv", "gmv_prev"}),
        "metric",
        elsewhere={"total": "; 'total' is a score: formulas see metric names only"},
    )
    assert check_expression(at("(gmv - gmv_prev) / gmv_prev"), names).errors == []
    errors = check_expression(at("gmv + total + status + sum(gmv)"), names).errors
    assert [e.split("\n")[0] for e in errors] == [
        "r.yaml:3:16: unknown metric 'total'; 'total' is a score: formulas see metric names only",
        "r.yaml:3:24: unknown metric 'status'",
        "r.yaml:3:33: aggregate sum() not allowed here: a formula combines metric values; "
        "aggregate in a metric's `value`",
    ]


def test_gate_when_sees_metrics_and_scores() -> None:
    names = Names("when", frozenset({"live_days", "total"}), "metric or score")
    assert check_expression(at("live_days >= 8 and total > 50"), names).errors == []
    errors = check_expression(at("live_dayz >= 8"), names).errors
    assert (
        errors[0].split("\n")[0]
        == "r.yaml:3:10: unknown metric or score 'live_dayz'; did you mean 'live_days'?"
    )


def test_carets_align_under_wide_characters() -> None:
    errors = syntax_errors(at("status = '已完成' and getenv('x') = 1"))
    assert errors[0].split("\n")[1:] == [
        "    status = '已完成' and getenv('x') = 1",
        "                          ^^^^^^",
    ]


def test_multiline_expression_locates_the_right_line() -> None:
    expr = Expr("status = 'paid'\n  and glob('*') is null", Loc("r.yaml", 7, 11))
    assert syntax_errors(expr)[0].split("\n") == [
        "r.yaml:8:17: table function glob is not allowed: rules cannot read files or tables",
        "      and glob('*') is null",
        "          ^^^^",
    ]


def test_overlong_expression_is_rejected() -> None:
    errors = syntax_errors(at("1 + " * 600 + "1"))
    assert errors[0].startswith("r.yaml:3:10: expression longer than 2000 characters")


def test_divisions_are_guarded_against_zero() -> None:
    tree = guard_divisions(parse_expression(at("a / b + c % (d - 1) + e / 2 + f / nullif(g, 0)")))
    assert (
        tree.sql(dialect="duckdb") == "a / NULLIF(b, 0) + c % NULLIF((d - 1), 0) + e / 2 + f / NULLIF(g, 0)"
    )


def test_result_expression_quotes_names_and_guards_division() -> None:
    tree = compile_result_expression(at("live_days >= 8 and gmv / orders > 1"), table="r")
    assert tree.sql(dialect="duckdb") == '"r"."live_days" >= 8 AND "r"."gmv" / NULLIF("r"."orders", 0) > 1'


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("count(*)", "0"),
        ("(sum(x))", "0"),
        ("sum(x) / 60", "0"),
        ("count(*) * 2 + 1", "1"),
        ("coalesce(avg(x), 0)", "0"),
        ("greatest(max(x), 3)", "3"),
        ("sum(x) / count(*)", "NULL"),
        ("avg(x)", "NULL"),
        ("max(x) - min(x)", "NULL"),
        ("sum(case when x > 1 then 1 else 0 end) / 4", "0"),
        ("round(sum(x), 2)", "ROUND(0, 2)"),
    ],
)
def test_empty_value_of_an_aggregate(text: str, expected: str) -> None:
    """count/sum over no rows are 0, other aggregates NULL, and the expression is computed from them."""
    assert empty_value(parse_expression(at(text))).sql(dialect="duckdb") == expected
