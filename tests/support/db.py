"""Throw-away databases on the session's PostgreSQL server."""

from __future__ import annotations

import uuid


def create_database(server_dsn: str, prefix: str) -> str:
    """Create a uniquely named database on the server; returns its DSN."""
    import psycopg
    from psycopg.conninfo import conninfo_to_dict, make_conninfo

    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(server_dsn, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    params = conninfo_to_dict(server_dsn)
    params["dbname"] = name
    return make_conninfo(**params)


def drop_database(server_dsn: str, dsn: str) -> None:
    import psycopg
    from psycopg.conninfo import conninfo_to_dict

    name = conninfo_to_dict(dsn)["dbname"]
    with psycopg.connect(server_dsn, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
