"""Which database the Billing view reads through, and what its 503 says (issue 21, rules 10 and 17).

The view reads through ``billing_postgres_reader`` (SELECT only), else ``billing_postgres`` with a
warning. An unreachable database is a 503 that does not show the database's host, port or user (the
api-server log has the driver's message).
"""

from __future__ import annotations

import logging
from datetime import date
from pathlib import Path

import psycopg
import pytest
from fastapi.testclient import TestClient
from psycopg.conninfo import conninfo_to_dict

from rafay_billing import db
from rafay_devkit.airflow_env import postgres_connection_json
from rafay_devkit.postgres import create_billing_logins, free_port
from rafay_provider.ui import sources
from rafay_provider.ui.app import Sources, create_app
from rafay_provider.ui.auth import require_user
from tests.support.billed import Usage, bill


def _app(conninfo: dict, landing: Path):
    from airflow.sdk import ObjectStoragePath

    app = create_app(Sources(lambda: conninfo, lambda: ObjectStoragePath(landing.as_uri()), lambda: "/"))
    app.dependency_overrides[require_user] = lambda: object()
    return app


def test_an_unreachable_database_does_not_show_its_host_or_user(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str],
) -> None:
    secret = {"host": "127.0.0.1", "port": free_port(), "user": "billing_login_k7q2", "dbname": "ledger_db_x9",
              "password": "pw-s3cr3t", "connect_timeout": 2}
    caplog.set_level(logging.WARNING)
    for path in ("/api/totals", "/"):
        response = TestClient(_app(secret, tmp_path)).get(path)
        assert response.status_code == 503, response.text
        detail = response.json()["detail"]
        assert "billing database is unreachable" in detail
        for value in (secret["host"], str(secret["port"]), secret["user"], secret["dbname"], secret["password"]):
            assert value not in detail, value
    logged = caplog.text + capsys.readouterr().out  # Airflow's logging may write to stdout
    assert f'"127.0.0.1", port {secret["port"]}' in logged  # the operator finds the driver's message in the log
    assert secret["password"] not in logged


def test_a_login_that_may_not_read_is_told_what_to_grant(billing_dsn: str, tmp_path: Path) -> None:
    with psycopg.connect(billing_dsn, autocommit=True) as conn:
        bill(conn, [Usage("acme", date(2026, 11, 10), "cpu-vm", "vm1", "1")], "r")
        conn.execute("DROP ROLE IF EXISTS billing_nobody_login")
        conn.execute("CREATE ROLE billing_nobody_login LOGIN")
    try:
        params = conninfo_to_dict(billing_dsn) | {"user": "billing_nobody_login"}
        response = TestClient(_app(params, tmp_path)).get("/api/totals")
        assert response.status_code == 503
        assert "member of the billing reader role" in response.json()["detail"]
        assert "billing_nobody_login" not in response.json()["detail"]
    finally:
        with psycopg.connect(billing_dsn, autocommit=True) as conn:
            conn.execute("DROP ROLE billing_nobody_login")


def test_the_view_reads_through_the_reader(
    billing_dsn: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture,
) -> None:
    logins = create_billing_logins(billing_dsn, conninfo_to_dict(billing_dsn)["dbname"])
    with psycopg.connect(logins.owner) as conn:
        db.migrate(conn)
    monkeypatch.setenv("AIRFLOW_CONN_BILLING_POSTGRES", postgres_connection_json(logins.writer))
    monkeypatch.delenv("AIRFLOW_CONN_BILLING_POSTGRES_READER", raising=False)
    caplog.set_level(logging.WARNING)
    assert sources.billing_conninfo()["user"] == conninfo_to_dict(logins.writer)["user"]
    assert "billing_postgres_reader is not defined" in caplog.text  # a single-connection deployment
    caplog.clear()
    monkeypatch.setenv("AIRFLOW_CONN_BILLING_POSTGRES_READER", postgres_connection_json(logins.reader))
    info = sources.billing_conninfo()
    assert info["user"] == conninfo_to_dict(logins.reader)["user"]
    assert "not defined" not in caplog.text
    response = TestClient(_app(info, tmp_path)).get("/api/totals")
    assert response.status_code == 200 and response.json()["total_rows"] == 0
    with psycopg.connect(billing_dsn, autocommit=True) as conn:
        for dsn in (logins.owner, logins.writer, logins.reader):
            conn.execute(f'DROP ROLE "{conninfo_to_dict(dsn)["user"]}"')
