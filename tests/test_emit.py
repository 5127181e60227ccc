"""What the command line writes, and when it must not: warnings under -q, --strict (exit 7), closed pipes,
global flags after the subcommand, --no-color, empty months, partial populations."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from chuanliu_cli.exit_codes import ExitCode
from tests.conftest import REPO

SAMPLE = str(REPO / "sample_data")
CHUANLIU = str(Path(sys.executable).parent / "chuanliu")


def test_may_only_is_incomplete_everywhere(invoke: Callable[..., Any], may_only: Path) -> None:
    """Issue #20: with only May loaded, May was 'complete' and the list silently wrong."""
    js = invoke("eligible", "--month", "2023-05", "--data", str(may_only), "--format", "json")
    assert js.exit_code == 0
    period = json.loads(js.stdout)["period"]
    assert period["complete"] is False
    assert [(m["table"], m["needed_from"], m["data_from"]) for m in period["missing_history"]] == [
        ("orders", "2023-03-03", "2023-05-01"),
        ("reviews", "2023-03-03", "2023-05-01"),
    ]
    table = invoke("eligible", "--month", "2023-05", "--data", str(may_only), "--format", "table")
    assert "PARTIAL PERIOD: needs orders from 2023-03-03 (90-day windows)" in " ".join(table.stdout.split())
    csv_run = invoke("-q", "eligible", "--month", "2023-05", "--data", str(may_only), "--format", "csv")
    assert "Warning: period 2023-05 is incomplete: needs orders from 2023-03-03" in csv_run.stderr
    strict = invoke("eligible", "--month", "2023-05", "--data", str(may_only), "--require-complete")
    assert strict.exit_code == ExitCode.INCOMPLETE_PERIOD


def test_strict_is_exit_7_before_any_file_or_run(
    invoke: Callable[..., Any], may_only: Path, tmp_path: Path
) -> None:
    db = str(tmp_path / "may.duckdb")
    assert invoke("-q", "--db", db, "load", "--dir", str(may_only)).exit_code == 0
    out = tmp_path / "list.csv"
    result = invoke("--db", db, "eligible", "--month", "2023-05", "--strict", "-o", str(out))
    assert result.exit_code == ExitCode.STRICT_WARNING == 7, result.output
    assert "in strict mode; nothing was written" in result.stderr
    assert "warning: period 2023-05 is incomplete" in result.stderr
    assert not out.exists()
    runs = json.loads(invoke("--db", db, "runs", "--format", "json").stdout)
    assert runs["runs"] == [] if isinstance(runs, dict) else runs == []
    for command in (["score"], ["compare", "--against-month", "2023-04"]):
        again = invoke("--db", db, *command, "--month", "2023-05", "--strict", "--format", "csv")
        assert again.exit_code == 7, again.output
    report = invoke("--db", db, "report", "--month", "2023-05", "--strict", "-o", str(tmp_path / "r.html"))
    assert report.exit_code == 7 and not (tmp_path / "r.html").exists()


def test_no_warning_passes_strict(invoke: Callable[..., Any]) -> None:
    result = invoke("eligible", "--month", "2023-05", "--data", SAMPLE, "--strict", "--format", "csv")
    assert result.exit_code == 0, result.output
    assert "Warning" not in result.stderr


def test_an_empty_month_is_recorded_and_warned(invoke: Callable[..., Any], tmp_path: Path) -> None:
    """A typo like 2022-05 crashed in record_run (exit 1); now the empty list is recorded and warned."""
    db = str(tmp_path / "s.duckdb")
    assert invoke("-q", "--db", db, "load", "--dir", SAMPLE).exit_code == 0
    # the bundled versions hold no ruleset for 2022 (exit 3, naming them); one file scores any month
    refused = invoke("--db", db, "eligible", "--month", "2022-05", "--format", "json")
    assert refused.exit_code == 3 and "no ruleset is in force in 2022-05" in refused.output
    rules = str(Path(SAMPLE).parent / "rules" / "chuanliu.yaml")
    result = invoke("--db", db, "eligible", "--month", "2022-05", "--rules", rules, "--format", "json")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["entities"] == [] and doc["totals"]["entities"] == 0
    assert "2022-05 is before any data (the data starts 2023-03-01)" in doc["warnings"]
    assert any("is effective from 2023-05, not in 2022-05" in w for w in doc["warnings"])
    assert "Warning: 2022-05 is before any data" in result.stderr
    assert "Recorded as run 1" in result.stderr


def test_a_week_for_a_monthly_ruleset_is_exit_2(invoke: Callable[..., Any]) -> None:
    result = invoke("eligible", "--month", "2023-W18", "--data", SAMPLE)
    assert result.exit_code == ExitCode.USAGE
    assert "'2023-W18' is a week, but the ruleset scores months" in result.output


@pytest.mark.parametrize(
    "args",
    [
        ["status"],
        ["rules", "sql", "--month", "2023-05"],
        ["rules", "show"],
        pytest.param(["explain", "ks700003", "--month", "2023-05", "--data", SAMPLE], marks=pytest.mark.slow),
        ["eligible", "--month", "2023-05", "--data", SAMPLE, "--format", "json"],
        pytest.param(
            ["eligible", "--month", "2023-05", "--data", SAMPLE, "--format", "csv", "--all"],
            marks=pytest.mark.slow,
        ),
        pytest.param(
            ["eligible", "--month", "2023-05", "--data", SAMPLE, "--format", "parquet"],
            marks=pytest.mark.slow,
        ),
        ["--help"],
    ],
)
def test_a_closed_pipe_ends_quietly_with_exit_0(args: list[str], tmp_path: Path) -> None:
    """`chuanliu status | head -1` printed 'internal error: BrokenPipeError' or exited 1."""
    db = tmp_path / "s.duckdb"
    if args == ["status"]:
        subprocess.run([CHUANLIU, "-q", "--db", str(db), "load", "--dir", SAMPLE], check=True)
        args = ["--db", str(db), "status"]
    env = {**os.environ, "COLUMNS": "200"}
    line = f"{' '.join(repr(a) for a in [CHUANLIU, *args])} | head -c 10 >/dev/null; echo ${{PIPESTATUS[0]}}"
    done = subprocess.run(["bash", "-c", line], capture_output=True, text=True, env=env, timeout=120)
    assert done.stdout.strip() == "0", done.stderr
    assert "Error" not in done.stderr and "Traceback" not in done.stderr


def test_global_flags_after_the_subcommand(invoke: Callable[..., Any]) -> None:
    quiet = invoke("rules", "check", "-q")
    assert quiet.exit_code == 0 and quiet.stdout == ""
    verbose = invoke("eligible", "--month", "2023-05", "--data", "nowhere", "-v")
    assert verbose.exit_code == ExitCode.INVALID_DATA
    colourless = invoke("rules", "check", "--no-color")
    assert colourless.exit_code == 0 and "OK" in colourless.stdout


def test_no_color_removes_every_style() -> None:
    """Rich's no_color kept bold and dim; --no-color and NO_COLOR now write no escape code at all."""
    env = {**os.environ, "FORCE_COLOR": "1", "COLUMNS": "200"}
    env.pop("NO_COLOR", None)
    styled = subprocess.run([CHUANLIU, "rules", "show"], capture_output=True, text=True, env=env)
    assert "\x1b[" in styled.stdout  # a terminal gets styles
    for extra_env, args in (({}, ["--no-color"]), ({"NO_COLOR": "1"}, [])):
        plain = subprocess.run(
            [CHUANLIU, *args, "rules", "show"], capture_output=True, text=True, env={**env, **extra_env}
        )
        assert plain.returncode == 0 and "\x1b[" not in plain.stdout


def test_a_partial_population_is_labelled(invoke: Callable[..., Any], tmp_path: Path) -> None:
    """One merchant's own exports: rank 1 and a capped grant, labelled as relative to what is loaded."""
    import csv

    own = tmp_path / "own"
    own.mkdir()
    for table in ("orders", "reviews", "livestreams", "shops"):
        with (REPO / "sample_data" / f"{table}.csv").open(encoding="utf-8", newline="") as f:
            rows = list(csv.reader(f))
        at = rows[0].index("shop_id")
        with (own / f"{table}.csv").open("w", encoding="utf-8", newline="") as f:
            csv.writer(f).writerows([rows[0], *(r for r in rows[1:] if r[at] == "ks700003")])
    doc = json.loads(invoke("eligible", "--month", "2023-05", "--data", str(own), "--format", "json").stdout)
    assert doc["population"]["relative"] is True and doc["population"]["entities"] == 1
    assert "grants assume these are the whole population" in doc["population"]["note"]
    table = invoke("eligible", "--month", "2023-05", "--data", str(own), "--format", "table")
    assert "rank among 1 loaded" in table.stdout and "Population:" in table.stdout
    explained = invoke("explain", "ks700003", "--month", "2023-05", "--data", str(own), "--format", "table")
    out = explained.stdout
    # the merchant-facing view leads with its own values; what depends on others comes last, labelled
    assert out.index("Metrics") < out.index("Gates") < out.index("Standing:") < out.index("not eligible")


def test_load_strict_writes_nothing(invoke: Callable[..., Any], tmp_path: Path) -> None:
    db = str(tmp_path / "s.duckdb")
    full = tmp_path / "orders.csv"
    full.write_text(
        "order_id,shop_id,buyer_id,promoter_id,sale_mode,carrier,order_time,paid_amount,status,refund_amount\n"
        "1,s1,b1,,self,live,2023-05-01 10:00,10,completed,\n",
        encoding="utf-8",
    )
    assert invoke("--db", db, "load", "orders", str(full), "--strict").exit_code == 0
    lacking = tmp_path / "more_orders.csv"
    lacking.write_text(
        "order_id,shop_id,buyer_id,order_time,paid_amount,status\n2,s1,b2,2023-05-02 10:00,10,completed\n",
        encoding="utf-8",
    )
    result = invoke("--db", db, "load", "orders", str(lacking), "--strict")
    assert result.exit_code == 7, result.output
    assert "warning: " in result.stderr and "no column carrier" in result.stderr
    status = json.loads(invoke("--db", db, "status", "--format", "json").stdout)
    assert {t["table"]: t["rows"] for t in status["tables"]}["orders"] == 1  # the refused file wrote nothing
    assert [(x["load_id"], x["inserted"], x["regressed"]) for x in status["last_loads"]] == [(1, 1, 0)]


def test_text_holding_brackets_is_shown_as_written(invoke: Callable[..., Any], tmp_path: Path) -> None:
    """Rich read `[may]` in a file name, or `[b]…[/b]` in a ruleset's description, as markup and dropped
    it (`orders[may].csv` shown as `orders.csv`): every console of the CLI prints text as it is."""
    import shutil

    data = tmp_path / "data"
    shutil.copytree(SAMPLE, data)
    (data / "orders.csv").rename(data / "orders[may].csv")
    loaded = invoke("--db", str(tmp_path / "b.duckdb"), "load", "--dir", str(data))
    assert loaded.exit_code == 0, loaded.output
    assert "orders[may].csv" in loaded.stdout
    rules = tmp_path / "rules.yaml"
    text = (REPO / "rules" / "chuanliu.yaml").read_text(encoding="utf-8")
    marked = text.replace(
        "  川流计划 2023 (Chuanliu Plan)", "  [b]bold[/b] [red]x[/red] 川流计划 2023 (Chuanliu Plan)", 1
    )
    assert marked != text
    rules.write_text(marked, encoding="utf-8")
    shown = invoke("rules", "show", str(rules))
    assert shown.exit_code == 0, shown.output
    assert "[b]bold[/b] [red]x[/red]" in shown.stdout
