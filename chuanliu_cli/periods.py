"""Scoring periods: calendar months and ISO weeks (Monday start), as half-open [start, end) dates."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Literal

from chuanliu_cli.errors import UsageError

PeriodKind = Literal["month", "week"]

_MONTH = re.compile(r"^(\d{4})-(\d{1,2})$")
_WEEK = re.compile(r"^(\d{4})-?W(\d{1,2})$", re.IGNORECASE)


@dataclass(frozen=True, order=True)
class Period:
    """A half-open period [start, end) of whole days in the ruleset's timezone."""

    start: date
    end: date
    kind: PeriodKind

    @property
    def label(self) -> str:
        """`2023-05` for a month, `2023-W18` for an ISO week."""
        if self.kind == "month":
            return f"{self.start.year:04d}-{self.start.month:02d}"
        year, week, _ = self.start.isocalendar()
        return f"{year:04d}-W{week:02d}"

    @property
    def last_day(self) -> date:
        """The period's last day (inclusive)."""
        return self.end - timedelta(days=1)

    def shift(self, n: int) -> Period:
        """The period `n` periods later (negative: earlier)."""
        if self.kind == "week":
            return week_period(self.start + timedelta(weeks=n))
        index = self.start.year * 12 + self.start.month - 1 + n
        return month_period(index // 12, index % 12 + 1)

    def previous(self) -> Period:
        """The period just before this one."""
        return self.shift(-1)


def month_period(year: int, month: int) -> Period:
    """The calendar month `year-month`."""
    start = date(year, month, 1)
    end = date(year + (month == 12), month % 12 + 1, 1)
    return Period(start, end, "month")


def week_period(day: date) -> Period:
    """The ISO week (Monday to Sunday) containing `day`."""
    start = day - timedelta(days=day.weekday())
    return Period(start, start + timedelta(days=7), "week")


def parse_period(text: str, kind: PeriodKind = "month") -> Period:
    """Parse `2023-05` (month) or `2023-W18` (ISO week), or any date inside the period (`2023-05-17`)."""
    if not isinstance(text, str):  # (the Python API: 202305 or None)
        example = "2023-05" if kind == "month" else "2023-W18"
        raise UsageError(f"a period is text such as {example!r}, not {text!r}", hint=f"write {example!r}")
    text = text.strip()
    try:
        if kind == "month":
            m = _MONTH.match(text)
            if m:
                return month_period(int(m.group(1)), int(m.group(2)))
            if _WEEK.match(text) or "W" in text.upper():
                # Python reads 2023-W18 as that week's Monday: scoring its month would be a silent guess.
                raise UsageError(
                    f"{text!r} is a week, but the ruleset scores months",
                    hint="give a month such as 2023-05, or use a ruleset with `period: week`",
                )
            d = date.fromisoformat(text)
            return month_period(d.year, d.month)
        m = _WEEK.match(text)
        if m:
            return week_period(date.fromisocalendar(int(m.group(1)), int(m.group(2)), 1))
        return week_period(date.fromisoformat(text))
    except ValueError:
        pass
    example = "2023-05" if kind == "month" else "2023-W18"
    raise UsageError(f"invalid {kind} {text!r}", hint=f"write it like {example}")
