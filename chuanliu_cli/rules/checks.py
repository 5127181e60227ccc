"""Cross-reference checks of a parsed scorecard: names in expressions, references, cycles (SPEC §4).

The parser builds the model from YAML structure; this module checks what needs the whole scorecard:
which names each expression may use, which filters apply to which source, that score parts and
`requires` point at existing metrics/scores, and that formulas, scores and filters have no cycles.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from chuanliu_cli import schema
from chuanliu_cli.rules.expressions import (
    Checked,
    Locator,
    Names,
    ValueKind,
    bare_names,
    check_expression,
    suggest,
)
from chuanliu_cli.rules.model import (
    AggregateMetric,
    ConversionMetric,
    Expr,
    FormulaMetric,
    Loc,
    Score,
    Scorecard,
)


@dataclass(frozen=True)
class Context:
    """What the checks of one scorecard need from the rest of the file."""

    filters: Mapping[str, Expr]
    scorecard_names: tuple[str, ...]  # every scorecard, in file order
    locators: Mapping[Expr, Locator]


def _at(loc: Loc, message: str) -> str:
    return f"{loc}: {message}"


def _annotate(error: str, note: str) -> str:
    """Add `note` to the first line of a formatted error (before its caret excerpt)."""
    head, sep, rest = error.partition("\n")
    return f"{head} {note}{sep}{rest}"


#: Longest chain of formulas using formulas, or filters using filters: each is inlined into the SQL,
#: so a longer chain only makes an unreadable query (and a deep tree).
MAX_CHAIN = 32


@dataclass(frozen=True)
class GraphWalk:
    """A depth-first walk of a dependency graph (node -> the nodes it uses), in the graph's key order."""

    cycles: list[list[str]]  # each as `a, b, ..., a`
    order: list[str]  # every node after the nodes it uses (declaration order where free)
    chain: dict[str, int]  # the longest chain of uses starting at each node (1 = uses nothing)


def walk_graph(graph: Mapping[str, Sequence[str]]) -> GraphWalk:
    """Walk `graph` without recursion (a hostile file may chain thousands of names)."""
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done
    cycles: list[list[str]] = []
    order: list[str] = []
    chain: dict[str, int] = {}
    for root in graph:
        if root in state:
            continue
        state[root] = 1
        path = [root]
        stack = [iter(graph[root])]
        while stack:
            nxt = next(stack[-1], None)
            if nxt is None:
                node = path.pop()
                stack.pop()
                state[node] = 2
                order.append(node)
                chain[node] = 1 + max((chain.get(d, 0) for d in graph[node] if state.get(d) == 2), default=0)
            elif nxt in graph and state.get(nxt) == 1:
                cycles.append([*path[path.index(nxt) :], nxt])
            elif nxt in graph and nxt not in state:
                state[nxt] = 1
                path.append(nxt)
                stack.append(iter(graph[nxt]))
    return GraphWalk(cycles, order, chain)


def _too_long(walk: GraphWalk, what: str) -> str | None:
    """The longest chain's message when it exceeds MAX_CHAIN, naming where it starts."""
    if not walk.chain:
        return None
    name, length = max(walk.chain.items(), key=lambda item: item[1])
    if length <= MAX_CHAIN:
        return None
    return f"{what} '{name}' starts a chain of {length} {what}s using each other (at most {MAX_CHAIN})"


def order_scores(scores: Sequence[Score]) -> tuple[list[Score], list[str]]:
    """Scores in dependency order (declaration order where free), and an error per cycle."""
    by_name = {s.name: s for s in scores}
    graph: dict[str, list[str]] = {}
    for s in scores:
        deps = [p.score for p in s.parts if p.score is not None]
        if s.requires is not None and s.requires.metric in by_name:
            deps.append(s.requires.metric)
        graph[s.name] = deps
    walk = walk_graph(graph)
    errors = [
        _at(by_name[cycle[0]].loc, f"scores use each other in a cycle: {' -> '.join(cycle)}")
        for cycle in walk.cycles
    ]
    return [by_name[name] for name in walk.order], errors


def check_filters(filters: Mapping[str, Expr], locators: Mapping[Expr, Locator]) -> list[str]:
    """Filters may use other filters, but not in a cycle."""
    graph = {name: sorted(bare_names(expr) & filters.keys()) for name, expr in filters.items()}
    walk = walk_graph(graph)
    errors = [
        _at(filters[cycle[0]].loc, f"filters use each other in a cycle: {' -> '.join(cycle)}")
        for cycle in walk.cycles
    ]
    too_long = _too_long(walk, "filter")
    if too_long is not None:
        errors.append(_at(filters[max(walk.chain, key=walk.chain.__getitem__)].loc, too_long))
    return errors


class _ScorecardChecker:
    """Checks the expressions and references of one scorecard."""

    def __init__(
        self,
        context: Context,
        sc: Scorecard,
        earlier: Mapping[str, str | None],
        declared: Mapping[str, Sequence[str]],
    ) -> None:
        self.context = context
        self.sc = sc
        self.earlier = earlier
        self.errors: list[str] = []
        # Declared names include definitions that had errors, so references to them are not unknown.
        self.metric_names = list(dict.fromkeys([*declared.get("metrics", ()), *(m.name for m in sc.metrics)]))
        self.score_names = list(dict.fromkeys([*declared.get("scores", ()), *(s.name for s in sc.scores)]))
        self.checked_filters: set[tuple[str, str]] = set()
        self._row_names: dict[tuple[str, str], Names] = {}

    def run(self) -> list[str]:
        complete = len(self.metric_names) == len(self.sc.metrics)  # else a broken one may read a source
        if complete and not any(isinstance(m, AggregateMetric | ConversionMetric) for m in self.sc.metrics):
            message = f"scorecard '{self.sc.name}' needs at least one metric read from a source (`from`)"
            self.errors.append(_at(self.sc.loc, message))
        formulas: dict[str, list[str]] = {}
        for metric in self.sc.metrics:
            if isinstance(metric, AggregateMetric):
                self.row_expression(metric.where, metric.source, "where", f"metric '{metric.name}'")
                self.row_expression(metric.value, metric.source, "value", f"metric '{metric.name}'")
            elif isinstance(metric, ConversionMetric):
                for step in (metric.first, metric.then):
                    self.row_expression(step.where, step.source, "where", f"metric '{metric.name}'")
            elif isinstance(metric, FormulaMetric):
                checked = self.formula(metric)
                formulas[metric.name] = sorted(checked.names)
        formula_names = set(formulas)
        graph = {name: [d for d in deps if d in formula_names] for name, deps in formulas.items()}
        walk = walk_graph(graph)
        for cycle in walk.cycles:
            loc = self.sc.metric(cycle[0]).loc
            self.errors.append(_at(loc, f"formulas use each other in a cycle: {' -> '.join(cycle)}"))
        too_long = _too_long(walk, "formula")
        if too_long is not None:
            start = max(walk.chain, key=walk.chain.__getitem__)
            self.errors.append(_at(self.sc.metric(start).loc, too_long))
        self.scores()
        for gate in self.sc.gates:
            names = Names(
                "when",
                frozenset(self.metric_names) | frozenset(self.score_names),
                "metric or score",
                kinds=self.result_kinds(),
            )
            self.errors.extend(self.check(gate.when, names))
        return self.errors

    def result_kinds(self) -> dict[str, ValueKind]:
        """Metrics and scores are numbers where formulas and gates read them (cast to DOUBLE)."""
        return dict.fromkeys([*self.metric_names, *self.score_names], "double")

    def check(self, expr: Expr, names: Names) -> list[str]:
        return check_expression(expr, names, self.context.locators.get(expr)).errors

    def row_names(self, source: str, kind: str) -> Names:
        """The names a where/value on `source` may use (cached: filters are checked once per use)."""
        key = (source, kind)
        if key not in self._row_names:
            self._row_names[key] = self._build_row_names(source, kind)
        return self._row_names[key]

    def _build_row_names(self, source: str, kind: str) -> Names:
        from chuanliu_cli.rules.integrity import row_columns, row_kinds

        columns = row_columns(source)  # with the integrity flags of the source (brushing, idle, ...)
        scorecards: dict[str, str | None] = {}
        past = True
        for name in self.context.scorecard_names:
            if name == self.sc.name:
                scorecards[name] = f"scorecard '{name}' cannot use its own results"
                past = False
            elif not past:
                scorecards[name] = f"scorecard '{name}' is evaluated after '{self.sc.name}'; move it before"
            else:
                key = self.earlier.get(name)
                if key is not None and key not in columns:
                    scorecards[name] = (
                        f"scorecard '{name}' is keyed by {key}, which is not a column of {source}"
                    )
                else:
                    scorecards[name] = None
        elsewhere = {
            m: f"; '{m}' is a metric: `{kind}` sees the columns of {source}"
            for m in self.metric_names
            if m not in columns
        }
        return Names(
            "where" if kind == "where" else "value",
            frozenset(columns),
            "column",
            f" of {source}",
            filters=frozenset(self.context.filters),
            scorecards=scorecards,
            elsewhere=elsewhere,
            vocabulary=schema.vocabulary(source),
            kinds={**dict.fromkeys(self.context.filters, "boolean"), **row_kinds(source)},
        )

    def row_expression(self, expr: Expr | None, source: str, kind: str, owner: str) -> None:
        if expr is None:
            return
        checked = check_expression(expr, self.row_names(source, kind), self.context.locators.get(expr))
        self.errors.extend(checked.errors)
        self.used_filters(checked, source, owner)

    def used_filters(self, checked: Checked, source: str, owner: str) -> None:
        """A filter is a row expression too: check it against each source it is used with."""
        pending = sorted(checked.filters, reverse=True)  # a worklist: filters may use filters, deeply
        while pending:
            name = pending.pop()
            if (name, source) in self.checked_filters:
                continue
            self.checked_filters.add((name, source))
            body = self.context.filters[name]
            inner = check_expression(body, self.row_names(source, "where"), self.context.locators.get(body))
            note = f"(filter '{name}' used on {source} by {owner})"
            self.errors.extend(_annotate(e, note) for e in inner.errors)
            pending.extend(sorted(inner.filters, reverse=True))

    def formula(self, metric: FormulaMetric) -> Checked:
        elsewhere = {s: f"; '{s}' is a score: formulas see metric names only" for s in self.score_names}
        names = Names(
            "formula", frozenset(self.metric_names), "metric", elsewhere=elsewhere, kinds=self.result_kinds()
        )
        checked = check_expression(metric.formula, names, self.context.locators.get(metric.formula))
        self.errors.extend(checked.errors)
        return checked

    def scores(self) -> None:
        metrics, scores = set(self.metric_names), set(self.score_names)
        for score in self.sc.scores:
            if score.name in metrics:
                self.errors.append(
                    _at(score.loc, f"score '{score.name}' has the name of a metric; rename one")
                )
            for part in score.parts:
                if part.metric is not None and part.metric not in metrics:
                    self.errors.append(_at(part.loc, self.unknown("metric", part.metric, metrics, scores)))
                if part.score is not None and part.score not in scores:
                    self.errors.append(_at(part.loc, self.unknown("score", part.score, scores, metrics)))
            req = score.requires
            if req is not None and req.metric not in metrics | scores:
                hint = suggest(req.metric, sorted(metrics | scores))
                self.errors.append(_at(req.loc, f"unknown metric or score '{req.metric}'{hint}"))

    @staticmethod
    def unknown(kind: str, name: str, own: Iterable[str], other: Iterable[str]) -> str:
        if name in set(other):
            other_kind = "score" if kind == "metric" else "metric"
            return f"'{name}' is a {other_kind}; write `{other_kind}: {name}`"
        return f"unknown {kind} '{name}'{suggest(name, sorted(own))}"


def check_scorecard(
    context: Context,
    sc: Scorecard,
    earlier: Mapping[str, str | None],
    declared: Mapping[str, Sequence[str]] | None = None,
) -> list[str]:
    """Every cross-reference error of `sc`.

    `earlier` maps the scorecards defined before it to their keys (None if that scorecard is broken);
    `declared` lists the metric and score names written in the file, broken definitions included.
    """
    return _ScorecardChecker(context, sc, earlier, declared or {}).run()
