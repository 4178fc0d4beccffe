"""Faults under the real scheduler: after Airflow's retries a window's totals equal an undisturbed
run's, and nothing is duplicated.

One ``LocalAirflow`` topology (api-server, scheduler with LocalExecutor, dag-processor, triggerer;
metadata on the session's PostgreSQL) is shared by four scenarios, each billing its own whole UTC day:

(a) SIGKILL of the task process while ``extract_org`` waits for a slowed usage request,
(b) SIGKILL of the task process while ``load_usage`` waits for a lock on ``billing.usage_records``,
(c) SIGKILL of the task process while ``rate_window`` waits for a lock on ``billing.charge_line_items``,
(d) restart of the billing PostgreSQL server while ``load_usage`` waits for that lock.

Nothing in the product is hooked. The test catches a task at the right moment from the outside: it
holds ``LOCK TABLE ... IN ACCESS EXCLUSIVE MODE`` in a transaction of its own, waits until
``pg_stat_activity`` shows a backend blocked by it, maps that backend's client port to the local
process (psutil), checks that the process is the task-runner of the expected task instance (Airflow
3: scheduler -> LocalExecutor worker = supervisor -> forked task-runner, which opens the database and
HTTP connections and whose pid the REST API reports), and kills it. For (a) a simulator fault delays
one usage request of one org and the process holding a connection to the simulator is killed.

The reference is an undisturbed run of the same window, same simulator dataset and clock, billed
first into a separate database (``billing_reference``) on the same dedicated PostgreSQL server; the
fault runs then bill into ``billing_faults``, where their windows were never billed before. The
``billing_postgres`` connection is a metastore connection (not an env one) so the test can point it
at either database between the two phases. That server belongs to this module alone, so restarting
it disturbs no other test.

Only ``charge_line_items(window_start, window_end, org_id, profile, instance_key, amount, currency)``
and ``usage_records(org_id, record_seq, window_start)`` are read.

Retry delays: extract_org's comes from ``RAFAY_BILLING_EXTRACT_RETRY_DELAY_SECONDS``; load_usage and
rate_window retry once after ``RAFAY_BILLING_RETRY_DELAY_SECONDS`` (``default_args``); the test sets
both to 2 s (the fixture warns if the DAG ignores them: each retry would then wait a minute).
"""

from __future__ import annotations

import os
import shutil
import signal
import tempfile
import time
import warnings
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import quote

import psutil
import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict

from rafay_devkit import airflow_env as airflow_env_module
from rafay_devkit.airflow_env import airflow_env
from rafay_devkit.local_airflow import DAG_ID, MARKER_VAR, LocalAirflow, LocalAirflowError, wait_for
from rafay_devkit.postgres import EmbeddedPostgres
from rafay_simulator import Fault, RafaySimulator, SimulatorConfig
from tests.support.db import create_database, drop_database
from tests.support.paths import DEMO_PRICE_BOOK, REPO

pytestmark = [pytest.mark.e2e, pytest.mark.topology]


TODAY = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
SIM_NOW = TODAY + timedelta(days=1)  # as in test_topology: every day billed here is complete, and fixed
ORGS = 3
RETRY_DELAY_SECONDS = 2
RUN_TIMEOUT = 300
CATCH_TIMEOUT = 120
BILLING_CONN_ID = "billing_postgres"
# Knobs the DAG reads from the environment: extract_org's retry delay (exists), and the retry delay
# of the other tasks (load_usage, rate_window: 1 retry, 1 minute apart by default_args).
RETRY_ENV = {
    "RAFAY_BILLING_EXTRACT_RETRY_DELAY_SECONDS": str(RETRY_DELAY_SECONDS),
    "RAFAY_BILLING_RETRY_DELAY_SECONDS": str(RETRY_DELAY_SECONDS),
}


def day(offset: int) -> datetime:
    return TODAY + timedelta(days=offset)


def iso(value: datetime) -> str:
    return value.strftime("%Y-%m-%dT%H:%M:%SZ")


# One whole UTC day per scenario, so that no scenario's retry or leftovers touch another's window.
WINDOWS: dict[str, tuple[datetime, datetime]] = {
    "extract_kill": (day(-2), day(-1)),
    "load_kill": (day(-3), day(-2)),
    "rate_kill": (day(-4), day(-3)),
    "postgres_restart": (day(-5), day(-4)),
}


# --- what a window holds ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Billed:
    """A window's line items and usage rows, as the ledger's consumers see them."""

    items: tuple[tuple, ...]  # sorted (org_id, profile, instance_key, amount, currency)
    totals: dict[str, Decimal]  # sum(amount) per currency
    repeated_items: list[tuple]  # (window_start, org_id, profile, instance_key) more than once
    usage_rows: int
    usage_keys: frozenset[tuple]  # (org_id, record_seq, window_start)
    repeated_usage: list[tuple]

    @property
    def line_items(self) -> int:
        return len(self.items)


def billed(dsn: str, ws: datetime, we: datetime) -> Billed:
    window = {"ws": ws, "we": we}
    in_window = "window_start >= %(ws)s AND window_start < %(we)s AND window_end <= %(we)s"
    with psycopg.connect(dsn) as conn:
        items = conn.execute(
            "SELECT org_id, profile, instance_key, amount, rtrim(currency) FROM billing.charge_line_items"
            f" WHERE {in_window}", window,
        ).fetchall()
        repeated_items = conn.execute(
            "SELECT window_start, org_id, profile, instance_key, count(*) FROM billing.charge_line_items"
            f" WHERE {in_window} GROUP BY 1, 2, 3, 4 HAVING count(*) > 1", window,
        ).fetchall()
        usage = conn.execute(
            f"SELECT org_id, record_seq, window_start FROM billing.usage_records WHERE {in_window}", window,
        ).fetchall()
    totals: dict[str, Decimal] = {}
    for *_, amount, currency in items:
        totals[currency] = totals.get(currency, Decimal(0)) + amount
    counts = Counter(tuple(row) for row in usage)
    return Billed(
        items=tuple(sorted(tuple(row) for row in items)),
        totals=totals,
        repeated_items=[tuple(r) for r in repeated_items],
        usage_rows=len(usage),
        usage_keys=frozenset(counts),
        repeated_usage=[key for key, n in counts.items() if n > 1],
    )


def assert_same_as_reference(actual: Billed, reference: Billed, what: str) -> None:
    assert reference.line_items > 0 and reference.usage_rows > 0, f"{what}: the reference billed nothing"
    assert actual.repeated_items == [], f"{what}: line items billed twice"
    assert actual.repeated_usage == [], f"{what}: usage records landed twice"
    assert actual.usage_rows == reference.usage_rows, f"{what}: usage rows differ from the undisturbed run"
    assert actual.usage_keys == reference.usage_keys, f"{what}: usage records differ from the undisturbed run"
    assert actual.line_items == reference.line_items, f"{what}: line item count differs from the undisturbed run"
    assert actual.totals == reference.totals, f"{what}: totals per currency differ from the undisturbed run"
    assert actual.items == reference.items, f"{what}: line items differ from the undisturbed run"


# --- the topology ------------------------------------------------------------------------------------


@dataclass
class Reference:
    run: dict
    states: dict[str, str | None]
    billed: Billed


@dataclass
class FaultTopology:
    airflow: LocalAirflow
    sim: RafaySimulator
    billing_pg: EmbeddedPostgres
    faults_dsn: str
    references: dict[str, Reference] = field(default_factory=dict)

    @property
    def client(self):
        return self.airflow.client

    def trigger(self, scenario: str, prefix: str) -> str:
        ws, we = WINDOWS[scenario]
        run = self.client.trigger(
            DAG_ID, conf={"window_start": iso(ws), "window_end": iso(we), "settle_minutes": 0},
            run_id=f"{prefix}__{scenario}__{int(time.time())}",
        )
        return run["dag_run_id"]

    def wait_run(self, run_id: str) -> dict:
        run = self.client.wait_for_run(DAG_ID, run_id, timeout=RUN_TIMEOUT)
        self.airflow.check_alive()
        return run

    def task_instance(self, run_id: str, task_id: str, map_index: int = -1) -> dict | None:
        tis = self.client.task_instances(DAG_ID, run_id, task_id)
        return next((ti for ti in tis if ti["map_index"] == map_index), None)

    def tries(self, run_id: str, task_id: str, map_index: int = -1) -> list[dict]:
        path = f"/dags/{DAG_ID}/dagRuns/{quote(run_id, safe='')}/taskInstances/{task_id}"
        if map_index >= 0:
            path += f"/{map_index}"
        return sorted(self.client.get(path + "/tries")["task_instances"], key=lambda t: t["try_number"])


def set_billing_connection(client, dsn: str) -> None:
    """Create or repoint the ``billing_postgres`` connection in the metastore (tasks read it per use)."""
    params = conninfo_to_dict(dsn)
    body = {
        "connection_id": BILLING_CONN_ID, "conn_type": "postgres", "host": params.get("host", "127.0.0.1"),
        "port": int(params.get("port", 5432)), "login": params.get("user", "postgres"),
        "password": params.get("password", ""), "schema": params["dbname"],
    }
    exists = client.request("GET", f"/connections/{BILLING_CONN_ID}", expect=(200, 404)).status_code == 200
    if exists:
        client.request("PATCH", f"/connections/{BILLING_CONN_ID}", json=body)
    else:
        client.request("POST", "/connections", json=body, expect=(201,))
    assert client.get(f"/connections/{BILLING_CONN_ID}")["schema"] == params["dbname"]


def _retry_delay_seconds(client, task_id: str) -> float:
    delay = client.get(f"/dags/{DAG_ID}/tasks/{task_id}").get("retry_delay") or {}
    return delay.get("days", 0) * 86400 + delay.get("seconds", 0) + delay.get("microseconds", 0) / 1e6


def _final(states: dict[str, str | None]) -> dict[str, str | None]:
    return dict(sorted(states.items()))


@pytest.fixture(scope="module")
def topo(tmp_path_factory: pytest.TempPathFactory, postgres_server: str) -> Iterator[FaultTopology]:
    # The components import the installed packages: they must be this checkout's (set
    # PYTHONPATH=<checkout>/include:<checkout>/plugins when another checkout's venv is used).
    devkit = Path(airflow_env_module.__file__).resolve()
    assert devkit.is_relative_to(REPO / "include"), (
        f"rafay_devkit comes from {devkit}, the tests from {REPO}: Airflow would run the other checkout's "
        "code; put this checkout's include/ and plugins/ first on PYTHONPATH"
    )
    home = tmp_path_factory.mktemp("faults")
    # A billing server of this module's own (the server user must reach its root: not under pytest's tmp).
    pg_root = Path(tempfile.mkdtemp(prefix="rafay-pg-faults-"))
    billing_pg = EmbeddedPostgres(root=pg_root)
    sim = RafaySimulator(SimulatorConfig(seed=7, orgs=ORGS, now=SIM_NOW)).start()
    metadata_dsn = create_database(postgres_server, "airflow_faults")
    airflow: LocalAirflow | None = None
    leftovers: list = []
    try:
        billing_pg.start()
        reference_dsn = billing_pg.create_database("billing_reference")
        faults_dsn = billing_pg.create_database("billing_faults")
        env = airflow_env(
            home / "airflow",
            rafay_url=sim.url,
            rafay_api_key=sim.api_key,
            billing_dsn=reference_dsn,
            data_uri=(home / "landing").as_uri(),
            price_book_uri=DEMO_PRICE_BOOK.as_uri(),
            rafay_extra={"read_timeout": 60, "max_retries": 2},
        )
        # An env connection would win over the metastore one: the test repoints billing_postgres.
        env.pop("AIRFLOW_CONN_BILLING_POSTGRES")
        airflow = LocalAirflow(
            home / "airflow",
            env,
            parallelism=4,
            metadata_dsn=metadata_dsn,
            # Manual runs only: no scheduled run of the newest day may land in either database.
            extra_env={**RETRY_ENV, "AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE": "False"},
        )
        airflow.start()
        airflow.wait_for_dag(DAG_ID)
        client = airflow.client
        fileloc = client.get(f"/dags/{DAG_ID}/details")["fileloc"]
        assert Path(fileloc).resolve().is_relative_to(REPO), f"the scheduler parsed {fileloc}, not {REPO}/dags"
        delays = {t: _retry_delay_seconds(client, t) for t in ("load_usage", "rate_window")}
        slow = {t: d for t, d in delays.items() if d > RETRY_DELAY_SECONDS}
        if slow:
            warnings.warn(
                f"the DAG ignores RAFAY_BILLING_RETRY_DELAY_SECONDS (retry delays {slow} s): each retry of "
                "load_usage / rate_window below waits that long", stacklevel=1,
            )
        topo = FaultTopology(airflow, sim, billing_pg, faults_dsn)

        # Phase 1: the undisturbed reference of every window, into billing_reference.
        set_billing_connection(client, reference_dsn)
        client.unpause(DAG_ID)
        runs = {scenario: topo.trigger(scenario, "reference") for scenario in WINDOWS}
        for scenario, run_id in runs.items():
            run = topo.wait_run(run_id)
            states = _final(client.task_states(DAG_ID, run_id))
            retried = [(ti["task_id"], ti["map_index"], ti["try_number"])
                       for ti in client.task_instances(DAG_ID, run_id)
                       if ti["try_number"] != 1 and ti["state"] != "skipped"]  # the watcher is skipped
            assert retried == [], f"reference run {run_id} was disturbed: {retried}"
            topo.references[scenario] = Reference(run, states, billed(reference_dsn, *WINDOWS[scenario]))

        # Phase 2: the fault runs bill into billing_faults, where none of these windows was billed.
        set_billing_connection(client, faults_dsn)
        yield topo
    finally:
        sim.clear_faults()
        if airflow is not None:
            airflow.stop()
            leftovers = airflow.own_processes()
        sim.stop()
        billing_pg.stop()
        shutil.rmtree(pg_root, ignore_errors=True)
        drop_database(postgres_server, metadata_dsn)
    assert leftovers == [], f"processes left running: {[p.pid for p in leftovers]}"


# --- catching a task at the right moment ---------------------------------------------------------------


@dataclass
class Caught:
    """The task-runner process of ``ti`` (a running try), found through one of its connections."""

    ti: dict
    process: psutil.Process
    supervisor: psutil.Process
    backend_pid: int | None = None


def _running_ti_with_pid(topo: FaultTopology, run_id: str, pid: int) -> dict | None:
    tis = topo.client.task_instances(DAG_ID, run_id)
    return next((ti for ti in tis if ti.get("pid") == pid and ti["state"] == "running"), None)


def _identify(topo: FaultTopology, run_id: str, pid: int) -> Caught:
    """The task instance whose task-runner is ``pid``, after checking the process is that and nothing else."""
    process = psutil.Process(pid)
    ti = _running_ti_with_pid(topo, run_id, pid)
    assert ti is not None, f"process {pid} ({process.cmdline()}) is no running task instance's pid in run {run_id}"
    # Airflow 3: the LocalExecutor worker (forked from the scheduler) supervises the try and forks the
    # task-runner, which names itself after the try's id; the REST API's pid is the task-runner's.
    title = " ".join(process.cmdline()).strip()
    assert title == f"airflow worker -- {ti['id']}", f"{pid} is not the task-runner of {ti['id']}: {title!r}"
    supervisor = process.parent()
    assert supervisor is not None
    supervisor_title = " ".join(supervisor.cmdline())
    assert supervisor_title.startswith("airflow worker -- LocalExecutor"), supervisor_title
    _assert_forked_from_scheduler(topo, supervisor)
    return Caught(ti, process, supervisor)


def _assert_forked_from_scheduler(topo: FaultTopology, supervisor: psutil.Process) -> None:
    """The supervisor descends from this topology's scheduler, whose environment the task inherited:
    the test's ``PYTHONPATH`` (this checkout's code) and the retry knobs.

    setproctitle wipes ``/proc/<pid>/environ`` of the task-runner and of its supervisor, so the
    nearest ancestor that still shows one is read; it must be the scheduler.
    """
    for proc in supervisor.parents():
        env = proc.environ()
        if not env:
            continue
        assert "scheduler" in proc.cmdline()[1:3], proc.cmdline()  # airflow scheduler [--skip-serve-logs]
        assert env.get(MARKER_VAR) == topo.airflow.instance_id, "another Airflow's scheduler"
        assert env.get("PYTHONPATH") == os.environ.get("PYTHONPATH"), env.get("PYTHONPATH")
        assert {k: env.get(k) for k in RETRY_ENV} == RETRY_ENV
        return
    raise AssertionError(f"no ancestor of supervisor {supervisor.pid} shows its environment")


def _kill(caught: Caught) -> None:
    caught.process.send_signal(signal.SIGKILL)
    caught.process.wait(timeout=30)  # gone (reaped by its supervisor)
    assert caught.supervisor.is_running(), "the supervisor died with the task-runner"


def _pids_connected_to(port: int, *, local_port: int | None = None) -> set[int]:
    pids = set()
    for conn in psutil.net_connections(kind="tcp"):
        if not conn.raddr or conn.raddr.port != port or conn.pid is None:
            continue
        if conn.status != psutil.CONN_ESTABLISHED:
            continue
        if local_port is None or conn.laddr.port == local_port:
            pids.add(conn.pid)
    return pids


def _blocked_by(locker: psycopg.Connection) -> list[tuple]:
    """Client backends waiting for a lock that ``locker``'s transaction holds."""
    with psycopg.connect(locker.info.dsn, autocommit=True) as probe:
        return probe.execute(
            "SELECT pid, client_port, wait_event, query FROM pg_stat_activity"
            " WHERE backend_type = 'client backend' AND wait_event_type = 'Lock'"
            " AND %s = ANY(pg_blocking_pids(pid))",
            (locker.info.backend_pid,),
        ).fetchall()


def _not_running(topo: FaultTopology, run_id: str, ti: dict) -> bool:
    current = topo.task_instance(run_id, ti["task_id"], ti["map_index"])
    return current is None or current["state"] != "running" or current["id"] != ti["id"]


def catch_blocked_on(
    topo: FaultTopology, run_id: str, table: str, task_id: str, fault: Callable[[psycopg.Connection, Caught], None]
) -> Caught:
    """Hold an ACCESS EXCLUSIVE lock on ``table`` until a backend of ``task_id``'s task-runner waits for
    it, then call ``fault(locker, caught)``; the lock is released (if the server still has it) afterwards.

    The lock is taken once ``migrate_schema`` has run. Another task that reaches ``table`` first is let
    through (lock released until it has finished, then taken again), so the catch does not depend on
    which other tasks touch the table.
    """
    dsn = topo.faults_dsn
    wait_for(lambda: (topo.task_instance(run_id, "migrate_schema") or {}).get("state") == "success",
             timeout=CATCH_TIMEOUT, interval=0.25, what=f"migrate_schema of {run_id}")
    for _ in range(5):
        locker = psycopg.connect(dsn)
        try:
            locker.execute(f"LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE")

            def blocked(locker: psycopg.Connection = locker) -> list[tuple] | None:
                found = _blocked_by(locker)
                if not found and topo.client.dag_run(DAG_ID, run_id)["state"] in ("success", "failed"):
                    raise LocalAirflowError(f"run {run_id} finished without touching {table} while it was locked")
                return found or None

            waiters = wait_for(blocked, timeout=CATCH_TIMEOUT, interval=0.25,
                               what=f"a backend waiting for the lock on {table}")
            backend_pid, client_port, wait_event, query = waiters[0]
            pids = _pids_connected_to(topo.billing_pg.port, local_port=client_port)
            assert len(pids) == 1, f"client port {client_port} of backend {backend_pid} maps to processes {pids}"
            caught = _identify(topo, run_id, pids.pop())
            caught.backend_pid = backend_pid
            if caught.ti["task_id"] != task_id:
                locker.rollback()
                wait_for(lambda c=caught: _not_running(topo, run_id, c.ti), timeout=CATCH_TIMEOUT, interval=0.25,
                         what=f"{caught.ti['task_id']} to get past {table}")
                continue
            assert wait_event == "relation", (wait_event, query)
            fault(locker, caught)
            return caught
        finally:
            try:
                locker.close()  # rolls the lock back (a restarted server has already dropped it)
            except psycopg.Error:
                pass
    raise AssertionError(f"{task_id} never waited for {table}")


def assert_retried_after_kill(topo: FaultTopology, run_id: str, caught: Caught) -> None:
    """The killed try failed with SIGKILL as its cause, and Airflow's retry made the task succeed."""
    task_id, map_index = caught.ti["task_id"], caught.ti["map_index"]
    final = topo.task_instance(run_id, task_id, map_index)
    assert final is not None and final["state"] == "success", final
    assert final["try_number"] == caught.ti["try_number"] + 1, "the killed try was not retried exactly once"
    tries = topo.tries(run_id, task_id, map_index)
    first = next(t for t in tries if t["try_number"] == caught.ti["try_number"])
    assert first["state"] in ("failed", "up_for_retry"), first
    log = topo.client.task_log(DAG_ID, run_id, task_id, caught.ti["try_number"], map_index)
    assert "SIGKILL" in log, f"the try's log does not show the kill:\n{log[-3000:]}"


def assert_like_reference(topo: FaultTopology, scenario: str, run_id: str, run: dict) -> None:
    reference = topo.references[scenario]
    assert run["state"] == reference.run["state"], topo.client.task_states(DAG_ID, run_id)
    assert _final(topo.client.task_states(DAG_ID, run_id)) == reference.states
    assert_same_as_reference(billed(topo.faults_dsn, *WINDOWS[scenario]), reference.billed, scenario)


# --- the scenarios -----------------------------------------------------------------------------------------


def test_extract_org_killed_mid_request_is_retried_and_bills_like_an_undisturbed_run(topo: FaultTopology) -> None:
    sim = topo.sim
    org = sim.dataset.orgs[1]
    # One usage request of this org hangs for two minutes (the hook's read timeout is one).
    sim.add_fault(Fault(kind="slow", path_regex=r"/ncp/profiles/[^/?]+/usage", delay_ms=120_000, org=org.org_id,
                        times=1))
    try:
        run_id = topo.trigger("extract_kill", "fault")
        wait_for(lambda: sim.faults[0]["remaining"] == 0, timeout=CATCH_TIMEOUT, interval=0.1,
                 what=f"a usage request of {org.org_id} to reach the simulator")
        # Orgs are mapped in listing order, one per task (the name is rendered only when a try ends).
        map_index = sim.dataset.orgs.index(org)
        ti = topo.task_instance(run_id, "extract_org", map_index)
        assert ti is not None and ti["state"] == "running" and ti["pid"], ti
        connected = _pids_connected_to(sim.port)
        assert ti["pid"] in connected, f"{org.org_id}'s task-runner {ti['pid']} has no connection to the simulator"
        caught = _identify(topo, run_id, ti["pid"])
        _kill(caught)
    finally:
        sim.clear_faults()
    run = topo.wait_run(run_id)
    assert_retried_after_kill(topo, run_id, caught)
    assert topo.task_instance(run_id, "extract_org", map_index)["rendered_map_index"] == org.name
    assert_like_reference(topo, "extract_kill", run_id, run)


def _kill_only(locker: psycopg.Connection, caught: Caught) -> None:
    _kill(caught)  # catch_blocked_on releases the lock afterwards


def test_load_usage_killed_mid_transaction_is_retried_and_bills_like_an_undisturbed_run(
    topo: FaultTopology,
) -> None:
    run_id = topo.trigger("load_kill", "fault")
    caught = catch_blocked_on(topo, run_id, "billing.usage_records", "load_usage", _kill_only)
    run = topo.wait_run(run_id)
    assert_retried_after_kill(topo, run_id, caught)
    assert_like_reference(topo, "load_kill", run_id, run)


def test_rate_window_killed_mid_transaction_is_retried_and_bills_like_an_undisturbed_run(
    topo: FaultTopology,
) -> None:
    run_id = topo.trigger("rate_kill", "fault")
    caught = catch_blocked_on(topo, run_id, "billing.charge_line_items", "rate_window", _kill_only)
    run = topo.wait_run(run_id)
    assert_retried_after_kill(topo, run_id, caught)
    assert_like_reference(topo, "rate_kill", run_id, run)


def test_billing_postgres_restarted_during_load_usage_is_retried_and_bills_like_an_undisturbed_run(
    topo: FaultTopology,
) -> None:
    pg = topo.billing_pg

    def started_at() -> Any:
        with psycopg.connect(topo.faults_dsn) as conn:
            return conn.execute("SELECT pg_postmaster_start_time()").fetchone()[0]

    before = started_at()

    def restart(locker: psycopg.Connection, caught: Caught) -> None:
        pg.stop()  # fast shutdown: every backend ends, load_usage's transaction with it
        pg.start()

    run_id = topo.trigger("postgres_restart", "fault")
    caught = catch_blocked_on(topo, run_id, "billing.usage_records", "load_usage", restart)
    assert started_at() > before, "the billing server was not restarted"
    run = topo.wait_run(run_id)
    final = topo.task_instance(run_id, "load_usage")
    assert final is not None and final["state"] == "success", final
    assert final["try_number"] == caught.ti["try_number"] + 1, "load_usage did not fail with the server and retry"
    first = next(t for t in topo.tries(run_id, "load_usage") if t["try_number"] == caught.ti["try_number"])
    assert first["state"] in ("failed", "up_for_retry"), first
    log = topo.client.task_log(DAG_ID, run_id, "load_usage", caught.ti["try_number"])
    # PostgreSQL's message to the backends a fast shutdown ends; the traceback is this checkout's code.
    assert "terminating connection due to administrator command" in log, log[-3000:]
    assert f"{REPO}/include/" in log or f"{REPO}/plugins/" in log, log[-3000:]
    assert_like_reference(topo, "postgres_restart", run_id, run)
