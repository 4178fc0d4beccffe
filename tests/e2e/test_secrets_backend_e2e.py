"""Secrets from a secret store (issue 23, part 4): the Rafay API key and the billing database's password
come from Airflow's secrets backend (``LocalFilesystemBackend``, a JSON connections file, as
docker-compose.yaml mounts it), not from ``AIRFLOW_CONN_*`` variables. One ``airflow dags test`` run
bills a day; the key and the password are then in no task log, no XCom, no rendered template, nothing
else the Airflow home holds, and no landed file."""

from __future__ import annotations

import json
import sqlite3
import stat

import psycopg
import pytest

from rafay_devkit.airflow_env import SECRETS_BACKEND, conn_env_name
from rafay_devkit.postgres import EmbeddedPostgres
from tests.support.e2e import BillingRunner, metadata_home, utc
from tests.support.paths import DEMO_PRICE_BOOK

pytestmark = pytest.mark.e2e

API_KEY = "vault-only-rafay-key-5d1c9e"
DB_PASSWORD = "vault-only-db-pass-83f2a1"
W1 = (utc("2026-11-10T00:00:00Z"), utc("2026-11-11T00:00:00Z"))


@pytest.fixture(scope="module")
def password_postgres(tmp_path_factory):
    """A PostgreSQL server that requires a password over TCP (the session's trusts everyone)."""
    with EmbeddedPostgres(password=DB_PASSWORD) as server:
        yield server


def test_key_and_password_from_the_filesystem_secrets_backend_never_leak(
    tmp_path_factory, tmp_path, rafay_sim_factory, password_postgres
):
    billing_dsn = password_postgres.create_database("billing_secrets")
    assert DB_PASSWORD in billing_dsn
    with pytest.raises(psycopg.OperationalError, match="password"):
        psycopg.connect(billing_dsn.replace(f":{DB_PASSWORD}@", "@"), connect_timeout=10).close()

    home = metadata_home(tmp_path_factory, "airflow-secrets")
    sim = rafay_sim_factory(orgs=4, seed=7, api_key=API_KEY)
    connections_file = tmp_path / "secrets" / "billing-connections.json"
    runner = BillingRunner(home, sim, billing_dsn, tmp_path / "landing", DEMO_PRICE_BOOK,
                           connections_file=connections_file)
    env = runner.env()
    # The connections are in the file only: no AIRFLOW_CONN_* variable, no RAFAY_* fallback.
    for conn_id in ("rafay_default", "billing_postgres", "billing_postgres_owner", "billing_postgres_reader"):
        assert conn_env_name(conn_id) not in env
    assert "RAFAY_DEFAULT_API_KEY" not in env and "RAFAY_CONSOLE_URL" not in env
    assert env["AIRFLOW__SECRETS__BACKEND"] == SECRETS_BACKEND
    assert json.loads(env["AIRFLOW__SECRETS__BACKEND_KWARGS"]) == {"connections_file_path": str(connections_file)}
    assert not any(API_KEY in value or DB_PASSWORD in value for value in env.values())
    stored = json.loads(connections_file.read_text())
    assert stored["rafay_default"]["password"] == API_KEY and stored["billing_postgres"]["password"] == DB_PASSWORD
    assert stat.S_IMODE(connections_file.stat().st_mode) == 0o600

    result = runner.run("2026-11-11")
    assert result.ok, result.output[-4000:]

    # It billed: the day's items are in the password-protected database.
    items = runner.line_items(*W1)
    assert items and {i["org_id"] for i in items} <= {o.org_id for o in sim.dataset.orgs}
    assert sim.requests and len({r.path for r in sim.requests}) > 1

    # Neither secret in the command's output (`airflow dags test` writes the task logs there) ...
    assert "organizations to bill" in result.output
    for secret in (API_KEY, DB_PASSWORD):
        assert secret not in result.output
    # ... nor in XCom or the rendered templates (both non-empty: the check means something) ...
    with sqlite3.connect(home / "airflow.db") as meta:
        xcom = meta.execute("SELECT key, value FROM xcom").fetchall()
        rendered = meta.execute("SELECT task_id, rendered_fields FROM rendered_task_instance_fields").fetchall()
    assert xcom and rendered
    for secret in (API_KEY, DB_PASSWORD):
        assert not any(secret in str(row) for row in xcom), secret
        assert not any(secret in str(row) for row in rendered), secret
    # ... nor anywhere else in the Airflow home (any log file, the whole metadata database) or the landing root.
    files = [p for p in home.rglob("*") if p.is_file()] + [p for p in (tmp_path / "landing").rglob("*") if p.is_file()]
    assert home / "airflow.db" in files and any("usage" in p.name for p in files)
    for path in files:
        data = path.read_bytes()
        for secret in (API_KEY, DB_PASSWORD):
            assert secret.encode() not in data, (secret, path)
