"""Where the Billing view's links lead: the Airflow UI's run and task pages of the run that set an
(org, day)'s coverage, and the Billing view of a window (the operator extra link). Airflow-free.

Links to run and task pages are plain same-origin links, without ``target``: the Airflow 3.3 UI shows
the view in an iframe sandboxed ``allow-scripts allow-same-origin allow-forms allow-downloads``, so
Chromium refuses a navigation of the top window (``target="_top"``, no ``allow-top-navigation``) and a
new window (``target="_blank"``, no ``allow-popups``); a navigation inside the frame is allowed, and
the UI mirrors it in its own address (``/plugin/billing/<path>``), so Back and a reload work.
"""

from __future__ import annotations

from datetime import date
from typing import Any
from urllib.parse import quote, urlencode

from rafay_provider.settings import BILLING_DAG_ID, CLOSE_DAG_ID, EXTRACT_TASK

CLOSE_RUN_PREFIX = f"{CLOSE_DAG_ID}__"  # close_pipeline.close_run_id: the close's re-read writes these
PLUGIN_ROUTE = "plugin/billing"  # the nav entry's url_route: /plugin/billing/<path> frames /<path>


def airflow_run(billing_run_id: str) -> tuple[str, str]:
    """The (DAG id, Airflow run id) of a run id the ledger holds (a close's re-read carries a prefix)."""
    if billing_run_id.startswith(CLOSE_RUN_PREFIX):
        return CLOSE_DAG_ID, billing_run_id[len(CLOSE_RUN_PREFIX):]
    return BILLING_DAG_ID, billing_run_id


def run_path(base: str, billing_run_id: str) -> str:
    dag_id, run_id = airflow_run(billing_run_id)
    return f"{base}dags/{dag_id}/runs/{quote(run_id, safe='')}"


def setting_task(row: dict[str, Any]) -> tuple[str, bool] | None:
    """(task id, mapped) of the task that set a coverage row: the extraction for a day that could not
    be read (its mapped instances are named after their orgs), else the step that loaded or rated it."""
    run_id, status, detail = row.get("run_id"), row.get("status"), row.get("detail") or ""
    if not run_id or status == "missing":
        return None
    if run_id.startswith(CLOSE_RUN_PREFIX):
        return "reread_late_usage", True  # the close's re-read loads and re-rates what changed
    if status == "failed" and detail.startswith("extraction failed"):
        return EXTRACT_TASK, True
    if status == "failed" and detail.startswith("load failed"):
        return "load_usage", False
    return "rate_window", False


def task_path(base: str, row: dict[str, Any]) -> str | None:
    task = setting_task(row)
    if task is None:
        return None
    task_id, mapped = task
    return f"{run_path(base, row['run_id'])}/tasks/{task_id}" + ("/mapped" if mapped else "")


def billing_window_path(base: str, first_day: date, days: int) -> str:
    """The Billing view of ``days`` days from ``first_day``, inside the Airflow UI (its nav page)."""
    return f"{base}{PLUGIN_ROUTE}/billing/?" + urlencode({"day": first_day.isoformat(), "days": days})
