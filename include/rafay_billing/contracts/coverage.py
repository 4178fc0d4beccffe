"""Reservation coverage of one (org, UTC day, profile type, profile) as pure arithmetic (issue 22, rule 2).

Why exact fractions: a record without times counts pro rata (hours × in-term hours ÷ 24), and a record
with times by the share of its interval inside the term; neither has a finite decimal in general. The
allocation keeps exact values and rounds each part's quantity once, half-up to 6 places, cumulatively
within an instance, so an instance's parts always add up to its quantity exactly: nothing billed twice,
nothing lost.

The rules, in order:

* capacity of each reservation = quantity × hours of its term inside the day (from ``billing_start``),
  in the reservation's unit; reservations of one profile share a unit (the sync refuses otherwise) and
  are consumed in (term_start, contract_id) order;
* in-term usage of an instance = its records' hours on the day inside the **union** of the terms that
  day (a record with times by the part of its ``[start, end)`` inside; without times pro rata), in the
  reservation's unit (``gpu_hour``: × GPU count);
* instances take capacity in ascending instance-key byte order (Python's ``str`` order, which is UTF-8
  byte order): covered = min(in-term usage, capacity left); the cumulative covered usage is laid over the
  reservations' cumulative capacities, so each covered slice belongs to one reservation and an instance
  crossing from one reservation to the next has a covered part of each;
* the rest of an instance is on-demand. Where the instance's price unit differs from the reservation's,
  quantities are converted (× or ÷ the GPU count) and rounded half-up to 6 places;
* never covered: an instance whose price unit is not ``instance_hour``/``gpu_hour``, and one without a
  GPU count under a ``gpu_hour`` reservation (the caller passes only instance items, never dimensions).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from fractions import Fraction

from rafay_billing.contracts.charges import in_term_span
from rafay_billing.contracts.source import Contract

COVERABLE_UNITS: tuple[str, ...] = ("instance_hour", "gpu_hour")
"""Price units whose instance items a reservation may cover (monthly units and dimensions never)."""
_PLACES = Decimal("0.000001")


def _half_up6(value: Fraction) -> Decimal:
    whole = math.floor(abs(value) * 10**6 + Fraction(1, 2))
    return (Decimal(-whole if value < 0 else whole) * _PLACES).quantize(_PLACES)


def _seconds(lo: datetime, hi: datetime) -> Fraction:
    delta = hi - lo
    return Fraction((delta.days * 86_400 + delta.seconds) * 10**6 + delta.microseconds, 10**6)


@dataclass(frozen=True)
class DayTerms:
    """The reservations of one (org, day, profile type, profile) as that day sees them."""

    day: date
    unit: str
    capacities: tuple[tuple[str, Fraction], ...]
    """(contract_id, capacity in the unit) in consumption order, only those with capacity > 0."""
    spans: tuple[tuple[datetime, datetime], ...]
    """The union of the terms inside the day (from ``billing_start``), as disjoint sorted intervals."""

    @property
    def day_start(self) -> datetime:
        return datetime(self.day.year, self.day.month, self.day.day, tzinfo=UTC)

    def in_term_share(self, start: datetime | None, end: datetime | None) -> Fraction:
        """The share of a record's billed hours on the day that is in term: by its interval clipped to
        the day when it has one of positive length, else pro rata over the day's 24 hours."""
        day_start = self.day_start
        day_end = day_start + timedelta(days=1)
        if start is not None and end is not None and end > start:
            lo, hi = max(start, day_start), min(end, day_end)
            if hi > lo:
                return self._inside(lo, hi) / _seconds(lo, hi)
        return self._inside(day_start, day_end) / 86_400

    def _inside(self, lo: datetime, hi: datetime) -> Fraction:
        return sum((_seconds(max(a, lo), min(b, hi)) for a, b in self.spans if min(b, hi) > max(a, lo)), Fraction(0))


def day_terms(reservations: Sequence[Contract], day: date, billing_start: date | None = None) -> DayTerms | None:
    """The reservations (of one org and profile) active on ``day``; None when none has capacity that day."""
    day_start = datetime(day.year, day.month, day.day, tzinfo=UTC)
    active = []
    for c in sorted(reservations, key=lambda x: (x.term_start, x.contract_id)):
        span = in_term_span(c, day_start, day_start + timedelta(days=1), billing_start)
        if span is not None and c.quantity is not None:
            active.append((c, span))
    if not active:
        return None
    units = {c.unit for c, _ in active}
    if len(units) != 1:
        raise ValueError(f"reservations {', '.join(c.contract_id for c, _ in active)} of one profile have "
                         f"different units ({', '.join(sorted(str(u) for u in units))}): the sync refuses this")
    spans: list[tuple[datetime, datetime]] = []
    for lo, hi in sorted(span for _, span in active):
        if spans and lo <= spans[-1][1]:
            spans[-1] = (spans[-1][0], max(spans[-1][1], hi))
        else:
            spans.append((lo, hi))
    capacities = tuple((c.contract_id, Fraction(c.quantity) * _seconds(*span) / 3600)  # type: ignore[arg-type]
                       for c, span in active)
    return DayTerms(day, str(units.pop()), capacities, tuple(spans))


@dataclass(frozen=True)
class InstanceUsage:
    """One instance item of the day as rated on demand, with its usage inside the terms (in hours)."""

    instance_key: str
    pricing_unit: str
    quantity: Decimal
    usage_hours: Decimal
    gpu_count: int | None
    in_term_hours: Fraction


@dataclass(frozen=True)
class Part:
    """A piece of an instance item: ``covered_by`` a contract id, or '' for the on-demand rest."""

    instance_key: str
    covered_by: str
    quantity: Decimal
    usage_hours: Decimal


def _factors(item: InstanceUsage, unit: str) -> tuple[Fraction, Fraction, Fraction] | None:
    """(full usage in the reservation's unit, that unit → price unit, that unit → hours); None: not coverable."""
    if item.pricing_unit not in COVERABLE_UNITS:
        return None
    gpus = Fraction(item.gpu_count) if item.gpu_count is not None and item.gpu_count > 0 else None
    if unit == "gpu_hour":
        if gpus is None:
            return None
        to_price = Fraction(1) if item.pricing_unit == "gpu_hour" else 1 / gpus
        return Fraction(item.usage_hours) * gpus, to_price, 1 / gpus
    to_price = Fraction(1) if item.pricing_unit == "instance_hour" else (gpus or Fraction(0))
    if to_price == 0:
        return None
    return Fraction(item.usage_hours), to_price, Fraction(1)


def allocate(terms: DayTerms, items: Sequence[InstanceUsage]) -> list[Part]:
    """The covered parts and on-demand rests of ``items`` (only those the reservations touch), in
    instance-key byte order; an instance fully covered has no on-demand part."""
    total = sum((cap for _, cap in terms.capacities), Fraction(0))
    used = Fraction(0)
    parts: list[Part] = []
    for item in sorted(items, key=lambda i: i.instance_key):
        factors = _factors(item, terms.unit)
        if factors is None or used >= total:
            continue
        full, to_price, to_hours = factors
        # the in-term hours in the reservation's unit (x GPU count for gpu_hour), never above the whole
        in_term = min(item.in_term_hours * full / Fraction(item.usage_hours), full) if item.usage_hours else Fraction(0)
        covered = min(in_term, total - used)
        if covered <= 0:
            continue
        parts.extend(_split(item, terms, used, covered, covered == full, to_price, to_hours))
        used += covered
    return parts


def _split(item: InstanceUsage, terms: DayTerms, start: Fraction, covered: Fraction, whole: bool,
           to_price: Fraction, to_hours: Fraction) -> list[Part]:
    """``item``'s covered usage [start, start + covered) of the cumulative capacity, cut at the
    reservations' boundaries, rounded cumulatively; then its on-demand rest (if any)."""
    parts: list[Part] = []
    bound, cum = Fraction(0), Fraction(0)
    q_done, h_done = Decimal(0), Decimal(0)
    pieces = []
    for contract_id, cap in terms.capacities:
        lo, hi = max(bound, start), min(bound + cap, start + covered)
        if hi > lo:
            pieces.append((contract_id, hi - lo))
        bound += cap
    for n, (contract_id, size) in enumerate(pieces):
        cum += size
        if whole and n == len(pieces) - 1:
            q_end, h_end = item.quantity, item.usage_hours
        else:
            q_end = min(_half_up6(cum * to_price), item.quantity)
            h_end = min(_half_up6(cum * to_hours), item.usage_hours)
        if q_end != q_done or h_end != h_done:
            parts.append(Part(item.instance_key, contract_id, q_end - q_done, h_end - h_done))
        q_done, h_done = q_end, h_end
    if q_done == 0 and h_done == 0:
        return []
    if (item.quantity - q_done, item.usage_hours - h_done) != (0, 0):
        parts.append(Part(item.instance_key, "", item.quantity - q_done, item.usage_hours - h_done))
    return parts
