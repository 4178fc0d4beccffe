"""The billing alert: one notifier for failed runs (``on_failure_callback``) and missed deadlines
(a Deadline Alert's ``AsyncCallback``), posting JSON to connection ``billing_alerts``.

Why a subclass of the HTTP provider's ``HttpNotifier``: its hooks, auth and connection extras as they are,
but the stock notifier raises when its connection does not exist; a deployment without a receiver should
still learn of the failure in the log, and a missing receiver must not turn a failure notice into a second
failure. The message is built here from the callback's context, so both callers say the same things: the
DAG, the run, what failed or is late, and a link to the run in the Airflow UI (``[api] base_url``).
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from airflow.providers.http.notifications import HttpNotifier

from rafay_provider.settings import ALERTS_CONN_ID

if TYPE_CHECKING:
    from airflow.sdk import Context

log = logging.getLogger(__name__)

FAILED = "dag_run_failed"
DEADLINE = "deadline_missed"
WATCHER_TASK = "fail_if_any_task_failed"
"""The daily DAG's watcher task: it fails whenever another task did, so it names nothing by itself."""


def run_url(dag_id: str, run_id: str) -> str:
    """The run's page in the Airflow UI, under ``[api] base_url`` (default ``http://localhost:8080``)."""
    from airflow.sdk.configuration import conf

    base = (conf.get("api", "base_url", fallback="") or "http://localhost:8080").rstrip("/")
    return f"{base}/dags/{quote(dag_id, safe='')}/runs/{quote(run_id, safe='')}"


def _text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)


def _failed_tasks(context: Any, dag_id: str, run_id: str) -> list[str]:
    """The run's failed task instances (``task[map_index]``), as the task API reports them; the context's
    last failed task when that cannot be asked (the watcher task is left out when others failed)."""
    names: list[str] = []
    ti = context.get("ti")
    try:
        states = ti.get_task_states(dag_id=dag_id, run_ids=[run_id]) if ti is not None else {}
        for key, state in sorted((states or {}).get(run_id, {}).items()):
            if str(state) == "failed":
                names.append(str(key))
    except Exception as exc:  # not every caller has the task API (e.g. a bare context in tests)
        log.debug("task states not available for %s %s: %s", dag_id, run_id, exc)
    if not names and ti is not None:
        map_index = getattr(ti, "map_index", -1)
        names.append(ti.task_id + (f"[{map_index}]" if map_index not in (None, -1) else ""))
    real = [n for n in names if not n.startswith(WATCHER_TASK)]
    return real or names


def alert_message(context: Any, event: str, what: str | None = None) -> dict[str, Any]:
    """The JSON posted: ``event``, ``dag_id``, ``run_id``, ``what`` (failed or late), ``url`` and ``text``.

    ``context``: a failure callback's (``dag``/``run_id``/``ti``/``reason``) or a deadline's
    (``dag_run`` as a dict, ``deadline``)."""
    dag_run = context.get("dag_run")
    as_dict = dag_run if isinstance(dag_run, dict) else {}
    dag = context.get("dag")
    dag_id = str(as_dict.get("dag_id") or getattr(dag, "dag_id", None) or getattr(dag_run, "dag_id", "") or "")
    run_id = str(as_dict.get("dag_run_id") or as_dict.get("run_id") or context.get("run_id")
                 or getattr(dag_run, "run_id", "") or "")
    message: dict[str, Any] = {"event": event, "dag_id": dag_id, "run_id": run_id, "url": run_url(dag_id, run_id)}
    if event == FAILED:
        failed = _failed_tasks(context, dag_id, run_id)
        message["failed_tasks"] = failed
        message["reason"] = _text(context.get("reason"))
        what = what or ("failed: " + ", ".join(failed) if failed else "failed")
        message["what"] = what
        message["text"] = f"Billing run failed: DAG {dag_id}, run {run_id}: {what}. See {message['url']}"
    else:
        deadline = context.get("deadline") or {}
        message["deadline_time"] = _text(deadline.get("deadline_time"))
        message["queued_at"] = _text(as_dict.get("queued_at"))
        message["state"] = _text(as_dict.get("state"))
        message["what"] = what or "the run did not finish by its deadline"
        message["text"] = (f"Billing run late: DAG {dag_id}, run {run_id}: {message['what']} "
                           f"(deadline {message['deadline_time']}, state {message['state']}). See {message['url']}")
    return message


class BillingAlertNotifier(HttpNotifier):
    """POSTs :func:`alert_message` as JSON to ``billing_alerts`` (``http_conn_id``); only logs it when
    that connection does not exist.

    ``event``: ``dag_run_failed`` (an ``on_failure_callback``) or ``deadline_missed`` (an ``AsyncCallback``:
    the triggerer builds it from the kwargs and a context, then awaits it). ``what``: the text naming what
    is late or failed (default: the failed tasks, or "did not finish by its deadline").
    """

    def __init__(self, *, event: str = FAILED, what: str | None = None, http_conn_id: str = ALERTS_CONN_ID,
                 endpoint: str | None = None, timeout: float = 10.0, context: Any = None) -> None:
        super().__init__(http_conn_id=http_conn_id, endpoint=endpoint, method="POST",
                         headers={"Content-Type": "application/json"},
                         extra_options={"timeout": timeout, "check_response": True}, context=context)
        self.timeout = timeout
        self.event = event
        self.what = what

    def render_template_fields(self, context: Any, jinja_env: Any = None) -> None:
        """Nothing to render: the message is built from the context (no Jinja environment from the DAG)."""

    def _log_only(self, message: dict[str, Any]) -> None:
        log.warning("Connection %s is not defined: billing alert not sent: %s", self.http_conn_id, message["text"])

    def notify(self, context: Context) -> None:
        """Sync: the failure callback (run by the DAG processor, or in-process by ``airflow dags test``)."""
        from airflow.sdk import BaseHook
        from airflow.sdk.exceptions import AirflowNotFoundException

        message = alert_message(context, self.event, self.what)
        try:
            BaseHook.get_connection(self.http_conn_id)
        except AirflowNotFoundException:
            self._log_only(message)
            return
        self.json = message
        log.info("Posting billing alert to connection %s: %s", self.http_conn_id, message["text"])
        super().notify(context)

    async def async_notify(self, context: Context) -> None:
        """Async: the Deadline Alert's callback, run by the triggerer."""
        from airflow.providers.common.compat.connection import get_async_connection
        from airflow.sdk.exceptions import AirflowNotFoundException

        message = alert_message(context, self.event, self.what)
        try:
            await get_async_connection(conn_id=self.http_conn_id)
        except AirflowNotFoundException:
            self._log_only(message)
            return
        import aiohttp

        self.json = message
        self.extra_options = {"timeout": aiohttp.ClientTimeout(total=self.timeout), "check_response": True}
        log.info("Posting billing alert to connection %s: %s", self.http_conn_id, message["text"])
        await super().async_notify(context)
