"""Shared fixtures: a CLI runner with a fixed terminal width and helpers to write export files."""

from __future__ import annotations

import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from chuanliu_cli.cli.app import app

REPO = Path(__file__).resolve().parent.parent


def as_bytes(data: str | bytes) -> bytes:
    """An output as bytes: the row writers give text for csv, json and jsonl, the frame writers bytes."""
    return data.encode() if isinstance(data, str) else data


def workbook_cells(doc: object) -> list[list[list[object]]]:
    """Every cell of every sheet of the workbook present/xlsx.write_xlsx writes for `doc`, by sheet and row."""
    import io

    import openpyxl

    from chuanliu_cli.present.xlsx import write_xlsx

    out = io.BytesIO()
    write_xlsx(out, doc)  # type: ignore[arg-type]
    book = openpyxl.load_workbook(io.BytesIO(out.getvalue()))
    return [[list(r) for r in book[name].iter_rows(values_only=True)] for name in book.sheetnames]


def pytest_configure(config: pytest.Config) -> None:
    """The ruleset cache (rules/cache.py) of this test session lives in a directory of its own, never in
    the developer's ~/.cache; each pytest-xdist worker gets its own."""
    import os
    import tempfile

    os.environ["CHUANLIU_CACHE_DIR"] = tempfile.mkdtemp(prefix="chuanliu-test-cache-")


@pytest.fixture
def private_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A cache directory (rules/cache.py, store/datacache.py) of this test's own, empty at the start."""
    from chuanliu_cli.rules import cache

    where = tmp_path / "cache"
    monkeypatch.setenv("CHUANLIU_CACHE_DIR", str(where))
    cache.directory.cache_clear()
    yield where
    cache.directory.cache_clear()


@pytest.fixture
def runner(monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    """A CliRunner whose output is 140 columns wide and colourless."""
    monkeypatch.setenv("COLUMNS", "140")
    monkeypatch.setenv("NO_COLOR", "1")
    monkeypatch.delenv("CHUANLIU_DB", raising=False)
    monkeypatch.delenv("CHUANLIU_RULES", raising=False)
    return CliRunner()


@pytest.fixture
def invoke(runner: CliRunner) -> Callable[..., object]:
    """Run `chuanliu ARGS...` in-process and return the result."""

    def run(*args: str, input: str | None = None) -> object:
        return runner.invoke(app, list(args), input=input)

    return run


@pytest.fixture
def cli(invoke: Callable[..., object]) -> Callable[..., object]:
    """`invoke` under the name the store, crash and hostile-input tests use."""
    return invoke


@pytest.fixture
def write(tmp_path: Path) -> Callable[[str, str], Path]:
    """Write a dedented text file under tmp_path and return its path."""

    def _write(name: str, text: str, encoding: str = "utf-8") -> Path:
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip("\n"), encoding=encoding)
        return path

    return _write


@pytest.fixture(scope="session")
def may_only(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The sample's May exports alone (and its shops): the 90-day and previous-month windows of the
    default ruleset have no history, so May is incomplete."""
    import csv

    out = tmp_path_factory.mktemp("may")
    for table, column in (
        ("orders", "order_time"),
        ("reviews", "review_time"),
        ("livestreams", "start_time"),
    ):
        with (REPO / "sample_data" / f"{table}.csv").open(encoding="utf-8", newline="") as f:
            rows = list(csv.reader(f))
        at = rows[0].index(column)
        with (out / f"{table}.csv").open("w", encoding="utf-8", newline="") as f:
            csv.writer(f).writerows([rows[0], *(r for r in rows[1:] if r[at].startswith("2023-05"))])
    (out / "shops.csv").write_bytes((REPO / "sample_data" / "shops.csv").read_bytes())
    return out
