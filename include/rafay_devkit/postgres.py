"""A throw-away PostgreSQL server for the demo and the tests, with no system service needed.

Uses the machine's PostgreSQL binaries when present (``$PG_BIN``, ``/usr/lib/postgresql/*/bin``,
``pg_ctl`` on PATH), else the binaries bundled in the ``pgserver`` wheel from PyPI. PostgreSQL
refuses to run as root, so as root the server runs as an unprivileged system user.
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SERVICE_USER = "postgres"
FALLBACK_USER = "rafaypg"


def find_bin_dir() -> Path:
    """Directory holding ``initdb``/``pg_ctl``/``postgres``; why: several install layouts exist."""
    candidates: list[Path] = []
    if os.environ.get("PG_BIN"):
        candidates.append(Path(os.environ["PG_BIN"]))
    candidates += sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=_version_key, reverse=True)
    on_path = shutil.which("pg_ctl")
    if on_path:
        candidates.append(Path(on_path).parent)
    for directory in candidates:
        if (directory / "initdb").exists() and (directory / "pg_ctl").exists():
            return directory
    try:  # the fallback, imported only when needed (it is slow and noisy to import)
        import pgserver

        bundled = Path(pgserver.__file__).parent / "pginstall" / "bin"
        if (bundled / "initdb").exists():
            return bundled
    except ImportError:
        pass
    raise RuntimeError(
        "No PostgreSQL server binaries found: install PostgreSQL (initdb, pg_ctl) or the `pgserver` "
        "package (it is in requirements.txt), or set PG_BIN, or point BILLING_TEST_DATABASE_URL at a server."
    )


def _version_key(path: Path) -> float:
    try:
        return float(path.parent.name)
    except ValueError:
        return 0.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _run_as_user() -> str | None:
    """The unprivileged user to run the server as when we are root (created if missing)."""
    if os.geteuid() != 0:
        return None
    for name in (SERVICE_USER, FALLBACK_USER):
        try:
            pwd.getpwnam(name)
            return name
        except KeyError:
            continue
    subprocess.run(
        ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", FALLBACK_USER], check=True
    )
    return FALLBACK_USER


class EmbeddedPostgres:
    """Start with :meth:`start`, get DSNs with :meth:`dsn` / :meth:`create_database`, end with :meth:`stop`.

    ``password``: the superuser ``postgres`` gets it and every TCP login needs one (scram-sha-256),
    as on a real server, so a test can prove a password really came from where it says; without it,
    trust authentication (no passwords).
    """

    def __init__(self, root: Path | None = None, port: int | None = None, password: str | None = None) -> None:
        self._owns_root = root is None
        self.root = Path(root) if root else Path(tempfile.mkdtemp(prefix="rafay-pg-"))
        self.datadir = self.root / "data"
        self.port = port or free_port()
        self.bin_dir = find_bin_dir()
        self.user = _run_as_user()
        self.password = password
        self.running = False

    def _cmd(self, *args: str) -> list[str]:
        cmd = [str(self.bin_dir / args[0]), *args[1:]]
        return ["runuser", "-u", self.user, "--", *cmd] if self.user else cmd

    def start(self) -> str:
        self.root.mkdir(parents=True, exist_ok=True)
        if self.user:
            os.chmod(self.root, 0o755)
            shutil.chown(self.root, self.user)
        if not (self.datadir / "PG_VERSION").exists():
            auth = ["-A", "trust"]
            if self.password is not None:
                pwfile = self.root / "pwfile"
                pwfile.write_text(self.password + "\n")
                if self.user:
                    shutil.chown(pwfile, self.user)
                pwfile.chmod(0o600)
                auth = ["--auth-local=trust", "--auth-host=scram-sha-256", f"--pwfile={pwfile}"]
            try:
                subprocess.run(
                    self._cmd("initdb", "-D", str(self.datadir), "-U", "postgres", *auth, "-E", "UTF8",
                              "--locale=C", "--no-sync"),
                    check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                )
            finally:
                (self.root / "pwfile").unlink(missing_ok=True)
        options = (
            f"-c listen_addresses=127.0.0.1 -c port={self.port} -c unix_socket_directories='' "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200 "
            "-c shared_buffers=256MB -c work_mem=64MB -c maintenance_work_mem=256MB"
        )
        subprocess.run(
            self._cmd("pg_ctl", "-D", str(self.datadir), "-l", str(self.root / "server.log"), "-o", options,
                      "-w", "-t", "60", "start"),
            check=True, stdout=subprocess.DEVNULL,
        )
        self.running = True
        self._wait_ready()
        return self.dsn()

    def _wait_ready(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError(f"PostgreSQL did not accept connections on port {self.port}; see {self.root}/server.log")

    def dsn(self, database: str = "postgres") -> str:
        from urllib.parse import quote

        login = f"postgres:{quote(self.password, safe='')}" if self.password is not None else "postgres"
        return f"postgresql://{login}@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str) -> str:
        import psycopg  # keep module import light

        with psycopg.connect(self.dsn(), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.dsn(name)

    def create_billing_database(self, name: str, roles: Any = None) -> BillingLogins:
        """A database for the billing schema and login users, members of its owner, writer, reader and
        tenant API roles (created when absent): the DSNs of ``billing_postgres_owner``, ``billing_postgres``,
        ``billing_postgres_reader`` and the tenant API's, as a deployment wires them (see
        :func:`create_billing_logins`)."""
        dsn = self.create_database(name)
        return create_billing_logins(dsn, name, roles)

    def stop(self) -> None:
        if self.running:
            subprocess.run(
                self._cmd("pg_ctl", "-D", str(self.datadir), "-m", "fast", "-w", "stop"),
                check=False, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            )
            self.running = False
        if self._owns_root:
            shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> EmbeddedPostgres:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


@dataclass(frozen=True)
class BillingLogins:
    """The DSNs of a billing database's connections (``admin``: the server's superuser; ``tenant_api``:
    the login of ``rafay-billing serve-tenant-api``)."""

    admin: str
    owner: str
    writer: str
    reader: str
    tenant_api: str = ""


def create_billing_logins(admin_dsn: str, prefix: str, roles: Any = None) -> BillingLogins:
    """As the server's administrator (``admin_dsn``): the group roles when absent, and login users
    ``<prefix>_owner``/``_writer``/``_reader``/``_tenant_api`` that are their members; the owner role may create the
    billing schema in the database (so the owner's login can migrate). Trust authentication: no
    passwords (a real deployment gives each login one)."""
    import psycopg
    from psycopg import sql
    from psycopg.conninfo import conninfo_to_dict, make_conninfo

    from rafay_billing.db import DatabaseRoles

    roles = roles or DatabaseRoles()
    params = conninfo_to_dict(admin_dsn)
    dsns: dict[str, str] = {}
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        for kind, group in roles.params().items():
            login = f"{prefix}_{kind}"[:63]
            for name, options in ((group, "NOLOGIN"), (login, "LOGIN")):
                if not conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (name,)).fetchone():
                    conn.execute(sql.SQL("CREATE ROLE {} " + options).format(sql.Identifier(name)))
            conn.execute(sql.SQL("GRANT {} TO {}").format(sql.Identifier(group), sql.Identifier(login)))
            dsns[kind] = make_conninfo(**{**params, "user": login})
        conn.execute(sql.SQL("GRANT CREATE ON DATABASE {} TO {}").format(
            sql.Identifier(params["dbname"]), sql.Identifier(roles.owner)))
    return BillingLogins(admin=admin_dsn, **dsns)
