"""The billing period: one calendar month in UTC, as a value (one type and one parser for the core)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from rafay_billing.errors import PeriodError

_PERIOD_RE = re.compile(r"^([0-9]{4})-([0-9]{2})\Z")  # ASCII digits only, no trailing newline



@dataclass(frozen=True, order=True)
class Period:
    """A billing period: one calendar month in UTC, ``[start, end)``."""

    start: date

    def __post_init__(self) -> None:
        if self.start.day != 1:
            raise PeriodError(f"a billing period starts on the 1st of a month, got {self.start.isoformat()}")

    @property
    def end(self) -> date:
        """The first day after the period (exclusive end)."""
        return (self.start.replace(day=28) + timedelta(days=4)).replace(day=1)

    @property
    def last_day(self) -> date:
        return self.end - timedelta(days=1)

    @property
    def label(self) -> str:
        """``YYYY-MM``: how operators, file paths and the close DAG's conf name the period."""
        return f"{self.start:%Y-%m}"

    @property
    def start_datetime(self) -> datetime:
        return datetime(self.start.year, self.start.month, 1, tzinfo=UTC)

    @property
    def end_datetime(self) -> datetime:
        return datetime(self.end.year, self.end.month, 1, tzinfo=UTC)

    def days(self) -> list[date]:
        """Every UTC day of the period, in order."""
        return [self.start + timedelta(days=i) for i in range((self.end - self.start).days)]

    def next(self) -> Period:
        return Period(self.end)

    @classmethod
    def containing(cls, moment: date | datetime) -> Period:
        """The period a day (or a UTC instant) falls in."""
        day = _utc_date(moment)
        return cls(day.replace(day=1))

    @classmethod
    def before(cls, logical_date: date | datetime) -> Period:
        """The month before the one ``logical_date`` falls in: the monthly close of 2026-11-01 closes 2026-10."""
        first = _utc_date(logical_date).replace(day=1)
        return cls.containing(first - timedelta(days=1))

    def __str__(self) -> str:
        return self.label


def _utc_date(moment: date | datetime) -> date:
    if isinstance(moment, datetime):
        if moment.tzinfo is None:
            raise PeriodError(f"{moment!r} has no time zone; give a timezone-aware UTC time or a date")
        return moment.astimezone(UTC).date()
    return moment


def parse_period(text: str) -> Period:
    """``"2026-10"`` as a :class:`Period`; anything else is a :class:`PeriodError` that shows the form."""
    value = str(text).strip() if text is not None else ""
    match = _PERIOD_RE.match(value)
    if not match:
        raise PeriodError(f"a billing period is written YYYY-MM (a calendar month in UTC, e.g. 2026-10), got {text!r}")
    year, month = int(match.group(1)), int(match.group(2))
    if not (1 <= month <= 12) or year < 1970:
        raise PeriodError(f"billing period {value!r} is not a month: write YYYY-MM with MM from 01 to 12")
    return Period(date(year, month, 1))


def period_params(period: Period) -> dict[str, Any]:
    return {"period_start": period.start, "period_end": period.end, "label": period.label}
