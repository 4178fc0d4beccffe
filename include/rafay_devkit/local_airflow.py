"""The real Airflow components on loopback, as subprocesses: the topology of docker-compose.yaml,
natively, for the end-to-end tests and ``make airflow``.

:class:`LocalAirflow` starts ``airflow api-server``, ``scheduler``, ``dag-processor`` and
``triggerer`` with LocalExecutor and a PostgreSQL metadata database (an :class:`EmbeddedPostgres`
unless a DSN is given). Like the compose services they share one JWT secret, one API secret key and
the execution API URL of the API server; SimpleAuthManager with one admin user whose password is in
a file (as the compose ``airflow-init`` writes it). It creates the ``rafay_api`` pool, waits until
``/api/v2/monitor/health`` reports every started component healthy, writes each component's output
to ``<airflow_home>/components/<name>.log`` and, on :meth:`LocalAirflow.stop`, ends every process it
started: each component's process group, then anything still carrying this instance's marker in its
environment (task processes run in process groups of their own). Components also get SIGTERM from
the kernel if the process that started them dies without stopping them (Linux ``PR_SET_PDEATHSIG``).
An :class:`EmbeddedPostgres` it started itself is stopped by :meth:`LocalAirflow.stop` only.

:class:`AirflowClient` (in :mod:`rafay_devkit.airflow_client`, re-exported here) is the REST API v2
client the tests and operators drive it with.

``python -m rafay_devkit.local_airflow`` (``make airflow``) runs the whole thing with the Rafay
simulator and an embedded billing database, prints the UI URL and the login, and stops on Ctrl-C.
"""

from __future__ import annotations

import argparse
import atexit
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import requests

from rafay_devkit.airflow_client import (
    FINAL_RUN_STATES,
    AirflowClient,
    LocalAirflowError,
    iter_task_logs,
    wait_for,
)
from rafay_devkit.airflow_env import airflow_bin, airflow_env
from rafay_devkit.postgres import EmbeddedPostgres, free_port
from rafay_devkit.project import demo_price_book, work_dir
from rafay_provider.settings import BILLING_DAG_ID, RAFAY_POOL

DAG_ID = BILLING_DAG_ID
DEFAULT_COMPONENTS = ("api-server", "scheduler", "dag-processor", "triggerer")
MARKER_VAR = "RAFAY_LOCAL_AIRFLOW_ID"
SIMPLE_AUTH_MANAGER = "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager"

# Short loops so a test does not wait for default heartbeats (5 s) or a directory re-scan (5 min).
FAST_SETTINGS = {
    "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "1",
    "AIRFLOW__SCHEDULER__JOB_HEARTBEAT_SEC": "1",
    "AIRFLOW__SCHEDULER__SCHEDULER_IDLE_SLEEP_TIME": "0.5",
    "AIRFLOW__SCHEDULER__TASK_QUEUED_TIMEOUT_CHECK_INTERVAL": "30",
    "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "10",
    "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "30",
    "AIRFLOW__DAG_PROCESSOR__PARSING_PROCESSES": "1",
    "AIRFLOW__DAG_PROCESSOR__PRINT_STATS_INTERVAL": "600",
    "AIRFLOW__TRIGGERER__JOB_HEARTBEAT_SEC": "1",
}

# Run as ``python -c DIE_WITH_PARENT <parent pid> <argv...>``: asks Linux to SIGTERM the process when
# its parent dies, however the parent dies (a test runner killed by a CI timeout runs no teardown, and
# the components are in sessions of their own, so signals to its process group miss them), then
# execs the command (the setting survives exec). In a launcher, not a preexec_fn: forking a process
# with threads (simulator, moto) and running Python before exec can deadlock.
DIE_WITH_PARENT = (
    "import ctypes, os, signal, sys\n"
    "if sys.platform.startswith('linux'):\n"
    "    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)\n"
    "    if os.getppid() != int(sys.argv[1]):\n"
    "        sys.exit('parent already gone')\n"
    "os.execv(sys.argv[2], sys.argv[2:])\n"
)


def tail(path: Path, lines: int = 40) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return f"({path} unreadable)"
    return "\n".join(text.splitlines()[-lines:])


def sqlalchemy_url(dsn: str) -> str:
    """A libpq DSN (URL or ``key=value`` form) as a SQLAlchemy URL for psycopg 3 (``postgresql+psycopg://``)."""
    from psycopg.conninfo import conninfo_to_dict
    from sqlalchemy.engine import URL

    if dsn.startswith("postgresql+"):
        return dsn
    params = conninfo_to_dict(dsn)
    url = URL.create(
        "postgresql+psycopg",
        username=params.get("user"),
        password=params.get("password"),
        host=params.get("host"),
        port=int(params["port"]) if params.get("port") else None,
        database=params.get("dbname"),
    )
    return url.render_as_string(hide_password=False)


# --- the components ----------------------------------------------------------------------------


@dataclass
class _Component:
    name: str
    argv: list[str]
    log_path: Path
    process: subprocess.Popen | None = None
    handle: Any = None


@dataclass
class LocalAirflow:
    """Airflow's components on loopback with LocalExecutor and a PostgreSQL metadata database.

    ``env`` is the environment the components share (e.g. from :func:`airflow_env`); this class adds
    the metadata database, executor, secrets, API server address and auth settings to a copy of it.
    ``extra_env`` wins over everything (e.g. ``AIRFLOW__CORE__MAX_TASK_RETRY_DELAY``, or another
    executor: :mod:`rafay_devkit.celery_topology`); ``component_args`` are appended to a component's
    command line.
    """

    airflow_home: Path
    env: dict[str, str]
    parallelism: int = 4
    metadata_dsn: str | None = None
    api_port: int | None = None
    components: tuple[str, ...] = DEFAULT_COMPONENTS
    pool_slots: int = 8
    username: str = "admin"
    password: str | None = None
    fast: bool = True
    extra_env: dict[str, str] = field(default_factory=dict)
    start_timeout: float = 240.0
    # Extra command-line arguments per component, e.g. {"triggerer": ["--skip-serve-logs"]}.
    component_args: dict[str, list[str]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.airflow_home = Path(self.airflow_home)
        self.password = self.password or secrets.token_urlsafe(12)
        self.api_port = self.api_port or free_port()
        self.instance_id = uuid.uuid4().hex
        self.log_dir = self.airflow_home / "components"
        self._pg: EmbeddedPostgres | None = None
        self._components: dict[str, _Component] = {}
        self._client: AirflowClient | None = None
        self._started = False
        self.full_env: dict[str, str] = {}

    # addresses

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    @property
    def log_files(self) -> dict[str, Path]:
        return {name: c.log_path for name, c in self._components.items()}

    @property
    def client(self) -> AirflowClient:
        if self._client is None:
            assert self.password is not None
            self._client = AirflowClient(self.url, self.username, self.password)
        return self._client

    # lifecycle

    def __enter__(self) -> LocalAirflow:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> LocalAirflow:
        if self._started:
            return self
        self._started = True
        atexit.register(self.stop)
        try:
            self._start()
        except BaseException:
            self.stop()
            raise
        return self

    def _start(self) -> None:
        self.airflow_home.mkdir(parents=True, exist_ok=True)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        if not self.metadata_dsn:
            self._pg = EmbeddedPostgres()  # own temp root: the server user must be able to reach it
            self._pg.start()
            self.metadata_dsn = self._pg.create_database("airflow")
        self.full_env = self._build_env()
        self.cli("db", "migrate", timeout=600)
        self.cli("pools", "set", RAFAY_POOL, str(self.pool_slots), "Concurrent Rafay extraction tasks")
        argv = {
            "api-server": ["api-server", "--host", "127.0.0.1", "--port", str(self.api_port)],
            # Airflow's log server binds every interface and takes no host setting, so it is not
            # started: on one host the api-server reads the task and trigger logs from local files.
            "scheduler": ["scheduler", "--skip-serve-logs"],
            "dag-processor": ["dag-processor"],
            "triggerer": ["triggerer", "--skip-serve-logs"],
        }
        for name in self.components:
            self._spawn(name, argv[name] + list(self.component_args.get(name, ())))
        self.wait_healthy()

    def _build_env(self) -> dict[str, str]:
        from cryptography.fernet import Fernet

        env = dict(self.env)
        env.update(FAST_SETTINGS if self.fast else {})
        secrets_file = self.airflow_home / "simple_auth_manager_passwords.json"
        fd = os.open(secrets_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            json.dump({self.username: self.password}, handle)
        dsn = sqlalchemy_url(self.metadata_dsn or "")
        env.update(
            {
                "AIRFLOW_HOME": str(self.airflow_home),
                MARKER_VAR: self.instance_id,
                "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": dsn,
                "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
                "AIRFLOW__CORE__PARALLELISM": str(self.parallelism),
                "AIRFLOW__CORE__FERNET_KEY": Fernet.generate_key().decode(),
                "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "True",
                "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
                # One secret and one execution API URL for every component (compose: same).
                "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_urlsafe(32),
                "AIRFLOW__API__SECRET_KEY": secrets.token_urlsafe(32),
                "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{self.url}/execution/",
                "AIRFLOW__API__HOST": "127.0.0.1",
                "AIRFLOW__API__PORT": str(self.api_port),
                "AIRFLOW__API__BASE_URL": f"{self.url}/",
                "AIRFLOW__API__WORKERS": "1",
                "AIRFLOW__CORE__AUTH_MANAGER": SIMPLE_AUTH_MANAGER,
                "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{self.username}:admin",
                "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(secrets_file),
                "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "False",
                # Loopback ports of their own, so two instances (or a developer's Airflow) never clash.
                "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port()),
                "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(free_port()),
                "AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK": "False",
                "AIRFLOW__LOGGING__BASE_LOG_FOLDER": env.get(
                    "AIRFLOW__LOGGING__BASE_LOG_FOLDER", str(self.airflow_home / "logs")
                ),
            }
        )
        env.update(self.extra_env)
        return env

    def cli(self, *args: str, timeout: float = 300, check: bool = True) -> subprocess.CompletedProcess:
        """``airflow <args>`` with the components' environment, output captured (and logged to ``cli.log``)."""
        if not self.full_env:
            raise LocalAirflowError("LocalAirflow.cli() before start()")
        proc = subprocess.run(
            [airflow_bin(), *args], env=self.full_env, capture_output=True, text=True, timeout=timeout,
            start_new_session=True,
        )
        with (self.log_dir / "cli.log").open("a") as handle:
            handle.write(f"$ airflow {' '.join(args)}  -> exit {proc.returncode}\n{proc.stdout}{proc.stderr}\n")
        if check and proc.returncode != 0:
            raise LocalAirflowError(
                f"airflow {' '.join(args)} exited {proc.returncode}:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
            )
        return proc

    def _spawn(self, name: str, args: list[str]) -> None:
        log_path = self.log_dir / f"{name}.log"
        handle = log_path.open("ab")
        process = subprocess.Popen(
            [sys.executable, "-c", DIE_WITH_PARENT, str(os.getpid()), airflow_bin(), *args],
            env=self.full_env, cwd=self.airflow_home, stdin=subprocess.DEVNULL,
            stdout=handle, stderr=subprocess.STDOUT, start_new_session=True,
        )
        self._components[name] = _Component(name, args, log_path, process, handle)

    def check_alive(self) -> None:
        """Raise, with the tail of its log, if a component has exited."""
        for component in self._components.values():
            if component.process is not None and component.process.poll() is not None:
                raise LocalAirflowError(
                    f"airflow {component.name} exited with {component.process.returncode}; "
                    f"{component.log_path}:\n{tail(component.log_path)}"
                )

    def wait_healthy(self, timeout: float | None = None) -> dict:
        """Until the API answers and reports every started component healthy."""
        keys = {"scheduler": "scheduler", "dag-processor": "dag_processor", "triggerer": "triggerer"}
        wanted = [keys[c] for c in self.components if c in keys]

        def probe() -> dict | None:
            self.check_alive()
            try:
                health = self.client.health()
            except (requests.RequestException, ValueError):
                return None
            ok = health.get("metadatabase", {}).get("status") == "healthy" and all(
                (health.get(k) or {}).get("status") == "healthy" for k in wanted
            )
            return health if ok else None

        return wait_for(probe, timeout=timeout or self.start_timeout, interval=1.0,
                        what=f"Airflow at {self.url} to report {wanted} healthy", on_timeout=self._log_tails)

    def _log_tails(self) -> str:
        return "".join(f"\n--- {p} ---\n{tail(p, 25)}" for p in self.log_files.values())

    def wait_for_dag(self, dag_id: str = DAG_ID, timeout: float = 180) -> dict:
        """Until the dag-processor has parsed ``dag_id``; fails fast on an import error for it."""

        def probe() -> dict | None:
            self.check_alive()
            dag = self.client.dag(dag_id)
            if dag:
                return dag
            errors = [e for e in self.client.import_errors() if Path(e.get("filename", "")).stem == dag_id]
            if errors:
                raise LocalAirflowError(f"import error in {errors[0].get('filename')}:\n{errors[0].get('stack_trace')}")
            return None

        return wait_for(probe, timeout=timeout, interval=1.0, what=f"DAG {dag_id} to be parsed",
                        on_timeout=self._log_tails)

    def own_processes(self) -> list[Any]:
        """Running processes started by this instance: the components, their descendants, and any
        process carrying this instance's marker in its environment (detached task processes)."""
        found: dict[int, Any] = {}
        for component in self._components.values():
            if component.process is not None and component.process.poll() is None:
                found.update(_process_tree(component.process.pid))
        found.update(_marked_processes(self.instance_id, skip={*found, os.getpid()}))
        return [proc for proc in found.values() if _is_alive(proc)]

    def stop(self, timeout: float = 30.0) -> None:
        """SIGTERM each component's process group (scheduler last, so it can end its workers), then
        SIGKILL whatever of this instance is still running; then the metadata PostgreSQL."""
        leftovers = self.own_processes() if self._components else []
        order = [n for n in ("triggerer", "dag-processor", "scheduler", "api-server") if n in self._components]
        self._stop_components(order, timeout)
        _kill_all([*leftovers, *self.own_processes()])
        for component in self._components.values():
            if component.handle is not None:
                component.handle.close()
                component.handle = None
        for component in self._components.values():
            component.process = None
        if self._pg is not None:
            self._pg.stop()
            self._pg = None
        if self._client is not None:
            self._client.session.close()
        atexit.unregister(self.stop)

    def _stop_components(self, order: list[str], timeout: float) -> None:
        """SIGTERM the process groups in ``order``, wait up to ``timeout`` s in all, SIGKILL the groups."""
        for name in order:
            process = self._components[name].process
            if process is not None and process.poll() is None:
                _signal_group(process.pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for name in order:
            process = self._components[name].process
            if process is not None:
                _wait_quietly(process, max(0.1, deadline - time.monotonic()))
        for name in order:
            process = self._components[name].process
            if process is not None:
                _signal_group(process.pid, signal.SIGKILL)
                _wait_quietly(process, 10)

    # conveniences for the billing DAG

    def unpause(self, dag_id: str = DAG_ID) -> dict:
        return self.client.unpause(dag_id)

    def backfill(self, from_date: str, to_date: str, dag_id: str = DAG_ID, *extra: str) -> subprocess.CompletedProcess:
        """``airflow backfill create --dag-id D --from-date F --to-date T [extra]`` (the scheduler runs it)."""
        return self.cli("backfill", "create", "--dag-id", dag_id, "--from-date", from_date, "--to-date", to_date,
                        *extra)


def _signal_group(pid: int, sig: int) -> None:
    """Signal the process group led by ``pid``; gone already (or not ours any more) is fine."""
    try:
        os.killpg(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def _wait_quietly(process: subprocess.Popen, timeout: float) -> None:
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        pass


def _process_tree(pid: int) -> dict[int, Any]:
    """The process ``pid`` and all its descendants (psutil processes by pid); empty once it is gone."""
    import psutil

    try:
        parent = psutil.Process(pid)
        return {p.pid: p for p in [parent, *parent.children(recursive=True)]}
    except psutil.NoSuchProcess:
        return {}


def _marked_processes(instance_id: str, skip: set[int]) -> dict[int, Any]:
    """Processes (outside ``skip``) whose environment carries ``MARKER_VAR=instance_id``."""
    import psutil

    found: dict[int, Any] = {}
    for proc in psutil.process_iter(["pid"]):
        if proc.pid in skip:
            continue
        try:
            if proc.environ().get(MARKER_VAR) == instance_id:
                found[proc.pid] = proc
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess, OSError):
            continue
    return found


def _is_alive(proc: Any) -> bool:
    import psutil

    try:
        return proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _kill_all(processes: list[Any]) -> None:
    """SIGKILL each process (once per pid) and reap them, waiting at most 10 s."""
    import psutil

    survivors = {p.pid: p for p in processes}
    for proc in survivors.values():
        try:
            proc.kill()
        except psutil.NoSuchProcess:
            pass
    psutil.wait_procs(list(survivors.values()), timeout=10)


# --- make airflow ------------------------------------------------------------------------------

LOCAL_DIR = work_dir(".local") / "airflow"


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m rafay_devkit.local_airflow",
        description="A local Airflow (UI + scheduler + dag-processor + triggerer) wired to the Rafay simulator.",
    )
    parser.add_argument("--port", type=int, default=8080, help="UI / API port (default %(default)s; a free one if taken)")
    parser.add_argument("--orgs", type=int, default=12, help="simulated organizations (default %(default)s)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--parallelism", type=int, default=4, help="LocalExecutor task slots (default %(default)s)")
    parser.add_argument("--home", type=Path, default=LOCAL_DIR, help="state directory, wiped at start (default %(default)s)")
    parser.add_argument("--username", default="admin")
    parser.add_argument("--password", default=None, help="UI password (default: generated, printed)")
    return parser.parse_args(argv)


def _port_free(port: int) -> bool:
    import socket

    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds: TIME_WAIT is fine
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def main(argv: list[str] | None = None) -> int:
    from rafay_simulator import RafaySimulator, SimulatorConfig

    args = _parse_args(argv)
    home: Path = args.home.resolve()
    shutil.rmtree(home, ignore_errors=True)
    home.mkdir(parents=True)
    port = args.port if _port_free(args.port) else free_port()
    def _on_signal(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)  # also when started with SIGINT ignored (a background job)
    print(f"Local Airflow for {DAG_ID} (state under {home}) - starting, about a minute ...", flush=True)
    sim = RafaySimulator(SimulatorConfig(seed=args.seed, orgs=args.orgs, now=None)).start()
    pg: EmbeddedPostgres | None = None
    airflow: LocalAirflow | None = None
    try:
        pg = EmbeddedPostgres()  # a temp root of its own (the server runs as an unprivileged user)
        pg.start()
        logins = pg.create_billing_database("billing")
        billing_dsn = logins.admin
        metadata_dsn = pg.create_database("airflow")
        env = airflow_env(
            home / "airflow",
            rafay_url=sim.url,
            rafay_api_key=sim.api_key,
            billing_dsn=logins.writer,
            billing_owner_dsn=logins.owner,
            billing_reader_dsn=logins.reader,
            data_uri=(home / "billing-data").as_uri(),
            price_book_uri=demo_price_book().as_uri(),
        )
        print(f"  Rafay simulator ({args.orgs} orgs): {sim.url}", flush=True)
        print(f"  Billing database: {billing_dsn}; connections billing_postgres_owner, billing_postgres and "
              f"billing_postgres_reader log in as {logins.owner}, {logins.writer}, {logins.reader}", flush=True)
        print("  Airflow: migrating the metadata database, starting api-server, scheduler, dag-processor, "
              "triggerer ...", flush=True)
        airflow = LocalAirflow(
            home / "airflow", env, parallelism=args.parallelism, metadata_dsn=metadata_dsn, api_port=port,
            username=args.username, password=args.password,
        ).start()
        airflow.wait_for_dag(DAG_ID)
        today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
        example_conf = {
            "window_start": f"{today - timedelta(days=3):%Y-%m-%dT%H:%M:%SZ}",
            "window_end": f"{today - timedelta(days=2):%Y-%m-%dT%H:%M:%SZ}",
        }
        print(
            "\n"
            f"Airflow UI:   {airflow.url}\n"
            f"Login:        user {airflow.username!r}, password {airflow.password!r}\n"
            f"Component logs: {airflow.log_dir}   Task logs: {env['AIRFLOW__LOGGING__BASE_LOG_FOLDER']}\n"
            f"Landing root: {home / 'billing-data'}   Billing DB: {billing_dsn}\n"
            "\n"
            "What to click:\n"
            f"  1. Dags -> {DAG_ID}. It starts paused: switch the toggle on and the scheduler bills the\n"
            "     last complete UTC day at once (runs wait while the DAG is paused). Trigger opens a form\n"
            "     with the logical date pre-filled (now): such a run bills the last complete UTC day before\n"
            "     it (its data interval). For another window fill window_start and window_end, e.g.\n"
            f"     {json.dumps(example_conf)}\n"
            "     and, to bill only some organizations, their Rafay org ids (one per line, e.g. ujzde8g).\n"
            "  2. Open the run (Runs tab, or a square in the grid) and watch the tasks go green.\n"
            "  3. Click extract_org: its mapped instances are named by organization; pick one.\n"
            "  4. Logs tab: the per-org summary line 'org <id> (<name>): N profiles, M instances, ...';\n"
            "     check_run's log says whether the window billed cleanly; rate_window's log has the\n"
            "     charges per org in a folded group.\n"
            f"  5. Billing (left menu, or {airflow.url}/billing/): totals per org and currency with their\n"
            "     runs, daily charges and GPU-hours charts, open exceptions, report downloads, invoices.\n"
            "\n"
            "Ctrl-C stops everything.",
            flush=True,
        )
        while True:
            time.sleep(2)
            airflow.check_alive()
    except KeyboardInterrupt:
        print("\nStopping ...", flush=True)
        return 0
    except LocalAirflowError as exc:
        print(f"\nLocal Airflow failed: {exc}", file=sys.stderr, flush=True)
        return 1
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        if airflow is not None:
            airflow.stop()
        if pg is not None:
            pg.stop()
        sim.stop()
        signal.signal(signal.SIGINT, signal.default_int_handler)
        print("Stopped: Airflow components, PostgreSQL and the simulator.", flush=True)


if __name__ == "__main__":
    sys.exit(main())


__all__ = [
    "DAG_ID",
    "DEFAULT_COMPONENTS",
    "FINAL_RUN_STATES",
    "MARKER_VAR",
    "RAFAY_POOL",
    "AirflowClient",
    "LocalAirflow",
    "LocalAirflowError",
    "iter_task_logs",
    "main",
    "sqlalchemy_url",
    "wait_for",
]
