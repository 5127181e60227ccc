"""The cheap first tries of the text normalizers (canonical.py) read every cell as the general path does.

A plain number is read by the cast before the regular expressions that clean an amount, a time in the first
layout by one strptime before the epoch, serial, offset and layout tests: ten times cheaper, for the same
value. Here the normalizers with the first try and without it (the general path alone) read the same cells,
hypothesis drawing them from the characters each path treats specially, and the two must agree on every
one: value and NULL alike.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import duckdb
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlglot import exp

from chuanliu_cli.ingest import canonical
from chuanliu_cli.ingest.canonical import Primitives


@dataclasses.dataclass(frozen=True)
class _GeneralOnly(Primitives):
    """DuckDB's primitives without the first tries: the general path alone."""

    def plain_decimal(self, text: exp.Expr) -> exp.Expr | None:
        return None

    def usual_time(self, text: exp.Expr) -> exp.Expr | None:
        return None


FAST = Primitives("duckdb")
GENERAL = _GeneralOnly("duckdb")
CON = duckdb.connect()


def _both(
    cells: list[str | None], build: Callable[[exp.Expr, Primitives], exp.Expr]
) -> list[tuple[object, object]]:
    x = exp.column("s")
    fast = build(x, FAST).sql("duckdb")
    general = build(x, GENERAL).sql("duckdb")
    assert fast != general, "the first try is not in the rendered expression"
    rows = CON.execute(
        f"SELECT CAST({fast} AS VARCHAR), CAST({general} AS VARCHAR) FROM unnest(?::VARCHAR[]) AS t(s)",
        [cells],
    ).fetchall()
    return [(cell, *row) for cell, row in zip(cells, rows, strict=True)]


def _decimal(x: exp.Expr, sql: Primitives) -> exp.Expr:
    return canonical.decimal_from_text(exp.Cast(this=x, to=exp.DataType.build("VARCHAR")), sql)


def _time(x: exp.Expr, sql: Primitives) -> exp.Expr:
    return canonical.time_from_text(exp.Cast(this=x, to=exp.DataType.build("VARCHAR")), sql, "Asia/Shanghai")


def _disagreements(
    cells: list[str | None], build: Callable[[exp.Expr, Primitives], exp.Expr]
) -> list[object]:
    return [row for row in _both(cells, build) if row[1] != row[2]]


NUMBER_CHARS = "0123456789.,+-eE_ ¥￥元万\t\n\r\f\v\u00a0\u3000xXaAnNiIfF"
NUMBERISH = st.one_of(
    st.text(alphabet=NUMBER_CHARS, max_size=12),
    st.builds(
        lambda pre, number, post: f"{pre}{number}{post}",
        st.sampled_from(["", " ", "\t", "¥", "￥", "+", "-", "\u00a0", "\u3000", "\n", "0"]),
        st.one_of(
            st.integers(0, 9)
            .flatmap(lambda places: st.decimals(allow_nan=False, allow_infinity=False, places=places))
            .map(str),
            st.integers(-(10**40), 10**40).map(str),
            st.floats(allow_nan=True, allow_infinity=True).map(str),
            st.integers(0, 10**12).map(lambda v: f"{v:,}"),
        ),
        st.sampled_from(["", " ", "\t", "元", "万", "%", "\u00a0", "\r\n", "e5", ".", "_000"]),
    ),
)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.one_of(st.none(), NUMBERISH), min_size=1, max_size=60))
def test_a_plain_number_reads_as_the_general_path_reads_it(cells: list[str | None]) -> None:
    assert _disagreements(cells, _decimal) == []


def _stamp(y: int, mo: int, d: int, h: int, mi: int, s: int, sep: str, frac: str) -> str:
    return f"{y:04d}-{mo:02d}-{d:02d}{sep}{h:02d}:{mi:02d}:{s:02d}{frac}"


TIMEISH = st.one_of(
    st.text(alphabet="0123456789-:/ T.+Z\t年月日", max_size=24),
    st.builds(
        lambda pre, stamp, post: f"{pre}{stamp}{post}",
        st.sampled_from(["", " ", "\t", "\u3000", "'", "0"]),
        st.builds(
            _stamp,
            st.integers(0, 9999),
            st.integers(0, 13),
            st.integers(0, 32),
            st.integers(0, 25),
            st.integers(0, 61),
            st.integers(0, 61),
            st.sampled_from([" ", "T", "  ", "/"]),
            st.sampled_from(["", ".5", ".123456", ".1234567"]),
        ),
        st.sampled_from(["", " ", "Z", "+08:00", "+0800", "-05:00", "+08", " +08:00", "\t", "\n", "x", "0"]),
    ),
    st.integers(10**11, 10**13).map(str),
    st.decimals(10000, 99999, places=3).map(str),
)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.one_of(st.none(), TIMEISH), min_size=1, max_size=60))
def test_a_time_in_the_first_layout_reads_as_the_general_path_reads_it(cells: list[str | None]) -> None:
    assert _disagreements(cells, _time) == []


@pytest.mark.parametrize(
    ("cell", "value"),
    [
        ("12.50", "12.500000"),
        (" 1e5 ", "100000.000000"),
        ("1_000", "1000.000000"),
        ("1,234.5", "1234.500000"),
        ("¥88", "88.000000"),
        ("1.2万", "12000.000000"),
        ("--", None),
        ("abc", None),
    ],
)
def test_amounts_read_alike_both_ways(cell: str, value: str | None) -> None:
    assert _both([cell], _decimal) == [(cell, value, value)]


@pytest.mark.parametrize(
    ("cell", "value"),
    [
        ("2023-05-01 20:00:00", "2023-05-01 20:00:00"),
        (" 2023-05-01 20:00:00", "2023-05-01 20:00:00"),
        ("2023-05-01 20:00:00+00:00", "2023-05-02 04:00:00"),
        ("2023-05-01T20:00:00Z", "2023-05-02 04:00:00"),
        ("2023-05-01 20:00", "2023-05-01 20:00:00"),
        ("1682942400000", "2023-05-01 20:00:00"),
        ("2023-02-30 20:00:00", None),
    ],
)
def test_times_read_alike_both_ways(cell: str, value: str | None) -> None:
    assert _both([cell], _time) == [(cell, value, value)]
