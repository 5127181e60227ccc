"""Read a ruleset YAML file into the frozen model, every error located as `FILE:LINE:COL` (SPEC §4).

The YAML layer (safe composition, located typed reads) is `yamlnodes.py`; this module maps the file's
structure onto the model; names inside expressions, references and cycles are checked by `checks.py`.
"""

from __future__ import annotations

import hashlib
import math
import re
import zoneinfo
from pathlib import Path
from typing import Literal, cast

from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from chuanliu_cli import schema
from chuanliu_cli.errors import RulesetError
from chuanliu_cli.rules import checks, integrity
from chuanliu_cli.rules.expressions import suggest
from chuanliu_cli.rules.files import MAX_FILE_BYTES, read_ruleset_bytes
from chuanliu_cli.rules.files import default_ruleset_path as default_ruleset_path  # (re-exported)
from chuanliu_cli.rules.model import (
    AggregateMetric,
    Budget,
    ConversionMetric,
    ConversionStep,
    Effective,
    Expr,
    FormulaMetric,
    Gate,
    Integrity,
    KeyFrom,
    Loc,
    Metric,
    Normalizer,
    ParamUse,
    PeriodKind,
    Requires,
    Reward,
    Ruleset,
    Score,
    Scorecard,
    ScorePart,
    Source,
    Tier,
    Tunable,
    TunableKind,
    Window,
)
from chuanliu_cli.rules.yamlnodes import NodeReader, describe

#: Largest ruleset file read; a ruleset is a page of YAML, not data.
#: Largest N in an `Nd` window (ten years) and in `Nm`/`Nw`.
MAX_WINDOW_DAYS = 3660
MAX_WINDOW_PERIODS = 520

_WINDOW = re.compile(r"^(\d+)([dmw])$")

TOP_KEYS = (
    "version",
    "name",
    "description",
    "assumptions",
    "timezone",
    "period",
    "effective",
    "params",
    "filters",
    "scorecards",
    "integrity",
)
SCORECARD_KEYS = ("title", "key", "key_from", "metrics", "scores", "rank_by", "gates", "tiers", "reward")
KEY_FROM_KEYS = ("table", "on")
METRIC_KEYS = ("label", "from", "where", "window", "value", "formula", "conversion")
CONVERSION_KEYS = ("key", "first", "then", "after")
STEP_KEYS = ("from", "where", "window")
SCORE_KEYS = ("label", "scale", "requires", "parts")
PART_KEYS = ("metric", "score", "weight", "normalize", "missing")
REQUIRES_KEYS = ("metric", "at_least")
GATE_KEYS = ("id", "when", "reason", "missing")
TIER_KEYS = ("name", "min_score", "multiplier")
REWARD_KEYS = ("pool", "budget", "unit", "cap", "min_grant")
BUDGET_KEYS = ("amount", "per", "pacing")
EFFECTIVE_KEYS = ("from", "to")
NORMALIZERS = ("linear", "log", "bands", "rank")
SOURCES: tuple[str, ...] = tuple(schema.TABLES)
DEFAULT_TIMEZONE = "Asia/Shanghai"
_PERIOD = Window("period", 1, "period")  # the default window


def load_ruleset(path: str | Path) -> Ruleset:
    """Read and check the ruleset file at `path`; RulesetError lists every problem found."""
    return parse_ruleset_bytes(read_ruleset_bytes(path), str(path))


def parse_ruleset(text: str, path: str) -> Ruleset:
    """Check ruleset `text` (as read from `path`, used in error locations) and build the model."""
    return parse_ruleset_bytes(text.encode("utf-8"), path)


def parse_ruleset_bytes(data: bytes, path: str) -> Ruleset:
    """Check a ruleset file's bytes (as read from `path`, used in error locations) and build the model."""
    if len(data) > MAX_FILE_BYTES:
        raise RulesetError([f"{path}:1:1: ruleset file is larger than {MAX_FILE_BYTES:,} bytes"])
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = data[: e.start].count(b"\n") + 1
        raise RulesetError(
            [f"{path}:{line}:1: ruleset file is not UTF-8 (byte {e.start})"], hint="save the file as UTF-8"
        ) from None
    reader = _Reader(path, text)
    ruleset = reader.read(hashlib.sha256(data).hexdigest())
    if reader.errors or ruleset is None:
        raise RulesetError(reader.sorted_errors(), hint="fix the ruleset and run `chuanliu rules check`")
    return ruleset


class _Reader(NodeReader):
    """Reads a ruleset: the file's structure into the model, with cross-checks from `checks`."""

    def __init__(self, path: str, text: str) -> None:
        super().__init__(path, text)
        # Names declared in each scorecard, even those whose definition has errors: a reference to
        # them is not reported again as unknown.
        self.declared: dict[str, dict[str, list[str]]] = {}
        self.warnings: list[str] = []
        # named parameters, the gates reading them and the tunable values (rules/tuning.py)
        self.params: dict[str, float] = {}
        self.param_uses: list[ParamUse] = []
        self.tunables: list[Tunable] = []
        self.at: dict[str, str] = {}  # the scorecard and score being read, for the paths of tunables
        self.part_refs: list[str] = []  # the names read by the parts of that score so far
        self.key_from_on: str | None = None  # key_from's `on` in the scorecard being read (groups)

    def read(self, sha256: str) -> Ruleset | None:
        root = self.compose()
        if root is None:
            if not self.errors:
                self.error(Loc(self.path, 1, 1), "the ruleset file is empty; it starts with `version: 1`")
            return None
        top = self.mapping(root, "the ruleset", TOP_KEYS, ("version", "name", "scorecards"))
        if top is None:
            return None
        version = 1
        if "version" in top:
            node = top["version"][1]
            got = self.integer(node, "version")
            if got is not None and got != 1:
                self.error(node, f"unsupported ruleset version {got}; this chuanliu reads version 1")
        name = self.string(top["name"][1], "name") if "name" in top else None
        description = self.optional_text(top, "description")
        assumptions = self.optional_text(top, "assumptions")
        timezone = DEFAULT_TIMEZONE
        if "timezone" in top:
            timezone = self.timezone(top["timezone"][1]) or DEFAULT_TIMEZONE
        period: PeriodKind = "month"
        if "period" in top:
            period = cast(PeriodKind, self.choice(top["period"][1], "period", ("month", "week")) or "month")
        effective = None
        if "effective" in top and not self.is_null(top["effective"][1]):
            effective = self.effective(top["effective"][1], period)
        filters: dict[str, Expr] = {}
        if "filters" in top:
            filters = self.filters(top["filters"][1])
        if "params" in top and not self.is_null(top["params"][1]):
            self.read_params(top["params"][1])
        scorecards: list[Scorecard] = []
        if "scorecards" in top:
            entries = self.entries(top["scorecards"][1], "scorecards")
            if not entries and isinstance(top["scorecards"][1], MappingNode):
                self.error(top["scorecards"][1], "scorecards is empty; define at least one scorecard")
            context = checks.Context(
                filters=filters,
                scorecard_names=tuple(str(k.value) for k, _ in entries),
                locators=self.locators,
            )
            earlier: dict[str, str | None] = {}
            for key, value in entries:
                sc = self.scorecard(key, value, period)
                if sc is not None:
                    declared = self.declared.get(sc.name, {})
                    self.add_formatted(checks.check_scorecard(context, sc, earlier, declared))
                    scorecards.append(sc)
                # (a later scorecard joins a grouped one through the group's `on` column: rules/compiler)
                earlier[str(key.value)] = sc.row_key if sc is not None else None
        self.add_formatted(checks.check_filters(filters, self.locators))
        self.tuning_warnings(top)
        checked_integrity = Integrity()  # the thresholds of the flags (rules/integrity.py; §11 defaults)
        if "integrity" in top and not self.is_null(top["integrity"][1]):
            checked_integrity = integrity.read_integrity(self, top["integrity"][1])
        if self.errors or name is None:
            return None
        return Ruleset(
            version=version,
            name=name,
            description=description,
            assumptions=assumptions,
            timezone=timezone,
            period=period,
            filters=filters,
            scorecards=tuple(scorecards),
            path=self.path,
            sha256=sha256,
            text=self.text,
            warnings=tuple(self.warnings),
            params=dict(self.params),
            param_uses=tuple(self.param_uses),
            tunables=tuple(self.tunables),
            effective=effective,
            integrity=checked_integrity,
        )

    # -- named parameters and tunable values (SPEC §10, rules/tuning.py) -------------------------------

    def read_params(self, node: Node) -> None:
        """`params: {name: number | {tune: [low, high]}}`: values the gates read as params.<name>."""
        for key, value in self.entries(node, "params"):
            name = self.name(key, "parameter name")
            got = self.tunable_number(value, f"parameter '{key.value}'", f"params.{key.value}", "param")
            if name is not None and got is not None:
                self.params[name] = got

    def tunable_number(
        self, node: Node, what: str, path: str, kind: TunableKind, integer: bool = False
    ) -> float | None:
        """A number, or `{tune: [low, high]}`: then the tunable is recorded and `low` holds its place."""
        if not (
            isinstance(node, MappingNode)
            and len(node.value) == 1
            and isinstance(node.value[0][0], ScalarNode)
            and node.value[0][0].value == "tune"
        ):
            if integer:
                whole = self.integer(node, what)
                return None if whole is None else float(whole)
            return self.number(node, what)
        args = node.value[0][1]
        if integer:
            if not isinstance(args, SequenceNode) or len(args.value) != 2:
                self.error(args, f"tune of {what} takes [low, high], got {describe(args)}")
                return None
            ints = [self.integer(item, f"tune of {what}") for item in args.value]
            pair: tuple[float, ...] | None = None
            if None not in ints:
                pair = (float(cast(int, ints[0])), float(cast(int, ints[1])))
        else:
            pair = self.numbers(args, f"tune of {what}", 2)
        if pair is None:
            return None
        low, high = pair
        if not low < high:
            self.error(args, f"tune of {what} needs low < high, got [{low:g}, {high:g}]")
            return None
        if kind == "weight" and low <= 0:
            self.error(args, f"tune of {what}: a weight must be greater than 0, got low {low:g}")
            return None
        if kind in ("pool", "cap") and low < (1 if kind == "cap" else 0):
            self.error(args, f"tune of {what} must be at least {1 if kind == 'cap' else 0}, got {low:g}")
            return None
        # a block mapping's end mark is the next key's line: the node ends with its [low, high]
        end = node.end_mark.index if node.flow_style else args.end_mark.index
        scorecard = None if kind == "param" else self.at.get("scorecard")
        span = (node.start_mark.index, end)
        self.tunables.append(Tunable(path, kind, low, high, self.loc(node), span, scorecard, integer))
        return low

    def tuning_warnings(self, top: dict[str, tuple[ScalarNode, Node]]) -> None:
        """Parameters no gate reads, and the reminder that tunable values score nothing until calibrated."""
        read = {name for use in self.param_uses for name in use.params}
        if "params" in top and isinstance(top["params"][1], MappingNode):
            for key, _value in top["params"][1].value:
                if isinstance(key, ScalarNode) and key.value in self.params and key.value not in read:
                    self.warnings.append(f"{self.loc(key)}: parameter '{key.value}' is not read by any gate")
        if self.tunables:
            self.warnings.append(
                f"{self.tunables[0].loc}: {len(self.tunables)} tunable value(s): this ruleset scores nothing "
                "until `chuanliu rules calibrate` writes one with numbers"
            )

    def tuned(self, prefix: str) -> bool:
        """Whether a tunable value was read whose path starts with `prefix`."""
        return any(t.path.startswith(prefix) for t in self.tunables)

    def bind_params(self, when: Expr, gate: str) -> Expr:
        """The gate condition with each params.<name> replaced by the parameter's value (rules/tuning)."""
        from chuanliu_cli.rules.expressions import default_locator
        from chuanliu_cli.rules.tuning import bind, param_references

        refs = param_references(when.text)
        if not refs:
            return when
        locate = self.locators.get(when) or default_locator(when)
        unknown = [(start, name) for start, _end, name in refs if name not in self.params]
        for start, name in unknown:
            line, col = locate(start)
            hint = suggest(name, list(self.params)) or "; declare it in the ruleset's params: section"
            self.error(Loc(self.path, line, col), f"unknown parameter '{name}'{hint}")
        if unknown:
            return when
        text, origin = bind(when.text, self.params)
        bound = Expr(text, when.loc)
        self.locators[bound] = lambda offset: locate(origin[max(0, min(offset, len(origin) - 1))])
        names = tuple(dict.fromkeys(name for _s, _e, name in refs))
        self.param_uses.append(ParamUse(str(self.at.get("scorecard")), gate, when, names))
        return bound

    def timezone(self, node: Node) -> str | None:
        text = self.string(node, "timezone")
        if text is None:
            return None
        try:
            zoneinfo.ZoneInfo(text)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            hint = suggest(text, sorted(zoneinfo.available_timezones()))
            self.error(node, f"unknown timezone '{text}'{hint}")
            return None
        return text

    def filters(self, node: Node) -> dict[str, Expr]:
        out: dict[str, Expr] = {}
        for key, value in self.entries(node, "filters"):
            name = self.name(key, "filter name")
            expr = self.expr(value, f"filter '{key.value}'")
            if name is None or expr is None:
                continue
            owners = [t for t in schema.TABLES if name in integrity.row_columns(t)]
            if owners:
                self.error(key, f"filter '{name}' has the name of a column of {owners[0]}; rename the filter")
                continue
            out[name] = expr
        return out

    def scorecard(self, key: ScalarNode, node: Node, period: PeriodKind) -> Scorecard | None:
        name = self.name(key, "scorecard name")
        what = f"scorecard '{key.value}'"
        found = self.mapping(node, what, SCORECARD_KEYS, ("key", "metrics"))
        if found is None or name is None:
            return None
        self.at["scorecard"] = name
        entity_key = self.name(found["key"][1], "key") if "key" in found else None
        key_from = None
        if "key_from" in found and not self.is_null(found["key_from"][1]):
            key_from = self.key_from(found["key_from"][1], found.get("key"), entity_key)
        # the sources' rows carry key_from's `on`, not the key (SPEC §9 groups)
        self.key_from_on = key_from.on if key_from is not None else None
        row_key = self.key_from_on or entity_key
        if "key_from" in found and key_from is None:
            row_key = None  # a broken key_from is reported already: its sources are not checked for a key
        title = self.optional_text(found, "title")
        metrics: list[Metric] = []
        declared: dict[str, list[str]] = {"metrics": [], "scores": []}
        if "metrics" in found:
            for mkey, mnode in self.entries(found["metrics"][1], f"metrics of {what}"):
                declared["metrics"].append(str(mkey.value))
                if key_from is not None and mkey.value == entity_key:
                    self.error(mkey, f"metric '{entity_key}' has the name of the scorecard's key; rename it")
                metric = self.metric(mkey, mnode, row_key, period)
                if metric is not None:
                    metrics.append(metric)
        scores: list[Score] = []
        if "scores" in found:
            for skey, snode in self.entries(found["scores"][1], f"scores of {what}"):
                declared["scores"].append(str(skey.value))
                score = self.score(skey, snode)
                if score is not None:
                    scores.append(score)
        self.declared[name] = declared
        gates = self.gates(found["gates"][1], what) if "gates" in found else []
        tiers = self.tiers(found["tiers"][1], what) if "tiers" in found else []
        reward = None
        if "reward" in found and not self.is_null(found["reward"][1]):
            reward = self.reward(found["reward"][1], what)
        known = declared["scores"] + declared["metrics"]
        rank_by = "total"
        if "rank_by" in found:
            rank_by = self.string(found["rank_by"][1], "rank_by") or "total"
            if rank_by not in known:
                hint = suggest(rank_by, known) or "; rank_by names a score or a metric"
                self.error(found["rank_by"][1], f"unknown score or metric '{rank_by}'{hint}")
        elif "total" not in known:
            self.error(key, f"{what} is missing 'rank_by' (it has no score named total)")
        ordered, errors = checks.order_scores(scores)
        self.add_formatted(errors)
        self.unreachable_tiers(what, tiers, scores, rank_by)
        if entity_key is None:
            return None
        return Scorecard(
            name=name,
            title=title,
            key=entity_key,
            metrics=tuple(metrics),
            scores=tuple(ordered),
            rank_by=rank_by,
            gates=tuple(gates),
            # (listed order is min_score descending; a tunable min_score keeps its place until calibrated)
            tiers=tuple(tiers if self.tuned(f"{name}.tiers.") else sorted(tiers, key=lambda t: -t.min_score)),
            reward=reward,
            loc=self.loc(key),
            key_from=key_from,
        )

    def key_from(
        self, node: Node, key_node: tuple[ScalarNode, Node] | None, entity_key: str | None
    ) -> KeyFrom | None:
        """`key_from: {table: shops, on: shop_id}` (SPEC §9 groups): the key is a column of `table`, found
        through `on`, a column of `table` (its primary key: one row each) and of every source used."""
        found = self.mapping(node, "key_from", KEY_FROM_KEYS, KEY_FROM_KEYS)
        if found is None or len(found) < 2:
            return None
        table = self.string(found["table"][1], "key_from table")
        on = self.name(found["on"][1], "key_from on")
        if table is None or on is None:
            return None
        if table not in schema.TABLES:
            hint = suggest(table, list(schema.TABLES)) or "; key_from reads shops"
            self.error(found["table"][1], f"unknown table '{table}'{hint}")
            return None
        # one row per `on` value, so that a source row meets at most one: the optional dimension table
        keyed = [t.name for t in schema.TABLES.values() if t.time_column is None]
        if table not in keyed:
            self.error(
                found["table"][1],
                f"key_from reads a table with one row per key, not {table}; use {' or '.join(keyed)}",
            )
            return None
        columns = schema.TABLES[table].names
        bad = False
        if entity_key is not None and entity_key not in columns:
            where = key_node[1] if key_node is not None else node
            self.error(
                where,
                f"the scorecard's key '{entity_key}' is not a column of {table} (key_from); "
                f"{table} has: {', '.join(columns)}",
            )
            bad = True
        if on != schema.TABLES[table].key:
            detail = "a column" if on in columns else "not a column"
            self.error(
                found["on"][1],
                f"key_from on '{on}' is {detail} of {table}; join on its key: on: {schema.TABLES[table].key}",
            )
            bad = True
        return None if bad else KeyFrom(table, on, self.loc(node))

    def window(self, node: Node, period: PeriodKind, source: str | None) -> Window | None:
        text = self.string(node, "window")
        if text is None:
            return None
        if source == "shops":
            if text != "period":
                self.error(node, "shops has no time column: a window does not apply to it")
            return _PERIOD
        if text in ("period", "previous"):
            return Window(cast(Literal["period", "previous"], text), 1, text)
        m = _WINDOW.match(text)
        if m is None:
            hint = suggest(text, ("period", "previous", "90d", "3m" if period == "month" else "4w"))
            self.error(node, f"unknown window '{text}'{hint} (period, previous, Nd, N{period[0]})")
            return None
        n, unit = int(m.group(1)), m.group(2)
        if n < 1:
            self.error(node, f"window '{text}' must cover at least one day or period")
            return None
        if unit == "d":
            if n > MAX_WINDOW_DAYS:
                self.error(node, f"window '{text}' is longer than {MAX_WINDOW_DAYS} days")
                return None
            return Window("days", n, text)
        needed = "month" if unit == "m" else "week"
        if needed != period:
            self.error(
                node,
                f"window '{text}' counts {needed}s but the ruleset's period is {period}; "
                f"write '{n}{period[0]}' or days ('{n * (30 if unit == 'm' else 7)}d')",
            )
            return None
        if n > MAX_WINDOW_PERIODS:
            self.error(node, f"window '{text}' is longer than {MAX_WINDOW_PERIODS} periods")
            return None
        return Window("periods", n, text)

    def source(self, node: Node, entity_key: str | None, what: str) -> Source | None:
        src = self.choice(node, "source", SOURCES)
        if src is None:
            return None
        columns = schema.TABLES[src].names
        if entity_key is not None and entity_key not in columns:
            whose = "key_from's on" if self.key_from_on == entity_key else "the scorecard's key"
            self.error(
                node,
                f"{whose} '{entity_key}' is not a column of {src} ({what}); {src} has: {', '.join(columns)}",
            )
        return cast(Source, src)

    def metric(
        self, key: ScalarNode, node: Node, entity_key: str | None, period: PeriodKind
    ) -> Metric | None:
        name = self.name(key, "metric name")
        what = f"metric '{key.value}'"
        found = self.mapping(node, what, METRIC_KEYS)
        if found is None or name is None:
            return None
        if name == entity_key:
            self.error(key, f"metric '{name}' has the name of the scorecard's key; rename it")
        kinds = [k for k in ("value", "formula", "conversion") if k in found]
        label = self.optional_text(found, "label")
        loc = self.loc(key)
        if len(kinds) != 1:
            message = "needs one of" if not kinds else "has more than one of"
            self.error(
                node if not kinds else found[kinds[1]][0], f"{what} {message} value, formula, conversion"
            )
            return None
        if kinds[0] == "formula":
            for extra in ("from", "where", "window"):
                if extra in found:
                    self.error(found[extra][0], f"{what} is a formula: '{extra}' does not apply")
            formula = self.expr(found["formula"][1], f"formula of {what}")
            return FormulaMetric(name, label, formula, loc) if formula is not None else None
        if kinds[0] == "conversion":
            for extra in ("from", "where", "window"):
                if extra in found:
                    self.error(found[extra][0], f"{what} is a conversion: put '{extra}' in first/then")
            return self.conversion(name, label, found["conversion"][1], entity_key, period, loc)
        if "from" not in found:
            self.error(node, f"{what} is missing 'from' (one of {', '.join(SOURCES)})")
            return None
        source, window, where = self.scan(found, what, entity_key, period)
        value = self.expr(found["value"][1], f"value of {what}")
        if source is None or value is None:
            return None
        # A bad window is reported already; keep the metric so that its expressions are checked too.
        return AggregateMetric(name, label, source, where, window or _PERIOD, value, loc)

    def conversion(
        self, name: str, label: str | None, node: Node, entity_key: str | None, period: PeriodKind, loc: Loc
    ) -> ConversionMetric | None:
        what = f"conversion of metric '{name}'"
        found = self.mapping(node, what, CONVERSION_KEYS, ("key", "first", "then"))
        if found is None:
            return None
        conv_key = self.name(found["key"][1], "conversion key") if "key" in found else None
        first = (
            self.step(found["first"][1], f"first step of '{name}'", entity_key, period)
            if "first" in found
            else None
        )
        then = (
            self.step(found["then"][1], f"then step of '{name}'", entity_key, period)
            if "then" in found
            else None
        )
        after = False
        if "after" in found:
            after = bool(self.boolean(found["after"][1], "after"))
        if conv_key is not None:
            for step in (first, then):
                if step is not None and conv_key not in schema.TABLES[step.source].names:
                    self.error(
                        found["key"][1], f"conversion key '{conv_key}' is not a column of {step.source}"
                    )
        if conv_key is None or first is None or then is None:
            return None
        return ConversionMetric(name, label, conv_key, first, then, after, loc)

    def scan(
        self, found: dict[str, tuple[ScalarNode, Node]], what: str, entity_key: str | None, period: PeriodKind
    ) -> tuple[Source | None, Window | None, Expr | None]:
        """The `from`, `window` and `where` of a metric or a conversion step (`from` is present)."""
        source = self.source(found["from"][1], entity_key, what)
        window: Window | None = _PERIOD
        if "window" in found:
            window = self.window(found["window"][1], period, source)
        where = None
        if "where" in found and not self.is_null(found["where"][1]):
            where = self.expr(found["where"][1], f"where of {what}")
        return source, window, where

    def step(
        self, node: Node, what: str, entity_key: str | None, period: PeriodKind
    ) -> ConversionStep | None:
        found = self.mapping(node, what, STEP_KEYS, ("from",))
        if found is None or "from" not in found:
            return None
        source, window, where = self.scan(found, what, entity_key, period)
        if source == "shops":
            self.error(found["from"][1], "a conversion step needs a source with a time column, not shops")
            return None
        if source is None:
            return None
        return ConversionStep(source, where, window or _PERIOD, self.loc(node))

    def score(self, key: ScalarNode, node: Node) -> Score | None:
        name = self.name(key, "score name")
        what = f"score '{key.value}'"
        found = self.mapping(node, what, SCORE_KEYS, ("parts",))
        if found is None or name is None:
            return None
        self.at["score"] = name
        self.part_refs = []
        scale = 100.0
        if "scale" in found:
            got = self.number(found["scale"][1], "scale")
            if got is not None and got <= 0:
                self.error(found["scale"][1], f"scale must be greater than 0, got {found['scale'][1].value}")
            scale = got if got is not None and got > 0 else scale
        requires = None
        if "requires" in found:
            requires = self.requires(found["requires"][1], what)
        parts: list[ScorePart] = []
        if "parts" in found:
            pnode = found["parts"][1]
            if not isinstance(pnode, SequenceNode):
                self.error(pnode, f"parts of {what} must be a list, got {describe(pnode)}")
            elif not pnode.value:
                self.error(pnode, f"{what} has no parts")
            else:
                for item in pnode.value:
                    part = self.part(item, what)
                    if part is not None:
                        parts.append(part)
        label = self.optional_text(found, "label")
        return Score(name, label, scale, tuple(parts), requires, self.loc(key))

    def requires(self, node: Node, what: str) -> Requires | None:
        found = self.mapping(node, f"requires of {what}", REQUIRES_KEYS, REQUIRES_KEYS)
        if found is None or len(found) < 2:
            return None
        metric = self.name(found["metric"][1], "requires metric")
        at_least = self.number(found["at_least"][1], "at_least")
        if metric is None or at_least is None:
            return None
        return Requires(metric, at_least, self.loc(found["metric"][1]))

    def part(self, node: Node, what: str) -> ScorePart | None:
        found = self.mapping(node, f"a part of {what}", PART_KEYS, ("weight",))
        if found is None:
            return None
        refs = [k for k in ("metric", "score") if k in found]
        if len(refs) != 1:
            self.error(node, f"a part of {what} names exactly one of metric or score")
            return None
        ref = self.name(found[refs[0]][1], refs[0])
        weight = None
        if "weight" in found:
            where = f"{self.at.get('scorecard')}.scores.{self.at.get('score')}"
            ref_name = str(found[refs[0]][1].value)
            self.part_refs.append(ref_name)
            seen = self.part_refs.count(ref_name)  # a name read by two parts: the second is <name>.weight#2
            path = f"{where}.{ref_name}.weight" + (f"#{seen}" if seen > 1 else "")
            weight = self.tunable_number(found["weight"][1], "weight", path, "weight")
        if weight is not None and weight <= 0:
            self.error(found["weight"][1], f"weight must be greater than 0, got {found['weight'][1].value}")
            weight = None
        normalize = None
        if "normalize" in found:
            normalize = self.normalizer(found["normalize"][1])
            if normalize is None:
                return None
        elif refs[0] == "metric":
            self.error(
                node, f"the part for metric '{ref}' needs 'normalize' (one of {', '.join(NORMALIZERS)})"
            )
            return None
        missing: float | Literal["skip"] = 0.0
        if "missing" in found:
            mnode = found["missing"][1]
            if isinstance(mnode, ScalarNode) and mnode.value == "skip":
                missing = "skip"
            else:
                got = self.number(mnode, "missing (a value in [0, 1] or skip)")
                if got is not None and not 0 <= got <= 1:
                    self.error(mnode, f"missing must be skip or a value in [0, 1], got {mnode.value}")
                elif got is not None:
                    missing = got
        if ref is None or weight is None:
            return None
        loc = self.loc(found[refs[0]][1])
        if refs[0] == "metric":
            return ScorePart(weight, loc, metric=ref, normalize=normalize, missing=missing)
        return ScorePart(weight, loc, score=ref, normalize=normalize, missing=missing)

    def normalizer(self, node: Node) -> Normalizer | None:
        loc = self.loc(node)
        if isinstance(node, ScalarNode) and node.value == "rank":
            return Normalizer("rank", (), loc)
        if not isinstance(node, MappingNode) or len(node.value) != 1:
            self.error(
                node, "normalize is one of {linear: [a, b]}, {log: [a, b]}, {bands: [[t, v], ...]}, rank"
            )
            return None
        found = self.mapping(node, "normalize", NORMALIZERS)
        if not found:
            return None
        kind, (_key, args) = next(iter(found.items()))
        if kind == "rank":
            if not (self.is_null(args) or (isinstance(args, SequenceNode | MappingNode) and not args.value)):
                self.error(args, "rank takes no parameters")
                return None
            return Normalizer("rank", (), loc)
        if kind == "bands":
            return self.bands(args, loc)
        pair = self.numbers(args, kind, 2)
        if pair is None:
            return None
        a, b = pair
        if kind == "linear" and a == b:
            self.error(args, f"linear needs two different bounds, got [{a:g}, {b:g}]")
            return None
        if kind == "linear" and not (math.isfinite(b - a) and math.isfinite(1 / (b - a))):
            # 1/(b − a) is what scores multiply by: inf makes every value NaN or ±inf, 0 makes every value 0
            self.error(
                args, f"linear bounds [{a:g}, {b:g}] are too close together or too far apart to compute with"
            )
            return None
        if kind == "log" and not 0 <= a < b:
            self.error(args, f"log needs 0 ≤ a < b, got [{a:g}, {b:g}]")
            return None
        return Normalizer(cast(Literal["linear", "log"], kind), (a, b), loc)

    def bands(self, node: Node, loc: Loc) -> Normalizer | None:
        if not isinstance(node, SequenceNode) or not node.value:
            self.error(node, f"bands takes a list of [threshold, value] pairs, got {describe(node)}")
            return None
        pairs: list[tuple[float, float]] = []
        for item in node.value:
            pair = self.numbers(item, "a band", 2)
            if pair is None:
                return None
            t, v = pair
            if pairs and t <= pairs[-1][0]:
                self.error(item, f"band thresholds must ascend: {t:g} comes after {pairs[-1][0]:g}")
                return None
            if not 0 <= v <= 1:
                self.error(item, f"a band's value is a normalized value in [0, 1], got {v:g}")
                return None
            pairs.append((t, v))
        return Normalizer("bands", tuple(pairs), loc)

    def gates(self, node: Node, what: str) -> list[Gate]:
        if self.is_null(node):
            return []
        if not isinstance(node, SequenceNode):
            self.error(node, f"gates of {what} must be a list, got {describe(node)}")
            return []
        gates: list[Gate] = []
        seen: dict[str, Loc] = {}
        for item in node.value:
            found = self.mapping(item, f"a gate of {what}", GATE_KEYS, ("id", "when", "reason"))
            if found is None or not {"id", "when", "reason"} <= found.keys():
                continue
            gid = self.name(found["id"][1], "gate id")
            if gid is not None and gid in seen:
                self.error(found["id"][1], f"duplicate gate id '{gid}' (first at line {seen[gid].line})")
                gid = None
            when = self.expr(found["when"][1], "gate condition")
            if when is not None and gid is not None:
                when = self.bind_params(when, gid)
            reason = self.string(found["reason"][1], "reason")
            missing = "fail"
            if "missing" in found:
                missing = self.choice(found["missing"][1], "missing value", ("pass", "fail")) or "fail"
            if gid is None or when is None or reason is None:
                continue
            seen[gid] = self.loc(found["id"][1])
            gates.append(Gate(gid, when, reason, cast(Literal["pass", "fail"], missing), self.loc(item)))
        return gates

    def tiers(self, node: Node, what: str) -> list[Tier]:
        if self.is_null(node):
            return []
        if not isinstance(node, SequenceNode):
            self.error(node, f"tiers of {what} must be a list, got {describe(node)}")
            return []
        tiers: list[Tier] = []
        for item in node.value:
            found = self.mapping(item, f"a tier of {what}", TIER_KEYS, TIER_KEYS)
            if found is None or len(found) < 3:
                continue
            name = self.string(found["name"][1], "tier name")
            path = f"{self.at.get('scorecard')}.tiers.{name}.min_score"
            min_score = self.tunable_number(found["min_score"][1], "min_score", path, "min_score")
            multiplier = self.number(found["multiplier"][1], "multiplier")
            if multiplier is not None and multiplier <= 0:
                self.error(found["multiplier"][1], f"multiplier must be greater than 0, got {multiplier:g}")
                continue
            if name is None or min_score is None or multiplier is None:
                continue
            clash = next((t for t in tiers if t.name == name), None)
            if clash is not None:
                self.error(found["name"][1], f"duplicate tier name '{name}' (first at line {clash.loc.line})")
                continue
            if self.tuned(f"{self.at.get('scorecard')}.tiers."):
                # the order of tunable thresholds is checked when they are chosen (rules calibrate)
                tiers.append(Tier(name, min_score, multiplier, self.loc(item)))
                continue
            same = next((t for t in tiers if t.min_score == min_score), None)
            if same is not None:
                self.error(
                    found["min_score"][1],
                    f"tiers {same.name} and {name} have the same min_score {min_score:g}",
                )
                continue
            if tiers and min_score > tiers[-1].min_score:
                # Listed order is the order people read (S, A, B, C): one listed out of order is a typo
                # that would silently swap tiers and their multipliers.
                above = tiers[-1]
                self.error(
                    found["min_score"][1],
                    f"tier {name} (min_score {min_score:g}) is listed after tier {above.name} (min_score "
                    f"{above.min_score:g}): list tiers highest first, with strictly decreasing min_score",
                )
                continue
            tiers.append(Tier(name, min_score, multiplier, self.loc(item)))
        return tiers

    def unreachable_tiers(self, what: str, tiers: list[Tier], scores: list[Score], rank_by: str) -> None:
        """Warn about a tier no entity can reach: above the scale of the score it ranks by."""
        score = next((s for s in scores if s.name == rank_by), None)
        if score is None:
            return  # rank_by is a metric: it has no known upper bound
        for tier in tiers:
            if tier.min_score > score.scale:
                self.warnings.append(
                    f"{tier.loc}: tier {tier.name} of {what} needs {rank_by} >= {tier.min_score:g}, above "
                    f"the highest value {rank_by} can reach ({score.scale:g}): no entity can be in it"
                )

    def reward(self, node: Node, what: str) -> Reward | None:
        found = self.mapping(node, f"reward of {what}", REWARD_KEYS)
        if found is None:
            return None
        if ("pool" in found) == ("budget" in found):
            both = "has both 'pool' and 'budget'" if "pool" in found else "is missing 'pool' (or 'budget')"
            where = found["budget"][0] if "pool" in found else node
            self.error(where, f"reward of {what} {both}: give a fixed pool per period, or a yearly budget")
            return None
        budget = None
        if "budget" in found:
            budget = self.budget(found["budget"][1], what)
            if budget is None:
                return None
        values: dict[str, int | None] = {}
        for key, minimum in (("pool", 0), ("cap", 1), ("min_grant", 0)):
            if key not in found or self.is_null(found[key][1]):
                values[key] = None
                continue
            if key != "min_grant":
                path = f"{self.at.get('scorecard')}.reward.{key}"
                kind: TunableKind = "pool" if key == "pool" else "cap"
                tuned = self.tunable_number(found[key][1], key, path, kind, integer=True)
                got = int(tuned) if tuned is not None else None
            else:
                got = self.integer(found[key][1], key)
            if got is not None and got < minimum:
                self.error(found[key][1], f"{key} must be at least {minimum}, got {got}")
                got = None
            values[key] = got
        unit = "impressions"
        if "unit" in found:
            unit = self.string(found["unit"][1], "unit") or unit
        cap, min_grant, pool = values["cap"], values["min_grant"], values["pool"]
        if cap is not None and min_grant is not None and min_grant > cap:
            self.error(found["min_grant"][1], f"min_grant ({min_grant}) is larger than cap ({cap})")
            return None
        if budget is not None:
            # the period's pool is derived when a period is scored (scoring/budget.py)
            return Reward(0, unit, cap, min_grant, self.loc(node), budget=budget)
        if pool is None:
            return None
        return Reward(pool, unit, cap, min_grant, self.loc(node))

    def budget(self, node: Node, what: str) -> Budget | None:
        """`budget: {amount: N, per: year, pacing: even | remaining}` (SPEC §9)."""
        found = self.mapping(node, f"budget of {what}", BUDGET_KEYS, ("amount", "pacing"))
        if found is None or "amount" not in found or "pacing" not in found:
            return None
        amount = self.integer(found["amount"][1], "budget amount")
        if amount is not None and amount < 0:
            self.error(found["amount"][1], f"budget amount must be at least 0, got {amount}")
            amount = None
        per = "year"
        if "per" in found:
            per = self.choice(found["per"][1], "budget period ('per')", ("year",)) or ""
        pacing = self.choice(found["pacing"][1], "pacing", ("even", "remaining"))
        if amount is None or per != "year" or pacing is None:
            return None
        return Budget(amount, "year", cast(Literal["even", "remaining"], pacing), self.loc(node))

    def effective(self, node: Node, period: PeriodKind) -> Effective | None:
        """`effective: {from: 2023-05, to: 2023-12}` (weeks `2023-W18`; `to` optional, inclusive)."""
        from chuanliu_cli.rules.effective import period_label

        found = self.mapping(node, "effective", EFFECTIVE_KEYS, ("from",))
        if found is None or "from" not in found:
            return None
        labels: dict[str, str] = {}
        for key in ("from", "to"):
            if key not in found or (key == "to" and self.is_null(found[key][1])):
                continue
            value = found[key][1]
            text = self.string(value, f"effective {key}")
            if text is None:
                continue
            label = period_label(text, period)
            if label is None:
                example = "2023-05" if period == "month" else "2023-W18"
                self.error(
                    value,
                    f"effective {key} '{text}' is not a {period} of this {period}ly ruleset; "
                    f"write it like {example}",
                )
                continue
            labels[key] = label
        if "from" not in labels or (
            "to" in found and not self.is_null(found["to"][1]) and "to" not in labels
        ):
            return None
        start, end = labels["from"], labels.get("to")
        if end is not None and end < start:
            self.error(found["to"][1], f"effective to ({end}) is before from ({start})")
            return None
        return Effective(start, end, self.loc(node))
