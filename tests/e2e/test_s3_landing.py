"""The landing root on S3: the real DAG run by the real scheduler (LocalExecutor, every task its own
process) with ``billing_data_uri=s3://bucket/prefix`` against an S3 API on loopback (moto in server
mode). Raw responses, usage CSVs and reports land in the bucket, line items in the billing
database, and no task leaves a file on the local disk for another task to read.

``s3://`` comes from the Amazon provider's filesystem (Airflow 3 has none built in). Credentials and
endpoint reach the task processes as they would in production without an Airflow connection:
``AWS_ENDPOINT_URL``, ``AWS_ACCESS_KEY_ID``, ... (boto's standard chain).
"""

from __future__ import annotations

import csv
import io
import json
import re
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import pytest

from rafay_billing.paths import safe_component
from rafay_billing.window import Window
from rafay_devkit.airflow_env import airflow_env
from rafay_devkit.local_airflow import DAG_ID, LocalAirflow
from rafay_simulator import RafaySimulator, SimulatorConfig
from tests.support.db import create_database, drop_database
from tests.support.e2e import expected_charges, read_price_book
from tests.support.paths import DEMO_PRICE_BOOK

pytestmark = pytest.mark.e2e


BUCKET = "rafay-billing-landing"
PREFIX = "prod/billing"
NOW = datetime(2026, 11, 27, tzinfo=UTC)
WINDOW = (datetime(2026, 11, 20, tzinfo=UTC), datetime(2026, 11, 21, tzinfo=UTC))
ORGS = 3
NCP_METRICS_HEADER = "Organization,Profile Type,Profile,Instance,Usage(h),Status"

HAS_S3_SCRIPT = textwrap.dedent(
    """
    from airflow.sdk.io import has_fs
    print("yes" if has_fs("s3") else "no")
    """
)


@dataclass
class S3Env:
    endpoint: str
    env: dict[str, str]

    def client(self):
        import boto3

        return boto3.client(
            "s3", endpoint_url=self.endpoint, aws_access_key_id="testing", aws_secret_access_key="testing",
            region_name="us-east-1",
        )

    def keys(self, prefix: str = "") -> list[str]:
        paginator = self.client().get_paginator("list_objects_v2")
        return [o["Key"] for page in paginator.paginate(Bucket=BUCKET, Prefix=prefix) for o in page.get("Contents", [])]

    def read(self, key: str) -> bytes:
        return self.client().get_object(Bucket=BUCKET, Key=key)["Body"].read()


@pytest.fixture(scope="module")
def s3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Env]:
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        home = tmp_path_factory.mktemp("aws")
        env = {
            "AWS_ENDPOINT_URL": f"http://{host}:{port}",
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_EC2_METADATA_DISABLED": "true",
            # Nothing from the machine's own AWS set-up.
            "AWS_CONFIG_FILE": str(home / "config"),
            "AWS_SHARED_CREDENTIALS_FILE": str(home / "credentials"),
        }
        s3env = S3Env(env["AWS_ENDPOINT_URL"], env)
        s3env.client().create_bucket(Bucket=BUCKET)
        yield s3env
    finally:
        server.stop()


def _local_files(root: Path) -> list[Path]:
    """Data files under ``root`` (task logs and Airflow's own bookkeeping excluded)."""
    if not root.exists():
        return []
    return sorted(
        p for p in root.rglob("*")
        if p.is_file() and p.suffix.lower() in (".csv", ".json") and "logs" not in p.relative_to(root).parts
        and p.name != "simple_auth_manager_passwords.json"
    )


def test_dag_lands_everything_in_s3_and_no_task_reads_another_tasks_disk(
    s3: S3Env, tmp_path: Path, postgres_server: str
) -> None:
    home = tmp_path / "airflow"
    scratch = tmp_path / "task-tmp"  # TMPDIR of every Airflow process: must stay free of data files
    scratch.mkdir()
    sim = RafaySimulator(SimulatorConfig(seed=11, orgs=ORGS, now=NOW)).start()
    billing_dsn = create_database(postgres_server, "billing_s3")
    metadata_dsn = create_database(postgres_server, "airflow_s3")
    data_uri = f"s3://{BUCKET}/{PREFIX}"
    env = airflow_env(
        home,
        rafay_url=sim.url,
        rafay_api_key=sim.api_key,
        billing_dsn=billing_dsn,
        data_uri=data_uri,
        price_book_uri=DEMO_PRICE_BOOK.as_uri(),
        rafay_extra={"read_timeout": 15, "max_retries": 2},
    )
    env.update(s3.env)
    env["TMPDIR"] = str(scratch)
    airflow = LocalAirflow(home, env, parallelism=4, metadata_dsn=metadata_dsn,
                           components=("api-server", "scheduler", "dag-processor"))
    try:
        probe = subprocess.run(
            [sys.executable, "-c", HAS_S3_SCRIPT],
            env=env, capture_output=True, text=True, timeout=120,
        )
        assert probe.returncode == 0, probe.stderr[-2000:]
        assert probe.stdout.strip().endswith("yes"), (
            "Airflow has no filesystem for s3:// (ObjectStoragePath raises 'No filesystem registered for "
            "scheme s3'): the landing root cannot be on S3. Airflow 3 registers object-storage schemes "
            "through providers: install apache-airflow-providers-amazon, or declare a `filesystems` module "
            "for s3 in the rafay provider's get_provider_info()."
        )
        airflow.start()
        airflow.wait_for_dag(DAG_ID)
        client = airflow.client
        client.unpause(DAG_ID)  # the scheduler also starts the newest daily run: it must land in S3 too
        ws, we = WINDOW
        run = client.trigger(DAG_ID, conf={
            "window_start": ws.strftime("%Y-%m-%dT%H:%M:%SZ"), "window_end": we.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "settle_minutes": 0,
        })
        run_id = run["dag_run_id"]
        final = client.wait_for_run(DAG_ID, run_id, timeout=600)
        states = client.task_states(DAG_ID, run_id)
        expected, exceptions = expected_charges(sim.dataset, read_price_book(DEMO_PRICE_BOOK), ws, we, now=NOW)
        assert final["state"] == ("failed" if exceptions else "success"), states
        assert {v for k, v in states.items() if k.startswith("extract_org[")} == {"success"}, states

        # The tasks handed each other S3 URIs, never local paths.
        handed = [client.xcom(DAG_ID, run_id, "extract_org", "extracted", i) for i in range(ORGS)]
        uris = [item["usage_uri"] for chunk in handed for item in (chunk or [])]
        assert len(uris) == ORGS and all(u.startswith(f"s3://{BUCKET}/{PREFIX}/") for u in uris), handed

        # Everything landed in the bucket, in the documented layout.
        label = Window(ws, we).label
        raw = f"{PREFIX}/raw/window={label}/run={safe_component(run_id)}/"
        reports = f"{PREFIX}/reports/window={label}/run={safe_component(run_id)}/"
        for other in client.dag_runs(DAG_ID):
            client.wait_for_run(DAG_ID, other["dag_run_id"], timeout=600)
        every_key = s3.keys()
        layout = re.compile(rf"^{re.escape(PREFIX)}/(raw|reports)/window=[0-9TZ_]+/run=[^/]+/")
        assert every_key and [k for k in every_key if not layout.match(k)] == []
        keys = [k for k in every_key if k.startswith((raw, reports))]
        with psycopg.connect(billing_dsn) as conn:
            loaded = dict(conn.execute(
                "SELECT org_id, count(*) FROM billing.usage_records WHERE window_start = %s AND window_end = %s"
                " GROUP BY org_id", (ws, we)).fetchall())
            items = conn.execute(
                "SELECT org_id, profile, instance_key, amount FROM billing.charge_line_items"
                " WHERE window_start = %s AND window_end = %s", (ws, we)).fetchall()
        for org in sim.dataset.orgs:
            org_dir = f"{raw}org={safe_component(org.org_id)}/"
            mine = [k[len(org_dir):] for k in keys if k.startswith(org_dir)]
            assert any(n.startswith("profiles-page-") and n.endswith(".json") for n in mine), mine
            assert any(n.startswith("usage-") and n.endswith(".json") for n in mine), mine
            assert "usage.csv" in mine, mine
            for name in mine:
                if name.endswith(".json"):
                    json.loads(s3.read(org_dir + name))
            rows = list(csv.DictReader(io.StringIO(s3.read(org_dir + "usage.csv").decode())))
            assert rows and {r["org_id"] for r in rows} == {org.org_id}
            assert len(rows) == loaded.get(org.org_id), f"{org.org_id}: CSV in S3 vs rows loaded"
        report_names = [k[len(reports):] for k in keys if k.startswith(reports)]
        seed = [n for n in report_names if n.startswith("ncp-metrics-") and not n.startswith("ncp-metrics-sorted-")]
        assert len(seed) == 1 and len([n for n in report_names if n.startswith("ncp-metrics-sorted-")]) == 1
        assert s3.read(reports + seed[0]).decode().splitlines()[0] == NCP_METRICS_HEADER
        line_items_csv = list(csv.DictReader(io.StringIO(s3.read(reports + "line-items.csv").decode())))
        assert len(line_items_csv) == len(items)

        # Line items in the billing database: exactly the expected ones.
        assert sorted((o, p, k) for o, p, k, _ in items) == sorted(expected)
        assert {(o, p, k): a for o, p, k, a in items} == {k: v["amount"] for k, v in expected.items()}

        # Nothing on the local disk: not under the default landing root, not in the tasks' TMPDIR,
        # not anywhere in the Airflow home except task logs.
        assert not (home / "billing-data").exists()
        assert _local_files(scratch) == []
        assert _local_files(home) == []
    finally:
        airflow.stop()
        leftovers = airflow.own_processes()
        sim.stop()
        drop_database(postgres_server, billing_dsn)
        drop_database(postgres_server, metadata_dsn)
    assert leftovers == []
