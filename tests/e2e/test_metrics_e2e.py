"""Issue 23 part 3 end to end: ``airflow dags test`` of the daily DAG with ``[metrics] statsd_on`` sends the
billing metrics to a real UDP listener on loopback, and every count equals the run's database counts
(or the simulator's request log) exactly; amounts to the currency's minor unit."""

from __future__ import annotations

from collections import defaultdict
from decimal import Decimal
from pathlib import Path

import pytest

from rafay_simulator import Fault
from tests.e2e.test_dag_e2e import PRICING_CSV, pricing_dataset
from tests.support.e2e import BillingRunner, metadata_home
from tests.support.statsd import statsd_listener

pytestmark = pytest.mark.e2e

@pytest.fixture(scope="module")
def airflow_home(tmp_path_factory) -> Path:
    return metadata_home(tmp_path_factory, "airflow-metrics")


def _reread_pages(sim) -> int:
    """Pages (200 answers) of each listing's reads after its first (a read starts at offset 0)."""
    reads: dict[tuple, int] = defaultdict(int)
    again = 0
    for request in sim.requests:
        if request.status != 200:
            continue
        query = dict(request.query)
        offset = int(query.pop("offset", 0))
        key = (request.path, tuple(sorted(query.items())))
        if offset == 0:
            reads[key] += 1
        if reads[key] > 1:
            again += 1
    return again


def test_statsd_metrics_equal_the_runs_database_counts(airflow_home, rafay_sim_factory, billing_dsn, tmp_path):
    dataset = pricing_dataset()
    sim = rafay_sim_factory(dataset=dataset, max_page_size=1)
    sim.add_fault(Fault("status", path_regex=r"/usage$", status=503, html=True, times=2))
    sim.add_fault(Fault("status", path_regex=r"/ncp/profiles$", status=429, retry_after="1", times=1))
    sim.add_fault(Fault("insert_head", path_regex=r"/usage$", after_pages=1, times=1))  # one listing re-read
    price_book = tmp_path / "price_book.csv"
    price_book.write_text(PRICING_CSV)
    runner = BillingRunner(airflow_home, sim, billing_dsn, tmp_path / "landing", price_book)
    with statsd_listener() as listener:
        env = runner.env()
        env.update({"AIRFLOW__METRICS__STATSD_ON": "True", "AIRFLOW__METRICS__STATSD_HOST": "127.0.0.1",
                    "AIRFLOW__METRICS__STATSD_PORT": str(listener.port)})
        from rafay_devkit.airflow_env import dags_test

        proc = dags_test(env, "2026-11-11")
        counters, gauges, timers = listener.billing()
    output = proc.stdout + proc.stderr
    assert "needs attention" in output  # the dataset's exceptions fail check_run, after everything is written
    assert counters, output[-4000:]

    (run_id,), = runner.query("SELECT DISTINCT run_id FROM billing.usage_records")
    one = lambda sql: runner.query(sql, {"run": run_id})[0][0]  # noqa: E731
    assert counters["orgs_listed"] == one("SELECT count(DISTINCT org_id) FROM billing.coverage WHERE run_id = %(run)s")
    assert counters["rows_loaded"] == one("SELECT count(*) FROM billing.usage_records WHERE run_id = %(run)s")
    assert counters["records_read"] == counters["rows_loaded"]  # no duplicates in this dataset
    assert counters["profiles_read"] == sum(len(org.profiles) for org in dataset.orgs)
    assert counters["items_rated"] == one("SELECT count(*) FROM billing.charge_line_items WHERE run_id = %(run)s")
    exceptions = dict(runner.query("SELECT reason, count(*) FROM billing.rating_exceptions WHERE run_id = %(run)s "
                                   "GROUP BY reason", {"run": run_id}))
    assert exceptions and {k.split(".", 1)[1]: v for k, v in counters.items() if k.startswith("exceptions.")} == exceptions
    assert counters.get("failed_org_days", 0) == one(
        "SELECT count(*) FROM billing.coverage WHERE run_id = %(run)s AND status = 'failed'")
    assert counters.get("held_org_days", 0) == 0

    # the API: every request the simulator answered, the 3 scripted faults retried, each request timed
    assert counters["api_requests"] == len(sim.requests)
    assert counters["api_retries"] == sum(1 for r in sim.requests if r.status in (429, 503)) == 3
    assert timers["api_request_latency"] == len(sim.requests)
    assert counters["pages_reread"] == _reread_pages(sim) > 0

    totals = runner.query("SELECT currency, sum(amount), max(minor_unit) FROM billing.charge_line_items "
                          "WHERE run_id = %(run)s GROUP BY currency", {"run": run_id})
    assert {k.split(".", 1)[1] for k in gauges if k.startswith("amount_billed.")} == {c.strip() for c, _, _ in totals}
    for currency, amount, minor in totals:
        sent = gauges[f"amount_billed.{currency.strip()}"]
        assert sent.quantize(Decimal(1).scaleb(-minor)) == amount, currency
