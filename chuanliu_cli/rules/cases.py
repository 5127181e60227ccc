"""Ruleset test cases (`chuanliu rules test`, SPEC §10): the cases YAML read into typed cases, every error
located as `FILE:LINE:COL: message`, all errors of a file at once.

A case file is `<ruleset>.cases.yaml` beside the ruleset:

    period: 2023-05                  # default of every case (optional)
    scorecard: merchant              # default of every case (optional; else the first scorecard)
    cases:
      - name: steady merchant reaches S
        given: {metrics: {live_days: 26, ...}}     # or rows: {orders: [...], livestreams: [...], ...}
        expect: {eligible: true, tier: S, total: {between: [80, 90]}}

A case gives either metric values (`given.metrics`: scored through the scoring code, no data) or rows of
data (`given.orders`, `.reviews`, `.livestreams`, `.shops`: loaded like `load` and scored like `score`).
What a case cannot test honestly is refused here, before anything runs:
- a metric case must give every metric its scorecard's gates and scores read (a value or `null`): a
  metric left out would silently be NULL;
- a metric case holds one entity, so it cannot expect a `grant` (a share of the pool among everyone) nor
  test a scorecard that normalizes by `rank` (a percent rank among one is always 1; refused by
  scoring/casetests.py, which knows which scorecards rank): use rows for those.

This module reads and checks the file against the ruleset's model; scoring/casetests.py runs the cases.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from chuanliu_cli import schema
from chuanliu_cli.errors import RulesetError
from chuanliu_cli.rules.model import Loc, Ruleset, Scorecard
from chuanliu_cli.rules.sqlsubset import suggest
from chuanliu_cli.rules.yamlnodes import NodeReader, describe

#: Largest case file read (a case file is a few pages of YAML).
MAX_CASES_BYTES = 2_000_000
#: The tables a data case may give rows of.
TABLES = ("orders", "reviews", "livestreams", "shops")
TOP_KEYS = ("period", "scorecard", "cases")
CASE_KEYS = ("name", "period", "scorecard", "entity", "given", "expect")
EXPECT_KEYS = ("eligible", "failed_gates", "tier", "total", "scores", "grant", "missing")


class CaseFileError(RulesetError):
    """The case file is invalid (exit 3, like an invalid ruleset): every `FILE:LINE:COL: message`."""

    def __init__(self, errors: list[str], hint: str | None = None) -> None:
        super().__init__(errors, hint or "fix the case file and run `chuanliu rules test` again")


@dataclass(frozen=True)
class Between:
    """An expected number: `low ≤ actual ≤ high` (a plain number is low = high), on values rounded to 6
    decimals as gates and tiers compare."""

    low: float
    high: float

    def text(self) -> str:
        """How the expectation is shown: the number, or `between [a, b]`."""
        return f"{self.low:g}" if self.low == self.high else f"between [{self.low:g}, {self.high:g}]"


@dataclass(frozen=True)
class Expected:
    """One expectation of a case: its value and where it is written."""

    value: Any
    loc: Loc


@dataclass(frozen=True)
class MissingGate:
    """`missing: {gate: {metric: amount}}` of one gate: each metric's expected amount (None: the metric has
    no value) and where the gate and each metric are written."""

    loc: Loc
    amounts: dict[str, tuple[float | None, Loc]]


@dataclass(frozen=True)
class Row:
    """A row of a data case: canonical column → the text as written (None for null), and its place."""

    values: dict[str, str | None]
    loc: Loc


@dataclass(frozen=True)
class Case:
    """One test case: what is given, for which scorecard and period, and what is expected."""

    name: str
    loc: Loc
    scorecard: str
    period: str
    period_loc: Loc
    entity: str | None
    entity_loc: Loc | None
    metrics: dict[str, float | None] | None  # a metric case
    rows: dict[str, tuple[Row, ...]] | None  # a data case
    expect: dict[str, Expected] = field(default_factory=dict)
    given_loc: Loc | None = None  # where `metrics:` or the first table of rows is written

    @property
    def kind(self) -> str:
        """`metrics` or `data`."""
        return "metrics" if self.metrics is not None else "data"


@dataclass(frozen=True)
class CaseFile:
    """The cases of one file, checked against a ruleset."""

    path: str
    cases: tuple[Case, ...]


def default_cases_path(rules_path: str | Path) -> Path:
    """`<ruleset>.cases.yaml` beside the ruleset (rules/chuanliu.yaml → rules/chuanliu.cases.yaml)."""
    path = Path(rules_path)
    return path.with_name(f"{path.stem}.cases.yaml")


def load_cases(path: str | Path, ruleset: Ruleset) -> CaseFile:
    """Read and check the case file at `path` against `ruleset`; CaseFileError lists every problem."""
    shown = str(path)
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_CASES_BYTES + 1)
    except OSError as e:
        raise CaseFileError(
            [f"{shown}:1:1: cannot read the case file: {e.strerror or e}"],
            hint=f"write the cases in {shown}, or give another file with --cases",
        ) from None
    if len(data) > MAX_CASES_BYTES:
        raise CaseFileError([f"{shown}:1:1: case file is larger than {MAX_CASES_BYTES:,} bytes"])
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = data[: e.start].count(b"\n") + 1
        raise CaseFileError([f"{shown}:{line}:1: case file is not UTF-8 (byte {e.start})"]) from None
    return parse_cases(text, shown, ruleset)


def parse_cases(text: str, path: str, ruleset: Ruleset) -> CaseFile:
    """The cases of `text` (read from `path`, used in locations), checked against `ruleset`."""
    reader = _CaseReader(path, text, ruleset)
    cases = reader.read()
    if reader.errors or cases is None:
        raise CaseFileError(reader.sorted_errors())
    return CaseFile(path, tuple(cases))


def needed_metrics(sc: Scorecard) -> set[str]:
    """The metrics a scorecard's scores and gates read (those a metric case must give)."""
    from chuanliu_cli.rules.expressions import bare_names

    metrics = {m.name for m in sc.metrics}
    needed = {p.metric for s in sc.scores for p in s.parts if p.metric is not None}
    needed |= {s.requires.metric for s in sc.scores if s.requires is not None}
    for gate in sc.gates:
        needed |= set(bare_names(gate.when))
    if sc.rank_by in metrics:
        needed.add(sc.rank_by)
    return needed & metrics


class _CaseReader(NodeReader):
    def __init__(self, path: str, text: str, ruleset: Ruleset) -> None:
        super().__init__(path, text)
        self.ruleset = ruleset
        self.names = [sc.name for sc in ruleset.scorecards]

    def read(self) -> list[Case] | None:
        root = self.compose()
        if root is None:
            if not self.errors:
                self.error(Loc(self.path, 1, 1), "the case file is empty; it starts with `cases:`")
            return None
        top = self.mapping(root, "the case file", TOP_KEYS, ("cases",))
        if top is None:
            return None
        period = scorecard = None
        if "period" in top:
            period = (self.string(top["period"][1], "period"), self.loc(top["period"][1]))
        if "scorecard" in top:
            scorecard = self.scorecard_name(top["scorecard"][1])
        if "cases" not in top:
            return None
        node = top["cases"][1]
        if not isinstance(node, SequenceNode) or not node.value:
            self.error(node, f"cases must be a non-empty list of cases, got {describe(node)}")
            return None
        cases: list[Case] = []
        seen: dict[str, Loc] = {}
        for item in node.value:
            case = self.case(item, period, scorecard)
            if case is None:
                continue
            if case.name in seen:
                self.error(
                    case.loc, f"duplicate case name '{case.name}' (first at line {seen[case.name].line})"
                )
                continue
            seen[case.name] = case.loc
            cases.append(case)
        return cases

    def scorecard_name(self, node: Node) -> str | None:
        name = self.string(node, "scorecard")
        if name is not None and name not in self.names:
            self.error(node, f"unknown scorecard '{name}'{suggest(name, self.names, list_all=True)}")
            return None
        return name

    def case(
        self, node: Node, period: tuple[str | None, Loc] | None, default_scorecard: str | None
    ) -> Case | None:
        found = self.mapping(node, "a case", CASE_KEYS, ("name", "given", "expect"))
        if found is None or not {"name", "given", "expect"} <= found.keys():
            return None
        name = self.string(found["name"][1], "case name")
        if name is None:
            return None
        what = f"case '{name}'"
        loc = self.loc(node)
        scorecard = default_scorecard or self.names[0]
        if "scorecard" in found:
            scorecard = self.scorecard_name(found["scorecard"][1]) or ""
            if not scorecard:
                return None
        sc = self.ruleset.scorecard(scorecard)
        if "period" in found:
            period = (self.string(found["period"][1], "period"), self.loc(found["period"][1]))
        if period is None:
            self.error(node, f"{what} has no period; add `period: 2023-05` to it or at the top of the file")
            return None
        period_text, period_loc = period
        if period_text is None:
            return None
        if not self.period_ok(period_text, period_loc):
            return None
        entity = entity_loc = None
        if "entity" in found:
            entity = self.string(found["entity"][1], "entity")
            entity_loc = self.loc(found["entity"][1])
        given = self.mapping(found["given"][1], f"given of {what}", ("metrics", *TABLES))
        if given is None:
            return None
        metrics: dict[str, float | None] | None = None
        rows: dict[str, tuple[Row, ...]] | None = None
        if "metrics" in given and len(given) > 1:
            other = next(k for k in given if k != "metrics")
            self.error(
                given[other][0],
                f"{what} gives metrics and rows of {other}: a case gives metric values or rows, not both",
            )
            return None
        if not given:
            self.error(found["given"][1], f"given of {what} needs metrics or rows (orders, reviews, ...)")
            return None
        if "metrics" in given:
            # (a scorecard that ranks by population cannot be tested this way: scoring/casetests.py says so)
            metrics = self.metrics(given["metrics"][1], sc, what)
        else:
            read = {table: self.rows(value, table, what) for table, (_key, value) in given.items()}
            if all(got is not None for got in read.values()):
                rows = {table: got for table, got in read.items() if got is not None}
        # the expectations are read (and their errors reported) even when what is given has errors
        expect = self.expect(found["expect"][1], sc, what, "metrics" in given)
        if expect is None or (metrics is None and rows is None):
            return None
        given_loc = self.loc(next(iter(given.values()))[0])
        return Case(
            name,
            loc,
            scorecard,
            period_text,
            period_loc,
            entity,
            entity_loc,
            metrics,
            rows,
            expect,
            given_loc,
        )

    def period_ok(self, text: str, loc: Loc) -> bool:
        from chuanliu_cli.errors import UsageError
        from chuanliu_cli.periods import parse_period

        try:
            parse_period(text, self.ruleset.period)
        except UsageError as exc:
            self.error(loc, f"{exc.message}" + (f"; {exc.hint}" if exc.hint else ""))
            return False
        return True

    def metrics(self, node: Node, sc: Scorecard, what: str) -> dict[str, float | None] | None:
        known = [m.name for m in sc.metrics]
        found = self.mapping(node, f"metrics of {what}", ())
        if found is None:
            return None
        values: dict[str, float | None] = {}
        ok = True
        for name, (key, value) in found.items():
            if name not in known:
                self.error(
                    key, f"{what}: unknown metric '{name}' of scorecard {sc.name}{suggest(name, known)}"
                )
                ok = False
                continue
            if self.is_null(value):
                values[name] = None  # written null: the metric has no value (e.g. no reviews to average)
                continue
            number = self.number(value, f"metric {name}")
            if number is None:
                ok = False
                continue
            values[name] = number
        lacking = [m for m in known if m in needed_metrics(sc) and m not in found]
        if lacking:
            shown = ", ".join(lacking[:8]) + (f" and {len(lacking) - 8} more" if len(lacking) > 8 else "")
            self.error(
                node,
                f"{what} lacks metric{'s' if len(lacking) > 1 else ''} {shown}, read by the gates or scores "
                f"of {sc.name}: give each a value, or null for no value",
            )
            ok = False
        return values if ok else None

    def rows(self, node: Node, table: str, what: str) -> tuple[Row, ...] | None:
        if not isinstance(node, SequenceNode):
            self.error(node, f"{table} of {what} must be a list of rows, got {describe(node)}")
            return None
        columns = [c.name for c in schema.TABLES[table].columns if not c.derived]
        out = []
        ok = True
        for item in node.value:
            found = self.mapping(item, f"a row of {table} in {what}", ())
            if found is None:
                ok = False
                continue
            values: dict[str, str | None] = {}
            for name, (key, value) in found.items():
                if name not in columns:
                    self.error(
                        key,
                        f"{table} has no column '{name}'{suggest(name, columns, list_all=True)} "
                        "(cases use the canonical column names)",
                    )
                    ok = False
                    continue
                if isinstance(value, ScalarNode):
                    # the text as written: ids keep their zeros, times stay as the export would hold them
                    values[name] = None if self.is_null(value) else str(value.value)
                else:
                    self.error(value, f"{table}.{name} must be a single value, got {describe(value)}")
                    ok = False
            out.append(Row(values, self.loc(item)))
        return tuple(out) if ok else None

    def expect(self, node: Node, sc: Scorecard, what: str, metric_case: bool) -> dict[str, Expected] | None:
        found = self.mapping(node, f"expect of {what}", EXPECT_KEYS)
        if found is None:
            return None
        if not found:
            self.error(node, f"expect of {what} is empty; say what the case expects (eligible, tier, ...)")
            return None
        out: dict[str, Expected] = {}
        gate_ids = [g.id for g in sc.gates]
        tiers = [t.name for t in sc.tiers]
        before = len(self.errors)
        for name, (key, value) in found.items():
            loc = self.loc(value)
            if name == "eligible":
                got = self.boolean(value, "eligible")
                if got is not None:
                    out[name] = Expected(got, loc)
            elif name == "failed_gates":
                ids = self.string_list(value, "failed_gates")
                if ids is not None:
                    for gid, item in zip(ids, value.value, strict=True):
                        if gid not in gate_ids:
                            self.error(
                                item,
                                f"unknown gate '{gid}' of {sc.name}{suggest(gid, gate_ids, list_all=True)}",
                            )
                    out[name] = Expected(tuple(ids), loc)
            elif name == "tier":
                if self.is_null(value):
                    out[name] = Expected(None, loc)
                else:
                    tier = self.string(value, "tier")
                    if tier is not None and tier not in tiers:
                        self.error(
                            value, f"unknown tier '{tier}' of {sc.name}{suggest(tier, tiers, list_all=True)}"
                        )
                    out[name] = Expected(tier, loc)
            elif name == "total":
                between = self.between(value, f"total ({sc.rank_by})")
                if between is not None:
                    out[name] = Expected(between, loc)
            elif name == "scores":
                scores = self.scores(value, sc)
                if scores is not None:
                    out[name] = Expected(scores, loc)
            elif name == "grant":
                if metric_case:
                    self.error(
                        key,
                        f"{what}: a metric case holds one entity, and a grant is a share of the pool among "
                        "every eligible entity: give rows of the entities that share the pool",
                    )
                    continue
                if self.is_null(value):
                    out[name] = Expected(None, loc)
                    continue
                grant = self.integer(value, "grant")
                if grant is not None:
                    out[name] = Expected(grant, loc)
            elif name == "missing":
                missing = self.missing(value, sc)
                if missing is not None:
                    out[name] = Expected(missing, loc)
        return out if len(self.errors) == before else None

    def string_list(self, node: Node, what: str) -> list[str] | None:
        if not isinstance(node, SequenceNode):
            self.error(node, f"{what} must be a list, got {describe(node)}")
            return None
        items = [self.string(item, what) for item in node.value]
        return None if any(i is None for i in items) else [str(i) for i in items]

    def between(self, node: Node, what: str) -> Between | None:
        if isinstance(node, MappingNode):
            found = self.mapping(node, what, ("between",), ("between",))
            if found is None or "between" not in found:
                return None
            pair = self.numbers(found["between"][1], "between", 2)
            if pair is None:
                return None
            low, high = pair
            if low > high:
                self.error(found["between"][1], f"between [{low:g}, {high:g}]: the low end comes first")
                return None
            return Between(low, high)
        number = self.number(node, f"{what} (a number or {{between: [low, high]}})")
        return None if number is None else Between(number, number)

    def scores(self, node: Node, sc: Scorecard) -> dict[str, Between | None] | None:
        known = [s.name for s in sc.scores]
        found = self.mapping(node, "scores", ())
        if found is None:
            return None
        out: dict[str, Between | None] = {}
        for name, (key, value) in found.items():
            if name not in known:
                self.error(key, f"unknown score '{name}' of {sc.name}{suggest(name, known, list_all=True)}")
                continue
            if self.is_null(value):
                out[name] = None
                continue
            between = self.between(value, f"score {name}")
            if between is not None:
                out[name] = between
        return out

    def missing(self, node: Node, sc: Scorecard) -> dict[str, MissingGate] | None:
        """Gate → metric → amount. Whether each gate has the `metric op constant` form that an amount
        needs is checked by scoring/casetests.py (the comparisons are decomposed there)."""
        gate_ids = [g.id for g in sc.gates]
        found = self.mapping(node, "missing", ())
        if found is None:
            return None
        out: dict[str, MissingGate] = {}
        for gid, (key, value) in found.items():
            if gid not in gate_ids:
                self.error(key, f"unknown gate '{gid}' of {sc.name}{suggest(gid, gate_ids, list_all=True)}")
                continue
            amounts = self.mapping(value, f"missing of gate {gid}", ())
            if amounts is None:
                continue
            if not amounts:
                self.error(value, f"missing of gate {gid} is empty; give metric: amount")
                continue
            got: dict[str, tuple[float | None, Loc]] = {}
            for name, (mkey, mvalue) in amounts.items():
                if self.is_null(mvalue):
                    got[name] = (None, self.loc(mkey))  # the metric has no value: no amount closes it
                    continue
                amount = self.number(mvalue, f"missing {name}")
                if amount is not None:
                    got[name] = (amount, self.loc(mkey))
            out[gid] = MissingGate(self.loc(key), got)
        return out
