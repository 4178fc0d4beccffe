"""Month-level contract charges as pure arithmetic: no database, no Airflow, exact to the last digit.

Why exact fractions inside: an in-term share of a month is hours ÷ 24 ÷ days, and ``x ÷ 3`` or
``x ÷ 31`` has no finite decimal. Each function keeps the exact value (:class:`fractions.Fraction`)
until the end and rounds **once**, half-up (away from zero, like PostgreSQL's ``round``), to the
currency's ISO 4217 minor unit (:func:`round_money`). Quantities shown beside an amount are rounded
half-up to 6 decimal places for display only; the amount never comes from a rounded quantity.

Rule 9 (start of billing): every function takes ``billing_start`` (the ``[rafay_billing]
billing_start_date``, a UTC day): nothing before 00:00 UTC of that day is charged, and a term that
started earlier is prorated from that day. ``None`` = no start (tests, tools).

Months are :class:`~rafay_billing.period.Period` values (calendar months, UTC).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from fractions import Fraction

from rafay_billing.contracts.source import Contract
from rafay_billing.currency import minor_unit
from rafay_billing.period import Period

QUANTITY_PLACES = 6
"""Display quantities (unit-hours, month shares) are rounded half-up to this many places."""
MONTH_UNITS: tuple[str, ...] = ("instance_month", "gpu_month")
"""Price-book units of a monthly recurring charge (rule 3)."""

_MICROS_PER_HOUR = 3_600 * 10**6
_MICROS_PER_DAY = 24 * _MICROS_PER_HOUR


# --- rounding and time arithmetic ------------------------------------------------------------------


def _half_up(value: Fraction, places: int) -> Decimal:
    scaled = abs(value) * 10**places
    whole = math.floor(scaled + Fraction(1, 2))
    signed = -whole if value < 0 else whole
    return Decimal(signed).scaleb(-places).quantize(Decimal(1).scaleb(-places))


def round_money(value: Fraction | Decimal | int, currency: str) -> Decimal:
    """``value`` rounded once, half-up (away from zero), to ``currency``'s minor unit (JPY 0, USD 2, BHD 3)."""
    return _half_up(Fraction(value), minor_unit(currency))


def round_quantity(value: Fraction | Decimal | int) -> Decimal:
    """A display quantity: half-up to :data:`QUANTITY_PLACES` places."""
    return _half_up(Fraction(value), QUANTITY_PLACES)


def _micros(delta: timedelta) -> int:
    return (delta.days * 86_400 + delta.seconds) * 10**6 + delta.microseconds


def _midnight(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def in_term_span(c: Contract, start: datetime, end: datetime, billing_start: date | None = None
                 ) -> tuple[datetime, datetime] | None:
    """The part of ``[start, end)`` inside the contract's term and on or after ``billing_start``; None if empty."""
    lo = max(c.term_start, start, _midnight(billing_start)) if billing_start else max(c.term_start, start)
    hi = end if c.term_end is None else min(c.term_end, end)
    return (lo, hi) if hi > lo else None


def in_term_hours(c: Contract, start: datetime, end: datetime, billing_start: date | None = None) -> Fraction:
    """Exact hours of ``[start, end)`` inside the term (from ``billing_start`` on); 0 when they do not meet."""
    span = in_term_span(c, start, end, billing_start)
    return Fraction(_micros(span[1] - span[0]), _MICROS_PER_HOUR) if span else Fraction(0)


def in_term_days(c: Contract, period: Period, billing_start: date | None = None) -> Fraction:
    """Exact days of the month inside the term (whole days for terms on UTC midnights)."""
    return in_term_hours(c, period.start_datetime, period.end_datetime, billing_start) / 24


def days_in(period: Period) -> int:
    return (period.end - period.start).days


def contract_periods(c: Contract, through: Period, billing_start: date | None = None) -> list[Period]:
    """The months, up to ``through``, that the contract can charge: its term's months from
    ``billing_start``'s month on (a one-time fee: only the month of its ``term_start``)."""
    first = Period.containing(c.term_start)
    if billing_start is not None and Period.containing(billing_start) > first:
        first = Period.containing(billing_start)
    last = through
    if c.term_end is not None:
        last = min(last, Period.containing(c.term_end - timedelta(microseconds=1)))
    if c.kind == "fee" and c.frequency == "one_time":
        last = min(last, Period.containing(c.term_start))
    periods = []
    while first <= last:
        periods.append(first)
        first = first.next()
    return periods


# --- the charges ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class MonthCharge:
    """One month-level line item of a contract for one month (rule 6).

    ``category`` is the ledger's ``charge_category`` (``purchase`` for reservation fees and fees,
    ``true_up`` for commitment shortfalls); ``kind`` says which rule made it. ``quantity`` and
    ``unit`` describe it (unit-hours for a reservation fee, the month share for a monthly fee or a
    commitment, 1 for a one-time fee), rounded for display; ``amount`` is exact, rounded once.
    """

    contract_id: str
    org_id: str
    period: Period
    kind: str
    category: str
    currency: str
    unit: str
    quantity: Decimal
    unit_price: Decimal
    amount: Decimal

    @property
    def usage_date(self) -> date:
        """The month's first day: where a month-level item is dated (keyed apart from that day's usage)."""
        return self.period.start


def reservation_fee(c: Contract, period: Period, billing_start: date | None = None) -> MonthCharge | None:
    """Rule 1: ``quantity × unit_price × hours of [term_start, term_end) inside the month``, rounded once.

    Billed whether the capacity is used or not; None when the term (from ``billing_start``) misses the month.
    """
    if c.kind != "reservation" or c.quantity is None or c.unit_price is None or c.unit is None:
        raise ValueError(f"contract {c.contract_id!r} is a {c.kind}, not a reservation")
    hours = in_term_hours(c, period.start_datetime, period.end_datetime, billing_start)
    if hours == 0:
        return None
    unit_hours = Fraction(c.quantity) * hours
    return MonthCharge(
        contract_id=c.contract_id, org_id=c.org_id, period=period, kind="reservation_fee", category="purchase",
        currency=c.currency, unit=c.unit, quantity=round_quantity(unit_hours), unit_price=c.unit_price,
        amount=round_money(unit_hours * Fraction(c.unit_price), c.currency),
    )


def committed_amount(c: Contract, period: Period, billing_start: date | None = None) -> Fraction:
    """Rule 4: ``amount × days of the term inside the month ÷ days in the month``, exact (not rounded:
    the true-up rounds once, after subtracting the eligible spend)."""
    if c.kind != "commitment" or c.amount is None:
        raise ValueError(f"contract {c.contract_id!r} is a {c.kind}, not a commitment")
    return Fraction(c.amount) * in_term_days(c, period, billing_start) / days_in(period)


def true_up(c: Contract, period: Period, eligible: Decimal | Fraction, billing_start: date | None = None
            ) -> MonthCharge | None:
    """Rule 4: a true-up of ``committed − eligible`` when that is positive, rounded once; else None.

    ``eligible`` is the org's spend in the commitment's currency for usage on in-term days of the
    month, as currently rated (usage, reservation overage, MRC; not fees, reservation fees or true-ups):
    the caller sums it from the ledger (exact: a partial term's MRC share is a fraction). A shortfall that
    rounds to 0 writes no item.
    """
    committed = committed_amount(c, period, billing_start)
    if committed == 0:
        return None
    amount = round_money(committed - Fraction(eligible), c.currency)
    if amount <= 0:
        return None
    assert c.amount is not None  # committed_amount checked it
    return MonthCharge(
        contract_id=c.contract_id, org_id=c.org_id, period=period, kind="true_up", category="true_up",
        currency=c.currency, unit="month", quantity=round_quantity(in_term_days(c, period, billing_start)
                                                                   / days_in(period)),
        unit_price=c.amount, amount=amount,
    )


def fee_charge(c: Contract, period: Period, billing_start: date | None = None) -> MonthCharge | None:
    """Rule 5: a ``monthly`` fee prorated by in-term days, or a ``one_time`` fee's whole amount in the
    month containing ``term_start``; rounded once. A one-time fee dated before ``billing_start`` is not
    charged (billing had not started). None when the month has nothing of it."""
    if c.kind != "fee" or c.amount is None:
        raise ValueError(f"contract {c.contract_id!r} is a {c.kind}, not a fee")
    if c.frequency == "one_time":
        starts_here = Period.containing(c.term_start) == period
        if not starts_here or (billing_start is not None and c.term_start < _midnight(billing_start)):
            return None
        share = Fraction(1)
    else:
        share = in_term_days(c, period, billing_start) / days_in(period)
        if share == 0:
            return None
    return MonthCharge(
        contract_id=c.contract_id, org_id=c.org_id, period=period, kind="fee", category="purchase",
        currency=c.currency, unit="one_time" if c.frequency == "one_time" else "month",
        quantity=round_quantity(share), unit_price=c.amount, amount=round_money(Fraction(c.amount) * share, c.currency),
    )


def month_charges(contracts: Iterable[Contract], period: Period, eligible: Mapping[str, Decimal | Fraction],
                  billing_start: date | None = None) -> list[MonthCharge]:
    """Every contract's month-level charge of ``period`` (reservation fees, fees, true-ups), by contract id.

    ``eligible`` maps a commitment's id to its eligible spend of the month; a commitment missing
    from it is treated as no eligible spend (its whole committed amount is a true-up).
    """
    charges = []
    for c in sorted(contracts, key=lambda x: x.contract_id):
        if c.kind == "reservation":
            charge = reservation_fee(c, period, billing_start)
        elif c.kind == "fee":
            charge = fee_charge(c, period, billing_start)
        else:
            charge = true_up(c, period, eligible.get(c.contract_id, Decimal(0)), billing_start)
        if charge is not None:
            charges.append(charge)
    return charges


# --- reservation coverage (rule 2) -------------------------------------------------------------------


def reservation_capacity(c: Contract, day: date, billing_start: date | None = None) -> Fraction:
    """Rule 2: ``quantity × hours of the term inside the UTC day`` in the reservation's unit, exact."""
    if c.kind != "reservation" or c.quantity is None:
        raise ValueError(f"contract {c.contract_id!r} is a {c.kind}, not a reservation")
    start = _midnight(day)
    return Fraction(c.quantity) * in_term_hours(c, start, start + timedelta(days=1), billing_start)


def in_term_usage(c: Contract, day: date, hours: Decimal, start: datetime | None = None,
                  end: datetime | None = None) -> Fraction:
    """Rule 2: the part of a record's ``hours`` on ``day`` that falls inside the term, exact.

    A record with times is split by the part of its ``[start, end)`` (clipped to the day) inside the
    term; a record without times pro rata, ``hours × in-term hours of the day ÷ 24``. The rest is
    on-demand. (One reservation's term; the caller consumes several in (term_start, contract_id) order.)
    """
    day_start = _midnight(day)
    day_end = day_start + timedelta(days=1)
    if start is not None and end is not None and end > start:
        lo, hi = max(start, day_start), min(end, day_end)
        if hi <= lo:
            return Fraction(0)
        return Fraction(hours) * in_term_hours(c, lo, hi) / Fraction(_micros(hi - lo), _MICROS_PER_HOUR)
    return Fraction(hours) * in_term_hours(c, day_start, day_end) / 24


# --- monthly recurring charges (rule 3) ----------------------------------------------------------------


@dataclass(frozen=True)
class MrcDay:
    """One UTC day of one instance whose applicable instance price has a month unit."""

    day: date
    unit: str
    unit_price: Decimal
    currency: str
    gpu_count: int | None = None
    usage_hours: Decimal = Decimal(1)


@dataclass(frozen=True)
class MrcCharge:
    """The monthly charge of one instance for one month in one currency (rule 3).

    ``quantity`` is the month share in the unit (Σ of 1 per ``instance_month`` day, the GPU count per
    ``gpu_month`` day, ÷ days in the month), rounded for display; ``unit`` is None when both units
    occur in the month. ``missing_gpu_count`` lists ``gpu_month`` days without a GPU count: not
    billed here, they are ``missing_gpu_count`` exceptions of their day.
    """

    period: Period
    currency: str
    unit: str | None
    days: tuple[date, ...]
    quantity: Decimal
    amount: Decimal
    missing_gpu_count: tuple[date, ...] = ()


def _mrc_days(days: Iterable[MrcDay], period: Period, billing_start: date | None) -> list[MrcDay]:
    """The days that count: in the month, used (> 0 hours), from ``billing_start`` on; each day once."""
    seen: set[date] = set()
    kept = []
    for d in days:
        if Period.containing(d.day) != period:
            raise ValueError(f"MRC day {d.day} is not in {period.label}")
        if d.unit not in MONTH_UNITS:
            raise ValueError(f"MRC day {d.day} has unit {d.unit!r}: only {', '.join(MONTH_UNITS)} are monthly")
        if d.day in seen:
            raise ValueError(f"MRC day {d.day} is given twice: each day of an instance is billed once")
        seen.add(d.day)
        if d.usage_hours > 0 and (billing_start is None or d.day >= billing_start):
            kept.append(d)
    return kept


def mrc_charges(days: Iterable[MrcDay], period: Period, billing_start: date | None = None) -> list[MrcCharge]:
    """Rule 3 for one instance and month: per currency, ``Σ unit_price (× GPU count for gpu_month)`` over
    the used month-priced days, ``÷ days in the month`` once at the end, rounded once.

    A full month of use at one price therefore costs exactly the monthly price. Days priced hourly are
    not passed here (they are billed hourly); the caller sets their daily items' amounts to 0.
    """
    by_currency: dict[str, list[MrcDay]] = {}
    for d in sorted(_mrc_days(days, period, billing_start), key=lambda x: x.day):
        by_currency.setdefault(d.currency, []).append(d)
    charges = []
    for currency, group in sorted(by_currency.items()):
        missing = tuple(d.day for d in group if d.unit == "gpu_month" and d.gpu_count is None)
        billed = [d for d in group if d.day not in missing]
        multipliers = [Fraction(1) if d.unit == "instance_month" else Fraction(d.gpu_count or 0) for d in billed]
        total = sum((m * Fraction(d.unit_price) for m, d in zip(multipliers, billed, strict=True)), Fraction(0))
        units = {d.unit for d in billed}
        charges.append(MrcCharge(
            period=period, currency=currency, unit=units.pop() if len(units) == 1 else None,
            days=tuple(d.day for d in billed), quantity=round_quantity(sum(multipliers, Fraction(0)) / days_in(period)),
            amount=round_money(total / days_in(period), currency), missing_gpu_count=missing,
        ))
    return charges
