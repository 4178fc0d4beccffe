"""The delivery DAG's steps through the HTTP provider's HttpHook (connection ``billing_delivery``) against
the local receiver over real HTTP and a real PostgreSQL closed by the real close."""

from __future__ import annotations

import json
import logging
from types import SimpleNamespace
from typing import Any

import psycopg
import pytest
from airflow.sdk.exceptions import AirflowFailException

from rafay_devkit.airflow_env import postgres_connection_json
from rafay_devkit.billing_receiver import Receiver
from rafay_provider import delivery_step
from tests.support.issued import close_october

SECRET = "whsec-step-7f3a9c"
TOKEN = "Bearer receiver-credential-51d2"


@pytest.fixture
def closed(pg_conn: psycopg.Connection, billing_dsn: str, monkeypatch: pytest.MonkeyPatch) -> psycopg.Connection:
    close_october(pg_conn)
    monkeypatch.setenv("AIRFLOW_CONN_BILLING_POSTGRES", postgres_connection_json(billing_dsn))
    return pg_conn


@pytest.fixture
def receiver() -> Any:
    with Receiver(secret=SECRET, authorization=TOKEN, hold_seconds=1.5) as rec:
        yield rec


def connect(monkeypatch: pytest.MonkeyPatch, url: str, **fields: Any) -> None:
    conn = {"conn_type": "http", "host": url, "password": SECRET,
            "extra": json.dumps({"Authorization": TOKEN, "timeout": [2, 0.5]}), **fields}
    monkeypatch.setenv("AIRFLOW_CONN_BILLING_DELIVERY", json.dumps(conn))


def context(period: str | None = None, events: list[str] | None = None, **params: Any) -> dict[str, Any]:
    return {
        "params": {**delivery_step.DEFAULTS, "backoff_seconds": 0.05, **params},
        "dag_run": SimpleNamespace(conf={"period": period} if period else {}),
        "triggering_asset_events": {"closed": [SimpleNamespace(extra={"period": p}) for p in events or []]},
    }


def test_the_closed_period_is_delivered_through_httphook_signed_and_authorized(
    closed: psycopg.Connection, receiver: Receiver, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture,
) -> None:
    connect(monkeypatch, receiver.url)
    ids = [i for (i,) in closed.execute("SELECT invoice_id FROM billing.invoices ORDER BY invoice_seq")]
    receiver.faults.update({ids[0]: ["503"], ids[1]: ["timeout"], ids[2]: ["429:1"]})
    caplog.set_level(logging.DEBUG)
    ctx = context(events=["2026-10"])
    queued = delivery_step.queue_documents(ctx)
    assert queued == {"endpoint": receiver.url, "periods": ["2026-10"], "queued": {"2026-10": 4}}
    done = delivery_step.deliver_documents(queued, ctx)
    assert done["delivered"] == 4 and done["requests"] == 7
    assert dict(receiver.acknowledgements) == {i: 1 for i in ids} and receiver.bad_signatures == 0
    # every request carried the receiver's credential from the extra, and no Basic auth
    assert {h.get("Authorization") for h in receiver.headers_seen} == {TOKEN}
    assert {h["Idempotency-Key"] for h in receiver.headers_seen} == set(ids)
    assert all("timeout" not in {k.lower() for k in h} for h in receiver.headers_seen)
    # neither the secret nor the receiver's credential is logged (Airflow's logging writes to stdout here)
    out, err = capfd.readouterr()
    logged = caplog.text + out + err
    assert "ACME-000001: delivered (HTTP 201, attempt 2)" in logged
    assert SECRET not in logged and "receiver-credential" not in logged
    # the next close event of the same period queues nothing and sends nothing
    assert delivery_step.queue_documents(ctx)["queued"] == {"2026-10": 0}
    assert delivery_step.deliver_documents(queued, ctx)["requests"] == 0


def test_a_connection_with_a_login_is_refused(closed: psycopg.Connection, receiver: Receiver,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    connect(monkeypatch, receiver.url, login="billing")
    with pytest.raises(AirflowFailException, match="has a login: HttpHook would send login and password as Basic"):
        delivery_step.queue_documents(context("2026-10"))
    connect(monkeypatch, receiver.url, password="")
    with pytest.raises(AirflowFailException, match="no password: set it to the signing secret"):
        delivery_step.queue_documents(context("2026-10"))
    connect(monkeypatch, receiver.url, extra=json.dumps({"timeout": "soon"}))
    with pytest.raises(AirflowFailException, match="extra timeout must be seconds"):
        delivery_step.queue_documents(context("2026-10"))
    assert receiver.requests == []


def test_a_run_fails_naming_the_documents_left_undelivered(
    closed: psycopg.Connection, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    connect(monkeypatch, receiver.url)
    numbers = dict(closed.execute("SELECT invoice_id, invoice_number FROM billing.invoices ORDER BY invoice_seq"))
    refused, stuck = list(numbers)[:2]
    receiver.faults.update({refused: ["400"], stuck: ["500"] * 3})
    ctx = context("2026-10", max_attempts=2)
    queued = delivery_step.queue_documents(ctx)
    with pytest.raises(RuntimeError, match="2 document\\(s\\) not delivered") as info:
        delivery_step.deliver_documents(queued, ctx)
    assert not isinstance(info.value, AirflowFailException)  # a pending one: the task's retry may deliver it
    assert f"{numbers[refused]}: failed: HTTP 400" in str(info.value)
    assert f"{numbers[stuck]}: pending: HTTP 500" in str(info.value)
    assert len(receiver.stored) == 2

    # the task's retry delivers the pending one; the refused one fails the run for good, named
    with pytest.raises(AirflowFailException, match=f"1 document\\(s\\) not delivered.*{numbers[refused]}: failed"):
        delivery_step.deliver_documents(queued, ctx)
    assert len(receiver.stored) == 3 and dict(receiver.acknowledgements)[stuck] == 1


def test_periods_come_from_the_conf_or_the_asset_events() -> None:
    assert [p.label for p in delivery_step.run_periods(context(events=["2026-10", "2026-09", "2026-10"]))] == [
        "2026-09", "2026-10"]
    assert [p.label for p in delivery_step.run_periods(context("2026-08", events=["2026-10"]))] == ["2026-08"]
    assert delivery_step.run_periods(context()) == []
    with pytest.raises(AirflowFailException, match="Bad delivery conf"):
        delivery_step.run_periods(context("2026-13"))
