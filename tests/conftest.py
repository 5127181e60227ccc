"""Shared fixtures: a CLI runner with a fixed terminal width and helpers to write export files."""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner

from chuanliu_cli.cli.app import app

REPO = Path(__file__).resolve().parent.parent


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
