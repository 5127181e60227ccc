"""explain_entities: many entities explained at once, each exactly as explain_entity explains it alone, and
the batched search for what is missing equal to the search one entity at a time with floats (an oracle)."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import polars as pl
import pytest

from chuanliu_cli.api import Session, load_rules
from chuanliu_cli.errors import DataError
from chuanliu_cli.rules.model import AggregateMetric, ConversionMetric, Normalizer, Requires, Scorecard
from chuanliu_cli.scoring.allocation import round_micro
from chuanliu_cli.scoring.explain import MAX_SUGGESTIONS, Explanation, explain_entities, explain_entity
from chuanliu_cli.scoring.pipeline import (
    RunResult,
    compute_scores,
    finish_scorecard,
    part_column,
    score_absent,
    score_entity,
    tier_for,
)
from tests.conftest import REPO


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> dict[str, RunResult]:
    """May 2023 of the sample, each scorecard of the default ruleset scored through a Session."""
    path = str(tmp_path_factory.mktemp("batch") / "s.duckdb")
    session = Session(db=path)
    session.load(directory=REPO / "sample_data")
    return {name: session.score("2023-05", scorecard=name, record=False).run for name in _NAMES}


_NAMES = ("merchant", "promoter", "product")


# --- an oracle: what the search gave one entity at a time, with floats (score_entity) ---------------------


def _oracle(run: RunResult, scorecard: str, ex: Explanation) -> tuple[tuple[object, ...], str | None]:
    """The suggestions of one entity as the search one entity at a time finds them: bisection with
    score_entity (the other entities' values as scored), each result verified by re-scoring the whole
    population with compute_scores; as (metric, current, target, change, reaches) tuples."""
    res = run.scorecards[scorecard]
    sc = res.scorecard
    frame = res.frame
    if ex.target_score is None:
        return (), None
    row = frame.filter(pl.col(sc.key) == ex.key).row(0, named=True)
    metrics = frame.select(sc.key, *(m.name for m in sc.metrics))
    ranked = {p.ref for s in sc.scores for p in s.parts if p.normalize and p.normalize.kind == "rank"}
    rest = frame.filter(pl.col(sc.key) != ex.key)
    others = {name: rest[name].drop_nulls().to_list() for name in ranked}
    base = {m.name: row[m.name] for m in sc.metrics}
    goal = round_micro(ex.target_score)

    def fast(metric: str, x: float) -> float | None:
        return score_entity(sc, {**base, metric: x}, others)[sc.rank_by]

    def full(metric: str, x: float) -> float | None:
        changed = metrics.with_columns(
            pl.when(pl.col(sc.key) == ex.key).then(pl.lit(x)).otherwise(pl.col(metric)).alias(metric)
        )
        return compute_scores(sc, changed).filter(pl.col(sc.key) == ex.key)[sc.rank_by][0]

    def reaches(value: float | None) -> bool:
        return value is not None and round_micro(value) >= goal

    found = []
    for metric, norm in _candidates(sc).items():
        current = row[metric]
        params = norm.params
        if norm.kind == "bands":
            best = max(v for _, v in params)  # type: ignore[misc]
            end = min(float(t) for t, v in params if v == best)  # type: ignore[misc]
            low_end = float(params[0][0])  # type: ignore[index]
        else:
            end, low_end = float(params[1]), float(params[0])  # type: ignore[arg-type]
        increasing = norm.kind != "linear" or end > low_end
        start = current if current is not None else low_end
        if (start >= end) if increasing else (start <= end):
            continue
        if not reaches(fast(metric, end)):
            continue
        lo, hi = start, end
        for _ in range(60):
            mid = (lo + hi) / 2
            lo, hi = (lo, mid) if reaches(fast(metric, mid)) else (mid, hi)
        whole = _counts(sc, metric)
        if whole:
            x = float(math.ceil(hi - 1e-9) if increasing else math.floor(hi + 1e-9))
        else:
            x = (math.ceil(hi * 100 - 1e-9) if increasing else math.floor(hi * 100 + 1e-9)) / 100
        for _ in range(5):
            value = full(metric, x)
            if reaches(value):
                change = abs(x - current) / abs(current) if current else math.inf
                found.append((metric, current, x, change, value))
                break
            x = x + (1.0 if whole else 0.01) * (1 if increasing else -1)
    found.sort(key=lambda s: (s[3], abs(s[2] - (s[1] or 0.0)), s[0]))  # type: ignore[operator]
    return tuple(found[:MAX_SUGGESTIONS]), None if found else "no single metric can close the gap alone"


def _candidates(sc: Scorecard) -> dict[str, Normalizer]:
    by_name = {s.name: s for s in sc.scores}
    seen: dict[str, Normalizer] = {}

    def walk(name: str) -> None:
        for part in by_name[name].parts if name in by_name else ():
            if part.metric and part.normalize and part.normalize.kind in ("linear", "log", "bands"):
                seen.setdefault(part.metric, part.normalize)
            elif part.score:
                walk(part.score)

    walk(sc.rank_by)
    return seen


def _counts(sc: Scorecard, metric: str) -> bool:
    m = sc.metric(metric)
    return isinstance(m, ConversionMetric) or (
        isinstance(m, AggregateMetric) and m.value.text.strip().lower().startswith("count(")
    )


def _check(run: RunResult, scorecard: str, keys: list[str], stride: int = 1) -> list[Explanation]:
    """explain_entities over `keys` equals explain_entity of each key (of every `stride`-th key: the
    one-at-a-time oracles are slow), and the oracle's suggestions; every suggestion reaches its target
    when the whole population is re-scored, to the last bit."""
    res = run.scorecards[scorecard]
    sc = res.scorecard
    together = explain_entities(run, scorecard, keys)
    assert [ex.key for ex in together] == keys
    metrics = res.frame.select(sc.key, *(m.name for m in sc.metrics))
    everyone = compute_scores(sc, metrics, keep_parts=True)
    for key, ex in list(zip(keys, together, strict=True))[::stride]:
        assert ex == explain_entity(run, scorecard, key), key
        # each part's normalized value as scoring everyone gives it (a rank part among everyone)
        row = everyone.filter(pl.col(sc.key) == key).row(0, named=True)
        for score, line in zip(sc.scores, ex.scores, strict=True):
            assert [p.normalized for p in line.parts] == [
                row[part_column(score, i)] for i in range(len(score.parts))
            ]
        suggestions, reason = _oracle(run, scorecard, ex)
        assert (
            tuple((s.metric, s.current, s.target, s.change, s.reaches) for s in ex.suggestions) == suggestions
        )
        assert ex.no_suggestion_reason == reason
        for s in ex.suggestions:
            changed = metrics.with_columns(
                pl.when(pl.col(sc.key) == key)
                .then(pl.lit(s.target))
                .otherwise(pl.col(s.metric))
                .alias(s.metric)
            )
            total = compute_scores(sc, changed).filter(pl.col(sc.key) == key)[sc.rank_by][0]
            assert s.reaches == total and ex.target_score is not None
            assert round_micro(total) >= round_micro(ex.target_score)
            assert tier_for(sc, total) is not None
    return together


@pytest.mark.parametrize("scorecard", _NAMES)
def test_every_entity_of_the_sample(sample: dict[str, RunResult], scorecard: str) -> None:
    run = sample[scorecard]
    res = run.scorecards[scorecard]
    keys = res.frame[res.key].to_list()
    together = _check(run, scorecard, keys)
    if scorecard != "product":  # the product scorecard has no tiers: nothing is missing
        assert sum(len(ex.suggestions) for ex in together) > 20
        assert any(ex.no_suggestion_reason for ex in together)
    # any order, repeated keys, one key
    assert explain_entities(run, scorecard, keys[::-1]) == together[::-1]
    assert explain_entities(run, scorecard, [keys[3], keys[3]]) == [together[3], together[3]]
    assert explain_entities(run, scorecard, []) == []


def test_an_unknown_key_is_refused_with_the_nearest(sample: dict[str, RunResult]) -> None:
    with pytest.raises(DataError, match="unknown shop_id 'ks70005'"):
        explain_entities(sample["merchant"], "merchant", ["ks700055", "ks70005"])


# --- a synthetic ruleset: rank normalizers, missing: skip, requires, bands and log -------------------------


def _rank_scorecard(nested: bool) -> Scorecard:
    """The default merchant scorecard with rank, bands, decreasing linear and log parts, `missing` skip and
    0.5, and `requires` on two scores; with `nested`, the total ranks a score that itself has rank parts
    (changing one entity then moves the others' values of that score)."""
    sc = next(s for s in load_rules(None).scorecards if s.name == "merchant")
    rank = Normalizer("rank", ())
    bands = Normalizer("bands", ((1.0, 0.2), (3.0, 0.6), (5.0, 1.0)))
    scores = {s.name: s for s in sc.scores}

    def part(score: str, i: int, **changes: object) -> object:
        return replace(scores[score].parts[i], **changes)

    diligence = replace(
        scores["diligence"],
        parts=(
            part("diligence", 0, normalize=rank, missing="skip"),
            part("diligence", 1),
            part("diligence", 2, normalize=bands),
        ),
    )
    distribution = replace(
        scores["distribution"],
        parts=(
            part("distribution", 0, normalize=Normalizer("log", (10.0, 50_000.0))),
            part("distribution", 1, missing=0.5),
            part("distribution", 2, normalize=Normalizer("linear", (0.1, 0.0)), missing="skip"),
        ),
    )
    incremental = replace(
        scores["incremental"],
        parts=(
            part("incremental", 0, normalize=rank),
            part("incremental", 1, normalize=bands),
            part("incremental", 2, missing="skip"),
        ),
        requires=Requires("live_days", 5.0, scores["incremental"].loc),
    )
    total = scores["total"]
    total = replace(
        total,
        parts=(
            replace(total.parts[0], normalize=rank) if nested else total.parts[0],
            replace(total.parts[1], normalize=rank),  # distribution has no rank part: not nested
            replace(total.parts[2], missing="skip"),
        ),
    )
    chosen = (scores["store_experience"], diligence, distribution, incremental, total)
    return replace(sc, name="merchant", scores=chosen)


def _rank_run(nested: bool, entities: int = 80) -> RunResult:
    from tests.test_report_scale import synthetic_run

    base = synthetic_run(entities, seed=7)
    res = base.scorecards["merchant"]
    sc = _rank_scorecard(nested)
    metrics = res.frame.select(sc.key, *(m.name for m in sc.metrics))
    rng = np.random.default_rng(3)
    # NULL values for `missing` to decide (a NULL live_days leaves incremental NULL: `requires`)
    metrics = metrics.with_columns(
        pl.when(pl.Series(rng.random(entities) < 0.1)).then(None).otherwise(pl.col(name)).alias(name)
        for name in ("live_days", "distribution_share", "self_live_growth", "new_followers")
    )
    result = finish_scorecard(sc, base.period, metrics)
    return replace(base, scorecards={"merchant": result})


@pytest.mark.parametrize(
    "nested", [pytest.param(False, id="rank"), pytest.param(True, id="nested-rank", marks=pytest.mark.slow)]
)
def test_every_entity_of_a_ruleset_with_rank_parts(nested: bool) -> None:
    run = _rank_run(nested)
    keys = run.scorecards["merchant"].frame["shop_id"].to_list()
    together = _check(run, "merchant", keys, stride=3)  # 27 of the 80 against the oracles
    assert sum(len(ex.suggestions) for ex in together) > 20
    assert any(s.metric == "live_weeks" for ex in together for s in ex.suggestions)  # a bands part
    notes = {p.note for ex in together for s in ex.scores for p in s.parts}
    assert "skipped: no value (missing: skip)" in notes
    assert any(
        s.null_reason and s.null_reason.startswith("requires live_days") for ex in together for s in ex.scores
    )


def test_an_entity_without_activity_is_explained_beside_the_population() -> None:
    """A key added by score_absent (not in the population) is ranked among everyone, as explain does."""
    run = _rank_run(False, 60)
    res = run.scorecards["merchant"]
    run = replace(run, scorecards={"merchant": score_absent(res, ["ks9999999"], {"ks9999999": "idle"})})
    keys = [*res.frame["shop_id"].to_list()[:20], "ks9999999"]
    together = _check(run, "merchant", keys)
    assert together[-1].in_population is False and together[-1].name == "idle"


def test_one_entity_of_many_is_scored_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    """Explaining one entity scores its own row, not everyone's, unless a rank part needs everyone (the
    work, not a time, is checked: tests are not timed)."""
    from chuanliu_cli.scoring import explain as explain_module
    from tests.test_report_scale import synthetic_run

    run = synthetic_run(20_000)
    key = run.scorecards["merchant"].frame["shop_id"][500]
    scored_everyone: list[int] = []
    parts_rows: list[int] = []
    real_scores, real_parts = explain_module.compute_scores, explain_module._score_parts

    def counting_scores(sc: object, frame: pl.DataFrame, keep_parts: bool = False) -> pl.DataFrame:
        scored_everyone.append(frame.height)
        return real_scores(sc, frame, keep_parts)  # type: ignore[arg-type]

    def counting_parts(sc: object, chosen: pl.DataFrame, ops: object) -> pl.DataFrame:
        parts_rows.append(chosen.height)
        return real_parts(sc, chosen, ops)  # type: ignore[arg-type]

    monkeypatch.setattr(explain_module, "compute_scores", counting_scores)
    monkeypatch.setattr(explain_module, "_score_parts", counting_parts)
    explained = explain_entity(run, "merchant", key)
    assert explained.key == key
    assert scored_everyone == [] and parts_rows == [1], (scored_everyone, parts_rows)
