"""The YAML layer of the ruleset parser: safe composition and typed, located reads of nodes.

PyYAML composes the file into nodes and never constructs Python objects from them, so no tag can run
anything; anchors and aliases are refused before composing, so an alias bomb never expands. Every read
(`string`, `number`, `mapping`, ...) reports a `FILE:LINE:COL: message` error and carries on, so that a
file's errors are all found in one pass.
"""

from __future__ import annotations

import bisect
import math
import re
from collections.abc import Sequence
from typing import Any, cast

import yaml
from yaml.constructor import SafeConstructor
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from chuanliu_cli.rules.expressions import Locator, suggest, syntax_errors
from chuanliu_cli.rules.model import Expr, Loc
from chuanliu_cli.rules.sqlsubset import is_plain_name

#: Most YAML events (scalars, mapping/sequence starts) accepted in one file.
MAX_YAML_EVENTS = 100_000
#: Deepest nesting of mappings and lists (a ruleset needs about 10).
MAX_YAML_DEPTH = 32
#: Anchors and aliases reported one by one before the rest are only counted (an alias bomb has many).
_REFUSALS_SHOWN = 3
_STANDARD_TAGS = frozenset(
    f"tag:yaml.org,2002:{t}" for t in ("str", "int", "float", "bool", "null", "map", "seq")
)
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def describe(node: Node) -> str:
    """How a node is called in error messages."""
    if isinstance(node, MappingNode):
        return "a mapping"
    if isinstance(node, SequenceNode):
        return "a list"
    if node.tag.endswith(":null"):
        return "nothing"
    return f"'{node.value}'"


#: The note checks.py adds to an error found in a filter while checking one of its uses.
_FILTER_USE = re.compile(r" \(filter '[^'\n]*' used on \w+ by [^\n]*\)(?=\n|$)")


class NodeReader:
    """Reads YAML nodes of one file, collecting every error with its location."""

    def __init__(self, path: str, text: str) -> None:
        self.path = path
        self.text = text
        self.errors: list[tuple[int, int, int, str]] = []
        self.locators: dict[Expr, Locator] = {}
        self._line_starts = [0] + [m.end() for m in re.finditer("\n", text)]
        self._constructor = SafeConstructor()

    # -- errors and locations ------------------------------------------------------------------------

    def loc(self, node: Node) -> Loc:
        return Loc(self.path, node.start_mark.line + 1, node.start_mark.column + 1)

    def error(self, node: Node | Loc, message: str) -> None:
        loc = node if isinstance(node, Loc) else self.loc(node)
        self.errors.append((loc.line, loc.col, len(self.errors), f"{loc}: {message}"))

    def add_formatted(self, lines: Sequence[str]) -> None:
        """Add already formatted `FILE:LINE:COL: ...` errors (from expression checks)."""
        for text in lines:
            rest = text[len(self.path) + 1 :] if text.startswith(self.path + ":") else ""
            parts = rest.split(":", 2)
            line = int(parts[0]) if len(parts) > 2 and parts[0].isdigit() else 0
            col = int(parts[1]) if len(parts) > 2 and parts[1].isdigit() else 0
            self.errors.append((line, col, len(self.errors), text))

    def sorted_errors(self) -> list[str]:
        """The errors in file order, each once: a filter's own error is found again at every use of the
        filter (annotated with the use), and is reported at its first."""
        seen: set[str] = set()
        out: list[str] = []
        for *_, text in sorted(self.errors):
            key = _FILTER_USE.sub("", text, count=1)
            if key not in seen:
                seen.add(key)
                out.append(text)
        return out

    def _position(self, index: int) -> tuple[int, int]:
        line = bisect.bisect_right(self._line_starts, index) - 1
        return line + 1, index - self._line_starts[line] + 1

    # -- the YAML layer ------------------------------------------------------------------------------

    def compose(self) -> Node | None:
        """Parse events (refusing aliases, anchors and foreign tags), then compose the node tree.

        libyaml (PyYAML's C parser) does it when the wheel has it: 5-10x faster, and the ruleset is read by
        every scoring command. A file it refuses is read again by the pure-Python parser, whose error
        messages are the ones users (and the tests) see.
        """
        fast = getattr(yaml, "CSafeLoader", None)
        if fast is not None:
            before = len(self.errors)
            try:
                return self._compose(fast)
            except Exception:  # whatever libyaml refuses, the pure-Python parser explains
                del self.errors[before:]
        return self._compose(yaml.SafeLoader, catch=True)

    def _compose(self, loader: Any, catch: bool = False) -> Node | None:
        try:
            count = depth = 0
            refused: list[tuple[Loc, str]] = []  # anchors and aliases: an alias bomb has thousands
            for event in yaml.parse(self.text, Loader=loader):
                count += 1
                if count > MAX_YAML_EVENTS:
                    self.error(Loc(self.path, 1, 1), f"ruleset has more than {MAX_YAML_EVENTS:,} YAML nodes")
                    return None
                mark = event.start_mark
                where = Loc(self.path, mark.line + 1, mark.column + 1) if mark else Loc(self.path, 1, 1)
                if isinstance(event, yaml.CollectionStartEvent):
                    depth += 1
                    if depth > MAX_YAML_DEPTH:
                        # PyYAML composes recursively: refuse before a deep file exhausts the stack.
                        self.error(where, f"YAML nested more than {MAX_YAML_DEPTH} levels deep")
                        return None
                elif isinstance(event, yaml.CollectionEndEvent):
                    depth -= 1
                if isinstance(event, yaml.AliasEvent):
                    refused.append((where, f"YAML aliases (*{event.anchor}) are not allowed"))
                    continue
                anchor = getattr(event, "anchor", None)
                if anchor is not None:
                    refused.append((where, f"YAML anchors (&{anchor}) are not allowed"))
                tag = getattr(event, "tag", None)
                if tag is not None and tag != "!" and tag not in _STANDARD_TAGS:
                    shown = tag.replace("tag:yaml.org,2002:", "!!")
                    self.error(where, f"YAML tag {shown} is not allowed: a ruleset is plain data")
            for where, message in refused[:_REFUSALS_SHOWN]:
                self.error(where, f"{message}; write the value out")
            if len(refused) > _REFUSALS_SHOWN:
                where = refused[_REFUSALS_SHOWN][0]
                more = len(refused) - _REFUSALS_SHOWN
                self.error(where, f"{more} more YAML anchors or aliases from here on (none is allowed)")
            if self.errors:
                return None
            return yaml.compose(self.text, Loader=loader)
        except yaml.MarkedYAMLError as e:
            if not catch:
                raise
            mark = e.problem_mark or e.context_mark
            line, col = (mark.line + 1, mark.column + 1) if mark is not None else (1, 1)
            problem = " ".join(str(x) for x in (e.context, e.problem) if x)
            self.error(Loc(self.path, line, col), f"YAML syntax error: {problem}")
        except yaml.YAMLError as e:
            if not catch:
                raise
            line, col = self._position(int(getattr(e, "position", 0) or 0))
            self.error(Loc(self.path, line, col), f"cannot read YAML: {str(e).splitlines()[0]}")
        return None

    def mapping(
        self, node: Node, what: str, allowed: Sequence[str], required: Sequence[str] = ()
    ) -> dict[str, tuple[ScalarNode, Node]] | None:
        """The entries of a mapping node by key; reports unknown, duplicate and missing keys."""
        if not isinstance(node, MappingNode):
            self.error(node, f"{what} must be a mapping, got {describe(node)}")
            return None
        entries: dict[str, tuple[ScalarNode, Node]] = {}
        for key, value in node.value:
            if not isinstance(key, ScalarNode) or key.tag.endswith(":null"):
                self.error(key, f"keys of {what} must be names, got {describe(key)}")
                continue
            name = str(key.value)
            if name in entries:
                first = self.loc(entries[name][0])
                self.error(key, f"duplicate key '{name}' in {what} (first at line {first.line})")
                continue
            if allowed and name not in allowed:
                self.error(key, f"unknown key '{name}' in {what}{suggest(name, allowed, list_all=True)}")
                continue
            entries[name] = (key, value)
        for name in required:
            if name not in entries:
                self.error(node, f"{what} is missing '{name}'")
        return entries

    def entries(self, node: Node, what: str) -> list[tuple[ScalarNode, Node]]:
        """Named entries of a mapping whose keys are user-chosen names (metrics, scores, ...)."""
        found = self.mapping(node, what, ())
        return list(found.values()) if found is not None else []

    def is_null(self, node: Node) -> bool:
        return isinstance(node, ScalarNode) and node.tag.endswith(":null")

    def string(self, node: Node, what: str) -> str | None:
        if not isinstance(node, ScalarNode) or self.is_null(node):
            self.error(node, f"{what} must be text, got {describe(node)}")
            return None
        text = str(node.value)
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            # a lone surrogate ("\ud800") can be written in YAML but is no text: it breaks printing and SQL
            self.error(node, f"{what} holds an invalid character (a lone surrogate)")
            return None
        return text

    def name(self, node: Node, what: str) -> str | None:
        """A name usable in expressions: letters, digits and _, and not an SQL keyword."""
        text = self.string(node, what)
        if text is None:
            return None
        if not _NAME.match(text):
            self.error(
                node, f"{what} '{text}' must be a name: letters, digits and _, not starting with a digit"
            )
            return None
        if not is_plain_name(text):
            # Expressions could not refer to it: `select + 1` does not parse as a formula.
            self.error(node, f"{what} '{text}' is an SQL keyword; choose another name")
            return None
        return text

    def number(self, node: Node, what: str) -> float | None:
        if isinstance(node, ScalarNode) and node.tag.endswith((":int", ":float")):
            try:
                value = (
                    float(self._constructor.construct_yaml_int(node))
                    if node.tag.endswith(":int")
                    else float(self._constructor.construct_yaml_float(node))
                )
            except (OverflowError, ValueError):
                self.error(node, f"{what} is too large: {str(node.value)[:20]}…")
                return None
            if math.isfinite(value):
                return value
            self.error(node, f"{what} must be a finite number, got {node.value}")
            return None
        self.error(node, f"{what} must be a number, got {describe(node)}")
        return None

    def integer(self, node: Node, what: str) -> int | None:
        if isinstance(node, ScalarNode) and node.tag.endswith(":int"):
            try:
                value = int(self._constructor.construct_yaml_int(node))
            except (OverflowError, ValueError):
                value = None
            if value is None or abs(value) > 2**63 - 1:
                # pools, caps and versions must fit the 64-bit integers the database and outputs use
                self.error(node, f"{what} is too large: {str(node.value)[:20]}… (at most {2**63 - 1:,})")
                return None
            return value
        self.error(node, f"{what} must be a whole number, got {describe(node)}")
        return None

    def boolean(self, node: Node, what: str) -> bool | None:
        if isinstance(node, ScalarNode) and node.tag.endswith(":bool"):
            return bool(self._constructor.construct_yaml_bool(node))
        self.error(node, f"{what} must be true or false, got {describe(node)}")
        return None

    def choice(self, node: Node, what: str, options: Sequence[str]) -> str | None:
        text = self.string(node, what)
        if text is None:
            return None
        if text not in options:
            self.error(node, f"unknown {what} '{text}'{suggest(text, options, list_all=True)}")
            return None
        return text

    def expr(self, node: Node, what: str) -> Expr | None:
        """An expression scalar, with its location and a locator for carets; syntax checked now."""
        if not isinstance(node, ScalarNode) or self.is_null(node):
            self.error(node, f"{what} must be an expression (text), got {describe(node)}")
            return None
        positions = self._value_positions(node)
        first = positions[0] if positions else node.start_mark.index
        if not positions and node.style in ("|", ">"):
            # A block scalar's text starts on the line after its `|` or `>` header.
            header_end = self.text.find("\n", node.start_mark.index, node.end_mark.index)
            if header_end >= 0:
                first = (
                    header_end
                    + 1
                    + len(self.text[header_end + 1 :])
                    - len(self.text[header_end + 1 :].lstrip(" "))
                )
        line, col = self._position(first)
        expr = Expr(str(node.value), Loc(self.path, line, col))
        if positions:
            self.locators[expr] = lambda offset: self._position(
                positions[max(0, min(offset, len(positions) - 1))]
            )
        self.add_formatted(syntax_errors(expr, self.locators.get(expr)))
        return expr

    def _value_positions(self, node: ScalarNode) -> list[int]:
        """File offset of each character of a scalar's value, aligning the value with its source text.

        Folding (plain and `>` scalars) turns line breaks into spaces and `|` blocks strip indentation,
        so offsets are found by walking both strings; escapes we cannot align give [] (use the start).
        """
        start, stop = node.start_mark.index, node.end_mark.index
        src = self.text[start:stop]
        value = str(node.value)
        j = 0
        indent: int | None = None  # a block scalar strips exactly its indentation from each line
        if node.style in ("'", '"'):
            j = 1
        elif node.style in ("|", ">"):
            j = src.find("\n") + 1
            line_start = j
            while j < len(src) and src[j] == " ":
                j += 1
            indent = j - line_start
        positions: list[int] = []
        for ch in value:
            if ch.isspace():
                if j >= len(src) or not src[j].isspace():
                    return []
                positions.append(start + j)
                if src[j] == "\n" and ch in ("\n", " "):
                    j += 1
                    skipped = 0
                    while j < len(src) and src[j] in " \t" and (indent is None or skipped < indent):
                        j += 1
                        skipped += 1
                else:
                    j += 1
                continue
            k = src.find(ch, j)
            if k < 0:
                return []
            positions.append(start + k)
            j = k + 1
        return positions

    def optional_text(self, entries: dict[str, tuple[ScalarNode, Node]], key: str) -> str | None:
        if key not in entries or self.is_null(entries[key][1]):
            return None
        return self.string(entries[key][1], key)

    def numbers(self, node: Node, what: str, count: int) -> tuple[float, ...] | None:
        if not isinstance(node, SequenceNode) or len(node.value) != count:
            self.error(node, f"{what} takes a list of {count} numbers, got {describe(node)}")
            return None
        values = [self.number(item, what) for item in node.value]
        if any(v is None for v in values):
            return None
        return tuple(cast(float, v) for v in values)
