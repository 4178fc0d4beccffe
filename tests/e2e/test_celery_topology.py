"""docker-compose.yaml's production topology, really distributed, natively
(``rafay_devkit.celery_topology``): CeleryExecutor with a real Redis broker (append-only), two
Celery workers that behave like two hosts (own AIRFLOW_HOME, empty scratch TMPDIR, own host name,
own log port), the landing root and task logs on S3 (moto on loopback), the metadata and billing
databases on the embedded PostgreSQL. One topology for the module; the tests run in order on it.

- a scheduled run bills exactly what ``airflow dags test`` bills for the window, its mapped
  extract_org tasks ran on both workers, and no landing file is on either worker's disk;
- a Redis restart while tasks wait in the queue: the run completes, same totals;
- a worker SIGKILLed (its whole process group) while it runs extract_org: the task is retried on the
  surviving worker, same totals, nothing duplicated;
- nothing binds beyond loopback; every process stops at the end.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from urllib.parse import quote

import psycopg
import pytest

from rafay_billing.paths import safe_component
from rafay_billing.window import Window
from rafay_devkit.airflow_env import airflow_env
from rafay_devkit.celery_topology import CeleryTopology
from rafay_devkit.local_airflow import DAG_ID, wait_for
from rafay_simulator import Fault, RafaySimulator, SimulatorConfig
from tests.support.db import create_database, drop_database
from tests.support.e2e import BillingRunner, DagRunResult, expected_charges, metadata_home, read_price_book
from tests.support.paths import DEMO_PRICE_BOOK

pytestmark = [pytest.mark.e2e, pytest.mark.topology]

TODAY = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
SIM_NOW = TODAY + timedelta(days=1)  # every window billed here is complete, and fixed
ORGS = 4
# moto keeps its S3 state per process, shared by every moto server the test session starts: a
# bucket of this module's own, so other modules (test_s3_landing.py lists its whole bucket) see none of it.
BUCKET = "rafay-billing-celery"
PREFIX = "prod/billing"
RUN_TIMEOUT = 600
# A lost worker's task is noticed after the heartbeat timeout (default 300 s) and retried after the
# retry delay: short values here, so the kill test takes about a minute.
HEARTBEAT_TIMEOUT = 20
TIMINGS: dict[str, float] = {}
# The scheduled run bills the last complete UTC day (billing_start_date is yesterday).
SCHEDULED = (TODAY - timedelta(days=1), TODAY)


def iso(value: datetime) -> str:
    return value.strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)


@dataclass
class Reference:
    """``airflow dags test`` for the scheduled window into a billing database of its own, run in a
    thread while the topology starts (it needs none of it), so that it costs the module no time."""

    dsn: str
    thread: threading.Thread | None = None
    result: DagRunResult | None = None
    error: BaseException | None = None

    def start(self, tmp_path_factory: pytest.TempPathFactory, sim: RafaySimulator) -> None:
        def run() -> None:
            try:
                home = metadata_home(tmp_path_factory, "celery_dags_test")
                ws, we = SCHEDULED
                runner = BillingRunner(home, sim, self.dsn, home / "landing", DEMO_PRICE_BOOK,
                                       billing_start_date=ws.date().isoformat())
                self.result = runner.run(ws.date().isoformat(), {
                    "window_start": iso(ws), "window_end": iso(we), "settle_minutes": 0})
            except BaseException as exc:  # re-raised in the test
                self.error = exc

        self.thread = threading.Thread(target=run, name="dags-test-reference", daemon=True)
        self.thread.start()

    def wait(self) -> DagRunResult:
        assert self.thread is not None
        self.thread.join(timeout=900)
        if self.error is not None:
            raise self.error
        assert self.result is not None, "airflow dags test did not finish in 15 minutes"
        return self.result


@dataclass
class Stack:
    topo: CeleryTopology
    sim: RafaySimulator
    billing_dsn: str
    reference: Reference

    @property
    def client(self):
        return self.topo.client

    def expected(self, ws: datetime, we: datetime) -> tuple[dict, set]:
        return expected_charges(self.sim.dataset, read_price_book(DEMO_PRICE_BOOK), ws, we, now=SIM_NOW)

    def run_conf(self, ws: datetime, we: datetime) -> dict:
        return {"window_start": iso(ws), "window_end": iso(we), "settle_minutes": 0}

    def wait_run(self, run_id: str) -> dict:
        run = self.client.wait_for_run(DAG_ID, run_id, timeout=RUN_TIMEOUT)
        assert self.topo.airflow is not None
        self.topo.airflow.check_alive()
        return run

    def extract_tis(self, run_id: str) -> list[dict]:
        return self.client.mapped_task_instances(DAG_ID, run_id, "extract_org")

    def tries(self, run_id: str, map_index: int) -> list[dict]:
        path = (f"/dags/{DAG_ID}/dagRuns/{quote(run_id, safe='')}/taskInstances/extract_org/"
                f"{map_index}/tries")
        return sorted(self.client.get(path)["task_instances"], key=lambda t: t["try_number"])


def line_items(dsn: str, ws: datetime, we: datetime) -> dict[tuple, tuple]:
    with psycopg.connect(dsn) as conn:
        rows = conn.execute(
            "SELECT org_id, profile, instance_key, usage_hours, pricing_quantity, unit_price, currency, amount,"
            " price_id FROM billing.charge_line_items WHERE window_start = %s AND window_end = %s",
            (ws, we),
        ).fetchall()
    items = {}
    for org, profile, key, *values in rows:
        assert (org, profile, key) not in items, f"line item {(org, profile, key)} twice"
        items[(org, profile, key)] = tuple(v.normalize() if isinstance(v, Decimal) else v for v in values)
    return items


def usage_duplicates(dsn: str, ws: datetime, we: datetime) -> list[tuple]:
    with psycopg.connect(dsn) as conn:
        return conn.execute(
            "SELECT org_id, count(*) - count(DISTINCT (org_id, profile, instance_key)) FROM billing.usage_records"
            " WHERE window_start = %s AND window_end = %s GROUP BY org_id"
            " HAVING count(*) > count(DISTINCT (org_id, profile, instance_key))",
            (ws, we),
        ).fetchall()


def assert_billed_as_expected(stack: Stack, ws: datetime, we: datetime) -> dict[tuple, tuple]:
    expected, _ = stack.expected(ws, we)
    assert expected, f"no billable usage in [{iso(ws)}, {iso(we)}): test set-up is wrong"
    actual = line_items(stack.billing_dsn, ws, we)
    assert sorted(actual) == sorted(expected)
    for key, item in expected.items():
        assert actual[key][-2] == Decimal(item["amount"]).normalize(), key
    assert usage_duplicates(stack.billing_dsn, ws, we) == []
    return actual


def data_files(root: Path) -> list[Path]:
    """Landing files (JSON, CSV) under ``root``; task logs and Airflow's bookkeeping excluded."""
    return sorted(
        p for p in root.rglob("*")
        if p.is_file() and p.suffix.lower() in (".csv", ".json") and "logs" not in p.relative_to(root).parts
    )


# --- fixtures ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, postgres_server: str) -> Iterator[Stack]:
    started = time.monotonic()
    home = tmp_path_factory.mktemp("celery")
    sim = RafaySimulator(SimulatorConfig(seed=7, orgs=ORGS, now=SIM_NOW)).start()
    billing_dsn = create_database(postgres_server, "billing_celery")
    metadata_dsn = create_database(postgres_server, "airflow_celery")
    reference = Reference(create_database(postgres_server, "billing_celery_ref"))
    reference.start(tmp_path_factory, sim)
    env = airflow_env(
        home / "airflow", rafay_url=sim.url, rafay_api_key=sim.api_key, billing_dsn=billing_dsn,
        data_uri=f"s3://{BUCKET}/{PREFIX}", price_book_uri=DEMO_PRICE_BOOK.as_uri(),
        rafay_extra={"read_timeout": 15, "max_retries": 2},
    )
    topo = CeleryTopology(
        home, env, metadata_dsn, BUCKET, workers=2, concurrency=1,
        extra_env={
            "AIRFLOW__RAFAY_BILLING__EXTRACT_RETRIES": "2",
            "AIRFLOW__RAFAY_BILLING__EXTRACT_RETRY_DELAY_SECONDS": "2",
            "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": str(HEARTBEAT_TIMEOUT),
            "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT_DETECTION_INTERVAL": "5",
        },
    )
    try:
        topo.start()
        assert topo.airflow is not None
        topo.airflow.wait_for_dag(DAG_ID)
        TIMINGS["start"] = time.monotonic() - started
        yield Stack(topo, sim, billing_dsn, reference)
    finally:
        topo.stop()
        leftovers = topo.own_processes()
        if reference.thread is not None:
            reference.thread.join(timeout=900)
        sim.stop()
        drop_database(postgres_server, reference.dsn)
        drop_database(postgres_server, billing_dsn)
        drop_database(postgres_server, metadata_dsn)
        TIMINGS["module"] = time.monotonic() - started
        print(f"\ncelery topology timings (s): { {k: round(v, 1) for k, v in TIMINGS.items()} }")
    assert leftovers == [], f"processes left running: {[(p.pid, p.name()) for p in leftovers]}"


# --- the tests (in order: they share one topology) ------------------------------------------------


def test_the_topology_runs_compose_settings_and_binds_only_loopback(stack: Stack) -> None:
    topo = stack.topo
    assert topo.airflow is not None
    env = topo.airflow.full_env
    assert env["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"
    assert env["AIRFLOW__CELERY__BROKER_URL"] == f"redis://:@127.0.0.1:{topo.redis.port}/0"
    assert env["AIRFLOW__CELERY__RESULT_BACKEND"].startswith("db+postgresql://")
    assert env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] == f"{topo.url}/execution/"
    assert topo.redis.client().config_get("appendonly") == {"appendonly": "yes"}
    homes = {w.name: topo.worker_env(w)["AIRFLOW_HOME"] for w in topo.worker_list}
    assert len(set(homes.values())) == 2 and env["AIRFLOW_HOME"] not in homes.values()
    for worker in topo.worker_list:
        assert topo.worker_env(worker)["AIRFLOW__API_AUTH__JWT_SECRET"] == env["AIRFLOW__API_AUTH__JWT_SECRET"]
    assert topo.non_loopback_listeners() == []


def _run_the_scheduled_run(stack: Stack) -> tuple[dict, dict, float]:
    """Unpause, wait for the scheduled run of the last complete day, let it settle, wait for its end."""
    client = stack.client
    client.unpause(DAG_ID)
    started = time.monotonic()
    run = wait_for(
        lambda: next((r for r in client.dag_runs(DAG_ID) if r["run_type"] == "scheduled"), None),
        timeout=180, interval=2, what="the scheduler to create a scheduled run",
    )
    run_id = run["dag_run_id"]
    ws, we = parse_time(run["data_interval_start"]), parse_time(run["data_interval_end"])
    assert (ws, we) == SCHEDULED, "the scheduled run bills another window than the last complete day"

    def settled_or_final() -> dict | None:
        current = client.dag_run(DAG_ID, run_id)
        if current["state"] in ("success", "failed"):
            return current
        sensor = client.task_instances(DAG_ID, run_id, "wait_for_usage_to_settle")
        if sensor and sensor[0]["state"] == "deferred":  # 00:00-01:00 UTC: the newest day is unsettled
            client.set_task_state(DAG_ID, run_id, "wait_for_usage_to_settle", "success")
        return None

    final = wait_for(settled_or_final, timeout=RUN_TIMEOUT, interval=2, what=f"scheduled run {run_id} to finish")
    TIMINGS["scheduled_run"] = time.monotonic() - started
    return final, run, started


def test_scheduled_run_bills_what_dags_test_bills_with_tasks_on_both_workers(stack: Stack) -> None:
    client, topo = stack.client, stack.topo
    # Each org's extraction holds its worker's one slot for seconds, so the next queued task goes to
    # the other worker (on a quiet machine unslowed tasks end so fast that one worker can take all four).
    stack.sim.add_fault(Fault(kind="latency", delay_ms=1500, path_regex="/usage"))
    try:
        final, run, _ = _run_the_scheduled_run(stack)
    finally:
        stack.sim.clear_faults()
    run_id = run["dag_run_id"]
    ws, we = parse_time(run["data_interval_start"]), parse_time(run["data_interval_end"])
    states = client.task_states(DAG_ID, run_id)
    _, exceptions = stack.expected(ws, we)
    assert final["state"] == ("failed" if exceptions else "success"), states

    # The mapped extraction ran on both workers (the host names their hostname_callable gives).
    tis = stack.extract_tis(run_id)
    assert len(tis) == ORGS and {t["state"] for t in tis} == {"success"}, states
    assert {t["hostname"] for t in tis} == {w.name for w in topo.worker_list}, [t["hostname"] for t in tis]
    # Task logs come from S3 (no worker serves logs): the per-org summary is there.
    org_ti = tis[0]
    text = client.task_log(DAG_ID, run_id, "extract_org", org_ti["try_number"], org_ti["map_index"])
    assert "profiles, " in text and " instances, " in text, text[-2000:]
    assert topo.s3 is not None and topo.s3.keys(BUCKET, "task-logs/")

    # The tasks handed each other S3 URIs, never local paths; everything landed in the bucket and
    # nothing on either worker's disk.
    handed = [client.xcom(DAG_ID, run_id, "extract_org", "extracted", t["map_index"]) for t in tis]
    uris = [item["usage_uri"] for chunk in handed for item in (chunk or [])]
    assert len(uris) >= ORGS and all(u.startswith(f"s3://{BUCKET}/{PREFIX}/") for u in uris), handed
    raw = f"{PREFIX}/raw/window={Window(ws, we).label}/run={safe_component(run_id)}/"
    keys = topo.s3.keys(BUCKET, raw)
    for org in stack.sim.dataset.orgs:
        assert f"{raw}org={safe_component(org.org_id)}/usage.csv" in keys, keys
    for worker in topo.worker_list:
        assert worker.scratch.is_dir()
        assert data_files(worker.home) == [], f"landing files on {worker.name}'s disk"

    billed = assert_billed_as_expected(stack, ws, we)

    # `airflow dags test` for the same window (run meanwhile, into a billing database of its own).
    result = stack.reference.wait()
    assert result.ok == (not exceptions), result.output[-3000:]
    assert line_items(stack.reference.dsn, ws, we) == billed


def test_a_broker_restart_during_a_run_loses_no_task(stack: Stack) -> None:
    client, topo = stack.client, stack.topo
    ws, we = TODAY - timedelta(days=3), TODAY - timedelta(days=2)
    # Slow extraction (each org's requests take seconds), so that tasks wait in the queue when Redis goes.
    stack.sim.add_fault(Fault(kind="latency", delay_ms=1500, path_regex="/usage"))
    try:
        started = time.monotonic()
        run = client.trigger(DAG_ID, conf=stack.run_conf(ws, we))
        run_id = run["dag_run_id"]
        queue = topo.redis.client()

        def queued_in_redis() -> int | None:
            running = [t for t in stack.extract_tis(run_id) if t["state"] == "running"]
            waiting = queue.llen("default")
            return waiting if running and waiting else None

        waiting = wait_for(queued_in_redis, timeout=240, interval=0.5,
                           what="extract_org tasks running with others queued in Redis")
        topo.redis.restart(down_seconds=2)
        assert topo.redis.client().config_get("appendonly") == {"appendonly": "yes"}
        final = stack.wait_run(run_id)
        TIMINGS["broker_restart_run"] = time.monotonic() - started
    finally:
        stack.sim.clear_faults()
    states = client.task_states(DAG_ID, run_id)
    _, exceptions = stack.expected(ws, we)
    assert final["state"] == ("failed" if exceptions else "success"), states
    assert waiting >= 1
    assert {t["state"] for t in stack.extract_tis(run_id)} == {"success"}, states
    assert_billed_as_expected(stack, ws, we)
    for worker in topo.worker_list:
        assert worker.alive(), f"{worker.name} did not survive the broker restart: {worker.log_path}"


def test_a_worker_killed_mid_extract_is_retried_on_the_survivor(stack: Stack) -> None:
    client, topo = stack.client, stack.topo
    ws, we = TODAY - timedelta(days=5), TODAY - timedelta(days=4)
    victim = 1  # map index: extract_org maps over the orgs in listing order (test_topology checks it)
    victim_org = stack.sim.dataset.orgs[victim]
    # The org's first usage request hangs for a while: its first try is surely mid-extraction when
    # its worker dies; the retry is not slowed.
    stack.sim.add_fault(Fault(kind="latency", delay_ms=12_000, org=victim_org.org_id, times=1))
    try:
        started = time.monotonic()
        run = client.trigger(DAG_ID, conf=stack.run_conf(ws, we))
        run_id = run["dag_run_id"]

        def victim_running() -> dict | None:
            # (rendered_map_index, the org's name, is set when the task ends: look it up by map index)
            ti = next((t for t in stack.extract_tis(run_id) if t["map_index"] == victim), None)
            return ti if ti and ti["state"] == "running" and ti.get("hostname") else None

        ti = wait_for(victim_running, timeout=240, interval=0.5, what=f"extract_org for {victim_org.name} to run")
        lost = ti["hostname"]
        assert topo.non_loopback_listeners() == []  # also while tasks run
        killed = topo.kill_worker(lost)
        assert killed and topo.worker_processes(lost) == []
        final = stack.wait_run(run_id)
        TIMINGS["worker_kill_run"] = time.monotonic() - started
    finally:
        stack.sim.clear_faults()
    states = client.task_states(DAG_ID, run_id)
    _, exceptions = stack.expected(ws, we)
    assert final["state"] == ("failed" if exceptions else "success"), states
    survivor = next(w.name for w in topo.worker_list if w.name != lost)
    tries = stack.tries(run_id, victim)
    assert [t["hostname"] for t in tries] == [lost, survivor], tries
    assert tries[0]["state"] in ("failed", "up_for_retry") and tries[1]["state"] == "success", tries
    assert_billed_as_expected(stack, ws, we)

    # The lost host comes back and takes work again.
    topo.start_worker(lost)
    assert topo.worker(lost).alive()
