"""Which ruleset scores a period (SPEC §9): a file, or the version in force in a directory of rulesets.

A ruleset may carry `effective: {from: 2023-01, to: 2023-04}`. `--rules` (CHUANLIU_RULES,
`Session(rules=...)`) names a file or a directory; the bundled default is a directory of two versions.
`ruleset_for_period` is the one function every command resolves its ruleset with.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from chuanliu_cli.errors import RulesetError

if TYPE_CHECKING:
    from chuanliu_cli.periods import Period, PeriodKind
    from chuanliu_cli.rules.model import Effective, Ruleset


def period_label(text: str, kind: PeriodKind) -> str | None:
    """The label of period `text` written as a period of `kind` (`2023-05` or `2023-W18`), else None."""
    import re

    from chuanliu_cli.errors import UsageError
    from chuanliu_cli.periods import parse_period

    shape = r"^\d{4}-\d{2}$" if kind == "month" else r"^\d{4}-W\d{2}$"
    if not re.match(shape, text.strip(), re.IGNORECASE):
        return None
    try:
        return parse_period(text, kind).label
    except UsageError:
        return None


def default_rules_dir() -> Path:
    """The bundled rulesets: chuanliu-2023-01 (2023-01..2023-04) and chuanliu-2023 (from 2023-05)."""
    from chuanliu_cli.rules.files import default_ruleset_path

    return default_ruleset_path().parent


def holds(effective: Effective, period: Period) -> bool:
    """Whether `period` is within the range (labels of one kind compare like the periods they name)."""
    label = period.label
    return effective.start <= label and (effective.end is None or label <= effective.end)


def _overlap(a: Effective, b: Effective) -> bool:
    return (a.end is None or b.start <= a.end) and (b.end is None or a.start <= b.end)


@dataclass(frozen=True)
class Versions:
    """The rulesets of a directory, each with its range, checked: one period kind, no overlaps."""

    directory: str
    rulesets: tuple[Ruleset, ...]

    def ranges(self) -> str:
        """Every file and its range, in order, for messages."""
        return "; ".join(f"{r.path} ({_range(r)})" for r in self.rulesets)

    def for_period(self, period: Period) -> Ruleset | None:
        """The version in force in `period`, or None when no range holds it."""
        for r in self.rulesets:
            if r.effective is not None and holds(r.effective, period):
                return replace(r, versions=self.directory)
        return None


def _range(ruleset: Ruleset) -> str:
    eff = ruleset.effective
    if eff is None:
        return "no effective range"
    return (
        f"{ruleset.name}, effective {eff.start} to {eff.end}"
        if eff.end
        else (f"{ruleset.name}, effective from {eff.start}")
    )


def ruleset_files(directory: Path) -> list[Path]:
    """The ruleset files of a directory (not its subdirectories): *.yaml and *.yml, but not the test case
    files kept beside a ruleset (`<ruleset>.cases.yaml`)."""
    return sorted(
        p
        for p in directory.iterdir()
        if p.is_file()
        and p.suffix.lower() in (".yaml", ".yml")
        and not p.name.lower().endswith((".cases.yaml", ".cases.yml"))
    )


def load_versions(directory: Path, check: bool) -> Versions:
    """Every ruleset of `directory`, parsed (and checked); RulesetError (exit 3) for any error in one of
    them, a file without `effective`, rulesets of different period kinds, or overlapping ranges."""
    from chuanliu_cli.rules.files import load_ruleset_cached

    files = ruleset_files(directory)
    if not files:
        raise RulesetError(
            [f"{directory}: the directory holds no ruleset (*.yaml)"],
            hint="give --rules a ruleset file, or a directory of rulesets with `effective` ranges",
        )
    errors: list[str] = []
    rulesets: list[Ruleset] = []
    for path in files:
        try:
            rulesets.append(load_ruleset_cached(path, check))
        except RulesetError as exc:
            errors.extend(exc.errors)
    if errors:
        raise RulesetError(errors, hint="fix the ruleset and run `chuanliu rules check`")
    for r in rulesets:
        if r.effective is None:
            errors.append(
                f"{r.path}:1:1: ruleset {r.name} has no `effective` range, but it is one of the versions in "
                f"{directory}: add `effective: {{from: ...}}`, or move it out of the directory"
            )
    kinds = {r.period for r in rulesets}
    if len(kinds) > 1:
        errors.append(
            f"{directory}: the rulesets score different periods ("
            + ", ".join(f"{r.path}: {r.period}" for r in rulesets)
            + "); the versions of one directory score the same kind of period"
        )
    if errors:
        raise RulesetError(errors, hint="every ruleset of a directory of versions has its own range")
    ordered = sorted(rulesets, key=lambda r: (r.effective.start if r.effective else "", r.path))
    for i, a in enumerate(ordered):
        for b in ordered[i + 1 :]:
            assert a.effective is not None and b.effective is not None
            if _overlap(a.effective, b.effective):
                errors.append(
                    f"{b.effective.loc}: the effective range of {b.path} ({_range(b)}) overlaps that of "
                    f"{a.path} ({_range(a)}) at {a.effective.loc.line}:{a.effective.loc.col}"
                )
    if errors:
        raise RulesetError(errors, hint="give each version its own months: end the older one with `to:`")
    return Versions(str(directory), tuple(ordered))


def ruleset_for_period(
    rules: str | Path | Ruleset | None, period: str | Period, check: bool = False
) -> tuple[Ruleset, Period]:
    """The ruleset that scores `period`, and the period parsed for it.

    `rules` is a ruleset, a file, a directory of versions, or None (the bundled directory). In a directory
    the version whose `effective` range holds the period is used; a period no range holds is a
    RulesetError (exit 3) naming the files and their ranges. A single file (or ruleset) scores any period;
    outside its range the returned ruleset carries a warning saying so. `check` binds the ruleset to the
    table schemas, as `api.load_rules` does."""
    from chuanliu_cli.periods import Period as PeriodType
    from chuanliu_cli.periods import parse_period
    from chuanliu_cli.rules.files import load_ruleset_cached
    from chuanliu_cli.rules.model import Ruleset as RulesetType

    if rules is None:
        rules = default_rules_dir()
    if isinstance(rules, RulesetType):
        ruleset = rules
        if check:
            from chuanliu_cli.rules.validate import check_ruleset_against_schema

            check_ruleset_against_schema(ruleset)
    elif Path(rules).is_dir():
        versions = load_versions(Path(rules), check)
        kind = versions.rulesets[0].period
        p = period if isinstance(period, PeriodType) else parse_period(period, kind)
        chosen = versions.for_period(p)
        if chosen is None:
            raise RulesetError(
                [f"{rules}: no ruleset is in force in {p.label}: {versions.ranges()}"],
                hint="score a period one of the versions covers, or add a ruleset whose `effective` range "
                "holds it",
            )
        return chosen, p
    else:
        ruleset = load_ruleset_cached(Path(rules), check)
    p = period if isinstance(period, PeriodType) else parse_period(period, ruleset.period)
    return outside_warning(ruleset, p), p


def outside_warning(ruleset: Ruleset, period: Period) -> Ruleset:
    """`ruleset`, with a warning added when `period` is outside its `effective` range."""
    eff = ruleset.effective
    if eff is None or holds(eff, period):
        return ruleset
    message = (
        f"{eff.loc}: ruleset {ruleset.name} is effective {eff.start} to {eff.end}"
        if eff.end
        else f"{eff.loc}: ruleset {ruleset.name} is effective from {eff.start}"
    ) + f", not in {period.label}: it scores {period.label} because it was given as a single file"
    if message in ruleset.warnings:
        return ruleset
    return replace(ruleset, warnings=(*ruleset.warnings, message))


def period_kind(rules: str | Path | Ruleset | None) -> PeriodKind:
    """The kind of period `rules` (a ruleset, a file, a directory of versions, or None) scores."""
    from chuanliu_cli.rules.files import load_ruleset_cached
    from chuanliu_cli.rules.model import Ruleset as RulesetType

    if rules is None:
        rules = default_rules_dir()
    if isinstance(rules, RulesetType):
        return rules.period
    if Path(rules).is_dir():
        return load_versions(Path(rules), check=False).rulesets[0].period
    return load_ruleset_cached(Path(rules), check=False).period
