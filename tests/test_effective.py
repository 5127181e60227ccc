"""Effective-dated rulesets (SPEC §9): `effective` parsed and located, a directory of versions resolved by
period (overlaps and gaps exit 3), a single file warning outside its range, compare across the upgrade."""

from __future__ import annotations

import json
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

from chuanliu_cli.errors import RulesetError
from chuanliu_cli.rules.effective import default_rules_dir, ruleset_files, ruleset_for_period
from chuanliu_cli.rules.parser import parse_ruleset

REPO = Path(__file__).resolve().parent.parent
LAUNCH = REPO / "rules" / "chuanliu-2023-01.yaml"
UPGRADE = REPO / "rules" / "chuanliu.yaml"

MINI = """\
version: 1
name: mini
period: {period}
effective: {effective}
scorecards:
  merchant:
    key: shop_id
    metrics:
      gmv: {{from: orders, value: sum(net_amount)}}
    scores:
      total:
        parts:
          - {{metric: gmv, weight: 1, normalize: {{linear: [0, 100]}}}}
"""


def mini(effective: str, period: str = "month") -> str:
    return MINI.format(effective=effective, period=period)


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A database holding a small synthetic sample: March to May 2023."""
    from chuanliu_cli.api import Session
    from chuanliu_cli.sample import generate_sample

    out = tmp_path_factory.mktemp("small")
    generate_sample(out / "data", merchants=12, months=3, end="2023-05", seed=7)
    path = str(out / "small.duckdb")
    with Session(db=path) as session:
        session.load(directory=out / "data")
    return path


def versions(tmp_path: Path, launch_effective: str, upgrade_effective: str = "{from: 2023-05}") -> Path:
    """A directory of the two bundled versions with their `effective` lines replaced."""
    plan = tmp_path / "plan"
    plan.mkdir()
    launch = LAUNCH.read_text(encoding="utf-8")
    upgrade = UPGRADE.read_text(encoding="utf-8")
    (plan / "launch.yaml").write_text(
        launch.replace("effective: {from: 2023-01, to: 2023-04}", f"effective: {launch_effective}"),
        encoding="utf-8",
    )
    (plan / "upgrade.yaml").write_text(
        upgrade.replace("effective: {from: 2023-05}", f"effective: {upgrade_effective}"), encoding="utf-8"
    )
    return plan


# --- the `effective` key ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("effective", "period", "start", "end"),
    [
        ("{from: 2023-01, to: 2023-04}", "month", "2023-01", "2023-04"),
        ("{from: 2023-W05}", "week", "2023-W05", None),
        ("{from: 2023-W01, to: 2023-W17}", "week", "2023-W01", "2023-W17"),
        ("{from: 2023-05, to: null}", "month", "2023-05", None),
    ],
)
def test_effective_parsed(effective: str, period: str, start: str, end: str | None) -> None:
    ruleset = parse_ruleset(mini(effective, period), "r.yaml")
    assert ruleset.effective is not None
    assert (ruleset.effective.start, ruleset.effective.end) == (start, end)
    assert ruleset.effective.loc.line == 4


@pytest.mark.parametrize(
    ("effective", "period", "message"),
    [
        ("{from: 2023-13}", "month", "r.yaml:4:19: effective from '2023-13' is not a month"),
        ("{from: 2023-W05}", "month", "r.yaml:4:19: effective from '2023-W05' is not a month"),
        ("{from: 2023-05}", "week", "r.yaml:4:19: effective from '2023-05' is not a week"),
        ("{from: 2023-05, to: 2023-04}", "month", "r.yaml:4:32: effective to (2023-04) is before from"),
        ("{from: 2023-5}", "month", "r.yaml:4:19: effective from '2023-5' is not a month"),
        ("{from: 2023-05, until: 2023-09}", "month", "r.yaml:4:28: unknown key 'until' in effective"),
        ("{to: 2023-09}", "month", "r.yaml:4:12: effective is missing 'from'"),
        ("2023-05", "month", "r.yaml:4:12: effective must be a mapping"),
    ],
)
def test_effective_errors_located(effective: str, period: str, message: str) -> None:
    with pytest.raises(RulesetError) as caught:
        parse_ruleset(mini(effective, period), "r.yaml")
    assert any(e.startswith(message) for e in caught.value.errors), caught.value.errors


# --- the bundled directory of versions ---------------------------------------------------------------------


def test_bundled_versions_are_the_repository_rules() -> None:
    bundled = [p.name for p in ruleset_files(default_rules_dir())]
    assert bundled == ["chuanliu-2023-01.yaml", "chuanliu.yaml"]
    for name in bundled:
        assert (default_rules_dir() / name).read_bytes() == (REPO / "rules" / name).read_bytes()


@pytest.mark.parametrize(
    ("period", "name"),
    [("2023-01", "chuanliu-2023-01"), ("2023-04", "chuanliu-2023-01"), ("2023-05", "chuanliu-2023"),
     ("2024-11", "chuanliu-2023")],
)  # fmt: skip
def test_default_resolves_the_version_in_force(period: str, name: str) -> None:
    ruleset, p = ruleset_for_period(None, period)
    assert (ruleset.name, p.label) == (name, period)
    assert ruleset.warnings == ()
    assert ruleset_for_period(REPO / "rules", period)[0].name == name  # rules/ is the same directory


def test_launch_version_has_one_shopping_experience_gate_and_half_the_pools() -> None:
    launch = ruleset_for_period(None, "2023-02")[0]
    assert [sc.name for sc in launch.scorecards] == ["merchant", "promoter"]
    merchant, promoter = launch.scorecard("merchant"), launch.scorecard("promoter")
    assert [g.id for g in merchant.gates if "experience" in g.id] == ["shopping_experience"]
    assert [g.id for g in promoter.gates] == ["carried"]
    assert merchant.reward is not None and merchant.reward.pool == 2_000_000_000
    assert promoter.reward is not None and promoter.reward.pool == 500_000_000
    score = merchant.score("shopping_experience")
    assert score.requires is not None and score.requires.at_least == 20
    assert sorted(p.ref for p in score.parts) == ["logistics_avg_90d", "quality_avg_90d", "service_avg_90d"]


def test_shopping_experience_is_the_plain_average_of_the_three_ratings() -> None:
    from chuanliu_cli.scoring.pipeline import score_entity

    merchant = ruleset_for_period(None, "2023-02")[0].scorecard("merchant")
    values = {m.name: 0.0 for m in merchant.metrics}
    values.update(reviews_90d=20, quality_avg_90d=4.5, logistics_avg_90d=3.5, service_avg_90d=3.7)
    assert score_entity(merchant, values)["shopping_experience"] == pytest.approx((4.5 + 3.5 + 3.7) / 3)
    values["reviews_90d"] = 19
    assert score_entity(merchant, values)["shopping_experience"] is None  # too few reviews: the gate passes


def test_a_period_no_version_holds_exits_3(invoke: Callable[..., object], db: str) -> None:
    with pytest.raises(RulesetError) as caught:
        ruleset_for_period(None, "2022-12")
    (line,) = caught.value.errors
    assert "no ruleset is in force in 2022-12" in line
    assert "chuanliu-2023-01.yaml (chuanliu-2023-01, effective 2023-01 to 2023-04)" in line
    assert "chuanliu.yaml (chuanliu-2023, effective from 2023-05)" in line
    result = invoke("eligible", "--db", db, "--month", "2022-12")
    assert result.exit_code == 3, result.output  # type: ignore[attr-defined]
    assert "no ruleset is in force in 2022-12" in result.output  # type: ignore[attr-defined]


def test_overlapping_versions_exit_3_naming_both(
    tmp_path: Path, invoke: Callable[..., object], db: str
) -> None:
    plan = versions(tmp_path, "{from: 2023-01, to: 2023-05}")
    with pytest.raises(RulesetError) as caught:
        ruleset_for_period(plan, "2023-02")
    (line,) = caught.value.errors
    upgrade_line = UPGRADE.read_text(encoding="utf-8").splitlines().index("effective: {from: 2023-05}") + 1
    launch_line = (
        LAUNCH.read_text(encoding="utf-8").splitlines().index("effective: {from: 2023-01, to: 2023-04}")
    )
    assert line.startswith(f"{plan / 'upgrade.yaml'}:{upgrade_line}:12: the effective range of")
    assert "(chuanliu-2023, effective from 2023-05) overlaps that of" in line
    assert f"launch.yaml (chuanliu-2023-01, effective 2023-01 to 2023-05) at {launch_line + 1}:12" in line
    result = invoke("score", "--db", db, "--month", "2023-03", "--rules", str(plan))
    assert result.exit_code == 3, result.output  # type: ignore[attr-defined]
    assert "overlaps" in result.output  # type: ignore[attr-defined]


def test_a_gap_between_versions_exits_3_in_the_gap_only(tmp_path: Path) -> None:
    plan = versions(tmp_path, "{from: 2023-01, to: 2023-03}")
    assert ruleset_for_period(plan, "2023-03")[0].name == "chuanliu-2023-01"
    assert ruleset_for_period(plan, "2023-05")[0].name == "chuanliu-2023"
    with pytest.raises(RulesetError, match="no ruleset is in force in 2023-04"):
        ruleset_for_period(plan, "2023-04")


def test_a_version_without_a_range_is_refused(tmp_path: Path) -> None:
    plan = versions(tmp_path, "{from: 2023-01, to: 2023-04}")
    text = (plan / "upgrade.yaml").read_text(encoding="utf-8")
    (plan / "upgrade.yaml").write_text(text.replace("effective: {from: 2023-05}\n", ""), encoding="utf-8")
    with pytest.raises(RulesetError) as caught:
        ruleset_for_period(plan, "2023-02")
    assert caught.value.errors == [
        f"{plan / 'upgrade.yaml'}:1:1: ruleset chuanliu-2023 has no `effective` range, but it is one of the "
        f"versions in {plan}: add `effective: {{from: ...}}`, or move it out of the directory"
    ]


def test_an_error_in_one_version_is_reported_located(tmp_path: Path) -> None:
    plan = versions(tmp_path, "{from: 2023-01, to: 2023-4}")
    with pytest.raises(RulesetError) as caught:
        ruleset_for_period(plan, "2023-06")
    assert caught.value.errors[0].startswith(f"{plan / 'launch.yaml'}:")
    assert "effective to '2023-4' is not a month" in caught.value.errors[0]


def test_case_files_subdirectories_and_empty_directories(tmp_path: Path) -> None:
    plan = versions(tmp_path, "{from: 2023-01, to: 2023-04}")
    (plan / "launch.cases.yaml").write_text("cases: []\n", encoding="utf-8")
    (plan / "examples").mkdir()
    (plan / "examples" / "other.yaml").write_text("not: a ruleset\n", encoding="utf-8")
    assert ruleset_for_period(plan, "2023-04")[0].name == "chuanliu-2023-01"
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(RulesetError, match="holds no ruleset"):
        ruleset_for_period(empty, "2023-04")


def test_weekly_versions(tmp_path: Path) -> None:
    plan = tmp_path / "weeks"
    plan.mkdir()
    (plan / "a.yaml").write_text(mini("{from: 2023-W01, to: 2023-W17}", "week"), encoding="utf-8")
    (plan / "b.yaml").write_text(mini("{from: 2023-W18}", "week").replace("name: mini", "name: b"), "utf-8")
    assert ruleset_for_period(plan, "2023-W17")[0].name == "mini"
    assert ruleset_for_period(plan, "2023-W18")[0].name == "b"
    (plan / "c.yaml").write_text(mini("{from: 2023-01}").replace("name: mini", "name: c"), "utf-8")
    with pytest.raises(RulesetError, match="score different periods"):
        ruleset_for_period(plan, "2023-W18")


# --- a single file ---------------------------------------------------------------------------------------


def test_a_single_file_outside_its_range_warns(tmp_path: Path, write: Callable[..., Path]) -> None:
    path = write("r.yaml", mini("{from: 2023-05}"))
    inside, _p = ruleset_for_period(path, "2023-05")
    assert inside.warnings == ()
    outside, _p = ruleset_for_period(path, "2023-04")
    assert outside.warnings == (
        f"{path}:4:12: ruleset mini is effective from 2023-05, not in 2023-04: it scores 2023-04 because it "
        "was given as a single file",
    )


def test_the_out_of_range_warning_reaches_stderr_json_and_strict(
    invoke: Callable[..., object], db: str, tmp_path: Path
) -> None:
    out = tmp_path / "r.json"
    args = ["eligible", "--db", db, "--month", "2023-04", "--rules", str(UPGRADE), "--no-record"]
    result = invoke(*args, "-o", str(out))
    assert result.exit_code == 0, result.output  # type: ignore[attr-defined]
    assert "is effective from 2023-05, not in 2023-04" in result.output  # type: ignore[attr-defined]
    doc = json.loads(out.read_text(encoding="utf-8"))
    assert doc["ruleset"]["name"] == "chuanliu-2023"
    assert any("is effective from 2023-05, not in 2023-04" in w for w in doc["warnings"])
    strict = invoke(*args, "--strict", "--format", "json")
    assert strict.exit_code == 7, strict.output  # type: ignore[attr-defined]


def test_env_var_takes_a_directory_and_the_table_names_the_version(
    invoke: Callable[..., object], db: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    plan = versions(tmp_path, "{from: 2023-01, to: 2023-04}")
    monkeypatch.setenv("CHUANLIU_RULES", str(plan))
    out = tmp_path / "r.txt"
    result = invoke(
        "eligible", "--db", db, "--month", "2023-04", "--no-record", "--format", "table", "-o", str(out)
    )
    assert result.exit_code == 0, result.output  # type: ignore[attr-defined]
    launch = ruleset_for_period(plan, "2023-04")[0]
    assert f"Ruleset chuanliu-2023-01 sha256 {launch.sha256[:16]}" in out.read_text(encoding="utf-8")


# --- every command resolves by period ----------------------------------------------------------------------


def test_compare_across_the_upgrade(db: str) -> None:
    from chuanliu_cli.api import Session

    with Session(db=db) as session:
        result = session.compare("2023-05", against_period="2023-04")
        key = str(result.comparison.b.result.frame["shop_id"][0])
        explained = session.explain(key, "2023-04")
        sql = __import__("chuanliu_cli.api", fromlist=["compile_rules"]).compile_rules("2023-04")
    cmp = result.comparison
    assert cmp.a.label == "2023-05 (chuanliu-2023)" and cmp.b.label == "2023-04 (chuanliu-2023-01)"
    assert cmp.a.run.ruleset.name == "chuanliu-2023" and cmp.b.run.ruleset.name == "chuanliu-2023-01"
    assert "store_experience" in cmp.a.result.frame.columns
    assert "shopping_experience" in cmp.b.result.frame.columns
    assert cmp.a.result.totals()["pool"] == 4_000_000_000 and cmp.b.result.totals()["pool"] == 2_000_000_000
    assert explained.run.ruleset.name == "chuanliu-2023-01"
    assert sql[0].name == "chuanliu-2023-01" and [n for n, _ in sql[2]] == ["merchant", "promoter"]


def test_report_movers_use_the_previous_version(db: str) -> None:
    from chuanliu_cli.api import Session

    with Session(db=db) as session:
        report = session.report("2023-05")
    assert report.run.ruleset.name == "chuanliu-2023"
    assert report.movers is not None and report.movers.a.run.ruleset.name == "chuanliu-2023-01"


def test_parse_keeps_the_text_dedented() -> None:
    # (the effective key sits with the other top-level keys; a nested one is refused as unknown)
    text = mini("{from: 2023-05}").replace("    key: shop_id\n", "    key: shop_id\n    effective: x\n")
    with pytest.raises(RulesetError, match="unknown key 'effective'"):
        parse_ruleset(textwrap.dedent(text), "r.yaml")
