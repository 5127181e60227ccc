"""The audit trail: recorded runs, byte-identical reruns, partial periods and --require-complete."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import duckdb
import pytest

from chuanliu_cli.exit_codes import ExitCode
from tests.conftest import REPO


@pytest.fixture
def db(invoke: Callable[..., Any], tmp_path: Path) -> str:
    path = str(tmp_path / "runs.duckdb")
    result = invoke("-q", "--db", path, "load", "--dir", str(REPO / "sample_data"))
    assert result.exit_code == 0, result.output
    return path


def _count(db: str, table: str) -> int:
    con = duckdb.connect(db, read_only=True)
    try:
        return int(con.execute(f"SELECT count(*) FROM {table}").fetchall()[0][0])
    finally:
        con.close()


@pytest.mark.parametrize("fmt", ["csv", "json"])
def test_rerun_is_byte_identical_and_recorded(
    invoke: Callable[..., Any], db: str, tmp_path: Path, fmt: str
) -> None:
    outs = []
    for i in range(2):
        out = tmp_path / f"list{i}.{fmt}"
        result = invoke("--db", db, "eligible", "--month", "2023-05", "--format", fmt, "-o", str(out))
        assert result.exit_code == 0, result.output
        assert f"Recorded as run {i + 1}" in result.output
        outs.append(out.read_bytes())
    assert outs[0] == outs[1]
    assert _count(db, "runs") == 2
    assert _count(db, "run_results") == 2 * 59


def test_run_record_holds_inputs(invoke: Callable[..., Any], db: str) -> None:
    invoke("--db", db, "eligible", "--month", "2023-05", "--scorecard", "promoter", "--format", "csv")
    con = duckdb.connect(db, read_only=True)
    try:
        row = con.execute(
            "SELECT period, scorecard, ruleset_name, length(ruleset_sha256), orders_rows, max_load_id, complete, "
            "tool_version, command FROM runs"
        ).fetchall()[0]
        grants = con.execute('SELECT sum("grant") FROM run_results').fetchall()[0][0]
    finally:
        con.close()
    assert row[:8] == ("2023-05", "promoter", "chuanliu-2023", 64, 14640, 4, True, "0.1.0")
    assert grants == 1_000_000_000


def test_no_record_and_data_dir_write_nothing(invoke: Callable[..., Any], db: str) -> None:
    result = invoke("--db", db, "eligible", "--month", "2023-05", "--no-record", "--format", "csv")
    assert result.exit_code == 0
    assert _count(db, "runs") == 0
    result = invoke("eligible", "--month", "2023-05", "--data", str(REPO / "sample_data"), "--format", "csv")
    assert "Recorded" not in result.output


def test_runs_lists_and_shows(invoke: Callable[..., Any], db: str) -> None:
    invoke("--db", db, "eligible", "--month", "2023-05", "--format", "csv")
    listed = invoke("--db", db, "runs")
    assert listed.exit_code == 0 and "chuanliu-2023" in listed.output and "49/59" in listed.output
    shown = invoke("--db", db, "runs", "--id", "1", "--format", "json")
    doc = json.loads(shown.stdout)
    assert doc["run"]["run_id"] == 1 and len(doc["results"]) == 59
    assert doc["results"][0]["rank"] == 1
    unknown = invoke("--db", db, "runs", "--id", "99")
    assert unknown.exit_code == ExitCode.INVALID_DATA and "unknown run 99" in unknown.output


def _partial_data(tmp_path: Path) -> Path:
    """The sample data with every review after 2023-05-20 removed: May is incomplete."""
    out = tmp_path / "partial"
    out.mkdir()
    for f in (REPO / "sample_data").iterdir():
        lines = f.read_text(encoding="utf-8").splitlines(keepends=True)
        if f.name.startswith("reviews"):
            lines = [lines[0]] + [ln for ln in lines[1:] if "2023-05-2" not in ln and "2023-05-3" not in ln]
        (out / f.name).write_text("".join(lines), encoding="utf-8")
    return out


def test_partial_period_is_said_in_every_format(invoke: Callable[..., Any], tmp_path: Path) -> None:
    data = str(_partial_data(tmp_path))
    js = invoke("eligible", "--month", "2023-05", "--data", data, "--format", "json")
    assert js.exit_code == 0
    assert json.loads(js.stdout)["period"]["complete"] is False
    assert json.loads(js.stdout)["period"]["incomplete_tables"] == ["reviews"]
    csv_run = invoke("eligible", "--month", "2023-05", "--data", data, "--format", "csv")
    assert (
        "Warning: period 2023-05 is incomplete: reviews has no data on or after 2023-05-31" in csv_run.stderr
    )
    table = invoke("eligible", "--month", "2023-05", "--data", data, "--format", "table")
    assert "PARTIAL PERIOD" in table.stdout
    # April's 90-day windows start on 2023-01-31, before the sample's first order (2023-03-01)
    april = json.loads(invoke("eligible", "--month", "2023-04", "--data", data, "--format", "json").stdout)
    assert april["period"]["complete"] is False and april["period"]["incomplete_tables"] == []
    assert april["period"]["missing_history"] == [
        {
            "table": "orders",
            "needed_from": "2023-01-31",
            "data_from": "2023-03-01",
            "because": "90-day windows",
        },
        {
            "table": "reviews",
            "needed_from": "2023-01-31",
            "data_from": "2023-03-01",
            "because": "90-day windows",
        },
    ]
    assert "needs orders from 2023-01-31 (90-day windows); data from 2023-03-01" in " ".join(
        april["warnings"]
    )


def test_require_complete_exits_6(invoke: Callable[..., Any], tmp_path: Path) -> None:
    data = str(_partial_data(tmp_path))
    result = invoke("eligible", "--month", "2023-05", "--data", data, "--require-complete", "--format", "csv")
    assert result.exit_code == ExitCode.INCOMPLETE_PERIOD
    assert result.stdout == ""
    ok = invoke(
        "eligible",
        "--month",
        "2023-05",
        "--data",
        str(REPO / "sample_data"),
        "--require-complete",
        "--format",
        "csv",
    )
    assert ok.exit_code == 0, ok.output
    history = invoke(
        "eligible", "--month", "2023-04", "--data", data, "--require-complete", "--format", "csv"
    )
    assert history.exit_code == ExitCode.INCOMPLETE_PERIOD
    assert "needs orders from 2023-01-31 (90-day windows)" in history.stderr


def test_invalid_ruleset_is_exit_3_and_scores_nothing(
    invoke: Callable[..., Any], db: str, tmp_path: Path
) -> None:
    bad = tmp_path / "bad.yaml"
    text = (
        (REPO / "rules" / "chuanliu.yaml")
        .read_text(encoding="utf-8")
        .replace("live_days >= 8", "live_dayz >= 8")
    )
    bad.write_text(text, encoding="utf-8")
    result = invoke("--db", db, "eligible", "--month", "2023-05", "--rules", str(bad), "--format", "csv")
    assert result.exit_code == ExitCode.INVALID_RULESET
    assert (
        f"{bad}:" in result.output
        and "live_dayz" in result.output
        and "did you mean 'live_days'" in result.output
    )
    assert result.stdout == ""
    assert _count(db, "runs") == 0


def test_formula_injection_in_shop_names_is_neutralised(invoke: Callable[..., Any], tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    for f in (REPO / "sample_data").iterdir():
        text = f.read_text(encoding="utf-8")
        if f.name.startswith("shops"):
            lines = text.splitlines()
            evil = ['=HYPERLINK("http://evil","x")', "+cmd|' /C calc'!A0", "@SUM(A1:A9)", "-2+3"]
            for i, name in enumerate(evil, start=1):
                cells = lines[i].split(",")
                cells[1] = '"' + name.replace('"', '""') + '"'
                lines[i] = ",".join(cells)
            text = "\n".join(lines) + "\n"
        (data / f.name).write_text(text, encoding="utf-8")
    result = invoke("eligible", "--month", "2023-05", "--data", str(data), "--all", "--format", "csv")
    assert result.exit_code == 0, result.output
    import csv
    import io

    names = {row["name"] for row in csv.DictReader(io.StringIO(result.stdout))}
    assert '\'=HYPERLINK("http://evil","x")' in names
    assert "'+cmd|' /C calc'!A0" in names and "'@SUM(A1:A9)" in names and "'-2+3" in names
    assert not any(n.startswith(("=", "+", "@")) for n in names)
    js = invoke("eligible", "--month", "2023-05", "--data", str(data), "--all", "--format", "json")
    assert '=HYPERLINK(\\"http://evil\\",\\"x\\")' in js.stdout  # JSON keeps the value as it is


def test_unwritable_output_is_exit_2_and_records_nothing(
    invoke: Callable[..., Any], db: str, tmp_path: Path
) -> None:
    result = invoke("--db", db, "eligible", "--month", "2023-05", "-o", str(tmp_path / "missing" / "x.csv"))
    assert result.exit_code == ExitCode.USAGE
    assert "directory" in result.output and "does not exist" in result.output
    assert _count(db, "runs") == 0


def test_output_format_follows_file_name(invoke: Callable[..., Any], tmp_path: Path) -> None:
    out = tmp_path / "list.json"
    result = invoke("eligible", "--month", "2023-05", "--data", str(REPO / "sample_data"), "-o", str(out))
    assert result.exit_code == 0, result.output
    assert json.loads(out.read_text(encoding="utf-8"))["scorecard"] == "merchant"
