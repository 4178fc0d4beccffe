"""Environment for running the billing DAG locally: an isolated Airflow home, the two connections
and the Variables of the contract, as ``AIRFLOW_*`` environment variables (nothing stored), or the
connections in a JSON file read through Airflow's secrets backend ``LocalFilesystemBackend`` (as
docker-compose.yaml mounts them: a secret store rather than variables)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

from psycopg.conninfo import conninfo_to_dict

from rafay_billing.settings import ENV_API_KEY, ENV_CONSOLE_URL
from rafay_devkit.project import dags_folder as default_dags_folder
from rafay_provider.settings import (
    BILLING_CONN_ID,
    BILLING_DAG_ID,
    BILLING_OWNER_CONN_ID,
    BILLING_READER_CONN_ID,
    RAFAY_CONN_ID,
)


def isolated_airflow_env(airflow_home: Path, dags_folder: Path | None = None) -> dict[str, str]:
    """The ``AIRFLOW__*`` settings of a throw-away Airflow home: SQLite metastore, no examples, this
    project's DAGs. The one place this is written (tests, the devkit and the benchmarks use it).

    The plugins folder is an empty directory of the home: the provider and its plugin come from the
    installed package's entry points, never from files Airflow would import as top-level modules.
    """
    return {
        "AIRFLOW_HOME": str(airflow_home),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
        "AIRFLOW__CORE__DAGS_FOLDER": str(dags_folder or default_dags_folder()),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(airflow_home / "plugins"),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{airflow_home}/airflow.db",
        "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(airflow_home / "logs"),
    }


def airflow_bin() -> str:
    return str(Path(sys.executable).parent / "airflow")


SECRETS_BACKEND = "airflow.secrets.local_filesystem.LocalFilesystemBackend"
# The connections the billing tasks read; with a connections file, none of them is an AIRFLOW_CONN_* variable.
BILLING_CONN_IDS = (RAFAY_CONN_ID, BILLING_CONN_ID, BILLING_OWNER_CONN_ID, BILLING_READER_CONN_ID)


def postgres_connection(dsn: str) -> dict:
    params = conninfo_to_dict(dsn)
    return {
        "conn_type": "postgres",
        "host": params.get("host", "127.0.0.1"),
        "port": int(params.get("port", 5432)),
        "login": params.get("user", "postgres"),
        "password": params.get("password", ""),
        "schema": params.get("dbname", "postgres"),
    }


def postgres_connection_json(dsn: str) -> str:
    return json.dumps(postgres_connection(dsn))


def conn_env_name(conn_id: str) -> str:
    return f"AIRFLOW_CONN_{conn_id.upper()}"


def secrets_backend_env(connections_file: Path) -> dict[str, str]:
    """``[secrets] backend`` = :data:`SECRETS_BACKEND` reading connections from ``connections_file``."""
    return {
        "AIRFLOW__SECRETS__BACKEND": SECRETS_BACKEND,
        "AIRFLOW__SECRETS__BACKEND_KWARGS": json.dumps({"connections_file_path": str(connections_file)}),
    }


def write_connections_file(path: Path, connections: dict[str, dict]) -> Path:
    """``{conn_id: {conn_type, host, ..., extra}}`` as LocalFilesystemBackend reads it; owner-only (0600),
    like a mounted secret (the backend itself does not check permissions)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        json.dump(connections, handle, indent=2)
    os.chmod(path, 0o600)
    return path


def airflow_env(
    airflow_home: Path,
    *,
    rafay_url: str,
    rafay_api_key: str,
    billing_dsn: str,
    data_uri: str,
    price_book_uri: str | None = None,
    rafay_extra: dict | None = None,
    base: dict[str, str] | None = None,
    billing_start_date: str | None = None,
    dags_folder: Path | None = None,
    billing_owner_dsn: str | None = None,
    billing_reader_dsn: str | None = None,
    connections_file: Path | None = None,
) -> dict[str, str]:
    """Everything ``airflow`` needs to run this project's DAG against the given services.

    ``connections_file``: write the connections there (JSON, 0600) and point Airflow's secrets backend
    (``LocalFilesystemBackend``) at it instead of setting ``AIRFLOW_CONN_*`` variables, as
    docker-compose.yaml does with its mounted secret.

    ``billing_dsn`` is the writer's connection ``billing_postgres``; ``billing_owner_dsn`` and
    ``billing_reader_dsn``, when given, are ``billing_postgres_owner`` and ``billing_postgres_reader``
    (else those parts fall back to ``billing_postgres``).

    ``billing_start_date`` (``[rafay_billing] billing_start_date``, the DAG's catch-up start) defaults
    to yesterday, UTC: a local scheduler then queues one catch-up run, not a month of them.
    """
    if billing_start_date is None:
        billing_start_date = (datetime.now(UTC) - timedelta(days=1)).date().isoformat()
    env = dict(os.environ if base is None else base)
    for var in (ENV_CONSOLE_URL, ENV_API_KEY, "DAYS"):
        env.pop(var, None)
    rafay: dict = {"conn_type": "rafay", "host": rafay_url, "password": rafay_api_key}
    if rafay_extra:
        rafay["extra"] = json.dumps(rafay_extra)
    connections = {RAFAY_CONN_ID: rafay, BILLING_CONN_ID: postgres_connection(billing_dsn)}
    for conn_id, dsn in ((BILLING_OWNER_CONN_ID, billing_owner_dsn), (BILLING_READER_CONN_ID, billing_reader_dsn)):
        if dsn:
            connections[conn_id] = postgres_connection(dsn)
    env.update(
        {
            **isolated_airflow_env(airflow_home, dags_folder),
            "AIRFLOW_VAR_BILLING_DATA_URI": data_uri,
            "AIRFLOW__RAFAY_BILLING__BILLING_START_DATE": billing_start_date,
        }
    )
    for conn_id in BILLING_CONN_IDS:
        env.pop(conn_env_name(conn_id), None)
    if connections_file is not None:
        write_connections_file(connections_file, connections)
        env.update(secrets_backend_env(connections_file))
    else:
        for key in ("AIRFLOW__SECRETS__BACKEND", "AIRFLOW__SECRETS__BACKEND_KWARGS"):
            env.pop(key, None)
        env.update({conn_env_name(conn_id): json.dumps(conn) for conn_id, conn in connections.items()})
    if price_book_uri:
        env["AIRFLOW_VAR_BILLING_PRICE_BOOK_URI"] = price_book_uri
    else:
        env.pop("AIRFLOW_VAR_BILLING_PRICE_BOOK_URI", None)
    return env


def migrate_metadata_db(env: dict[str, str]) -> None:
    """``airflow db migrate`` (SQLite unless the env says otherwise)."""
    Path(env["AIRFLOW_HOME"]).mkdir(parents=True, exist_ok=True)
    subprocess.run([airflow_bin(), "db", "migrate"], env=env, check=True, capture_output=True, text=True)


def dags_test(
    env: dict[str, str], logical_date: str, conf: dict | None = None, *, dag_id: str = BILLING_DAG_ID
) -> subprocess.CompletedProcess:
    """``airflow dags test <dag_id> <date> [-c conf]`` (the daily billing DAG unless told), output captured.

    Run through :mod:`rafay_devkit.dags_test_runner`: the same command, without building the Task
    Execution API's older versions in every run."""
    cmd = [sys.executable, "-m", "rafay_devkit.dags_test_runner", "dags", "test", dag_id, logical_date]
    if conf:
        cmd += ["-c", json.dumps(conf)]
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=900)
