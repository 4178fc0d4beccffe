"""The monthly close end to end: the real DAGs (``airflow dags test``) against the simulator over HTTP and
a real PostgreSQL. October is billed as one window by the daily DAG, then closed by
``rafay_billing_close``; the invoices are checked against totals computed here from the simulator's
dataset and the price book, day by day, independently of the pipeline."""

from __future__ import annotations

import json
import sqlite3
from collections import defaultdict
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from rafay_billing import cli
from rafay_devkit.airflow_env import dags_test
from rafay_simulator import Dataset, Instance, Org, Profile
from tests.support.e2e import BillingRunner, DagRunResult, expected_charges, metadata_home, read_price_book

pytestmark = pytest.mark.e2e

OCTOBER = {"window_start": "2026-10-01T00:00:00Z", "window_end": "2026-11-01T00:00:00Z"}
PRICES = """price_id,org_id,profile_type,profile,unit,unit_price,currency,effective_from,effective_to
vm,,,vm,instance_hour,0.35,USD,2026-01-01,
gpu,,,gpu-vm,gpu_hour,1.75,EUR,2026-01-01,
pepsi,pepsi,,,instance_hour,0.2975,EUR,2026-01-01,
"""


def t(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def october_dataset() -> Dataset:
    """Two orgs; coke bills USD (vm) and EUR (gpu-vm), pepsi EUR at its own price. Times sit on the
    simulator's 9-second grid, so hours are exact."""
    coke = Org("coke", "Coke", [
        Profile("vm", "compute", None, [], [
            Instance("c-vm1", "coke-vm1", t("2026-09-15T00:00:00")),
            Instance("c-vm2", "coke-vm2", t("2026-10-10T05:30:00"), stopped_at=t("2026-10-20T13:15:09")),
        ]),
        Profile("gpu-vm", "compute", 2, [], [Instance("c-g1", "coke-g1", t("2026-10-05T00:00:00"))]),
    ])
    pepsi = Org("pepsi", "Pepsi", [
        Profile("vm", "compute", None, [], [Instance("p-vm1", "pepsi-vm1", t("2026-10-03T12:00:00"))]),
    ])
    return Dataset([coke, pepsi])


def with_late_instance(dataset: Dataset) -> Dataset:
    """What Rafay reports once its aggregation caught up: a pepsi instance that ran the last 6 h of October."""
    coke, pepsi = dataset.orgs
    [vm] = pepsi.profiles
    late = Instance("p-vm2", "pepsi-vm2", t("2026-10-31T18:00:00"))
    return Dataset([coke, replace(pepsi, profiles=[replace(vm, instances=[*vm.instances, late])])])


def expected_totals(dataset: Dataset, prices: list[dict]) -> dict[tuple[str, str], Decimal]:
    """(org, currency) -> the month's amount: each day's items rounded on their own, then summed."""
    totals: dict[tuple[str, str], Decimal] = defaultdict(Decimal)
    day = t("2026-10-01T00:00:00")
    while day < t("2026-11-01T00:00:00"):
        items, exceptions = expected_charges(dataset, prices, day, day + timedelta(days=1))
        assert not exceptions
        for (org_id, _, _), item in items.items():
            totals[(org_id, item["currency"])] += item["amount"]
        day += timedelta(days=1)
    return dict(totals)


class CloseRunner(BillingRunner):
    """The daily DAG's runner, billing from ``start`` (2026-10-01), that also runs ``rafay_billing_close``."""

    start = "2026-10-01"

    def env(self) -> dict[str, str]:
        env = super().env()
        env["AIRFLOW__RAFAY_BILLING__BILLING_START_DATE"] = self.start
        env["AIRFLOW__RAFAY_BILLING__INVOICE_ISSUER"] = "TEST"
        return env

    def close(self, logical_date: str, conf: dict | None = None) -> DagRunResult:
        return DagRunResult(dags_test(self.env(), logical_date, conf, dag_id="rafay_billing_close"))

    def invoices(self) -> list[tuple]:
        return self.query("SELECT * FROM billing.invoices ORDER BY invoice_seq")

    def asset_events(self) -> list[dict]:
        with sqlite3.connect(self.airflow_home / "airflow.db") as db:
            rows = db.execute(
                "SELECT e.extra FROM asset_event AS e JOIN asset AS a ON a.id = e.asset_id "
                "WHERE a.uri = 'x-rafay-billing://closed-periods' ORDER BY e.id"
            ).fetchall()
        return [json.loads(extra) for (extra,) in rows]


@pytest.fixture(scope="module")
def airflow_home(tmp_path_factory) -> Path:
    return metadata_home(tmp_path_factory, "airflow-close")


def test_a_billed_month_closes_with_late_usage_rebilled_once_and_for_all(
    airflow_home, rafay_sim_factory, billing_dsn, tmp_path
):
    sim = rafay_sim_factory(dataset=october_dataset())
    book = tmp_path / "price_book.csv"
    book.write_text(PRICES)
    runner = CloseRunner(airflow_home, sim, billing_dsn, tmp_path / "landing", book)
    billed = runner.run("2026-11-01", conf=OCTOBER)
    assert billed.ok, billed.output[-3000:]
    [(daily_run,)] = runner.query("SELECT DISTINCT billed_run_id FROM billing.coverage")

    # Rafay's aggregation catches up after the month was billed: 10-31 gains 6 h for pepsi
    sim.dataset = with_late_instance(sim.dataset)
    closed = runner.close("2026-11-01")
    assert closed.ok, closed.output[-5000:]
    assert "Late usage check: pepsi 2026-10-31: usage changed: 1 -> 2 records, 24 -> 30 h" in closed.output
    assert "Late usage check: coke 2026-10-31: usage unchanged" in closed.output
    rebilled = dict(runner.query(
        "SELECT org_id || ' ' || usage_date, billed_run_id FROM billing.coverage "
        "WHERE billed_run_id <> %(daily)s", {"daily": daily_run}
    ))
    assert list(rebilled) == ["pepsi 2026-10-31"] and rebilled["pepsi 2026-10-31"].startswith("rafay_billing_close__")

    # one invoice per (org, currency), numbered per issuer, totals as computed here from the dataset
    want = expected_totals(sim.dataset, read_price_book(book))
    invoices = runner.query(
        "SELECT invoice_number, org_id, organization, currency, subtotal, line_count, period_start, status "
        "FROM billing.invoices ORDER BY invoice_seq"
    )
    assert [(n, o, c) for n, o, _, c, *_ in invoices] == [
        ("TEST-000001", "coke", "EUR"), ("TEST-000002", "coke", "USD"), ("TEST-000003", "pepsi", "EUR"),
    ]
    assert {(o, c): s for _, o, _, c, s, *_ in invoices} == want
    # 10-03 12 h (3.57) + 28 days x 24 h (7.14 a day) = 203.49, + the late 6 h on 10-31 (1.785 -> 1.79)
    assert want[("pepsi", "EUR")] == Decimal("205.28")
    assert {(period.isoformat(), status) for *_, period, status in invoices} == {("2026-10-01", "issued")}
    lines = runner.query("SELECT i.invoice_number, sum(l.amount), count(*) FROM billing.invoice_lines AS l "
                         "JOIN billing.invoices AS i USING (invoice_id) GROUP BY 1 ORDER BY 1")
    assert [(n, a, c) for n, a, c in lines] == [(n, s, lc) for n, _, _, _, s, lc, *_ in invoices]
    events = runner.asset_events()
    assert [e["period"] for e in events[-1:]] == ["2026-10"]

    # closing again - here by conf from another month's run - issues nothing and changes nothing
    before = (runner.invoices(), runner.query("SELECT * FROM billing.invoice_counters"),
              runner.query("SELECT count(*) FROM billing.audit_log"))
    again = runner.close("2026-12-01", conf={"period": "2026-10"})
    assert again.ok, again.output[-3000:]
    assert "Period 2026-10 is already closed" in again.output
    assert (runner.invoices(), runner.query("SELECT * FROM billing.invoice_counters"),
            runner.query("SELECT count(*) FROM billing.audit_log")) == before

    # November was never billed: its close fails, naming the days, and issues nothing
    blocked = runner.close("2026-12-01", conf={"wait_minutes": 0})
    assert not blocked.ok
    assert "Gave up waiting for period 2026-11" in blocked.output
    assert "coke (Coke): 2026-11-01..2026-11-30 (missing); pepsi (Pepsi): 2026-11-01..2026-11-30 (missing)" in (
        blocked.output
    )
    assert runner.invoices() == before[0] and len(runner.asset_events()) == len(events) + 1  # the re-close's


def test_an_open_exception_blocks_the_close_until_waived_or_allowed(
    airflow_home, rafay_sim_factory, billing_dsn, tmp_path, capsys
):
    """Billing starts on 10-30, so October needs two days; coke's misc-vm has no price on either."""
    coke, pepsi = october_dataset().orgs
    misc = Profile("misc-vm", "compute", None, [], [Instance("c-m1", "coke-misc", t("2026-10-29T00:00:00"))])
    sim = rafay_sim_factory(dataset=Dataset([replace(coke, profiles=[*coke.profiles, misc]), pepsi]))
    book = tmp_path / "price_book.csv"
    book.write_text(PRICES)
    runner = CloseRunner(airflow_home, sim, billing_dsn, tmp_path / "landing", book)
    runner.start = "2026-10-30"
    events = len(runner.asset_events())  # the Airflow home is shared by this module's tests
    billed = runner.run("2026-11-01", conf={**OCTOBER, "window_start": "2026-10-30T00:00:00Z"})
    assert not billed.ok and "unpriced: 2" in billed.output  # the daily run says so too

    blocked = runner.close("2026-11-01")
    assert not blocked.ok
    assert "2 open rating exception(s): coke 2026-10-30 profile misc-vm instance coke-misc (key c-m1): unpriced" in (
        blocked.output
    )
    assert '{"period": "2026-10", "allow_exceptions": true}' in blocked.output
    assert runner.invoices() == [] and len(runner.asset_events()) == events

    assert cli.main(["waive", "--dsn", billing_dsn, "--org", "coke", "--day", "2026-10-30", "--profile", "misc-vm",
                     "--instance", "c-m1", "--reason", "unpriced", "--why", "internal test box", "--by", "ops"]) == 0
    still = runner.close("2026-11-01")
    assert not still.ok and "1 open rating exception(s): coke 2026-10-31 profile misc-vm" in still.output

    allowed = runner.close("2026-11-01", conf={"allow_exceptions": True})
    assert allowed.ok, allowed.output[-3000:]
    assert "Closing with open exceptions (allow_exceptions)" in allowed.output
    assert [(o, c) for _, o, c in runner.query(
        "SELECT invoice_number, org_id, currency FROM billing.invoices ORDER BY invoice_seq")] == [
        ("coke", "EUR"), ("coke", "USD"), ("pepsi", "EUR"),
    ]
    [(allow, detail)] = runner.query(
        "SELECT p.allow_exceptions, a.detail FROM billing.billing_periods AS p "
        "JOIN billing.audit_log AS a ON a.action = 'close' AND a.period_start = p.period_start"
    )
    assert allow is True and [(e["usage_date"], e["instance_key"]) for e in detail["open_exceptions"]] == [
        ("2026-10-31", "c-m1")
    ]
    assert len(runner.asset_events()) == events + 1


def test_rule4_a_price_change_before_the_close_is_invoiced_and_audited(
    airflow_home, rafay_sim_factory, billing_dsn, tmp_path
):
    """Issue 21, rule 4: October (10-30 and 10-31) is billed at vm 0.35 USD; the price book then says
    0.40 before the close. The close syncs the book and re-rates the month before it issues: coke's USD
    invoice charges 48 h x 0.40, and the audit log counts the 2 items that changed. Closing it again
    re-reads, re-rates and checks nothing."""
    sim = rafay_sim_factory(dataset=october_dataset())
    book = tmp_path / "price_book.csv"
    book.write_text(PRICES)
    runner = CloseRunner(airflow_home, sim, billing_dsn, tmp_path / "landing", book)
    runner.start = "2026-10-30"
    billed = runner.run("2026-11-01", conf={**OCTOBER, "window_start": "2026-10-30T00:00:00Z"})
    assert billed.ok, billed.output[-3000:]
    book.write_text(PRICES.replace("vm,,,vm,instance_hour,0.35,", "vm,,,vm,instance_hour,0.40,"))

    closed = runner.close("2026-11-01")
    assert closed.ok, closed.output[-5000:]
    assert "Re-rated 2026-10 against the price book as it stands: 2 line item(s) changed." in closed.output
    assert runner.query("SELECT subtotal FROM billing.invoices WHERE org_id = 'coke' AND currency = 'USD'") == [
        (Decimal("19.20"),)  # coke-vm1, 2 days x 24 h x 0.40 (16.80 at the old price)
    ]
    [(detail,)] = runner.query("SELECT detail FROM billing.audit_log WHERE action = 'close'")
    assert detail["rerated_items"] == 2

    items = runner.query("SELECT * FROM billing.charge_line_items ORDER BY 1, 2, 3, 4")
    book.write_text(PRICES.replace("vm,,,vm,instance_hour,0.35,", "vm,,,vm,instance_hour,0.50,"))
    again = runner.close("2026-11-01", conf={"period": "2026-10"})
    assert again.ok, again.output[-3000:]
    assert "Period 2026-10 is already closed" in again.output
    assert "Re-rated" not in again.output and "Late usage check" not in again.output
    assert runner.query("SELECT * FROM billing.charge_line_items ORDER BY 1, 2, 3, 4") == items


def test_rule16_one_orgs_failed_late_usage_reread_is_isolated_and_named(
    airflow_home, rafay_sim_factory, billing_dsn, tmp_path
):
    """Issue 21, rule 16: the re-read is one mapped task per org; pepsi's usage endpoint refuses, so
    pepsi's task fails (after its retry) while coke's is re-read, and the close refuses naming pepsi.
    Once the source answers again, the close goes through."""
    from rafay_simulator.faults import Fault

    sim = rafay_sim_factory(dataset=october_dataset())
    book = tmp_path / "price_book.csv"
    book.write_text(PRICES)
    runner = CloseRunner(airflow_home, sim, billing_dsn, tmp_path / "landing", book)
    runner.start = "2026-10-30"
    billed = runner.run("2026-11-01", conf={**OCTOBER, "window_start": "2026-10-30T00:00:00Z"})
    assert billed.ok, billed.output[-3000:]

    sim.add_fault(Fault("status", path_regex="/usage", status=403, org="pepsi"))
    blocked = runner.close("2026-11-01")
    assert not blocked.ok
    assert "the late-usage re-read failed for 1 org(s): pepsi (2026-10-30: " in blocked.output
    assert "Late usage check: coke 2026-10-31: usage unchanged" in blocked.output  # coke's re-read went on
    assert runner.invoices() == []

    sim.clear_faults()
    closed = runner.close("2026-11-01")
    assert closed.ok, closed.output[-3000:]
    assert [(o, c) for _, o, c in runner.query(
        "SELECT invoice_number, org_id, currency FROM billing.invoices ORDER BY invoice_seq")] == [
        ("coke", "EUR"), ("coke", "USD"), ("pepsi", "EUR"),
    ]
