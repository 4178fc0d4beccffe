"""Reservation coverage arithmetic (issue 22, rule 2): expectations worked out here with plain fractions."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from fractions import Fraction

import pytest

from rafay_billing.contracts.charges import in_term_usage, reservation_capacity
from rafay_billing.contracts.coverage import InstanceUsage, Part, allocate, day_terms
from rafay_billing.contracts.source import Contract

DAY = date(2026, 11, 10)


def utc(h: int, m: int = 0, day: int = 10) -> datetime:
    return datetime(2026, 11, day, h, m, tzinfo=UTC)


def reservation(cid: str, quantity: str, start: datetime, end: datetime | None = None,
                unit: str = "instance_hour") -> Contract:
    return Contract(cid, "coke", "reservation", "compute", "vm", unit, Decimal(quantity), Decimal("1"), None,
                    "USD", None, start, end)


def usage(key: str, hours: str, in_term: Fraction, unit: str = "instance_hour", gpus: int | None = None) -> InstanceUsage:
    quantity = Decimal(hours) * (gpus or 1) if unit == "gpu_hour" else Decimal(hours)
    return InstanceUsage(key, unit, quantity, Decimal(hours), gpus, in_term)


def test_one_reservation_agrees_with_the_month_arithmetic() -> None:
    """Capacity and in-term shares are the ones contracts.charges defines for a single term."""
    r = reservation("r-1", "3", utc(14))
    terms = day_terms([r], DAY)
    assert terms is not None and terms.capacities == (("r-1", reservation_capacity(r, DAY)),)
    assert terms.capacities[0][1] == 30
    for start, end in ((utc(12), utc(16)), (None, None), (utc(20, day=9), utc(15)), (utc(15), utc(15))):
        assert Fraction("4") * terms.in_term_share(start, end) == in_term_usage(r, DAY, Decimal(4), start, end)


def test_terms_that_overlap_are_one_union_and_capacities_add_in_term_start_order() -> None:
    later = reservation("a-later", "1", utc(12), utc(18))
    earlier = reservation("z-earlier", "2", utc(6), utc(14))
    terms = day_terms([later, earlier], DAY)
    assert terms is not None
    assert terms.capacities == (("z-earlier", Fraction(16)), ("a-later", Fraction(6)))
    assert terms.spans == ((utc(6), utc(18)),)  # 06:00-18:00: half the day
    assert terms.in_term_share(None, None) == Fraction(1, 2)
    assert terms.in_term_share(utc(4), utc(8)) == Fraction(1, 2)


def test_a_reservation_outside_the_day_or_before_billing_start_has_no_terms() -> None:
    assert day_terms([reservation("r", "1", utc(0, day=11))], DAY) is None
    assert day_terms([reservation("r", "1", utc(0, day=1))], DAY, billing_start=date(2026, 11, 11)) is None


def test_parts_add_up_exactly_and_the_straddling_instance_is_split_across_reservations() -> None:
    terms = day_terms([reservation("r-1", "1", utc(0, day=1)), reservation("r-2", "1", utc(23))], DAY)
    assert terms is not None  # 24 + 1 instance-hours
    parts = allocate(terms, [usage("b", "20", Fraction(20)), usage("a", "4.5", Fraction("4.5")),
                             usage("c", "3", Fraction(3))])
    assert parts == [
        Part("a", "r-1", Decimal("4.500000"), Decimal("4.500000")),
        Part("b", "r-1", Decimal("19.500000"), Decimal("19.500000")),
        Part("b", "r-2", Decimal("0.500000"), Decimal("0.500000")),
        Part("c", "r-2", Decimal("0.500000"), Decimal("0.500000")),
        Part("c", "", Decimal("2.500000"), Decimal("2.500000")),
    ]


def test_an_instance_hour_reservation_over_a_gpu_hour_price_converts_by_the_gpu_count() -> None:
    """1 instance reserved for the day (24 instance-hours); a 3-GPU instance used 30 h of GPU-hour prices:
    10 instance-hours, all in term, all covered: 30 GPU-hours covered, nothing on demand."""
    terms = day_terms([reservation("r-1", "1", utc(0, day=1))], DAY)
    assert terms is not None
    assert allocate(terms, [usage("g", "10", Fraction(10), "gpu_hour", 3)]) == [
        Part("g", "r-1", Decimal(30), Decimal(10))]


def test_a_gpu_hour_reservation_rounds_the_converted_quantity_half_up() -> None:
    terms = day_terms([reservation("r-1", "1", utc(0, day=1), unit="gpu_hour")], DAY)
    assert terms is not None  # 24 GPU-hours; a 7-GPU instance with an instance-hour price
    [covered, rest] = allocate(terms, [usage("z", "10", Fraction(10), "instance_hour", 7)])
    assert covered == Part("z", "r-1", Decimal("3.428571"), Decimal("3.428571"))  # 24/7 = 3.4285714…
    assert rest == Part("z", "", Decimal("6.571429"), Decimal("6.571429"))  # 46/7 = 6.5714285… half-up


@pytest.mark.parametrize("item", [
    usage("m", "10", Fraction(10), "instance_month"),
    usage("n", "10", Fraction(10), "instance_hour", None),
])
def test_never_covered_under_a_gpu_hour_reservation(item: InstanceUsage) -> None:
    """A monthly unit is never covered; an instance without a GPU count has no GPU-hours to cover."""
    terms = day_terms([reservation("r-1", "4", utc(0, day=1), unit="gpu_hour")], DAY)
    assert terms is not None and allocate(terms, [item]) == []
