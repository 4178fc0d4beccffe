"""What the DAGs' steps work with, resolved once per task: the landing root and each run's folders,
the billing database's connections (one per role), and the Rafay client with its usage source.

Why a module of its own: both DAGs' steps, the sensors and the delivery and contracts steps use these,
and none of them should import another DAG's steps to get them.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from airflow.sdk import ObjectStoragePath, Variable

from rafay_billing.paths import page_file_name, safe_component
from rafay_billing.window import Window
from rafay_provider.settings import BILLING_CONN_ID, BILLING_CONN_IDS, DATA_URI_VARIABLE, DatabaseRole

if TYPE_CHECKING:
    from rafay_billing.source.client import RafayClient
    from rafay_billing.source.sources import UsageSource

log = logging.getLogger(__name__)


def landing_root() -> ObjectStoragePath:
    """Variable ``billing_data_uri``, else ``$AIRFLOW_HOME/billing-data`` on the local disk."""
    uri = Variable.get(DATA_URI_VARIABLE, default=None)
    if not uri:
        home = os.environ.get("AIRFLOW_HOME") or os.path.expanduser("~/airflow")
        uri = f"file://{os.path.abspath(home)}/billing-data"
    return ObjectStoragePath(uri)


def run_dir(area: str, window: Window, run_id: str) -> ObjectStoragePath:
    """``<root>/<area>/window=<label>/run=<run id>``: every run keeps its own files for audit.

    Raw pages and usage CSVs land per day (``window`` is then one UTC day); reports per run window.
    """
    return landing_root() / area / f"window={window.label}" / f"run={safe_component(run_id)}"


def org_day_dir(day: Window, org_id: str, run_id: str) -> ObjectStoragePath:
    """Where one (org, day)'s raw pages and usage CSV land for a run."""
    return run_dir("raw", day, run_id) / f"org={safe_component(org_id)}"


def billing_conn_id(role: DatabaseRole = "writer") -> str:
    """The connection the ``role``'s part uses: ``billing_postgres_owner`` (migrations),
    ``billing_postgres`` (the writer) or ``billing_postgres_reader`` (reports, exports). An owner or
    reader connection that is not defined falls back to ``billing_postgres``, with a warning in the task
    log, so a single-connection deployment keeps working (with the writer's login doing it all)."""
    conn_id = BILLING_CONN_IDS[role]
    if conn_id == BILLING_CONN_ID:
        return conn_id
    from airflow.sdk import BaseHook
    from airflow.sdk.exceptions import AirflowNotFoundException

    try:
        BaseHook.get_connection(conn_id)
    except AirflowNotFoundException:
        log.warning(
            "Connection %s is not defined: the %s's part runs on %s instead. Define %s with a login that is "
            "a member of the billing %s role to keep each part to its own privileges.",
            conn_id, role, BILLING_CONN_ID, conn_id, role,
        )
        return BILLING_CONN_ID
    return conn_id


def new_billing_connection(role: DatabaseRole = "writer") -> Any:
    """Another psycopg 3 connection for ``role`` (see :func:`billing_conn_id`; the caller closes it)."""
    from airflow.providers.postgres.hooks.postgres import PostgresHook

    return PostgresHook(postgres_conn_id=billing_conn_id(role)).get_conn()


@contextmanager
def billing_connection(role: DatabaseRole = "writer") -> Iterator[Any]:
    """A psycopg 3 connection for ``role`` (PostgresHook picks psycopg 3 with SQLAlchemy 2): the
    writer's ``billing_postgres`` unless asked for the owner or the reader."""

    conn = new_billing_connection(role)
    try:
        yield conn
    finally:
        conn.close()


def page_writer(folder: ObjectStoragePath) -> Any:
    """An ``on_page`` hook landing each raw API response page as a JSON file in ``folder``."""

    def on_page(kind: str, key: str, page_no: int, body: bytes) -> None:
        (folder / page_file_name(kind, key, page_no)).write_bytes(body)

    return on_page


def rafay_access() -> tuple[RafayClient, UsageSource]:
    """The ``rafay`` connection's client and the usage source its ``api`` extra names, from one hook:
    the connection is resolved once per task."""
    from rafay_provider.hooks.rafay import RafayHook

    hook = RafayHook()
    return hook.get_conn(), hook.get_source()
