"""The names the billing code shares, and its deployment settings (cheap to import: no I/O).

Names: connection ids, Variable names, the pool, DAG and task ids. The DAG files, the provider and
the devkit read them from here, so a rename happens in one place.

Settings live in Airflow's configuration, section ``[rafay_billing]`` (env
``AIRFLOW__RAFAY_BILLING__<KEY>``), read when asked:

- ``billing_start_date``: the first UTC day the DAG bills (its start date, and the earliest day the
  coverage check asks for); catch-up runs start there.
- ``extract_retries``, ``extract_retry_delay_seconds``: task-level retries of one org batch's
  extraction, on top of the hook's per-request retries.
- ``retry_delay_seconds``: retry delay of the database steps (a restarted PostgreSQL, a lost worker).
- ``invoice_issuer``: who issues the invoices.
- ``rating_connections``: how many database connections rate a run's orgs at once (default 2; 1
  rates the whole window in one transaction).
- ``shrink_guard_ratio``: a re-read of a billed (org, day) whose total instance hours fall below this
  share of what the day holds (default 0.5), or that has no records, is held, not rated.
- ``max_window_days``: the longest window a run bills (default 62) unless its conf says
  ``{"allow_long_window": true}``.
- ``deadline_alerts``, ``nightly_deadline_hours``, ``close_deadline_days``: Deadline Alerts (off by default)
  posted, like failure notices, to connection ``billing_alerts``.
- ``db_owner_role``, ``db_writer_role``, ``db_reader_role``, ``db_tenant_api_role``: the billing database's
  group roles (default ``rafay_billing_owner``/``_writer``/``_reader``/``_tenant_api``), which the
  migrations create when absent; the logins of the three connections below are their members (the tenant
  API role's login is ``rafay-billing serve-tenant-api``'s, outside Airflow).

Connections: ``billing_postgres_owner`` (``migrate_schema``), ``billing_postgres`` (the writer: every
other task), ``billing_postgres_reader`` (the Billing view, exports); the first and the last fall back
to ``billing_postgres`` with a warning when not defined.

The tunables also take the older env names ``RAFAY_BILLING_EXTRACT_RETRIES`` and so on as a fallback.
"""

from __future__ import annotations

import os
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Literal

from rafay_billing.settings import (
    DEFAULT_ISSUER,
    DEFAULT_OWNER_ROLE,
    DEFAULT_READER_ROLE,
    DEFAULT_TENANT_API_ROLE,
    DEFAULT_WRITER_ROLE,
)

if TYPE_CHECKING:
    from rafay_billing.db import DatabaseRoles

# --- names -------------------------------------------------------------------------------------------
RAFAY_CONN_ID = "rafay_default"
BILLING_CONN_ID = "billing_postgres"
"""The writer's connection: every DAG task but ``migrate_schema`` and the exports."""
BILLING_OWNER_CONN_ID = "billing_postgres_owner"
"""The owner's connection (``migrate_schema``); ``billing_postgres`` when not defined."""
BILLING_READER_CONN_ID = "billing_postgres_reader"
"""The reader's connection (the Billing view, reports and exports); ``billing_postgres`` when not defined."""
DatabaseRole = Literal["owner", "writer", "reader"]
BILLING_CONN_IDS: dict[DatabaseRole, str] = {"owner": BILLING_OWNER_CONN_ID, "writer": BILLING_CONN_ID, "reader": BILLING_READER_CONN_ID}
DATA_URI_VARIABLE = "billing_data_uri"
PRICE_BOOK_VARIABLE = "billing_price_book_uri"
CONTRACTS_VARIABLE = "billing_contracts_uri"
"""The contracts CSV (issue 22), synced into ``billing.contracts`` at the start of each run of either DAG."""
RAFAY_POOL = "rafay_api"
"""Bounds the Rafay extraction tasks that run at once, across runs and DAGs."""
BILLING_DAG_ID = "rafay_usage_billing"
CLOSE_DAG_ID = "rafay_billing_close"
RESOLVE_WINDOW_TASK = "resolve_window"
EXTRACT_TASK = "extract_org"
"""The mapped extraction task: one org per task instance unless orgs outnumber ``[core] max_map_length``."""
EXTRACTED_XCOM_KEY = "extracted"
EXTRACT_FAILURES_XCOM_KEY = "extract_failures"

SECTION = "rafay_billing"
CLOSE_APPROVAL_KEY = "close_approval"
APPROVAL_USERS_KEY = "approval_assigned_users"
APPROVAL_TIMEOUT_KEY = "approval_timeout_hours"
CLOSE_APPROVAL_MODES = ("none", "required")
START_DATE_KEY = "billing_start_date"
ISSUER_KEY = "invoice_issuer"
DEFAULT_BILLING_START_DATE = "2026-11-01"
COVERAGE_LOOKBACK_DAYS = 35

# --- DAG Param defaults that the steps also read (a run's conf wins over the Param, the Param over these)
SETTLE_MINUTES = 60
"""Minutes after a window (or a month) ends before its usage is read: Rafay aggregates with a lag."""
CLOSE_WAIT_MINUTES = 2880
"""How long the close waits for the month's days after it settled, then gives up."""
CLOSE_POKE_SECONDS = 600
"""How often the close checks again while it waits."""


CONFIG_DESCRIPTION = "Rafay billing: the first billing day, retries, rating, and who issues the invoices."
CONFIG_OPTIONS: dict[str, dict[str, str | None]] = {
    START_DATE_KEY: {
        "description": "The first UTC day the daily DAG bills (its start date; catch-up runs start here) and "
        "the first month the close invoices.",
        "type": "string", "default": DEFAULT_BILLING_START_DATE, "example": "2026-11-01",
    },
    "extract_retries": {
        "description": "Task retries of one org batch's extraction, on top of the hook's per-request retries "
        "(older env RAFAY_BILLING_EXTRACT_RETRIES applies when this is left at its default).",
        "type": "integer", "default": "2", "example": "3",
    },
    "extract_retry_delay_seconds": {
        "description": "First retry delay of an extraction batch, in seconds; doubles per retry "
        "(older env RAFAY_BILLING_EXTRACT_RETRY_DELAY_SECONDS).",
        "type": "float", "default": "120", "example": "300",
    },
    "retry_delay_seconds": {
        "description": "Retry delay of the database steps, in seconds (a restarted PostgreSQL, a lost worker) "
        "(older env RAFAY_BILLING_RETRY_DELAY_SECONDS).",
        "type": "float", "default": "60", "example": "30",
    },
    "rating_connections": {
        "description": "Database connections that rate a run's orgs at once; 1 rates the whole window in one "
        "transaction (older env RAFAY_BILLING_RATING_CONNECTIONS).",
        "type": "integer", "default": "2", "example": "1",
    },
    ISSUER_KEY: {
        "description": "Who issues the invoices: invoice numbers are <issuer>-NNNNNN, gap-free per issuer; "
        "also the FOCUS InvoiceIssuerName.",
        "type": "string", "default": DEFAULT_ISSUER, "example": "ACME",
    },
    "shrink_guard_ratio": {
        "description": "A re-read of a billed (org, day) whose total instance hours fall below this share of "
        "what the day holds, or that has no records, is held (coverage held, reason usage_shrank) until "
        "`rafay-billing accept-shrink` or a later read; the earlier items stand.",
        "type": "float", "default": "0.5", "example": "0.8",
    },
    "max_window_days": {
        "description": "The longest window a run bills unless its conf says {\"allow_long_window\": true} "
        "(a typo must not re-bill years; older env RAFAY_BILLING_MAX_WINDOW_DAYS).",
        "type": "integer", "default": "62", "example": "31",
    },
    "deadline_alerts": {
        "description": "Attach Deadline Alerts to both DAGs (the nightly run must finish within "
        "nightly_deadline_hours, the close within close_deadline_days, counted from when the run was queued); "
        "a miss is posted to connection billing_alerts by the triggerer. Off by default: on Airflow 3.3.2 a DAG "
        "with a deadline makes `airflow dags test` exit 1 after a successful run, and only the scheduler checks "
        "deadlines.",
        "type": "boolean", "default": "False", "example": "True",
    },
    "nightly_deadline_hours": {
        "description": "With deadline_alerts: hours after a nightly run is queued by which it must have finished.",
        "type": "float", "default": "6", "example": "4",
    },
    "close_deadline_days": {
        "description": "With deadline_alerts: days after a close run is queued by which it must have finished "
        "(it waits for the month's days to be billed and settled first).",
        "type": "float", "default": "5", "example": "3",
    },
    CLOSE_APPROVAL_KEY: {
        "description": "none: the monthly close issues its invoices at once. required: it writes them as drafts "
        "(billing.invoice_drafts) and waits in the UI's Required Actions for a person to Approve (the drafts are "
        "issued exactly as drafted, numbered then) or Reject (discarded, nothing numbered).",
        "type": "string", "default": "none", "example": "required",
    },
    APPROVAL_USERS_KEY: {
        "description": "Who may answer the close's approval request: comma-separated user ids of the auth manager "
        "(an id may be written id:Display Name); empty: any user allowed to answer Required Actions.",
        "type": "string", "default": "", "example": "finance-lead:Finance Lead,controller",
    },
    APPROVAL_TIMEOUT_KEY: {
        "description": "Hours the close waits for an answer to its approval request; then Reject is taken (the "
        "drafts are discarded, nothing is issued). 0: wait without limit.",
        "type": "float", "default": "72", "example": "24",
    },
    **{
        key: {
            "description": f"The database {kind} role: created by the migrations when absent (roles are "
            "cluster-wide; a managed PostgreSQL needs CREATEROLE, else create it by hand, see the README).",
            "type": "string", "default": default, "example": f"acme_billing_{key[3:-5]}",
        }
        for kind, key, default in (("owner", "db_owner_role", DEFAULT_OWNER_ROLE),
                                   ("writer", "db_writer_role", DEFAULT_WRITER_ROLE),
                                   ("reader", "db_reader_role", DEFAULT_READER_ROLE),
                                   ("tenant API", "db_tenant_api_role", DEFAULT_TENANT_API_ROLE))
    },
}
"""``[rafay_billing]``, declared to Airflow by ``get_provider_info()["config"]`` (``airflow config list``
shows them) and read here with these defaults: one place for each option's name and default."""


def _default(key: str) -> str:
    return str(CONFIG_OPTIONS[key]["default"])


class SettingsError(ValueError):
    """A billing setting in the Airflow configuration is unusable; the message says what to write."""


def parse_start_date(text: str) -> date:
    """``YYYY-MM-DD`` (a UTC day); anything else is a :class:`SettingsError` naming the setting."""
    value = (text or "").strip()
    if len(value) == 10:  # fromisoformat would also take 20261101
        try:
            return date.fromisoformat(value)
        except ValueError:
            pass
    raise SettingsError(
        f"[{SECTION}] {START_DATE_KEY} (env AIRFLOW__{SECTION.upper()}__{START_DATE_KEY.upper()}) must be a "
        f"UTC day like 2026-11-01, got {value!r}"
    )


def billing_start_date() -> date:
    """The configured first billing day (default 2026-11-01)."""
    from airflow.sdk.configuration import conf  # only when asked

    return parse_start_date(conf.get(SECTION, START_DATE_KEY, fallback=_default(START_DATE_KEY)))


def billing_start_datetime() -> datetime:
    """:func:`billing_start_date` as the DAG's timezone-aware start date (00:00 UTC)."""
    start = billing_start_date()
    return datetime(start.year, start.month, start.day, tzinfo=UTC)


def _tunable(key: str, legacy_env: str) -> str:
    """``[rafay_billing] <key>``; the legacy env var when the option is left at its declared default
    (Airflow returns the provider's declared default for an option nobody set)."""
    from airflow.sdk.configuration import conf  # only when asked

    default = _default(key)
    value = conf.get(SECTION, key, fallback=None)
    explicit = f"AIRFLOW__{SECTION.upper()}__{key.upper()}" in os.environ
    if value is None or str(value).strip() == "" or (not explicit and str(value).strip() == default):
        value = os.environ.get(legacy_env) or default
    return str(value).strip()


def _number(key: str, legacy_env: str, *, integer: bool) -> float:
    text = _tunable(key, legacy_env)
    try:
        value = int(text) if integer else float(text)
    except ValueError:
        value = -1
    if value < 0:
        kind = "a whole number" if integer else "a number of seconds"
        raise SettingsError(
            f"[{SECTION}] {key} (env AIRFLOW__{SECTION.upper()}__{key.upper()} or {legacy_env}) must be "
            f"{kind} >= 0, got {text!r}"
        )
    return value


def extract_retries() -> int:
    """Task retries of an extraction batch (default 2)."""
    return int(_number("extract_retries", "RAFAY_BILLING_EXTRACT_RETRIES", integer=True))


def extract_retry_delay() -> timedelta:
    """First retry delay of an extraction batch (default 120 s; doubles per retry)."""
    return timedelta(seconds=_number("extract_retry_delay_seconds", "RAFAY_BILLING_EXTRACT_RETRY_DELAY_SECONDS",
                                     integer=False))


def retry_delay() -> timedelta:
    """Retry delay of the database steps (default 60 s)."""
    return timedelta(seconds=_number("retry_delay_seconds", "RAFAY_BILLING_RETRY_DELAY_SECONDS", integer=False))


def rating_connections() -> int:
    """Connections that rate a run's orgs at once (default 2: the rating is CPU-bound in PostgreSQL,
    one statement runs on one core, and PostgreSQL servers have at least two)."""
    value = int(_number("rating_connections", "RAFAY_BILLING_RATING_CONNECTIONS", integer=True))
    if value < 1:
        raise SettingsError(f"[{SECTION}] rating_connections must be a whole number >= 1, got {value}")
    return value


DEFAULT_INVOICE_ISSUER = DEFAULT_ISSUER
CLOSED_PERIODS_URI = "x-rafay-billing://closed-periods"
"""The Asset the monthly close emits when a period is closed (its event's extra names the period).
An ``x-`` scheme: Airflow looks any other scheme up among every provider's URI normalizers when the
DAG file is parsed, which imports boto3, requests and the postgres provider at parse time."""


def invoice_issuer() -> str:
    """``[rafay_billing] invoice_issuer`` (env ``AIRFLOW__RAFAY_BILLING__INVOICE_ISSUER``, default ``RAFAY``):
    who issues the invoices; invoice numbers are ``<issuer>-NNNNNN``, gap-free per issuer."""
    from airflow.sdk.configuration import conf  # only when asked

    from rafay_billing.errors import PeriodError
    from rafay_billing.periods.invoices import check_issuer

    value = (conf.get(SECTION, ISSUER_KEY, fallback=_default(ISSUER_KEY)) or "").strip()
    try:
        return check_issuer(value)
    except PeriodError as exc:
        raise SettingsError(f"[{SECTION}] {ISSUER_KEY} (env AIRFLOW__{SECTION.upper()}__{ISSUER_KEY.upper()}): {exc}") from None




ROLE_KEYS = {"owner": "db_owner_role", "writer": "db_writer_role", "reader": "db_reader_role",
             "tenant_api": "db_tenant_api_role"}


def database_roles() -> DatabaseRoles:
    """``[rafay_billing] db_owner_role``/``db_writer_role``/``db_reader_role``/``db_tenant_api_role`` as the
    core's ``DatabaseRoles`` (defaults ``rafay_billing_owner``/``_writer``/``_reader``/``_tenant_api``)."""
    from airflow.sdk.configuration import conf

    from rafay_billing.db import DatabaseRoles
    from rafay_billing.errors import DatabaseError

    default = DatabaseRoles()
    names = {kind: (conf.get(SECTION, key, fallback="") or "").strip() or getattr(default, kind)
             for kind, key in ROLE_KEYS.items()}
    try:
        return DatabaseRoles(**names)
    except DatabaseError as exc:
        keys = ", ".join(f"{SECTION}.{key}" for key in ROLE_KEYS.values())
        raise SettingsError(f"[{SECTION}] database roles ({keys}): {exc}") from None


# --- alerts (issue 23 part 2) ----------------------------------------------------------------------
ALERTS_CONN_ID = "billing_alerts"
"""HTTP connection (type ``http``) that failure notices and deadline alerts are posted to as JSON: host =
the receiver's URL (its path included), extra headers as the HTTP provider takes them. Not defined: the
alert is only logged."""
DEADLINE_ALERTS_KEY = "deadline_alerts"
NIGHTLY_DEADLINE_KEY = "nightly_deadline_hours"
CLOSE_DEADLINE_KEY = "close_deadline_days"


def deadline_alerts() -> bool:
    """``[rafay_billing] deadline_alerts`` (default false): attach the Deadline Alerts to both DAGs."""
    from airflow.sdk.configuration import conf

    text = str(conf.get(SECTION, DEADLINE_ALERTS_KEY, fallback=_default(DEADLINE_ALERTS_KEY)) or "").strip().lower()
    if text in ("true", "1", "yes", "on"):
        return True
    if text in ("false", "0", "no", "off", ""):
        return False
    raise SettingsError(f"[{SECTION}] {DEADLINE_ALERTS_KEY} (env AIRFLOW__{SECTION.upper()}__"
                        f"{DEADLINE_ALERTS_KEY.upper()}) must be true or false, got {text!r}")


def _positive(key: str) -> float:
    from airflow.sdk.configuration import conf

    text = str(conf.get(SECTION, key, fallback=_default(key)) or "").strip() or _default(key)
    try:
        value = float(text)
    except ValueError:
        value = 0
    if not value > 0:
        raise SettingsError(f"[{SECTION}] {key} (env AIRFLOW__{SECTION.upper()}__{key.upper()}) must be a "
                            f"number > 0, got {text!r}")
    return value


def nightly_deadline() -> timedelta:
    """``[rafay_billing] nightly_deadline_hours`` (default 6) as the nightly run's allowed time since queued."""
    return timedelta(hours=_positive(NIGHTLY_DEADLINE_KEY))


def close_deadline() -> timedelta:
    """``[rafay_billing] close_deadline_days`` (default 5) as the close run's allowed time since queued."""
    return timedelta(days=_positive(CLOSE_DEADLINE_KEY))


# --- delivery of issued documents to the provider's billing system (issue 24) -----------------------
DELIVERY_CONN_ID = "billing_delivery"
"""HTTP connection (type ``http``) of the billing system: host = the receiver's URL, password = the signing
secret, login empty, extra ``{"Authorization": "..."}`` for the receiver's own credential, ``timeout``."""
DELIVERY_DAG_ID = "rafay_billing_delivery"
DELIVERY_MAX_ATTEMPTS = 5
"""Requests per document and run before it is left pending for the task's retry or the next run."""
DELIVERY_BACKOFF_SECONDS = 2
"""First wait after a transient failure; doubles per attempt (up to a minute)."""
DELIVERY_MAX_RETRY_AFTER_SECONDS = 300
"""A ``Retry-After`` longer than this leaves the document pending for a later run instead of waiting."""


SHRINK_GUARD_RATIO_KEY = "shrink_guard_ratio"
MAX_WINDOW_DAYS_KEY = "max_window_days"


def shrink_guard_ratio() -> Decimal:
    """``[rafay_billing] shrink_guard_ratio`` (default 0.5): a re-read of a billed (org, day) below this
    share of the instance hours the day holds is held (coverage ``held``, reason ``usage_shrank``)."""
    from airflow.sdk.configuration import conf

    from rafay_billing.ledger.guards import DEFAULT_SHRINK_GUARD_RATIO, GuardError, check_ratio

    value = conf.get(SECTION, SHRINK_GUARD_RATIO_KEY, fallback=None)
    if value is None or not str(value).strip():
        return DEFAULT_SHRINK_GUARD_RATIO
    try:
        return check_ratio(value)
    except GuardError as exc:
        raise SettingsError(
            f"[{SECTION}] {SHRINK_GUARD_RATIO_KEY} (env AIRFLOW__{SECTION.upper()}__{SHRINK_GUARD_RATIO_KEY.upper()}): "
            f"{exc}"
        ) from None


def max_window_days() -> int:
    """``[rafay_billing] max_window_days`` (default 62): the longest window a run bills unless its conf
    says ``{"allow_long_window": true}``."""

    value = int(_number(MAX_WINDOW_DAYS_KEY, "RAFAY_BILLING_MAX_WINDOW_DAYS", integer=True))
    if value < 1:
        raise SettingsError(f"[{SECTION}] {MAX_WINDOW_DAYS_KEY} must be a whole number >= 1, got {value}")
    return value


# --- approval of the close's invoices (issue 23, part 1) ---------------------------------------------


def _option(key: str) -> str:
    from airflow.sdk.configuration import conf

    value = conf.get(SECTION, key, fallback=None)
    return _default(key) if value is None else str(value).strip()


def _env_name(key: str) -> str:
    return f"[{SECTION}] {key} (env AIRFLOW__{SECTION.upper()}__{key.upper()})"


def close_approval() -> str:
    """``[rafay_billing] close_approval``: ``none`` (default: the close issues at once) or ``required``
    (drafts, then a person approves in Required Actions). Read when the close DAG is parsed."""
    value = (_option(CLOSE_APPROVAL_KEY) or "none").lower()
    if value not in CLOSE_APPROVAL_MODES:
        raise SettingsError(f"{_env_name(CLOSE_APPROVAL_KEY)} must be none or required, got {value!r}")
    return value


def approval_assigned_users() -> list[dict[str, str]]:
    """``[rafay_billing] approval_assigned_users`` as HITL users (``{"id", "name"}``); empty: anyone who may
    answer Required Actions."""
    users = []
    for part in _option(APPROVAL_USERS_KEY).split(","):
        user_id, _, name = part.strip().partition(":")
        if not user_id.strip():
            if part.strip():
                raise SettingsError(f"{_env_name(APPROVAL_USERS_KEY)}: {part.strip()!r} has no user id; write "
                                    "id or id:Display Name, comma-separated")
            continue
        users.append({"id": user_id.strip(), "name": name.strip() or user_id.strip()})
    return users


def approval_timeout() -> timedelta | None:
    """``[rafay_billing] approval_timeout_hours`` (default 72; 0: no limit): then Reject is taken."""
    text = _option(APPROVAL_TIMEOUT_KEY)
    try:
        hours = float(text)
    except ValueError:
        hours = -1
    if not hours >= 0 or hours == float("inf"):
        raise SettingsError(f"{_env_name(APPROVAL_TIMEOUT_KEY)} must be a number of hours >= 0, got {text!r}")
    return timedelta(hours=hours) if hours else None
