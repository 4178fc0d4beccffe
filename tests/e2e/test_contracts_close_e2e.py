"""Contracts end to end (issue 22): October billed by the daily DAG with a contracts CSV in Variable
``billing_contracts_uri``, then closed by ``airflow dags test rafay_billing_close``:

- a reservation of 3 GPUs accepted at 14:00 on 10-10: days under its capacity (one 2-GPU instance),
  days over it (three instances: the second is split into a covered and an on-demand part, the third is
  on demand), and the acceptance day's 10 hours;
- an instance priced monthly (MRC) used on 9 of October's 31 days;
- a commitment with a shortfall that the MRC counts towards, and a prorated monthly fee;
- the close's metrics at a StatsD listener: invoices issued and their totals, as the database has them;
- after the close, a retroactive change of the fee (a run of the daily DAG with
  ``{"allow_retroactive": true}``) corrects October's fee in November, exactly.

Every expected amount is computed here from the dataset's intervals, the prices and the terms, with
exact fractions rounded once half-up, independently of the pipeline.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from fractions import Fraction
from pathlib import Path

import pytest

from rafay_billing.contracts.source import COLUMNS
from rafay_simulator import Dataset, Instance, Org, Profile
from tests.e2e.test_close_e2e import OCTOBER, CloseRunner, expected_totals, t
from tests.support.e2e import metadata_home
from tests.support.statsd import statsd_listener

pytestmark = pytest.mark.e2e

PRICES = """price_id,org_id,profile_type,profile,unit,unit_price,currency,effective_from,effective_to
vm,,,vm,instance_hour,0.35,USD,2026-01-01,
gpu,,,gpu-vm,gpu_hour,1.75,EUR,2026-01-01,
mrc,,,mrc-vm,instance_month,600.00,USD,2026-01-01,
pepsi,pepsi,,,instance_hour,0.2975,EUR,2026-01-01,
"""
HEADER = ",".join(COLUMNS)
RESERVATION = "r-1,coke,reservation,,gpu-vm,gpu_hour,3,1.50,,EUR,,2026-10-10T14:00:00Z,,,,3 GPUs reserved"
COMMITMENT = "c-1,coke,commitment,,,,,,500,USD,,2026-10-01,,,,minimum spend"
FEE = "f-1,pepsi,fee,,,,,,{amount},USD,monthly,2026-10-11,,,,support plan"
TERM_START = t("2026-10-10T14:00:00")
GPUS, RESERVED_GPUS = 2, 3

# coke's GPU instances: (instance id, running from, until) -- byte order of the ids is the coverage order
GPU_INSTANCES = [
    ("c-g1", t("2026-10-05T00:00:00"), None),
    ("c-g2", t("2026-10-20T06:00:00"), t("2026-10-25T18:00:00")),
    ("c-g3", t("2026-10-22T00:00:00"), t("2026-10-24T00:00:00")),
]
MRC_FROM, MRC_UNTIL = t("2026-10-12T00:00:00"), t("2026-10-20T12:00:00")  # used 10-12..10-20: 9 days


def dataset() -> Dataset:
    coke = Org("coke", "Coke", [
        Profile("vm", "compute", None, [], [Instance("c-vm1", "coke-vm1", t("2026-09-15T00:00:00"))]),
        Profile("gpu-vm", "compute", GPUS, [], [
            Instance(i, f"coke-{i[2:]}", start, stopped_at=end) for i, start, end in GPU_INSTANCES]),
        Profile("mrc-vm", "compute", None, [], [Instance("c-m1", "coke-m1", MRC_FROM, stopped_at=MRC_UNTIL)]),
    ])
    pepsi = Org("pepsi", "Pepsi", [
        Profile("vm", "compute", None, [], [Instance("p-vm1", "pepsi-vm1", t("2026-10-03T12:00:00"))]),
    ])
    return Dataset([coke, pepsi])


def _money(value: Fraction) -> Decimal:
    return (Decimal(value.numerator) / Decimal(value.denominator)).quantize(Decimal("0.01"), ROUND_HALF_UP)


def _hours(start: datetime, end: datetime) -> Fraction:
    return Fraction(int((end - start).total_seconds()), 3600)


def _overlap(a: datetime, b: datetime | None, lo: datetime, hi: datetime) -> Fraction:
    start, end = max(a, lo), min(b or hi, hi)
    return _hours(start, end) if end > start else Fraction(0)


def coke_gpu_charges() -> tuple[Decimal, dict[str, Fraction]]:
    """Rule 2 by hand: per day, capacity = 3 GPUs x in-term hours; in-term GPU-hours of each instance
    (its running interval inside the day and the term), covered in instance-id order up to the capacity;
    every instance's on-demand GPU-hours priced at 1.75 and rounded per (instance, day).
    Returns (the month's on-demand EUR, GPU-hours covered per day)."""
    total, covered_per_day = Decimal(0), {}
    day = t("2026-10-01T00:00:00")
    while day < t("2026-11-01T00:00:00"):
        end = day + timedelta(days=1)
        left = RESERVED_GPUS * _overlap(TERM_START, None, day, end)
        covered_per_day[day.date().isoformat()] = Fraction(0)
        for _id, start, stop in GPU_INSTANCES:
            used = GPUS * _overlap(start, stop, day, end)
            if not used:
                continue
            covered = min(GPUS * _overlap(max(start, TERM_START), stop, day, end), left)
            left -= covered
            covered_per_day[day.date().isoformat()] += covered
            total += _money((used - covered) * Fraction("1.75"))
        day = end
    return total, covered_per_day


class ContractsRunner(CloseRunner):
    contracts: Path
    statsd_port: int | None = None

    def env(self) -> dict[str, str]:
        env = super().env()
        env["AIRFLOW_VAR_BILLING_CONTRACTS_URI"] = self.contracts.as_uri()
        if self.statsd_port:  # Airflow's metrics system to a StatsD listener on loopback (issue 23 part 3)
            env.update({"AIRFLOW__METRICS__STATSD_ON": "True", "AIRFLOW__METRICS__STATSD_HOST": "127.0.0.1",
                        "AIRFLOW__METRICS__STATSD_PORT": str(self.statsd_port)})
        return env


@pytest.fixture(scope="module")
def airflow_home(tmp_path_factory) -> Path:
    return metadata_home(tmp_path_factory, "airflow-contracts-close")


def test_a_month_with_contracts_closes_with_every_invoice_total_as_computed(
    airflow_home, rafay_sim_factory, billing_dsn, tmp_path
):
    sim = rafay_sim_factory(dataset=dataset())
    book = tmp_path / "price_book.csv"
    book.write_text(PRICES)
    runner = ContractsRunner(airflow_home, sim, billing_dsn, tmp_path / "landing", book)
    runner.contracts = tmp_path / "contracts.csv"
    runner.contracts.write_text("\n".join([HEADER, RESERVATION, COMMITMENT, FEE.format(amount="99.99")]) + "\n")
    billed = runner.run("2026-11-01", conf=OCTOBER)
    assert billed.ok, billed.output[-3000:]
    assert [r[0] for r in runner.query("SELECT contract_id FROM billing.contracts ORDER BY 1")] == [
        "c-1", "f-1", "r-1"]  # the daily DAG synced them

    with statsd_listener() as listener:
        runner.statsd_port = listener.port
        closed = runner.close("2026-11-01")
        runner.statsd_port = None
    counters, gauges, _ = listener.billing()
    assert closed.ok, closed.output[-5000:]

    # expectations, from the terms
    gpu_on_demand, covered_per_day = coke_gpu_charges()
    assert covered_per_day["2026-10-09"] == 0 and covered_per_day["2026-10-10"] == 20  # 10 in-term h x 2 GPUs
    assert covered_per_day["2026-10-15"] == 48  # under capacity (72): c-g1 alone, all covered
    assert covered_per_day["2026-10-22"] == 72  # over: c-g1 48 + 24 of c-g2's 48; c-g3 on demand
    reservation = _money(RESERVED_GPUS * Fraction("1.50") * _hours(TERM_START, t("2026-11-01T00:00:00")))
    assert reservation == Decimal("2313.00")  # 514 h x 3 GPUs x 1.50, used or not
    vm = Decimal("8.40") * 31  # 24 h x 0.35 a day
    mrc = _money(Fraction("600.00") * 9 / 31)  # 9 used days of 31
    assert mrc == Decimal("174.19")
    true_up = _money(Fraction(500) - Fraction(vm) - Fraction(mrc))  # the MRC counts towards the commitment
    assert true_up == Decimal("65.41")
    fee = _money(Fraction("99.99") * 21 / 31)  # 2026-10-11..31
    pepsi = expected_totals(Dataset([dataset().orgs[1]]), [{"price_id": "pepsi", "org_id": "pepsi",
        "profile_type": "", "profile": "", "unit": "instance_hour", "unit_price": "0.2975", "currency": "EUR",
        "effective_from": "2026-01-01", "effective_to": ""}])[("pepsi", "EUR")]
    want = {
        ("coke", "EUR"): gpu_on_demand + reservation,
        ("coke", "USD"): vm + mrc + true_up,
        ("pepsi", "EUR"): pepsi,
        ("pepsi", "USD"): fee,
    }
    assert want[("coke", "USD")] == Decimal("500.00")  # exactly the commitment
    invoices = runner.query("SELECT org_id, currency, subtotal FROM billing.invoices ORDER BY invoice_seq")
    assert {(o, c): s for o, c, s in invoices} == want
    # the close's metrics are the database's documents: counts exactly, totals per currency to the cent
    assert counters["invoices_issued"] == len(invoices) == 4 and counters.get("credit_notes_issued", 0) == 0
    for currency in ("EUR", "USD"):
        total = sum((s for _, c, s in invoices if c.strip() == currency), Decimal(0))
        assert gauges[f"invoiced_total.{currency}"].quantize(Decimal("0.01")) == total, currency

    # the ledger's covered parts are the covered GPU-hours, day by day, at amount 0 with their list price
    covered = runner.query(
        "SELECT usage_date::text, sum(pricing_quantity), sum(amount), min(list_unit_price) FROM billing.charge_line_items"
        " WHERE covered_by = 'r-1' GROUP BY 1 ORDER BY 1")
    assert {d: q for d, q, _, _ in covered} == {d: Decimal(q.numerator) / q.denominator
                                                 for d, q in covered_per_day.items() if q}
    assert {(a, p) for _, _, a, p in covered} == {(Decimal(0), Decimal("1.75"))}
    split = runner.query("SELECT instance_key, covered_by, pricing_quantity, amount FROM billing.charge_line_items"
                         " WHERE usage_date = '2026-10-22' AND profile = 'gpu-vm' ORDER BY 1, 2")
    assert split == [("c-g1", "r-1", Decimal(48), Decimal(0)), ("c-g2", "", Decimal(24), Decimal("42.00")),
                     ("c-g2", "r-1", Decimal(24), Decimal(0)), ("c-g3", "", Decimal(48), Decimal("84.00"))]

    lines = runner.query("SELECT l.contract_id, l.charge_category, l.amount FROM billing.invoice_lines AS l"
                         " WHERE l.contract_id IS NOT NULL AND l.charge_category <> 'usage' ORDER BY 1")
    assert lines == [("c-1", "true_up", true_up), ("f-1", "purchase", fee), ("r-1", "purchase", reservation)]
    mrc_lines = runner.query("SELECT pricing_unit, amount FROM billing.invoice_lines WHERE charge_level = 'month'"
                             " AND charge_category = 'usage'")
    assert mrc_lines == [("instance_month", mrc)]
    assert "Contract charges of 2026-10: 3 item(s)" in closed.output
    assert f"r-1 reservation_fee (purchase): 1542.000000 gpu_hour x 1.50 = {reservation} EUR" in closed.output

    # rule 7: the fee changed after the close; the run that accepts it corrects October in November
    runner.contracts.write_text("\n".join([HEADER, RESERVATION, COMMITMENT, FEE.format(amount="120.00")]) + "\n")
    accepted = runner.run("2026-11-02", conf={"window_start": "2026-11-01T00:00:00Z",
                                              "window_end": "2026-11-02T00:00:00Z", "allow_retroactive": True})
    assert accepted.ok, accepted.output[-3000:]
    corrections = runner.query(
        "SELECT entry, amount, billing_period_start::text FROM billing.charge_line_items"
        " WHERE contract_id = 'f-1' AND charge_class = 'correction' ORDER BY entry")
    new_fee = _money(Fraction("120.00") * 21 / 31)
    assert corrections == [("charge", new_fee, "2026-11-01"), ("reversal", -fee, "2026-11-01")]
    assert new_fee - fee == Decimal("13.55")  # 81.29 - 67.74
    # what October issued is untouched
    assert {(o, c): s for o, c, s in runner.query(
        "SELECT org_id, currency, subtotal FROM billing.invoices ORDER BY invoice_seq")} == want
