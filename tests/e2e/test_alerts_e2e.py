"""Issue 23 part 2 end to end: ``airflow dags test`` of a failing run of each DAG posts the failure notice
to a local receiver through connection ``billing_alerts``; without the connection it is only logged."""

from __future__ import annotations

from pathlib import Path

import pytest

from rafay_devkit.airflow_env import airflow_env, dags_test
from rafay_provider.settings import BILLING_DAG_ID, CLOSE_DAG_ID
from tests.support.alert_receiver import alert_receiver
from tests.support.e2e import metadata_home

pytestmark = pytest.mark.e2e

CONFLICTING_CONF = {"days": 2, "window_start": "2026-11-10T00:00:00Z", "window_end": "2026-11-11T00:00:00Z"}


@pytest.fixture(scope="module")
def airflow_home(tmp_path_factory) -> Path:
    return metadata_home(tmp_path_factory, "airflow-alerts")


def _env(airflow_home: Path, tmp_path: Path, receiver_conn: str | None) -> dict[str, str]:
    env = airflow_env(airflow_home, rafay_url="http://127.0.0.1:9", rafay_api_key="unused",
                      billing_dsn="postgresql://postgres@127.0.0.1:9/none", data_uri=(tmp_path / "data").as_uri(),
                      billing_start_date="2026-10-01")
    env["AIRFLOW__API__BASE_URL"] = "https://airflow.example.com"
    env["AIRFLOW__RAFAY_BILLING__RETRY_DELAY_SECONDS"] = "0"
    env.pop("AIRFLOW_CONN_BILLING_ALERTS", None)
    if receiver_conn:
        env["AIRFLOW_CONN_BILLING_ALERTS"] = receiver_conn
    return env


def test_a_failed_nightly_run_posts_a_notice_naming_the_failed_task(airflow_home, tmp_path) -> None:
    with alert_receiver() as receiver:
        proc = dags_test(_env(airflow_home, tmp_path, receiver.connection_json()), "2026-11-20", CONFLICTING_CONF)
        received = receiver.wait_for(1, timeout=5)
    assert proc.returncode != 0, "the run must fail"
    assert len(received) == 1, proc.stdout[-3000:] + proc.stderr[-3000:]
    message = received[0]
    assert message["event"] == "dag_run_failed" and message["dag_id"] == BILLING_DAG_ID
    assert message["run_id"].startswith("manual__")
    # resolve_window failed; load_usage and check_run (trigger rule all_done) failed after it. Under
    # `dags test` the callback has no task API, so the notice names the task whose failure ended the run
    # (the DAG processor names every failed task); never the watcher alone.
    assert message["failed_tasks"] and set(message["failed_tasks"]) <= {"resolve_window", "load_usage", "check_run"}
    assert message["url"].startswith(f"https://airflow.example.com/dags/{BILLING_DAG_ID}/runs/manual__")
    assert message["failed_tasks"][0] in message["text"] and BILLING_DAG_ID in message["text"]


def test_a_failed_close_posts_a_notice(airflow_home, tmp_path) -> None:
    with alert_receiver() as receiver:
        proc = dags_test(_env(airflow_home, tmp_path, receiver.connection_json()), "2026-11-01",
                         dag_id=CLOSE_DAG_ID)  # the billing database is unreachable
        received = receiver.wait_for(1, timeout=5)
    assert proc.returncode != 0
    assert len(received) == 1, proc.stdout[-3000:] + proc.stderr[-3000:]
    message = received[0]
    assert message["event"] == "dag_run_failed" and message["dag_id"] == CLOSE_DAG_ID
    assert message["failed_tasks"] and message["url"].endswith(message["run_id"].replace(":", "%3A").replace("+", "%2B"))


def test_without_the_connection_the_failure_is_logged_and_nothing_else_fails(airflow_home, tmp_path) -> None:
    proc = dags_test(_env(airflow_home, tmp_path, None), "2026-11-21", CONFLICTING_CONF)
    output = proc.stdout + proc.stderr
    assert "Connection billing_alerts is not defined: billing alert not sent" in output
    assert "Callback failed" not in output
