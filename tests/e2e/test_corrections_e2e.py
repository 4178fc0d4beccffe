"""Re-billing a day of a closed period through the real DAGs (``airflow dags test``, simulator over
HTTP, PostgreSQL): the issued invoice stays byte for byte, the correction lands on the next period's
invoice with the exact difference, and a repeat changes nothing."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from rafay_devkit.airflow_env import dags_test
from rafay_simulator import Dataset, Instance, Org, Profile
from tests.support.e2e import BillingRunner, metadata_home

pytestmark = pytest.mark.e2e

BOOK = """price_id,org_id,profile_type,profile,unit,unit_price,currency,effective_from,effective_to
flat,,,,instance_hour,{price},USD,2026-01-01,
"""
LAST_DAY = {"window_start": "2026-10-31T00:00:00Z", "window_end": "2026-11-01T00:00:00Z"}


@pytest.fixture(scope="module")
def airflow_home(tmp_path_factory) -> Path:
    return metadata_home(tmp_path_factory, "airflow-corrections")


def close(runner: BillingRunner, logical_date: str) -> None:
    result = dags_test(runner.env(), logical_date, dag_id="rafay_billing_close")
    assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]


def test_rebilling_a_closed_day_corrects_on_the_next_invoice(airflow_home, rafay_sim_factory, billing_dsn, tmp_path):
    inst = Instance("0190-c", "c-vm", datetime(2026, 10, 1, tzinfo=UTC))
    sim = rafay_sim_factory(dataset=Dataset([Org("coke", "Coke", [Profile("vm", "compute", None, [], [inst])])]),
                            now=datetime(2026, 12, 2, tzinfo=UTC))
    book = tmp_path / "price_book.csv"
    book.write_text(BOOK.format(price="2.00"))
    runner = BillingRunner(airflow_home, sim, billing_dsn, tmp_path / "landing", book, billing_start_date="2026-10-30")
    assert runner.run("2026-11-01", conf={"window_start": "2026-10-30T00:00:00Z",
                                          "window_end": "2026-11-01T00:00:00Z"}).ok
    close(runner, "2026-11-01")
    october_docs = tmp_path / "landing" / "reports" / "period=2026-10"
    issued = {p.name: p.read_bytes() for p in october_docs.iterdir()}
    [(number, subtotal)] = runner.query("SELECT invoice_number, subtotal FROM billing.invoices")
    assert subtotal == Decimal("96.00") and f"{number}.html" in issued
    items_sql = "SELECT * FROM billing.charge_line_items WHERE billing_period_start = '2026-10-01' ORDER BY usage_date"
    issued_items = runner.query(items_sql)

    book.write_text(BOOK.format(price="2.25"))
    fixed = runner.run("2026-11-01", conf=LAST_DAY)
    assert fixed.ok, fixed.output[-3000:]
    assert "correction 1 written into period 2026-11-01 (difference 6.00 USD)" in fixed.output
    assert runner.query(items_sql) == issued_items  # every column of every issued item, unchanged
    assert runner.query("SELECT invoice_number, subtotal FROM billing.invoices") == [(number, subtotal)]
    assert runner.query(
        "SELECT usage_date::text, entry, pricing_quantity, unit_price, amount FROM billing.charge_line_items"
        " WHERE billing_period_start = '2026-11-01' AND charge_class = 'correction' ORDER BY entry DESC"
    ) == [
        ("2026-10-31", "reversal", Decimal("-24"), Decimal("2.00"), Decimal("-48.00")),
        ("2026-10-31", "charge", Decimal("24"), Decimal("2.25"), Decimal("54.00")),
    ]
    again = runner.run("2026-11-01", conf=LAST_DAY)
    assert again.ok and "correction 1 written" not in again.output
    assert runner.query("SELECT count(*) FROM billing.charge_line_items WHERE charge_class = 'correction'") == [(2,)]

    # November: billed and closed, its invoice carries November's own usage and October's correction
    assert runner.run("2026-12-01", conf={"window_start": "2026-11-01T00:00:00Z",
                                          "window_end": "2026-12-01T00:00:00Z"}).ok
    close(runner, "2026-12-01")
    assert {p.name: p.read_bytes() for p in october_docs.iterdir()} == issued  # October's documents, byte for byte
    invoices = runner.query("SELECT invoice_number, period_start::text, subtotal FROM billing.invoices ORDER BY 1")
    assert invoices[1][1:] == ("2026-11-01", Decimal("1626.00"))  # 30 days x 24 h x 2.25 + 6.00
    assert int(invoices[1][0][-6:]) == int(number[-6:]) + 1  # the next number, no gap
    lines = runner.query(
        "SELECT l.charge_class, l.unit_price, l.amount FROM billing.invoice_lines l JOIN billing.invoices i"
        " USING (invoice_id) WHERE i.period_start = '2026-11-01' ORDER BY 1, 2"
    )
    assert lines == [("correction", Decimal("2.00"), Decimal("-48.00")), ("correction", Decimal("2.25"), Decimal("54.00")),
                     ("regular", Decimal("2.25"), Decimal("1620.00"))]


def test_rule1_a_refund_from_a_corrected_closed_day_blocks_the_next_close_until_allowed(
    airflow_home, rafay_sim_factory, billing_dsn, tmp_path
):
    """Issue 21, rule 1: October's price row is deleted after October closed and 10-31 is re-billed: its
    record no longer rates, so the issued 48.00 is reversed into November with nothing charged, and the
    record is an exception dated in closed October. November's close refuses, naming it; with
    allow_exceptions it closes, and the audit log says so."""
    inst = Instance("0190-c", "c-vm", datetime(2026, 10, 1, tzinfo=UTC))
    sim = rafay_sim_factory(dataset=Dataset([Org("coke", "Coke", [Profile("vm", "compute", None, [], [inst])])]),
                            now=datetime(2026, 12, 2, tzinfo=UTC))
    book = tmp_path / "price_book.csv"
    nov_row = "flat-nov,,,,instance_hour,2.00,USD,2026-11-01,\n"
    header = BOOK.splitlines()[0] + "\n"
    book.write_text(header + "flat-oct,,,,instance_hour,2.00,USD,2026-01-01,2026-11-01\n" + nov_row)
    runner = BillingRunner(airflow_home, sim, billing_dsn, tmp_path / "landing", book, billing_start_date="2026-10-30")
    assert runner.run("2026-11-01", conf={"window_start": "2026-10-30T00:00:00Z",
                                          "window_end": "2026-11-01T00:00:00Z"}).ok
    close(runner, "2026-11-01")

    book.write_text(header + nov_row)  # October's price row deleted after its close
    refunded = runner.run("2026-11-01", conf=LAST_DAY)
    assert not refunded.ok and "unpriced: 1" in refunded.output
    assert runner.query("SELECT sum(amount) FROM billing.charge_line_items WHERE billing_period_start = '2026-11-01'"
                        ) == [(Decimal("-48.00"),)]
    assert runner.query("SELECT usage_date::text, reason, billing_period_start::text FROM billing.open_exceptions"
                        ) == [("2026-10-31", "unpriced", "2026-11-01")]
    # November billed (the run itself still fails: 10-31's exception is open and within its 35 days)
    november = runner.run("2026-12-01", conf={"window_start": "2026-11-01T00:00:00Z",
                                              "window_end": "2026-12-01T00:00:00Z"})
    assert runner.query("SELECT count(*) FROM billing.coverage WHERE usage_date >= '2026-11-01' AND status = 'billed'"
                        ) == [(30,)], november.output[-3000:]

    blocked = dags_test(runner.env(), "2026-12-01", dag_id="rafay_billing_close")
    output = blocked.stdout + blocked.stderr
    assert blocked.returncode != 0
    assert ("1 open rating exception(s): coke 2026-10-31 profile vm instance c-vm (key 0190-c): unpriced "
            "(a correction of its closed day, landing in 2026-11)") in output
    assert runner.query("SELECT count(*) FROM billing.invoices WHERE period_start = '2026-11-01'") == [(0,)]

    allowed = dags_test(runner.env(), "2026-12-01", {"allow_exceptions": True}, dag_id="rafay_billing_close")
    assert allowed.returncode == 0, (allowed.stdout + allowed.stderr)[-3000:]
    assert runner.query("SELECT document_type, subtotal FROM billing.invoices WHERE period_start = '2026-11-01'"
                        ) == [("invoice", Decimal("1392.00"))]  # 30 days x 24 h x 2.00 - the 48.00 refund
    [(detail,)] = runner.query("SELECT detail FROM billing.audit_log WHERE action = 'close' "
                               "AND period_start = '2026-11-01'")
    assert detail["allow_exceptions"] is True and detail["allowed_corrections_of_closed_days"] == 1
    assert [(e["usage_date"], e["instance_key"]) for e in detail["open_exceptions"]] == [("2026-10-31", "0190-c")]
