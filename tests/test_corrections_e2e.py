"""Re-billing a day of a closed period through the real daily DAG (``airflow dags test``, simulator over
HTTP, PostgreSQL): the issued items stay byte for byte, the correction lands in the next period with the
exact difference, and a repeat changes nothing."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from e2e_support import BillingRunner, metadata_home

from rafay_simulator import Dataset, Instance, Org, Profile

pytestmark = pytest.mark.e2e

BOOK = """price_id,org_id,profile_type,profile,unit,unit_price,currency,effective_from,effective_to
flat,,,,instance_hour,{price},USD,2026-01-01,
"""


@pytest.fixture(scope="module")
def airflow_home(tmp_path_factory) -> Path:
    return metadata_home(tmp_path_factory, "airflow-corrections")


def test_rebilling_a_closed_day_corrects_in_the_next_period(airflow_home, rafay_sim_factory, billing_dsn, tmp_path):
    inst = Instance("0190-c", "c-vm", datetime(2026, 10, 1, tzinfo=UTC))
    sim = rafay_sim_factory(dataset=Dataset([Org("coke", "Coke", [Profile("vm", "compute", None, [], [inst])])]))
    book = tmp_path / "price_book.csv"
    book.write_text(BOOK.format(price="2.00"))
    runner = BillingRunner(airflow_home, sim, billing_dsn, tmp_path / "landing", book, billing_start_date="2026-10-30")
    october = {"window_start": "2026-10-30T00:00:00Z", "window_end": "2026-11-01T00:00:00Z"}
    assert runner.run("2026-11-01", conf=october).ok
    runner.query("INSERT INTO billing.billing_periods (period_start, period_end, closed_by)"
                 " VALUES ('2026-10-01', '2026-11-01', 'test') RETURNING 1")
    issued_sql = "SELECT * FROM billing.charge_line_items WHERE billing_period_start = '2026-10-01' ORDER BY usage_date"
    issued = runner.query(issued_sql)
    assert len(issued) == 2

    book.write_text(BOOK.format(price="2.25"))
    last_day = {"window_start": "2026-10-31T00:00:00Z", "window_end": "2026-11-01T00:00:00Z"}
    fixed = runner.run("2026-11-01", conf=last_day)
    assert fixed.ok, fixed.output[-3000:]
    assert "correction 1 written into period 2026-11-01 (difference 6.00 USD)" in fixed.output
    assert runner.query(issued_sql) == issued  # every column of every issued item, unchanged
    november = runner.query(
        "SELECT usage_date::text, entry, pricing_quantity, unit_price, amount FROM billing.charge_line_items"
        " WHERE billing_period_start = '2026-11-01' AND charge_class = 'correction' ORDER BY entry DESC"
    )
    assert november == [
        ("2026-10-31", "reversal", Decimal("-24"), Decimal("2.00"), Decimal("-48.00")),
        ("2026-10-31", "charge", Decimal("24"), Decimal("2.25"), Decimal("54.00")),
    ]
    again = runner.run("2026-11-01", conf=last_day)
    assert again.ok and "correction" not in again.output.split("Rated", 1)[-1].split("\n", 1)[0]
    assert runner.query("SELECT count(*) FROM billing.charge_line_items WHERE charge_class = 'correction'") == [(2,)]
    assert runner.query("SELECT sum(amount) FROM billing.charge_line_items") == [(Decimal("102.00"),)]  # 48 + 54
