"""Named parameters and tunable values of a ruleset (SPEC §10).

A gate reads a named parameter as `params.<name>` (declared in the ruleset's `params:` section); the parser
binds it to the parameter's value, so that every later stage (checks, gates, explain) sees a plain number.
A value written `{tune: [low, high]}` (a parameter, a part's weight, a tier's min_score, a pool or a cap) is
left for `rules calibrate`, which writes the file again with numbers in place of the tune nodes
(`rewrite`). A ruleset with tunable values does not score (`require_numbers`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from chuanliu_cli.errors import RulesetError
from chuanliu_cli.rules.model import Ruleset, Tunable

#: The name gates qualify parameters with: `params.min_live_days`.
PARAMS = "params"


def number_text(value: float) -> str:
    """A number as it is written back into a ruleset or a condition: 8, 0.05, 1500000 (never 8.0)."""
    if math.isfinite(value) and value == int(value) and abs(value) < 2**53:
        return str(int(value))
    return repr(float(value))


def param_references(text: str) -> list[tuple[int, int, str]]:
    """The `params.<name>` references of an expression: (start, end exclusive, name), from sqlglot's
    tokens, so that text inside quotes is never taken for one. [] when the text does not tokenize (the
    expression check reports that)."""
    import sqlglot
    from sqlglot.tokens import TokenType

    try:
        tokens = sqlglot.tokenize(text, read="duckdb")
    except Exception:  # a text that does not tokenize has its syntax error reported elsewhere
        return []
    found = []
    for a, dot, b in zip(tokens, tokens[1:], tokens[2:], strict=False):
        if (
            a.token_type == TokenType.VAR
            and a.text.lower() == PARAMS
            and dot.token_type == TokenType.DOT
            and b.token_type == TokenType.VAR
            and dot.start == a.end + 1
            and b.start == dot.end + 1
        ):
            found.append((a.start, b.end + 1, b.text))
    return found


def bind(text: str, values: Mapping[str, float]) -> tuple[str, list[int]]:
    """`text` with each `params.<name>` replaced by the number `values[name]` (every name must be there),
    and for each character of the result the offset of the character of `text` it comes from (so that an
    error in the bound condition is located in the file as written)."""
    out: list[str] = []
    origin: list[int] = []
    at = 0
    for start, end, name in param_references(text):
        out.append(text[at:start])
        origin.extend(range(at, start))
        number = number_text(values[name])
        out.append(number)
        origin.extend([start] * len(number))
        at = end
    out.append(text[at:])
    origin.extend(range(at, len(text)))
    return "".join(out), origin


def rewrite(ruleset: Ruleset, chosen: Mapping[str, float]) -> str:
    """The ruleset's text with every tunable whose path is in `chosen` replaced by the chosen number; the
    rest of the file (comments, layout, the tunables not chosen) stays as written."""
    text = ruleset.text
    edits = sorted(
        ((t.span, _written(t, chosen[t.path])) for t in ruleset.tunables if t.path in chosen),
        reverse=True,
    )
    for (start, end), number in edits:
        text = text[:start] + number + text[end:]
    return text


def _written(tunable: Tunable, value: float) -> str:
    """A chosen value as the file will hold it: pools and caps whole, with digit groups (4_000_000_000)."""
    return f"{round(value):_}" if tunable.integer else number_text(value)


def require_numbers(ruleset: Ruleset, scorecards: tuple[str, ...] | None = None) -> None:
    """RulesetError (exit 3) when the ruleset (or the scorecards named) has values left to calibrate."""
    left = [
        t for t in ruleset.tunables if scorecards is None or scorecards_tuned(ruleset, t) & set(scorecards)
    ]
    if not left:
        return
    shown = [
        f"{t.loc}: {t.path} is tunable ({{tune: [{number_text(t.low)}, {number_text(t.high)}]}})"
        for t in left
    ]
    raise RulesetError(
        [f"{ruleset.path}: tunable values must be calibrated first: chuanliu rules calibrate", *shown],
        hint="choose them with `chuanliu rules calibrate --month M --target ... -o FILE`, then score FILE",
    )


def scorecards_tuned(ruleset: Ruleset, tunable: Tunable) -> set[str]:
    """The scorecards whose results depend on `tunable` (a parameter: those of the gates reading it)."""
    if tunable.scorecard is not None:
        return {tunable.scorecard}
    name = tunable.path.removeprefix(PARAMS + ".")
    return {u.scorecard for u in ruleset.param_uses if name in u.params}
