"""Contract charges end to end (issue 22): October billed by the daily DAG, then closed by
``airflow dags test rafay_billing_close`` with a contracts CSV in Variable ``billing_contracts_uri``:
a reservation accepted mid-day, a commitment with a shortfall and a prorated monthly fee. Every invoice
total is compared with Decimal expectations computed here from the dataset, the prices and the terms."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal
from fractions import Fraction
from pathlib import Path

import pytest

from rafay_billing.contracts.source import COLUMNS
from tests.e2e.test_close_e2e import OCTOBER, PRICES, CloseRunner, expected_totals, october_dataset
from tests.support.e2e import metadata_home, read_price_book

pytestmark = pytest.mark.e2e

CONTRACTS = "\n".join([
    ",".join(COLUMNS),
    "r-1,coke,reservation,,gpu-vm,gpu_hour,2,1.50,,EUR,,2026-10-10T14:00:00Z,,,,2 GPUs reserved",
    "c-1,coke,commitment,,,,,,500,USD,,2026-10-01,,,,minimum spend",
    "f-1,pepsi,fee,,,,,,99.99,USD,monthly,2026-10-11,,,,support plan",
]) + "\n"


def _money(value: Fraction) -> Decimal:
    return (Decimal(value.numerator) / Decimal(value.denominator)).quantize(Decimal("0.01"), ROUND_HALF_UP)


class ContractsRunner(CloseRunner):
    contracts: Path

    def env(self) -> dict[str, str]:
        env = super().env()
        env["AIRFLOW_VAR_BILLING_CONTRACTS_URI"] = self.contracts.as_uri()
        return env


@pytest.fixture(scope="module")
def airflow_home(tmp_path_factory) -> Path:
    return metadata_home(tmp_path_factory, "airflow-contracts-close")


def test_a_month_with_contracts_closes_with_every_invoice_total_as_computed(
    airflow_home, rafay_sim_factory, billing_dsn, tmp_path
):
    sim = rafay_sim_factory(dataset=october_dataset())
    book = tmp_path / "price_book.csv"
    book.write_text(PRICES)
    runner = ContractsRunner(airflow_home, sim, billing_dsn, tmp_path / "landing", book)
    runner.contracts = tmp_path / "contracts.csv"
    runner.contracts.write_text(CONTRACTS)
    billed = runner.run("2026-11-01", conf=OCTOBER)
    assert billed.ok, billed.output[-3000:]
    assert [r[0] for r in runner.query("SELECT contract_id FROM billing.contracts ORDER BY 1")] == [
        "c-1", "f-1", "r-1"]  # the daily DAG synced them

    closed = runner.close("2026-11-01")
    assert closed.ok, closed.output[-5000:]
    usage = expected_totals(sim.dataset, read_price_book(book))
    reservation = _money(2 * Fraction("1.50") * Fraction(int((
        datetime(2026, 11, 1, tzinfo=UTC) - datetime(2026, 10, 10, 14, tzinfo=UTC)).total_seconds()), 3600))
    assert reservation == Decimal("1542.00")  # 514 h x 2 GPUs x 1.50, used or not
    true_up = _money(Fraction(500) - Fraction(usage[("coke", "USD")]))
    assert true_up > 0  # a shortfall
    fee = _money(Fraction("99.99") * 21 / 31)  # 2026-10-11..31
    want = {
        ("coke", "EUR"): usage[("coke", "EUR")] + reservation,
        ("coke", "USD"): usage[("coke", "USD")] + true_up,
        ("pepsi", "EUR"): usage[("pepsi", "EUR")],
        ("pepsi", "USD"): fee,
    }
    invoices = runner.query("SELECT org_id, currency, subtotal FROM billing.invoices ORDER BY invoice_seq")
    assert {(o, c): s for o, c, s in invoices} == want
    lines = runner.query("SELECT l.contract_id, l.charge_category, l.amount FROM billing.invoice_lines AS l"
                         " WHERE l.contract_id IS NOT NULL ORDER BY 1")
    assert lines == [("c-1", "true_up", true_up), ("f-1", "purchase", fee), ("r-1", "purchase", reservation)]
    assert "Contract charges of 2026-10: 3 item(s)" in closed.output
    assert f"r-1 reservation_fee (purchase): 1028.000000 gpu_hour x 1.50 = {reservation} EUR" in closed.output
