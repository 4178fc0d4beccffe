"""Issue 21, rules 2 and 3, through the monthly close (``airflow dags test rafay_billing_close``): a late-usage
re-read that shrank is held and blocks the close even with ``allow_exceptions`` until accepted; a daily run
that read the last day before the close's re-read, and rates after the close, leaves the closed day alone
instead of refunding its late usage."""

from __future__ import annotations

import subprocess
import time
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from rafay_devkit.airflow_env import airflow_bin
from rafay_simulator import Dataset, Fault, Instance, Org, Profile
from tests.e2e.test_close_e2e import OCTOBER, CloseRunner
from tests.support.e2e import metadata_home

pytestmark = pytest.mark.e2e

LAST_DAY = date(2026, 10, 31)
BOOK = """price_id,org_id,profile_type,profile,unit,unit_price,currency,effective_from,effective_to
flat,,,,instance_hour,1.00,USD,2026-01-01,
"""


def t(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def coke(*late: Instance, stopped_at: datetime | None = None) -> Dataset:
    """One org, one instance on all October (24 h a day at 1.00), and an empty profile (zz-slow)."""
    vm = Profile("vm", "compute", None, [], [Instance("c-vm1", "coke-vm1", t("2026-09-15T00:00:00"),
                                                      stopped_at=stopped_at), *late])
    return Dataset([Org("coke", "Coke", [vm, Profile("zz-slow", "compute", None, [], [])])])


@pytest.fixture(scope="module")
def airflow_home(tmp_path_factory) -> Path:
    return metadata_home(tmp_path_factory, "airflow-guards-close")


def runner_for(home: Path, sim, billing_dsn: str, tmp_path: Path, **kw) -> CloseRunner:
    tmp_path.mkdir(parents=True, exist_ok=True)
    book = tmp_path / "price_book.csv"
    book.write_text(BOOK)
    return CloseRunner(home, sim, billing_dsn, tmp_path / "landing", book, **kw)


def test_a_shrunken_late_re_read_is_held_and_blocks_the_close_until_accepted(
    airflow_home, rafay_sim_factory, billing_dsn, tmp_path
):
    from rafay_billing.cli import main

    sim = rafay_sim_factory(dataset=coke())
    runner = runner_for(airflow_home, sim, billing_dsn, tmp_path)
    billed = runner.run("2026-11-01", conf=OCTOBER)
    assert billed.ok, billed.output[-3000:]
    # the close re-reads 10-31 and the API now reports 6 h of the 24 billed (retention, a glitch)
    sim.dataset = coke(stopped_at=t("2026-10-31T06:00:00"))
    refused = runner.close("2026-11-01", conf={"allow_exceptions": True})
    assert not refused.ok
    assert "2026-10-31 (held" in refused.output and "allow_exceptions does not close over it" in refused.output
    assert runner.invoices() == []
    [(status, held_run)] = runner.query(
        "SELECT status, run_id FROM billing.coverage WHERE usage_date = %(d)s", {"d": LAST_DAY})
    assert status == "held" and held_run.startswith("rafay_billing_close__")
    assert runner.query("SELECT sum(amount) FROM billing.charge_line_items") == [(Decimal("744.00"),)]

    assert main(["accept-shrink", "--dsn", billing_dsn, "--org", "coke", "--day", "2026-10-31", "--run", held_run,
                 "--reason", "the instance stopped at 06:00 on the 31st", "--by", "ops"]) == 0
    closed = runner.close("2026-11-01")
    assert closed.ok, closed.output[-5000:]
    assert runner.query("SELECT subtotal FROM billing.invoices") == [(Decimal("726.00"),)]  # 30 x 24 h + 6 h


def test_a_daily_run_that_read_before_the_close_cannot_refund_its_late_usage(
    airflow_home, rafay_sim_factory, billing_dsn, tmp_path, tmp_path_factory
):
    sim = rafay_sim_factory(dataset=coke())
    runner = runner_for(airflow_home, sim, billing_dsn, tmp_path / "close")
    billed = runner.run("2026-11-01", conf=OCTOBER)
    assert billed.ok, billed.output[-3000:]

    # A: a re-run of 10-31 (its own Airflow home: two `dags test` at once) that reads coke's vm usage, then
    # waits on the slow zz-slow profile
    runner_a = runner_for(metadata_home(tmp_path_factory, "airflow-guards-close-a"), sim, billing_dsn,
                          tmp_path / "a", rafay_extra={"read_timeout": 300})
    sim.reset_stats()
    sim.add_fault(Fault("latency", path_regex=r"/profiles/zz-slow/usage", delay_ms=150_000, times=1))
    conf = '{"window_start": "2026-10-31T00:00:00Z", "window_end": "2026-11-01T00:00:00Z"}'
    proc_a = subprocess.Popen([airflow_bin(), "dags", "test", "rafay_usage_billing", "2026-11-01", "-c", conf],
                              env=runner_a.env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 240
        while not any("/organizations/coke/ncp/profiles/vm/usage" in r.path for r in sim.requests):
            assert proc_a.poll() is None and time.monotonic() < deadline, "run A never read coke's usage"
            time.sleep(0.5)
        # Rafay catches up: 6 h more on 10-31; the close re-reads it, re-bills it and issues October
        sim.dataset = coke(Instance("c-late", "coke-late", t("2026-10-31T18:00:00")))
        closed = runner.close("2026-11-01")
        assert closed.ok, closed.output[-5000:]
        assert proc_a.poll() is None, "run A finished before the close: the test did not interleave them"
        assert runner.query("SELECT subtotal FROM billing.invoices") == [(Decimal("750.00"),)]  # 744 + 6
        sim.release_delays()  # the close is done: A gets its slow response now, not when the 150 s run out
        output_a, _ = proc_a.communicate(timeout=600)
    finally:
        if proc_a.poll() is None:
            proc_a.kill()
            proc_a.wait()
    assert proc_a.returncode == 0, output_a[-3000:]
    assert "superseded" in output_a
    # no correction: A's older read (24 h) would have refunded the late 6 h into November
    assert runner.query("SELECT count(*) FROM billing.charge_line_items WHERE charge_class = 'correction'") == [(0,)]
    assert runner.query("SELECT sum(amount) FROM billing.charge_line_items") == [(Decimal("750.00"),)]
