"""Issue 21, rules 2 and 3, end to end: the real daily DAG (``airflow dags test``) against the simulator
and a real PostgreSQL. A shrinking re-read is held, not billed, until an operator accepts it; a window
longer than ``max_window_days`` is refused; a run that read before another run's later re-read but
rates after it leaves the day alone (``superseded``)."""

from __future__ import annotations

import subprocess
import time
from dataclasses import replace
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import psycopg
import pytest

from rafay_devkit.airflow_env import airflow_bin
from rafay_simulator import Dataset, Fault, Instance, Org, Profile
from tests.support.e2e import BillingRunner, metadata_home

pytestmark = pytest.mark.e2e

ALWAYS_ON = datetime(2026, 11, 1, tzinfo=UTC)
DAY = date(2026, 11, 10)
RE_READ = {"window_start": "2026-11-10T00:00:00Z", "window_end": "2026-11-11T00:00:00Z"}
BOOK = """price_id,org_id,profile_type,profile,unit,unit_price,currency,effective_from,effective_to
flat,,,,instance_hour,2.00,USD,2026-01-01,
"""


@pytest.fixture(scope="module")
def airflow_home(tmp_path_factory) -> Path:
    return metadata_home(tmp_path_factory, "airflow-guards")


def vm(org_id: str, *extra: Instance) -> Profile:
    return Profile("vm", "compute", None, [], [Instance(f"0190-{org_id}", f"{org_id}-vm", ALWAYS_ON), *extra])


def runner_for(airflow_home: Path, sim, billing_dsn: str, tmp_path: Path, **kw) -> BillingRunner:
    book = tmp_path / "price_book.csv"
    book.write_text(BOOK)
    return BillingRunner(airflow_home, sim, billing_dsn, tmp_path / "landing", book, **kw)


def day_totals(runner: BillingRunner) -> dict[str, Decimal]:
    return dict(runner.query(
        "SELECT org_id, sum(amount) FROM billing.charge_line_items WHERE usage_date = %(d)s GROUP BY 1", {"d": DAY}))


def coverage(runner: BillingRunner, org_id: str) -> tuple:
    [row] = runner.query("SELECT status, reason, run_id, billed_run_id FROM billing.coverage"
                         " WHERE org_id = %(o)s AND usage_date = %(d)s", {"o": org_id, "d": DAY})
    return row


def test_an_empty_re_read_is_held_not_refunded_until_accepted(airflow_home, rafay_sim_factory, billing_dsn, tmp_path):
    """Rule 2: an empty re-read (API retention, a permissions change) used to replace the day: coke's
    48.00 became 0.00 and the run was green."""
    from rafay_billing.cli import main

    sim = rafay_sim_factory(dataset=Dataset([Org("coke", "Coke", [vm("coke")]), Org("pepsi", "Pepsi", [vm("pepsi")])]))
    runner = runner_for(airflow_home, sim, billing_dsn, tmp_path)
    first = runner.run("2026-11-11")
    assert first.ok, first.output[-3000:]
    assert day_totals(runner) == {"coke": Decimal("48.00"), "pepsi": Decimal("48.00")}

    sim.dataset = Dataset([Org("coke", "Coke", [replace(vm("coke"), instances=[])]), Org("pepsi", "Pepsi", [vm("pepsi")])])
    again = runner.run("2026-11-12", conf=RE_READ)
    assert not again.ok
    assert "held (usage_shrank" in again.output and "coke (Coke) 2026-11-10" in again.output
    assert "accept-shrink" in again.output
    assert day_totals(runner) == {"coke": Decimal("48.00"), "pepsi": Decimal("48.00")}  # the earlier items stand
    status, reason, held_run, billed_run = coverage(runner, "coke")
    assert (status, reason) == ("held", "usage_shrank") and billed_run != held_run
    assert coverage(runner, "pepsi")[0] == "billed"

    # the operator accepts the empty read: the day is rated from it, audited
    assert main(["accept-shrink", "--dsn", billing_dsn, "--org", "coke", "--day", "2026-11-10", "--run", held_run,
                 "--reason", "coke's instances were deleted before the 10th", "--by", "ops"]) == 0
    assert day_totals(runner) == {"pepsi": Decimal("48.00")}
    assert coverage(runner, "coke")[:2] == ("billed", None)
    assert runner.query("SELECT action, actor FROM billing.audit_log") == [("accept_shrink", "ops")]


def test_a_window_longer_than_max_window_days_fails_the_first_task(airflow_home, rafay_sim_factory, billing_dsn,
                                                                   tmp_path):
    """Rule 2 (also): {"days": 400} (a typo for 40) used to re-bill 400 days."""
    sim = rafay_sim_factory(dataset=Dataset([Org("coke", "Coke", [vm("coke")])]))
    runner = runner_for(airflow_home, sim, billing_dsn, tmp_path)
    result = runner.run("2026-11-12", conf={"days": 400})
    assert not result.ok
    assert "max_window_days (62)" in result.output and '"allow_long_window": true' in result.output
    assert not any("/usage" in r.path for r in sim.requests)  # nothing was read


def test_a_stale_run_never_overwrites_a_newer_read(airflow_home, rafay_sim_factory, billing_dsn, tmp_path,
                                                    tmp_path_factory):
    """Rule 3: run A reads coke's 11-10, then waits on a slow response; run B reads the day again later,
    with late usage, and bills it; then A rates. A used to restore the older usage (48.00 instead of 60.00)."""
    slow = Profile("zz-slow", "compute", None, [], [])
    sim = rafay_sim_factory(dataset=Dataset([Org("coke", "Coke", [vm("coke"), slow])]))
    # A: its own Airflow home (two `dags test` at once), and patience for the slow response
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    runner_a = runner_for(airflow_home, sim, billing_dsn, tmp_path / "a", rafay_extra={"read_timeout": 300})
    runner_b = runner_for(metadata_home(tmp_path_factory, "airflow-guards-b"), sim, billing_dsn, tmp_path / "b")
    sim.add_fault(Fault("latency", path_regex=r"/profiles/zz-slow/usage", delay_ms=150_000, times=1))
    proc_a = subprocess.Popen([airflow_bin(), "dags", "test", "rafay_usage_billing", "2026-11-11"],
                              env=runner_a.env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 240
        while not any("/organizations/coke/ncp/profiles/vm/usage" in r.path for r in sim.requests):
            assert proc_a.poll() is None and time.monotonic() < deadline, "run A never read coke's usage"
            time.sleep(0.5)
        # A has read the old usage and waits for zz-slow; B reads the day again, with late usage
        late = Instance("0190-coke-late", "coke-late", datetime(2026, 11, 10, 18, tzinfo=UTC))
        sim.dataset = Dataset([Org("coke", "Coke", [vm("coke", late), slow])])
        result_b = runner_b.run("2026-11-12", conf=RE_READ)
        assert result_b.ok, result_b.output[-3000:]
        assert proc_a.poll() is None, "run A finished before run B: the test did not interleave them"
        assert day_totals(runner_b) == {"coke": Decimal("60.00")}  # 24 h + 6 h late, x 2.00
        sim.release_delays()  # B is done: A gets its slow response now, not when the 150 s run out
        output_a, _ = proc_a.communicate(timeout=600)
    finally:
        if proc_a.poll() is None:
            proc_a.kill()
            proc_a.wait()
    assert proc_a.returncode == 0, output_a[-3000:]
    assert "superseded" in output_a
    assert day_totals(runner_a) == {"coke": Decimal("60.00")}  # B's newer read stands
    status, _, run_id, billed = coverage(runner_a, "coke")
    with psycopg.connect(billing_dsn) as conn:
        seqs = {s: (seq, run) for s, seq, run in conn.execute(
            "SELECT status, extraction_seq, run_id FROM billing.extractions WHERE org_id = 'coke'").fetchall()}
    assert status == "billed" and run_id == billed == seqs["rated"][1]  # B's run
    assert seqs["superseded"][0] < seqs["rated"][0]  # A's seq was taken first, before its first request
    assert seqs["superseded"][1] != run_id
