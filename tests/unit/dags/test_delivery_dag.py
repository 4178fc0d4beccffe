"""The delivery DAG parses with no network and no heavy imports, runs on the close's Asset, and has typed Params."""

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
    import airflow.sdk
    before = set(sys.modules)

    def refuse(*args, **kwargs):
        raise RuntimeError("network access at DAG parse time")
    socket.socket.connect = refuse
    socket.create_connection = refuse

    from airflow.dag_processing.dagbag import DagBag
    bag = DagBag(dag_folder=sys.argv[1])
    new = sorted(set(sys.modules) - before)
    dag = bag.dags.get("rafay_billing_delivery")
    print(json.dumps({
        "errors": {k: str(v) for k, v in bag.import_errors.items()},
        "new_modules": new,
        "tasks": [t.task_id for t in dag.topological_sort()] if dag else None,
        "schedule": sorted(a.uri for a in dag.timetable.asset_condition.objects) if dag else None,
        "max_active_runs": dag.max_active_runs if dag else None,
        "params": {k: dag.params.get_param(k).schema for k in dag.params} if dag else None,
    }))
    """
)
HEAVY = {"pandas", "requests", "psycopg", "psycopg2", "sqlalchemy_utils", "s3fs", "boto3", "aiohttp"}


def _parse(env: dict[str, str] | None = None) -> dict:
    proc = subprocess.run(
        [sys.executable, "-c", PARSE_SCRIPT, str(REPO / "dags" / "rafay_billing_delivery.py")],
        capture_output=True, text=True, timeout=300, env={**os.environ, **(env or {})},
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_the_delivery_dag_parses_light_and_runs_on_the_closed_periods_asset() -> None:
    result = _parse()
    assert result["errors"] == {}
    heavy = [m for m in result["new_modules"] if m.split(".")[0] in HEAVY
             or m.startswith(("rafay_billing.delivery", "airflow.providers.http", "airflow.providers.postgres",
                              "rafay_provider.delivery_step"))]
    assert heavy == [], f"heavy modules imported at DAG parse time: {heavy}"
    assert result["tasks"] == ["queue_documents", "deliver_documents"]
    assert result["schedule"] == ["x-rafay-billing://closed-periods"]
    assert result["max_active_runs"] == 1
    params = result["params"]
    assert params["period"]["type"] == ["null", "string"] and params["max_attempts"]["type"] == "integer"
    assert params["backoff_seconds"]["type"] == "number" and params["max_retry_after_seconds"]["minimum"] == 0


def test_a_bad_billing_start_date_does_not_break_delivery() -> None:
    """Delivery runs on the close's events, not on the calendar: it does not read the start date."""
    assert _parse({"AIRFLOW__RAFAY_BILLING__BILLING_START_DATE": "15/10/2026"})["errors"] == {}
