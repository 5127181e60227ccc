"""The ruleset as frozen dataclasses: what the YAML says, with the file location of every part (SPEC §4)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

PeriodKind = Literal["month", "week"]
Source = Literal["orders", "reviews", "livestreams", "shops"]
NormalizerKind = Literal["linear", "log", "bands", "rank"]


@dataclass(frozen=True)
class Loc:
    """A position in the ruleset file: 1-based line and column."""

    file: str
    line: int
    col: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.col}"


@dataclass(frozen=True)
class Expr:
    """An expression as written in the YAML, with the location of its first character."""

    text: str
    loc: Loc


@dataclass(frozen=True)
class Window:
    """A time window relative to the period: `period`, `previous`, `Nd` (days) or `Nm`/`Nw` (periods)."""

    kind: Literal["period", "previous", "days", "periods"]
    n: int = 1
    text: str = "period"


@dataclass(frozen=True)
class AggregateMetric:
    """A metric aggregated from one source's rows: `value` over rows matching `where` within `window`."""

    name: str
    label: str | None
    source: Source
    where: Expr | None
    window: Window
    value: Expr
    loc: Loc


@dataclass(frozen=True)
class FormulaMetric:
    """A metric computed from other metrics of the same scorecard."""

    name: str
    label: str | None
    formula: Expr
    loc: Loc


@dataclass(frozen=True)
class ConversionStep:
    """One side of a conversion metric: rows of `source` matching `where` within `window`."""

    source: Source
    where: Expr | None
    window: Window
    loc: Loc


@dataclass(frozen=True)
class ConversionMetric:
    """Distinct `key` values seen in `first`, then in `then` (after the earliest `first` if `after`)."""

    name: str
    label: str | None
    key: str
    first: ConversionStep
    then: ConversionStep
    after: bool
    loc: Loc


Metric = AggregateMetric | FormulaMetric | ConversionMetric


@dataclass(frozen=True)
class Normalizer:
    """Maps a raw value to [0, 1]. `params`: linear (a, b); log (a, b); bands ((t, v), ...); rank ()."""

    kind: NormalizerKind
    params: tuple[float, ...] | tuple[tuple[float, float], ...] = ()
    loc: Loc | None = None


@dataclass(frozen=True)
class ScorePart:
    """A weighted part of a score: a metric (normalized) or another score (value/scale unless normalized)."""

    weight: float
    loc: Loc
    metric: str | None = None
    score: str | None = None
    normalize: Normalizer | None = None
    missing: float | Literal["skip"] = 0.0  # normalized value used when the input is NULL, or skip the part

    @property
    def ref(self) -> str:
        """The name of the metric or score this part reads."""
        return self.metric if self.metric is not None else str(self.score)


@dataclass(frozen=True)
class Requires:
    """The score is NULL unless `metric` (a metric or score name) is at least `at_least`."""

    metric: str
    at_least: float
    loc: Loc


@dataclass(frozen=True)
class Score:
    """A weighted score on [0, scale]."""

    name: str
    label: str | None
    scale: float
    parts: tuple[ScorePart, ...]
    requires: Requires | None
    loc: Loc


@dataclass(frozen=True)
class Gate:
    """An eligibility condition over metric and score names; NULL results pass or fail per `missing`."""

    id: str
    when: Expr
    reason: str
    missing: Literal["pass", "fail"]
    loc: Loc


@dataclass(frozen=True)
class Tier:
    """A reward tier: entities whose rank_by value is at least `min_score` (highest tier first)."""

    name: str
    min_score: float
    multiplier: float
    loc: Loc


@dataclass(frozen=True)
class Budget:
    """A yearly amount paced over the year's periods (SPEC §9): `even` shares, or what is `remaining`."""

    amount: int
    per: Literal["year"]
    pacing: Literal["even", "remaining"]
    loc: Loc | None = None


@dataclass(frozen=True)
class Reward:
    """The period's reward pool, in whole `unit`s.

    With a `budget` the file sets no pool: scoring derives the period's pool from the budget
    (scoring/budget.py) and sets `pool` and `basis` (how it was derived); until then `pool` is 0 and
    `basis` None, and nothing allocates from it."""

    pool: int
    unit: str = "impressions"
    cap: int | None = None
    min_grant: int | None = None
    loc: Loc | None = None
    budget: Budget | None = None
    basis: str | None = None

    @property
    def paced(self) -> bool:
        """True when the pool is known: a fixed pool, or a budget's pool derived for a period."""
        return self.budget is None or self.basis is not None


@dataclass(frozen=True)
class KeyFrom:
    """`key_from: {table: shops, on: shop_id}` (SPEC §9 groups): the scorecard's key is a column of `table`,
    and each source row takes the value of the `table` row whose `on` is the row's `on`; a row whose
    `table` row is missing or has no value there is its own entity (its `on` value)."""

    table: str
    on: str
    loc: Loc


@dataclass(frozen=True)
class Scorecard:
    """Entities identified by `key`, their metrics, scores, gates, tiers and reward."""

    name: str
    title: str | None
    key: str
    metrics: tuple[Metric, ...]
    scores: tuple[Score, ...]  # in dependency order: a score comes after every score it uses
    rank_by: str
    gates: tuple[Gate, ...]
    tiers: tuple[Tier, ...]  # sorted by min_score descending
    reward: Reward | None
    loc: Loc
    key_from: KeyFrom | None = None  # the key is read from another table (groups of shops)

    @property
    def row_key(self) -> str:
        """The column of the source rows that identifies an entity: `key`, or key_from's `on`."""
        return self.key if self.key_from is None else self.key_from.on

    def metric(self, name: str) -> Metric:
        """The metric called `name`; KeyError if none."""
        for m in self.metrics:
            if m.name == name:
                return m
        raise KeyError(name)

    def score(self, name: str) -> Score:
        """The score called `name`; KeyError if none."""
        for s in self.scores:
            if s.name == name:
                return s
        raise KeyError(name)


@dataclass(frozen=True)
class Effective:
    """The periods a ruleset is in force (SPEC §9): `start` to `end` inclusive (None: open), as period
    labels of the ruleset's kind (`2023-05`, `2023-W18`)."""

    start: str
    end: str | None
    loc: Loc

    @property
    def text(self) -> str:
        """`2023-01..2023-04`, or `2023-05..` when open."""
        return f"{self.start}..{self.end or ''}"


TunableKind = Literal["param", "weight", "min_score", "pool", "cap"]


@dataclass(frozen=True)
class Tunable:
    """A value left for `rules calibrate` to choose: `{tune: [low, high]}` written in place of a number.

    The model holds `low` in its place until then (a ruleset with tunables is refused by scoring); `span`
    is the node's character range in the file text, which `rules calibrate` replaces with the number chosen.
    """

    path: str  # params.<name>, <scorecard>.scores.<score>.<ref>.weight, <scorecard>.tiers.<tier>.min_score,
    # <scorecard>.reward.pool, <scorecard>.reward.cap
    kind: TunableKind
    low: float
    high: float
    loc: Loc
    span: tuple[int, int]
    scorecard: str | None = None  # None for a parameter: ParamUse says which gates read it
    integer: bool = False


@dataclass(frozen=True)
class ParamUse:
    """A gate that reads named parameters (`params.<name>`), with its condition as written."""

    scorecard: str
    gate: str
    written: Expr
    params: tuple[str, ...]


@dataclass(frozen=True)
class Integrity:
    """The `integrity:` section (SPEC §11): the thresholds of the row flags and of threshold bunching.

    Brushing: `brushing_orders` consecutive valid orders of one (shop, buyer) less than `brushing_within`
    minutes apart; idle: fewer than `idle_min_viewers_per_hour` viewers an hour; bunching: a window of
    `bunching_window` × |threshold| each side, flagged when the one-sided binomial p < `bunching_alpha`."""

    brushing_orders: int = 3
    brushing_within: float = 60.0
    idle_min_viewers_per_hour: float = 10.0
    bunching_window: float = 0.05
    bunching_alpha: float = 0.01
    loc: Loc | None = None

    @property
    def brushing_seconds(self) -> int:
        """The brushing span in seconds (the parser accepts whole seconds only)."""
        return round(self.brushing_within * 60)

    @property
    def marks_key(self) -> tuple[int, int]:
        """The thresholds a database keeps brushing orders for (store/brushing.py): (orders, seconds)."""
        return self.brushing_orders, self.brushing_seconds


@dataclass(frozen=True)
class Ruleset:
    """A whole ruleset file: named filters and scorecards evaluated in order."""

    version: int
    name: str
    description: str | None
    assumptions: str | None
    timezone: str
    period: PeriodKind
    filters: dict[str, Expr]
    scorecards: tuple[Scorecard, ...]
    path: str
    sha256: str
    text: str = field(default="", repr=False)
    # what is valid but surely not meant (an unreachable tier): shown by `rules check` and every scoring run
    warnings: tuple[str, ...] = ()
    effective: Effective | None = None
    # the directory of rulesets this one was chosen from for a period (rules/effective.py), else None:
    # the other periods of its year are scored with their own versions from there (scoring/budget.py)
    versions: str | None = None
    # named parameters (`params:`; gates read them as params.<name>, bound to their values at parse time),
    # the gates that read them, and the values left to `rules calibrate` (rules/tuning.py)
    params: dict[str, float] = field(default_factory=dict)
    param_uses: tuple[ParamUse, ...] = ()
    tunables: tuple[Tunable, ...] = ()
    # the thresholds of the integrity flags and bunching (rules/integrity.py; the §11 defaults if absent)
    integrity: Integrity = field(default_factory=Integrity)

    def scorecard(self, name: str) -> Scorecard:
        """The scorecard called `name`; KeyError if none."""
        for s in self.scorecards:
            if s.name == name:
                return s
        raise KeyError(name)
