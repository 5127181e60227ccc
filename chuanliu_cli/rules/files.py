"""Ruleset files: where the bundled one is, reading one, and loading one through the cache (rules/cache.py).

This module imports neither the YAML parser nor sqlglot: a ruleset met before (same bytes, same path, same
build of chuanliu) is loaded, and its schema check skipped, without them.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from chuanliu_cli.errors import RulesetError

if TYPE_CHECKING:
    from chuanliu_cli.rules.model import Ruleset

#: Larger ruleset files are refused (a ruleset is a few kilobytes).
MAX_FILE_BYTES = 1_000_000


def default_ruleset_path() -> Path:
    """The bundled chuanliu-2023 ruleset (identical to `rules/chuanliu.yaml` in the repository). The
    directory holding it is the bundled default of `--rules`: chuanliu-2023 and the launch version
    chuanliu-2023-01, each with its `effective` range (rules/effective.py)."""
    return Path(__file__).resolve().parent.parent / "data" / "rules" / "chuanliu.yaml"


def read_ruleset_bytes(path: str | Path) -> bytes:
    """The bytes of the ruleset file at `path` (one more than MAX_FILE_BYTES at most); RulesetError when it
    cannot be read."""
    try:
        with open(path, "rb") as f:
            return f.read(MAX_FILE_BYTES + 1)
    except OSError as e:
        raise RulesetError(
            [f"{path}:1:1: cannot read the ruleset: {e.strerror or e}"],
            hint="check the path given with --rules or CHUANLIU_RULES",
        ) from None


def load_ruleset_cached(path: str | Path, check: bool) -> Ruleset:
    """The ruleset of the file at `path` (parsed, and with `check` bound to the table schemas), from the
    cache when these bytes were parsed (and checked) before at this path by this build; RulesetError as
    the parser or the check raise it."""
    from chuanliu_cli.rules import cache

    shown = str(path)
    data = read_ruleset_bytes(path)
    entry = cache.key(data, shown)
    ruleset = cache.get("ruleset", entry)
    if ruleset is None:
        from chuanliu_cli.rules.parser import parse_ruleset_bytes

        ruleset = parse_ruleset_bytes(data, shown)
        cache.put("ruleset", entry, ruleset)
    if check and cache.get("checked", entry) is not True:
        from chuanliu_cli.rules.validate import check_ruleset_against_schema

        check_ruleset_against_schema(ruleset)
        cache.put("checked", entry, True)
    return ruleset
