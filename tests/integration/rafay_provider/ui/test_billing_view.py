"""The Billing view's queries, charts and app over a real PostgreSQL rated by the real rater, and a
file landing root; the app through FastAPI's TestClient (the browser test drives the real api-server)."""

from __future__ import annotations

import re
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import psycopg
import pytest
from fastapi.testclient import TestClient

from rafay_provider.ui import charts, queries, reports
from rafay_provider.ui.app import Sources, create_app
from rafay_provider.ui.auth import require_user
from tests.support.billed import Usage, bill

D1 = date(2026, 11, 10)
END = D1 + timedelta(days=1)
ORGS = 120  # enough to need paging and an "others" series
CENT = Decimal("0.01")


def hours(i: int) -> Decimal:
    return Decimal(i) / 5  # 0.2 .. 24 h: within a day


def amount(i: int) -> Decimal:
    """Org i's cpu-vm charge: hours x 0.12 USD, rounded half-up to the cent (written out here)."""
    return (hours(i) * Decimal("0.12")).quantize(CENT, rounding=ROUND_HALF_UP)


@pytest.fixture
def billed(pg_conn) -> psycopg.Connection:
    usage = [Usage(f"o{i:03d}xyz", D1, "cpu-vm", f"vm{i}", str(hours(i))) for i in range(1, ORGS + 1)]
    usage += [
        Usage("o001xyz", D1, "h100-vm", "gpu1", "2", 8),      # 16 GPU-h, 44.00 USD
        Usage("o001xyz", D1 - timedelta(days=1), "cpu-vm", "vm1", "10"),  # the day before: 1.20 USD
        Usage("eurorg1", D1, "a100-vm", "eu1", "1.5", 4),     # 6 GPU-h, 11.40 EUR
        Usage("o002xyz", D1, "nope-vm", "bad1", "3"),         # unpriced -> open exception
    ]
    bill(pg_conn, usage, "scheduled__2026-11-11T00:00:00+00:00", names={"o001xyz": "Acme Robotics"})
    return pg_conn


def test_window_totals_per_org_and_currency_paged_and_searchable(billed) -> None:
    page = queries.window_totals(billed, D1, END, limit=50)
    assert page.total == ORGS + 1  # 120 USD orgs + eurorg1 (EUR); o002xyz's exception joins its USD row
    assert len(page.rows) == 50 and page.has_next
    top = page.rows[0]
    assert (top["org_id"], top["currency"], top["items"], top["amount"]) == ("o001xyz", "USD", 2, Decimal("44.02"))
    assert top["run_id"] == "scheduled__2026-11-11T00:00:00+00:00"
    last = queries.window_totals(billed, D1, END, limit=50, offset=100)
    assert len(last.rows) == ORGS + 1 - 100 and not last.has_next
    found = queries.window_totals(billed, D1, END, search="acme rob")
    assert [r["org_id"] for r in found.rows] == ["o001xyz"]
    exc = queries.window_totals(billed, D1, END, search="o002xyz").rows[0]
    assert exc["exceptions"] == {"unpriced": 1} and exc["amount"] == amount(2) == Decimal("0.05")
    assert queries.window_totals(billed, D1, END, search="100%").total == 0  # wildcards are literal


def test_currency_totals_equal_the_sum_of_line_items(billed) -> None:
    by_currency = {r["currency"]: r for r in queries.currency_totals(billed, D1, END)}
    expected = sum((amount(i) for i in range(1, ORGS + 1)), Decimal("44.00"))
    assert by_currency["USD"]["amount"] == expected
    assert by_currency["EUR"]["amount"] == Decimal("11.40")
    assert by_currency["USD"]["orgs"] == ORGS


def test_daily_chart_top_n_plus_others(billed) -> None:
    data = queries.daily_charges(billed, END, "USD", days=30, top=5)
    assert len(data.days) == 30 and data.days[-1] == D1
    assert [s.org_id for s in data.series] == ["o001xyz", "o120xyz", "o119xyz", "o118xyz", "o117xyz", None]
    assert data.series[0].amounts[-1] == Decimal("44.02") and data.series[0].amounts[-2] == Decimal("1.20")
    others = sum(amount(i) for i in range(2, 117))
    assert data.series[-1].amounts[-1] == others
    svg = charts.daily_stacked_bars(data)
    points = re.findall(r'<rect class="point"[^>]*data-series="([^"]+)" data-day="([^"]+)" data-value="([^"]+)"', svg)
    assert ("o001xyz", D1.isoformat(), "44.02") in points
    assert ("others", D1.isoformat(), str(others)) in points
    assert len(points) == 7  # 6 series on D1 + o001xyz the day before


def test_gpu_hours_per_profile(billed) -> None:
    assert queries.gpu_hours_by_profile(billed, D1, END) == [("h100-vm", Decimal("16")), ("a100-vm", Decimal("6.0"))]
    top1 = queries.gpu_hours_by_profile(billed, D1, END, top=1)
    assert top1 == [("h100-vm", Decimal("16")), ("others (1 profiles)", Decimal("6.0"))]
    svg = charts.horizontal_bars(top1, unit="GPU-h", chart_id="g", title="t")
    assert svg.count('class="point"') == 2 and 'data-value="16"' in svg


def test_open_exceptions(billed) -> None:
    page = queries.open_exceptions(billed)
    assert page.total == 1
    row = page.rows[0]
    assert (row["org_id"], row["reason"], row["profile"], row["usage_date"]) == ("o002xyz", "unpriced", "nope-vm", D1)
    assert row["billing_period_start"] == D1.replace(day=1)  # the close it blocks (issue 21, rule 1)
    assert row["detail"]
    assert queries.open_exceptions(billed, search="unpriced").total == 1
    assert queries.open_exceptions(billed, search="nothing-like-this").total == 0


def test_report_names_never_leave_the_reports_area(tmp_path: Path) -> None:
    for bad in ["../secrets.csv", "window=20261110T000000Z_20261111T000000Z/run=x/../../../etc/passwd",
                "window=x/run=y/z.csv", "window=20261110T000000Z_20261111T000000Z/run=a b/x.csv", "/etc/passwd"]:
        with pytest.raises(reports.ReportPathError):
            reports.resolve(tmp_path, bad)


# --- the app -------------------------------------------------------------------------------------

WINDOW_DIR = "window=20261110T000000Z_20261111T000000Z"
RUN_DIR = "run=scheduled__2026-11-11T00_00_00_00_00-1a2b3c"


@pytest.fixture
def landing(tmp_path: Path) -> Path:
    root = tmp_path / "landing"
    run = root / "reports" / WINDOW_DIR / RUN_DIR
    run.mkdir(parents=True)
    (run / "line-items.csv").write_text("org_id,amount\no001xyz,44.12\n")
    (run / "ncp-metrics-11102026.csv").write_text("a,b\n1,2\n")
    other = root / "reports" / "window=20261001T000000Z_20261002T000000Z" / "run=old"
    other.mkdir(parents=True)
    (other / "line-items.csv").write_text("old\n")
    (root / "secret.csv").write_text("do not serve\n")
    return root


def _app(billing_dsn: str, landing: Path):
    from airflow.sdk import ObjectStoragePath

    return create_app(Sources(lambda: {"conninfo": billing_dsn}, lambda: ObjectStoragePath(landing.as_uri()),
                              lambda: "/"))


@pytest.fixture
def client(billed, billing_dsn: str, landing: Path) -> TestClient:
    app = _app(billing_dsn, landing)
    app.dependency_overrides[require_user] = lambda: object()
    return TestClient(app)


def test_page_shows_the_databases_figures_charts_reports_and_run_links(client: TestClient) -> None:
    html = client.get("/", params={"day": D1.isoformat()}).text
    assert re.search(r'data-org="o001xyz" data-currency="USD"\s+data-amount="44.02" data-items="2"', html)
    assert "built-in method" not in html
    assert 'href="/dags/rafay_usage_billing/runs/scheduled__2026-11-11T00%3A00%3A00%2B00%3A00">' in html  # in the frame
    assert html.count('class="total-row"') == 50 and 'id="totals-next"' in html  # paged
    assert '<svg xmlns="http://www.w3.org/2000/svg" class="chart" id="chart-daily"' in html
    assert 'id="chart-gpu"' in html
    assert f'href="reports/{WINDOW_DIR}/{RUN_DIR}/line-items.csv"' in html
    assert "run=old" not in html  # another window's reports are not listed
    assert "file://" not in html and str(Path("/tmp")) not in html
    assert 'class="exception-row" data-org="o002xyz" data-reason="unpriced"' in html
    assert f'<td class="blocks">{D1:%Y-%m}</td>' in html
    assert "No billing period is closed yet" in html
    assert "<script" not in html and "http://" not in html.replace('xmlns="http://www.w3.org/2000/svg"', "")


def test_default_window_is_the_latest_rated_day(client: TestClient) -> None:
    assert client.get("/api/totals").json()["window_start"] == D1.isoformat()


def test_api_totals_json(client: TestClient) -> None:
    body = client.get("/api/totals", params={"day": D1.isoformat(), "q": "eurorg1"}).json()
    assert body["rows"] == [{
        "usage_date": "2026-11-10", "org_id": "eurorg1", "organization": "EURORG1", "currency": "EUR", "items": 1,
        "hours": "1.5", "amount": "11.40", "run_id": "scheduled__2026-11-11T00:00:00+00:00", "exceptions": {},
    }]
    assert {t["currency"]: t["amount"] for t in body["currency_totals"]}["EUR"] == "11.40"


def test_download_streams_a_report_from_the_landing_root(client: TestClient) -> None:
    response = client.get(f"/reports/{WINDOW_DIR}/{RUN_DIR}/line-items.csv")
    assert response.status_code == 200
    assert response.text == "org_id,amount\no001xyz,44.12\n"
    assert 'filename="line-items.csv"' in response.headers["content-disposition"]
    assert client.get(f"/reports/{WINDOW_DIR}/{RUN_DIR}/missing.csv").status_code == 404
    assert client.get("/reports/..%2Fsecret.csv").status_code in (400, 404)
    assert client.get(f"/reports/{WINDOW_DIR}/run=x/..%2F..%2F..%2Fsecret.csv").status_code in (400, 404)


def test_anonymous_and_bad_tokens_are_refused(billed, billing_dsn: str, landing: Path) -> None:
    client = TestClient(_app(billing_dsn, landing))
    for path in ("/", "/api/totals", f"/reports/{WINDOW_DIR}/{RUN_DIR}/line-items.csv"):
        response = client.get(path)
        assert response.status_code == 401, path
        assert "log in to Airflow" in response.json()["detail"]
        assert "44.02" not in response.text


@pytest.fixture
def auth_manager(monkeypatch: pytest.MonkeyPatch):
    """Airflow's SimpleAuthManager, initialised as the api-server does, with a JWT secret of this test."""
    from airflow.api_fastapi import app as api_app

    monkeypatch.setenv("AIRFLOW__CORE__AUTH_MANAGER", "airflow.api_fastapi.auth.managers.simple.simple_auth_manager."
                       "SimpleAuthManager")
    monkeypatch.setenv("AIRFLOW__API_AUTH__JWT_SECRET", "billing-view-test-secret-" + "x" * 48)
    monkeypatch.setattr(api_app._AuthManagerState, "instance", None)
    from airflow import settings
    from airflow.models.revoked_token import RevokedToken

    RevokedToken.__table__.create(settings.engine, checkfirst=True)  # the only metadata table token checks read
    return api_app.init_auth_manager()


def test_the_callers_airflow_token_is_checked_by_the_auth_manager(billed, billing_dsn, landing, auth_manager) -> None:
    from airflow.api_fastapi.auth.managers.simple.user import SimpleAuthManagerUser

    client = TestClient(_app(billing_dsn, landing))
    viewer = auth_manager.generate_jwt(SimpleAuthManagerUser(username="ops", role="viewer"))
    nobody = auth_manager.generate_jwt(SimpleAuthManagerUser(username="guest", role=None))
    ok = client.get("/api/totals", headers={"Authorization": f"Bearer {viewer}"})
    assert ok.status_code == 200 and ok.json()["total_rows"] == ORGS + 1
    # the cookie the Airflow UI sets at login (what the page in the UI's iframe sends)
    assert client.get("/", cookies={"_token": viewer}).status_code == 200
    assert client.get("/api/totals", headers={"Authorization": "Bearer not-a-jwt"}).status_code == 401
    assert client.get("/api/totals", headers={"Authorization": f"Bearer {viewer[:-4]}AAAA"}).status_code == 401
    refused = client.get("/api/totals", headers={"Authorization": f"Bearer {nobody}"})
    assert refused.status_code == 403 and "may not view Billing" in refused.json()["detail"]
    auth_manager.revoke_token(viewer)  # logged out
    assert client.get("/api/totals", headers={"Authorization": f"Bearer {viewer}"}).status_code == 401


def test_an_unmigrated_database_says_what_to_do(billing_dsn: str, landing: Path) -> None:
    app = _app(billing_dsn, landing)
    app.dependency_overrides[require_user] = lambda: object()
    response = TestClient(app).get("/api/totals")
    assert response.status_code == 503 and "run the DAG once" in response.json()["detail"]
