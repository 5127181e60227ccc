"""`rules sensitivity` (design/variants.py, design/sensitivity.py, present/tornado.py): hand-checked
effects on a four-merchant fixture, zero for a weight nobody's result depends on, variants equal to the
pipeline's scoring, the SPEC §10 JSON shape, and the command on the sample."""

from __future__ import annotations

import json
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest

from chuanliu_cli.api import Session
from chuanliu_cli.design.sensitivity import sensitivity
from chuanliu_cli.design.variants import Variants
from chuanliu_cli.periods import parse_period
from chuanliu_cli.present.tornado import tornado
from chuanliu_cli.rules.parser import parse_ruleset
from chuanliu_cli.scoring.pipeline import finish_scorecard
from tests.conftest import REPO

TINY = textwrap.dedent(
    """
    version: 1
    name: tiny
    scorecards:
      merchant:
        key: shop_id
        metrics:
          days: {from: livestreams, value: count(*)}
          spare: {from: livestreams, value: count(*)}
        scores:
          total:
            parts:
              - {metric: days, weight: 1, normalize: {linear: [0, 20]}}
          unused:
            parts:
              - {metric: days, weight: 2, normalize: {linear: [0, 20]}}
              - {metric: spare, weight: 3, normalize: {linear: [0, 10]}}
        gates:
          - {id: enough, when: days >= 10, reason: too few days}
        tiers:
          - {name: A, min_score: 0, multiplier: 1}
        reward: {pool: 1000}
    """
)


def tiny_variants() -> Variants:
    """Four merchants with 8, 10, 12 and 16 days: total = 5 × days; the gate days >= 10 lets three in."""
    ruleset = parse_ruleset(TINY, "tiny.yaml")
    sc = ruleset.scorecard("merchant")
    metrics = pl.DataFrame(
        {"shop_id": ["k1", "k2", "k3", "k4"], "days": [8.0, 10.0, 12.0, 16.0], "spare": [1.0, 2.0, 3.0, 4.0]}
    )
    return Variants.of(ruleset, finish_scorecard(sc, parse_period("2023-05", "month"), metrics))


def changes(found: Any, path: str) -> dict[float, tuple[Any, ...]]:
    knob = next(k for k in found.knobs if k.knob.path == path)
    return {c.delta: (c.eligible, c.entrants, c.leavers, c.grant_moved) for c in knob.changes}


def test_gate_threshold_effects_match_the_hand_computed_grants() -> None:
    # as written: k2, k3, k4 share 1000 by 50:60:80 → 263, 316 (largest remainder), 421
    # -20 % (days >= 8): k1 enters; 40:50:60:80 → 174, 217, 261, 348: Σ|Δ| = 174+46+55+73 = 348, moved 174
    # -5 % (days >= 9.5): nobody moves; +5 % and +20 % (days >= 10.5, >= 12): k2 leaves; 60:80 → 429, 571:
    # Σ|Δ| = 263+113+150 = 526, moved 263
    v = tiny_variants()
    found = sensitivity(v)
    assert found.eligible == 3 and found.allocated == 1000
    assert changes(found, "merchant.gates.enough.days") == {
        -0.2: (4, 1, 0, 174),
        -0.05: (3, 0, 0, 0),
        0.05: (2, 0, 1, 263),
        0.2: (2, 0, 1, 263),
    }
    grants = v.evaluate({"merchant.gates.enough.days": 8.0})
    assert grants is not None and grants.grant is not None
    frame = v.result.frame
    by_key = dict(zip(frame["shop_id"].to_list(), grants.grant.tolist(), strict=True))
    assert by_key == {"k1": 174, "k2": 217, "k3": 261, "k4": 348}


def test_a_weight_no_result_depends_on_has_no_effect() -> None:
    found = sensitivity(tiny_variants())
    # the only part of total (score = 100 × w·n / w), and the parts of a score nothing reads
    for path in (
        "merchant.scores.total.days.weight",
        "merchant.scores.unused.days.weight",
        "merchant.scores.unused.spare.weight",
    ):
        assert set(changes(found, path).values()) == {(3, 0, 0, 0)}, path


def test_pool_changes_move_grants_without_changing_the_list() -> None:
    found = sensitivity(tiny_variants())
    effects = changes(found, "merchant.reward.pool")
    assert all(e[:3] == (3, 0, 0) for e in effects.values())
    assert effects[0.2][3] == 100  # 1200 instead of 1000: 316+379+505 against 263+316+421 → Σ|Δ| 200
    # (min_score 0 moved by ±x % is still 0)
    assert set(changes(found, "merchant.tiers.A.min_score").values()) == {(3, 0, 0, 0)}


def test_json_has_the_spec_shape() -> None:
    found = sensitivity(tiny_variants())
    knob = next(k for k in found.knobs if k.knob.path == "merchant.gates.enough.days").to_dict()
    assert list(knob) == ["path", "value", "changes"]
    assert list(knob["changes"][0]) == ["delta", "eligible", "entrants", "leavers", "grant_moved"]
    assert knob["value"] == 10.0 and [c["delta"] for c in knob["changes"]] == [-0.2, -0.05, 0.05, 0.2]


def test_tornado_draws_the_knobs_that_move_something() -> None:
    svg = tornado(sensitivity(tiny_variants()))
    assert svg.startswith("<svg") and svg.endswith("</svg>")
    assert "gates.enough.days" in svg and "reward.pool" in svg
    assert "unused.spare" not in svg  # no effect: not drawn
    assert "merchant.gates" not in svg  # labels drop the scorecard's name


# --- the sample ------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def sample() -> Iterator[Session]:
    with Session(data=REPO / "sample_data") as s:
        yield s


def test_variants_agree_with_the_pipeline_on_the_sample(sample: Session) -> None:
    from chuanliu_cli.scoring.pipeline import score_period

    ruleset = parse_ruleset((REPO / "rules" / "chuanliu.yaml").read_text(encoding="utf-8"), "chuanliu.yaml")
    period = parse_period("2023-05", "month")
    with sample._source() as source:
        run = score_period(source, ruleset, period, upto="merchant")
    res = run.scorecards["merchant"]
    v = Variants.of(ruleset, res)
    metrics = res.frame.select("shop_id", *(m.name for m in res.scorecard.metrics)).sort("shop_id")
    # weights of a gated score, of total, a tier and the cap: each variant scored again by the pipeline
    for values in (
        {"merchant.scores.store_experience.quality_avg_90d.weight": 20.0},
        {"merchant.scores.total.diligence.weight": 45.0, "merchant.tiers.A.min_score": 60.0},
        {"merchant.reward.cap": 60_000_000.0},
    ):
        sc = v.concrete(values)
        assert sc is not None
        real = finish_scorecard(sc, period, metrics).frame.sort("shop_id")
        mine = v.evaluate(values)
        assert mine is not None and mine.grant is not None
        order = np.argsort(res.frame["shop_id"].to_numpy())
        assert mine.eligible[order].tolist() == real["eligible"].to_list(), values
        assert mine.grant[order].tolist() == real["grant"].fill_null(0).to_list(), values


def test_the_command_writes_the_spec_json(sample: Session, invoke: Any, tmp_path: Path) -> None:
    out = tmp_path / "s.json"
    rules = str(REPO / "rules" / "chuanliu.yaml")
    result = invoke(
        "rules",
        "sensitivity",
        "--month",
        "2023-05",
        "--data",
        str(REPO / "sample_data"),
        "--rules",
        rules,
        "-o",
        str(out),
    )
    assert result.exit_code == 0, result.output
    doc = json.loads(out.read_text(encoding="utf-8"))
    assert doc["scorecard"] == "merchant" and doc["base"]["eligible"] > 0
    paths = [k["path"] for k in doc["knobs"]]
    assert "merchant.gates.stable_live.live_days" in paths and "merchant.reward.pool" in paths
    assert "merchant.tiers.S.min_score" in paths and "merchant.scores.total.diligence.weight" in paths
    # S at -20 % (64) would sit below A (65): not a valid ruleset, reported as nulls
    s = next(k for k in doc["knobs"] if k["path"] == "merchant.tiers.S.min_score")
    assert s["changes"][0] == {
        "delta": -0.2,
        "eligible": None,
        "entrants": None,
        "leavers": None,
        "grant_moved": None,
    }


def test_csv_has_a_row_per_knob_and_delta() -> None:
    from chuanliu_cli.present.design import SENSITIVITY_COLUMNS, sensitivity_document
    from chuanliu_cli.present.writers import render

    found = sensitivity(tiny_variants())
    text = render("csv", sensitivity_document({"knobs": []}, found))
    assert isinstance(text, str)
    lines = text.splitlines()
    assert lines[0] == ",".join(SENSITIVITY_COLUMNS)
    assert len(lines) == 1 + 4 * len(found.knobs)
    assert "merchant.gates.enough.days,10.0,-0.2,8.0,4,1,0,174" in lines
