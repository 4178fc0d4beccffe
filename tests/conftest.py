"""Shared test set-up: an isolated Airflow home, a real PostgreSQL, and the Rafay simulator fixtures.

Airflow reads its configuration at import time, so the environment is set here, before any test
module imports Airflow.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from rafay_devkit.airflow_env import isolated_airflow_env
from rafay_devkit.project import DAGS_FOLDER_ENV
from tests.support.db import create_database, drop_database
from tests.support.paths import DAGS_FOLDER

_AIRFLOW_HOME = Path(tempfile.mkdtemp(prefix="rafay-test-airflow-"))
os.environ.update(isolated_airflow_env(_AIRFLOW_HOME, DAGS_FOLDER))
os.environ[DAGS_FOLDER_ENV] = str(DAGS_FOLDER)  # the devkit's runners use this checkout's DAGs
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
    dsn = create_database(postgres_server, "billing_test")
    yield dsn
    drop_database(postgres_server, dsn)


@pytest.fixture
def pg_conn(billing_dsn: str) -> Iterator[object]:
    """A psycopg 3 connection to a fresh database."""
    import psycopg

    with psycopg.connect(billing_dsn) as conn:
        yield conn


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--shard", default=None, metavar="I/N",
        help="run only shard I of N (whole files; `python -m tests.support.shards` runs all N at once)",
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """The tree is the tier: tests under ``integration/`` are marked ``db``, under ``e2e/`` ``e2e``.
    With ``--shard I/N`` only that shard's files are kept (the rest are reported as deselected)."""
    for item in items:
        parts = Path(str(item.path)).parts
        if "integration" in parts:
            item.add_marker(pytest.mark.db)
        if "e2e" in parts:
            item.add_marker(pytest.mark.e2e)
    shard = config.getoption("--shard")
    if shard:
        from tests.support.shards import parse_shard, split

        try:
            index, count = parse_shard(shard)
        except ValueError as exc:
            raise pytest.UsageError(str(exc)) from None
        kept, dropped = split(items, index, count)
        if dropped:
            config.hook.pytest_deselected(items=dropped)
            items[:] = kept
