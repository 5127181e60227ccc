"""The tool's exceptions: each carries a one-line message, an optional hint and its exit code."""

from __future__ import annotations

from chuanliu_cli.exit_codes import ExitCode


class ChuanliuError(Exception):
    """An expected failure that the command line turns into `Error: …` and an exit code."""

    exit_code: ExitCode = ExitCode.INTERNAL

    def __init__(self, message: str, hint: str | None = None, details: list[str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.details = list(details or [])  # extra lines shown under the message (e.g. the first rejects)


class UsageError(ChuanliuError):
    """The command line asks for something impossible (bad month, unknown scorecard)."""

    exit_code = ExitCode.USAGE


class RulesetError(ChuanliuError):
    """The ruleset is invalid; `errors` holds every `FILE:LINE:COL: message` found."""

    exit_code = ExitCode.INVALID_RULESET

    def __init__(self, errors: list[str], hint: str | None = None) -> None:
        self.errors = list(errors)
        first = self.errors[0] if self.errors else "invalid ruleset"
        more = f" (and {len(self.errors) - 1} more)" if len(self.errors) > 1 else ""
        super().__init__(first + more, hint)


class DataError(ChuanliuError):
    """An input file is unreadable or unusable (missing column, too many rejects, unknown ID)."""

    exit_code = ExitCode.INVALID_DATA


class BusyError(ChuanliuError):
    """Another process holds the database lock."""

    exit_code = ExitCode.DATABASE_BUSY


class IncompletePeriodError(ChuanliuError):
    """The requested period is not complete and completeness was required."""

    exit_code = ExitCode.INCOMPLETE_PERIOD


class StrictError(ChuanliuError):
    """Warnings were raised and the caller asked for none (strict): nothing was written."""

    exit_code = ExitCode.STRICT_WARNING

    def __init__(self, warnings: list[str] | tuple[str, ...]) -> None:
        n = len(warnings)
        super().__init__(
            f"{n} warning{'s' if n != 1 else ''} in strict mode; nothing was written",
            hint="fix what the warnings say, or run without strict mode to accept them",
            details=[f"warning: {w}" for w in warnings],
        )
        self.warnings = tuple(warnings)


def first_line(error: BaseException) -> str:
    """The first line of an error's text (DuckDB adds the query and a caret below it), or its type's name."""
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__
