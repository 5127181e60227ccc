"""The safe SQL subset: a text scan, sqlglot parsing and a whitelist of node types and functions.

Anything not listed here is rejected, so node types added by a future sqlglot are refused by default.
Problems are returned as character spans of the expression text; `expressions.py` locates them in the
ruleset file and adds name resolution.
"""

from __future__ import annotations

import difflib
import functools
import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass

import sqlglot
from sqlglot import exp
from sqlglot.errors import ParseError, TokenError

#: Longest expression accepted; rules are short conditions, anything longer is suspicious.
MAX_EXPRESSION_LENGTH = 2000
#: Deepest nesting accepted (operators chained or nested, parentheses, function calls).
MAX_EXPRESSION_DEPTH = 100
_TOO_DEEP = f"expression is nested more than {MAX_EXPRESSION_DEPTH} levels deep; split it into metrics"

#: Aggregate functions (allowed only in `value`).
AGGREGATES: dict[str, type[exp.Expr]] = {
    "count": exp.Count,
    "sum": exp.Sum,
    "avg": exp.Avg,
    "min": exp.Min,
    "max": exp.Max,
    "median": exp.Median,
    "stddev": exp.Stddev,
}

#: Row-level functions, by the name written in the expression and the sqlglot node it parses to.
SCALAR_FUNCTIONS: dict[str, type[exp.Expr]] = {
    "coalesce": exp.Coalesce,
    "nullif": exp.Nullif,
    "greatest": exp.Greatest,
    "least": exp.Least,
    "abs": exp.Abs,
    "round": exp.Round,
    "floor": exp.Floor,
    "ceil": exp.Ceil,
    "ln": exp.Ln,
    "log10": exp.Log,
    "sqrt": exp.Sqrt,
    "power": exp.Pow,
    "date_trunc": exp.TimestampTrunc,
    "extract": exp.Extract,
    "lower": exp.Lower,
    "upper": exp.Upper,
    "length": exp.Length,
}

#: Every function a rules expression may call (date_part parses to an anonymous function).
FUNCTIONS: tuple[str, ...] = (*AGGREGATES, *SCALAR_FUNCTIONS, "date_part")

#: Table functions named in the refusal message (any read_*, parquet_*, sniff_* is one too).
TABLE_FUNCTIONS = frozenset(
    {
        "glob",
        "read_csv",
        "read_csv_auto",
        "read_text",
        "read_blob",
        "read_json",
        "read_json_auto",
        "read_parquet",
        "parquet_scan",
        "sniff_csv",
        "query",
        "query_table",
        "range",
        "generate_series",
    }
)

AGGREGATE_CLASSES: tuple[type[exp.Expr], ...] = tuple(AGGREGATES.values())
_DATE_TRUNC_CLASSES = (exp.TimestampTrunc, exp.DateTrunc)

#: Date units accepted by date_trunc / date_part / extract (all exist in DuckDB and Spark).
DATE_UNITS = frozenset({"year", "quarter", "month", "week", "day", "hour", "minute", "second", "dow", "doy"})

#: Types a CAST may target.
CAST_TYPES = frozenset(
    {
        exp.DataType.Type.BOOLEAN,
        exp.DataType.Type.TINYINT,
        exp.DataType.Type.SMALLINT,
        exp.DataType.Type.INT,
        exp.DataType.Type.BIGINT,
        exp.DataType.Type.FLOAT,
        exp.DataType.Type.DOUBLE,
        exp.DataType.Type.DECIMAL,
        exp.DataType.Type.VARCHAR,
        exp.DataType.Type.TEXT,
        exp.DataType.Type.DATE,
        exp.DataType.Type.TIMESTAMP,
        exp.DataType.Type.TIMESTAMPNTZ,  # what sqlglot makes of `timestamp` in DuckDB: naive, as stored
    }
)

#: Leading words of SQL statements: an expression starting with one is refused before parsing.
STATEMENT_KEYWORDS = frozenset(
    {
        "alter",
        "analyze",
        "attach",
        "begin",
        "call",
        "checkpoint",
        "comment",
        "commit",
        "copy",
        "create",
        "deallocate",
        "delete",
        "describe",
        "detach",
        "drop",
        "execute",
        "explain",
        "export",
        "force",
        "from",
        "grant",
        "import",
        "insert",
        "install",
        "load",
        "merge",
        "pivot",
        "pragma",
        "prepare",
        "reset",
        "revoke",
        "rollback",
        "select",
        "set",
        "show",
        "summarize",
        "truncate",
        "unpivot",
        "update",
        "use",
        "vacuum",
        "values",
        "with",
    }
)

_LEAF_OK = (exp.Literal, exp.Boolean, exp.Null)
_OPERATORS = (
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
)

# Offending constructs that carry no source position in sqlglot: the token to point the caret at.
_KEYWORDS: dict[type[exp.Expr], str] = {
    exp.Select: r"\bselect\b",
    exp.Subquery: r"\bselect\b",
    exp.Exists: r"\bexists\b",
    exp.Window: r"\bover\b",
    exp.Filter: r"\bfilter\b",
    exp.Interval: r"\binterval\b",
    exp.Lambda: r"->",
    exp.JSONExtract: r"->",
    exp.JSONExtractScalar: r"->>",
    exp.DPipe: r"\|\|",
    exp.IntDiv: r"//",
    exp.Array: r"\[",
    exp.Struct: r"\{",
    exp.Placeholder: r"[?$:]\w*",
    exp.Pow: r"\^|\*\*",
    exp.SimilarTo: r"\bsimilar\s+to\b",
    exp.Escape: r"\bescape\b",
}

_FRIENDLY: dict[type[exp.Expr], str] = {
    exp.Select: "subqueries are not allowed",
    exp.Subquery: "subqueries are not allowed",
    exp.Exists: "subqueries are not allowed",
    exp.Window: "window functions (OVER) are not allowed",
    exp.Filter: "FILTER clauses are not allowed; put the condition in `where`",
    exp.Alias: "an expression cannot be named (AS); did you forget an operator?",
    exp.Placeholder: "parameters are not allowed; write the value",
    exp.Interval: "INTERVAL is not allowed; windows are set with `window`",
    exp.Lambda: "lambdas are not allowed",
    exp.JSONExtract: "operator -> is not allowed",
    exp.JSONExtractScalar: "operator ->> is not allowed",
    exp.DPipe: "operator || is not allowed",
    exp.IntDiv: "operator // is not allowed; write floor(a / b)",
    exp.Array: "lists are not allowed",
    exp.Struct: "structs are not allowed",
    exp.Pow: "operator ^ is not allowed; write power(x, y)",
}


@dataclass(frozen=True)
class Problem:
    """A problem inside an expression: its character span [start, end] and the message."""

    start: int
    end: int
    message: str


def suggest(name: str, candidates: Iterable[str], *, cutoff: float = 0.6, list_all: bool = False) -> str:
    """`; did you mean 'x'?` for the closest candidate; with `list_all`, else the (few) candidates."""
    options = sorted(set(candidates)) if not list_all else list(dict.fromkeys(candidates))
    match = difflib.get_close_matches(name, options, n=1, cutoff=cutoff)
    if match:
        return f"; did you mean '{match[0]}'?"
    if list_all and 0 < len(options) <= 12:
        return f" (expected one of: {', '.join(options)})"
    return ""


def _scan_text(text: str) -> list[Problem]:
    """Refuse `;` and SQL comments outside quoted strings, before the parser sees anything."""
    problems: list[Problem] = []
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch in "'\"":
            # Skip a quoted string ('' doubles the quote); unterminated strings are left to the parser.
            j = i + 1
            while j < n:
                if text[j] == ch:
                    if j + 1 < n and text[j + 1] == ch:
                        j += 2
                        continue
                    break
                j += 1
            i = j + 1
            continue
        if ch == ";":
            problems.append(Problem(i, i, "`;` is not allowed: an expression is one value or condition"))
        elif text.startswith("--", i):
            problems.append(Problem(i, n - 1, "SQL comments (--) are not allowed in expressions"))
            break
        elif text.startswith("/*", i):
            close = text.find("*/", i + 2)
            end = n - 1 if close < 0 else close + 1
            problems.append(Problem(i, end, "SQL comments (/* */) are not allowed in expressions"))
            i = end
        i += 1
    return problems


def _statement_problem(text: str) -> Problem | None:
    """Refuse text that starts like a SQL statement (attach, copy, pragma, select, ...)."""
    m = re.match(r"\s*(?:\(\s*)*([A-Za-z_]+)\b", text)
    if m and m.group(1).lower() in STATEMENT_KEYWORDS:
        word = m.group(1)
        return Problem(
            m.start(1),
            m.end(1) - 1,
            f"SQL statements are not allowed ({word.upper()}); write a single value or condition",
        )
    return None


def node_span(node: exp.Expr, text: str) -> tuple[int, int]:
    """The character span of `node` in `text`: from sqlglot positions, else by finding its token."""
    pattern = _KEYWORDS.get(type(node))
    if pattern is not None and "start" not in node.meta:
        span = _find_pattern(text, pattern)
        if span is not None:
            return span
    starts: list[int] = []
    ends: list[int] = []
    for sub in node.walk():
        meta = sub.meta
        if "start" in meta and "end" in meta:
            starts.append(int(meta["start"]))
            ends.append(int(meta["end"]))
    if starts:
        return min(starts), max(ends)
    name = node.sql_name().lower() if isinstance(node, exp.Func) else node.key
    found = _find_token(text, name)
    if found is not None:
        return found, found + len(name) - 1
    return 0, max(0, len(text) - 1)


def _find_pattern(text: str, pattern: str) -> tuple[int, int] | None:
    """The span of the first match of `pattern` (case-insensitive) outside quoted strings, or None."""
    masked = list(text)
    quote: str | None = None
    for i, ch in enumerate(text):
        if quote is not None:
            masked[i] = "\0"
            if ch == quote:
                quote = None
        elif ch in "'\"":
            quote = ch
    m = re.search(pattern, "".join(masked), re.IGNORECASE)
    return (m.start(), max(m.start(), m.end() - 1)) if m else None


def _find_token(text: str, token: str) -> int | None:
    """The first offset of the literal `token` (case-insensitive) outside quoted strings, or None."""
    found = _find_pattern(text, re.escape(token)) if token else None
    return found[0] if found else None


def written_name(node: exp.Expr, text: str) -> str:
    """The function name as written in the expression (sqlglot normalises aliases like log10)."""
    if isinstance(node, exp.Anonymous):
        return str(node.name).lower()
    meta = node.meta
    if "start" in meta and "end" in meta:
        return text[int(meta["start"]) : int(meta["end"]) + 1].lower()
    return node.sql_name().lower() if isinstance(node, exp.Func) else node.key


def _is_literal_value(node: exp.Expr) -> bool:
    """A literal usable in an IN list: number, string, boolean, NULL or a negated number."""
    if isinstance(node, exp.Neg):
        return isinstance(node.this, exp.Literal) and not node.this.is_string
    return isinstance(node, _LEAF_OK)


def _unit_ok(unit: exp.Expr | None) -> bool:
    """A date unit written as a word (`year`) or a string (`'year'`) from DATE_UNITS."""
    if isinstance(unit, exp.Var | exp.Literal | exp.Column):
        return str(unit.name).lower() in DATE_UNITS
    return False


class _Whitelist:
    """Walks a parsed tree and reports every node outside the safe subset."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.problems: list[Problem] = []

    def reject(self, node: exp.Expr, message: str | None = None) -> None:
        start, end = node_span(node, self.text)
        if message is None:
            message = _FRIENDLY.get(type(node))
        if message is None:
            snippet = self.text[start : end + 1].strip() or node.sql(dialect="duckdb")
            snippet = snippet if len(snippet) <= 40 else snippet[:37] + "..."
            message = f"`{snippet}` is not allowed in a rules expression"
        self.problems.append(Problem(start, end, message))

    def children(self, node: exp.Expr) -> None:
        for child in node.iter_expressions():
            self.visit(child, node)

    def visit(self, node: exp.Expr, parent: exp.Expr | None) -> None:
        if isinstance(node, _LEAF_OK):
            return
        if isinstance(node, exp.Column):
            if not isinstance(node.this, exp.Identifier) or node.args.get("db") or node.args.get("catalog"):
                self.reject(node, "only plain names and `<scorecard>.eligible|tier|total` are allowed")
            return
        if isinstance(node, exp.In):
            if any(node.args.get(k) for k in ("query", "unnest", "field")) or not all(
                _is_literal_value(e) for e in node.expressions
            ):
                bad = next((e for e in node.expressions if not _is_literal_value(e)), node)
                if node.args.get("query"):
                    bad = node.args["query"]
                self.reject(bad, "IN takes a list of literal values, like status in ('paid', 'shipped')")
                return
            self.visit(node.this, node)
            return
        if isinstance(node, exp.Is):
            if not isinstance(node.expression, exp.Null | exp.Boolean):
                self.reject(node.expression, "IS must be followed by NULL, TRUE or FALSE")
                return
            self.visit(node.this, node)
            return
        if isinstance(node, _OPERATORS):
            self.children(node)
            return
        if isinstance(node, exp.Case):
            self.children(node)
            return
        if isinstance(node, exp.If) and isinstance(parent, exp.Case):
            self.children(node)
            return
        if isinstance(node, exp.Cast) and not isinstance(node, exp.TryCast):
            self.cast(node)
            return
        if isinstance(node, exp.Func):
            self.function(node)
            return
        self.reject(node)

    def cast(self, node: exp.Cast) -> None:
        to = node.args.get("to")
        extra = [k for k, v in node.args.items() if v and k not in ("this", "to", "_type")]
        if extra or not isinstance(to, exp.DataType) or to.this not in CAST_TYPES or to.args.get("nested"):
            start, end = node_span(to, self.text) if isinstance(to, exp.Expr) else (0, 0)
            written = to.sql(dialect="duckdb") if isinstance(to, exp.Expr) else "?"
            found = _find_token(self.text, written.split("(")[0].split("[")[0].lower())
            if found is not None:
                start, end = found, found + len(written.split("(")[0]) - 1
            allowed = "boolean, int, bigint, double, decimal(p, s), varchar, date, timestamp"
            self.problems.append(Problem(start, end, f"cannot cast to {written}; allowed types: {allowed}"))
            return
        for param in to.expressions:
            if not (isinstance(param, exp.DataTypeParam) and isinstance(param.this, exp.Literal)):
                self.reject(param)
                return
        self.visit(node.this, node)

    def function(self, node: exp.Func) -> None:
        name = written_name(node, self.text)
        expected = AGGREGATES.get(name) or SCALAR_FUNCTIONS.get(name)
        if isinstance(node, exp.Anonymous) and name == "date_part":
            args = node.expressions
            if len(args) != 2 or not (isinstance(args[0], exp.Literal) and args[0].is_string):
                self.reject(node, "date_part takes a unit and a value: date_part('year', order_time)")
            elif not _unit_ok(args[0]):
                self.bad_unit(args[0])
            else:
                self.visit(args[1], node)
            return
        if type(node) is exp.Pow and "start" not in node.meta:
            self.reject(node)  # `x ^ y` / `x ** y`: only the written function power() is allowed
            return
        if expected is None or not isinstance(node, expected):
            if "start" in node.meta and "end" in node.meta:
                start, end = int(node.meta["start"]), int(node.meta["end"])
            else:
                found = _find_token(self.text, name)
                start, end = (found, found + len(name) - 1) if found is not None else (0, len(self.text) - 1)
            if name in TABLE_FUNCTIONS or name.startswith(("read_", "parquet_", "sniff_")):
                message = f"table function {name} is not allowed: rules cannot read files or tables"
            else:
                hint = suggest(name, FUNCTIONS, cutoff=0.7) or f" (allowed: {', '.join(FUNCTIONS)})"
                message = f"unknown function {name}{hint}"
            self.problems.append(Problem(start, end, message))
            return
        if isinstance(node, AGGREGATE_CLASSES):
            self.aggregate(node, name)
            return
        if isinstance(node, _DATE_TRUNC_CLASSES):
            unit = node.args.get("unit")
            if not _unit_ok(unit):
                self.bad_unit(unit if isinstance(unit, exp.Expr) else node)
                return
            self.visit(node.this, node)
            return
        if isinstance(node, exp.Extract):
            if not _unit_ok(node.this):
                self.bad_unit(node.this)
                return
            self.visit(node.expression, node)
            return
        self.children(node)

    def bad_unit(self, node: exp.Expr) -> None:
        units = ", ".join(sorted(DATE_UNITS))
        written = str(node.name or node.sql()).lower()
        # The unit is usually a quoted string, which sqlglot keeps no position for: find it in the text.
        found = self.text.lower().find(written) if written else -1
        start, end = (found, found + len(written) - 1) if found >= 0 else node_span(node, self.text)
        self.problems.append(Problem(start, end, f"unknown date unit '{written}'; allowed: {units}"))

    def aggregate(self, node: exp.Func, name: str) -> None:
        extra = [v for k, v in node.args.items() if isinstance(v, exp.Expr) and k != "this"]
        if extra:
            self.reject(extra[0], f"{name} takes one argument")
            return
        arg = node.this
        if isinstance(arg, exp.Star):
            if name != "count":
                self.reject(arg, f"{name}(*) is not allowed; only count(*)")
            return
        if isinstance(arg, exp.Distinct):
            if name != "count":
                self.reject(node, "DISTINCT is only allowed as count(distinct x)")
            elif len(arg.expressions) != 1 or arg.args.get("on"):
                self.reject(arg, "count(distinct ...) takes exactly one value")
            else:
                self.visit(arg.expressions[0], arg)
            return
        if arg is None:
            self.reject(node, f"{name}() needs an argument")
            return
        self.visit(arg, node)


@functools.lru_cache(maxsize=4096)
def parse_text(text: str) -> tuple[exp.Expr | None, tuple[Problem, ...]]:
    """Parse and whitelist one expression text (cached: the same text is checked in many contexts)."""
    if not text.strip():
        return None, (Problem(0, 0, "empty expression"),)
    if len(text) > MAX_EXPRESSION_LENGTH:
        return None, (Problem(0, 0, f"expression longer than {MAX_EXPRESSION_LENGTH} characters"),)
    problems = _scan_text(text)
    statement = _statement_problem(text)
    if statement is not None:
        problems.append(statement)
    if problems:
        return None, tuple(problems)
    sqlglot_logger = logging.getLogger("sqlglot")
    level = sqlglot_logger.level
    sqlglot_logger.setLevel(logging.ERROR)  # sqlglot warns when it falls back to a raw Command
    try:
        trees = sqlglot.parse(text, read="duckdb")
    except ParseError as e:
        return None, (_parse_error_problem(text, e),)
    except TokenError as e:
        return None, (Problem(0, len(text) - 1, f"cannot read expression: {e}"),)
    except RecursionError:
        return None, (Problem(0, len(text) - 1, _TOO_DEEP),)
    finally:
        sqlglot_logger.setLevel(level)
    found = [t for t in trees if t is not None]
    if len(found) != 1:
        return None, (Problem(0, len(text) - 1, "an expression is exactly one value or condition"),)
    if _depth(found[0]) > MAX_EXPRESSION_DEPTH:
        # Checked before any recursive walk: a deep tree must not exhaust Python's stack later on.
        return None, (Problem(0, len(text) - 1, _TOO_DEEP),)
    walker = _Whitelist(text)
    walker.visit(found[0], None)
    return found[0], tuple(walker.problems)


def _depth(tree: exp.Expr) -> int:
    """The nesting depth of a tree, walked without recursion."""
    deepest = 0
    stack = [(tree, 1)]
    while stack:
        node, depth = stack.pop()
        deepest = max(deepest, depth)
        stack.extend((child, depth + 1) for child in node.iter_expressions())
    return deepest


def _parse_error_problem(text: str, error: ParseError) -> Problem:
    """Turn a sqlglot ParseError into a Problem pointing at the token it stopped on."""
    details = error.errors[0] if error.errors else {}
    description = str(details.get("description") or "cannot parse expression")
    # sqlglot's "Required keyword: 'expression' missing for <class ...Add>" means a dangling operator.
    description = re.sub(r"Required keyword: '\w+' missing for <class '[\w.]+'>", "incomplete", description)
    line = int(details.get("line") or 1)
    col = int(details.get("col") or 1)
    highlight = str(details.get("highlight") or "")
    line_start = 0
    for _ in range(line - 1):
        nxt = text.find("\n", line_start)
        line_start = nxt + 1 if nxt >= 0 else line_start
    end = min(len(text) - 1, line_start + col - 1)
    start = max(0, end - max(len(highlight), 1) + 1)
    return Problem(start, end, f"cannot parse expression: {description.rstrip('.')}")


def is_plain_name(name: str) -> bool:
    """Whether `name` parses as a bare column reference (so not `select`, `null`, `case`, ...)."""
    tree, problems = parse_text(name)
    return not problems and isinstance(tree, exp.Column) and not tree.table and tree.name == name
