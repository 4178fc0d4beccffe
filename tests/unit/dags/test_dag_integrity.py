"""Every DAG file imports cleanly, with no network, no database and no heavy imports at parse time."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

from tests.support.paths import REPO

PARSE_SCRIPT = textwrap.dedent(
    """
    import json, socket, sys
    import airflow.sdk  # the cost every DAG file pays anyway
    before = set(sys.modules)

    def refuse(*args, **kwargs):
        raise RuntimeError("network access at DAG parse time")
    socket.socket.connect = refuse
    socket.create_connection = refuse

    from airflow.dag_processing.dagbag import DagBag
    bag = DagBag(dag_folder=sys.argv[1])
    new = sorted(set(sys.modules) - before)
    dag = bag.dags.get("rafay_usage_billing")
    close = bag.dags.get("rafay_billing_close")
    print(json.dumps({
        "close": {
            "tasks": [t.task_id for t in close.topological_sort()],
            "outlets": {t.task_id: [a.uri for a in t.outlets] for t in close.tasks if t.outlets},
            "timetable": type(close.timetable).__name__, "summary": close.timetable.expression,
            "start_date": close.start_date.isoformat(), "catchup": close.catchup,
            "max_active_runs": close.max_active_runs, "params": sorted(close.params),
            "pools": {t.task_id: t.pool for t in close.tasks},
            "upstream": {t.task_id: sorted(t.upstream_task_ids) for t in close.tasks},
            "hitl": {t.task_id: {"options": t.options, "defaults": t.defaults, "params": sorted(t.params),
                                 "assigned_users": t.assigned_users,
                                 "timeout": t.response_timeout.total_seconds() if t.response_timeout else None,
                                 "type": type(t).__mro__[1].__name__}
                     for t in close.tasks if hasattr(t, "options") and hasattr(t, "response_timeout")},
        } if close else None,
        "errors": {k: str(v) for k, v in bag.import_errors.items()},
        "dags": sorted(bag.dag_ids),
        "new_modules": new,
        "tasks": sorted(t.task_id for t in dag.tasks) if dag else [],
        "timetable": type(dag.timetable).__name__ if dag else None,
        "catchup": dag.catchup if dag else None,
        "start_date": dag.start_date.isoformat() if dag else None,
        "max_active_runs": dag.max_active_runs if dag else None,
        "watcher_upstream": sorted(dag.get_task("fail_if_any_task_failed").upstream_task_ids) if dag else [],
        "watcher_rule": getattr(dag.get_task("fail_if_any_task_failed").trigger_rule, "value", None) if dag else None,
    }))
    """
)


def _parse(env: dict[str, str] | None = None) -> dict:
    proc = subprocess.run(
        [sys.executable, "-c", PARSE_SCRIPT, str(REPO / "dags")], capture_output=True, text=True, timeout=300,
        env={**os.environ, **(env or {})},
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_dags_import_without_errors_network_or_heavy_imports() -> None:
    result = _parse()
    assert result["errors"] == {}
    assert "rafay_usage_billing" in result["dags"]
    heavy = [
        m for m in result["new_modules"]
        if m.split(".")[0] in {"pandas", "requests", "psycopg", "psycopg2", "sqlalchemy_utils", "s3fs", "boto3"}
        or m.startswith(("rafay_billing.source.client", "rafay_billing.source.extract", "airflow.providers.postgres"))
    ]
    assert heavy == [], f"heavy modules imported at DAG parse time: {heavy}"


def test_dag_shape() -> None:
    result = _parse()
    assert result["timetable"] == "CronDataIntervalTimetable"
    assert {
        "resolve_window", "wait_for_usage_to_settle", "migrate_schema", "sync_price_book", "sync_contracts",
        "list_orgs",
        "extract_org", "load_usage", "rate_window", "publish_reports", "check_run",
    } <= set(result["tasks"])


def test_catchup_from_the_configured_billing_start_date() -> None:
    """Every day gets a run: catch-up on, bounded, from ``[rafay_billing] billing_start_date``."""
    result = _parse({"AIRFLOW__RAFAY_BILLING__BILLING_START_DATE": "2026-10-15"})
    assert result["catchup"] is True
    assert result["start_date"] == "2026-10-15T00:00:00+00:00"
    assert 1 <= result["max_active_runs"] <= 5


def test_a_bad_billing_start_date_is_an_import_error_that_says_what_to_write() -> None:
    result = _parse({"AIRFLOW__RAFAY_BILLING__BILLING_START_DATE": "15/10/2026"})
    # both DAGs start from it: the daily billing and the monthly close
    assert sorted(os.path.basename(f) for f in result["errors"]) == ["rafay_billing_close.py", "rafay_usage_billing.py"]
    for error in result["errors"].values():
        assert "billing_start_date" in error and "like 2026-11-01" in error and "15/10/2026" in error


def test_every_task_is_watched_so_any_failure_fails_the_run() -> None:
    result = _parse()
    assert result["watcher_rule"] == "one_failed"
    assert set(result["watcher_upstream"]) == set(result["tasks"]) - {"fail_if_any_task_failed"}


def test_close_dag_shape() -> None:
    """Monthly, from the month of the first billing day, one run at a time, the Asset on the last task."""
    close = _parse({"AIRFLOW__RAFAY_BILLING__BILLING_START_DATE": "2026-10-15"})["close"]
    assert close["tasks"] == [
        "resolve_period", "wait_for_period", "sync_price_book", "sync_contracts", "late_usage_orgs", "reread_late_usage",
        "collect_late_usage", "rerate_period", "check_ready", "issue_invoices", "write_documents", "export_focus",
        "announce_closed_period",
    ]  # issue 21: price book, late usage (per org), re-rating, readiness, issue
    assert close["outlets"] == {"announce_closed_period": ["x-rafay-billing://closed-periods"]}
    assert close["timetable"] == "CronDataIntervalTimetable" and close["summary"] == "0 0 1 * *"
    assert close["start_date"] == "2026-10-01T00:00:00+00:00" and close["catchup"] is True
    assert close["max_active_runs"] == 1
    assert close["params"] == ["allow_exceptions", "period", "poke_seconds", "settle_minutes", "wait_minutes"]
    assert close["pools"]["reread_late_usage"] == close["pools"]["late_usage_orgs"] == "rafay_api"


def test_close_dag_with_approval_required_drafts_asks_and_then_issues() -> None:
    """Issue 23 part 1: with close_approval = required, drafts then a HITLOperator (Approve / Reject, a
    comment, assigned users and timeout from config, Reject by default) before issue_invoices."""
    close = _parse({"AIRFLOW__RAFAY_BILLING__CLOSE_APPROVAL": "required",
                    "AIRFLOW__RAFAY_BILLING__APPROVAL_ASSIGNED_USERS": "finance:Finance Lead, admin",
                    "AIRFLOW__RAFAY_BILLING__APPROVAL_TIMEOUT_HOURS": "24"})["close"]
    assert close["tasks"] == [
        "resolve_period", "wait_for_period", "sync_price_book", "sync_contracts", "late_usage_orgs",
        "reread_late_usage", "collect_late_usage", "rerate_period", "check_ready", "draft_invoices",
        "approve_invoices",
        "issue_invoices", "write_documents", "export_focus", "announce_closed_period",
    ]
    assert close["hitl"] == {"approve_invoices": {
        "options": ["Approve", "Reject"], "defaults": ["Reject"], "params": ["comment"],
        "assigned_users": [{"id": "finance", "name": "Finance Lead"}, {"id": "admin", "name": "admin"}],
        "timeout": 24 * 3600.0, "type": "HITLOperator",
    }}
    assert "approve_invoices" in close["upstream"]["issue_invoices"]
    assert close["upstream"]["approve_invoices"] == ["draft_invoices"]


def test_close_dag_without_approval_issues_at_once() -> None:
    close = _parse({"AIRFLOW__RAFAY_BILLING__CLOSE_APPROVAL": "none"})["close"]
    assert "approve_invoices" not in close["tasks"] and close["hitl"] == {}


def test_a_bad_close_approval_is_an_import_error_that_says_what_to_write() -> None:
    result = _parse({"AIRFLOW__RAFAY_BILLING__CLOSE_APPROVAL": "maybe"})
    [error] = [e for f, e in result["errors"].items() if f.endswith("rafay_billing_close.py")]
    assert "close_approval" in error and "none or required" in error and "maybe" in error
