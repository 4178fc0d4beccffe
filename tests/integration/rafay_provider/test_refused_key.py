"""An org whose API key is refused (401/403) fails its extraction task at once (issue 23, part 6):
waiting cannot fix a refused key, so the task fails without retries (AirflowFailException), naming
the connection to fix; the other orgs of the run are extracted and billed as usual. The step runs
against the simulator over real HTTP, configured to refuse the key for one org."""

from __future__ import annotations

import json
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
from airflow.sdk.exceptions import AirflowFailException

from rafay_billing import db
from rafay_billing.ledger.coverage import fetch_coverage
from rafay_billing.ledger.price_book import sync_price_book
from rafay_devkit.airflow_env import postgres_connection_json
from rafay_simulator import Dataset, Fault, Org, RafaySimulator
from tests.integration.rafay_provider.test_org_days import _TI, PRICES, _DagRun, utc, vm

D10 = date(2026, 11, 10)


@pytest.fixture
def ledger(billing_dsn: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> psycopg.Connection:
    monkeypatch.setenv("AIRFLOW_CONN_BILLING_POSTGRES", postgres_connection_json(billing_dsn))
    monkeypatch.setenv("AIRFLOW_VAR_BILLING_DATA_URI", (tmp_path / "landing").as_uri())
    monkeypatch.setenv("AIRFLOW__RAFAY_BILLING__BILLING_START_DATE", "2026-11-01")
    conn = psycopg.connect(billing_dsn, autocommit=True)
    db.migrate(conn)
    sync_price_book(conn, PRICES)
    yield conn
    conn.close()


@pytest.fixture
def sim(rafay_sim_factory, monkeypatch: pytest.MonkeyPatch) -> RafaySimulator:
    dataset = Dataset([Org("coke", "Coke", [vm("coke", (utc(D10), None))]),
                       Org("pepsi", "Pepsi", [vm("pepsi", (utc(D10), None))])])
    simulator = rafay_sim_factory(dataset=dataset)
    monkeypatch.setenv("AIRFLOW_CONN_RAFAY_DEFAULT", json.dumps(
        {"conn_type": "rafay", "host": simulator.url, "password": simulator.api_key}))
    return simulator


def _context(days: int = 2) -> dict[str, Any]:
    return {"run_id": "manual__refused", "ti": _TI(), "dag_run": _DagRun("manual", {"days": days}), "params": {},
            "data_interval_start": utc(D10), "data_interval_end": utc(D10 + timedelta(days=1))}


@pytest.mark.parametrize("status", [401, 403])
def test_a_refused_key_fails_the_orgs_extraction_at_once_naming_the_connection(
    ledger: psycopg.Connection, sim: RafaySimulator, status: int
) -> None:
    from rafay_provider import pipeline

    context = _context()
    window = pipeline.resolve_run_window(context)  # type: ignore[arg-type]
    batches = pipeline.list_org_batches(window, context)  # type: ignore[arg-type]
    by_org = {b[0]["org_id"]: b for b in batches}
    sim.add_fault(Fault(kind="status", status=status, org="pepsi"))
    sim.reset_stats()
    with pytest.raises(AirflowFailException) as info:  # not retried by Airflow: a refused key stays refused
        pipeline.extract_batch(by_org["pepsi"], window, context)  # type: ignore[arg-type]
    message = str(info.value)
    assert "rafay_default" in message and f"HTTP {status}" in message and "pepsi" in message, message
    assert "not retried" in message
    # the org's other day was not asked for again: one refusal is enough
    failures = context["ti"].pushed["extract_failures"][-1]
    assert [f["day"] for f in failures] == ["2026-11-09", "2026-11-10"]
    assert all("rafay_default" in f["error"] for f in failures)
    refused = [r for r in sim.requests if r.status == status]
    assert len(refused) == 1, [(r.path, r.status) for r in sim.requests]
    # the other org is extracted and billed; the refused org's days are failed with the reason
    pipeline.extract_batch(by_org["coke"], window, context)  # type: ignore[arg-type]
    loaded = pipeline.load_usage(window, batches, context)  # type: ignore[arg-type]
    pipeline.rate(window, loaded, context)  # type: ignore[arg-type]
    coverage = {(r["org_id"], r["usage_date"]): r for r in fetch_coverage(ledger, D10 - timedelta(days=1),
                                                                           D10 + timedelta(days=1))}
    assert coverage[("coke", D10)]["status"] == "billed"
    assert coverage[("pepsi", D10)]["status"] == "failed"
    assert "rafay_default" in coverage[("pepsi", D10)]["detail"]


def test_a_refused_key_fails_the_org_listing_at_once(ledger: psycopg.Connection, sim: RafaySimulator) -> None:
    from rafay_provider import pipeline

    context = _context(1)
    window = pipeline.resolve_run_window(context)  # type: ignore[arg-type]
    sim.add_fault(Fault(kind="status", status=401))
    with pytest.raises(AirflowFailException) as info:
        pipeline.list_org_batches(window, context)  # type: ignore[arg-type]
    assert "rafay_default" in str(info.value) and "HTTP 401" in str(info.value)
