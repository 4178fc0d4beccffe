"""Delivery end to end: after October is closed, one ``airflow dags test rafay_billing_delivery`` run posts
the issued documents through HttpHook to a local receiver that verifies signatures and injects faults,
over real HTTP, from a real PostgreSQL. One document is refused with a 422: the run fails naming it,
after the others were delivered exactly once."""

from __future__ import annotations

import json
from pathlib import Path

import psycopg
import pytest

from rafay_devkit.airflow_env import airflow_env, dags_test
from rafay_devkit.billing_receiver import Receiver
from tests.support.e2e import metadata_home
from tests.support.issued import close_october

pytestmark = pytest.mark.e2e
SECRET = "whsec-e2e-0b7d41c9"
TOKEN = "Bearer e2e-receiver-token-93aa"


@pytest.fixture(scope="module")
def airflow_home(tmp_path_factory) -> Path:
    return metadata_home(tmp_path_factory, "airflow-delivery")


def test_one_delivery_run_after_a_close(airflow_home: Path, pg_conn: psycopg.Connection, billing_dsn: str,
                                        tmp_path: Path) -> None:
    close_october(pg_conn)
    numbers = dict(pg_conn.execute("SELECT invoice_id, invoice_number FROM billing.invoices ORDER BY invoice_seq"))
    ids = list(numbers)
    with Receiver(secret=SECRET, authorization=TOKEN, hold_seconds=2.0) as receiver:
        receiver.faults.update({ids[0]: ["503", "reset"], ids[1]: ["timeout"], ids[2]: ["429:1"], ids[3]: ["422"]})
        env = airflow_env(airflow_home, rafay_url="http://unused", rafay_api_key="unused", billing_dsn=billing_dsn,
                          data_uri=(tmp_path / "landing").as_uri(), billing_start_date="2026-10-01")
        env["AIRFLOW_CONN_BILLING_DELIVERY"] = json.dumps({
            "conn_type": "http", "host": receiver.url, "password": SECRET,
            "extra": json.dumps({"Authorization": TOKEN, "timeout": [3, 1]}),
        })
        env["AIRFLOW__RAFAY_BILLING__RETRY_DELAY_SECONDS"] = "1"
        proc = dags_test(env, "2026-11-02", {"period": "2026-10", "backoff_seconds": 0.1},
                         dag_id="rafay_billing_delivery")
    output = proc.stdout + proc.stderr

    # the run fails, naming the refused document; the others were delivered exactly once
    assert proc.returncode != 0, output[-3000:]
    assert f"1 document(s) not delivered to {receiver.url}: {numbers[ids[3]]}: failed: HTTP 422" in output
    assert dict(receiver.acknowledgements) == {i: 1 for i in ids[:3]}
    assert receiver.bad_signatures == 0 and receiver.replays == 0
    assert {h.get("Authorization") for h in receiver.headers_seen} == {TOKEN}
    # the receiver's view is the database's
    rows = {i: (s, a, sha) for i, s, a, sha in pg_conn.execute(
        "SELECT invoice_id, status, attempts, payload_sha256 FROM billing.deliveries")}
    assert {i: r[0] for i, r in rows.items()} == {ids[0]: "delivered", ids[1]: "delivered", ids[2]: "delivered",
                                                  ids[3]: "failed"}
    assert receiver.stored_sha256() == {i: rows[i][2] for i in ids[:3]}
    seen: dict[str, int] = {}
    for request in receiver.requests:
        seen[request.document_id] = seen.get(request.document_id, 0) + 1
    assert seen == {i: rows[i][1] for i in ids}
    # neither the signing secret nor the receiver's credential reached the output or the task logs
    logs = "".join(p.read_text(errors="replace") for p in (airflow_home / "logs").rglob("*") if p.is_file())
    assert SECRET not in output + logs and "e2e-receiver-token" not in output + logs
