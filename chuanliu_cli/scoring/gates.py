"""Gates (SPEC §4 "Gates, tiers, reward"): each gate evaluated once per entity, on values rounded to 6 places.

apply_gates evaluates every gate's `when` over the scored rows and keeps each gate's own outcome
(True/False/NULL) beside `eligible` and `failed_gates`, so explain reads it rather than evaluating again.
For explain's "amount needed", a gate of the shape `metric op constant [and ...]` is decomposed by
`comparisons`, and `holds` is the comparison on rounded values.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from chuanliu_cli.arrays import ArrowStream, frame_of
from chuanliu_cli.errors import RulesetError, first_line
from chuanliu_cli.rules.model import Gate, Scorecard
from chuanliu_cli.scoring.allocation import round_micro
from chuanliu_cli.sqltext import ident

if TYPE_CHECKING:
    import duckdb
    import polars as pl

#: A comparison operator of a `metric op constant` gate, as SQL writes it.
_OPS = {"GTE": ">=", "GT": ">", "LTE": "<=", "LT": "<", "EQ": "=", "NEQ": "<>"}
_FLIPPED = {">=": "<=", ">": "<", "<=": ">=", "<": ">", "=": "=", "<>": "<>"}


def gate_column(gate: Gate) -> str:
    """The name of the helper column holding a gate's own outcome (dropped before results are shown)."""
    return f"__gate__{gate.id}"


def round6_expr(x: pl.Expr) -> pl.Expr:
    """Round to 6 decimals, half away from zero (for threshold comparisons)."""
    return (x.abs() * 1_000_000 + 0.5).floor() * x.sign() / 1_000_000


def apply_gates(sc: Scorecard, frame: pl.DataFrame) -> pl.DataFrame:
    """Evaluate each gate on values rounded to 6 decimals; add `eligible`, `failed_gates` and each outcome.

    Each gate's outcome (True/False/NULL, before `missing` decides a NULL) is the column gate_column(gate).
    Gates run on a private in-memory DuckDB over the scored rows, whatever engine computed the metrics.
    """
    import polars as pl

    if not sc.gates:
        return frame.with_columns(
            pl.lit(True).alias("eligible"), pl.lit([], dtype=pl.List(pl.Utf8)).alias("failed_gates")
        )
    outcome, passed = _gate_outcomes(sc, frame)
    failed = failed_lists(~passed.to_numpy().astype(bool), [g.id for g in sc.gates])
    return frame.with_columns(
        *outcome.get_columns(),
        failed.alias("failed_gates"),
        (failed.list.len() == 0).alias("eligible"),
    )


def eligibility(sc: Scorecard, frame: pl.DataFrame) -> pl.Series:
    """`eligible` of apply_gates alone (every gate passed), without the failed-gate lists and outcomes: for
    a scorecard that a later one reads for its eligibility only."""
    import polars as pl

    if not sc.gates:
        return pl.repeat(True, frame.height, dtype=pl.Boolean, eager=True).alias("eligible")
    _, passed = _gate_outcomes(sc, frame)
    return passed.select(pl.all_horizontal(pl.all()).alias("eligible")).to_series()


def _gate_outcomes(sc: Scorecard, frame: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Each gate's outcome (columns gate_column(gate): True/False/NULL) and whether it passed (columns
    gate.id: NULL decided by the gate's `missing`), row for row."""
    import duckdb
    import polars as pl

    names = [m.name for m in sc.metrics] + [s.name for s in sc.scores]
    rounded = frame.select(pl.col(sc.key), *(round6_expr(pl.col(n)).alias(n) for n in names))
    selects = []
    for gate in sc.gates:
        selects.append(f"({gate_sql(gate)}) AS {ident(gate_column(gate))}")
    con = duckdb.connect()
    try:
        con.execute("SET enable_external_access = false")
        con.register("gate_input", ArrowStream(rounded))
        outcome = frame_of(con.sql(f"SELECT {', '.join(selects)} FROM gate_input"))
    except duckdb.Error as exc:
        # the inputs are numbers the tool computed: a gate that fails on them is the ruleset's fault
        raise _gate_failure(sc, exc, con) from None
    finally:
        con.close()
    passed = outcome.select(
        pl.col(gate_column(g)).fill_null(g.missing == "pass").alias(g.id) for g in sc.gates
    )
    return outcome, passed


#: What to do about a value of the ruleset that failed to convert while scoring (gates, metrics).
CONVERSION_HINT = (
    "write each value in the type it meets (a number without quotes, a date as 'YYYY-MM-DD'), "
    "then run `chuanliu rules check`"
)


def _gate_failure(sc: Scorecard, error: Exception, con: duckdb.DuckDBPyConnection) -> RulesetError:
    """The gates failed: each gate that fails alone, located at the value the engine quotes (a literal
    `rules check` cannot see, as in `ln('8 days')`), else at its whole `when`; never an internal error."""
    import duckdb

    from chuanliu_cli.rules.expressions import expression_error, literal_error

    errors = []
    for gate in sc.gates:
        try:
            frame_of(con.sql(f"SELECT ({gate_sql(gate)}) FROM gate_input"))
            continue
        except duckdb.Error as exc:
            failure = first_line(exc)
        message = f"gate '{gate.id}' of scorecard {sc.name} failed while scoring: {failure}"
        errors.append(literal_error(gate.when, failure, message) or expression_error(gate.when, message))
    if not errors:
        errors = [f"{sc.loc}: the gates of scorecard {sc.name} failed while scoring: {first_line(error)}"]
    return RulesetError(errors, hint=CONVERSION_HINT)


def failed_lists(failed: Any, ids: list[str]) -> pl.Series:
    """Each row's failed gate ids, in gate order, from an (entities × gates) boolean matrix. Rows fail in
    few distinct ways: each row's pattern is packed into 64-bit words, the distinct patterns get their
    lists, and every row takes its pattern's by a join (polars' concat_list of the gate columns took half a
    second at 500k rows; this is columnar throughout and imports no pyarrow)."""
    import numpy as np
    import polars as pl

    n, g = failed.shape
    packed = np.packbits(np.asarray(failed, dtype=np.bool_), axis=1, bitorder="little")
    width = -(-packed.shape[1] // 8) * 8  # whole 64-bit words
    packed = np.pad(packed, ((0, 0), (0, width - packed.shape[1])))
    words = np.ascontiguousarray(packed).view(np.uint64)
    codes = pl.DataFrame({f"w{j}": words[:, j] for j in range(words.shape[1])})
    patterns = codes.unique(maintain_order=True)
    bits = np.unpackbits(
        np.ascontiguousarray(patterns.to_numpy().astype(np.uint64)).view(np.uint8), axis=1, bitorder="little"
    )[:, :g].astype(bool)
    lists = [[ids[j] for j in np.flatnonzero(row)] for row in bits]
    patterns = patterns.with_columns(pl.Series("failed_gates", lists, dtype=pl.List(pl.Utf8)))
    joined = codes.join(patterns, on=codes.columns, how="left", maintain_order="left")
    assert joined.height == n
    return joined["failed_gates"]


def gate_sql(gate: Gate) -> str:
    """The gate's `when` as DuckDB SQL over the rounded metric and score columns (through the cache,
    rules/cache.py: the text depends only on the expression and this build)."""
    from chuanliu_cli.rules import cache

    def compute() -> str:
        from chuanliu_cli.rules.expressions import compile_result_expression

        return compile_result_expression(gate.when).sql(dialect="duckdb")

    return cache.remembered("gate", gate.when.text, compute)


def comparisons(gate: Gate) -> list[tuple[str, str, float]] | None:
    """The gate as `metric op constant` conjuncts, or None when it has another shape."""
    from sqlglot import exp

    from chuanliu_cli.rules.expressions import parse_expression

    tree = parse_expression(gate.when)
    while isinstance(tree, exp.Paren):
        tree = tree.this
    conjuncts = list(tree.flatten()) if isinstance(tree, exp.And) else [tree]
    out = []
    for c in conjuncts:
        while isinstance(c, exp.Paren):
            c = c.this
        op = _OPS.get(type(c).__name__.upper())
        if op is None:
            return None
        left, right = c.this, c.expression
        if isinstance(left, exp.Column) and (number := _number(right)) is not None:
            out.append((str(left.name), op, number))
        elif isinstance(right, exp.Column) and (number := _number(left)) is not None:
            out.append((str(right.name), _FLIPPED[op], number))
        else:
            return None
    return out


def _number(node: Any) -> float | None:
    from sqlglot import exp

    if isinstance(node, exp.Neg) and (inner := _number(node.this)) is not None:
        return -inner
    if isinstance(node, exp.Literal) and not node.is_string:
        return float(node.this)
    return None


def holds(value: float, op: str, constant: float) -> bool:
    """`value op constant`, both rounded to 6 decimals (half away from zero)."""
    v, c = round_micro(value), round_micro(constant)
    return {">=": v >= c, ">": v > c, "<=": v <= c, "<": v < c, "=": v == c, "<>": v != c}[op]
