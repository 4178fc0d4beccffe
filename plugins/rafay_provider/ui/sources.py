"""Where the Billing view reads from, inside the api-server: the ``billing_postgres_reader`` connection
(else ``billing_postgres``, with a warning) and the ``billing_data_uri`` landing root, as the DAG's tasks."""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from typing import Any

from rafay_provider.settings import BILLING_CONN_ID, BILLING_READER_CONN_ID, DATA_URI_VARIABLE

log = logging.getLogger(__name__)
# libpq options a postgres connection's extra may carry (PostgresHook passes them on the same way).
_LIBPQ_EXTRAS = ("sslmode", "sslcert", "sslkey", "sslrootcert", "sslcrl", "application_name", "connect_timeout")


def billing_conninfo() -> dict[str, Any]:
    """psycopg connect() keywords of ``billing_postgres_reader`` (a member of the reader role: SELECT
    only), else of ``billing_postgres`` with a warning in the api-server log (a single-connection
    deployment). The api-server reads the secrets backends and the metadata database directly: it is
    not a task."""
    from airflow.exceptions import AirflowNotFoundException
    from airflow.models.connection import Connection

    try:
        conn = Connection.get_connection_from_secrets(BILLING_READER_CONN_ID)
    except AirflowNotFoundException:
        log.warning("Connection %s is not defined: the Billing view reads through %s instead. Define %s "
                    "with a login that is a member of the billing reader role.",
                    BILLING_READER_CONN_ID, BILLING_CONN_ID, BILLING_READER_CONN_ID)
        conn = Connection.get_connection_from_secrets(BILLING_CONN_ID)
    params: dict[str, Any] = {
        "host": conn.host or None, "port": conn.port or None, "user": conn.login or None,
        "password": conn.password or None, "dbname": conn.schema or None,
    }
    extra = conn.extra_dejson
    params.update({k: extra[k] for k in _LIBPQ_EXTRAS if k in extra})
    params.setdefault("connect_timeout", 10)
    return {k: v for k, v in params.items() if v is not None}


def landing_root() -> Any:
    """Variable ``billing_data_uri`` as an ObjectStoragePath, else ``$AIRFLOW_HOME/billing-data`` (as the DAG)."""
    from airflow.models.variable import Variable
    from airflow.sdk import ObjectStoragePath

    uri = Variable.get(DATA_URI_VARIABLE, default_var=None)
    if not uri:
        home = os.environ.get("AIRFLOW_HOME") or os.path.expanduser("~/airflow")
        uri = f"file://{os.path.abspath(home)}/billing-data"
    return ObjectStoragePath(uri)


def ui_base_path() -> str:
    """The Airflow UI's path prefix (``[api] base_url``), for links to run pages: ``/`` by default."""
    from urllib.parse import urlsplit

    from airflow.configuration import conf

    path = urlsplit(conf.get("api", "base_url", fallback="/") or "/").path or "/"
    return path if path.endswith("/") else path + "/"


def run_states(billing_run_ids: Sequence[str]) -> dict[str, str]:
    """The Airflow state (``success``, ``failed``, ``running``, ...) of each run the ledger names, read
    from the metadata database (the api-server's own session); a run Airflow no longer knows is left out."""
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session
    from sqlalchemy import select

    from rafay_provider.ui.links import airflow_run

    pairs = {rid: airflow_run(rid) for rid in billing_run_ids}
    if not pairs:
        return {}
    with create_session() as session:
        rows = session.execute(
            select(DagRun.dag_id, DagRun.run_id, DagRun.state).where(
                DagRun.dag_id.in_({d for d, _ in pairs.values()}), DagRun.run_id.in_({r for _, r in pairs.values()}),
            )
        ).all()
    found = {(d, r): str(getattr(state, "value", state)) for d, r, state in rows}
    return {rid: found[pair] for rid, pair in pairs.items() if pair in found}
