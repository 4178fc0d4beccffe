"""Database plumbing: SQL files, transactions, schema migrations.

Every statement the billing code runs lives in ``rafay_billing/sql/`` (package data) (reviewable, runnable in ``psql``)
and is loaded with :func:`sql`. Functions here take a psycopg 3 connection, which is what Airflow's
``PostgresHook`` returns when psycopg 3 is installed, and also what the tests and benchmarks open.

Run on its own: ``python -m rafay_billing.db migrate --dsn postgresql://…`` (or ``$BILLING_DATABASE_URL``),
with ``--owner-role``/``--writer-role``/``--reader-role``/``--tenant-api-role`` (or ``$BILLING_DB_OWNER_ROLE`` and
so on) when the database roles are not the default ``rafay_billing_owner``/``_writer``/``_reader``/``_tenant_api``.
"""

from __future__ import annotations

import argparse
import functools
import os
import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from importlib.resources import files
from importlib.resources.abc import Traversable
from typing import Any

from rafay_billing.errors import DatabaseError
from rafay_billing.settings import (
    DEFAULT_OWNER_ROLE,
    DEFAULT_READER_ROLE,
    DEFAULT_TENANT_API_ROLE,
    DEFAULT_WRITER_ROLE,
    ENV_DATABASE_URL,
    ROLE_ENV,
)

# Package data, read through importlib.resources: the same in a checkout, an editable install and a wheel.
SQL_DIR: Traversable = files("rafay_billing").joinpath("sql")
MIGRATIONS_DIR: Traversable = SQL_DIR.joinpath("migrations")
_SQL_NAME = re.compile(r"^[a-z0-9_]+(/[a-z0-9_]+)*\.sql$")
_MIGRATION_FILE = re.compile(r"^(\d{3,})_[A-Za-z0-9_]+\.sql$")


@functools.cache
def sql(name: str) -> str:
    """The text of the package's ``sql/<name>``; refuses names that are not ``folder/file.sql``."""
    if not _SQL_NAME.match(name):
        raise ValueError(f"SQL file name {name!r} is not a relative path like 'rating/rate_days.sql'")
    return SQL_DIR.joinpath(*name.split("/")).read_text(encoding="utf-8")


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    path: Traversable

    @property
    def text(self) -> str:
        return self.path.read_text(encoding="utf-8")


def migrations() -> list[Migration]:
    """The migration files in version order; a version used twice is a packaging error."""
    found: dict[int, Migration] = {}
    for path in sorted((p for p in MIGRATIONS_DIR.iterdir() if p.name.endswith(".sql")), key=lambda p: p.name):
        match = _MIGRATION_FILE.match(path.name)
        if not match:
            raise DatabaseError(f"migration file {path.name!r} is not named NNN_snake_case.sql")
        version = int(match.group(1))
        if version in found:
            raise DatabaseError(f"migrations {found[version].name} and {path.name} share version {version}")
        found[version] = Migration(version, path.name, path)
    return [found[v] for v in sorted(found)]


@contextmanager
def transaction(conn: Any) -> Iterator[Any]:
    """One atomic unit of work on ``conn``: committed on success, rolled back on any error.

    On an idle connection this is a real transaction that commits when the block ends. If the
    caller already has a transaction open on ``conn``, the block becomes a savepoint inside it and
    the caller's commit decides (psycopg's nesting rules), so callers can compose steps.
    """
    from psycopg.pq import TransactionStatus  # keep `import rafay_billing.db` light

    if conn.info.transaction_status == TransactionStatus.INERROR:
        raise DatabaseError("the connection is in a failed transaction; roll it back before using it")
    with conn.transaction():
        yield conn


_ROLE_NAME = re.compile(r"^[a-z_][a-z0-9_$]{0,62}$")


@dataclass(frozen=True)
class DatabaseRoles:
    """The group roles (NOLOGIN) of the billing schema; the connection users are their members.

    ``owner`` owns the schema and runs the migrations; ``writer`` has the DML the ledger's triggers
    allow (what every DAG task needs); ``reader`` has SELECT only (the Billing view, exports);
    ``tenant_api`` (``rafay-billing serve-tenant-api``) has SELECT on what that service serves and UPDATE
    of the API tokens' last-used time, nothing else.
    """

    owner: str = DEFAULT_OWNER_ROLE
    writer: str = DEFAULT_WRITER_ROLE
    reader: str = DEFAULT_READER_ROLE
    tenant_api: str = DEFAULT_TENANT_API_ROLE

    def __post_init__(self) -> None:
        for kind, name in self.params().items():
            if not _ROLE_NAME.match(name):
                raise DatabaseError(
                    f"database {kind} role name {name!r} must be a lower-case SQL name "
                    "(letters, digits, _; at most 63 characters)"
                )
        if len({self.owner, self.writer, self.reader}) != 3:
            raise DatabaseError(f"the owner, writer and reader roles must be three different roles, got {self}")
        if self.tenant_api in (self.owner, self.writer, self.reader):
            raise DatabaseError(
                f"the tenant API role {self.tenant_api!r} must differ from the owner, writer and reader roles: "
                "it may read only what the tenant API serves"
            )

    def params(self) -> dict[str, str]:
        return {"owner": self.owner, "writer": self.writer, "reader": self.reader, "tenant_api": self.tenant_api}


def migrate(conn: Any, roles: DatabaseRoles | None = None) -> list[str]:
    """Apply pending migrations in version order, in one transaction; returns the names applied.

    An advisory lock serialises concurrent callers (two runs starting together): the second waits,
    then finds everything applied and does nothing. Migrations are recorded in
    ``billing.schema_migrations``; each file is idempotent on its own as well.

    The database roles (``roles``, default :class:`DatabaseRoles`) are created when absent (that
    needs CREATEROLE), the connecting user acts as the owner role (it is made a member when it may
    be), the owner role owns everything in the schema, and the writer's, reader's and tenant API's
    grants are renewed, every table refusing TRUNCATE. A user that may not act as the owner (a writer's login)
    gets ``[]`` when nothing is pending and all that is in place, else an error saying what to grant.
    """
    from psycopg import sql as pgsql

    roles = roles or DatabaseRoles()
    pending = migrations()
    applied_now: list[str] = []
    with transaction(conn), conn.cursor() as cur:
        cur.execute(sql("db/migrate_lock.sql"))
        cur.execute(sql("db/role_state.sql"), roles.params())
        schema_ready, roles_in_place, can_own = cur.fetchone()
        if schema_ready and roles_in_place and not can_own:
            cur.execute(sql("db/applied_migrations.sql"))
            if {row[0] for row in cur.fetchall()} >= {m.version for m in pending}:
                return []
        cur.execute(sql("db/role_names.sql"), roles.params())
        cur.execute(sql("db/ensure_roles.sql"))
        cur.execute(sql("db/bootstrap.sql"))
        cur.execute(sql("db/adopt_schema.sql"))
        cur.execute(pgsql.SQL(sql("db/set_role.sql")).format(role=pgsql.Identifier(roles.owner)))
        cur.execute(sql("db/applied_migrations.sql"))
        applied = {row[0] for row in cur.fetchall()}
        for migration in pending:
            if migration.version in applied:
                continue
            cur.execute(migration.text)
            cur.execute(sql("db/record_migration.sql"), {"version": migration.version, "name": migration.name})
            applied_now.append(migration.name)
        load_currencies(cur)
        cur.execute(sql("db/guard_truncate.sql"))
        cur.execute(sql("db/grant_roles.sql"))
        cur.execute(sql("db/reset_role.sql"))
    return applied_now


def load_currencies(cur: Any) -> None:
    """Make ``billing.currencies`` hold ISO 4217's minor units (from the ``iso4217`` package).

    Runs with every migration: a newer package (a new or changed currency) reaches the table without a
    schema change, and rows that are already right are left untouched.
    """
    from rafay_billing.currency import currency_rows  # loads the ISO data lazily

    rows = [{"currency": code, "minor_unit": minor, "name": name} for code, minor, name in currency_rows()]
    cur.executemany(sql("db/upsert_currency.sql"), rows)


def main(argv: list[str] | None = None) -> int:
    """``python -m rafay_billing.db migrate [--dsn DSN] [--owner-role R] [--writer-role R] [--reader-role R]
    [--tenant-api-role R]``:
    apply the billing schema migrations and set up the database roles."""
    parser = argparse.ArgumentParser(prog="python -m rafay_billing.db", description="Billing database tools.")
    sub = parser.add_subparsers(dest="command", required=True)
    mig = sub.add_parser("migrate", help="apply pending schema migrations")
    mig.add_argument(
        "--dsn",
        default=os.environ.get(ENV_DATABASE_URL),
        help="libpq connection string or URL (default: $BILLING_DATABASE_URL)",
    )
    defaults = {"owner": DEFAULT_OWNER_ROLE, "writer": DEFAULT_WRITER_ROLE, "reader": DEFAULT_READER_ROLE,
                "tenant_api": DEFAULT_TENANT_API_ROLE}
    for kind, default in defaults.items():
        mig.add_argument(
            f"--{kind.replace('_', '-')}-role",
            default=os.environ.get(ROLE_ENV[kind]) or default,
            help=f"the database {kind} role (default: ${ROLE_ENV[kind]}, else {default})",
        )
    args = parser.parse_args(argv)
    if not args.dsn:
        parser.error(f"give --dsn or set {ENV_DATABASE_URL}")
    try:
        roles = DatabaseRoles(args.owner_role, args.writer_role, args.reader_role, args.tenant_api_role)
    except DatabaseError as exc:
        parser.error(str(exc))
    import psycopg

    with psycopg.connect(args.dsn) as conn:
        applied = migrate(conn, roles)
    print(f"applied {', '.join(applied)}" if applied else "billing schema is up to date")
    return 0


if __name__ == "__main__":
    sys.exit(main())
