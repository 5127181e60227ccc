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

import re
import unicodedata
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
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
    "DIALECTS",
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
    "dialect_problems",
    "empty_value",
    "expression_error",
    "for_dialect",
    "format_problem",
    "guard_divisions",
    "ident",
    "literal_error",
    "parse_expression",
    "suggest",
    "syntax_errors",
    "value_kind",
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
    `elsewhere` explains names that exist but not here (a score in a formula, say). `kinds` says what
    each plain name holds (a column's type, a metric's number, a filter's true/false), so that a
    literal of another type is refused where it is written rather than failing when the query runs.
    """

    kind: ExprKind
    names: frozenset[str]
    noun: str
    scope: str = ""  # e.g. " of orders", after the name in "unknown column 'x' of orders"
    filters: frozenset[str] = frozenset()
    scorecards: Mapping[str, str | None] = field(default_factory=dict)
    elsewhere: Mapping[str, str] = field(default_factory=dict)
    # enumerated columns -> their canonical values: a quoted literal compared with one must be one of them
    vocabulary: Mapping[str, frozenset[str]] = field(default_factory=dict)
    # plain names -> what they hold; a name not listed is "unknown" and its literals are not checked
    kinds: Mapping[str, ValueKind] = field(default_factory=dict)


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
    if names.vocabulary:
        problems.extend(_vocabulary_problems(tree, text, names.vocabulary))
    problems.extend(_literal_type_problems(tree, text, _kind_of(names)))
    problems.sort(key=lambda p: (p.start, p.end))
    return Checked(
        [format_problem(expr, p, locate) for p in problems],
        frozenset(used),
        frozenset(filters),
        frozenset(fields),
    )


def _compared_literals(node: exp.Expr) -> tuple[exp.Column, list[exp.Literal]] | None:
    """(column, quoted literals) of `col = 'x'`, `'x' <> col`, `col in ('x', 'y')` (`not in` included)."""
    if isinstance(node, exp.EQ | exp.NEQ):
        left, right = node.this, node.expression
        if isinstance(right, exp.Column) and isinstance(left, exp.Literal):
            left, right = right, left
        if isinstance(left, exp.Column) and isinstance(right, exp.Literal) and right.is_string:
            return left, [right]
        return None
    if isinstance(node, exp.In) and isinstance(node.this, exp.Column):
        literals = [e for e in node.expressions if isinstance(e, exp.Literal) and e.is_string]
        return (node.this, literals) if literals else None
    return None


def _vocabulary_problems(
    tree: exp.Expr, text: str, vocabulary: Mapping[str, frozenset[str]]
) -> list[Problem]:
    """A quoted value compared with an enumerated column that the column never holds: `sale_mode =
    'distrbution'` matches no row, so the metric is silently 0; it is an error, with the closest value."""
    problems = []
    for node in tree.walk():
        found = _compared_literals(node)
        if found is None:
            continue
        col, literals = found
        allowed = vocabulary.get(str(col.name)) if not col.table else None
        if allowed is None:
            continue
        for lit in literals:
            value = str(lit.this)
            if value in allowed:
                continue
            start, end = node_span(lit, text)
            hint = suggest(value, allowed) or suggest(value.lower(), allowed)
            values = ", ".join(sorted(allowed))
            message = f"'{value}' is not a value of {col.name} (its values: {values}){hint}"
            problems.append(Problem(start, end, message))
    return problems


# A literal of another type than what it meets. DuckDB converts a quoted literal to the type of the other
# operand only when the query runs ('8 days' to DOUBLE then fails, whatever the data), and compares a text
# column with a number by converting every row's text; both are refused here, where they are written.

#: How the messages name what a value of each kind holds.
_KIND_NOUNS: dict[str, str] = {
    "integer": "a number",
    "decimal": "a number",
    "double": "a number",
    "boolean": "true/false",
    "text": "text",
    "time": "a time",
}
_NUMBER_KINDS = frozenset({"integer", "decimal", "double"})
#: What a quoted literal must not meet: numbers and true/false are written without quotes.
_UNQUOTED_KINDS = _NUMBER_KINDS | {"boolean"}
#: The dates and times a time may meet: an ISO date, optionally with a time of day. No zone: times are
#: stored as naive local times. Every engine reads these alike (DuckDB reads more, Spark less).
_TIME_LITERAL = re.compile(
    r"(\d{4})-(\d{1,2})-(\d{1,2})(?:[ T](\d{1,2}):(\d{2})(?::(\d{2})(?:\.(\d{1,6}))?)?)?"
)
_NUMBER_TEXT = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")
_SHOWN = 40  # longest operand text quoted in a message

#: How operands meet: compared (their types must agree), computed with, or mixed into one value.
Meeting = Literal["compare", "compute", "mix"]


def _kind_of(names: Names) -> KindOf:
    """The kinds of the names of `names`, for value_kind."""

    def kind(col: exp.Column) -> ValueKind:
        if col.table:
            return SCORECARD_FIELD_KINDS.get(str(col.name), "unknown")
        return names.kinds.get(str(col.name), "unknown")

    return kind


def _meetings(node: exp.Expr) -> list[tuple[Meeting, list[exp.Expr]]]:
    """The groups of operands of `node` that DuckDB brings to one type, and how they meet."""
    if isinstance(node, exp.EQ | exp.NEQ | exp.GT | exp.GTE | exp.LT | exp.LTE | exp.Nullif):
        return [("compare", [node.this, node.expression])]
    # each bound and each listed value is compared with the value tested, not with one another
    if isinstance(node, exp.Between):
        return [("compare", [node.this, node.args[bound]]) for bound in ("low", "high")]
    if isinstance(node, exp.In):
        return [("compare", [node.this, value]) for value in node.expressions]
    if isinstance(node, exp.Add | exp.Sub | exp.Mul | exp.Div | exp.Mod):
        return [("compute", [node.this, node.expression])]
    if isinstance(node, exp.Coalesce | exp.Greatest | exp.Least):
        return [("mix", [node.this, *node.expressions])]
    if isinstance(node, exp.Case):
        ifs = node.args.get("ifs") or []
        default = node.args.get("default")
        groups: list[tuple[Meeting, list[exp.Expr]]] = [
            ("mix", [i.args["true"] for i in ifs] + ([default] if default is not None else []))
        ]
        if node.this is not None:  # case x when 'a' then ...
            groups.extend(("compare", [node.this, i.this]) for i in ifs)
        return groups
    return []


def _quoted(node: exp.Expr) -> exp.Literal | None:
    """The quoted literal `node` is (in parentheses or not), else None."""
    while isinstance(node, exp.Paren):
        node = node.this
    return node if isinstance(node, exp.Literal) and node.is_string else None


def _written_number(node: exp.Expr) -> bool:
    """Whether `node` is a number as written (possibly negated or in parentheses)."""
    while isinstance(node, exp.Paren | exp.Neg):
        node = node.this
    return isinstance(node, exp.Literal) and not node.is_string


def _span(node: exp.Expr, text: str) -> tuple[int, int]:
    """node_span, with the sign of a negated value (sqlglot places only the number)."""
    start, end = node_span(node, text)
    if isinstance(node, exp.Neg):
        minus = text.rfind("-", 0, start)
        if minus >= 0 and not text[minus + 1 : start].strip():
            start = minus
    return start, end


def _shown(node: exp.Expr, text: str) -> str:
    """`node` as the user wrote it, on one line and shortened, for a message."""
    start, end = _span(node, text)
    written = " ".join(text[start : end + 1].split())
    return written if len(written) <= _SHOWN else written[: _SHOWN - 1] + "…"


def _time_problem(value: str) -> str | None:
    """None when `value` is a date or time literal; else why not, as ` (reason)` or empty."""
    m = _TIME_LITERAL.fullmatch(value)
    if m is None:
        return ""
    year, month, day, hour, minute, second = (int(g) if g else 0 for g in m.groups()[:6])
    micro = int((m.group(7) or "").ljust(6, "0"))
    try:
        datetime(year, month, day, hour, minute, second, micro)
    except ValueError as e:
        return f" ({e})"
    return None


def _quoted_problem(literal: exp.Literal, other: exp.Expr, kind: ValueKind, text: str) -> str | None:
    """Why the quoted `literal` cannot meet `other`, a value of `kind`; None when it can."""
    value = str(literal.this)
    shown, name = _shown(literal, text), _shown(other, text)
    if kind == "time":
        why = _time_problem(value)
        if why is None:
            return None
        forms = "'YYYY-MM-DD' or 'YYYY-MM-DD HH:MM:SS'"
        return f"{shown} is not a date or time{why}, but {name} is a time: write {forms}"
    if kind == "boolean":
        bare = value.strip().lower()
        spelled = bare if bare in ("true", "false") else "true or false"
        return f"{shown} is text, but {name} is true/false: write {spelled} without quotes"
    if _NUMBER_TEXT.fullmatch(value.strip()):
        return f"{shown} is text, not a number ({name} is a number): write {value.strip()} without quotes"
    return f"{shown} is text, but {name} is a number: write a number, without quotes"


def _meeting_problems(
    node: exp.Expr, meeting: Meeting, operands: list[exp.Expr], text: str, kind_of: KindOf
) -> list[Problem]:
    """The literals among `operands` that cannot meet the others, and text compared with a number."""
    kinds = [value_kind(o, kind_of) for o in operands]

    def other(i: int, wanted: frozenset[str]) -> tuple[exp.Expr, ValueKind] | None:
        """The first operand but the i-th that holds a `wanted` kind and is not a quoted literal."""
        found = (
            (o, k) for j, (o, k) in enumerate(zip(operands, kinds, strict=True)) if j != i and k in wanted
        )
        return next(((o, k) for o, k in found if _quoted(o) is None), None)

    problems = []
    for i, operand in enumerate(operands):
        literal = _quoted(operand)
        if literal is not None:
            # a quoted date may meet a time when compared or mixed (time arithmetic is left to the engine)
            wanted = _UNQUOTED_KINDS if meeting == "compute" else _UNQUOTED_KINDS | {"time"}
            met = other(i, wanted)
            message = _quoted_problem(literal, *met, text) if met is not None else None
            if message is not None:
                problems.append(Problem(*node_span(literal, text), message))
        elif _written_number(operand) and meeting != "compute":
            met = other(i, frozenset({"text"}))
            if met is not None:
                shown = _shown(operand, text)
                message = f"{shown} is a number, but {_shown(met[0], text)} is text: quote it ('{shown}')"
                problems.append(Problem(*_span(operand, text), message))
    if meeting == "compare" and not problems:
        unwritten = [
            (o, k)
            for o, k in zip(operands, kinds, strict=True)
            if _quoted(o) is None and not _written_number(o)
        ]
        texts = [o for o, k in unwritten if k == "text"]
        others = [(o, k) for o, k in unwritten if k in _UNQUOTED_KINDS]
        if texts and others:
            (o, k), t = others[0], texts[0]
            message = (
                f"{_shown(t, text)} is text and {_shown(o, text)} is {_KIND_NOUNS[k]}: they cannot be "
                "compared; cast one to the other's type"
            )
            problems.append(Problem(*node_span(node, text), message))
    return problems


def _cast_problem(node: exp.Cast, text: str) -> Problem | None:
    """A quoted literal cast to a number or a time that it does not hold: `cast('abc' as int)`."""
    literal = _quoted(node.this)
    to = node.args.get("to")
    if literal is None or not isinstance(to, exp.DataType):
        return None
    value, shown, kind = str(literal.this), _shown(literal, text), _type_kind(to)
    if kind in _NUMBER_KINDS and not _NUMBER_TEXT.fullmatch(value.strip()):
        return Problem(*node_span(literal, text), f"{shown} is not a number: it cannot be cast to {to.sql()}")
    why = _time_problem(value) if kind == "time" else None
    if why is not None:
        forms = "'YYYY-MM-DD' or 'YYYY-MM-DD HH:MM:SS'"
        return Problem(*node_span(literal, text), f"{shown} is not a date or time{why}: write {forms}")
    return None


def _literal_type_problems(tree: exp.Expr, text: str, kind_of: KindOf) -> list[Problem]:
    """Every place in `tree` where a literal meets a value of another type (see _meeting_problems), or is
    cast to a type it does not hold."""
    problems: list[Problem] = []
    for node in tree.walk():
        for meeting, operands in _meetings(node):
            problems.extend(_meeting_problems(node, meeting, operands, text, kind_of))
        if isinstance(node, exp.Cast) and (problem := _cast_problem(node, text)) is not None:
            problems.append(problem)
    return list(dict.fromkeys(problems))


#: A value an engine failed to convert, as its messages quote it (`string 'one'`, `"2023-13-01"`).
_ENGINE_QUOTED = re.compile(r"'([^']*)'|\"([^\"]*)\"")


def literal_error(expr: Expr, failure: str, message: str) -> str | None:
    """`message` located at the quoted literal of `expr` whose value the engine's `failure` quotes (a
    conversion that failed while scoring), with its caret excerpt; None when `expr` quotes no such value."""
    found = _ENGINE_QUOTED.search(failure)
    tree, _problems = parse_text(expr.text)
    if found is None or tree is None:
        return None
    value = found.group(1) if found.group(1) is not None else found.group(2)
    for literal in tree.find_all(exp.Literal):
        if literal.is_string and str(literal.this) == value:
            return format_problem(expr, Problem(*node_span(literal, expr.text), message))
    return None


def expression_error(expr: Expr, message: str) -> str:
    """`message` located at `expr`, with the whole expression under the caret."""
    return format_problem(expr, Problem(0, max(0, len(expr.text) - 1), message))


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


# --------------------------------------------------------------------------------------------------
# Dialects: one tree, the same values on DuckDB and on Spark (SPEC §8).
#
# The compiled tree is written for DuckDB's semantics. Rendering it for Spark changes the spelling
# (sqlglot does that) and, where the two engines compute a different value from the same SQL, the
# tree itself: `for_dialect` rewrites those nodes so that Spark computes what DuckDB computes, and
# `dialect_problems` rejects what cannot be made identical. Both need the kind of each value, which
# `value_kind` infers from the canonical column types.

Dialect = Literal["duckdb", "spark"]
DIALECTS: tuple[Dialect, ...] = ("duckdb", "spark")

ValueKind = Literal["integer", "decimal", "double", "boolean", "text", "time", "null", "unknown"]

#: What a column of each schema type holds (schema.ColumnType -> ValueKind).
COLUMN_KINDS: dict[str, ValueKind] = {
    "text": "text",
    "enum": "text",
    "timestamp": "time",
    "amount": "decimal",
    "integer": "integer",
    "number": "double",
    "score": "integer",
    "boolean": "boolean",
}

#: The kind of each field of an earlier scorecard's results (`<scorecard>.eligible|tier|total`).
SCORECARD_FIELD_KINDS: dict[str, ValueKind] = {"eligible": "boolean", "tier": "text", "total": "double"}

KindOf = Callable[[exp.Column], ValueKind]

_INTEGER_TYPES = frozenset(
    {exp.DataType.Type.TINYINT, exp.DataType.Type.SMALLINT, exp.DataType.Type.INT, exp.DataType.Type.BIGINT}
)
_TEXT_TYPES = frozenset({exp.DataType.Type.VARCHAR, exp.DataType.Type.TEXT})
_TIME_TYPES = frozenset({exp.DataType.Type.DATE, exp.DataType.Type.TIMESTAMP, exp.DataType.Type.TIMESTAMPNTZ})
_BOOLEAN_NODES = (
    exp.EQ,
    exp.NEQ,
    exp.GT,
    exp.GTE,
    exp.LT,
    exp.LTE,
    exp.And,
    exp.Or,
    exp.Not,
    exp.In,
    exp.Is,
    exp.Like,
    exp.ILike,
    exp.Between,
    exp.Boolean,
)


def _type_kind(to: exp.DataType) -> ValueKind:
    if to.this in _INTEGER_TYPES:
        return "integer"
    if to.this in (exp.DataType.Type.FLOAT, exp.DataType.Type.DOUBLE):
        return "double"
    if to.this == exp.DataType.Type.DECIMAL:
        return "decimal"
    if to.this in _TEXT_TYPES:
        return "text"
    if to.this in _TIME_TYPES:
        return "time"
    if to.this == exp.DataType.Type.BOOLEAN:
        return "boolean"
    return "unknown"


def _combine(kinds: list[ValueKind]) -> ValueKind:
    """The kind of a value that is one of `kinds` (CASE branches, COALESCE arguments, a + b)."""
    present = {k for k in kinds if k != "null"}
    if not present:
        return "null"
    if len(present) == 1:
        return present.pop()
    if present <= {"integer", "decimal", "double"}:
        return "double" if "double" in present else "decimal"
    return "unknown"


def _unit(node: exp.Expr | None) -> str:
    return str(node.name).lower() if isinstance(node, exp.Expr) else ""


def _date_part(node: exp.Expr) -> tuple[str, exp.Expr] | None:
    """(unit, value) of `extract(unit from value)` or `date_part('unit', value)`, else None."""
    if isinstance(node, exp.Extract):
        return _unit(node.this), node.expression
    if (
        isinstance(node, exp.Anonymous)
        and str(node.name).lower() == "date_part"
        and len(node.expressions) == 2
    ):
        return _unit(node.expressions[0]), node.expressions[1]
    return None


def value_kind(node: exp.Expr, kind_of: KindOf) -> ValueKind:
    """What `node` evaluates to, as far as the engines' differences go (DuckDB's typing rules)."""
    if isinstance(node, exp.Paren | exp.Neg | exp.Abs | exp.Floor | exp.Ceil | exp.Round | exp.Filter):
        return value_kind(node.this, kind_of)
    if isinstance(node, exp.Column):
        return kind_of(node)
    if isinstance(node, exp.Null):
        return "null"
    if isinstance(node, exp.Literal):
        if node.is_string:
            return "text"
        text = str(node.this).lower()
        return "double" if "e" in text else "decimal" if "." in text else "integer"
    if isinstance(node, _BOOLEAN_NODES):
        return "boolean"
    if isinstance(node, exp.Cast):
        to = node.args.get("to")
        return _type_kind(to) if isinstance(to, exp.DataType) else "unknown"
    if isinstance(node, exp.Add | exp.Sub | exp.Mul | exp.Mod):
        return _combine([value_kind(node.this, kind_of), value_kind(node.expression, kind_of)])
    if isinstance(node, exp.Div | exp.Ln | exp.Log | exp.Sqrt | exp.Pow | exp.Avg | exp.Stddev):
        return "double"  # DuckDB divides (decimals too) and averages in DOUBLE
    if isinstance(node, exp.Case):
        branches = [value_kind(i.args["true"], kind_of) for i in node.args.get("ifs") or []]
        default = node.args.get("default")
        return _combine([*branches, value_kind(default, kind_of) if default is not None else "null"])
    if isinstance(node, exp.Coalesce | exp.Greatest | exp.Least):
        return _combine([value_kind(e, kind_of) for e in (node.this, *node.expressions)])
    if isinstance(node, exp.Nullif):
        return value_kind(node.this, kind_of)
    if isinstance(node, exp.Count | exp.Length):
        return "integer"
    if isinstance(node, exp.Sum):
        inner = value_kind(node.this, kind_of)
        return "integer" if inner == "boolean" else inner
    if isinstance(node, exp.Median):
        return "decimal" if value_kind(node.this, kind_of) == "decimal" else "double"
    if isinstance(node, exp.Min | exp.Max):
        return value_kind(node.this, kind_of)
    if isinstance(node, exp.Lower | exp.Upper):
        return "text"
    if isinstance(node, exp.TimestampTrunc | exp.DateTrunc):
        return "time"
    if _date_part(node) is not None:
        return "integer"
    if isinstance(node, exp.Anonymous) and str(node.name).upper() == "BROUND":
        return value_kind(node.expressions[0], kind_of)
    return "unknown"


def _spark_problem(node: exp.Expr, kind_of: KindOf) -> str | None:
    """Why Spark cannot compute what DuckDB computes for `node`, or None."""
    if isinstance(node, exp.Median) and value_kind(node.this, kind_of) in ("decimal", "unknown"):
        return (
            "median of a decimal differs on Spark (DuckDB keeps the decimal type and truncates the "
            "midpoint); write median(cast(x as double))"
        )
    if (
        isinstance(node, exp.Cast)
        and _type_kind(node.args["to"]) == "text"
        and value_kind(node.this, kind_of) in ("double", "unknown")
    ):
        return "the text of a floating-point number differs on Spark (1e+20 vs 1.0E20); compare numbers"
    decimals = node.args.get("decimals") if isinstance(node, exp.Round) else None
    n = _integer_literal(decimals) if decimals is not None else 0
    if isinstance(node, exp.Round) and value_kind(node.this, kind_of) in ("double", "unknown"):
        if n is None:
            return "round(x, n) needs a constant n on Spark"
        if abs(n) > MAX_ROUND_DECIMALS:
            return f"round(x, n) of a floating-point x takes |n| ≤ {MAX_ROUND_DECIMALS} on Spark"
    if isinstance(node, exp.Like | exp.ILike):
        pattern = node.expression
        if not (isinstance(pattern, exp.Literal) and pattern.is_string):
            return "LIKE needs a constant pattern on Spark (the engines escape differently)"
        if "\\" in str(pattern.this):
            return "a backslash in a LIKE pattern is an escape on Spark but not on DuckDB"
    return None


def dialect_problems(expr: Expr, dialect: str, kind_of: KindOf, locate: Locator | None = None) -> list[str]:
    """Located errors for what `expr` cannot compute identically on `dialect` (none for DuckDB)."""
    if dialect == "duckdb":
        return []
    tree, syntax = parse_text(expr.text)
    if syntax or tree is None:
        return []  # reported by the checks
    problems = []
    for node in tree.walk():
        message = _spark_problem(node, kind_of)
        if message is not None:
            start, end = node_span(node, expr.text)
            problems.append(Problem(start, end, f"{message} (--engine {dialect})"))
    return [format_problem(expr, p, locate) for p in problems]


def _integer_literal(node: exp.Expr | None) -> int | None:
    """The value of an integer literal (possibly negated), else None."""
    sign = 1
    while isinstance(node, exp.Neg | exp.Paren):
        if isinstance(node, exp.Neg):
            sign = -sign
        node = node.this
    if isinstance(node, exp.Literal) and not node.is_string and str(node.this).lstrip("-").isdigit():
        return sign * int(node.this)
    return None


def _double(node: exp.Expr) -> exp.Expr:
    return exp.Cast(this=node, to=exp.DataType(this=exp.DataType.Type.DOUBLE))


def _double_literal(value: float) -> exp.Expr:
    """A DOUBLE constant (Spark reads 100.0 as a decimal, so it is cast)."""
    text = repr(value) if value == value and abs(value) != float("inf") else str(value)
    if text in ("inf", "-inf", "nan"):
        return _double(exp.Literal.string({"inf": "Infinity", "-inf": "-Infinity", "nan": "NaN"}[text]))
    return _double(exp.Literal.number(text))


#: Decimals that round(double, n) can be given on Spark (10^n has at most 26 significant bits).
MAX_ROUND_DECIMALS = 11


def _p(node: exp.Expr) -> exp.Expr:
    """`node` as an operand: constructed trees get no parentheses from sqlglot, so add them."""
    return node if isinstance(node, exp.Column | exp.Literal | exp.Paren | exp.Func) else exp.Paren(this=node)


def _op(cls: type[exp.Binary], a: exp.Expr, b: exp.Expr) -> exp.Expr:
    return exp.Paren(this=cls(this=_p(a.copy()), expression=_p(b.copy())))


def _exact_round(x: exp.Expr, n: int) -> exp.Expr:
    """round(x, n) of a double as DuckDB computes it: the exact binary value, halves away from zero.

    Spark rounds the shortest decimal text of x instead (4.35 → 4.4, DuckDB 4.3 as 4.35 is really
    4.34999…). Here y = x·10^n (or x/10^n) is rounded in doubles, and a y that is exactly a half is
    moved toward zero when the exact product (or quotient) was below it, which the error-free product
    of Dekker (Veltkamp's split) tells without leaving doubles.
    """
    m = _double_literal(10.0 ** abs(n))
    split = _double_literal(134217729.0)  # 2^27 + 1

    def exact_error(a: exp.Expr, product: exp.Expr) -> exp.Expr:
        """a·m − product exactly (10^n has at most 26 significant bits, so m needs no split)."""
        c = _op(exp.Mul, split, a)
        high = _op(exp.Sub, c, _op(exp.Sub, c, a))
        low = _op(exp.Sub, a, high)
        return _op(exp.Add, _op(exp.Sub, _op(exp.Mul, high, m), product), _op(exp.Mul, low, m))

    if n > 0:
        y = _op(exp.Mul, x, m)
        below = _op(exp.Mul, y, exact_error(x, y))  # < 0: the exact x·m is nearer zero than y
    else:
        y = _op(exp.Div, x, m)
        product = _op(exp.Mul, y, m)
        remainder = _op(exp.Sub, _op(exp.Sub, x, product), exact_error(y, product))
        below = _op(exp.Mul, y, remainder)
    rounded = exp.Round(this=y.copy())
    half = exp.EQ(this=exp.Abs(this=_op(exp.Sub, rounded, y)), expression=exp.Literal.number(0.5))
    tie_down = exp.and_(half, exp.LT(this=below, expression=exp.Literal.number(0)))
    toward_zero = _op(exp.Sub, rounded, exp.Sign(this=y.copy()))
    whole = exp.Case(ifs=[exp.If(this=tie_down, true=toward_zero)], default=rounded.copy())
    return _op(exp.Div if n > 0 else exp.Mul, whole, m)


def _rewrite(node: exp.Expr, fn: Callable[[exp.Expr], exp.Expr]) -> exp.Expr:
    """Apply `fn` bottom-up (children first) to every node; returns the new root."""
    for key, value in list(node.args.items()):
        if isinstance(value, exp.Expr):
            node.set(key, _rewrite(value, fn))
        elif isinstance(value, list):
            node.set(key, [_rewrite(v, fn) if isinstance(v, exp.Expr) else v for v in value])
    return fn(node)


def _spark_node(node: exp.Expr, kind_of: KindOf) -> exp.Expr:
    """One node rewritten so that Spark computes DuckDB's value (children are already rewritten)."""
    if isinstance(node, exp.Avg) and value_kind(node.this, kind_of) in ("decimal", "unknown"):
        # DuckDB averages decimals from their exact sum; Spark would keep a rounded decimal.
        arg = node.this
        count = exp.Nullif(this=exp.Count(this=arg.copy()), expression=exp.Literal.number(0))
        return exp.Paren(this=exp.Div(this=_double(exp.Sum(this=arg)), expression=_double(count)))
    if isinstance(node, exp.Div):
        # DuckDB divides in DOUBLE whatever the operands; Spark would divide decimals as decimals.
        for side in ("this", "expression"):
            if value_kind(node.args[side], kind_of) in ("decimal", "unknown"):
                node.set(side, _double(node.args[side]))
        return node
    if isinstance(node, exp.Sum) and value_kind(node.this, kind_of) == "boolean":
        return exp.Sum(this=exp.Cast(this=node.this, to=exp.DataType(this=exp.DataType.Type.INT)))
    if isinstance(node, exp.Cast) and _type_kind(node.args["to"]) == "integer":
        # DuckDB rounds to the nearest integer (a double half to even, a decimal half away from zero);
        # Spark truncates.
        kind = value_kind(node.this, kind_of)
        if kind == "double":
            node.set("this", exp.Anonymous(this="BROUND", expressions=[node.this, exp.Literal.number(0)]))
        elif kind == "decimal":
            node.set("this", exp.Round(this=node.this, decimals=exp.Literal.number(0)))
        return node
    if isinstance(node, exp.Round) and value_kind(node.this, kind_of) == "double":
        n = _integer_literal(node.args.get("decimals"))
        return _exact_round(node.this, n) if n else node
    if isinstance(node, exp.Ln | exp.Log):
        # DuckDB: ln(0) = -inf, ln(x < 0) = NaN; Spark returns NULL for both.
        x = _p(node.expression if isinstance(node, exp.Log) else node.this)
        zero = exp.Literal.number(0)
        return exp.Case(
            ifs=[
                exp.If(this=exp.GT(this=x.copy(), expression=zero.copy()), true=node),
                exp.If(
                    this=exp.EQ(this=x.copy(), expression=zero.copy()), true=_double_literal(float("-inf"))
                ),
                exp.If(
                    this=exp.LT(this=x.copy(), expression=zero.copy()), true=_double_literal(float("nan"))
                ),
            ]
        )
    part = _date_part(node)
    if part is not None:
        unit, _value = part
        if unit == "dow":
            # DuckDB counts Sunday as 0, Spark as 1.
            return exp.Paren(this=exp.Sub(this=node, expression=exp.Literal.number(1)))
        if unit == "second":
            # DuckDB's seconds are whole; Spark's carry the fraction.
            return exp.Cast(this=node, to=exp.DataType(this=exp.DataType.Type.INT))
        return node
    if isinstance(node, exp.TimestampTrunc | exp.DateTrunc) and _unit(node.args.get("unit")) in (
        "dow",
        "doy",
    ):
        # DuckDB truncates to the day for these units; Spark would return NULL.
        node.set("unit", exp.Literal.string("DAY"))
        return node
    return node


def for_dialect(tree: exp.Expr, dialect: str, kind_of: KindOf) -> exp.Expr:
    """`tree` (a resolved user expression) rewritten to compute DuckDB's values on `dialect`, in place.

    The identity for DuckDB. Call it once per expression: it is not idempotent.
    """
    if dialect == "duckdb":
        return tree
    if dialect != "spark":
        raise ValueError(f"unknown dialect {dialect!r}")
    return _rewrite(tree, lambda node: _spark_node(node, kind_of))
