"""Months and ISO weeks: parsing, and refusing a period of the other kind instead of guessing."""

from __future__ import annotations

from datetime import date

import pytest

from chuanliu_cli.errors import UsageError
from chuanliu_cli.exit_codes import ExitCode
from chuanliu_cli.periods import parse_period


@pytest.mark.parametrize("text", ["2023-05", "2023-5", "2023-05-17", " 2023-05 "])
def test_month_forms(text: str) -> None:
    period = parse_period(text)
    assert (period.start, period.end, period.kind) == (date(2023, 5, 1), date(2023, 6, 1), "month")


@pytest.mark.parametrize("text", ["2023-W18", "2023-w18", "2023W18", "2023-W18-1"])
def test_a_week_given_to_a_monthly_ruleset_is_a_usage_error(text: str) -> None:
    """Python reads 2023-W18 as a date (that week's Monday): scoring May for it was a silent guess."""
    with pytest.raises(UsageError, match="is a week, but the ruleset scores months") as info:
        parse_period(text, "month")
    assert info.value.exit_code == ExitCode.USAGE


def test_week_forms_and_a_month_given_to_a_weekly_ruleset() -> None:
    assert parse_period("2023-W18", "week").start == date(2023, 5, 1)
    assert parse_period("2023-05-03", "week").start == date(2023, 5, 1)
    with pytest.raises(UsageError, match="invalid week '2023-05'"):
        parse_period("2023-05", "week")
