"""The production topology, natively: the real api-server, scheduler, dag-processor and triggerer on
loopback with LocalExecutor and a PostgreSQL metadata database (``rafay_devkit.local_airflow``), the
Rafay simulator over HTTP and a PostgreSQL billing database. Scheduled run, backfill, the REST API
(mapped instances named by org, task logs, no API key in them), a Deadline Alert missed by a run held
in the triggerer and posted by it to a local receiver (issue 23), and clearing a failed org.

Expected line items come from ``e2e_support.expected_charges`` (the contract's rules written out
plainly against the simulator's dataset), never from the pipeline's own output.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from urllib.parse import quote

import psycopg
import pytest

from rafay_devkit.airflow_env import airflow_env
from rafay_devkit.local_airflow import DAG_ID, LocalAirflow, iter_task_logs, wait_for
from rafay_simulator import Fault, RafaySimulator, SimulatorConfig
from tests.support.alert_receiver import AlertReceiver, alert_receiver
from tests.support.db import create_database, drop_database
from tests.support.e2e import expected_charges, read_price_book
from tests.support.paths import DEMO_PRICE_BOOK

pytestmark = [pytest.mark.e2e, pytest.mark.topology]


TODAY = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
# The simulated clock is a day ahead of today's midnight: every window billed here is complete
# (even if the date changes while the tests run), and fixed, so expectations are exact.
SIM_NOW = TODAY + timedelta(days=1)
ORGS = 4
EXTRACT_RETRIES = 2
RUN_TIMEOUT = 600
NIGHTLY_DEADLINE_HOURS = "0.01"  # 36 s after a run is queued: the held run below misses it on purpose


def day(offset: int) -> datetime:
    return TODAY + timedelta(days=offset)


def iso(value: datetime) -> str:
    return value.strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)


@dataclass
class Topology:
    airflow: LocalAirflow
    sim: RafaySimulator
    billing_dsn: str
    landing: Path
    alerts: AlertReceiver

    @property
    def client(self):
        return self.airflow.client

    def query(self, sql: str, params: tuple | dict = ()) -> list[tuple]:
        with psycopg.connect(self.billing_dsn) as conn:
            return conn.execute(sql, params).fetchall()

    def line_items(self, ws: datetime, we: datetime) -> dict[tuple, dict]:
        with psycopg.connect(self.billing_dsn) as conn, conn.cursor() as cur:
            cur.execute(
                "SELECT org_id, profile, instance_key, usage_hours, pricing_quantity, unit_price, currency,"
                " amount, price_id, run_id FROM billing.charge_line_items"
                " WHERE window_start = %s AND window_end = %s",
                (ws, we),
            )
            return {
                (r[0], r[1], r[2]): {
                    "usage_hours": r[3], "pricing_quantity": r[4], "unit_price": r[5], "currency": r[6].strip(),
                    "amount": r[7], "price_id": r[8], "run_id": r[9],
                }
                for r in cur.fetchall()
            }

    def expected(self, ws: datetime, we: datetime) -> tuple[dict, set]:
        return expected_charges(self.sim.dataset, read_price_book(DEMO_PRICE_BOOK), ws, we, now=SIM_NOW)

    def wait_run(self, run_id: str) -> dict:
        run = self.client.wait_for_run(DAG_ID, run_id, timeout=RUN_TIMEOUT)
        self.airflow.check_alive()
        return run


def _comparable(item: dict) -> dict:
    keys = ("usage_hours", "pricing_quantity", "unit_price", "currency", "amount", "price_id")
    return {k: (Decimal(item[k]).normalize() if isinstance(item[k], Decimal | int) else item[k]) for k in keys}


def assert_window_billed(topo: Topology, ws: datetime, we: datetime, *, without_orgs: set[str] = frozenset()) -> dict:
    """The window's line items are exactly the expected ones (minus ``without_orgs``), none twice."""
    expected, _ = topo.expected(ws, we)
    expected = {k: v for k, v in expected.items() if k[0] not in without_orgs}
    assert expected, f"the simulator has no billable usage in [{iso(ws)}, {iso(we)}): test set-up is wrong"
    dupes = topo.query(
        "SELECT org_id, profile, instance_key, count(*) FROM billing.charge_line_items"
        " WHERE window_start = %s AND window_end = %s GROUP BY 1, 2, 3 HAVING count(*) > 1",
        (ws, we),
    )
    assert dupes == []
    actual = topo.line_items(ws, we)
    assert sorted(actual) == sorted(expected), f"line item keys of [{iso(ws)}, {iso(we)}) differ"
    for key, item in expected.items():
        assert _comparable(actual[key]) == _comparable(item), key
    return actual


# --- fixtures ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def topology(tmp_path_factory: pytest.TempPathFactory, postgres_server: str) -> Iterator[Topology]:
    home = tmp_path_factory.mktemp("topology")
    receiving = ExitStack()
    alerts = receiving.enter_context(alert_receiver())
    sim = RafaySimulator(SimulatorConfig(seed=7, orgs=ORGS, now=SIM_NOW)).start()
    billing_dsn = create_database(postgres_server, "billing_topology")
    metadata_dsn = create_database(postgres_server, "airflow_topology")
    landing = home / "landing"
    env = airflow_env(
        home / "airflow",
        rafay_url=sim.url,
        rafay_api_key=sim.api_key,
        billing_dsn=billing_dsn,
        data_uri=landing.as_uri(),
        price_book_uri=DEMO_PRICE_BOOK.as_uri(),
        rafay_extra={"read_timeout": 15, "max_retries": 2},
    )
    airflow = LocalAirflow(
        home / "airflow",
        env,
        parallelism=4,
        metadata_dsn=metadata_dsn,
        # The DAG's knobs for extract_org's task retries: two retries (its default) a few seconds
        # apart instead of minutes, so a failing org's three tries take seconds.
        extra_env={"RAFAY_BILLING_EXTRACT_RETRIES": str(EXTRACT_RETRIES),
                   "RAFAY_BILLING_EXTRACT_RETRY_DELAY_SECONDS": "2",
                   # Deadline Alerts as production would have them, with a deadline short enough to miss
                   # (any run over it posts one, harmlessly); the triggerer posts to the local receiver
                   "AIRFLOW__RAFAY_BILLING__DEADLINE_ALERTS": "true",
                   "AIRFLOW__RAFAY_BILLING__NIGHTLY_DEADLINE_HOURS": NIGHTLY_DEADLINE_HOURS,
                   "AIRFLOW_CONN_BILLING_ALERTS": alerts.connection_json()},
    )
    try:
        airflow.start()
        airflow.wait_for_dag(DAG_ID)
        yield Topology(airflow, sim, billing_dsn, landing, alerts)
    finally:
        airflow.stop()
        leftovers = airflow.own_processes()
        receiving.close()
        sim.stop()
        drop_database(postgres_server, billing_dsn)
        drop_database(postgres_server, metadata_dsn)
    assert leftovers == [], f"processes left running: {[p.pid for p in leftovers]}"


# --- the tests (in order: they share one Airflow) ---------------------------------------------------


def test_scheduler_creates_and_finishes_the_scheduled_run(topology: Topology) -> None:
    client = topology.client
    dag = client.dag(DAG_ID)
    assert dag is not None and dag["is_paused"] is True  # paused at creation, as in compose
    assert client.dag_runs(DAG_ID) == []
    client.unpause(DAG_ID)

    run = wait_for(
        lambda: next((r for r in client.dag_runs(DAG_ID) if r["run_type"] == "scheduled"), None),
        timeout=180, interval=2, what="the scheduler to create a scheduled run",
    )
    ws, we = parse_time(run["data_interval_start"]), parse_time(run["data_interval_end"])
    assert we - ws == timedelta(days=1) and ws.hour == 0 and we <= datetime.now(UTC)

    def settled_or_final() -> dict | None:
        current = client.dag_run(DAG_ID, run["dag_run_id"])
        if current["state"] in ("success", "failed"):
            return current
        sensor = client.task_instances(DAG_ID, run["dag_run_id"], "wait_for_usage_to_settle")
        if sensor and sensor[0]["state"] == "deferred":
            # Between 00:00 and 01:00 UTC the newest window has not settled: the sensor waits in the
            # triggerer. An operator's "mark success" lets the run go on now.
            client.set_task_state(DAG_ID, run["dag_run_id"], "wait_for_usage_to_settle", "success")
        return None

    final = wait_for(settled_or_final, timeout=RUN_TIMEOUT, interval=2,
                     what=f"scheduled run {run['dag_run_id']} to finish")
    states = client.task_states(DAG_ID, run["dag_run_id"])
    extract = {k: v for k, v in states.items() if k.startswith("extract_org[")}
    assert len(extract) == ORGS and set(extract.values()) == {"success"}, states
    assert_window_billed(topology, ws, we)
    _, exceptions = topology.expected(ws, we)
    assert final["state"] == ("failed" if exceptions else "success"), states


def test_backfill_bills_three_past_days_once_each(topology: Topology) -> None:
    client = topology.client
    windows = [(day(-5), day(-4)), (day(-4), day(-3)), (day(-3), day(-2))]
    # Backfill dates are logical dates: a CronDataIntervalTimetable run's logical date is the start
    # of its data interval.
    topology.airflow.backfill(windows[0][0].date().isoformat(), windows[-1][0].date().isoformat())

    def backfill_runs() -> list[dict] | None:
        runs = [r for r in client.dag_runs(DAG_ID) if r["run_type"] == "backfill"]
        return runs if len(runs) >= 3 and all(r["state"] in ("success", "failed") for r in runs) else None

    runs = wait_for(backfill_runs, timeout=RUN_TIMEOUT, interval=3, what="three backfill runs to finish")
    got = sorted((parse_time(r["data_interval_start"]), parse_time(r["data_interval_end"])) for r in runs)
    assert got == windows, "backfill created other windows than the three days asked for"

    all_runs = client.dag_runs(DAG_ID)
    for ws, we in windows:
        same_window = [r for r in all_runs if r["data_interval_start"] and parse_time(r["data_interval_start"]) == ws]
        assert len(same_window) == 1, f"window {iso(ws)} has {len(same_window)} runs"
        (run,) = same_window
        states = client.task_states(DAG_ID, run["dag_run_id"])
        assert {v for k, v in states.items() if k.startswith("extract_org[")} == {"success"}, states
        items = assert_window_billed(topology, ws, we)
        assert {i["run_id"] for i in items.values()} == {run["dag_run_id"]}, "billed by another run"
        _, exceptions = topology.expected(ws, we)
        assert run["state"] == ("failed" if exceptions else "success"), states


def _latest_run(topology: Topology, run_type: str) -> dict:
    runs = [r for r in topology.client.dag_runs(DAG_ID) if r["run_type"] == run_type]
    assert runs, f"no {run_type} run (the test before this one did not run?)"
    return max(runs, key=lambda r: r["data_interval_start"])


def test_rest_api_names_mapped_instances_by_org_and_serves_their_logs(topology: Topology) -> None:
    client = topology.client
    run = _latest_run(topology, "scheduled")
    names = {org.org_id: org.name for org in topology.sim.dataset.orgs}
    mapped = client.mapped_task_instances(DAG_ID, run["dag_run_id"], "extract_org")
    assert [ti["map_index"] for ti in mapped] == list(range(ORGS))
    assert [ti["rendered_map_index"] for ti in mapped] == [org.name for org in topology.sim.dataset.orgs]
    # The run's task instance list has them too, with the same names.
    listed = client.task_instances(DAG_ID, run["dag_run_id"], "extract_org")
    assert sorted(ti["rendered_map_index"] for ti in listed) == sorted(names.values())

    org = topology.sim.dataset.orgs[1]
    ti = next(t for t in mapped if t["rendered_map_index"] == org.name)
    text = client.task_log(DAG_ID, run["dag_run_id"], "extract_org", ti["try_number"], ti["map_index"])
    summary = [line for line in text.splitlines() if f"org {org.org_id} ({org.name}):" in line]
    assert summary, f"no per-org summary line for {org.org_id} in its task log:\n{text[-3000:]}"
    assert " profiles, " in summary[0] and " instances, " in summary[0], summary[0]
    others = [o for o in names if o != org.org_id and f"org {o} (" in text]
    assert others == [], "another org's summary is in this org's log"


def _assert_no_key_in_logs(topology: Topology, runs: list[dict]) -> int:
    key = topology.sim.api_key
    fetched = 0
    for run in runs:
        for ti, try_number, text in iter_task_logs(topology.client, DAG_ID, run["dag_run_id"]):
            fetched += 1
            assert text.strip(), f"empty log for {ti['task_id']}[{ti['map_index']}] try {try_number}"
            assert key not in text, f"API key in the log of {ti['task_id']}[{ti['map_index']}] try {try_number}"
    return fetched


def test_no_api_key_in_any_task_log(topology: Topology) -> None:
    runs = topology.client.dag_runs(DAG_ID)
    assert len(runs) >= 4
    fetched = _assert_no_key_in_logs(topology, runs)
    assert fetched >= len(runs) * 10


def test_an_unsettled_window_waits_in_the_triggerer_until_marked_settled(topology: Topology) -> None:
    client = topology.client
    org = topology.sim.dataset.orgs[0]
    ws, we = day(-10), day(-9)
    run = client.trigger(DAG_ID, conf={
        "window_start": iso(ws), "window_end": iso(we), "orgs": [org.org_id],
        "settle_minutes": 60 * 24 * 60,  # settles two months after the window: still ahead
    })
    run_id = run["dag_run_id"]

    def deferred() -> dict | None:
        tis = client.task_instances(DAG_ID, run_id, "wait_for_usage_to_settle")
        ti = tis[0] if tis else None
        picked_up = ti and (ti.get("triggerer_job") or ti.get("queued_by_job"))
        return ti if ti and ti["state"] == "deferred" and ti.get("trigger") and picked_up else None

    sensor = wait_for(deferred, timeout=180, interval=1,
                      what="the settle sensor to defer and a triggerer to pick its trigger up")
    assert sensor["trigger"]["classpath"].endswith("DateTimeTrigger"), sensor["trigger"]
    assert client.dag_run(DAG_ID, run_id)["state"] == "running"

    # held past its Deadline Alert (36 s after it was queued): the scheduler sees the miss and the
    # triggerer posts the notice, naming the DAG, the run, what is late and a link to the run
    def late_notice() -> dict | None:
        return next((m for m in list(topology.alerts.received)
                     if m.get("event") == "deadline_missed" and m.get("run_id") == run_id), None)

    notice = wait_for(late_notice, timeout=240, interval=1, what=f"a deadline_missed notice for {run_id}")
    assert notice["dag_id"] == DAG_ID and notice["state"] == "running"
    assert "nightly billing run did not finish within 0.01 h of being queued" in notice["what"], notice
    assert notice["url"].endswith(f"/dags/{DAG_ID}/runs/{quote(run_id, safe='')}"), notice
    assert run_id in notice["text"] and notice["deadline_time"], notice
    assert client.task_states(DAG_ID, run_id)["migrate_schema"] in (None, "none")  # nothing ran past it
    assert topology.line_items(ws, we) == {}

    client.set_task_state(DAG_ID, run_id, "wait_for_usage_to_settle", "success")  # operator: "settled"
    final = topology.wait_run(run_id)
    assert final["state"] == "success", client.task_states(DAG_ID, run_id)
    assert [ti["rendered_map_index"] for ti in client.mapped_task_instances(DAG_ID, run_id, "extract_org")] == [org.name]
    assert_window_billed(topology, ws, we, without_orgs={o.org_id for o in topology.sim.dataset.orgs} - {org.org_id})


def test_clearing_a_failed_org_completes_the_run_without_duplicates(topology: Topology) -> None:
    client, sim = topology.client, topology.sim
    org = sim.dataset.orgs[2]
    ws, we = day(-8), day(-7)
    sim.add_fault(Fault(kind="status", status=500, org=org.org_id, path_regex=f"/v2/organizations/{org.org_id}/"))
    try:
        run = client.trigger(DAG_ID, conf={"window_start": iso(ws), "window_end": iso(we), "settle_minutes": 0})
        failed = topology.wait_run(run["dag_run_id"])
    finally:
        sim.clear_faults()
    assert failed["state"] == "failed"
    run_id = run["dag_run_id"]
    mapped = {ti["rendered_map_index"]: ti for ti in client.mapped_task_instances(DAG_ID, run_id, "extract_org")}
    assert mapped[org.name]["state"] == "failed"
    assert mapped[org.name]["try_number"] == EXTRACT_RETRIES + 1  # the task's own retries ran first
    assert {n: t["state"] for n, t in mapped.items() if n != org.name} == dict.fromkeys(
        (o.name for o in sim.dataset.orgs if o.org_id != org.org_id), "success"
    )
    check = client.task_instances(DAG_ID, run_id, "check_run")[0]
    assert check["state"] == "failed"
    check_log = client.task_log(DAG_ID, run_id, "check_run", check["try_number"])
    assert f"{org.org_id} ({org.name})" in check_log, check_log[-3000:]
    before = assert_window_billed(topology, ws, we, without_orgs={org.org_id})
    assert not any(k[0] == org.org_id for k in topology.line_items(ws, we))

    # Airflow 3.3.2 cannot clear a run whose queued-at deadline is still pending (apache/airflow#70368:
    # HTTP 500, TypeError in _recalculate_dagrun_queued_at_deadlines; README "Failure notices and
    # deadline alerts"): with deadline_alerts on here, clear once the run's deadline has been missed
    wait_for(lambda: any(m.get("event") == "deadline_missed" and m.get("run_id") == run_id
                         for m in list(topology.alerts.received)),
             timeout=240, interval=1, what=f"run {run_id}'s deadline to be missed before it is cleared")
    cleared = client.clear_task_instances(
        DAG_ID, run_id, [("extract_org", mapped[org.name]["map_index"])], include_downstream=True
    )
    cleared_ids = {(t["task_id"], t["map_index"]) for t in cleared}
    assert ("extract_org", mapped[org.name]["map_index"]) in cleared_ids
    assert {"load_usage", "rate_window", "publish_reports", "check_run"} <= {t for t, _ in cleared_ids}
    assert not any(t == "extract_org" and i != mapped[org.name]["map_index"] for t, i in cleared_ids)

    wait_for(lambda: client.dag_run(DAG_ID, run_id)["state"] not in ("failed",), timeout=60, interval=1,
             what="the cleared run to be re-queued")
    rerun = topology.wait_run(run_id)
    after = assert_window_billed(topology, ws, we)
    for key, item in before.items():  # the other orgs' items are the same, re-rated once
        assert _comparable(after[key]) == _comparable(item)
    _, exceptions = topology.expected(ws, we)
    assert rerun["state"] == ("failed" if exceptions else "success"), client.task_states(DAG_ID, run_id)
    again = {ti["rendered_map_index"]: ti for ti in client.mapped_task_instances(DAG_ID, run_id, "extract_org")}
    assert again[org.name]["state"] == "success"
    assert {n: t["try_number"] for n, t in again.items() if n != org.name} == {
        n: t["try_number"] for n, t in mapped.items() if n != org.name
    }, "clearing one org re-ran others"
    # The fault run's logs (failed HTTP calls included) are clean too.
    assert _assert_no_key_in_logs(topology, [client.dag_run(DAG_ID, run_id)]) > 0
    print(json.dumps({"cleared": sorted(map(list, cleared_ids))}))
