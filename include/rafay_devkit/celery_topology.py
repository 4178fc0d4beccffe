"""docker-compose.yaml's production topology natively: CeleryExecutor with a real Redis broker, two
Celery workers that behave like two hosts, the landing root and the task logs on S3.

:class:`CeleryTopology` starts, all on 127.0.0.1:

- ``redis-server`` (:class:`~rafay_devkit.redis_server.RedisServer`, append-only persistence);
- an S3 API (moto in server mode) holding the landing bucket, unless an endpoint is given;
- the api-server, scheduler, dag-processor and triggerer (:class:`~rafay_devkit.local_airflow.LocalAirflow`
  with the compose file's executor, broker and result backend URLs, shared secrets and execution API
  URL, :func:`~rafay_devkit.compose_settings.native_settings`);
- the connections as compose mounts them: files (0600) per Compose secret, read through the secrets
  backend the compose services name (:func:`~rafay_devkit.compose_settings.secrets_backend_settings`),
  no ``AIRFLOW_CONN_*`` variable: the workers read ``billing_connections`` (the Rafay key, the billing
  logins), the other components ``billing_reader_connection`` (the reader's login only; the native
  components share one environment, so the scheduler, dag-processor and triggerer get what the
  api-server gets, never the Rafay key);
- N workers (``airflow celery worker``, the compose worker's command), each with its own
  ``AIRFLOW_HOME``, an empty scratch directory as ``TMPDIR``, its own ``[core] hostname_callable``
  result (:func:`worker_hostname`) and Celery node name, and its own log-server port. No component
  serves logs over HTTP (their log servers bind every interface): task logs go to S3 through Airflow's
  remote logging, as a deployment with worker hosts would, and the api-server reads them from there.

Workers are ready when the compose worker's own health check (``celery inspect ping``) answers.
:meth:`CeleryTopology.kill_worker` loses a worker as a host is lost (SIGKILL of its process group and of
every process it started); :meth:`CeleryTopology.start_worker` brings it back.

``python -m rafay_devkit.celery_topology`` (``make airflow EXECUTOR=celery``) runs it with the Rafay
simulator and an embedded PostgreSQL, prints the UI URL and login, and stops on Ctrl-C.
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rafay_devkit import compose_settings as compose
from rafay_devkit.airflow_env import airflow_bin, airflow_env, conn_env_name, write_connections_file
from rafay_devkit.local_airflow import (
    DAG_ID,
    DIE_WITH_PARENT,
    RAFAY_POOL,
    LocalAirflow,
    LocalAirflowError,
    sqlalchemy_url,
    tail,
    wait_for,
)
from rafay_devkit.postgres import EmbeddedPostgres, free_port
from rafay_devkit.project import demo_price_book, work_dir
from rafay_devkit.redis_server import RedisServer
from rafay_provider.settings import ALERTS_CONN_ID, BILLING_CONN_ID, BILLING_READER_CONN_ID

WORKER_HOSTNAME_VAR = "RAFAY_WORKER_HOSTNAME"
WORKER_MARKER_VAR = "RAFAY_CELERY_WORKER_ID"
HOSTNAME_CALLABLE = "rafay_devkit.celery_topology.worker_hostname"
LOG_PREFIX = "task-logs"
S3_REGION = "us-east-1"


def worker_hostname() -> str:
    """``[core] hostname_callable`` of a native worker: the host name it plays (two workers on one
    machine share the real one, and Airflow records it on every task instance)."""
    import socket

    return os.environ.get(WORKER_HOSTNAME_VAR) or socket.getfqdn()


# --- S3 ------------------------------------------------------------------------------------------


@dataclass
class S3Endpoint:
    """An S3 API (moto on loopback by default) and the credentials every process gets through boto's
    standard environment variables, plus the ``aws_default`` connection remote logging reads with."""

    url: str
    access_key: str = "testing"
    secret_key: str = "testing"
    config_dir: Path | None = None

    def env(self) -> dict[str, str]:
        env = {
            "AWS_ENDPOINT_URL": self.url,
            "AWS_ACCESS_KEY_ID": self.access_key,
            "AWS_SECRET_ACCESS_KEY": self.secret_key,
            "AWS_DEFAULT_REGION": S3_REGION,
            "AWS_EC2_METADATA_DISABLED": "true",
            "AIRFLOW_CONN_AWS_DEFAULT": json.dumps({
                "conn_type": "aws", "login": self.access_key, "password": self.secret_key,
                "extra": {"endpoint_url": self.url, "region_name": S3_REGION},
            }),
        }
        if self.config_dir is not None:  # nothing from the machine's own AWS set-up
            env["AWS_CONFIG_FILE"] = str(self.config_dir / "config")
            env["AWS_SHARED_CREDENTIALS_FILE"] = str(self.config_dir / "credentials")
        return env

    def client(self) -> Any:
        import boto3

        return boto3.client("s3", endpoint_url=self.url, aws_access_key_id=self.access_key,
                            aws_secret_access_key=self.secret_key, region_name=S3_REGION)

    def keys(self, bucket: str, prefix: str = "") -> list[str]:
        pages = self.client().get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
        return [o["Key"] for page in pages for o in page.get("Contents", [])]


class MotoS3:
    """moto's S3 in server mode on 127.0.0.1 (a thread of this process)."""

    def __init__(self, config_dir: Path) -> None:
        from moto.server import ThreadedMotoServer

        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        self.config_dir = config_dir
        self.endpoint: S3Endpoint | None = None

    def start(self) -> S3Endpoint:
        import logging

        logging.getLogger("werkzeug").setLevel(logging.WARNING)  # no line per S3 request on stdout
        self._server.start()
        host, port = self._server.get_host_and_port()
        self.config_dir.mkdir(parents=True, exist_ok=True)
        self.endpoint = S3Endpoint(f"http://{host}:{port}", config_dir=self.config_dir)
        return self.endpoint

    def stop(self) -> None:
        if self.endpoint is not None:
            self._server.stop()
            self.endpoint = None


# --- connections ---------------------------------------------------------------------------------


def connection_secrets(env: dict[str, str], directory: Path) -> tuple[dict[str, str], dict[str, Path]]:
    """``env`` without its billing connections, and one file per Compose secret holding them (what
    :data:`~rafay_devkit.compose_settings.SECRET_CONNECTIONS` says it holds). Connections come from
    ``AIRFLOW_CONN_*`` variables or a LocalFilesystemBackend file the env already names. Without a
    reader login, the reader's secret gets the writer's connection under the reader's id (what the
    fallback would read)."""
    rest = dict(env)
    connections: dict[str, dict] = {}
    raw = rest.pop("AIRFLOW__SECRETS__BACKEND_KWARGS", None)
    rest.pop("AIRFLOW__SECRETS__BACKEND", None)
    source = json.loads(raw).get("connections_file_path") if raw else None
    if source:
        connections.update(json.loads(Path(source).read_text(encoding="utf-8")))
    for conn_id in sorted({i for ids in compose.SECRET_CONNECTIONS.values() for i in ids}):
        # billing_alerts stays in the env as well: the native components share one environment, so the
        # dag-processor and triggerer (compose: their own alerts secret) read it from there
        value = rest.get(conn_env_name(conn_id)) if conn_id == ALERTS_CONN_ID else rest.pop(conn_env_name(conn_id), None)
        if value:
            connections[conn_id] = json.loads(value)
    if BILLING_READER_CONN_ID not in connections and BILLING_CONN_ID in connections:
        fallback = {BILLING_READER_CONN_ID: connections[BILLING_CONN_ID]}
    else:
        fallback = {}
    files = {}
    for name, ids in compose.SECRET_CONNECTIONS.items():
        held = {i: connections[i] for i in ids if i in connections}
        if name != "billing_connections":
            held = held or {i: fallback[i] for i in ids if i in fallback}
        files[name] = write_connections_file(directory / f"{name}.json", held)
    return rest, files


# --- workers -------------------------------------------------------------------------------------


@dataclass
class CeleryWorker:
    """One ``airflow celery worker``: a host of its own (home, scratch dir, host name, log port)."""

    name: str
    home: Path
    log_port: int
    process: subprocess.Popen | None = None
    handle: Any = None
    starts: int = 0

    @property
    def scratch(self) -> Path:
        return self.home / "scratch"

    @property
    def log_path(self) -> Path:
        return self.home / "worker.log"

    @property
    def node(self) -> str:
        return f"celery@{self.name}"

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None


@dataclass
class CeleryTopology:
    """Broker, S3, Airflow's components and ``workers`` Celery workers on loopback (module docstring).

    ``env`` is what the components share (e.g. from :func:`~rafay_devkit.airflow_env.airflow_env`, with
    an ``s3://`` landing root in ``bucket``); ``extra_env`` wins over everything, in every process.
    """

    home: Path
    env: dict[str, str]
    metadata_dsn: str
    bucket: str
    workers: int = 2
    concurrency: int = 1
    s3: S3Endpoint | None = None
    api_port: int | None = None
    username: str = "admin"
    password: str | None = None
    extra_env: dict[str, str] = field(default_factory=dict)
    start_timeout: float = 240.0

    def __post_init__(self) -> None:
        self.home = Path(self.home)
        self.api_port = self.api_port or free_port()
        self.compose = compose.load_compose()
        self.redis = RedisServer(self.home / "redis")
        self._moto: MotoS3 | None = None
        self.airflow: LocalAirflow | None = None
        self.worker_list = [
            CeleryWorker(f"worker-{chr(ord('a') + i)}", self.home / "workers" / f"worker-{chr(ord('a') + i)}",
                         free_port())
            for i in range(self.workers)
        ]
        self.settings: dict[str, str] = {}
        self.worker_secrets: dict[str, str] = {}

    # lifecycle

    def __enter__(self) -> CeleryTopology:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def client(self) -> Any:
        assert self.airflow is not None, "start() first"
        return self.airflow.client

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    def worker(self, name: str) -> CeleryWorker:
        return next(w for w in self.worker_list if w.name == name)

    def start(self) -> CeleryTopology:
        try:
            self._start()
        except BaseException:
            self.stop()
            raise
        return self

    def _start(self) -> None:
        from cryptography.fernet import Fernet

        self.home.mkdir(parents=True, exist_ok=True)
        self.redis.start()
        if self.s3 is None:
            self._moto = MotoS3(self.home / "aws")
            self.s3 = self._moto.start()
        buckets = {b["Name"] for b in self.s3.client().list_buckets().get("Buckets", [])}
        if self.bucket not in buckets:
            self.s3.client().create_bucket(Bucket=self.bucket)
        generated = {
            "AIRFLOW__CORE__FERNET_KEY": Fernet.generate_key().decode(),
            "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_urlsafe(32),
            "AIRFLOW__API__SECRET_KEY": secrets.token_urlsafe(32),
        }
        endpoints = {
            "redis": compose.Endpoint(f"127.0.0.1:{self.redis.port}"),
            "postgres": compose.database_endpoint(sqlalchemy_url(self.metadata_dsn)),
            "airflow-apiserver": compose.Endpoint(f"127.0.0.1:{self.api_port}"),
        }
        self.settings = compose.native_settings(self.compose, secrets=generated, endpoints=endpoints)
        components_env, files = connection_secrets(self.env, self.home / "secrets")
        self.worker_secrets = compose.secrets_backend_settings(self.compose, "airflow-worker", files)
        shared = {
            **self.settings,
            **compose.secrets_backend_settings(self.compose, "airflow-apiserver", files),
            **self.s3.env(),
            # Task logs to S3 (the api-server reads them there), nothing served over HTTP.
            "AIRFLOW__LOGGING__REMOTE_LOGGING": "True",
            "AIRFLOW__LOGGING__REMOTE_BASE_LOG_FOLDER": f"s3://{self.bucket}/{LOG_PREFIX}",
            "AIRFLOW__LOGGING__REMOTE_LOG_CONN_ID": "aws_default",
            "AIRFLOW__CELERY__WORKER_CONCURRENCY": str(self.concurrency),
            **self.extra_env,
        }
        self.airflow = LocalAirflow(
            self.home / "airflow", components_env, parallelism=max(8, self.workers * self.concurrency * 2),
            metadata_dsn=self.metadata_dsn, api_port=self.api_port, username=self.username,
            password=self.password, pool_slots=compose.pool_slots(self.compose, RAFAY_POOL), extra_env=shared,
            start_timeout=self.start_timeout,
        )
        self.password = self.airflow.password
        self.airflow.start()
        for worker in self.worker_list:
            self.start_worker(worker.name, wait=False)
        for worker in self.worker_list:
            self.wait_worker(worker.name)

    def worker_env(self, worker: CeleryWorker) -> dict[str, str]:
        """The components' environment with this worker's host: home, scratch, name, log port."""
        assert self.airflow is not None and self.airflow.full_env, "start() first"
        env = dict(self.airflow.full_env)
        env.update({
            "AIRFLOW_HOME": str(worker.home),
            "AIRFLOW__CORE__PLUGINS_FOLDER": str(worker.home / "plugins"),
            "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(worker.home / "logs"),
            "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(worker.log_port),
            "AIRFLOW__CORE__HOSTNAME_CALLABLE": HOSTNAME_CALLABLE,
            WORKER_HOSTNAME_VAR: worker.name,
            WORKER_MARKER_VAR: f"{self.airflow.instance_id}:{worker.name}",
            "TMPDIR": str(worker.scratch),
            "HOSTNAME": worker.name,  # the compose health check names the node celery@$HOSTNAME
        })
        env.update(self.worker_secrets)  # the compose worker's secret: the Rafay key and the billing logins
        env.update(self.extra_env)
        return env

    def worker_argv(self, worker: CeleryWorker) -> list[str]:
        """The compose worker's command (``celery worker``) with this worker's node name."""
        command = compose.service_command(self.compose, "airflow-worker")
        return [airflow_bin(), *command, "--celery-hostname", worker.node, "--skip-serve-logs",
                "--concurrency", str(self.concurrency)]

    def start_worker(self, name: str, *, wait: bool = True) -> CeleryWorker:
        worker = self.worker(name)
        if worker.alive():
            return worker
        for sub in ("plugins", "logs", "scratch"):
            (worker.home / sub).mkdir(parents=True, exist_ok=True)
        if worker.handle is not None:
            worker.handle.close()
        worker.handle = worker.log_path.open("ab")
        worker.process = subprocess.Popen(
            [sys.executable, "-c", DIE_WITH_PARENT, str(os.getpid()), *self.worker_argv(worker)],
            env=self.worker_env(worker), cwd=worker.home, stdin=subprocess.DEVNULL,
            stdout=worker.handle, stderr=subprocess.STDOUT, start_new_session=True,
        )
        worker.starts += 1
        if wait:
            self.wait_worker(name)
        return worker

    def wait_worker(self, name: str, timeout: float = 180) -> None:
        """Until the compose worker's health check (``celery inspect ping -d celery@$HOSTNAME``) passes."""
        worker = self.worker(name)
        check = compose.healthcheck_shell(self.compose, "airflow-worker")
        env = self.worker_env(worker)
        env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"

        def probe() -> bool:
            if not worker.alive():
                raise LocalAirflowError(f"celery worker {name} exited; {worker.log_path}:\n{tail(worker.log_path)}")
            proc = subprocess.run(["bash", "-c", check], env=env, capture_output=True, text=True, timeout=120,
                                  start_new_session=True)
            return proc.returncode == 0

        wait_for(probe, timeout=timeout, interval=1, what=f"celery worker {name} to answer its health check",
                 on_timeout=lambda: f"; {worker.log_path}:\n{tail(worker.log_path)}")

    def worker_processes(self, name: str) -> list[Any]:
        """Every running process of one worker: its process tree and whatever carries its marker."""
        import psutil

        worker = self.worker(name)
        assert self.airflow is not None
        marker = f"{self.airflow.instance_id}:{name}"
        found: dict[int, Any] = {}
        if worker.alive():
            assert worker.process is not None
            try:
                root = psutil.Process(worker.process.pid)
                found.update({p.pid: p for p in [root, *root.children(recursive=True)]})
            except psutil.NoSuchProcess:
                pass
        for proc in psutil.process_iter(["pid"]):
            try:
                if proc.pid not in found and proc.environ().get(WORKER_MARKER_VAR) == marker:
                    found[proc.pid] = proc
            except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess, OSError):
                continue
        return [p for p in found.values() if _running(p)]

    def kill_worker(self, name: str) -> list[int]:
        """Lose the worker as a host is lost: SIGKILL its process group, then anything it started
        that runs on (task processes in groups of their own). Returns the pids killed."""
        import psutil

        worker = self.worker(name)
        procs = self.worker_processes(name)
        if worker.process is not None:
            try:
                os.killpg(worker.process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        for proc in procs:
            try:
                proc.kill()
            except psutil.NoSuchProcess:
                pass
        psutil.wait_procs(procs, timeout=10)
        if worker.process is not None:
            worker.process.wait(timeout=10)
        return [p.pid for p in procs]

    def stop_worker(self, name: str, timeout: float = 30) -> None:
        """SIGTERM (Celery's warm shutdown), then :meth:`kill_worker` for whatever is left."""
        worker = self.worker(name)
        if worker.alive():
            assert worker.process is not None
            try:
                os.killpg(worker.process.pid, signal.SIGTERM)
                worker.process.wait(timeout=timeout)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                pass
        if self.airflow is not None and self.airflow.full_env:
            self.kill_worker(name)
        if worker.handle is not None:
            worker.handle.close()
            worker.handle = None

    def stop(self) -> None:
        """Workers, then Airflow's components, then Redis and the S3 server."""
        for worker in self.worker_list:
            self.stop_worker(worker.name)
        if self.airflow is not None:
            self.airflow.stop()
        self.redis.stop()
        if self._moto is not None:
            self._moto.stop()

    # checks

    def own_processes(self) -> list[Any]:
        """Every running process this topology started (Redis, components, workers, their tasks)."""
        import psutil

        found: dict[int, Any] = {}
        if self.airflow is not None:
            found.update({p.pid: p for p in self.airflow.own_processes()})
        for worker in self.worker_list:
            found.update({p.pid: p for p in self.worker_processes(worker.name)})
        if self.redis.process is not None and self.redis.process.poll() is None:
            try:
                root = psutil.Process(self.redis.process.pid)
                found.update({p.pid: p for p in [root, *root.children(recursive=True)]})
            except psutil.NoSuchProcess:
                pass
        return [p for p in found.values() if _running(p)]

    def non_loopback_listeners(self) -> list[str]:
        """``pid name addr:port`` of every listening socket of this topology (and of this process,
        which runs moto) that is bound to anything but a loopback address."""
        import psutil

        bad = []
        for proc in [*self.own_processes(), psutil.Process()]:
            try:
                conns = proc.net_connections(kind="inet")
                pname = proc.name()
            except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
                continue
            for conn in conns:
                if conn.status != psutil.CONN_LISTEN and conn.raddr:
                    continue
                if conn.status not in (psutil.CONN_LISTEN, psutil.CONN_NONE):
                    continue
                if not ipaddress.ip_address(conn.laddr.ip.split("%")[0]).is_loopback:
                    bad.append(f"{proc.pid} {pname} {conn.laddr.ip}:{conn.laddr.port}")
        return bad


def _running(proc: Any) -> bool:
    import psutil

    try:
        return bool(proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE)
    except psutil.NoSuchProcess:
        return False


# --- make airflow EXECUTOR=celery ----------------------------------------------------------------

LOCAL_DIR = work_dir(".local") / "airflow-celery"
BUCKET = "rafay-billing-landing"


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m rafay_devkit.celery_topology",
        description="docker-compose.yaml's Celery topology on loopback: Redis, S3 (moto), Airflow's "
                    "components and two Celery workers, wired to the Rafay simulator.",
    )
    parser.add_argument("--workers", type=int, default=2, help="Celery workers (default %(default)s)")
    parser.add_argument("--concurrency", type=int, default=2, help="task slots per worker (default %(default)s)")
    parser.add_argument("--orgs", type=int, default=12, help="simulated organizations (default %(default)s)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--home", type=Path, default=LOCAL_DIR, help="state directory, wiped at start (default %(default)s)")
    parser.add_argument("--username", default="admin")
    parser.add_argument("--password", default=None, help="UI password (default: generated, printed)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    from rafay_simulator import RafaySimulator, SimulatorConfig

    args = _parse_args(argv)
    home: Path = args.home.resolve()
    shutil.rmtree(home, ignore_errors=True)
    home.mkdir(parents=True)

    def _on_signal(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
    print(f"Celery topology for {DAG_ID} (state under {home}) - starting, about a minute ...", flush=True)
    sim = RafaySimulator(SimulatorConfig(seed=args.seed, orgs=args.orgs, now=None)).start()
    pg: EmbeddedPostgres | None = None
    topo: CeleryTopology | None = None
    try:
        pg = EmbeddedPostgres()
        pg.start()
        logins = pg.create_billing_database("billing")
        billing_dsn = logins.admin
        metadata_dsn = pg.create_database("airflow")
        env = airflow_env(home / "airflow", rafay_url=sim.url, rafay_api_key=sim.api_key, billing_dsn=logins.writer,
                          billing_owner_dsn=logins.owner, billing_reader_dsn=logins.reader,
                          data_uri=f"s3://{BUCKET}/billing", price_book_uri=demo_price_book().as_uri())
        topo = CeleryTopology(home, env, metadata_dsn, BUCKET, workers=args.workers, concurrency=args.concurrency,
                              username=args.username, password=args.password).start()
        assert topo.airflow is not None and topo.s3 is not None
        topo.airflow.wait_for_dag(DAG_ID)
        print(
            "\n"
            f"Airflow UI:   {topo.url}\n"
            f"Login:        user {topo.username!r}, password {topo.password!r}\n"
            f"Broker:       {topo.redis.url} (append-only file under {topo.redis.directory})\n"
            f"Workers:      {', '.join(f'{w.name} ({w.home})' for w in topo.worker_list)}\n"
            f"S3 (moto):    {topo.s3.url}  landing s3://{BUCKET}/billing, task logs s3://{BUCKET}/{LOG_PREFIX}\n"
            f"Billing DB:   {billing_dsn}\n"
            f"Rafay simulator ({args.orgs} orgs): {sim.url}\n"
            "\n"
            f"Unpause {DAG_ID} in the UI: the scheduler bills the last complete UTC day, its extract_org\n"
            "tasks spread over the workers (the task instance's Host field names the worker).\n"
            "Ctrl-C stops everything.",
            flush=True,
        )
        while True:
            time.sleep(2)
            topo.airflow.check_alive()
            for worker in topo.worker_list:
                if not worker.alive():
                    raise LocalAirflowError(f"celery worker {worker.name} exited; {worker.log_path}")
    except KeyboardInterrupt:
        print("\nStopping ...", flush=True)
        return 0
    except LocalAirflowError as exc:
        print(f"\nCelery topology failed: {exc}", file=sys.stderr, flush=True)
        return 1
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        if topo is not None:
            topo.stop()
        if pg is not None:
            pg.stop()
        sim.stop()
        signal.signal(signal.SIGINT, signal.default_int_handler)
        print("Stopped: workers, Airflow components, Redis, S3, PostgreSQL and the simulator.", flush=True)


if __name__ == "__main__":
    sys.exit(main())
