"""Running the tenant API: check the database login, then serve with uvicorn.

The login must be a member of the tenant API role and nothing more: the service refuses to start as a
user that may write any billing table or read one it does not serve (the owner, the writer, a
superuser), naming what it may do, so a misconfigured DSN never exposes more than the role allows.
"""

from __future__ import annotations

from typing import Any

from rafay_billing.db import sql
from rafay_billing.tenant_api.pool import ConnectionPool


class RoleTooPowerful(RuntimeError):
    """The service's database login may do more than the tenant API role."""


def check_role(conn: Any) -> None:
    """Raise :class:`RoleTooPowerful` when ``conn``'s user may write or read beyond the tenant API's grants."""
    with conn.cursor() as cur:
        cur.execute(sql("tenant_api/role_check.sql"))
        extra = cur.fetchall()
    if extra:
        user = extra[0][0]
        listed = "; ".join(f"billing.{table}: {privileges}" for _, table, privileges in extra[:8])
        raise RoleTooPowerful(
            f"database user {user} may do more than the tenant API needs ({listed}"
            f"{'; …' if len(extra) > 8 else ''}): connect as a login that is only a member of the tenant API "
            "role (default rafay_billing_tenant_api; CREATE ROLE billing_tenant_api LOGIN IN ROLE "
            "rafay_billing_tenant_api), never as the owner, the writer or a superuser"
        )


def serve(dsn: str, host: str, port: int, *, settings: Any = None, pool_size: int = 4,
          log_level: str = "info") -> None:
    """Check the login, then serve until interrupted."""
    import psycopg
    import uvicorn

    from rafay_billing.tenant_api.app import create_app

    with psycopg.connect(dsn, autocommit=True) as conn:
        check_role(conn)
    pool = ConnectionPool(dsn, size=pool_size)
    try:
        uvicorn.run(create_app(pool, settings), host=host, port=port, log_level=log_level,
                    proxy_headers=False, server_header=False, access_log=True)
    finally:
        pool.close()
