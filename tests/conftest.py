"""Shared test set-up: an isolated Airflow home, a real PostgreSQL, and the Rafay simulator fixtures.

Airflow reads its configuration at import time, so the environment is set here, before any test
module imports Airflow.
"""

from __future__ import annotations

import os
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
_AIRFLOW_HOME = Path(tempfile.mkdtemp(prefix="rafay-test-airflow-"))
os.environ.update(
    {
        "AIRFLOW_HOME": str(_AIRFLOW_HOME),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(REPO / "plugins"),
        "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{_AIRFLOW_HOME}/airflow.db",
        "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(_AIRFLOW_HOME / "logs"),
    }
)
for _var in ("RAFAY_CONSOLE_URL", "RAFAY_DEFAULT_API_KEY", "DAYS"):
    os.environ.pop(_var, None)

pytest_plugins = ["rafay_simulator.pytest_plugin"]


@pytest.fixture(scope="session")
def airflow_home() -> Path:
    return _AIRFLOW_HOME


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str]:
    """DSN of a PostgreSQL server for the session: ``BILLING_TEST_DATABASE_URL`` or an embedded one."""
    external = os.environ.get("BILLING_TEST_DATABASE_URL")
    if external:
        yield external
        return
    from rafay_devkit.postgres import EmbeddedPostgres

    server = EmbeddedPostgres()
    server.start()
    try:
        yield server.dsn()
    finally:
        server.stop()


def create_database(server_dsn: str, prefix: str) -> str:
    """Create a uniquely named database on the server; returns its DSN."""
    import psycopg
    from psycopg.conninfo import conninfo_to_dict, make_conninfo

    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(server_dsn, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    params = conninfo_to_dict(server_dsn)
    params["dbname"] = name
    return make_conninfo(**params)


def drop_database(server_dsn: str, dsn: str) -> None:
    import psycopg
    from psycopg.conninfo import conninfo_to_dict

    name = conninfo_to_dict(dsn)["dbname"]
    with psycopg.connect(server_dsn, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def billing_dsn(postgres_server: str) -> Iterator[str]:
    """A fresh, empty database for one test (dropped afterwards)."""
    dsn = create_database(postgres_server, "billing_test")
    yield dsn
    drop_database(postgres_server, dsn)


@pytest.fixture
def pg_conn(billing_dsn: str) -> Iterator[object]:
    """A psycopg 3 connection to a fresh database."""
    import psycopg

    with psycopg.connect(billing_dsn) as conn:
        yield conn
