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


@pytest.fixture
def billing_dsn(postgres_server: str) -> Iterator[str]:
    """A fresh, empty database for one test (dropped afterwards)."""
    import psycopg
    from psycopg.conninfo import conninfo_to_dict, make_conninfo

    name = f"billing_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(postgres_server, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    params = conninfo_to_dict(postgres_server)
    params["dbname"] = name
    yield make_conninfo(**params)
    with psycopg.connect(postgres_server, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def pg_conn(billing_dsn: str) -> Iterator[object]:
    """A psycopg 3 connection to a fresh database."""
    import psycopg

    with psycopg.connect(billing_dsn) as conn:
        yield conn
