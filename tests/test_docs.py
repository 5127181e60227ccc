"""Documentation: every command has help text and appears in the README; the exit-code table matches."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from chuanliu_cli.exit_codes import ExitCode
from tests.conftest import REPO

README = (REPO / "README.md").read_text(encoding="utf-8")
COMMANDS = [
    ["load"],
    ["status"],
    ["sample"],
    ["score"],
    ["eligible"],
    ["explain"],
    ["compare"],
    ["runs"],
    ["report"],
    ["rules", "check"],
    ["rules", "show"],
    ["rules", "sql"],
]


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_command_has_help_and_is_documented(invoke: Callable[..., Any], command: list[str]) -> None:
    result = invoke(*command, "--help")
    assert result.exit_code == 0, result.output
    assert len(result.output.split()) > 10
    assert f"chuanliu {' '.join(command)}" in README


def test_exit_code_table_matches_enum() -> None:
    for code in ExitCode:
        assert f"| {code.value} |" in README
    assert ExitCode.__doc__ and "| 6    | INCOMPLETE_PERIOD |" in ExitCode.__doc__


def test_two_setup_commands_are_in_readme() -> None:
    assert "chuanliu eligible --month 2023-05 --data sample_data" in README
    assert "pip install -q -e '.[test]' && .venv/bin/pytest" in README
    ci = (REPO / ".ci" / "run").read_text(encoding="utf-8")
    assert "python3 -m venv .venv && .venv/bin/pip install -q -e '.[test]' && .venv/bin/pytest" in ci
