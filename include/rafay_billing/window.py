"""The billing window: a half-open UTC interval ``[start, end)`` and how a run's conf overrides it.

The ledger's unit is (org, UTC day): the DAG accepts only windows of whole UTC days
(:func:`resolve_window` refuses others) and bills them day by day (:meth:`Window.days`). ``Window``
itself still takes any bounds: the ``rafay-billing metrics`` command keeps the seed's arbitrary windows.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import cached_property
from typing import Any

from rafay_billing.errors import WindowError

_UTC_RE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]00:?00)\Z", re.ASCII)


@dataclass(frozen=True)
class Window:
    start: datetime
    end: datetime

    def __post_init__(self) -> None:
        for name in ("start", "end"):
            value = getattr(self, name)
            if value.tzinfo is None or value.utcoffset() != timedelta(0):
                raise WindowError(f"window {name} must be timezone-aware UTC, got {value!r}")
        if self.end <= self.start:
            raise WindowError(
                f"window end {format_utc(self.end)} must be after window start {format_utc(self.start)}"
            )

    # cached: every normalised record carries both, and formatting them was a tenth of its cost
    @cached_property
    def start_iso(self) -> str:
        return format_utc(self.start)

    @cached_property
    def end_iso(self) -> str:
        return format_utc(self.end)

    @property
    def label(self) -> str:
        """Path-safe name of the window, used for landing folders."""
        return f"{self.start:%Y%m%dT%H%M%SZ}_{self.end:%Y%m%dT%H%M%SZ}"

    @property
    def hours(self) -> float:
        return (self.end - self.start).total_seconds() / 3600

    @property
    def whole_days(self) -> bool:
        """Both bounds fall on 00:00 UTC."""
        return _is_midnight(self.start) and _is_midnight(self.end)

    def days(self) -> list[Window]:
        """The window's UTC days, in order; only for a window of whole days."""
        require_whole_days(self)
        count = (self.end - self.start).days
        return [Window(self.start + timedelta(days=i), self.start + timedelta(days=i + 1)) for i in range(count)]

    def single_day(self) -> date:
        """The UTC date of a window that is exactly one whole UTC day; else :class:`WindowError`."""
        if not self.whole_days or self.end - self.start != timedelta(days=1):
            raise WindowError(
                f"window [{self.start_iso}, {self.end_iso}) is not one whole UTC day (00:00Z to 00:00Z next day)"
            )
        return self.start.date()

    @classmethod
    def for_day(cls, day: date) -> Window:
        """The UTC day ``day`` as a window."""
        start = datetime.combine(day, time(0), tzinfo=UTC)
        return cls(start, start + timedelta(days=1))

    def to_dict(self) -> dict[str, str]:
        return {"window_start": self.start_iso, "window_end": self.end_iso}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Window:
        return cls(parse_utc(data["window_start"], "window_start"), parse_utc(data["window_end"], "window_end"))

    @classmethod
    def last_days(cls, days: int, end: datetime) -> Window:
        """The seed's DAYS: the ``days`` days ending at ``end``."""
        if isinstance(days, bool) or not isinstance(days, int) or days < 1:
            raise WindowError(f"days must be a positive whole number, got {days!r}")
        end = end.astimezone(UTC)
        try:
            start = end - timedelta(days=days)
        except OverflowError:  # a typo's extra digits: a window reaching before the year 1
            raise WindowError(f"days {days} reaches back before the year 1: check it for a typo") from None
        return cls(start, end)


def _is_midnight(value: datetime) -> bool:
    value = value.astimezone(UTC)
    return value == value.replace(hour=0, minute=0, second=0, microsecond=0)


def require_whole_days(window: Window) -> Window:
    """The ledger's rule for a DAG window: whole UTC days, else :class:`WindowError` saying what to send."""
    problems = [
        f"{name} {format_utc(value)} is not 00:00:00Z"
        for name, value in (("window_start", window.start), ("window_end", window.end))
        if not _is_midnight(value)
    ]
    if problems:
        raise WindowError(
            "billing windows are whole UTC days (the ledger bills each (org, day) once): "
            + "; ".join(problems)
            + f" - e.g. {window.start:%Y-%m-%d}T00:00:00Z"
        )
    return window


def format_utc(value: datetime) -> str:
    """RFC 3339 UTC with second precision and a ``Z`` suffix, as the Rafay API expects."""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_utc(text: Any, field: str = "timestamp") -> datetime:
    """Parse an explicit-UTC ISO-8601 timestamp (``…Z`` or ``+00:00``); anything else is an error."""
    if isinstance(text, datetime):
        if text.tzinfo is None or text.utcoffset() != timedelta(0):
            raise WindowError(f"{field} must be UTC, got {text!r}")
        # a plain datetime: Airflow hands over pendulum DateTimes, whose arithmetic can drop the zone
        return datetime.fromtimestamp(text.timestamp(), UTC)
    if not isinstance(text, str) or not _UTC_RE.match(text.strip()):
        raise WindowError(f"{field} must be an ISO-8601 UTC timestamp like 2026-11-10T00:00:00Z, got {text!r}")
    try:
        return datetime.fromisoformat(text.strip().replace("Z", "+00:00")).astimezone(UTC)
    except ValueError as exc:
        raise WindowError(f"{field} is not a valid timestamp: {text!r} ({exc})") from None


def parse_orgs(orgs: Any) -> list[str] | None:
    """The conf's org filter as sorted unique ids; a JSON text of a list (what a free-text form field
    stores, e.g. ``'["ujzde8g"]'``) is parsed. Anything else is refused here, in the run's first task."""
    if orgs is None:
        return None
    if isinstance(orgs, str):
        try:
            parsed = json.loads(orgs)
        except ValueError:
            raise WindowError(
                f'conf "orgs" must be a list of organization ids like ["ujzde8g", "k5x3m0q"], got the text {orgs!r}'
            ) from None
        orgs = parsed
    if not isinstance(orgs, list) or not all(isinstance(o, str) and o.strip() for o in orgs):
        raise WindowError(f'conf "orgs" must be a list of organization ids like ["ujzde8g", "k5x3m0q"], got {orgs!r}')
    return sorted({o.strip() for o in orgs})


DEFAULT_MAX_WINDOW_DAYS = 62
"""``[rafay_billing] max_window_days``'s default: two months, the longest window a run bills unless its
conf says ``{"allow_long_window": true}``."""


def resolve_window(
    interval_start: datetime | None, interval_end: datetime | None, conf: dict[str, Any] | None,
    *, max_days: int | None = DEFAULT_MAX_WINDOW_DAYS,
) -> tuple[Window, list[str] | None]:
    """Window and org filter of a run: conf override (explicit bounds or ``days``) else the data interval.

    Never derived from ``logical_date`` or the clock: manual runs may have no logical date. The window
    must be whole UTC days (:func:`require_whole_days`) and, unless the conf says
    ``{"allow_long_window": true}``, at most ``max_days`` long (None: no cap): a typo in ``days`` or a
    bound must not re-bill years.
    """
    window, orgs = _resolve(interval_start, interval_end, conf)
    require_whole_days(window)
    check_window_length(window, max_days, (conf or {}).get("allow_long_window", False))
    return window, orgs


def check_window_length(window: Window, max_days: int | None, allow_long_window: Any = False) -> Window:
    """``window`` if it is at most ``max_days`` days long or ``allow_long_window`` is true; else
    :class:`WindowError` saying how long it is and what to send."""
    if not isinstance(allow_long_window, bool):
        raise WindowError(f'conf "allow_long_window" must be true or false, got {allow_long_window!r}')
    days = (window.end - window.start) / timedelta(days=1)
    if max_days is None or allow_long_window or days <= max_days:
        return window
    raise WindowError(
        f"window [{window.start_iso}, {window.end_iso}) is {days:g} days long, more than "
        f"[rafay_billing] max_window_days ({max_days}): check the conf for a typo; to bill it anyway, add "
        '{"allow_long_window": true} to the conf'
    )


def _resolve(
    interval_start: datetime | None, interval_end: datetime | None, conf: dict[str, Any] | None
) -> tuple[Window, list[str] | None]:
    conf = dict(conf or {})
    orgs = parse_orgs(conf.get("orgs"))
    has_bounds = "window_start" in conf or "window_end" in conf
    has_days = conf.get("days") is not None
    if has_bounds and has_days:
        raise WindowError('conf has both "window_start"/"window_end" and "days": give one form, not both')
    if has_bounds:
        if "window_start" not in conf or "window_end" not in conf:
            raise WindowError('conf needs both "window_start" and "window_end" (UTC, e.g. 2026-11-10T00:00:00Z)')
        window = Window(parse_utc(conf["window_start"], "window_start"), parse_utc(conf["window_end"], "window_end"))
        return window, orgs
    if interval_end is None:
        raise WindowError(
            "this run has no data interval; pass conf "
            '{"window_start": "…Z", "window_end": "…Z"} or {"days": N}'
        )
    interval_end = parse_utc(interval_end, "data_interval_end")
    if has_days:
        days = conf["days"]
        if isinstance(days, str) and days.strip().isdigit():
            days = int(days)
        return Window.last_days(days, interval_end), orgs
    if interval_start is None:
        raise WindowError("this run has no data interval start")
    return Window(parse_utc(interval_start, "data_interval_start"), interval_end), orgs
