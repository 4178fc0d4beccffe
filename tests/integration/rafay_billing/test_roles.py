"""Issue 21, rule 10: the database roles (real PostgreSQL, login users that are members of the roles).

The owner owns the tables and migrates; the writer (every DAG task) has only the DML the ledger's
triggers allow, so it cannot ALTER a table, disable a trigger, TRUNCATE or write a closed period; the
reader (the Billing view, exports) can write nothing. Before, every component connected as the
tables' owner.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import date
from decimal import Decimal
from pathlib import Path

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from rafay_billing import db
from rafay_billing.ledger.coverage import register_orgs
from rafay_billing.ledger.load import load_org_usage
from rafay_billing.ledger.price_book import sync_price_book
from rafay_billing.period import Period
from rafay_billing.periods.close import close_period, readiness
from rafay_billing.periods.documents import write_period_documents
from rafay_billing.periods.focus import write_focus_export
from rafay_billing.window import Window
from tests.support.billed import PRICE_BOOK, Usage, bill
from tests.support.db import create_database, drop_database
from tests.support.landed_usage import usage_csv

OCT = Period(date(2026, 10, 1))
DAY = date(2026, 10, 31)
ROLES = db.DatabaseRoles()


def as_user(dsn: str, user: str) -> str:
    params = conninfo_to_dict(dsn)
    params["user"] = user
    params.pop("password", None)
    return make_conninfo(**params)


@pytest.fixture(scope="module")
def logins(postgres_server: str) -> Iterator[dict[str, str]]:
    """Login users (no other privilege), members of the owner, writer, reader and tenant API roles."""
    suffix = uuid.uuid4().hex[:8]
    names = {kind: f"billing_{kind}_login_{suffix}" for kind in ("owner", "writer", "reader", "tenant_api")}
    with psycopg.connect(postgres_server, autocommit=True) as conn:
        for kind, login in names.items():
            group = getattr(ROLES, kind)
            if not conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (group,)).fetchone():
                conn.execute(f'CREATE ROLE "{group}" NOLOGIN')  # as an administrator would, once
            conn.execute(f'CREATE ROLE "{login}" LOGIN IN ROLE "{group}"')
    yield names
    with psycopg.connect(postgres_server, autocommit=True) as conn:
        for login in names.values():
            conn.execute(f'DROP ROLE IF EXISTS "{login}"')


@pytest.fixture(scope="module")
def ledger(postgres_server: str, logins: dict[str, str]) -> Iterator[dict[str, str]]:
    """A database migrated by the owner's login and billed for 2026-10-31 by the writer's login, with
    October closed (by the writer: the close DAG's tasks); returns each login's DSN. Shared by the
    module's tests (each leaves October as it was)."""
    billing_dsn = create_database(postgres_server, "billing_roles")
    dsns = {kind: as_user(billing_dsn, login) for kind, login in logins.items()}
    with psycopg.connect(billing_dsn, autocommit=True) as admin:  # the database is the owner role's
        admin.execute(f'ALTER DATABASE "{conninfo_to_dict(billing_dsn)["dbname"]}" OWNER TO "{ROLES.owner}"')
    with psycopg.connect(dsns["owner"]) as owner:
        assert db.migrate(owner) == [m.name for m in db.migrations()]
    with psycopg.connect(dsns["writer"]) as writer:
        writer.autocommit = True
        sync_price_book(writer, PRICE_BOOK)
        register_orgs(writer, [("acme", "ACME")], DAY, "r", last_day=DAY)
        usage = [Usage("acme", DAY, "cpu-vm", "vm1", "10"), Usage("acme", DAY, "nope-vm", "x1", "1")]
        bill(writer, usage, "r")
        assert len(close_period(writer, OCT, actor="test", issuer="RAFAY", allow_exceptions=True).invoices) == 1
    yield dsns
    drop_database(postgres_server, billing_dsn)


def _tables(conn: psycopg.Connection) -> list[str]:
    return [r[0] for r in conn.execute(
        "SELECT relname FROM pg_class WHERE relnamespace = 'billing'::regnamespace AND relkind = 'r' ORDER BY 1")]


def _first_column(conn: psycopg.Connection, table: str) -> str:
    return conn.execute(
        "SELECT attname FROM pg_attribute WHERE attrelid = %s::regclass AND attnum = 1", (f"billing.{table}",)
    ).fetchone()[0]


def test_the_owner_owns_everything_and_the_groups_cannot_log_in(ledger: dict[str, str]) -> None:
    with psycopg.connect(ledger["owner"]) as conn:
        owners = {r[0] for r in conn.execute(
            "SELECT DISTINCT pg_get_userbyid(relowner) FROM pg_class WHERE relnamespace = 'billing'::regnamespace")}
        assert owners == {ROLES.owner}
        assert conn.execute("SELECT pg_get_userbyid(nspowner) FROM pg_namespace WHERE nspname = 'billing'"
                            ).fetchone() == (ROLES.owner,)
        login = conn.execute("SELECT rolname, rolcanlogin FROM pg_roles WHERE rolname = ANY(%s) ORDER BY 1",
                             (list(ROLES.params().values()),)).fetchall()
        assert login == sorted((name, False) for name in ROLES.params().values())


@pytest.mark.parametrize("statement", [
    "ALTER TABLE billing.charge_line_items DISABLE TRIGGER charge_line_items_closed_delete",
    "ALTER TABLE billing.charge_line_items DISABLE TRIGGER ALL",
    "ALTER TABLE billing.usage_records ADD COLUMN sneaky int",
    "ALTER TABLE billing.audit_log DROP CONSTRAINT audit_log_pkey",
    "DROP TRIGGER invoices_immutable ON billing.invoices",
    "CREATE TABLE billing.sneaky (x int)",
    "TRUNCATE billing.charge_line_items",
    "TRUNCATE billing.usage_records CASCADE",
    "TRUNCATE billing.audit_log",
    "SET session_replication_role = replica",
    "UPDATE billing.audit_log SET actor = 'x'",
    "DELETE FROM billing.invoices",
    "UPDATE billing.currencies SET minor_unit = 0",
    "DELETE FROM billing.schema_migrations",
    "GRANT rafay_billing_owner TO CURRENT_USER",
])
def test_the_writer_cannot_change_the_rules(ledger: dict[str, str], statement: str) -> None:
    with psycopg.connect(ledger["writer"]) as conn, pytest.raises(psycopg.errors.InsufficientPrivilege):
        conn.execute(statement)


@pytest.mark.parametrize("statement", [
    "DELETE FROM billing.charge_line_items",
    "UPDATE billing.charge_line_items SET organization = 'x'",
    "DELETE FROM billing.usage_records WHERE profile = 'cpu-vm'",
    "DELETE FROM billing.usage_records",
])
def test_the_writer_cannot_write_a_closed_period(ledger: dict[str, str], statement: str) -> None:
    with psycopg.connect(ledger["writer"]) as conn:
        with pytest.raises(psycopg.IntegrityError, match="is closed|foreign key"):
            conn.execute(statement)
        conn.rollback()
        assert conn.execute("SELECT count(*) FROM billing.charge_line_items").fetchone()[0] > 0


def test_the_writer_cannot_replace_a_closed_day_but_bills_an_open_one(ledger: dict[str, str]) -> None:
    """The DAG's own steps, as the writer: a closed day's run is kept; November is billed as usual."""
    from rafay_billing.errors import LoadError

    with psycopg.connect(ledger["writer"]) as conn:
        conn.autocommit = True
        with pytest.raises(LoadError, match="nothing was loaded"):
            load_org_usage(conn, Window.for_day(DAY), "acme", usage_csv([]), "r")  # would delete issued rows
        nov = date(2026, 11, 1)
        bill(conn, [Usage("acme", nov, "cpu-vm", "vm1", "5")], "nov-run")
        assert conn.execute("SELECT sum(amount) FROM billing.charge_line_items WHERE usage_date = %s",
                            (nov,)).fetchone()[0] == Decimal("0.60")


def test_the_reader_writes_nothing(ledger: dict[str, str]) -> None:
    """INSERT, UPDATE, DELETE and TRUNCATE on every table of the schema are refused for the privilege."""
    with psycopg.connect(ledger["reader"]) as conn:
        conn.autocommit = True
        tables = _tables(conn)
        assert len(tables) >= 15
        for table in tables:
            column = _first_column(conn, table)
            for statement in (f"INSERT INTO billing.{table} DEFAULT VALUES",
                              f"UPDATE billing.{table} SET {column} = {column}",
                              f"DELETE FROM billing.{table}", f"TRUNCATE billing.{table} CASCADE"):
                with pytest.raises(psycopg.errors.InsufficientPrivilege):
                    conn.execute(statement)
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("CREATE TABLE billing.sneaky (x int)")


def test_the_reader_exports(ledger: dict[str, str], tmp_path: Path) -> None:
    """What the reader connection is for: the documents and the FOCUS export of a closed period."""
    with psycopg.connect(ledger["reader"]) as conn:
        unbilled = [e.as_dict() for e in readiness(conn, OCT).open_exceptions]
        assert unbilled
        assert write_period_documents(conn, OCT, tmp_path, unbilled=unbilled)
        assert write_focus_export(conn, OCT, tmp_path / "focus.csv", fmt="csv") == 1


def test_the_owner_migrates_again_and_the_writer_finds_nothing_to_do(ledger: dict[str, str]) -> None:
    with psycopg.connect(ledger["owner"]) as conn:
        assert db.migrate(conn) == []
    with psycopg.connect(ledger["writer"]) as conn:
        assert db.migrate(conn) == []  # the DAG's fallback when billing_postgres_owner is not defined


def test_a_writer_cannot_migrate_a_new_schema_and_is_told_why(billing_dsn: str, logins: dict[str, str]) -> None:
    with psycopg.connect(as_user(billing_dsn, logins["writer"])) as conn:
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="not a member of the billing owner role") as exc:
            db.migrate(conn)
        assert f"GRANT {ROLES.owner} TO {logins['writer']}" in (exc.value.diag.message_hint or "")


def test_a_database_migrated_before_the_roles_is_adopted(billing_dsn: str, logins: dict[str, str]) -> None:
    """001-007 applied by a login that owned everything (the single-connection deployment of before):
    the next migrate hands the schema to the owner role, and the writer can then bill."""
    with psycopg.connect(billing_dsn) as conn:
        for migration in db.migrations()[:7]:
            conn.execute(migration.text)
            conn.execute(db.sql("db/record_migration.sql"), {"version": migration.version, "name": migration.name})
        conn.commit()
        assert db.migrate(conn) == [m.name for m in db.migrations()[7:]]
        owners = {r[0] for r in conn.execute(
            "SELECT DISTINCT pg_get_userbyid(relowner) FROM pg_class WHERE relnamespace = 'billing'::regnamespace")}
        assert owners == {ROLES.owner}
    with psycopg.connect(as_user(billing_dsn, logins["writer"])) as conn:
        bill(conn, [Usage("acme", DAY, "cpu-vm", "vm1", "10")], "r")


def test_role_names_from_the_command_line(postgres_server: str) -> None:
    """``python -m rafay_billing.db migrate --owner-role …``: roles created when absent, and granted."""
    suffix = uuid.uuid4().hex[:8]
    names = [f"ob_{suffix}", f"wb_{suffix}", f"rb_{suffix}"]
    dsn = create_database(postgres_server, "billing_roles")
    try:
        argv = ["migrate", "--dsn", dsn, "--owner-role", names[0], "--writer-role", names[1], "--reader-role", names[2]]
        assert db.main(argv) == 0
        with psycopg.connect(dsn) as conn:
            assert conn.execute("SELECT count(*) FROM pg_roles WHERE rolname = ANY(%s) AND NOT rolcanlogin",
                                (names,)).fetchone() == (3,)
            assert conn.execute(
                "SELECT has_table_privilege(%s, 'billing.usage_records', 'INSERT'),"
                " has_table_privilege(%s, 'billing.usage_records', 'INSERT'),"
                " has_table_privilege(%s, 'billing.usage_records', 'SELECT'),"
                " has_table_privilege(%s, 'billing.audit_log', 'UPDATE')",
                (names[1], names[2], names[2], names[1])).fetchone() == (True, False, True, False)
    finally:
        drop_database(postgres_server, dsn)
        with psycopg.connect(postgres_server, autocommit=True) as conn:
            for name in names:
                conn.execute(f'DROP ROLE IF EXISTS "{name}"')


def test_role_names_are_checked() -> None:
    with pytest.raises(db.DatabaseError, match="three different roles"):
        db.DatabaseRoles("a", "a", "b")
    with pytest.raises(db.DatabaseError, match="lower-case SQL name"):
        db.DatabaseRoles(owner='x"; DROP TABLE y')
