"""The safe SQL subset of rules expressions (SPEC §4): parse with sqlglot, whitelist, resolve names.

An expression goes through three gates before any query sees it:
1. a textual scan that rejects `;` and comments outside string literals (statement smuggling);
2. sqlglot parsing (dialect duckdb) and a *whitelist* of node types and functions (`sqlsubset.py`):
   anything not listed is rejected, so new sqlglot node types are refused by default;
3. name resolution against the context the expression lives in (`where`, `value`, `formula`, `when`).

Every problem is reported as `FILE:LINE:COL: message` followed by the expression line and a caret
excerpt under the offending part.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Literal

from sqlglot import exp

from chuanliu_cli.errors import RulesetError
from chuanliu_cli.rules.model import Expr
from chuanliu_cli.rules.sqlsubset import (
    AGGREGATE_CLASSES,
    FUNCTIONS,
    MAX_EXPRESSION_LENGTH,
    Problem,
    node_span,
    parse_text,
    suggest,
    written_name,
)

__all__ = [
    "FUNCTIONS",
    "MAX_EXPRESSION_LENGTH",
    "Checked",
    "Locator",
    "Names",
    "Problem",
    "bare_names",
    "check_expression",
    "column",
    "compile_result_expression",
    "empty_value",
    "format_problem",
    "guard_divisions",
    "ident",
    "parse_expression",
    "suggest",
    "syntax_errors",
]

ExprKind = Literal["where", "value", "formula", "when"]

#: Maps an offset in an expression's text to its (line, col) in the ruleset file, both 1-based.
Locator = Callable[[int], tuple[int, int]]


@dataclass(frozen=True)
class Names:
    """What names an expression may use.

    `kind` decides the aggregate rules; `names` are plain names (columns of the source, or metric/score
    names); `filters` are named row conditions usable as booleans; `scorecards` maps each earlier
    scorecard to None when `<sc>.eligible|tier|total` may be used, or to the reason it may not.
    `elsewhere` explains names that exist but not here (a score in a formula, say).
    """

    kind: ExprKind
    names: frozenset[str]
    noun: str
    scope: str = ""  # e.g. " of orders", after the name in "unknown column 'x' of orders"
    filters: frozenset[str] = frozenset()
    scorecards: Mapping[str, str | None] = field(default_factory=dict)
    elsewhere: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Checked:
    """The result of checking one expression: error lines, and the names it uses."""

    errors: list[str]
    names: frozenset[str] = frozenset()
    filters: frozenset[str] = frozenset()
    scorecard_fields: frozenset[tuple[str, str]] = frozenset()


#: The fields of an earlier scorecard's results usable in `where`.
SCORECARD_FIELDS = ("eligible", "tier", "total")


# --------------------------------------------------------------------------------------------------
# Quoting: the one place identifiers are made.


def ident(name: str) -> exp.Identifier:
    """A quoted identifier: every table, column and alias name in compiled SQL goes through here."""
    return exp.Identifier(this=name, quoted=True)


def column(name: str, table: str | None = None) -> exp.Column:
    """A quoted column reference, optionally qualified by a quoted table name."""
    return exp.Column(this=ident(name), table=ident(table) if table is not None else None)


# --------------------------------------------------------------------------------------------------
# Locating and formatting problems.


def default_locator(expr: Expr) -> Locator:
    """Locate offsets assuming the expression text sits in the file as written from `expr.loc`."""

    def locate(offset: int) -> tuple[int, int]:
        before = expr.text[:offset]
        newlines = before.count("\n")
        if newlines == 0:
            return expr.loc.line, expr.loc.col + offset
        return expr.loc.line + newlines, expr.loc.col + len(before) - before.rfind("\n") - 1

    return locate


def _width(text: str) -> int:
    """Terminal width of `text`: CJK characters take two cells, so carets stay aligned."""
    return sum(2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1 for ch in text)


def format_problem(expr: Expr, problem: Problem, locate: Locator | None = None) -> str:
    """`FILE:LINE:COL: message`, then the expression line and carets under the offending part."""
    locate = locate or default_locator(expr)
    text = expr.text
    start = max(0, min(problem.start, len(text)))
    end = max(start, min(problem.end, len(text) - 1))
    line, col = locate(start)
    line_start = text.rfind("\n", 0, start) + 1
    line_end = text.find("\n", start)
    line_end = len(text) if line_end < 0 else line_end
    shown = text[line_start:line_end].replace("\t", " ")
    pad = " " * _width(shown[: start - line_start])
    carets = "^" * max(1, _width(text[start : min(end, line_end - 1) + 1]))
    return f"{expr.loc.file}:{line}:{col}: {problem.message}\n    {shown}\n    {pad}{carets}"


def parse_expression(expr: Expr) -> exp.Expr:
    """Parse and whitelist `expr`; a fresh tree the caller may modify. RulesetError if not in the subset."""
    tree, problems = parse_text(expr.text)
    if problems or tree is None:
        raise RulesetError([format_problem(expr, p) for p in problems])
    return tree.copy()


def syntax_errors(expr: Expr, locate: Locator | None = None) -> list[str]:
    """Every located problem of `expr` that does not depend on names (text scan, parse, whitelist)."""
    _tree, problems = parse_text(expr.text)
    return [format_problem(expr, p, locate) for p in problems]


# --------------------------------------------------------------------------------------------------
# Gate 3: names and aggregates.


def _inside_aggregate(node: exp.Expr) -> bool:
    parent = node.parent
    while parent is not None:
        if isinstance(parent, AGGREGATE_CLASSES):
            return True
        parent = parent.parent
    return False


def check_expression(expr: Expr, names: Names, locate: Locator | None = None) -> Checked:
    """Check `expr` fully (syntax, whitelist, names, aggregates) in the context `names`."""
    tree, syntax = parse_text(expr.text)
    if syntax or tree is None:
        return Checked([format_problem(expr, p, locate) for p in syntax])
    text = expr.text
    problems: list[Problem] = []
    used: set[str] = set()
    filters: set[str] = set()
    fields: set[tuple[str, str]] = set()
    row_level = names.kind in ("where", "value")
    aggregates = [n for n in tree.walk() if isinstance(n, AGGREGATE_CLASSES)]
    if names.kind == "value":
        if not aggregates:
            # Without any aggregate, "must be inside an aggregate" for each column would only add noise.
            message = "value must aggregate rows, e.g. count(*) or sum(net_amount)"
            return Checked([format_problem(expr, Problem(0, len(text) - 1, message), locate)])
        for agg in aggregates:
            if _inside_aggregate(agg):
                start, end = node_span(agg, text)
                problems.append(Problem(start, end, "aggregates cannot be nested"))
    else:
        why = {
            "where": "`where` is evaluated per row; aggregate in `value`",
            "formula": "a formula combines metric values; aggregate in a metric's `value`",
            "when": "a gate compares metric and score values",
        }[names.kind]
        for agg in aggregates:
            start, end = node_span(agg, text)
            problems.append(
                Problem(start, end, f"aggregate {written_name(agg, text)}() not allowed here: {why}")
            )
    for col in tree.find_all(exp.Column):
        start, end = node_span(col, text)
        name = str(col.name)
        table = col.table
        if table:
            problem = _scorecard_field(names, str(table), name, start, end)
            if problem is not None:
                problems.append(problem)
            else:
                fields.add((str(table), name))
        elif name in names.names:
            used.add(name)
        elif row_level and name in names.filters:
            filters.add(name)
        else:
            candidates = set(names.names) | (set(names.filters) if row_level else set())
            hint = names.elsewhere.get(name) or suggest(name, candidates)
            problems.append(Problem(start, end, f"unknown {names.noun} '{name}'{names.scope}{hint}"))
            continue
        if names.kind == "value" and not _inside_aggregate(col):
            problems.append(
                Problem(start, end, f"'{col.sql()}' must be inside an aggregate (count, sum, ...)")
            )
    problems.sort(key=lambda p: (p.start, p.end))
    return Checked(
        [format_problem(expr, p, locate) for p in problems],
        frozenset(used),
        frozenset(filters),
        frozenset(fields),
    )


def _scorecard_field(names: Names, table: str, name: str, start: int, end: int) -> Problem | None:
    """Check a qualified name `<scorecard>.<field>`; None when it may be used here."""
    if names.kind not in ("where", "value"):
        return Problem(start, end, f"'{table}.{name}' not allowed: qualified names only work in `where`")
    if table not in names.scorecards:
        hint = suggest(table, names.scorecards) or (
            "; only scorecards evaluated before this one can be used"
            if names.scorecards
            else "; no scorecard is evaluated before this one"
        )
        return Problem(start, end, f"unknown scorecard '{table}'{hint}")
    reason = names.scorecards[table]
    if reason is not None:
        return Problem(start, end, reason)
    if name not in SCORECARD_FIELDS:
        hint = suggest(name, SCORECARD_FIELDS) or f"; use one of {', '.join(SCORECARD_FIELDS)}"
        return Problem(start, end, f"unknown scorecard field '{table}.{name}'{hint}")
    return None


# --------------------------------------------------------------------------------------------------
# Helpers for compilers.


def empty_value(value: exp.Expr) -> exp.Expr:
    """What an aggregate `value` is for an entity with no matching rows (SPEC §4).

    Every count and sum over no rows is 0 and every other aggregate NULL; the rest of the expression
    is then evaluated on those: `sum(x)` → 0, `sum(d) / 60` → 0, `avg(x)` → NULL, `sum(a) / count(*)`
    → NULL (0 / 0). Folded to a literal when the arithmetic is simple, else left as a constant tree.
    """

    def substitute(node: exp.Expr) -> exp.Expr:
        if isinstance(node, exp.Count | exp.Sum):
            return exp.Literal.number(0)
        if isinstance(node, AGGREGATE_CLASSES):
            return exp.Null()
        return node

    tree = guard_divisions(value.copy().transform(substitute))
    try:
        folded = _fold(tree)
    except _CannotFold:
        return tree
    if folded is None:
        return exp.Null()
    return exp.Literal.number(int(folded) if folded == int(folded) else folded)


class _CannotFold(Exception):
    """The constant tree uses something `_fold` does not evaluate; keep it as SQL."""


def _fold(node: exp.Expr) -> float | None:
    """Evaluate a constant numeric tree with SQL NULL semantics (None is NULL)."""
    if isinstance(node, exp.Null):
        return None
    if isinstance(node, exp.Literal) and not node.is_string:
        return float(node.this)
    if isinstance(node, exp.Paren):
        return _fold(node.this)
    if isinstance(node, exp.Neg):
        inner = _fold(node.this)
        return None if inner is None else -inner
    if isinstance(node, exp.Add | exp.Sub | exp.Mul | exp.Div):
        a, b = _fold(node.this), _fold(node.expression)
        if a is None or b is None:
            return None
        if isinstance(node, exp.Div):
            return None if b == 0 else a / b
        return a + b if isinstance(node, exp.Add) else a - b if isinstance(node, exp.Sub) else a * b
    if isinstance(node, exp.Nullif):
        a, b = _fold(node.this), _fold(node.expression)
        return None if a is not None and a == b else a
    if isinstance(node, exp.Coalesce | exp.Greatest | exp.Least):
        values = [_fold(node.this), *(_fold(e) for e in node.expressions)]
        present = [v for v in values if v is not None]
        if isinstance(node, exp.Coalesce):
            return present[0] if present else None
        # GREATEST/LEAST skip NULLs in DuckDB and Spark
        return (max if isinstance(node, exp.Greatest) else min)(present) if present else None
    raise _CannotFold


def guard_divisions(tree: exp.Expr) -> exp.Expr:
    """Wrap every divisor in NULLIF(x, 0) so that division by zero yields NULL (SPEC §4), in place."""
    for node in list(tree.find_all(exp.Div, exp.Mod)):
        divisor = node.expression
        if _nonzero_constant(divisor) or (isinstance(divisor, exp.Nullif) and _is_zero(divisor.expression)):
            continue
        node.set("expression", exp.Nullif(this=divisor.copy(), expression=exp.Literal.number(0)))
    return tree


def _is_zero(node: exp.Expr | None) -> bool:
    return isinstance(node, exp.Literal) and not node.is_string and float(node.this) == 0


def _nonzero_constant(node: exp.Expr) -> bool:
    while isinstance(node, exp.Paren | exp.Neg):
        node = node.this
    return isinstance(node, exp.Literal) and not node.is_string and float(node.this) != 0


def bare_names(expr: Expr) -> frozenset[str]:
    """The unqualified names an expression reads (metric/score names in a formula or gate).

    Empty for an expression that does not parse: its errors are reported by the checks.
    """
    tree, _problems = parse_text(expr.text)
    if tree is None:
        return frozenset()
    return frozenset(str(c.name) for c in tree.find_all(exp.Column) if not c.table)


def compile_result_expression(expr: Expr, table: str | None = None) -> exp.Expr:
    """Compile a checked formula or gate `when` into a tree over a results table.

    The results table's columns are the metric and score names; each name becomes a quoted column
    (qualified by `table` when given) and every division is guarded against zero.
    """
    tree = parse_expression(expr)

    def quote(node: exp.Expr) -> exp.Expr:
        if isinstance(node, exp.Column) and not node.table:
            return column(str(node.name), table)
        return node

    return guard_divisions(tree.transform(quote))
