"""The tenant statements API over real HTTP for tests: uvicorn in a thread on a free loopback port, and
a login of the tenant API database role."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from rafay_billing.db import DatabaseRoles
from rafay_billing.tenant_api import tokens
from rafay_billing.tenant_api.app import TenantApiSettings, create_app
from rafay_billing.tenant_api.pool import ConnectionPool
from rafay_devkit.postgres import free_port


def tenant_login(admin_dsn: str) -> tuple[str, str]:
    """A login that is a member of the tenant API role only: ``(login, dsn)`` (drop it when done)."""
    login = f"tenant_api_login_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        conn.execute(f'CREATE ROLE "{login}" LOGIN IN ROLE "{DatabaseRoles().tenant_api}"')
    params = conninfo_to_dict(admin_dsn)
    params["user"] = login
    params.pop("password", None)
    return login, make_conninfo(**params)


def drop_login(admin_dsn: str, login: str) -> None:
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        conn.execute(f'DROP ROLE IF EXISTS "{login}"')


def expired_token(conn: Any, org_id: str) -> str:
    """A token of ``org_id`` that expired yesterday (made as if two days ago; the CLI refuses past expiries)."""
    token, token_id, secret = tokens.new_token()
    salt = b"s" * 8 + uuid.uuid4().bytes[:8]
    now = datetime.now(UTC)
    conn.execute(
        "INSERT INTO billing.api_tokens (token_id, org_id, secret_hash, salt, kdf, created_by, created_at, expires_at)"
        " VALUES (%s, %s, %s, %s, %s, 'test', %s, %s)",
        (token_id, org_id, tokens._scrypt(secret, salt), salt, tokens.KDF, now - timedelta(days=2),
         now - timedelta(days=1)),
    )
    return token


@contextmanager
def running_api(dsn: str, settings: TenantApiSettings | None = None) -> Iterator[str]:
    """Serve the tenant API over ``dsn`` on 127.0.0.1; yields its base URL."""
    import uvicorn

    pool = ConnectionPool(dsn, size=3)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(pool, settings), host="127.0.0.1", port=port,
                                           log_level="warning", access_log=False))
    thread = threading.Thread(target=server.run, name="tenant-api", daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the tenant API did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)
        pool.close()
