"""Month-level contract charges (issue 22, rules 1, 3, 4, 5, 9): Decimal expectations computed here.

Each expectation is worked out in the test with plain Decimal arithmetic at high precision and one
half-up rounding, independently of the module's exact-fraction code.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime
from decimal import ROUND_HALF_UP, Decimal, localcontext

import pytest

from rafay_billing.contracts.charges import (
    MrcDay,
    committed_amount,
    contract_periods,
    fee_charge,
    in_term_usage,
    month_charges,
    mrc_charges,
    reservation_capacity,
    reservation_fee,
    round_money,
    true_up,
)
from rafay_billing.contracts.source import Contract
from rafay_billing.period import Period

NOV, DEC, OCT = Period(date(2026, 11, 1)), Period(date(2026, 12, 1)), Period(date(2026, 10, 1))


def expect(value: str | Decimal, places: int) -> Decimal:
    """``value`` (computed at 60 digits) rounded half-up once to ``places``."""
    return Decimal(value).quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)


def exact(expression: Callable[[], Decimal]) -> Decimal:
    """``expression()`` evaluated at 60 significant digits."""
    with localcontext() as ctx:
        ctx.prec = 60
        return expression()


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def reservation(quantity: str, price: str, start: datetime, end: datetime | None = None, *,
                currency: str = "USD", unit: str = "gpu_hour") -> Contract:
    return Contract("r-1", "coke", "reservation", "compute", "h100", unit, Decimal(quantity), Decimal(price), None,
                    currency, None, start, end)


def commitment(amount: str, start: datetime, end: datetime | None = None, currency: str = "USD") -> Contract:
    return Contract("c-1", "coke", "commitment", "compute", None, None, None, None, Decimal(amount), currency,
                    "monthly", start, end)


def fee(amount: str, frequency: str, start: datetime, end: datetime | None = None, currency: str = "USD") -> Contract:
    return Contract("f-1", "coke", "fee", "compute", None, None, None, None, Decimal(amount), currency, frequency,
                    start, end)


# --- rule 1: reservation fee -----------------------------------------------------------------------


def test_a_reservation_accepted_at_14_00_on_the_10th_of_a_30_day_month() -> None:
    r = reservation("8", "2.1234", utc(2026, 11, 10, 14))
    hours = Decimal(10) + 20 * 24  # 14:00-24:00 on the 10th, then the 11th..30th
    charge = reservation_fee(r, NOV)
    assert charge is not None
    assert charge.amount == expect(exact(lambda: Decimal(8) * Decimal("2.1234") * hours), 2) == Decimal("8323.73")
    assert charge.quantity == Decimal(8) * hours and charge.unit == "gpu_hour" and charge.unit_price == Decimal("2.1234")
    assert (charge.category, charge.kind, charge.usage_date, charge.contract_id) == (
        "purchase", "reservation_fee", date(2026, 11, 1), "r-1")
    # the next (31-day) month is whole; October is before the term
    assert reservation_fee(r, DEC).amount == expect(exact(lambda: Decimal(8) * Decimal("2.1234") * 31 * 24), 2)
    assert reservation_fee(r, OCT) is None


def test_reservation_fee_is_rounded_once_half_up() -> None:
    r = reservation("1", "0.0325", utc(2026, 11, 10, 14), utc(2026, 11, 11))  # 10 h: 0.325 exactly
    assert reservation_fee(r, NOV).amount == Decimal("0.33")  # half-even would give 0.32


def test_reservation_fee_over_a_month_boundary_and_a_fraction_of_an_hour() -> None:
    r = reservation("3", "1.10", utc(2026, 11, 30, 23, 20), utc(2026, 12, 1, 0, 40))  # 40 min in each month
    nov, dec = reservation_fee(r, NOV), reservation_fee(r, DEC)
    each = expect(exact(lambda: Decimal(3) * Decimal("1.10") * Decimal(40) / 60), 2)
    assert nov.amount == dec.amount == each == Decimal("2.20")
    assert nov.quantity == Decimal("2.000000")


def test_jpy_and_bhd_minor_units() -> None:
    jpy = reservation("2", "333.3", utc(2026, 11, 10, 14, 30), currency="JPY", unit="instance_hour")
    hours = Decimal("9.5") + 20 * 24
    assert reservation_fee(jpy, NOV).amount == expect(exact(lambda: 2 * Decimal("333.3") * hours), 0) == Decimal(326301)
    bhd = fee("100", "monthly", utc(2026, 11, 1), utc(2026, 11, 8), currency="BHD")
    assert fee_charge(bhd, NOV).amount == expect(exact(lambda: Decimal(100) * 7 / 30), 3) == Decimal("23.333")
    assert round_money(Decimal("0.0005"), "BHD") == Decimal("0.001") and round_money(Decimal("0.5"), "JPY") == 1


def test_a_term_started_before_billing_start_is_prorated_from_that_day() -> None:
    r = reservation("2", "1.5", utc(2026, 10, 15, 9))
    start = date(2026, 11, 5)
    assert reservation_fee(r, OCT, start) is None  # nothing before billing started
    assert reservation_fee(r, NOV, start).amount == expect(exact(lambda: 2 * Decimal("1.5") * 26 * 24), 2)
    late = reservation("2", "1.5", utc(2026, 11, 20, 9))  # a term that starts after it is not moved
    assert reservation_fee(late, NOV, start).amount == expect(exact(lambda: 2 * Decimal("1.5") * (15 + 10 * 24)), 2)


def test_reservation_capacity_per_day() -> None:
    r = reservation("8", "2", utc(2026, 11, 10, 14), utc(2026, 11, 12, 6))
    assert [reservation_capacity(r, date(2026, 11, d)) for d in (9, 10, 11, 12, 13)] == [0, 80, 192, 48, 0]


def test_in_term_usage_on_a_terms_first_day() -> None:
    r = reservation("8", "2", utc(2026, 11, 10, 14))
    day = date(2026, 11, 10)
    # a record 12:00-18:00 with 6 h: 4 of its 6 hours are in the term
    assert in_term_usage(r, day, Decimal(6), utc(2026, 11, 10, 12), utc(2026, 11, 10, 18)) == 4
    # reaching into the next day: only its part inside the day counts, 10:00-24:00 of which 10 h in term
    assert in_term_usage(r, day, Decimal(7), utc(2026, 11, 10, 10), utc(2026, 11, 11, 3)) == Decimal(7) * 10 / 14
    # without times: pro rata, 10 of 24 hours
    assert in_term_usage(r, day, Decimal("12"), None, None) == 5
    assert in_term_usage(r, date(2026, 11, 9), Decimal(24)) == 0
    assert in_term_usage(r, date(2026, 11, 11), Decimal(24)) == 24


# --- rule 4: commitment ---------------------------------------------------------------------------


def test_commitment_committed_and_true_up() -> None:
    c = commitment("1000", utc(2026, 11, 16))
    assert committed_amount(c, NOV) == 500  # 15 of 30 days
    item = true_up(c, NOV, Decimal("420.10"))
    assert item is not None and item.amount == Decimal("79.90") and item.category == "true_up"
    assert true_up(c, NOV, Decimal("500.00")) is None and true_up(c, NOV, Decimal("900")) is None
    assert true_up(c, OCT, Decimal(0)) is None


def test_commitment_in_a_31_day_month_rounds_once() -> None:
    c = commitment("1000", utc(2026, 12, 11), utc(2027, 1, 5))
    eligible = Decimal("100.01")
    assert true_up(c, DEC, eligible).amount == expect(exact(lambda: Decimal(1000) * 21 / 31 - eligible), 2)
    assert true_up(c, Period(date(2027, 1, 1)), Decimal(0)).amount == expect(exact(lambda: Decimal(1000) * 4 / 31), 2)
    assert true_up(c, DEC, eligible, billing_start=date(2027, 1, 1)) is None


# --- rule 5: fees ----------------------------------------------------------------------------------


def test_a_monthly_fee_over_a_month_boundary_is_prorated_by_day() -> None:
    f = fee("300", "monthly", utc(2026, 11, 20), utc(2026, 12, 10))
    assert fee_charge(f, NOV).amount == expect(exact(lambda: Decimal(300) * 11 / 30), 2) == Decimal("110.00")
    assert fee_charge(f, DEC).amount == expect(exact(lambda: Decimal(300) * 9 / 31), 2) == Decimal("87.10")
    assert fee_charge(f, Period(date(2027, 1, 1))) is None


def test_a_one_time_fee_is_charged_whole_in_the_month_of_its_start() -> None:
    f = fee("49.999", "one_time", utc(2026, 11, 3, 9, 30), currency="USD")
    assert fee_charge(f, NOV).amount == Decimal("50.00") and fee_charge(f, DEC) is None
    assert fee_charge(f, NOV, billing_start=date(2026, 11, 4)) is None  # before billing started


def test_month_charges_and_contract_periods() -> None:
    contracts = [reservation("1", "1", utc(2026, 11, 30)), commitment("100", utc(2026, 11, 1)),
                 fee("10", "monthly", utc(2026, 11, 1))]
    items = month_charges(contracts, NOV, {"c-1": Decimal("40")})
    assert [(i.contract_id, i.amount) for i in items] == [("c-1", Decimal("60.00")), ("f-1", Decimal("10.00")),
                                                         ("r-1", Decimal("24.00"))]
    assert contract_periods(contracts[0], through=Period(date(2027, 1, 1)), billing_start=date(2026, 12, 2)) == [
        DEC, Period(date(2027, 1, 1))]
    ended = reservation("1", "1", utc(2026, 10, 30), utc(2026, 12, 1))
    assert contract_periods(ended, through=Period(date(2027, 1, 1))) == [OCT, NOV]


# --- rule 3: MRC ------------------------------------------------------------------------------------


def _days(first: int, last: int, price: str, unit: str = "instance_month", month: int = 12, **kw) -> list[MrcDay]:
    return [MrcDay(date(2026, month, d), unit, Decimal(price), "USD", **kw) for d in range(first, last + 1)]


def test_a_full_month_at_one_price_costs_exactly_the_monthly_price() -> None:
    [charge] = mrc_charges(_days(1, 31, "3100.01"), DEC)
    assert charge.amount == Decimal("3100.01") and charge.quantity == 1 and charge.unit == "instance_month"


def test_mrc_part_month_and_price_change_divide_once_at_the_end() -> None:
    days = _days(1, 10, "3100") + _days(11, 17, "2790.50")
    [charge] = mrc_charges(days, DEC)
    assert charge.amount == expect(exact(lambda: (10 * Decimal(3100) + 7 * Decimal("2790.50")) / 31), 2)
    assert len(charge.days) == 17


def test_gpu_month_multiplies_by_the_gpu_count_and_missing_counts_are_not_billed() -> None:
    days = _days(1, 7, "1000", "gpu_month", month=11, gpu_count=8) + [
        MrcDay(date(2026, 11, 8), "gpu_month", Decimal(1000), "USD", gpu_count=None),
        MrcDay(date(2026, 11, 9), "gpu_month", Decimal(1000), "USD", gpu_count=8, usage_hours=Decimal(0)),
    ]
    [charge] = mrc_charges(days, NOV)
    assert charge.amount == expect(exact(lambda: Decimal(8000) * 7 / 30), 2) == Decimal("1866.67")
    assert charge.missing_gpu_count == (date(2026, 11, 8),) and len(charge.days) == 7


def test_mrc_days_before_billing_start_are_not_charged_and_a_day_is_billed_once() -> None:
    [charge] = mrc_charges(_days(1, 31, "3100"), DEC, billing_start=date(2026, 12, 22))
    assert charge.amount == Decimal("1000.00")
    with pytest.raises(ValueError, match="given twice"):
        mrc_charges(_days(1, 2, "1") + _days(2, 2, "1"), DEC)
    with pytest.raises(ValueError, match="not in 2026-11"):
        mrc_charges(_days(1, 2, "1"), NOV)
