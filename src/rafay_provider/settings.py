"""Deployment settings of the billing DAG, read from Airflow's configuration (cheap: no I/O).

``[rafay_billing] billing_start_date`` (env ``AIRFLOW__RAFAY_BILLING__BILLING_START_DATE``) is the
first UTC day the DAG bills: its start date, and the earliest day the coverage check asks for. Set it
in one place per deployment; catch-up runs start there.
"""

from __future__ import annotations

from datetime import UTC, date, datetime

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


ISSUER_KEY = "invoice_issuer"
DEFAULT_INVOICE_ISSUER = "RAFAY"
CLOSED_PERIODS_URI = "x-rafay-billing://closed-periods"
"""The Asset the monthly close emits when a period is closed (its event's extra names the period).
An ``x-`` scheme: Airflow looks any other scheme up among every provider's URI normalizers when the
DAG file is parsed, which imports boto3, requests and the postgres provider at parse time."""


def invoice_issuer() -> str:
    """``[rafay_billing] invoice_issuer`` (env ``AIRFLOW__RAFAY_BILLING__INVOICE_ISSUER``, default ``RAFAY``):
    who issues the invoices; invoice numbers are ``<issuer>-NNNNNN``, gap-free per issuer."""
    from airflow.sdk.configuration import conf  # noqa: PLC0415 - only when asked

    from rafay_billing.periods import PeriodError, check_issuer  # noqa: PLC0415

    value = (conf.get(SECTION, ISSUER_KEY, fallback=DEFAULT_INVOICE_ISSUER) or "").strip()
    try:
        return check_issuer(value)
    except PeriodError as exc:
        raise SettingsError(f"[{SECTION}] {ISSUER_KEY} (env AIRFLOW__{SECTION.upper()}__{ISSUER_KEY.upper()}): {exc}") from None
