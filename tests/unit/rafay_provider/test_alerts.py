"""Issue 23 part 2: the billing alert notifier (posts to ``billing_alerts`` or logs), the failure callback
on both DAGs, and the Deadline Alerts attached only with ``[rafay_billing] deadline_alerts``."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import subprocess
import sys
import textwrap
from types import SimpleNamespace

import pytest

from rafay_provider.notifications import BillingAlertNotifier, alert_message
from tests.support.alert_receiver import alert_receiver
from tests.support.paths import REPO

PARSE_SCRIPT = textwrap.dedent(
    """
    import json, sys
    from airflow.dag_processing.dagbag import DagBag
    bag = DagBag(dag_folder=sys.argv[1])
    out = {"errors": {k: str(v) for k, v in bag.import_errors.items()}}
    for dag_id in ("rafay_usage_billing", "rafay_billing_close"):
        dag = bag.dags.get(dag_id)
        if dag is None:
            continue
        alerts = dag.deadline if isinstance(dag.deadline, list) else [dag.deadline] if dag.deadline else []
        out[dag_id] = {
            "on_failure_callback": getattr(dag.on_failure_callback, "__qualname__", None),
            "deadlines": [{
                "reference": type(a.reference).__name__, "seconds": a.interval.total_seconds(),
                "callback": type(a.callback).__name__, "path": a.callback.path, "kwargs": a.callback.kwargs,
            } for a in alerts],
        }
    print(json.dumps(out))
    """
)


def _parse(env: dict[str, str]) -> dict:
    base = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW__RAFAY_BILLING__")}
    proc = subprocess.run([sys.executable, "-c", PARSE_SCRIPT, str(REPO / "dags")], capture_output=True,
                          text=True, timeout=300, env={**base, **env})
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_both_dags_notify_on_failure_and_carry_no_deadline_by_default() -> None:
    result = _parse({})
    assert result["errors"] == {}
    for dag_id in ("rafay_usage_billing", "rafay_billing_close"):
        assert result[dag_id] == {"on_failure_callback": "run_failed", "deadlines": []}


def test_deadline_alerts_on_attach_queued_at_deadlines_with_the_notifier_as_async_callback() -> None:
    result = _parse({"AIRFLOW__RAFAY_BILLING__DEADLINE_ALERTS": "true",
                     "AIRFLOW__RAFAY_BILLING__NIGHTLY_DEADLINE_HOURS": "4",
                     "AIRFLOW__RAFAY_BILLING__CLOSE_DEADLINE_DAYS": "3"})
    assert result["errors"] == {}
    nightly, = result["rafay_usage_billing"]["deadlines"]
    close, = result["rafay_billing_close"]["deadlines"]
    for alert in (nightly, close):
        assert alert["reference"] == "DagRunQueuedAtDeadline"  # not the logical date: catch-up runs are not late
        assert alert["callback"] == "AsyncCallback"
        assert alert["path"] == "rafay_provider.notifications.BillingAlertNotifier"
        assert alert["kwargs"]["event"] == "deadline_missed"
    assert nightly["seconds"] == 4 * 3600 and "within 4 h of being queued" in nightly["kwargs"]["what"]
    assert close["seconds"] == 3 * 86400 and "within 3 days of being queued" in close["kwargs"]["what"]


def test_the_defaults_are_6_hours_and_5_days() -> None:
    result = _parse({"AIRFLOW__RAFAY_BILLING__DEADLINE_ALERTS": "True"})
    assert [d["seconds"] for d in result["rafay_usage_billing"]["deadlines"]] == [6 * 3600]
    assert [d["seconds"] for d in result["rafay_billing_close"]["deadlines"]] == [5 * 86400]


def test_a_bad_deadline_setting_is_an_import_error_naming_it() -> None:
    result = _parse({"AIRFLOW__RAFAY_BILLING__DEADLINE_ALERTS": "true",
                     "AIRFLOW__RAFAY_BILLING__NIGHTLY_DEADLINE_HOURS": "-1"})
    errors = " ".join(result["errors"].values()) if result["errors"] else ""
    assert "nightly_deadline_hours" in errors and "> 0" in errors


def _failure_context(run_id: str = "scheduled__2026-11-20T00:00:00+00:00") -> dict:
    ti = SimpleNamespace(task_id="check_run", map_index=-1)  # no task API here: the context's task names it
    return {"dag": SimpleNamespace(dag_id="rafay_usage_billing"), "run_id": run_id, "ti": ti,
            "reason": "task_failure"}


def test_failure_notice_is_posted_as_json_naming_dag_run_task_and_link(monkeypatch) -> None:
    monkeypatch.setenv("AIRFLOW__API__BASE_URL", "https://airflow.example.com/")
    with alert_receiver() as receiver:
        monkeypatch.setenv("AIRFLOW_CONN_BILLING_ALERTS", receiver.connection_json())
        BillingAlertNotifier()(_failure_context())
        message, = receiver.wait_for(1)
    assert receiver.paths == ["/hooks/billing"]
    assert message["event"] == "dag_run_failed"
    assert (message["dag_id"], message["run_id"]) == ("rafay_usage_billing", "scheduled__2026-11-20T00:00:00+00:00")
    assert message["failed_tasks"] == ["check_run"] and message["reason"] == "task_failure"
    assert message["url"] == ("https://airflow.example.com/dags/rafay_usage_billing/runs/"
                              "scheduled__2026-11-20T00%3A00%3A00%2B00%3A00")
    assert "rafay_usage_billing" in message["text"] and "check_run" in message["text"]


def test_without_the_connection_the_notice_is_only_logged(monkeypatch, caplog) -> None:
    monkeypatch.delenv("AIRFLOW_CONN_BILLING_ALERTS", raising=False)
    with caplog.at_level(logging.WARNING, logger="rafay_provider.notifications"):
        BillingAlertNotifier()(_failure_context())  # the stock HttpNotifier raises here
    assert "Connection billing_alerts is not defined: billing alert not sent" in caplog.text
    assert "rafay_usage_billing" in caplog.text and "check_run" in caplog.text


def _deadline_context() -> dict:
    """What the scheduler hands a missed deadline's callback (``Deadline.handle_miss``)."""
    return {"dag_run": {"dag_id": "rafay_billing_close", "dag_run_id": "scheduled__2026-12-01T00:00:00+00:00",
                        "queued_at": "2026-12-01T00:00:05Z", "state": "running"},
            "deadline": {"id": "x", "deadline_time": "2026-12-06T00:00:05Z"}}


def test_deadline_alert_is_posted_by_the_async_path_as_the_triggerer_runs_it(monkeypatch) -> None:
    with alert_receiver() as receiver:
        monkeypatch.setenv("AIRFLOW_CONN_BILLING_ALERTS", receiver.connection_json())

        async def as_the_callback_trigger_does() -> None:  # airflow.triggers.callback.CallbackTrigger.run
            await BillingAlertNotifier(event="deadline_missed", what="the monthly close did not finish",
                                       context=_deadline_context())

        asyncio.run(as_the_callback_trigger_does())
        message, = receiver.wait_for(1)
    assert message["event"] == "deadline_missed"
    assert (message["dag_id"], message["run_id"]) == ("rafay_billing_close", "scheduled__2026-12-01T00:00:00+00:00")
    assert message["what"] == "the monthly close did not finish"
    assert message["deadline_time"] == "2026-12-06T00:00:05Z" and message["state"] == "running"
    assert message["url"].endswith("/dags/rafay_billing_close/runs/scheduled__2026-12-01T00%3A00%3A00%2B00%3A00")


def test_deadline_alert_without_the_connection_is_logged(monkeypatch, caplog) -> None:
    monkeypatch.delenv("AIRFLOW_CONN_BILLING_ALERTS", raising=False)

    async def run() -> None:
        await BillingAlertNotifier(event="deadline_missed", context=_deadline_context())

    with caplog.at_level(logging.WARNING, logger="rafay_provider.notifications"):
        asyncio.run(run())
    assert "not sent" in caplog.text and "rafay_billing_close" in caplog.text


@pytest.mark.parametrize("extra", [{}, {"ti": None}])
def test_the_message_never_fails_on_a_thin_context(extra: dict) -> None:
    message = alert_message({"run_id": "r1", "dag": SimpleNamespace(dag_id="d"), **extra}, "dag_run_failed")
    assert message["dag_id"] == "d" and message["run_id"] == "r1" and message["what"] == "failed"
