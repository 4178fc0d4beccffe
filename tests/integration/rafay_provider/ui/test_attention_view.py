"""What needs attention in the Billing view (issue 23, part 6), over a real PostgreSQL rated by the real
rater: coverage per (org, day) with its status, reason and the run and task that set it; whether the
window is clean; each run's state and totals; links that work inside Airflow's sandboxed frame; totals
per currency that follow the org search; one number format in the tables and the charts' tooltips.
(The browser test drives the same page inside the Airflow UI.)"""

from __future__ import annotations

import re
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

import psycopg
import pytest
from fastapi.testclient import TestClient

from rafay_billing.ledger.coverage import record_failed, register_orgs
from rafay_provider.ui import charts, links, queries
from rafay_provider.ui.app import Sources, create_app
from rafay_provider.ui.auth import require_user
from rafay_provider.ui.queries import DailyCharges, DailySeries
from tests.support.billed import Usage, bill

D0 = date(2026, 11, 9)
D1 = date(2026, 11, 10)
RUN0 = "scheduled__2026-11-10T00:00:00+00:00"
RUN1 = "scheduled__2026-11-11T00:00:00+00:00"
CLOSE_RUN = "rafay_billing_close__scheduled__2026-12-01T00:00:00+00:00"
REFUSED = ("extraction failed: GET /v2/organizations/bad/ncp/profiles: HTTP 401 Unauthorized - check the API key "
           "of connection rafay_default (or RAFAY_DEFAULT_API_KEY)")


@pytest.fixture
def ledger(pg_conn) -> psycopg.Connection:
    """D0: only `good`, billed cleanly. D1: `good` billed, `exc` billed with an unpriced record, `bad`
    failed (its key refused), `gone` listed but never billed (missing)."""
    bill(pg_conn, [Usage("good", D0, "cpu-vm", "vm0", "10")], RUN0)
    bill(pg_conn, [Usage("good", D1, "cpu-vm", "vm1", "10"), Usage("exc", D1, "cpu-vm", "vm2", "5"),
                   Usage("exc", D1, "nope-vm", "bad1", "3")], RUN1, names={"good": "Good Corp"})
    register_orgs(pg_conn, [("good", "Good Corp"), ("exc", "EXC"), ("bad", "Bad Inc"), ("gone", "Gone Ltd")], D1,
                  RUN1)
    record_failed(pg_conn, [("bad", D1, "Bad Inc", REFUSED)], RUN1)
    return pg_conn


def _client(billing_dsn: str, tmp_path: Path, states: dict[str, str] | None = None) -> TestClient:
    from airflow.sdk import ObjectStoragePath

    app = create_app(Sources(lambda: {"conninfo": billing_dsn}, lambda: ObjectStoragePath(tmp_path.as_uri()),
                             lambda: "/", lambda run_ids: {r: s for r, s in (states or {}).items() if r in run_ids}))
    app.dependency_overrides[require_user] = lambda: object()
    return TestClient(app)


def test_coverage_names_every_org_day_with_its_status_reason_and_the_task_that_set_it(ledger) -> None:
    page = queries.coverage(ledger, D1, D1 + timedelta(days=1))
    rows = {r["org_id"]: r for r in page.rows}
    assert {k: r["status"] for k, r in rows.items()} == {
        "good": "billed", "exc": "exceptions", "bad": "failed", "gone": "missing"}
    assert [r["org_id"] for r in page.rows[:3]] == ["bad", "exc", "gone"]  # needing attention first
    assert not rows["good"]["needs_attention"] and rows["exc"]["open_exceptions"] == 1
    assert rows["bad"]["detail"] == REFUSED and rows["bad"]["run_id"] == RUN1
    assert rows["gone"]["run_id"] is None and rows["gone"]["organization"] == "Gone Ltd"
    assert links.task_path("/", rows["bad"]) == f"/dags/rafay_usage_billing/runs/{_q(RUN1)}/tasks/extract_org/mapped"
    assert links.task_path("/", rows["exc"]) == f"/dags/rafay_usage_billing/runs/{_q(RUN1)}/tasks/rate_window"
    assert links.task_path("/", rows["gone"]) is None
    assert queries.coverage(ledger, D1, D1 + timedelta(days=1), search="bad inc").total == 1


def test_a_day_with_a_failed_org_does_not_look_clean(ledger, billing_dsn: str, tmp_path: Path) -> None:
    summary = queries.coverage_summary(ledger, D1, D1 + timedelta(days=1))
    assert (summary.org_days, summary.billed, summary.failed, summary.missing, summary.open_exceptions) == (4, 1, 1, 1, 1)
    assert not summary.clean and queries.coverage_summary(ledger, D0, D1).clean
    client = _client(billing_dsn, tmp_path, {RUN1: "failed", RUN0: "success"})
    html = client.get("/", params={"day": D1.isoformat()}).text
    banner = re.search(r'<div id="window-status" class="banner attention" data-clean="false">(.*?)</div>', html, re.S)
    assert banner, html[:3000]
    text = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", "", banner.group(1)))
    assert "1 failed, 1 missing, 1 with open exceptions of 4 (org, day)s" in text and RUN1 in text
    assert re.search(r'class="coverage-row" data-day="2026-11-10" data-org="bad" data-status="failed" '
                     r'data-attention="true"', html)
    assert "HTTP 401 Unauthorized" in html and "no run has billed this day yet" in html
    clean = client.get("/", params={"day": D0.isoformat()}).text
    assert 'data-clean="true">Window clean: all 1 (org, day)s are billed' in clean
    assert client.get("/api/totals", params={"day": D1.isoformat()}).json()["window_clean"] is False
    # the search narrows the table, never the verdict
    assert 'data-clean="false"' in client.get("/", params={"day": D1.isoformat(), "q": "good"}).text


def test_each_run_shows_its_state_and_totals(ledger, billing_dsn: str, tmp_path: Path) -> None:
    runs = {r["run_id"]: r for r in queries.run_totals(ledger, D0, D1 + timedelta(days=1))}
    assert set(runs) == {RUN0, RUN1}
    r1 = runs[RUN1]
    assert (r1["org_days"], r1["billed"], r1["exceptions"], r1["failed"], r1["items"]) == (3, 1, 1, 1, 2)
    expected = ledger.execute("SELECT sum(amount) FROM billing.charge_line_items WHERE run_id = %s",
                              (RUN1,)).fetchone()[0]
    assert r1["totals"] == {"USD": expected}
    html = _client(billing_dsn, tmp_path, {RUN1: "failed", RUN0: "success"}).get(
        "/", params={"day": D0.isoformat(), "days": 2}).text
    assert re.search(rf'class="run-row" data-run="{re.escape(RUN1)}" data-state="failed" data-items="2" '
                     rf'data-amount-usd="{expected}"', html)
    assert f'data-run="{RUN0}" data-state="success"' in html
    # a run Airflow no longer knows says so
    html = _client(billing_dsn, tmp_path, {}).get("/", params={"day": D1.isoformat()}).text
    assert f'data-run="{RUN1}" data-state="unknown"' in html


def test_run_and_task_links_navigate_inside_the_frame(ledger, billing_dsn: str, tmp_path: Path) -> None:
    html = _client(billing_dsn, tmp_path).get("/", params={"day": D1.isoformat()}).text
    anchors = re.findall(r'<a class="(?:run|task)-link"[^>]*>', html)
    assert anchors and all('target=' not in a for a in anchors), anchors  # _top/_blank are refused by the sandbox
    assert f'href="/dags/rafay_usage_billing/runs/{_q(RUN1)}"' in html
    assert f'href="/dags/rafay_usage_billing/runs/{_q(RUN1)}/tasks/extract_org/mapped"' in html
    assert links.run_path("/airflow/", CLOSE_RUN) == f"/airflow/dags/rafay_billing_close/runs/{_q(CLOSE_RUN[21:])}"
    assert links.task_path("/", {"run_id": CLOSE_RUN, "status": "billed"}).endswith("/tasks/reread_late_usage/mapped")


def test_totals_per_currency_follow_the_org_search(ledger, billing_dsn: str, tmp_path: Path) -> None:
    good = ledger.execute("SELECT sum(amount) FROM billing.charge_line_items WHERE org_id = 'good' AND usage_date = %s",
                          (D1,)).fetchone()[0]
    everyone = queries.currency_totals(ledger, D1, D1 + timedelta(days=1))
    searched = queries.currency_totals(ledger, D1, D1 + timedelta(days=1), search="good corp")
    assert [(r["currency"], r["orgs"], r["amount"]) for r in searched] == [("USD", 1, good)]
    assert everyone[0]["amount"] > good
    client = _client(billing_dsn, tmp_path)
    html = client.get("/", params={"day": D1.isoformat(), "q": "good"}).text
    assert f'<tr data-currency="USD" data-amount="{good}">' in html
    body = client.get("/api/totals", params={"day": D1.isoformat(), "q": "good"}).json()
    assert body["currency_totals"][0]["amount"] == str(good)


def test_tooltips_write_numbers_as_the_tables_do() -> None:
    data = DailyCharges("USD", [D1], [DailySeries("good", "Good Corp (good)", [Decimal("1234.50")])])
    svg = charts.daily_stacked_bars(data)
    assert "<title>Good Corp (good) 2026-11-10: 1,234.50 USD</title>" in svg  # as the money column: 1,234.50
    bars = charts.horizontal_bars([("h100-vm", Decimal("1234.5")), ("a100-vm", Decimal("6.0"))], unit="GPU-h",
                                  chart_id="g", title="t")
    assert "<title>h100-vm: 1,234.50 GPU-h</title>" in bars and ">1,234.50 GPU-h</text>" in bars
    assert "<title>a100-vm: 6.00 GPU-h</title>" in bars and ">6.00 GPU-h</text>" in bars


def _q(run_id: str) -> str:
    from urllib.parse import quote

    return quote(run_id, safe="")


def test_a_held_day_shows_its_reason_and_needs_attention(ledger, billing_dsn: str, tmp_path: Path) -> None:
    from rafay_billing.db import sql

    detail = "usage shrank to 10% of the billed hours; accept with rafay-billing accept-shrink"
    with ledger.cursor() as cur:
        cur.execute(sql("coverage/hold.sql"), {"org_ids": ["good"], "usage_dates": [D1], "organizations": ["Good Corp"],
                                               "run_ids": ["manual__reread"], "billed_run_ids": [RUN1],
                                               "details": [detail]})
    row = next(r for r in queries.coverage(ledger, D1, D1 + timedelta(days=1)).rows if r["org_id"] == "good")
    assert (row["status"], row["reason"], row["needs_attention"]) == ("held", "usage_shrank", True)
    assert links.task_path("/", row) == "/dags/rafay_usage_billing/runs/manual__reread/tasks/rate_window"
    assert queries.coverage_summary(ledger, D1, D1 + timedelta(days=1)).held == 1
    html = _client(billing_dsn, tmp_path).get("/", params={"day": D1.isoformat()}).text
    assert re.search(r'data-org="good" data-status="held" data-attention="true"', html)
    assert f'<span class="reason">usage_shrank</span>: {detail}' in html
    assert "1 held" in html
