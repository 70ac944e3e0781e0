"""Periods: `2024` (year), `2024-Q1` (quarter), `2024-03` (month), and ranges `2023-01..2024-12`."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Final, Literal

from app.errors import InvalidParameter

PeriodKind = Literal["year", "quarter", "month"]

_YEAR = re.compile(r"^(\d{4})$")
_QUARTER = re.compile(r"^(\d{4})-Q([1-4])$")
_MONTH = re.compile(r"^(\d{4})-(0[1-9]|1[0-2])$")


@dataclass(frozen=True, order=True)
class Period:
    first_month: int  # month index: year * 12 + month - 1
    last_month: int
    kind: PeriodKind
    label: str

    @property
    def months(self) -> range:
        return range(self.first_month, self.last_month + 1)

    @property
    def years(self) -> float:
        """Length in years, for annualising rates of periods shorter than a year."""
        return len(self.months) / 12


def parse_period(text: str) -> Period:
    text = text.strip()
    if match := _YEAR.match(text):
        year = int(match[1])
        return Period(year * 12, year * 12 + 11, "year", text)
    if match := _QUARTER.match(text):
        year, quarter = int(match[1]), int(match[2])
        first = year * 12 + (quarter - 1) * 3
        return Period(first, first + 2, "quarter", text)
    if match := _MONTH.match(text):
        first = int(match[1]) * 12 + int(match[2]) - 1
        return Period(first, first, "month", text)
    raise InvalidParameter(f"period '{text}' is not a year (2024), quarter (2024-Q1) or month (2024-03)")


def _step(period: Period) -> Period:
    months = len(period.months)
    first = period.last_month + 1
    year, month0 = divmod(first, 12)
    if period.kind == "year":
        return Period(first, first + 11, "year", f"{year}")
    if period.kind == "quarter":
        return Period(first, first + 2, "quarter", f"{year}-Q{month0 // 3 + 1}")
    assert months == 1
    return Period(first, first, "month", f"{year}-{month0 + 1:02d}")


REMEMBERED_TEXT: Final = 64  # the periods of texts up to this long are remembered (most requests ask a few)


def parse_periods(text: str, limit: int = 600) -> list[Period]:
    """A comma-separated list of periods and ranges, in the order given, without repeats."""
    if len(text) <= REMEMBERED_TEXT:
        return list(_remembered_periods(text, limit))
    return _parse_periods(text, limit)


@lru_cache(maxsize=1024)
def _remembered_periods(text: str, limit: int) -> tuple[Period, ...]:
    return tuple(_parse_periods(text, limit))


def _parse_periods(text: str, limit: int) -> list[Period]:
    periods: list[Period] = []
    for part in (p for p in text.split(",") if p.strip()):
        if ".." in part:
            start_text, end_text = part.split("..", 1)
            start, end = parse_period(start_text), parse_period(end_text)
            if start.kind != end.kind:
                raise InvalidParameter(f"range '{part.strip()}' mixes a {start.kind} and a {end.kind}")
            if end.first_month < start.first_month:
                raise InvalidParameter(f"range '{part.strip()}' ends before it starts")
            current = start
            while current.first_month <= end.first_month:
                periods.append(current)
                if len(periods) > limit:
                    raise InvalidParameter(f"too many periods (more than {limit})")
                current = _step(current)
        else:
            periods.append(parse_period(part))
    if not periods:
        raise InvalidParameter("period is empty; give a year (2024), quarter (2024-Q1) or month (2024-03)")
    return list(dict.fromkeys(periods))
