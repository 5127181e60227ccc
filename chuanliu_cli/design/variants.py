"""Variants of one scorecard, evaluated over metrics computed once (SPEC §10).

A variant changes some of the scorecard's numbers ("knobs"): a gate's threshold (a literal compared with a
metric or score, or a named parameter), a score part's weight, a tier's min_score, the pool or the cap. None
of these reaches the metric query, so the metrics are computed once, by the real pipeline, and each variant
is evaluated over them: scores again (scoring/pipeline.compute_scores) only when a weight changed; each gate
of the form `name op constant [and ...]` in numpy on the 6-decimal rounded values (checked, at the
scorecard's own numbers, against the outcomes the pipeline's gates gave; a gate that disagrees is not
taken apart, and its thresholds are no knobs); tiers, ranks and grants through
scoring/allocation.rank_tier_allocate.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Literal

from chuanliu_cli.rules.model import Gate, Ruleset, Scorecard

if TYPE_CHECKING:
    import numpy as np
    import polars as pl

    from chuanliu_cli.scoring.pipeline import ScorecardResult

KnobKind = Literal["gate", "weight", "min_score", "pool", "cap"]


@dataclass(frozen=True)
class Knob:
    """One number of a scorecard that a variant may change, with its value in the scored ruleset."""

    path: str
    kind: KnobKind
    value: float
    integer: bool = False
    # a gate threshold: the (gate id, conjunct index) pairs it sets (a parameter may set several)
    conjuncts: tuple[tuple[str, int], ...] = ()
    columns: tuple[str, ...] = ()  # the metric or score names those conjuncts compare with
    ops: tuple[str, ...] = ()
    score: str | None = None  # a weight: the score and the part's index
    part: int | None = None
    tier: str | None = None  # a min_score: the tier


@dataclass(frozen=True)
class Outcome:
    """One variant's result per entity (in the scored frame's row order) and its counts."""

    eligible: np.ndarray  # bool
    tier: np.ndarray  # int: index into the scorecard's tiers, -1 for none (ineligible included)
    grant: np.ndarray | None  # int64 units, when grants were asked for
    tiers: tuple[str, ...]
    pool: int
    cap: int | None

    @property
    def eligible_count(self) -> int:
        """Eligible entities."""
        return int(self.eligible.sum())

    def tier_count(self, name: str) -> int:
        """Eligible entities in tier `name`."""
        return int((self.tier == self.tiers.index(name)).sum()) if name in self.tiers else 0

    def capped_count(self) -> int:
        """Entities granted the cap."""
        if self.grant is None or self.cap is None:
            return 0
        return int((self.grant == self.cap).sum())

    def granted_to(self, name: str) -> int:
        """Units granted to the entities of tier `name`."""
        if self.grant is None or name not in self.tiers:
            return 0
        return int(self.grant[self.tier == self.tiers.index(name)].sum())


@dataclass
class Variants:
    """A scored scorecard, ready to evaluate variants of its numbers over the same metrics."""

    ruleset: Ruleset
    scorecard: Scorecard
    result: ScorecardResult
    knobs: dict[str, Knob] = field(default_factory=dict)
    # gates left whole (another shape, or the numpy reading disagreed with the pipeline): why, per gate
    whole_gates: dict[str, str] = field(default_factory=dict)
    _conjuncts: dict[str, list[tuple[str, str, float]]] = field(default_factory=dict)
    _base_pass: dict[str, np.ndarray] = field(default_factory=dict)
    _micro: dict[tuple[str, tuple[float, ...]], tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)
    _frames: dict[tuple[float, ...], pl.DataFrame] = field(default_factory=dict)

    @classmethod
    def of(cls, ruleset: Ruleset, result: ScorecardResult) -> Variants:
        """Variants of `result`'s scorecard; every number of it is a knob (`knobs`)."""
        v = cls(ruleset, result.scorecard, result)
        v._prepare_gates()
        v._collect_knobs()
        return v

    # -- the base ---------------------------------------------------------------------------------------

    @property
    def size(self) -> int:
        """Entities of the scorecard (rows of the scored frame)."""
        return self.result.frame.height

    @property
    def metrics(self) -> pl.DataFrame:
        """Key and metric columns of the scored frame."""
        return self.result.frame.select(self.scorecard.key, *(m.name for m in self.scorecard.metrics))

    def _prepare_gates(self) -> None:
        import numpy as np

        from chuanliu_cli.scoring.gates import comparisons, gate_column

        res, sc = self.result, self.scorecard
        outcomes = res.gate_outcomes
        for gate in sc.gates:
            assert outcomes is not None  # scoring keeps each gate's outcome when there are gates
            own = outcomes[gate_column(gate)]
            self._base_pass[gate.id] = own.fill_null(gate.missing == "pass").to_numpy().astype(bool)
            conj = comparisons(gate)
            if conj is None:
                self.whole_gates[gate.id] = "not of the form `name op number [and ...]`"
                continue
            self._conjuncts[gate.id] = conj
            if not np.array_equal(
                self._gate_pass(gate, conj, {}, self._weights(sc)), self._base_pass[gate.id]
            ):
                del self._conjuncts[gate.id]
                self.whole_gates[gate.id] = "its numpy reading disagrees with the scored outcome"

    def _collect_knobs(self) -> None:
        from chuanliu_cli.rules.tuning import bind
        from chuanliu_cli.scoring.gates import comparisons

        sc, ruleset = self.scorecard, self.ruleset
        from_params: dict[str, list[tuple[str, tuple[int, ...]]]] = {}
        for use in ruleset.param_uses:
            if use.scorecard != sc.name or use.gate not in self._conjuncts:
                continue
            gate = next(g for g in sc.gates if g.id == use.gate)
            for p in use.params:
                moved = {**ruleset.params, p: ruleset.params[p] * 2 + 1}
                other = comparisons(
                    replace(gate, when=replace(gate.when, text=bind(use.written.text, moved)[0]))
                )
                here = self._conjuncts[use.gate]
                if other is None or len(other) != len(here):
                    continue
                idx = tuple(i for i, (a, b) in enumerate(zip(here, other, strict=True)) if a[2] != b[2])
                # the conjunct must compare with the parameter itself (not -params.x)
                if all(here[i][2] == ruleset.params[p] and other[i][2] == moved[p] for i in idx):
                    from_params.setdefault(p, []).append((use.gate, idx))
        taken: set[tuple[str, int]] = set()
        for p, uses in from_params.items():
            pairs = tuple((g, i) for g, idx in uses for i in idx)
            taken.update(pairs)
            cols = tuple(self._conjuncts[g][i][0] for g, i in pairs)
            ops = tuple(self._conjuncts[g][i][1] for g, i in pairs)
            self._add(Knob(f"params.{p}", "gate", ruleset.params[p], False, pairs, cols, ops))
        for gate in sc.gates:
            conj = self._conjuncts.get(gate.id)
            if conj is None:
                continue
            for i, (name, op, constant) in enumerate(conj):
                if (gate.id, i) in taken:
                    continue
                path = f"{sc.name}.gates.{gate.id}.{name}"
                self._add(Knob(path, "gate", constant, False, ((gate.id, i),), (name,), (op,)))
        for score in sc.scores:
            for i, part in enumerate(score.parts):
                path = f"{sc.name}.scores.{score.name}.{part.ref}.weight"
                self._add(Knob(path, "weight", part.weight, score=score.name, part=i))
        for tier in sc.tiers:
            self._add(
                Knob(f"{sc.name}.tiers.{tier.name}.min_score", "min_score", tier.min_score, tier=tier.name)
            )
        if sc.reward is not None and sc.reward.budget is None:
            if sc.reward.cap is not None:
                self._add(Knob(f"{sc.name}.reward.cap", "cap", float(sc.reward.cap), True))
            self._add(Knob(f"{sc.name}.reward.pool", "pool", float(sc.reward.pool), True))

    def _add(self, knob: Knob) -> None:
        path, n = knob.path, 2
        while path in self.knobs:  # (a name compared twice in one gate, a metric in two parts of a score)
            path, n = f"{knob.path}#{n}", n + 1
        self.knobs[path] = replace(knob, path=path)

    # -- evaluating a variant ---------------------------------------------------------------------------

    def concrete(self, values: Mapping[str, float]) -> Scorecard | None:
        """The scorecard with `values` (knob path → number) in place; None when the tiers' min_scores
        would no longer descend strictly in their listed order."""
        sc = self.scorecard
        scores = {s.name: s for s in sc.scores}
        tiers = {t.name: t for t in sc.tiers}
        reward = sc.reward
        for path, value in values.items():
            knob = self.knobs[path]
            if knob.kind == "weight" and knob.score is not None and knob.part is not None:
                s = scores[knob.score]
                parts = list(s.parts)
                parts[knob.part] = replace(parts[knob.part], weight=value)
                scores[knob.score] = replace(s, parts=tuple(parts))
            elif knob.kind == "min_score" and knob.tier is not None:
                tiers[knob.tier] = replace(tiers[knob.tier], min_score=value)
            elif knob.kind in ("pool", "cap") and reward is not None:
                whole = round(value)
                reward = replace(reward, pool=whole) if knob.kind == "pool" else replace(reward, cap=whole)
        ordered = [tiers[t.name] for t in sc.tiers]
        if any(a.min_score <= b.min_score for a, b in itertools.pairwise(ordered)):
            return None
        if reward is not None and reward.cap is not None and (reward.min_grant or 0) > reward.cap:
            return None
        return replace(
            sc, scores=tuple(scores[s.name] for s in sc.scores), tiers=tuple(ordered), reward=reward
        )

    def evaluate(self, values: Mapping[str, float], grants: bool = True) -> Outcome | None:
        """The outcome of the variant (None when its tiers would not descend); `grants` allocates the pool."""
        import numpy as np
        import polars as pl

        from chuanliu_cli.rules.expressions import bare_names
        from chuanliu_cli.scoring.allocation import rank_tier_allocate, round_micro, round_micro_array
        from chuanliu_cli.scoring.gates import apply_gates

        sc = self.concrete(values)
        if sc is None:
            return None
        weights = self._weights(sc)
        reweighted = weights != self._weights(self.scorecard)
        frame = self._frame(sc, weights)
        score_names = {s.name for s in sc.scores}
        overrides: dict[str, dict[int, float]] = {}
        for path, value in values.items():
            for gate_id, i in self.knobs[path].conjuncts:
                overrides.setdefault(gate_id, {})[i] = value
        eligible = np.ones(frame.height, dtype=bool)
        for gate in sc.gates:
            conj = self._conjuncts.get(gate.id)
            over = overrides.get(gate.id, {})
            if conj is not None and (over or (reweighted and {c[0] for c in conj} & score_names)):
                passed = self._gate_pass(gate, conj, over, weights, frame)
            elif reweighted and bare_names(gate.when) & score_names:
                one = apply_gates(replace(sc, gates=(gate,)), frame)
                passed = one["eligible"].to_numpy().astype(bool)
            else:
                passed = self._base_pass[gate.id]
            eligible &= passed
        values_col = frame[sc.rank_by].cast(pl.Float64)
        reward = sc.reward
        pool = reward.pool if reward is not None else 0
        cap = reward.cap if reward is not None else None
        names = tuple(t.name for t in sc.tiers)
        if grants:
            # only eligible entities take part (the others get no tier and 0): allocate among them alone
            at = np.flatnonzero(eligible)
            done = rank_tier_allocate(
                frame[sc.key].gather(at),
                values_col.gather(at),
                np.ones(at.size, dtype=bool),
                sc.tiers,
                reward,
            )
            codes = {n: i for i, n in enumerate(names)}
            tier = np.full(frame.height, -1, dtype=np.int64)
            tier[at] = done.tier.replace_strict(codes, default=-1, return_dtype=pl.Int64).to_numpy()
            grant = None
            if reward is not None:
                grant = np.zeros(frame.height, dtype=np.int64)
                grant[at] = done.grant.fill_null(0).to_numpy()
            return Outcome(eligible, tier, grant, names, pool, cap)
        # counts only: the tier rule of rank_tier_allocate (first tier whose min_score ≤ the rounded value)
        raw = values_col.fill_null(float("nan")).to_numpy()
        ranked = eligible & ~np.isnan(raw)
        micro, _missing = round_micro_array(np.where(ranked, raw, 0.0))
        tier = np.full(frame.height, -1, dtype=np.int64)
        for t in range(len(sc.tiers) - 1, -1, -1):
            tier[ranked & (micro >= round_micro(sc.tiers[t].min_score))] = t
        return Outcome(eligible, tier, None, names, pool, cap)

    def rounded(self, name: str, values: Mapping[str, float]) -> tuple[np.ndarray, np.ndarray]:
        """A metric's or score's values in the variant, rounded to 6 decimals as integer millionths, and
        the mask of NULL values."""
        sc = self.concrete(values) or self.scorecard
        weights = self._weights(sc)
        return self._rounded(name, weights, self._frame(sc, weights))

    # -- helpers ----------------------------------------------------------------------------------------

    @staticmethod
    def _weights(sc: Scorecard) -> tuple[float, ...]:
        return tuple(p.weight for s in sc.scores for p in s.parts)

    def _frame(self, sc: Scorecard, weights: tuple[float, ...]) -> pl.DataFrame:
        """The scored frame (base) or the metrics scored again with the variant's weights (kept for reuse)."""
        from chuanliu_cli.scoring.pipeline import compute_scores

        if weights == self._weights(self.scorecard):
            return self.result.frame
        if weights not in self._frames:
            if len(self._frames) > 64:
                self._frames.clear()
                self._micro.clear()
            self._frames[weights] = compute_scores(sc, self.metrics)
        return self._frames[weights]

    def _rounded(
        self, name: str, weights: tuple[float, ...], frame: pl.DataFrame
    ) -> tuple[np.ndarray, np.ndarray]:
        import polars as pl

        from chuanliu_cli.scoring.allocation import round_micro_array

        is_score = any(s.name == name for s in self.scorecard.scores)
        key = (name, weights if is_score else ())
        if key not in self._micro:
            raw = frame[name].cast(pl.Float64).fill_null(float("nan")).to_numpy()
            self._micro[key] = round_micro_array(raw)
        return self._micro[key]

    def _gate_pass(
        self,
        gate: Gate,
        conj: list[tuple[str, str, float]],
        over: Mapping[int, float],
        weights: tuple[float, ...],
        frame: pl.DataFrame | None = None,
    ) -> np.ndarray:
        """A `name op constant [and ...]` gate in three-valued logic on rounded values, then `missing`."""
        import numpy as np

        from chuanliu_cli.scoring.allocation import round_micro

        frame = self.result.frame if frame is None else frame
        false_any = np.zeros(frame.height, dtype=bool)
        null_any = np.zeros(frame.height, dtype=bool)
        for i, (name, op, constant) in enumerate(conj):
            micro, missing = self._rounded(name, weights, frame)
            c = round_micro(over.get(i, constant))
            holds = _compare(micro, op, c)
            false_any |= ~missing & ~holds
            null_any |= missing
        passed: np.ndarray = ~false_any & (~null_any | (gate.missing == "pass"))
        return passed


def _compare(micro: Any, op: str, c: int) -> np.ndarray:
    import numpy as np

    result = {
        ">=": micro >= c,
        ">": micro > c,
        "<=": micro <= c,
        "<": micro < c,
        "=": micro == c,
        "<>": micro != c,
    }[op]
    return np.asarray(result, dtype=bool)
