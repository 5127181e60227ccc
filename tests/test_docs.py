"""Documentation: every command has help and is in the README; the exit-code table matches; the README's Python
API example runs and gives what the command line gives; ARCHITECTURE.md names the layers."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
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
    ["runs", "diff"],
    ["rejects"],
    ["history"],
    ["report"],
    ["budget"],
    ["impact"],
    ["integrity"],
    ["rules", "check"],
    ["rules", "show"],
    ["rules", "sql"],
    ["rules", "test"],
    ["rules", "lint"],
    ["rules", "calibrate"],
    ["rules", "sensitivity"],
]


def test_every_command_of_the_app_is_listed(invoke: Callable[..., Any]) -> None:
    """COMMANDS follows the app: a new command (or rules/runs subcommand) must be documented too."""
    import re

    listed = {" ".join(c) for c in COMMANDS}
    for group in ([], ["rules"], ["runs"]):
        result = invoke(*group, "--help")
        assert result.exit_code == 0, result.output
        names = re.findall(r"^  ([a-z][a-z-]*)  ", result.output.split("Commands:", 1)[1], re.M)
        assert names, result.output
        for name in names:
            if not group and name == "rules":  # a group of subcommands only
                continue
            assert " ".join([*group, name]) in listed


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
    command = "python3 -m venv .venv && .venv/bin/pip install -q -e '.[test,impact]' && .venv/bin/pytest"
    assert command in README
    assert command in (REPO / "README.zh-CN.md").read_text(encoding="utf-8")
    ci = (REPO / ".ci" / "run").read_text(encoding="utf-8")
    assert command in ci


def _python_blocks(text: str, section: str) -> list[str]:
    """The ```python blocks of one `## section` of a markdown text."""
    import re

    body = text.split(f"## {section}\n", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```python\n(.*?)```", body, re.S)


def test_readme_python_api_runs_and_matches_the_cli(
    invoke: Callable[..., Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import json

    blocks = _python_blocks(README, "Python API")
    code_lines = [line for line in blocks[0].splitlines() if line.strip()]
    assert len(blocks) >= 2 and len(code_lines) == 3  # three lines of code (a blank line after the import)
    (tmp_path / "sample_data").symlink_to(REPO / "sample_data")
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, Any] = {}
    for block in blocks:
        exec(compile(block, "README.md", "exec"), namespace)
    reward = namespace["reward"]
    result = invoke("eligible", "--month", "2023-05", "--data", "sample_data", "--format", "json")
    assert result.exit_code == 0, result.output
    cli = json.loads(result.stdout)
    assert reward.frame.select("shop_id", "tier", "grant").rows() == [
        (e["shop_id"], e["tier"], e["grant"]) for e in cli["entities"]
    ]
    assert json.loads(json.dumps(reward.to_dict())) == cli


def test_readme_zh_has_the_python_api_example() -> None:
    zh = (REPO / "README.zh-CN.md").read_text(encoding="utf-8")
    assert _python_blocks(README, "Python API")[0] in zh


def test_architecture_is_documented() -> None:
    text = (REPO / "ARCHITECTURE.md").read_text(encoding="utf-8")
    for module in ("api.py", "cli/", "present/", "scoring/", "ingest/", "store/", "engines/", "rules/"):
        assert module in text
    # every module of the package is named in its layer's row (the file name without .py)
    package = REPO / "chuanliu_cli"
    for path in sorted(package.rglob("*.py")):
        if path.name in ("__init__.py", "__main__.py") or path.parent.name == "commands":
            continue
        assert path.stem in text, f"ARCHITECTURE.md does not name {path.relative_to(package)}"
