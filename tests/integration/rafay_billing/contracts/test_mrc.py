"""MRC, monthly recurring prices (issue 22, rules 3, 4, 6, 7) over a real PostgreSQL.

Usage is landed and rated with the pipeline's own steps; every expected amount is computed here
independently from the price book (exact fractions, rounded once half-up).
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import ROUND_HALF_UP, Decimal
from fractions import Fraction

import psycopg
import pytest

from rafay_billing.contracts.source import COLUMNS as CONTRACT_COLUMNS
from rafay_billing.contracts.sync import sync_contracts
from rafay_billing.ledger.coverage import register_orgs
from rafay_billing.ledger.price_book import PriceBookError, fetch_price_book, parse_price_book, sync_price_book
from rafay_billing.period import Period
from rafay_billing.periods.close import CloseResult, close_period
from rafay_billing.periods.invoices import fetch_invoice_lines, fetch_invoices
from tests.support.billed import Usage, bill

NOV, DEC = Period(date(2026, 11, 1)), Period(date(2026, 12, 1))
PRICE_BOOK = """\
price_id,org_id,profile_type,profile,unit,unit_price,currency,effective_from,effective_to
cpu,,compute,cpu-vm,instance_hour,0.12,USD,2026-01-01,
h100,,compute,h100-vm,gpu_hour,2.75,USD,2026-01-01,
vm-month,,compute,mrc-vm,instance_month,310.00,USD,2026-01-01,
gpu-month,,compute,gpu-vm,gpu_month,1000,USD,2026-01-01,
switch-hourly,,compute,switch-vm,instance_hour,0.50,USD,2026-01-01,2026-11-16
switch-monthly,,compute,switch-vm,instance_month,300,USD,2026-11-16,
"""


def _money(value: Fraction) -> Decimal:
    return (Decimal(value.numerator) / Decimal(value.denominator)).quantize(Decimal("0.01"), ROUND_HALF_UP)


def _bill(conn: psycopg.Connection, usage: list[Usage], run_id: str = "r") -> None:
    bill(conn, usage, run_id, price_book=PRICE_BOOK)


def _register(conn: psycopg.Connection, *orgs: str) -> None:
    register_orgs(conn, [(o, o.upper()) for o in orgs], date(2026, 11, 30), "r", last_day=date(2026, 11, 30))


def _close(conn: psycopg.Connection, period: Period, **kwargs: object) -> CloseResult:
    return close_period(conn, period, actor="test", issuer="ACME", now=datetime(2027, 1, 2, tzinfo=UTC),
                        **kwargs)  # type: ignore[arg-type]


def _days(profile: str, instance: str, first: int, last: int, hours: str = "10", gpus: int | None = None,
          month: int = 11, org: str = "coke") -> list[Usage]:
    return [Usage(org, date(2026, month, d), profile, instance, hours, gpus) for d in range(first, last + 1)]


def _day_items(conn: psycopg.Connection, instance: str) -> list[tuple]:
    return conn.execute(
        "SELECT usage_date, pricing_unit, unit_price, pricing_quantity, amount FROM billing.charge_line_items"
        " WHERE instance = %s AND charge_level = 'day' AND charge_class = 'regular' ORDER BY usage_date",
        (instance,)).fetchall()


def _mrc_items(conn: psycopg.Connection, **where: str) -> list[tuple]:
    return conn.execute(
        "SELECT org_id, usage_date, profile_type, profile, instance_key, dimension, pricing_unit, unit_price,"
        " pricing_quantity, amount, charge_category, contract_id, charge_class, entry, billing_period_start"
        " FROM billing.charge_line_items WHERE charge_level = 'month' AND charge_category = 'usage'"
        " ORDER BY billing_period_start, instance_key, correction_seq, entry DESC").fetchall()


# --- the price book ------------------------------------------------------------------------------------


def test_the_price_book_sync_accepts_the_month_units(pg_conn: psycopg.Connection) -> None:
    """Rule 3: instance_month and gpu_month are instance prices, stored as they are; a dimension on them, or a
    gpu_month and a GPU dimension row pricing the same GPUs, is refused naming the line."""
    _bill(pg_conn, _days("cpu-vm", "c1", 1, 1))
    units = {r["price_id"]: (r["unit"], r["unit_price"]) for r in fetch_price_book(pg_conn)}
    assert units["vm-month"] == ("instance_month", Decimal("310.00"))
    assert units["gpu-month"] == ("gpu_month", Decimal("1000"))
    header = "price_id,org_id,profile_type,profile,unit,unit_price,currency,effective_from,effective_to,dimension\n"
    with pytest.raises(PriceBookError, match=r"line 2.*dimension 'CPU' needs unit dimension_hour \(instance_month"):
        parse_price_book(header + "p,,,vm,instance_month,10,USD,2026-01-01,,CPU\n")
    with pytest.raises(PriceBookError, match=r"line 3.*gpu_month and dimension_hour of 'GPU'.*billed twice"):
        sync_price_book(pg_conn, header + "p,,,vm,gpu_month,10,USD,2026-01-01,,\ng,,,vm,dimension_hour,1,USD,"
                                          "2026-01-01,,GPU\n")


# --- rating: a month-priced day bills 0 and counts its units ----------------------------------------------


def test_month_priced_days_are_items_of_amount_0_with_their_units(pg_conn: psycopg.Connection) -> None:
    """Rule 3: pricing_unit = the month unit, unit_price = the month price, quantity = 1 (instance_month) or the
    GPU count (gpu_month) on a used day, 0 on an idle one; amount 0. Several records of one instance count once."""
    _bill(pg_conn, [Usage("coke", date(2026, 11, 3), "mrc-vm", "m1", "5"),
                    Usage("coke", date(2026, 11, 3), "mrc-vm", "m1", "7"),   # stop and start: still 1 instance
                    Usage("coke", date(2026, 11, 4), "mrc-vm", "m1", "0"),   # idle: 0
                    Usage("coke", date(2026, 11, 3), "gpu-vm", "g1", "10", 8),
                    Usage("coke", date(2026, 11, 3), "cpu-vm", "c1", "10")])
    assert _day_items(pg_conn, "m1") == [
        (date(2026, 11, 3), "instance_month", Decimal("310.00"), Decimal(1), Decimal("0.00")),
        (date(2026, 11, 4), "instance_month", Decimal("310.00"), Decimal(0), Decimal("0.00"))]
    assert _day_items(pg_conn, "g1") == [(date(2026, 11, 3), "gpu_month", Decimal("1000"), Decimal(8), Decimal(0))]
    assert _day_items(pg_conn, "c1") == [(date(2026, 11, 3), "instance_hour", Decimal("0.12"), Decimal(10),
                                          Decimal("1.20"))]
    with pytest.raises(psycopg.errors.CheckViolation):  # the schema keeps a month-priced day at 0
        pg_conn.execute("UPDATE billing.charge_line_items SET amount = 1 WHERE instance = 'm1'")


def test_gpu_month_without_a_gpu_count_is_missing_gpu_count(pg_conn: psycopg.Connection) -> None:
    """Rule 3: like gpu_hour, no GPU count (or 0 GPUs) is a missing_gpu_count exception, not an item."""
    _bill(pg_conn, [Usage("coke", date(2026, 11, 3), "gpu-vm", "g1", "10"),
                    Usage("coke", date(2026, 11, 3), "gpu-vm", "g2", "10", 0)])
    assert _day_items(pg_conn, "g1") == [] and _day_items(pg_conn, "g2") == []
    rows = pg_conn.execute("SELECT instance, reason, detail FROM billing.rating_exceptions ORDER BY 1").fetchall()
    assert rows == [("g1", "missing_gpu_count", "price gpu-month is per gpu_month but the instance has no GPU count"),
                    ("g2", "missing_gpu_count", "price gpu-month is per gpu_month but the GPU count is 0")]
