"""scoring/gates.py: each gate's own outcome on values rounded to 6 decimals, and the `metric op constant` view."""

from __future__ import annotations

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chuanliu_cli.rules.model import Expr, FormulaMetric, Gate, Loc, Scorecard
from chuanliu_cli.scoring.gates import apply_gates, comparisons, eligibility, gate_column, holds

L = Loc("t.yaml", 1, 1)


def _gate(when: str, missing: str = "fail", gate_id: str = "g") -> Gate:
    return Gate(gate_id, Expr(when, L), f"reason of {gate_id}", missing, L)  # type: ignore[arg-type]


def _card(*gates: Gate, names: tuple[str, ...] = ("a", "b")) -> Scorecard:
    metrics = tuple(FormulaMetric(n, None, Expr("1", L), L) for n in names)
    return Scorecard("m", None, "k", metrics, (), "a", gates, (), None, L)


def _frame(**columns: list[float | None]) -> pl.DataFrame:
    n = len(next(iter(columns.values())))
    data: dict[str, list[object]] = {"k": [f"e{i}" for i in range(n)], **columns}
    return pl.DataFrame(data, schema={"k": pl.Utf8, **{c: pl.Float64 for c in columns}})


def test_each_gate_keeps_its_own_outcome_and_missing_decides_null() -> None:
    fail_null = _gate("a >= 1", "fail", "fail_null")
    pass_null = _gate("b < 3", "pass", "pass_null")
    card = _card(fail_null, pass_null)
    out = apply_gates(card, _frame(a=[2.0, 0.0, None], b=[None, 1.0, 5.0]))
    assert out[gate_column(fail_null)].to_list() == [True, False, None]
    assert out[gate_column(pass_null)].to_list() == [None, True, False]
    assert out["failed_gates"].to_list() == [[], ["fail_null"], ["fail_null", "pass_null"]]
    assert out["eligible"].to_list() == [True, False, False]


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(st.one_of(st.none(), st.floats(-5, 5)), st.one_of(st.none(), st.floats(-5, 5))),
        min_size=0,
        max_size=12,
    ),
    st.sampled_from(["fail", "pass"]),
)
def test_eligibility_alone_is_apply_gates_eligible(
    rows: list[tuple[float | None, float | None]], missing: str
) -> None:
    """A scorecard read later for its eligibility only gets it from `eligibility`: the same column as
    apply_gates' `eligible`, NULL outcomes decided by each gate's `missing`; everyone without gates."""
    card = _card(_gate("a >= 1", missing, "g1"), _gate("b < 3 and a < 4", "fail", "g2"))
    frame = _frame(a=[r[0] for r in rows], b=[r[1] for r in rows])
    assert eligibility(card, frame).to_list() == apply_gates(card, frame)["eligible"].to_list()
    assert eligibility(_card(), frame).to_list() == apply_gates(_card(), frame)["eligible"].to_list()


def test_values_are_rounded_to_six_decimals_half_away_from_zero() -> None:
    card = _card(_gate("a >= 4"), _gate("b > -1", gate_id="neg"))
    out = apply_gates(card, _frame(a=[3.9999995, 3.9999994], b=[-1.0000004, -1.0000005]))
    assert out[gate_column(card.gates[0])].to_list() == [True, False]
    assert out[gate_column(card.gates[1])].to_list() == [False, False]


def test_no_gates_everyone_eligible_and_no_outcome_columns() -> None:
    out = apply_gates(_card(), _frame(a=[1.0]))
    assert out.columns == ["k", "a", "eligible", "failed_gates"]
    assert out["eligible"].to_list() == [True]


@pytest.mark.parametrize(
    ("when", "expected"),
    [
        ("a >= 1", [("a", ">=", 1.0)]),
        ("a >= 8 and b >= 3", [("a", ">=", 8.0), ("b", ">=", 3.0)]),
        ("(a > 0)", [("a", ">", 0.0)]),
        ("1 <= a", [("a", ">=", 1.0)]),
        ("-2 < a and (b <> 0.5)", [("a", ">", -2.0), ("b", "<>", 0.5)]),
        ("a = -1", [("a", "=", -1.0)]),
        ("a + b > 3", None),
        ("a > b", None),
        ("a > 1 or b > 1", None),
        ("a is not null", None),
    ],
)
def test_comparisons(when: str, expected: list[tuple[str, str, float]] | None) -> None:
    assert comparisons(_gate(when)) == expected


@pytest.mark.parametrize(
    ("value", "op", "constant", "expected"),
    [
        (3.9999995, ">=", 4.0, True),
        (3.9999994, ">=", 4.0, False),
        (0.1 + 0.2, "=", 0.3, True),
        (5.0, "<>", 5.0000001, False),
        (2.0, "<", 2.0, False),
        (2.0, "<=", 2.0, True),
    ],
)
def test_holds_compares_rounded_values(value: float, op: str, constant: float, expected: bool) -> None:
    assert holds(value, op, constant) is expected


# whole millionths plus an offset clear of the half-way point, so that rounding the float and rounding its
# decimal repr agree (both are "6 decimals, half away from zero")
micros = st.integers(-(10**9), 10**9)
offsets = st.sampled_from([0.0, 0.1, 0.3, -0.2, -0.4])


@settings(max_examples=60, deadline=None)
@given(
    value=st.tuples(micros, offsets).map(lambda t: (t[0] + t[1]) / 1e6),
    op=st.sampled_from([">=", ">", "<=", "<", "=", "<>"]),
    constant=micros.map(lambda m: m / 1e6),
)
def test_holds_agrees_with_the_evaluated_gate(value: float, op: str, constant: float) -> None:
    gate = _gate(f"a {op} {constant:.6f}")
    (comparison,) = comparisons(gate) or [None]
    assert comparison == ("a", op, pytest.approx(constant, abs=1e-12))
    outcome = apply_gates(_card(gate, names=("a",)), _frame(a=[value]))[gate_column(gate)][0]
    assert holds(value, op, constant) is outcome
