"""Approval of the close's invoices (issue 23, part 1) under the real scheduler of the local stack
(:class:`LocalAirflow`: api-server, scheduler, dag-processor, triggerer), with
``[rafay_billing] close_approval = required``: ``airflow dags test`` never ends while a human input is
awaited, so the request is answered through the REST API (and, in Chromium, in Required Actions) and
what was issued is checked in the billing database.

The billing database holds two ended months, billed through the real loader and rater; each close waits
in ``awaiting_input`` on ``approve_invoices``. Approve: the drafts are issued as they are, numbered then.
Reject: the close fails with the reviewer's comment, nothing is numbered, the drafts are kept, discarded.

The delivery DAG is unpaused too (issue 24): an approved close's Asset event makes the scheduler start
``rafay_billing_delivery``, which posts the issued documents, signed, to a local billing system.
"""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest

from rafay_billing.ledger.coverage import register_orgs
from rafay_billing.period import Period
from rafay_devkit.airflow_env import airflow_env
from rafay_devkit.billing_receiver import Receiver
from rafay_devkit.local_airflow import LocalAirflow
from rafay_provider.settings import CLOSE_DAG_ID, DELIVERY_DAG_ID
from rafay_simulator import RafaySimulator, SimulatorConfig
from tests.support.billed import PRICE_BOOK, Usage, bill
from tests.support.db import create_database

pytestmark = [pytest.mark.e2e, pytest.mark.topology]

TODAY = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
LAST = Period.before(TODAY)  # the previous month, ended
FIRST = Period.before(datetime.combine(LAST.start, datetime.min.time(), tzinfo=UTC))  # the month before it
RUN_TIMEOUT = 600
ANSWER_AFTER_SECONDS = 15
APPROVAL = "approve_invoices"
SIGNING_SECRET = "whsec-approval-e2e-5c1d"


@dataclass
class Stack:
    airflow: LocalAirflow
    billing_dsn: str
    landing: Path
    artifacts: Path
    receiver: Receiver

    def query(self, sql: str, params: tuple = ()) -> list[tuple]:
        with psycopg.connect(self.billing_dsn) as conn:
            return conn.execute(sql, params).fetchall()

    def close(self, period: Period) -> str:
        """Trigger a close of ``period`` and wait until it asks for approval; its run id."""
        run = self.airflow.client.trigger(CLOSE_DAG_ID, {"period": period.label, "settle_minutes": 0})
        run_id = run["dag_run_id"]
        client = self.airflow.client

        def asking() -> bool:
            states = client.task_states(CLOSE_DAG_ID, run_id)
            if client.dag_run(CLOSE_DAG_ID, run_id)["state"] == "failed":
                raise AssertionError(f"the close of {period.label} failed before asking: {states}")
            return states.get(APPROVAL) == "awaiting_input"

        from rafay_devkit.airflow_client import wait_for

        wait_for(asking, timeout=RUN_TIMEOUT, interval=2.0, what=f"the close of {period.label} to ask for approval",
                 on_timeout=lambda: str(client.task_states(CLOSE_DAG_ID, run_id)))
        # Airflow 3.3.2 race: an answer that lands before the executor has reported the parked workload
        # (its supervisor lingers a few seconds after "Pausing task as AWAITING_INPUT") makes the scheduler
        # fail the resumed task ("finished with state success, but ... state is queued"). A person never
        # answers that fast; the test waits as long.
        time.sleep(ANSWER_AFTER_SECONDS)
        return run_id


def _usage(period: Period) -> list[Usage]:
    out = []
    for day in period.days():
        out += [Usage("acme", day, "cpu-vm", "vm-1", "24"), Usage("acme", day, "h100-vm", "gpu-1", "10", 2),
                Usage("eurorg1", day, "a100-vm", "a-1", "5", 1)]
    return out


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, postgres_server: str) -> Iterator[Stack]:
    home = tmp_path_factory.mktemp("approval")
    artifacts = Path(os.environ.get("BILLING_TEST_ARTIFACTS") or home / "artifacts") / "approval"
    artifacts.mkdir(parents=True, exist_ok=True)
    billing_dsn = create_database(postgres_server, "approval")
    metadata_dsn = create_database(postgres_server, "airflow_approval")
    with psycopg.connect(billing_dsn) as conn:  # two ended months billed, both orgs listed through them
        bill(conn, _usage(FIRST) + _usage(LAST), "nightly", names={"acme": "Acme", "eurorg1": "Euro Org"})
        register_orgs(conn, [("acme", "Acme"), ("eurorg1", "Euro Org")], FIRST.start, "nightly",
                      last_day=LAST.last_day)
    prices = home / "prices.csv"
    prices.write_text(PRICE_BOOK)
    landing = home / "landing"
    # the close lists orgs from Rafay for its late-usage re-read: the simulator's orgs are not these
    sim = RafaySimulator(SimulatorConfig(seed=3, orgs=1, now=TODAY)).start()
    env = airflow_env(
        home / "airflow", rafay_url=sim.url, rafay_api_key=sim.api_key, billing_dsn=billing_dsn,
        data_uri=landing.as_uri(), price_book_uri=prices.as_uri(), billing_start_date=TODAY.date().isoformat(),
    )
    receiving = ExitStack()
    receiver = receiving.enter_context(Receiver(secret=SIGNING_SECRET))
    env["AIRFLOW_CONN_BILLING_DELIVERY"] = json.dumps(
        {"conn_type": "http", "host": receiver.url, "password": SIGNING_SECRET})
    env.update({"AIRFLOW__RAFAY_BILLING__CLOSE_APPROVAL": "required",
                "AIRFLOW__RAFAY_BILLING__APPROVAL_ASSIGNED_USERS": "admin:Finance Admin",
                "AIRFLOW__RAFAY_BILLING__APPROVAL_TIMEOUT_HOURS": "48"})
    airflow = LocalAirflow(home / "airflow", env, parallelism=4, metadata_dsn=metadata_dsn)
    try:
        airflow.start()
        airflow.wait_for_dag(CLOSE_DAG_ID)
        airflow.unpause(CLOSE_DAG_ID)
        airflow.wait_for_dag(DELIVERY_DAG_ID)
        airflow.unpause(DELIVERY_DAG_ID)
        yield Stack(airflow, billing_dsn, landing, artifacts, receiver)
    finally:
        airflow.stop()
        receiving.close()
        sim.stop()


def _drafts(stack: Stack, period: Period) -> list[tuple]:
    return stack.query(
        "SELECT d.org_id, d.currency::text, d.document_type, d.subtotal, d.line_count FROM billing.invoice_drafts d "
        "JOIN billing.invoice_draft_sets s USING (draft_set_id) WHERE s.period_start = %s AND s.status = %s "
        "ORDER BY d.document_type DESC, d.org_id, d.currency", (period.start, "issued"))


def test_approve_through_the_rest_api_issues_the_drafts_as_they_are(stack: Stack) -> None:
    client = stack.airflow.client
    run_id = stack.close(FIRST)
    request = client.hitl_detail(CLOSE_DAG_ID, run_id, APPROVAL)
    assert request is not None and request["options"] == ["Approve", "Reject"] and request["defaults"] == ["Reject"]
    assert request["assigned_users"] == [{"id": "admin", "name": "Finance Admin"}]
    assert request["subject"] == f"Approve the invoices of {FIRST.label}"
    pending = stack.query("SELECT draft_set_id, summary FROM billing.invoice_draft_sets WHERE status = 'pending'")
    [(set_id, summary)] = pending
    for currency, total in summary["totals"].items():
        assert f"| {currency} | {total} |" in request["body"]
    assert stack.query("SELECT count(*) FROM billing.invoices") == [(0,)]  # nothing issued while it waits
    assert list((stack.landing / "reports" / f"period={FIRST.label}" / "drafts" / f"set={set_id}").glob("*.json"))

    client.answer_hitl(CLOSE_DAG_ID, run_id, APPROVAL, ["Approve"], {"comment": "checked against the contracts"})
    run = client.wait_for_run(CLOSE_DAG_ID, run_id, timeout=RUN_TIMEOUT)
    assert run["state"] == "success", client.task_states(CLOSE_DAG_ID, run_id)
    issued = stack.query("SELECT org_id, currency::text, document_type, subtotal, line_count, invoice_number "
                         "FROM billing.invoices WHERE period_start = %s ORDER BY document_type DESC, org_id, currency",
                         (FIRST.start,))
    assert [row[:5] for row in issued] == _drafts(stack, FIRST)
    assert [row[5] for row in issued] == ["RAFAY-000001", "RAFAY-000002"]  # acme USD, eurorg1 EUR
    [(detail,)] = stack.query("SELECT detail FROM billing.audit_log WHERE action = 'approval'")
    assert detail["decision"] == "Approve" and detail["outcome"] == "issued"
    assert detail["responded_by"] == "admin" and detail["responded_at"]
    assert detail["totals_seen"] == summary["totals"] and detail["comment"] == "checked against the contracts"

    # the close's Asset event starts the delivery under the scheduler: both documents posted once, signed
    from rafay_devkit.airflow_client import wait_for

    ids = [r[0] for r in stack.query("SELECT invoice_id FROM billing.invoices WHERE period_start = %s", (FIRST.start,))]
    wait_for(lambda: set(stack.receiver.stored) >= set(ids), timeout=RUN_TIMEOUT, interval=2.0,
             what="the delivery DAG to post the issued documents", on_timeout=lambda: str(client.dag_runs(DELIVERY_DAG_ID)))
    [delivery] = client.dag_runs(DELIVERY_DAG_ID)
    assert delivery["run_type"] == "asset_triggered", delivery
    assert client.wait_for_run(DELIVERY_DAG_ID, delivery["dag_run_id"], timeout=RUN_TIMEOUT)["state"] == "success"
    assert dict(stack.receiver.acknowledgements) == dict.fromkeys(ids, 1)
    assert stack.receiver.bad_signatures == 0 and stack.receiver.replays == 0
    assert stack.query("SELECT DISTINCT status FROM billing.deliveries") == [("delivered",)]


def test_reject_through_the_rest_api_fails_the_close_with_the_comment_and_numbers_nothing(stack: Stack) -> None:
    client = stack.airflow.client
    run_id = stack.close(LAST)
    client.answer_hitl(CLOSE_DAG_ID, run_id, APPROVAL, ["Reject"], {"comment": "eurorg1 hours look doubled"})
    run = client.wait_for_run(CLOSE_DAG_ID, run_id, timeout=RUN_TIMEOUT)
    states = client.task_states(CLOSE_DAG_ID, run_id)
    assert run["state"] == "failed" and states[APPROVAL] == "success" and states["issue_invoices"] == "failed", states
    log = client.task_log(CLOSE_DAG_ID, run_id, "issue_invoices", 1)
    assert "rejected by admin: eurorg1 hours look doubled" in log
    assert stack.query("SELECT count(*) FROM billing.invoices WHERE period_start = %s", (LAST.start,)) == [(0,)]
    assert stack.query("SELECT last_number FROM billing.invoice_counters") == [(2,)]
    assert stack.query("SELECT status, decision, decision_comment FROM billing.invoice_draft_sets "
                       "WHERE period_start = %s", (LAST.start,)) == [
        ("discarded", "Reject", "eurorg1 hours look doubled")]
    assert stack.query("SELECT count(*) > 0 FROM billing.invoice_drafts JOIN billing.invoice_draft_sets "
                       "USING (draft_set_id) WHERE period_start = %s", (LAST.start,)) == [(True,)]  # kept


# --- the same in the browser: Required Actions ---------------------------------------------------------

CHROMIUM = Path("/usr/bin/chromium")


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not (CHROMIUM.is_file() and os.access(CHROMIUM, os.X_OK)):
        pytest.fail(f"headless Chromium ({CHROMIUM}) is missing: run .ci/install-chromium.sh", pytrace=False)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM),
                                    args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"])
        try:
            yield browser
        finally:
            browser.close()


def _login(browser: Any, stack: Stack) -> Any:
    context = browser.new_context(viewport={"width": 1400, "height": 1100})
    page = context.new_page()
    page.set_default_timeout(60_000)
    page.goto(stack.airflow.url + "/")
    page.wait_for_url(re.compile(r".*/auth/login.*"))
    page.locator("input[name=username]").fill(stack.airflow.username)
    page.locator("input[name=password]").fill(stack.airflow.password or "")
    page.locator("button[type=submit]").click()
    page.wait_for_url(stack.airflow.url + "/")
    return page


def _answer_in_the_ui(page: Any, stack: Stack, run_id: str, option: str, comment: str, shot: str) -> None:
    from urllib.parse import quote

    page.goto(f"{stack.airflow.url}/dags/{CLOSE_DAG_ID}/runs/{quote(run_id, safe='')}/tasks/{APPROVAL}"
              "/required_actions")
    page.get_by_text("Largest changes against").first.wait_for()
    page.locator("textarea[name=element_comment], input[name=element_comment]").first.fill(comment)
    page.screenshot(path=str(stack.artifacts / shot), full_page=True)
    page.get_by_role("button", name=option, exact=True).click()


def test_reject_then_approve_in_required_actions(stack: Stack, browser: Any) -> None:
    client = stack.airflow.client
    page = _login(browser, stack)
    rejected = stack.close(LAST)
    _answer_in_the_ui(page, stack, rejected, "Reject", "wait for the credit from support", "01-reject.png")
    run = client.wait_for_run(CLOSE_DAG_ID, rejected, timeout=RUN_TIMEOUT)
    assert run["state"] == "failed"
    assert stack.query("SELECT count(*) FROM billing.invoices WHERE period_start = %s", (LAST.start,)) == [(0,)]

    [(counter,)] = stack.query("SELECT coalesce(max(last_number), 0) FROM billing.invoice_counters")
    approved = stack.close(LAST)
    _answer_in_the_ui(page, stack, approved, "Approve", "credit arrived", "02-approve.png")
    run = client.wait_for_run(CLOSE_DAG_ID, approved, timeout=RUN_TIMEOUT)
    assert run["state"] == "success", client.task_states(CLOSE_DAG_ID, approved)
    issued = stack.query("SELECT org_id, currency::text, document_type, subtotal, line_count FROM billing.invoices "
                         "WHERE period_start = %s ORDER BY document_type DESC, org_id, currency", (LAST.start,))
    assert issued == _drafts(stack, LAST)
    assert [n for (n,) in stack.query("SELECT invoice_number FROM billing.invoices WHERE period_start = %s "
                                      "ORDER BY invoice_seq", (LAST.start,))] == [
        f"RAFAY-{counter + 1:06d}", f"RAFAY-{counter + 2:06d}"]  # the rejections consumed no number
    decisions = stack.query("SELECT decision, decision_comment, status FROM billing.invoice_draft_sets "
                            "WHERE period_start = %s ORDER BY draft_set_id", (LAST.start,))
    assert decisions[-2:] == [("Reject", "wait for the credit from support", "discarded"),
                              ("Approve", "credit arrived", "issued")]
    page.context.close()

    # approved in the UI, delivered as through the REST API: the close's Asset event posts each document
    # once. Waited for to the end, so no delivery run is left for the stack's stop to wait out (the
    # scheduler's SIGTERM waits for running tasks: 27 s of teardown when this test left it running).
    from rafay_devkit.airflow_client import wait_for

    ids = [r[0] for r in stack.query("SELECT invoice_id FROM billing.invoices WHERE period_start = %s", (LAST.start,))]
    wait_for(lambda: set(stack.receiver.stored) >= set(ids), timeout=RUN_TIMEOUT, interval=2.0,
             what="the delivery DAG to post the documents approved in the UI",
             on_timeout=lambda: str(client.dag_runs(DELIVERY_DAG_ID)))
    for delivery in client.dag_runs(DELIVERY_DAG_ID):
        assert delivery["run_type"] == "asset_triggered", delivery
        assert client.wait_for_run(DELIVERY_DAG_ID, delivery["dag_run_id"], timeout=RUN_TIMEOUT)["state"] == "success"
    assert {i: stack.receiver.acknowledgements[i] for i in ids} == dict.fromkeys(ids, 1)
