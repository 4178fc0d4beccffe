"""The Billing view's Contracts section (issue 22) over a real PostgreSQL: contracts synced with the
real sync, usage rated by the real rater, the page through FastAPI's TestClient. Expected figures are
computed here from the contract terms, with exact fractions rounded once half-up."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from decimal import ROUND_HALF_UP, Decimal
from fractions import Fraction
from pathlib import Path

import psycopg
import pytest
from fastapi.testclient import TestClient

from rafay_billing.contracts.source import COLUMNS
from rafay_billing.contracts.sync import sync_contracts
from rafay_billing.ledger.coverage import register_orgs
from rafay_billing.period import Period
from rafay_provider.ui import contracts
from rafay_provider.ui.app import Sources, create_app
from rafay_provider.ui.auth import require_user
from tests.support.billed import PRICE_BOOK, Usage, bill

NOV = Period(date(2026, 11, 1))
CONTRACTS = [
    "r-1,coke,reservation,,h100-vm,gpu_hour,8,2.15,,USD,,2026-11-10T14:00:00Z,2026-11-20,,,8 H100 reserved",
    "f-1,coke,fee,,,,,,299.99,USD,monthly,2026-11-11,,,,support plan",
    "f-9,pepsi,fee,,,,,,10,EUR,one_time,2026-11-03,,,,setup",
]
USAGE = [
    Usage("coke", date(2026, 11, 12), "cpu-vm", "c1", "10"),  # 10 h x 0.12 = 1.20 USD
    Usage("pepsi", date(2026, 11, 12), "cpu-vm", "p1", "24"),
    Usage("coke", date(2026, 11, 30), "cpu-vm", "c1", "0.5"),  # 0.06 USD
    Usage("pepsi", date(2026, 11, 30), "cpu-vm", "p1", "1"),
    # an instance priced monthly (MRC, rule 3), used on 3 days of November's 30
    *[Usage("coke", date(2026, 11, d), "mrc-vm", "m1", "5") for d in (12, 13, 30)],
]
PRICES = PRICE_BOOK + "vm-month,,compute,mrc-vm,instance_month,310.00,USD,2026-01-01,\n"

USAGE_COKE = Decimal("1.20") + Decimal("0.06")


def _money(value: Fraction) -> Decimal:
    return (Decimal(value.numerator) / Decimal(value.denominator)).quantize(Decimal("0.01"), ROUND_HALF_UP)


MRC = _money(Fraction("310.00") * 3 / 30)  # 31.00: 3 used month-priced days of 30
# r-1: [11-10 14:00, 11-20 00:00) = 10 h + 9 days = 226 h, 8 GPUs, 2.15 per GPU-hour
RESERVATION_FEE = _money(Fraction(8 * 226) * Fraction("2.15"))
MONTHLY_FEE = _money(Fraction("299.99") * 20 / 30)  # 2026-11-11..30: 20 of 30 days


@pytest.fixture
def conn(pg_conn: psycopg.Connection) -> psycopg.Connection:
    bill(pg_conn, USAGE, "r", price_book=PRICES)
    # listed first on the 30th: only that day is expected of the month (the others billed are extra)
    register_orgs(pg_conn, [("coke", "Coke Labs"), ("pepsi", "PEPSI")], date(2026, 11, 30), "r",
                  last_day=date(2026, 11, 30))
    sync_contracts(pg_conn, "\n".join([",".join(COLUMNS), *CONTRACTS]) + "\n")
    return pg_conn


@pytest.fixture
def client(conn: psycopg.Connection, billing_dsn: str, tmp_path: Path) -> TestClient:
    from airflow.sdk import ObjectStoragePath

    app = create_app(Sources(lambda: {"conninfo": billing_dsn}, lambda: ObjectStoragePath(tmp_path.as_uri()),
                             lambda: "/", billing_start=lambda: date(2026, 11, 1)))
    app.dependency_overrides[require_user] = lambda: object()
    return TestClient(app)


def test_expectations_are_what_the_terms_say() -> None:
    assert RESERVATION_FEE == Decimal("3887.20") and MONTHLY_FEE == Decimal("199.99") and MRC == Decimal("31.00")


def test_orgs_with_contracts_are_listed_and_searchable(conn: psycopg.Connection) -> None:
    page = contracts.contract_orgs(conn)
    assert [(r["org_id"], r["organization"], r["contracts"], r["reservations"]) for r in page.rows] == [
        ("coke", "Coke Labs", 2, 1), ("pepsi", "PEPSI", 1, 0)]
    assert [r["org_id"] for r in contracts.contract_orgs(conn, search="labs").rows] == ["coke"]


def test_an_open_months_charges_are_the_closes_preview_and_capacity_follows_the_term(conn) -> None:
    month = contracts.org_contracts(conn, "coke", NOV, date(2026, 11, 1))
    assert not month.closed and [c.contract_id for c in month.contracts] == ["f-1", "r-1"]
    assert {(c.contract_id, c.instance, c.category, c.amount) for c in month.charges} == {
        ("r-1", "", "purchase", RESERVATION_FEE), ("f-1", "", "purchase", MONTHLY_FEE), ("", "m1", "usage", MRC)}
    assert month.usage == {"USD": USAGE_COKE}  # the month-priced days' items are 0
    assert month.estimate == {"USD": USAGE_COKE + RESERVATION_FEE + MONTHLY_FEE + MRC}
    (use,) = month.use
    # 10 h on the day it was accepted at 14:00, then 24 h a day to 11-19; nothing after its end
    assert use.days[0] == date(2026, 11, 10) and use.days[-1] == date(2026, 11, 19) and len(use.days) == 10
    assert use.capacity[0] == Decimal(80) and set(use.capacity[1:]) == {Decimal(192)}
    assert use.capacity_total == Decimal(8 * 226)


def test_the_page_shows_the_chosen_orgs_contracts_chart_and_preview(client: TestClient) -> None:
    html = client.get("/", params={"day": "2026-11-12", "corg": "coke", "cmonth": "2026-11"}).text
    assert 'id="contracts"' in html and "Contracts: coke, 2026-11" in html
    assert re.findall(r'class="contract-row" data-contract="([^"]+)"', html) == ["f-1", "r-1"]
    charges = re.findall(r'class="contract-charge" data-contract="([^"]*)" data-instance="([^"]*)" '
                         r'data-amount="([^"]+)"', html)
    assert {(c, i, Decimal(a)) for c, i, a in charges} == {
        ("r-1", "", RESERVATION_FEE), ("f-1", "", MONTHLY_FEE), ("", "m1", MRC)}
    assert "MRC m1" in html
    assert "if the month closed now (preview)" in html
    bars = re.findall(r'data-day="([^"]+)" data-capacity="([^"]+)" data-covered="([^"]+)"', html)
    assert len(bars) == 10 and bars[0] == ("2026-11-10", "80.000000", "0")
    estimate = re.search(r'class="estimate" data-currency="USD" data-amount="([^"]+)"', html)
    assert estimate and Decimal(estimate.group(1)) == USAGE_COKE + RESERVATION_FEE + MONTHLY_FEE + MRC


def test_another_org_and_a_bad_month(client: TestClient) -> None:
    html = client.get("/", params={"day": "2026-11-12", "corg": "pepsi", "cmonth": "2026-11"}).text
    assert re.findall(r'class="contract-charge" data-contract="([^"]+)" data-instance="" data-amount="([^"]+)"',
                      html) == [("f-9", "10.00")]
    assert 'class="reservation-use"' not in html
    bad = client.get("/", params={"cmonth": "2026-13"})
    assert bad.status_code == 400 and "cmonth" in bad.text


def test_the_first_org_with_contracts_is_shown_by_default(client: TestClient) -> None:
    html = client.get("/", params={"day": "2026-11-12"}).text
    assert "Contracts: coke, 2026-11" in html


def test_a_closed_month_shows_what_was_issued(conn: psycopg.Connection) -> None:
    from rafay_billing.periods.close import close_period

    close_period(conn, NOV, actor="test", issuer="ACME", now=datetime(2027, 1, 2, tzinfo=UTC), allow_exceptions=True,
                 billing_start=date(2026, 11, 1))
    month = contracts.org_contracts(conn, "coke", NOV, date(2026, 11, 1))
    assert month.closed
    assert {(c.contract_id, c.instance, c.amount) for c in month.charges} == {
        ("r-1", "", RESERVATION_FEE), ("f-1", "", MONTHLY_FEE), ("", "m1", MRC)}
