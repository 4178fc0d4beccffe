"""The operator's view in a real headless browser (Debian's Chromium driven by playwright) against
the real api-server of ``make airflow``'s stack (:class:`LocalAirflow`): log in, trigger a run from
the typed form, watch a bad conf refused before any task runs, open Billing from the navigation,
check its figures and chart against the billing database, download a report through the app; and
the stack's sockets are all on loopback, the Billing app refuses anonymous callers. And what needs
attention (issue 23 part 6): an org whose key is refused fails at once, the window says it is not
clean, the coverage names the failed (org, day), run links work inside the UI's sandboxed frame, and
the task's extra link "Billing for this window" leads back to the view.

Screenshots are kept as artifacts under ``$BILLING_TEST_ARTIFACTS`` (default: the module's tmp dir).
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import psycopg
import pytest
import requests

from rafay_devkit.airflow_env import airflow_env
from rafay_devkit.local_airflow import DAG_ID, LocalAirflow
from rafay_simulator import Fault, RafaySimulator, SimulatorConfig
from tests.support.db import create_database
from tests.support.paths import DEMO_PRICE_BOOK

pytestmark = [pytest.mark.e2e, pytest.mark.topology]

CHROMIUM = Path("/usr/bin/chromium")
TODAY = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
YESTERDAY = TODAY - timedelta(days=1)
ORGS = 4
RUN_TIMEOUT = 600


@dataclass
class Stack:
    airflow: LocalAirflow
    sim: RafaySimulator
    billing_dsn: str
    landing: Path
    artifacts: Path

    def query(self, sql: str, params: tuple = ()) -> list[tuple]:
        with psycopg.connect(self.billing_dsn) as conn:
            return conn.execute(sql, params).fetchall()


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, postgres_server: str) -> Iterator[Stack]:
    home = tmp_path_factory.mktemp("billing_view")
    artifacts = Path(os.environ.get("BILLING_TEST_ARTIFACTS") or home / "artifacts") / "billing_view"
    artifacts.mkdir(parents=True, exist_ok=True)
    sim = RafaySimulator(SimulatorConfig(seed=7, orgs=ORGS, now=TODAY + timedelta(days=1))).start()
    billing_dsn = create_database(postgres_server, "billing_view")
    metadata_dsn = create_database(postgres_server, "airflow_view")
    landing = home / "landing"
    env = airflow_env(
        home / "airflow", rafay_url=sim.url, rafay_api_key=sim.api_key, billing_dsn=billing_dsn,
        data_uri=landing.as_uri(), price_book_uri=DEMO_PRICE_BOOK.as_uri(),
        # catch-up starts today: the only run yesterday gets is the one this test triggers
        billing_start_date=TODAY.date().isoformat(),
    )
    airflow = LocalAirflow(home / "airflow", env, parallelism=4, metadata_dsn=metadata_dsn)
    try:
        airflow.start()
        airflow.wait_for_dag(DAG_ID)
        yield Stack(airflow, sim, billing_dsn, landing, artifacts)
    finally:
        airflow.stop()
        sim.stop()


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
    context = browser.new_context(viewport={"width": 1400, "height": 1100}, accept_downloads=True)
    page = context.new_page()
    page.set_default_timeout(60_000)
    page.goto(stack.airflow.url + "/")
    page.wait_for_url(re.compile(r".*/auth/login.*"))
    page.locator("input[name=username]").fill(stack.airflow.username)
    page.locator("input[name=password]").fill(stack.airflow.password or "")
    page.locator("button[type=submit]").click()
    page.wait_for_url(stack.airflow.url + "/")
    return page


def _open_trigger_form(page: Any, stack: Stack) -> Any:
    page.goto(f"{stack.airflow.url}/dags/{DAG_ID}")
    page.get_by_role("button", name="Trigger").first.click()
    dialog = page.get_by_role("dialog")
    dialog.locator("textarea[name=element_orgs]").wait_for()
    return dialog


# --- loopback and anonymous ------------------------------------------------------------------------


def test_no_process_of_the_stack_listens_beyond_loopback(stack: Stack) -> None:
    listening = set()
    for proc in stack.airflow.own_processes():
        try:
            connections = proc.net_connections(kind="inet")
        except Exception:  # a process that ended meanwhile
            continue
        listening |= {(c.laddr.ip, c.laddr.port, proc.name()) for c in connections if c.status == "LISTEN"}
    assert any(port == stack.airflow.api_port for _, port, _ in listening), listening  # the check sees sockets
    beyond = [entry for entry in listening if not ipaddress.ip_address(entry[0]).is_loopback]
    assert beyond == [], f"listening beyond loopback: {beyond}"
    assert not any("serve-logs" in name or "serve_logs" in name for _, _, name in listening)


def test_anonymous_callers_of_the_billing_app_are_refused(stack: Stack) -> None:
    base = f"{stack.airflow.url}/billing"
    for path in ("/", "/api/totals", "/reports/window=20261110T000000Z_20261111T000000Z/run=x/line-items.csv"):
        response = requests.get(base + path, timeout=30)
        assert response.status_code == 401, (path, response.text[:300])
        bad = requests.get(base + path, headers={"Authorization": "Bearer forged.jwt.token"}, timeout=30)
        assert bad.status_code == 401, path
    # a real token passes (nothing is billed yet in this module, so the app says what to do)
    token = stack.airflow.client.token()
    ok = requests.get(base + "/api/totals", headers={"Authorization": f"Bearer {token}"}, timeout=30)
    assert ok.status_code == 503 and "migrate_schema" in ok.json()["detail"]


# --- the operator's flow -----------------------------------------------------------------------------


def test_operator_triggers_from_the_form_and_reads_billing(stack: Stack, browser: Any) -> None:
    page = _login(browser, stack)
    shots = stack.artifacts
    orgs = sorted(o.org_id for o in stack.sim.dataset.orgs)[:2]

    # a bad conf typed into the form's JSON is refused by Airflow before any run exists
    dialog = _open_trigger_form(page, stack)
    dialog.get_by_role("button", name="Advanced Options").click()
    dialog.locator(".monaco-editor .view-lines").click()
    page.keyboard.press("Control+A")
    page.keyboard.press("Delete")
    page.keyboard.insert_text(json.dumps({"days": 0, "orgs": json.dumps([orgs[0]]), "settle_minutes": 0}))
    dialog.get_by_role("button", name="Trigger").last.click()
    error = dialog.get_by_text(re.compile(r"Invalid input for param"))
    error.wait_for()
    page.screenshot(path=str(shots / "01-bad-conf-refused.png"))
    assert stack.airflow.client.dag_runs(DAG_ID) == []

    # the typed form: a list field for org ids (one per line), a number field; the logical date is pre-filled
    dialog = _open_trigger_form(page, stack)
    dialog.locator("textarea[name=element_orgs]").fill("\n".join(orgs))
    dialog.locator("input[name=element_settle_minutes]").fill("0")
    page.screenshot(path=str(shots / "02-trigger-form.png"))
    dialog.get_by_role("button", name="Trigger").last.click()
    page.wait_for_url(re.compile(rf".*/dags/{DAG_ID}/runs/[^/]+$"))
    run_id = unquote(page.url.rsplit("/runs/", 1)[1])
    run = stack.airflow.client.wait_for_run(DAG_ID, run_id, timeout=RUN_TIMEOUT)
    page.screenshot(path=str(shots / "03-run.png"))
    assert run["state"] == "success", stack.airflow.client.task_states(DAG_ID, run_id)
    assert run["conf"]["orgs"] == orgs  # a list, not the text of one
    assert run["data_interval_start"].startswith(YESTERDAY.strftime("%Y-%m-%d"))

    # Billing from the navigation: the page in the UI's frame, authenticated by the UI's cookie
    page.get_by_test_id("nav-sidebar").get_by_role("link", name="Billing", exact=True).click()
    page.wait_for_url(re.compile(r".*/plugin/billing$"))
    frame = page.frame_locator("iframe")
    frame.locator("h1", has_text="Billing").wait_for()
    page.screenshot(path=str(shots / "04-billing.png"), full_page=True)

    rows = frame.locator("tr.total-row")
    shown = {
        (r.get_attribute("data-day"), r.get_attribute("data-org"), r.get_attribute("data-currency")):
            (Decimal(r.get_attribute("data-amount")), int(r.get_attribute("data-items")))
        for r in rows.all()
    }
    expected = {
        (str(day), org, cur.strip()): (amount, items)
        for day, org, cur, amount, items in stack.query(
            "SELECT usage_date, org_id, currency, sum(amount), count(*) FROM billing.charge_line_items"
            " WHERE usage_date = %s GROUP BY 1, 2, 3", (YESTERDAY.date(),))
    }
    assert expected and {k[1] for k in expected} == set(orgs)
    assert shown == expected
    # the figures the operator reads (not only the attributes): each org's amount is in its row's text
    for row in rows.all():
        assert f"{Decimal(row.get_attribute('data-amount')):,}" in row.inner_text()
    run_links = {a.get_attribute("href") for a in frame.locator("a.run-link").all()}
    assert run_links == {f"/dags/{DAG_ID}/runs/{requests.utils.quote(run_id, safe='')}"}

    # the daily chart has data points, and they add up to the database's total of the day
    currency = frame.locator("svg#chart-daily").get_attribute("data-currency")
    points = frame.locator(f"svg#chart-daily rect.point[data-day='{YESTERDAY.date()}']")
    assert points.count() >= 1
    assert sum(Decimal(p.get_attribute("data-value")) for p in points.all()) == sum(
        amount for (day, _, cur), (amount, _) in expected.items() if cur == currency)
    assert frame.locator("svg#chart-gpu rect.point").count() >= 1

    # a report downloaded through the app is the file in the landing root; no file:// reaches the browser
    assert "file://" not in frame.locator("body").inner_html()
    link = frame.locator("a.report-link", has_text="line-items.csv").first
    with page.expect_download() as download_info:
        link.click()
    download = download_info.value
    saved = shots / "line-items.csv"
    download.save_as(saved)
    landed = list(stack.landing.glob("reports/window=*/run=*/line-items.csv"))
    assert len(landed) == 1
    assert saved.read_bytes() == landed[0].read_bytes()
    assert saved.read_text().count("\n") == sum(items for _, items in expected.values()) + 1

    # a browser that never logged in gets no billing data
    anonymous = browser.new_context()
    try:
        response = anonymous.new_page().goto(f"{stack.airflow.url}/billing/")
        assert response.status == 401
    finally:
        anonymous.close()
    page.context.close()
    if os.environ.get("BILLING_VIEW_SCREENSHOT"):  # refresh the README's screenshot: docs/billing-view.png
        shutil.copy(shots / "04-billing.png", os.environ["BILLING_VIEW_SCREENSHOT"])


# --- what needs attention (issue 23 part 6) -------------------------------------------------------------


def _frame_url(page: Any, part: str) -> str | None:
    return next((f.url for f in page.frames if f != page.main_frame and part in f.url), None)


def test_a_refused_key_fails_at_once_and_the_view_shows_what_needs_attention(stack: Stack, browser: Any) -> None:
    client = stack.airflow.client
    orgs = sorted(stack.sim.dataset.orgs, key=lambda o: o.org_id)[2:]  # not billed by the flow above
    good, refused = orgs
    day = YESTERDAY - timedelta(days=1)
    window = {"window_start": day.strftime("%Y-%m-%dT00:00:00Z"),
              "window_end": YESTERDAY.strftime("%Y-%m-%dT00:00:00Z")}
    client.unpause(DAG_ID)  # (the operator's flow above unpauses it from the form; this test also runs alone)
    stack.sim.add_fault(Fault(kind="status", status=401, org=refused.org_id))
    try:
        run = client.trigger(DAG_ID, conf={**window, "orgs": [good.org_id, refused.org_id], "settle_minutes": 0})
        run_id = run["dag_run_id"]
        final = client.wait_for_run(DAG_ID, run_id, timeout=RUN_TIMEOUT)
    finally:
        stack.sim.clear_faults()
    assert final["state"] == "failed", client.task_states(DAG_ID, run_id)
    mapped = {ti["rendered_map_index"]: ti for ti in client.mapped_task_instances(DAG_ID, run_id, "extract_org")}
    assert set(mapped) == {good.name, refused.name}
    # failed at once: one try, although extract_org has retries
    assert (mapped[refused.name]["state"], mapped[refused.name]["try_number"]) == ("failed", 1), mapped[refused.name]
    log = client.task_log(DAG_ID, run_id, "extract_org", 1, mapped[refused.name]["map_index"])
    assert "AirflowFailException" in log and "rafay_default" in log and "HTTP 401" in log, log[-3000:]
    assert mapped[good.name]["state"] == "success"
    assert stack.query("SELECT status FROM billing.coverage WHERE org_id = %s AND usage_date = %s",
                       (refused.org_id, day.date())) == [("failed",)]

    # the task's extra link leads to the Billing view of the run's window
    links = client.get(f"/dags/{DAG_ID}/dagRuns/{requests.utils.quote(run_id, safe='')}/taskInstances/rate_window/links")
    href = links["extra_links"]["Billing for this window"]
    assert href == f"/plugin/billing/billing/?day={day.date()}&days=1", links

    page = _login(browser, stack)
    page.goto(stack.airflow.url + href)
    frame = page.frame_locator("iframe")
    banner = frame.locator("#window-status")
    banner.wait_for()
    page.screenshot(path=str(stack.artifacts / "05-attention.png"), full_page=True)
    assert banner.get_attribute("data-clean") == "false"
    assert "1 failed" in banner.inner_text() and run_id in banner.inner_text()
    failed = frame.locator(f"tr.coverage-row[data-org='{refused.org_id}']")
    assert failed.get_attribute("data-status") == "failed"
    assert "rafay_default" in failed.inner_text()
    assert failed.locator("a.task-link").get_attribute("href").endswith("/tasks/extract_org/mapped")
    assert frame.locator(f"tr.coverage-row[data-org='{good.org_id}']").get_attribute("data-status") == "billed"
    run_row = frame.locator(f"tr.run-row[data-run='{run_id}']")
    assert run_row.get_attribute("data-state") == "failed"
    assert int(run_row.get_attribute("data-items")) == stack.query(
        "SELECT count(*) FROM billing.charge_line_items WHERE run_id = %s", (run_id,))[0][0]

    # a run link works inside the UI's sandboxed frame: the run page opens in the frame, no navigation refused
    refused_navigation: list[str] = []
    page.on("console", lambda m: refused_navigation.append(m.text) if "Unsafe attempt" in m.text else None)
    run_path = f"/dags/{DAG_ID}/runs/{requests.utils.quote(run_id, safe='')}"
    run_row.locator("a.run-link").click()
    page.wait_for_url(re.compile(r".*/plugin/billing/dags/.*"))
    deadline = datetime.now(UTC) + timedelta(seconds=60)
    while _frame_url(page, run_path) is None and datetime.now(UTC) < deadline:
        page.wait_for_timeout(250)
    assert _frame_url(page, run_path), [f.url for f in page.frames]
    frame.get_by_text(run_id).first.wait_for()
    page.screenshot(path=str(stack.artifacts / "06-run-in-frame.png"), full_page=True)
    assert refused_navigation == []
    page.context.close()


# --- contracts (issue 22): the Contracts section in the browser ------------------------------------------


def test_the_contracts_section_shows_a_reservation_and_the_months_charges(stack: Stack, browser: Any) -> None:
    """A reservation accepted at 14:00 yesterday, synced as the DAGs sync (billing starts today in this
    stack): the view shows the contract, today's capacity (24 h of 1 unit) as the chart's bar with the
    usage it covered, and the month's fee prorated from the start of billing, as computed here."""
    from fractions import Fraction

    from rafay_billing.contracts.source import COLUMNS
    from rafay_billing.periods.contract_changes import sync_and_rerate

    org = sorted(o.org_id for o in stack.sim.dataset.orgs)[0]  # billed by the operator's flow
    found = stack.query(
        "SELECT profile_type, profile, pricing_unit, currency FROM billing.charge_line_items WHERE org_id = %s"
        " AND usage_date = %s AND dimension = '' AND pricing_unit IN ('instance_hour', 'gpu_hour')"
        " ORDER BY pricing_quantity DESC LIMIT 1", (org, YESTERDAY.date()))
    if not found:
        pytest.fail(f"org {org} has no instance-priced usage on {YESTERDAY.date()} to reserve", pytrace=False)
    ptype, profile, unit, currency = found[0]
    start = YESTERDAY + timedelta(hours=14)
    row = f"view-r1,{org},reservation,{ptype},{profile},{unit},1,0.50,,{currency.strip()},,{start:%Y-%m-%dT%H:%M:%SZ},,,,"
    with psycopg.connect(stack.billing_dsn) as conn:
        sync_and_rerate(conn, ",".join(COLUMNS) + "\n" + row + "\n", billing_start=TODAY.date())
    month_end = (TODAY.replace(day=1) + timedelta(days=32)).replace(day=1)
    fee = Fraction("0.50") * Fraction(int((month_end - TODAY).total_seconds()), 3600)  # from billing's start
    fee_money = (Decimal(fee.numerator) / Decimal(fee.denominator)).quantize(Decimal("0.01"), ROUND_HALF_UP)

    page = _login(browser, stack)
    page.goto(f"{stack.airflow.url}/plugin/billing/billing/?day={YESTERDAY.date()}&corg={org}&cmonth={TODAY:%Y-%m}")
    frame = page.frame_locator("iframe")
    frame.locator("#contracts").wait_for()
    frame.locator("#contracts").scroll_into_view_if_needed()
    page.screenshot(path=str(stack.artifacts / "07-contracts.png"), full_page=True)
    assert frame.locator("tr.contract-row[data-contract='view-r1']").count() == 1
    bars = frame.locator("svg#chart-reservation-view-r1 rect.point")
    assert bars.count() == (month_end - TODAY).days  # a bar per day of the month from billing's start
    today = frame.locator(f"svg#chart-reservation-view-r1 rect.point[data-day='{TODAY.date()}']")
    assert Decimal(today.get_attribute("data-capacity")) == Decimal(24)  # 1 unit x 24 h
    assert Decimal(today.get_attribute("data-covered")) == Decimal(0)  # nothing billed today yet
    charge = frame.locator("tr.contract-charge[data-contract='view-r1']")
    assert Decimal(charge.get_attribute("data-amount")) == fee_money
    assert f"{fee_money:,}" in charge.inner_text()
    page.context.close()
