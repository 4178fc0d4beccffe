"""What the DAG files attach at parse time: the failure callback and, when ``[rafay_billing]
deadline_alerts`` is on, the Deadline Alert. Light on purpose (``airflow.sdk`` and settings only): the
notifier and the HTTP provider are imported when an alert is sent, not each time a DAG file is parsed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rafay_provider import settings

if TYPE_CHECKING:
    from airflow.sdk.definitions.deadline import DeadlineAlert

NOTIFIER_PATH = "rafay_provider.notifications.BillingAlertNotifier"
"""The notifier, by import path: the triggerer imports it to run a missed deadline's callback."""


def run_failed(context: Any) -> None:
    """``on_failure_callback`` of both DAGs: posts the failure notice (see ``notifications``)."""
    from rafay_provider.notifications import BillingAlertNotifier

    BillingAlertNotifier()(context)


def _hours(interval: Any) -> str:
    hours = interval.total_seconds() / 3600
    return f"{hours:g} h" if hours < 48 else f"{hours / 24:g} days"


def deadline(dag_id: str) -> DeadlineAlert | None:
    """The DAG's Deadline Alert, or None while ``deadline_alerts`` is off (the default).

    Counted from when the run was queued (``DAGRUN_QUEUED_AT``), not its logical date: a catch-up or
    backfill run of an old day is not late the moment it starts. The callback is the notifier run by the
    triggerer (``AsyncCallback``), with ``what`` naming the limit that was missed."""
    if not settings.deadline_alerts():
        return None
    from airflow.sdk.definitions.callback import AsyncCallback  # airflow.sdk exports them lazily (mypy)
    from airflow.sdk.definitions.deadline import DeadlineAlert, DeadlineReference

    if dag_id == settings.CLOSE_DAG_ID:
        interval = settings.close_deadline()
        what = f"the monthly close did not finish within {_hours(interval)} of being queued"
    else:
        interval = settings.nightly_deadline()
        what = f"the nightly billing run did not finish within {_hours(interval)} of being queued"
    return DeadlineAlert(
        reference=DeadlineReference.DAGRUN_QUEUED_AT,
        interval=interval,
        callback=AsyncCallback(NOTIFIER_PATH, kwargs={"event": "deadline_missed", "what": what}),
        name=f"{dag_id}_deadline",
    )
