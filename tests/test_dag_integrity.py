"""Every DAG file imports cleanly, with no network, no database and no heavy imports at parse time."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

from conftest import REPO

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
    print(json.dumps({
        "errors": {k: str(v) for k, v in bag.import_errors.items()},
        "dags": sorted(bag.dag_ids),
        "new_modules": new,
        "tasks": sorted(t.task_id for t in dag.tasks) if dag else [],
        "timetable": type(dag.timetable).__name__ if dag else None,
    }))
    """
)


def _parse() -> dict:
    proc = subprocess.run(
        [sys.executable, "-c", PARSE_SCRIPT, str(REPO / "dags")], capture_output=True, text=True, timeout=300
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
        or m.startswith(("rafay_billing.client", "rafay_billing.extract", "airflow.providers.postgres"))
    ]
    assert heavy == [], f"heavy modules imported at DAG parse time: {heavy}"


def test_dag_shape() -> None:
    result = _parse()
    assert result["timetable"] == "CronDataIntervalTimetable"
    assert {
        "resolve_window", "wait_for_usage_to_settle", "migrate_schema", "sync_price_book", "list_orgs",
        "extract_org", "load_usage", "rate_window", "publish_reports", "check_run",
    } <= set(result["tasks"])
