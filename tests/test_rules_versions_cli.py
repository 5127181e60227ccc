"""`rules check` and `rules show` on a directory of versions (the bundled default is one): every version
is checked, and a directory whose ranges overlap is exit 3 naming both files."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def test_rules_check_checks_every_version_of_the_default_directory(cli: Callable[..., object]) -> None:
    result = cli("rules", "check")
    assert result.exit_code == 0, result.output  # type: ignore[attr-defined]
    out = result.stdout  # type: ignore[attr-defined]
    assert "chuanliu-2023-01: effective 2023-01..2023-04" in out
    assert "chuanliu-2023: effective 2023-05.." in out
    assert out.count(": OK · ") == 2
    shown = cli("rules", "show", str(REPO / "rules"))
    assert shown.exit_code == 0 and "chuanliu-2023-01" in shown.stdout  # type: ignore[attr-defined]


def test_rules_check_of_overlapping_versions_is_exit_3(tmp_path: Path, cli: Callable[..., object]) -> None:
    for name in ("a.yaml", "b.yaml"):
        shutil.copy(REPO / "rules" / "chuanliu.yaml", tmp_path / name)
    result = cli("rules", "check", str(tmp_path))
    assert result.exit_code == 3
    assert "b.yaml" in result.output and "overlaps" in result.output and "a.yaml" in result.output  # type: ignore[attr-defined]


def test_sensitivity_uses_the_version_in_force_in_its_month() -> None:
    from chuanliu_cli.api import Session

    with Session(data=REPO / "sample_data") as s:
        april, may = s.sensitivity("2023-04"), s.sensitivity("2023-05")
    assert (april.run.ruleset.name, may.run.ruleset.name) == ("chuanliu-2023-01", "chuanliu-2023")


def test_sensitivity_of_a_budgeted_ruleset_allocates_its_paced_pool() -> None:
    from chuanliu_cli.api import Session

    budget = REPO / "rules" / "examples" / "chuanliu-2023-budget.yaml"
    with Session(data=REPO / "sample_data") as s:
        result = s.sensitivity("2023-05", rules=budget)
    assert result.run.scorecards["merchant"].totals()["pool"] > 0
    # the variants allocate the pool paced for the month, not the placeholder 0 of the file's budget (a guard:
    # the variants already took the pool from the scored result when the paced ruleset was passed too)
    assert result.sensitivity.allocated == result.run.scorecards["merchant"].totals()["allocated"] > 0
