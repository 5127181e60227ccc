"""Literals of the wrong type in rules (SPEC §4): refused by `rules check` where they are written (exit 3),
and a conversion that still fails while scoring is located, never an internal error."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from chuanliu_cli.exit_codes import ExitCode
from chuanliu_cli.rules.expressions import Names, check_expression
from chuanliu_cli.rules.model import Expr, Loc

REPO = Path(__file__).resolve().parent.parent
BUNDLED = (REPO / "rules" / "chuanliu.yaml").read_text(encoding="utf-8")
GATE = "when: live_days >= 8 and live_weeks >= 3"
REVIEW_WHERE = "        where: genuine_review\n"  # the first is metric reviews_90d's
ORDER_WHERE = "        where: valid_order\n"  # the first is metric quality_return_rate_90d's
SELF_LIVE = "self_live_order: valid_order and sale_mode = 'self' and carrier = 'live'"
GROWTH = "greatest(self_live_gmv_prev, 1000)"


def edited(*edits: tuple[str, str]) -> str:
    """The bundled ruleset with the first occurrence of each `old` replaced by `new`."""
    text = BUNDLED
    for old, new in edits:
        assert old in text, old
        text = text.replace(old, new, 1)
    return text


def position(text: str, written: str, literal: str) -> tuple[int, int]:
    """(line, col), 1-based, of `literal` inside the first line that contains `written`."""
    for number, line in enumerate(text.splitlines(), start=1):
        if written in line:
            return number, line.index(written) + written.index(literal) + 1
    raise AssertionError(f"{written!r} is not in the ruleset")


def assert_located(stderr: str, path: Path, line: int, col: int, literal: str, message: str) -> None:
    """An error at path:line:col matching `message`, then its excerpt with carets under `literal` only."""
    lines = stderr.splitlines()
    head = f"Error: {path}:{line}:{col}: "
    found = [i for i, text in enumerate(lines) if text.startswith(head)]
    assert found, f"no error at {line}:{col}:\n{stderr}"
    i = found[0]
    assert re.search(message, lines[i][len(head) :]), lines[i]
    shown, carets = lines[i + 1], lines[i + 2]
    assert carets.strip() == "^" * len(literal), carets
    assert shown[carets.index("^") :].startswith(literal), (shown, carets)


# (id, edits, the line holding the literal as written, the literal, message)
BAD = [
    (
        "gate-when-text",
        [(GATE, "when: live_days >= '8 days' and live_weeks >= 3")],
        "live_days >= '8 days'",
        "'8 days'",
        r"^'8 days' is text, but live_days is a number: write a number, without quotes$",
    ),
    (
        "gate-when-quoted-number",
        [(GATE, "when: live_days >= '8' and live_weeks >= 3")],
        "live_days >= '8'",
        "'8'",
        r"^'8' is text, not a number \(live_days is a number\): write 8 without quotes$",
    ),
    (
        "metric-where-text",
        [(REVIEW_WHERE, "        where: not suspicious and quality_score >= 'one'\n")],
        "quality_score >= 'one'",
        "'one'",
        r"^'one' is text, but quality_score is a number: write a number, without quotes$",
    ),
    (
        "metric-where-bad-date",
        [(ORDER_WHERE, "        where: valid_order and order_time >= '2023-13-01'\n")],
        "order_time >= '2023-13-01'",
        "'2023-13-01'",
        r"^'2023-13-01' is not a date or time \(month must be in 1\.\.12\), but order_time is a time: "
        r"write 'YYYY-MM-DD' or 'YYYY-MM-DD HH:MM:SS'$",
    ),
    (
        "metric-where-not-a-date",
        [(ORDER_WHERE, "        where: valid_order and order_time between '2023-05-01' and 'tomorrow'\n")],
        "'tomorrow'",
        "'tomorrow'",
        r"^'tomorrow' is not a date or time, but order_time is a time",
    ),
    (
        "filter-boolean",
        [("genuine_review: not suspicious", "genuine_review: not suspicious and complaint = 'no'")],
        "complaint = 'no'",
        "'no'",
        r"^'no' is text, but complaint is true/false: write true or false without quotes "
        r"\(filter 'genuine_review' used on reviews by metric '\w+'\)$",
    ),
    (
        "filter-number-for-text",
        [(SELF_LIVE, SELF_LIVE.replace("carrier = 'live'", "carrier = 1"))],
        "carrier = 1",
        "1",
        r"^1 is a number, but carrier is text: quote it \('1'\)",
    ),
    (
        "formula-quoted-number",
        [(GROWTH, "greatest(self_live_gmv_prev, '1000')")],
        "'1000')",
        "'1000'",
        r"^'1000' is text, not a number \(self_live_gmv_prev is a number\): write 1000 without quotes$",
    ),
    (
        "metric-value-in-list",
        [("value: avg(case when quality_score <= 2", "value: avg(case when quality_score in (1, 'two')")],
        "'two')",
        "'two'",
        r"^'two' is text, but quality_score is a number",
    ),
    (
        "metric-value-cast",
        [
            (
                "value: avg(case when quality_score <= 2",
                "value: avg(case when quality_score <= cast('2x' as int)",
            )
        ],
        "'2x'",
        "'2x'",
        r"^'2x' is not a number: it cannot be cast to INT$",
    ),
]


@pytest.mark.parametrize(
    ("edits", "written", "literal", "message"), [b[1:] for b in BAD], ids=[b[0] for b in BAD]
)
def test_rules_check_refuses_a_literal_of_the_wrong_type(
    tmp_path: Path,
    cli: Callable[..., Any],
    edits: list[tuple[str, str]],
    written: str,
    literal: str,
    message: str,
) -> None:
    path = tmp_path / "typed.yaml"
    text = edited(*edits)
    path.write_text(text, encoding="utf-8")
    result = cli("rules", "check", str(path))
    assert result.exit_code == ExitCode.INVALID_RULESET, result.output
    assert "internal error" not in result.output and "Traceback" not in result.output
    assert_located(result.stderr, path, *position(text, written, literal), literal, message)


def test_every_wrong_literal_is_reported_at_once(tmp_path: Path, cli: Callable[..., Any]) -> None:
    path = tmp_path / "typed.yaml"
    text = edited(
        (GATE, "when: live_days >= '8 days' and live_weeks >= 3"),
        (ORDER_WHERE, "        where: valid_order and order_time >= '2023-13-01'\n"),
    )
    path.write_text(text, encoding="utf-8")
    result = cli("rules", "check", str(path))
    assert result.exit_code == ExitCode.INVALID_RULESET, result.output
    assert_located(result.stderr, path, *position(text, "'8 days'", "'8 days'"), "'8 days'", "is text")
    where = "order_time >= '2023-13-01'"
    assert_located(result.stderr, path, *position(text, where, "'2023-13-01'"), "'2023-13-01'", "not a date")


def test_scoring_refuses_before_running_anything(tmp_path: Path, cli: Callable[..., Any]) -> None:
    """The reported bug: `eligible` with a text threshold in a gate failed as an internal error (exit 1)."""
    path = tmp_path / "typed.yaml"
    text = edited((GATE, "when: live_days >= '8 days' and live_weeks >= 3"))
    path.write_text(text, encoding="utf-8")
    result = cli("eligible", "--month", "2023-05", "--data", str(REPO / "sample_data"), "--rules", str(path))
    assert result.exit_code == ExitCode.INVALID_RULESET, result.output
    assert result.stdout == "" and "internal error" not in result.stderr
    assert_located(result.stderr, path, *position(text, "'8 days'", "'8 days'"), "'8 days'", "is text")


GOOD = [
    ("bundled", []),  # carrier = 'live', sale_mode = 'self', status not in ('pending', 'closed'), ...
    ("date", [(ORDER_WHERE, "        where: valid_order and order_time >= '2023-05-01'\n")]),
    ("time", [(ORDER_WHERE, "        where: valid_order and order_time < '2023-05-31 12:30:00'\n")]),
    (
        "date-range",
        [
            (
                REVIEW_WHERE,
                "        where: genuine_review and review_time between '2023-01-01' and '2023-06-01T00:00'\n",
            )
        ],
    ),
    ("day", [(REVIEW_WHERE, "        where: cast(review_time as date) <> '2023-05-04'\n")]),
    ("numbers", [(REVIEW_WHERE, "        where: quality_score in (1, 2) and complaint = false\n")]),
    ("text", [(SELF_LIVE, SELF_LIVE.replace("carrier = 'live'", "carrier in ('live', 'video')"))]),
    ("text-cast", [(REVIEW_WHERE, "        where: cast(quality_score as varchar) = '5'\n")]),
]


@pytest.mark.parametrize("edits", [g[1] for g in GOOD], ids=[g[0] for g in GOOD])
def test_literals_of_the_right_type_pass(
    tmp_path: Path, cli: Callable[..., Any], edits: list[tuple[str, str]]
) -> None:
    path = tmp_path / "typed.yaml"
    path.write_text(edited(*edits), encoding="utf-8")
    result = cli("rules", "check", str(path))
    assert result.exit_code == 0, result.output


ORDERS = {"status": "text", "net_amount": "decimal", "quantity": "integer", "order_time": "time"}


def orders() -> Names:
    names = frozenset(ORDERS) | {"refunded"}
    return Names("where", names, "column", " of orders", kinds={**ORDERS, "refunded": "boolean"})  # type: ignore[dict-item]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("quantity between 1 and '9'", "'9' is text, not a number"),
        ("quantity + '1' > 2", "'1' is text, not a number"),
        ("coalesce(net_amount, 'none') > 0", "'none' is text, but net_amount is a number"),
        ("nullif(quantity, 'x') is null", "'x' is text, but quantity is a number"),
        ("(case when refunded then 1 else 'no' end) = 1", "'no' is text, but 1 is a number"),
        ("case quantity when 'one' then true else false end", "'one' is text, but quantity is a number"),
        ("refunded = 'true'", "'true' is text, but refunded is true/false: write true without quotes"),
        ("status = quantity", "status is text and quantity is a number: they cannot be compared"),
        ("status > -2", r"-2 is a number, but status is text: quote it \('-2'\)"),
        (
            "order_time < '2023-02-30'",
            r"'2023-02-30' is not a date or time \(day is out of range for month\)",
        ),
        (
            "order_time >= '2023-05-01+08'",
            "'2023-05-01[+]08' is not a date or time, but order_time is a time",
        ),
    ],
)
def test_each_way_a_literal_meets_a_value(text: str, message: str) -> None:
    errors = check_expression(Expr(text, Loc("r.yaml", 3, 10)), orders()).errors
    assert len(errors) == 1, errors
    assert re.match(rf"r\.yaml:3:\d+: {message}", errors[0]), errors[0]


@pytest.mark.parametrize(
    "text",
    [
        "status = 'paid' and quantity >= 2 and net_amount < 10.5",
        "order_time >= '2023-05-01' and order_time < '2023-06-01 00:00:00.5'",
        "order_time - '1 day' < order_time",  # time arithmetic is left to the engine
        "date_trunc('month', order_time) = '2023-05-01'",
        "coalesce(status, 'none') <> 'x' and refunded = true and quantity in (1, 2, -3)",
        "cast('8' as int) < quantity and cast('2023-05-01' as date) <= order_time",
        "unknown_name = 'x'",  # nothing known about the name: left to the name check
    ],
)
def test_literals_that_fit_are_not_reported(text: str) -> None:
    errors = check_expression(Expr(text, Loc("r.yaml", 3, 10)), orders()).errors
    assert [e for e in errors if "unknown column" not in e] == []


# What `rules check` cannot see: a quoted value handed to a function, a value of the data a cast cannot
# convert. Scoring names the gate, metric or filter instead of failing as an internal error.


def score(path: Path, cli: Callable[..., Any]) -> Any:
    return cli("eligible", "--month", "2023-05", "--data", str(REPO / "sample_data"), "--rules", str(path))


def test_a_gate_that_fails_while_scoring_is_a_located_ruleset_error(
    tmp_path: Path, cli: Callable[..., Any]
) -> None:
    path = tmp_path / "gate.yaml"
    text = edited((GATE, "when: live_days >= ln('8 days') and live_weeks >= 3"))
    path.write_text(text, encoding="utf-8")
    assert cli("rules", "check", str(path)).exit_code == 0  # (if it is refused one day, find another case)
    result = score(path, cli)
    assert result.exit_code == ExitCode.INVALID_RULESET, result.output
    assert "internal error" not in result.stderr and result.stdout == ""
    message = (
        r"gate 'stable_live' of scorecard merchant failed while scoring: Conversion Error: "
        r"Could not convert string '8 days' to DOUBLE"
    )
    assert_located(result.stderr, path, *position(text, "'8 days'", "'8 days'"), "'8 days'", message)


def test_a_metric_literal_that_fails_while_scoring_is_a_located_ruleset_error(
    tmp_path: Path, cli: Callable[..., Any]
) -> None:
    path = tmp_path / "metric.yaml"
    text = edited(("genuine_review: not suspicious", "genuine_review: not suspicious and ln('x') < 10"))
    path.write_text(text, encoding="utf-8")
    assert cli("rules", "check", str(path)).exit_code == 0
    result = score(path, cli)
    assert result.exit_code == ExitCode.INVALID_RULESET, result.output
    assert "internal error" not in result.stderr
    message = (
        r"filter 'genuine_review' \(used by metric '\w+' of scorecard merchant\) failed while scoring: .*'x'"
    )
    assert_located(result.stderr, path, *position(text, "ln('x')", "'x'"), "'x'", message)


def test_data_a_cast_cannot_convert_names_the_metrics(tmp_path: Path, cli: Callable[..., Any]) -> None:
    path = tmp_path / "data.yaml"
    text = edited((ORDER_WHERE, "        where: valid_order and cast(buyer_id as bigint) > 0\n"))
    path.write_text(text, encoding="utf-8")
    assert cli("rules", "check", str(path)).exit_code == 0
    result = score(path, cli)
    assert result.exit_code == ExitCode.INVALID_DATA, result.output
    assert "internal error" not in result.stderr
    line, _col = position(text, "  quality_return_rate_90d:", "q")  # where the metric is written
    assert re.search(
        rf"Error: scorecard merchant: metric 'quality_return_rate_90d' \({re.escape(str(path))}:{line}:\d+\): "
        r"the metric query failed: Conversion Error",
        result.stderr,
    ), result.stderr
    assert "Hint: the ruleset converts a column's values" in result.stderr
