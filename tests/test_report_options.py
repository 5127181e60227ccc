"""`report --top/--id/--list-out`: the listed entities, unknown ids refused, the full list beside the page."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> str:
    from chuanliu_cli.api import Session

    path = str(tmp_path_factory.mktemp("report-options") / "r.duckdb")
    Session(db=path).load(directory=REPO / "sample_data")
    return path


def _breakdowns(html: str) -> set[str]:
    return set(re.findall(r'id="e-([^"]+)"', html))


def test_top_and_id_choose_the_breakdowns(invoke: Callable[..., Any], db: str, tmp_path: Path) -> None:
    out = tmp_path / "r.html"
    from chuanliu_cli.api import Session

    ranked = Session(db=db).score("2023-05", record=False).frame["shop_id"].to_list()
    result = invoke(
        "-q", "--db", db, "report", "--month", "2023-05", "-o", str(out), "--top", "3", "--id", ranked[-1]
    )
    assert result.exit_code == 0, result.output
    shown = _breakdowns(out.read_text(encoding="utf-8"))
    assert shown == {*ranked[:3], ranked[-1]}


def test_an_unknown_id_exits_4_and_writes_nothing(
    invoke: Callable[..., Any], db: str, tmp_path: Path
) -> None:
    out = tmp_path / "r.html"
    result = invoke("--db", db, "report", "--month", "2023-05", "-o", str(out), "--id", "ks7000019")
    assert result.exit_code == 4
    assert "ks7000019" in result.output and "nearest" in result.output
    assert not out.exists()


@pytest.mark.parametrize("suffix", ["csv", "jsonl", "parquet", "json"])
def test_list_out_holds_every_entity_as_score_writes_them(
    invoke: Callable[..., Any], db: str, tmp_path: Path, suffix: str
) -> None:
    listed = tmp_path / f"all.{suffix}"
    scored = tmp_path / f"score.{suffix}"
    result = invoke(
        "-q",
        "--db",
        db,
        "report",
        "--month",
        "2023-05",
        "-o",
        str(tmp_path / "r.html"),
        "--top",
        "1",
        "--list-out",
        str(listed),
    )
    assert result.exit_code == 0, result.output
    result = invoke("-q", "--db", db, "score", "--month", "2023-05", "--no-record", "-o", str(scored))
    assert result.exit_code == 0, result.output
    assert listed.read_bytes() == scored.read_bytes()


def test_list_out_with_an_unknown_suffix_is_refused_before_scoring(
    invoke: Callable[..., Any], db: str, tmp_path: Path
) -> None:
    out = tmp_path / "r.html"
    result = invoke(
        "--db", db, "report", "--month", "2023-05", "-o", str(out), "--list-out", str(tmp_path / "x.xls")
    )
    assert result.exit_code == 2
    assert "--list-out" in result.output and ".csv" in result.output
    assert not out.exists()
