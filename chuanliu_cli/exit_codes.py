"""Process exit codes of the `chuanliu` command."""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    """Exit codes of every `chuanliu` command.

    | code | name              | meaning                                                                 |
    |------|-------------------|-------------------------------------------------------------------------|
    | 0    | OK                | success                                                                 |
    | 1    | INTERNAL          | internal error (a bug): one line, rerun with -v for the traceback       |
    | 2    | USAGE             | bad command line (unknown option, bad value)                            |
    | 3    | INVALID_RULESET   | the ruleset file is invalid; nothing was scored                         |
    | 4    | INVALID_DATA      | unreadable file, missing column, too many rejects, unknown ID           |
    | 5    | DATABASE_BUSY     | another process holds the database lock longer than --wait              |
    | 6    | INCOMPLETE_PERIOD | the period's data is incomplete and --require-complete was given       |
    | 7    | STRICT_WARNING    | a warning was raised under --strict; no output file or run was written  |
    """

    OK = 0
    INTERNAL = 1
    USAGE = 2
    INVALID_RULESET = 3
    INVALID_DATA = 4
    DATABASE_BUSY = 5
    INCOMPLETE_PERIOD = 6
    STRICT_WARNING = 7
