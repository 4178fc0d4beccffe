"""The DAG tasks' three billing connections (issue 21, rule 10), through the provider's own steps.

``migrate_schema`` runs on ``billing_postgres_owner``, reports and exports on
``billing_postgres_reader``, every other task on ``billing_postgres``; an owner or reader connection
that is not defined falls back to ``billing_postgres`` with a warning in the task log.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict

from rafay_billing import db
from rafay_devkit.airflow_env import postgres_connection_json
from rafay_devkit.postgres import BillingLogins, create_billing_logins
from rafay_provider import pipeline, settings

CONN_VARS = ("AIRFLOW_CONN_BILLING_POSTGRES", "AIRFLOW_CONN_BILLING_POSTGRES_OWNER", "AIRFLOW_CONN_BILLING_POSTGRES_READER")


@pytest.fixture
def logins(billing_dsn: str) -> Iterator[BillingLogins]:
    made = create_billing_logins(billing_dsn, conninfo_to_dict(billing_dsn)["dbname"])
    yield made
    with psycopg.connect(billing_dsn, autocommit=True) as conn:
        for dsn in (made.owner, made.writer, made.reader):
            conn.execute(f'DROP ROLE IF EXISTS "{conninfo_to_dict(dsn)["user"]}"')


@pytest.fixture
def log_text(caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]):
    caplog.set_level(logging.INFO)

    def read() -> str:
        """What was logged since the last call (Airflow's logging may write to stdout)."""
        text = caplog.text + capsys.readouterr().out
        caplog.clear()
        return text

    return read


def _connect(monkeypatch: pytest.MonkeyPatch, **dsns: str) -> None:
    for var in CONN_VARS:
        monkeypatch.delenv(var, raising=False)
    for kind, dsn in dsns.items():
        var = "AIRFLOW_CONN_BILLING_POSTGRES" + ("" if kind == "writer" else f"_{kind.upper()}")
        monkeypatch.setenv(var, postgres_connection_json(dsn))


def _user(conn: psycopg.Connection) -> str:
    return conn.execute("SELECT session_user").fetchone()[0]


def test_one_connection_does_it_all_with_a_warning(
    billing_dsn: str, monkeypatch: pytest.MonkeyPatch, log_text,
) -> None:
    """A single-connection deployment keeps working: migrate_schema and the exports use billing_postgres."""
    _connect(monkeypatch, writer=billing_dsn)
    assert pipeline.migrate_schema() == [m.name for m in db.migrations()]
    text = log_text()
    assert "Connection billing_postgres_owner is not defined: the owner's part runs on billing_postgres" in text
    with pipeline.billing_connection("reader") as conn:
        assert _user(conn) == conninfo_to_dict(billing_dsn)["user"]
    assert "Connection billing_postgres_reader is not defined: the reader's part runs on billing_postgres" in log_text()
    with pipeline.billing_connection() as conn:
        conn.execute("SELECT 1")
    assert "not defined" not in log_text()  # the writer's own connection never warns


def test_each_part_uses_its_own_login(logins: BillingLogins, monkeypatch: pytest.MonkeyPatch, log_text) -> None:
    _connect(monkeypatch, writer=logins.writer, owner=logins.owner, reader=logins.reader)
    assert pipeline.migrate_schema() == [m.name for m in db.migrations()]
    assert pipeline.migrate_schema() == []
    assert "not defined" not in log_text()
    users = {}
    for role in ("owner", "writer", "reader"):
        with pipeline.billing_connection(role) as conn:
            users[role] = _user(conn)
    assert users == {kind: conninfo_to_dict(getattr(logins, kind))["user"] for kind in users}
    with pipeline.billing_connection("reader") as conn, pytest.raises(psycopg.errors.InsufficientPrivilege):
        conn.execute("INSERT INTO billing.audit_log (action, actor) VALUES ('close', 'x')")
    with pipeline.billing_connection("writer") as conn, pytest.raises(psycopg.errors.InsufficientPrivilege):
        conn.execute("ALTER TABLE billing.audit_log DISABLE TRIGGER ALL")


def test_role_names_come_from_the_config(monkeypatch: pytest.MonkeyPatch) -> None:
    assert settings.database_roles() == db.DatabaseRoles()
    monkeypatch.setenv("AIRFLOW__RAFAY_BILLING__DB_OWNER_ROLE", "acme_billing_owner")
    monkeypatch.setenv("AIRFLOW__RAFAY_BILLING__DB_READER_ROLE", "acme_billing_reader")
    roles = settings.database_roles()
    assert (roles.owner, roles.writer, roles.reader) == ("acme_billing_owner", "rafay_billing_writer",
                                                          "acme_billing_reader")
    monkeypatch.setenv("AIRFLOW__RAFAY_BILLING__DB_TENANT_API_ROLE", "acme_billing_tenant_api")
    assert settings.database_roles().tenant_api == "acme_billing_tenant_api"  # issue 24: the tenant API's role
    monkeypatch.setenv("AIRFLOW__RAFAY_BILLING__DB_WRITER_ROLE", "acme_billing_owner")
    with pytest.raises(settings.SettingsError, match="db_writer_role.*three different roles"):
        settings.database_roles()
