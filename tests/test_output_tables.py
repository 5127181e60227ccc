"""score/eligible tables (issue #21): a terminal shows the first 50 rows and says how many more there are;
--all and --top N show what they ask for; pipes and files get every row; --top cuts every format alike."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from chuanliu_cli.present.tables import TERMINAL_ROWS
from tests.conftest import REPO

SAMPLE = str(REPO / "sample_data")
PRODUCTS = ["--month", "2023-05", "--data", SAMPLE, "--scorecard", "product"]


def _table_rows(text: str) -> int:
    """Data rows of a Rich table (the header's borders are ┃, the rows' │; no name here wraps)."""
    return sum(1 for line in text.splitlines() if line.startswith("│"))


@pytest.fixture
def terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TTY_COMPATIBLE", "1")  # Rich: stdout is a terminal


@pytest.fixture(scope="module")
def listed() -> int:
    """How many products the sample lists for May (every row of the csv)."""
    from typer.testing import CliRunner

    from chuanliu_cli.cli.app import app

    result = CliRunner().invoke(app, ["-q", "eligible", *PRODUCTS, "--format", "csv"])
    assert result.exit_code == 0, result.output
    count = len(list(csv.reader(io.StringIO(result.stdout)))) - 1
    assert count > TERMINAL_ROWS + 10
    return count


@pytest.mark.parametrize("command", ["eligible", "score"])
def test_a_terminal_shows_the_first_rows_and_how_many_more(
    invoke: Callable[..., Any], terminal: None, listed: int, command: str
) -> None:
    result = invoke(command, *PRODUCTS, "--format", "table")
    assert result.exit_code == 0, result.output
    assert _table_rows(result.stdout) == TERMINAL_ROWS
    hint = (
        "--all to show every row (and the ineligible)" if command == "eligible" else "--all to show every row"
    )
    line = f"… {listed - TERMINAL_ROWS:,} more: {hint}, --top N, or --format csv"
    assert line in result.stdout


@pytest.mark.parametrize("command", ["eligible", "score"])
def test_all_shows_every_row(invoke: Callable[..., Any], terminal: None, listed: int, command: str) -> None:
    result = invoke(command, *PRODUCTS, "--all", "--format", "table")
    assert result.exit_code == 0, result.output
    assert _table_rows(result.stdout) == listed and "more:" not in result.stdout


@pytest.mark.parametrize("command", ["eligible", pytest.param("score", marks=pytest.mark.slow)])
def test_top_shows_n_rows_in_every_format(
    invoke: Callable[..., Any], terminal: None, listed: int, command: str
) -> None:
    table = invoke(command, *PRODUCTS, "--top", "7", "--format", "table")
    assert table.exit_code == 0, table.output
    assert _table_rows(table.stdout) == 7 and "more:" not in table.stdout
    many = invoke(command, *PRODUCTS, "--top", str(TERMINAL_ROWS + 5), "--format", "table")
    assert _table_rows(many.stdout) == TERMINAL_ROWS + 5  # --top asks for them: not cut at 50
    as_csv = invoke(command, *PRODUCTS, "--top", "7", "--format", "csv")
    assert len(as_csv.stdout.splitlines()) == 1 + 7
    doc = json.loads(invoke(command, *PRODUCTS, "--top", "7", "--format", "json").stdout)
    assert [e["rank"] for e in doc["entities"]] == list(range(1, 8))
    assert doc["totals"]["entities"] == listed  # totals stay those of everyone


@pytest.mark.parametrize("command", ["eligible", pytest.param("score", marks=pytest.mark.slow)])
def test_pipes_and_files_are_never_cut(
    invoke: Callable[..., Any], listed: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, command: str
) -> None:
    piped = invoke(command, *PRODUCTS, "--format", "table")  # CliRunner's stdout is not a terminal
    assert piped.exit_code == 0, piped.output
    assert _table_rows(piped.stdout) == listed and "more:" not in piped.stdout
    monkeypatch.setenv("TTY_COMPATIBLE", "1")
    out = tmp_path / "list.txt"
    written = invoke(command, *PRODUCTS, "-o", str(out))
    assert written.exit_code == 0, written.output
    text = out.read_text(encoding="utf-8")
    assert _table_rows(text) == listed and "\x1b[" not in text  # a file is no terminal: no escape codes
