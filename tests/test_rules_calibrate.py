"""Tunable values and `rules calibrate` (rules/tuning.py, the parser's params and tune nodes,
design/calibrate.py): parsing and refusing to score, targets met exactly on the sample, the closest result
for an unreachable one, the written ruleset (numbers only, comments kept, valid), and determinism."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from chuanliu_cli.api import Session, check_rules
from chuanliu_cli.design.calibrate import parse_target
from chuanliu_cli.errors import RulesetError, UsageError
from chuanliu_cli.rules.parser import parse_ruleset
from chuanliu_cli.rules.tuning import bind, param_references, rewrite
from tests.conftest import REPO

DEFAULT = (REPO / "rules" / "chuanliu.yaml").read_text(encoding="utf-8")


def tuned(min_live_days: str = "{tune: [4, 16]}", more: bool = False) -> str:
    """The default ruleset with stable_live reading parameters, and with `more` a tunable weight, tier
    threshold and cap."""
    text = DEFAULT.replace(
        "filters:\n",
        f"params:\n  min_live_days: {min_live_days}   # self-broadcast days\n  min_live_weeks: 3\nfilters:\n",
        1,
    ).replace(
        "when: live_days >= 8 and live_weeks >= 3",
        "when: live_days >= params.min_live_days and live_weeks >= params.min_live_weeks",
    )
    if more:
        text = (
            text.replace(
                "{name: S, min_score: 80, multiplier: 3}",
                "{name: S, min_score: {tune: [70, 90]}, multiplier: 3}",
            )
            .replace(
                "{metric: live_days, weight: 50, normalize",
                "{metric: live_days, weight: {tune: [10, 60]}, normalize",
            )
            .replace(
                "      cap: 100_000_000",
                "      cap:\n        tune: [50_000_000, 200_000_000]  # per merchant",
                1,
            )
        )
    assert text.count("tune:") == ("tune" in min_live_days) + (3 if more else 0)
    return text


@pytest.fixture(scope="module")
def sample() -> Iterator[Session]:
    with Session(data=REPO / "sample_data") as s:
        yield s


@pytest.fixture
def tuned_file(tmp_path: Path) -> Path:
    path = tmp_path / "tuned.yaml"
    path.write_text(tuned(), encoding="utf-8")
    return path


# --- parsing ---------------------------------------------------------------------------------------------


def test_tune_nodes_are_recorded_and_params_bound_into_gates() -> None:
    rs = parse_ruleset(tuned(more=True), "t.yaml")
    assert [(t.path, t.kind, t.low, t.high) for t in rs.tunables] == [
        ("params.min_live_days", "param", 4, 16),
        ("merchant.scores.diligence.live_days.weight", "weight", 10, 60),
        ("merchant.tiers.S.min_score", "min_score", 70, 90),
        ("merchant.reward.cap", "cap", 50_000_000, 200_000_000),
    ]
    gate = next(g for g in rs.scorecard("merchant").gates if g.id == "stable_live")
    assert gate.when.text == "live_days >= 4 and live_weeks >= 3"  # (a tunable holds its low end)
    assert rs.params == {"min_live_days": 4, "min_live_weeks": 3}
    assert [(u.gate, u.params) for u in rs.param_uses] == [
        ("stable_live", ("min_live_days", "min_live_weeks"))
    ]
    assert any("4 tunable value(s)" in w for w in rs.warnings)


def test_params_in_quotes_are_text_and_bound_offsets_point_back() -> None:
    text = "x = 'params.a' and y >= params.b"
    assert param_references(text) == [(24, 32, "b")]
    bound, origin = bind(text, {"b": 2.5})
    assert bound == "x = 'params.a' and y >= 2.5" and origin[24:27] == [24, 24, 24]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            ("params.min_live_weeks", "params.min_live_wekes"),
            "unknown parameter 'min_live_wekes'; did you mean",
        ),
        (("{tune: [4, 16]}", "{tune: [16, 4]}"), "needs low < high"),
        (
            (
                "weight: 50, normalize: {linear: [4, 26]}",
                "weight: {tune: [0, 5]}, normalize: {linear: [4, 26]}",
            ),
            "a weight must be greater than 0",
        ),
        (("{tune: [4, 16]}", "{tune: [4]}"), "takes a list of 2 numbers"),
    ],
)
def test_bad_params_and_tune_nodes_are_located(change: tuple[str, str], message: str) -> None:
    with pytest.raises(RulesetError) as info:
        parse_ruleset(tuned().replace(*change, 1), "t.yaml")
    assert any(message in e and e.startswith("t.yaml:") for e in info.value.errors), info.value.errors


def test_a_parameter_no_gate_reads_is_a_warning() -> None:
    rs = parse_ruleset(
        tuned("8").replace("  min_live_weeks: 3\n", "  min_live_weeks: 3\n  spare: 1\n"), "t.yaml"
    )
    assert any("parameter 'spare' is not read by any gate" in w for w in rs.warnings)
    assert rs.tunables == ()


def test_a_ruleset_with_tunable_values_does_not_score(sample: Session, tuned_file: Path) -> None:
    with pytest.raises(RulesetError) as info:
        sample.eligible("2023-05", rules=tuned_file)
    assert "tunable values must be calibrated first: chuanliu rules calibrate" in info.value.errors[0]
    assert info.value.errors[1].startswith(f"{tuned_file}:")  # each tunable, located
    assert int(info.value.exit_code) == 3


def test_rewrite_replaces_only_the_tune_nodes() -> None:
    rs = parse_ruleset(tuned(more=True), "t.yaml")
    text = rewrite(rs, {t.path: t.high for t in rs.tunables})
    before, after = rs.text.splitlines(), text.splitlines()
    changed = [(a, b) for a, b in zip(before, after, strict=True) if a != b]
    assert changed == [
        (
            "  min_live_days: {tune: [4, 16]}   # self-broadcast days",
            "  min_live_days: 16   # self-broadcast days",
        ),
        (
            "          - {metric: live_days, weight: {tune: [10, 60]}, normalize: {linear: [4, 26]}}",
            "          - {metric: live_days, weight: 60, normalize: {linear: [4, 26]}}",
        ),
        (
            "      - {name: S, min_score: {tune: [70, 90]}, multiplier: 3}",
            "      - {name: S, min_score: 90, multiplier: 3}",
        ),
        ("        tune: [50_000_000, 200_000_000]  # per merchant", "        200_000_000  # per merchant"),
    ]
    assert parse_ruleset(text, "out.yaml").tunables == ()


# --- targets ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("eligible ~ 3", "cannot read --target"),
        ("tier:Z <= 5%", "unknown tier 'Z'"),
        ("eligible >= 120%", "at most 100%"),
    ],
)
def test_bad_targets_are_usage_errors(text: str, message: str) -> None:
    with pytest.raises(UsageError, match=message):
        parse_target(text, ["S", "A"], True, True)


def test_targets_measure_counts_and_percentages_exactly() -> None:
    t = parse_target("tier:S <= 5%", ["S"], True, True)
    assert t.judge(3, 60) == (True, 0.0)  # 3 of 60 = 5 %
    met, distance = t.judge(4, 60)
    assert not met and distance == pytest.approx(100 / 60)  # one entity too many: 1.67 points
    assert parse_target("eligible = 40", [], False, False).judge(38, 60) == (False, pytest.approx(200 / 60))


# --- calibration on the sample ---------------------------------------------------------------------------


def eligible_with(sample: Session, min_live_days: int, tmp_path: Path) -> int:
    path = tmp_path / f"fixed-{min_live_days}.yaml"
    path.write_text(tuned(str(min_live_days)), encoding="utf-8")
    return int(sample.eligible("2023-05", rules=path, record=False).totals["eligible"])


def test_a_reachable_target_is_met_exactly(sample: Session, tuned_file: Path, tmp_path: Path) -> None:
    wanted = eligible_with(sample, 11, tmp_path)
    out = tmp_path / "out.yaml"
    c = sample.calibrate(["2023-05"], [f"eligible = {wanted}"], out, rules=tuned_file)
    assert c.search.met and c.search.distance == 0
    assert c.runs[0].scorecards["merchant"].totals()["eligible"] == wanted  # the written file, scored
    chosen = c.search.chosen["params.min_live_days"]
    assert chosen == int(chosen)  # a whole number of days, as the data holds
    assert sample.eligible("2023-05", rules=out, record=False).totals["eligible"] == wanted  # end to end
    written = out.read_text(encoding="utf-8")
    assert "tune" not in written and "# self-broadcast days" in written
    assert f"min_live_days: {int(chosen)}   # self-broadcast days" in written
    ruleset, _summary = check_rules(out)
    assert ruleset.tunables == ()
    # determinism: the same search writes the same bytes
    again = tmp_path / "again.yaml"
    sample.calibrate(["2023-05"], [f"eligible = {wanted}"], again, rules=tuned_file)
    assert again.read_bytes() == out.read_bytes()


@pytest.mark.slow
def test_several_targets_over_weights_tiers_and_the_cap(sample: Session, tmp_path: Path) -> None:
    rules = tmp_path / "more.yaml"
    rules.write_text(tuned(more=True), encoding="utf-8")
    # targets that one choice of values meets (scored by the pipeline), whatever the sample holds
    reference = tmp_path / "reference.yaml"
    ruleset = parse_ruleset(tuned(more=True), str(rules))
    values = dict(zip((t.path for t in ruleset.tunables), (9, 40, 75, 80_000_000), strict=True))
    reference.write_text(rewrite(ruleset, values), encoding="utf-8")
    scored = sample.eligible("2023-05", rules=reference, record=False)
    frame = scored.result.frame
    wanted = (
        scored.totals["eligible"],
        scored.totals["per_tier"]["S"],
        int((frame["grant"] == 80_000_000).sum()),
    )
    targets = [f"eligible = {wanted[0]}", f"tier:S <= {wanted[1]}", f"capped >= {wanted[2]}"]
    c = sample.calibrate(["2023-05"], targets, tmp_path / "out.yaml", rules=rules)
    assert c.search.met, [m.to_dict() for m in c.search.measured]
    result = c.runs[0].scorecards["merchant"]
    assert result.totals()["eligible"] == wanted[0] and result.totals()["per_tier"]["S"] <= wanted[1]
    cap = c.search.chosen["merchant.reward.cap"]
    assert int((result.frame["grant"] == cap).sum()) >= wanted[2]


def test_an_unreachable_target_writes_the_closest_and_says_so(
    invoke: Any, tuned_file: Path, tmp_path: Path
) -> None:
    out = tmp_path / "closest.yaml"
    result = invoke(
        "rules",
        "calibrate",
        "--month",
        "2023-05",
        "--data",
        str(REPO / "sample_data"),
        "--rules",
        str(tuned_file),
        "--target",
        "eligible >= 59",
        "-o",
        str(out),
    )
    assert result.exit_code == 0, result.output
    assert "cannot all be met" in result.output and "missed" in result.output
    assert out.exists() and "tune" not in out.read_text(encoding="utf-8")


def test_a_parameter_not_compared_directly_cannot_be_calibrated(sample: Session, tmp_path: Path) -> None:
    rules = tmp_path / "odd.yaml"
    rules.write_text(
        tuned().replace("live_days >= params.min_live_days", "live_days * 2 >= params.min_live_days")
    )
    with pytest.raises(RulesetError) as info:
        sample.calibrate(["2023-05"], ["eligible >= 10"], tmp_path / "o.yaml", rules=rules)
    assert "params.min_live_days cannot be calibrated" in info.value.errors[0]
    assert info.value.errors[0].startswith(f"{rules}:")


def test_nothing_to_calibrate_is_a_usage_error(sample: Session, tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="no tunable values"):
        sample.calibrate(
            ["2023-05"], ["eligible >= 10"], tmp_path / "o.yaml", rules=REPO / "rules" / "chuanliu.yaml"
        )


def test_targets_hold_in_each_month_given(sample: Session, tuned_file: Path, tmp_path: Path) -> None:
    c = sample.calibrate(["2023-04", "2023-05"], ["eligible >= 20"], tmp_path / "o.yaml", rules=tuned_file)
    assert [m.period for m in c.search.measured] == ["2023-04", "2023-05"]
    assert c.search.met and [r.period.label for r in c.runs] == ["2023-04", "2023-05"]
    for run in c.runs:
        assert run.scorecards["merchant"].totals()["eligible"] >= 20


def test_a_name_read_by_two_parts_has_one_path_per_part() -> None:
    import polars as pl

    from chuanliu_cli.design.calibrate import knobs_for
    from chuanliu_cli.design.variants import Variants
    from chuanliu_cli.periods import parse_period
    from chuanliu_cli.scoring.pipeline import finish_scorecard

    text = """\
version: 1
name: two-parts
scorecards:
  merchant:
    key: shop_id
    metrics:
      days: {from: livestreams, value: count(*)}
    scores:
      total:
        parts:
          - {metric: days, weight: 1, normalize: {linear: [0, 20]}}
          - {metric: days, weight: {tune: [1, 3]}, normalize: {log: [0, 20]}}
"""
    rs = parse_ruleset(text, "two.yaml")
    assert [t.path for t in rs.tunables] == ["merchant.scores.total.days.weight#2"]
    metrics = pl.DataFrame({"shop_id": ["a", "b"], "days": [3.0, 9.0]})
    res = finish_scorecard(rs.scorecard("merchant"), parse_period("2023-05", "month"), metrics)
    [(_tunable, knob)] = knobs_for(Variants.of(rs, res), rs.tunables)
    assert (knob.score, knob.part) == ("total", 1)


def test_the_output_may_not_be_the_tunable_ruleset(sample: Session, tuned_file: Path) -> None:
    with pytest.raises(UsageError, match="is the ruleset being calibrated"):
        sample.calibrate(["2023-05"], ["eligible >= 10"], tuned_file, rules=tuned_file)
    assert "tune:" in tuned_file.read_text(encoding="utf-8")


def test_tier_ranges_whose_middles_are_out_of_order_are_refused() -> None:
    import polars as pl

    from chuanliu_cli.design.calibrate import knobs_for, search
    from chuanliu_cli.design.variants import Variants
    from chuanliu_cli.periods import parse_period
    from chuanliu_cli.scoring.pipeline import finish_scorecard

    text = """\
version: 1
name: tiers
scorecards:
  merchant:
    key: shop_id
    metrics:
      days: {from: livestreams, value: count(*)}
    scores:
      total:
        parts:
          - {metric: days, weight: 1, normalize: {linear: [0, 20]}}
    tiers:
      - {name: S, min_score: {tune: [60, 70]}, multiplier: 2}
      - {name: A, min_score: {tune: [65, 75]}, multiplier: 1}
"""
    rs = parse_ruleset(text, "tiers.yaml")
    metrics = pl.DataFrame({"shop_id": ["a", "b"], "days": [3.0, 19.0]})
    res = finish_scorecard(rs.scorecard("merchant"), parse_period("2023-05", "month"), metrics)
    v = Variants.of(rs, res)
    with pytest.raises(RulesetError) as info:
        search(
            [("2023-05", v)],
            knobs_for(v, rs.tunables),
            [parse_target("tier:S <= 1", ["S", "A"], False, False)],
        )
    assert "do not make a valid ruleset" in info.value.errors[0]
    assert info.value.errors[2].startswith("tiers.yaml:")
    assert "merchant.tiers.A.min_score starts near 70" in info.value.errors[2]


def test_rules_show_lists_parameters_and_tunable_values() -> None:
    from rich.console import Console

    from chuanliu_cli.present.ruleset import render_ruleset

    console = Console(width=200, record=True, no_color=True)
    for renderable in render_ruleset(parse_ruleset(tuned(more=True), "t.yaml")):
        console.print(renderable)
    text = console.export_text()
    assert "param min_live_weeks" in text and "tunable merchant.tiers.S.min_score" in text
    assert "[70, 90]: chosen by `chuanliu rules calibrate`; shown as 70 until then" in text


def test_capped_and_pool_to_are_measured_on_the_grants() -> None:
    import polars as pl

    from chuanliu_cli.design.calibrate import measure
    from chuanliu_cli.design.variants import Variants
    from chuanliu_cli.periods import parse_period
    from chuanliu_cli.scoring.pipeline import finish_scorecard

    text = """\
version: 1
name: capped
scorecards:
  merchant:
    key: shop_id
    metrics:
      days: {from: livestreams, value: count(*)}
    scores:
      total:
        parts:
          - {metric: days, weight: 1, normalize: {linear: [0, 20]}}
    tiers:
      - {name: S, min_score: 70, multiplier: 1}
      - {name: A, min_score: 0, multiplier: 1}
    reward: {pool: 1000, cap: {tune: [300, 500]}}
"""
    rs = parse_ruleset(text, "capped.yaml")
    metrics = pl.DataFrame({"shop_id": ["k2", "k3", "k4"], "days": [10.0, 12.0, 16.0]})
    res = finish_scorecard(rs.scorecard("merchant"), parse_period("2023-05", "month"), metrics)
    v = Variants.of(rs, res)
    # cap 400: 50:60:80 of 1000 gives k4 421 > 400, so k4 is capped and k2, k3 share 600 as 273 and 327
    outcome = v.evaluate({"merchant.reward.cap": 400.0})
    assert outcome is not None
    targets = [
        parse_target(t, ["S", "A"], True, True) for t in ("capped = 1", "pool_to:S = 40%", "pool_to:A <= 600")
    ]
    assert [(m.actual, m.base, m.met) for m in measure(targets, outcome, 3, "2023-05")] == [
        (1, 3, True),
        (400, 1000, True),
        (600, 1000, True),
    ]
