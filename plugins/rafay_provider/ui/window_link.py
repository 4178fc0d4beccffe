"""The URL of the extra link "Billing for this window" (``plugin.BillingWindowLink``), computed in the
api-server from the task's DAG run: the daily DAG's window as its ``resolve_window`` task resolves it
(the conf's window or days, else the data interval), the close DAG's month (the conf's ``period``, else
the month before the data interval's end)."""

from __future__ import annotations

import logging
from datetime import date, datetime, timedelta
from typing import Any

from rafay_provider.settings import BILLING_DAG_ID, CLOSE_DAG_ID
from rafay_provider.ui.links import billing_window_path

log = logging.getLogger(__name__)


def window_days(dag_id: str, interval_start: datetime | None, interval_end: datetime | None,
                conf: dict[str, Any] | None) -> tuple[date, int, date | None] | None:
    """(first day, days, period) the run bills or closes; None for another DAG or an unusable conf
    (the run's resolve task fails on it: there is no window to show)."""
    conf = dict(conf or {})
    if dag_id == BILLING_DAG_ID:
        from rafay_billing.window import WindowError, resolve_window

        try:
            window, _ = resolve_window(interval_start, interval_end, conf, max_days=None)
        except WindowError:
            return None
        first = window.start.date()
        return first, (window.end.date() - first).days, None
    if dag_id == CLOSE_DAG_ID:
        label = conf.get("period")
        if isinstance(label, str) and len(label) == 7:
            start = date.fromisoformat(f"{label}-01")
        elif interval_end is not None:
            start = (interval_end.date().replace(day=1) - timedelta(days=1)).replace(day=1)
        else:
            return None
        end = (start + timedelta(days=32)).replace(day=1)
        return start, (end - start).days, start
    return None


def link_for(base: str, dag_id: str, interval_start: datetime | None, interval_end: datetime | None,
             conf: dict[str, Any] | None) -> str | None:
    found = window_days(dag_id, interval_start, interval_end, conf)
    if found is None:
        return None
    first, days, period = found
    url = billing_window_path(base, first, days)
    return url + (f"&period={period.isoformat()}" if period else "")


def billing_link(dag_id: str, run_id: str) -> str | None:
    """The link of a task of run ``run_id`` of ``dag_id`` (read from Airflow's metadata database)."""
    if dag_id not in (BILLING_DAG_ID, CLOSE_DAG_ID):
        return None
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session
    from sqlalchemy import select

    from rafay_provider.ui.sources import ui_base_path

    with create_session() as session:
        run = session.scalar(select(DagRun).where(DagRun.dag_id == dag_id, DagRun.run_id == run_id))
        if run is None:
            return None
        start, end, conf = run.data_interval_start, run.data_interval_end, dict(run.conf or {})
    return link_for(ui_base_path(), dag_id, start, end, conf)
