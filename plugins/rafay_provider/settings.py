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

The tunables also take the older env names ``RAFAY_BILLING_EXTRACT_RETRIES`` and so on as a fallback.
"""

from __future__ import annotations

import os
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from rafay_billing.settings import DEFAULT_ISSUER

# --- names -------------------------------------------------------------------------------------------
RAFAY_CONN_ID = "rafay_default"
BILLING_CONN_ID = "billing_postgres"
DATA_URI_VARIABLE = "billing_data_uri"
PRICE_BOOK_VARIABLE = "billing_price_book_uri"
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
START_DATE_KEY = "billing_start_date"
DEFAULT_BILLING_START_DATE = "2026-11-01"
COVERAGE_LOOKBACK_DAYS = 35


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
    from airflow.sdk.configuration import conf  # noqa: PLC0415 - only when asked

    return parse_start_date(conf.get(SECTION, START_DATE_KEY, fallback=DEFAULT_BILLING_START_DATE))


def billing_start_datetime() -> datetime:
    """:func:`billing_start_date` as the DAG's timezone-aware start date (00:00 UTC)."""
    start = billing_start_date()
    return datetime(start.year, start.month, start.day, tzinfo=UTC)


def _tunable(key: str, legacy_env: str, default: str) -> str:
    """``[rafay_billing] <key>``, else the legacy env var, else ``default``."""
    from airflow.sdk.configuration import conf  # noqa: PLC0415 - only when asked

    value = conf.get(SECTION, key, fallback=None)
    if value is None or str(value).strip() == "":
        value = os.environ.get(legacy_env) or default
    return str(value).strip()


def _number(key: str, legacy_env: str, default: str, *, integer: bool) -> float:
    text = _tunable(key, legacy_env, default)
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
    return int(_number("extract_retries", "RAFAY_BILLING_EXTRACT_RETRIES", "2", integer=True))


def extract_retry_delay() -> timedelta:
    """First retry delay of an extraction batch (default 120 s; doubles per retry)."""
    return timedelta(seconds=_number("extract_retry_delay_seconds", "RAFAY_BILLING_EXTRACT_RETRY_DELAY_SECONDS",
                                     "120", integer=False))


def retry_delay() -> timedelta:
    """Retry delay of the database steps (default 60 s)."""
    return timedelta(seconds=_number("retry_delay_seconds", "RAFAY_BILLING_RETRY_DELAY_SECONDS", "60",
                                     integer=False))


def rating_connections() -> int:
    """Connections that rate a run's orgs at once (default 2: the rating is CPU-bound in PostgreSQL,
    one statement runs on one core, and PostgreSQL servers have at least two)."""
    value = int(_number("rating_connections", "RAFAY_BILLING_RATING_CONNECTIONS", "2", integer=True))
    if value < 1:
        raise SettingsError(f"[{SECTION}] rating_connections must be a whole number >= 1, got {value}")
    return value


ISSUER_KEY = "invoice_issuer"
DEFAULT_INVOICE_ISSUER = DEFAULT_ISSUER
CLOSED_PERIODS_URI = "x-rafay-billing://closed-periods"
"""The Asset the monthly close emits when a period is closed (its event's extra names the period).
An ``x-`` scheme: Airflow looks any other scheme up among every provider's URI normalizers when the
DAG file is parsed, which imports boto3, requests and the postgres provider at parse time."""


def invoice_issuer() -> str:
    """``[rafay_billing] invoice_issuer`` (env ``AIRFLOW__RAFAY_BILLING__INVOICE_ISSUER``, default ``RAFAY``):
    who issues the invoices; invoice numbers are ``<issuer>-NNNNNN``, gap-free per issuer."""
    from airflow.sdk.configuration import conf  # noqa: PLC0415 - only when asked

    from rafay_billing.errors import PeriodError  # noqa: PLC0415
    from rafay_billing.periods.invoices import check_issuer

    value = (conf.get(SECTION, ISSUER_KEY, fallback=DEFAULT_INVOICE_ISSUER) or "").strip()
    try:
        return check_issuer(value)
    except PeriodError as exc:
        raise SettingsError(f"[{SECTION}] {ISSUER_KEY} (env AIRFLOW__{SECTION.upper()}__{ISSUER_KEY.upper()}): {exc}") from None


SHRINK_GUARD_RATIO_KEY = "shrink_guard_ratio"
MAX_WINDOW_DAYS_KEY = "max_window_days"


def shrink_guard_ratio() -> Decimal:
    """``[rafay_billing] shrink_guard_ratio`` (default 0.5): a re-read of a billed (org, day) below this
    share of the instance hours the day holds is held (coverage ``held``, reason ``usage_shrank``)."""
    from airflow.sdk.configuration import conf  # noqa: PLC0415 - only when asked

    from rafay_billing.ledger.guards import DEFAULT_SHRINK_GUARD_RATIO, GuardError, check_ratio  # noqa: PLC0415

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
    from rafay_billing.window import DEFAULT_MAX_WINDOW_DAYS  # noqa: PLC0415

    value = int(_number(MAX_WINDOW_DAYS_KEY, "RAFAY_BILLING_MAX_WINDOW_DAYS", str(DEFAULT_MAX_WINDOW_DAYS),
                        integer=True))
    if value < 1:
        raise SettingsError(f"[{SECTION}] {MAX_WINDOW_DAYS_KEY} must be a whole number >= 1, got {value}")
    return value
