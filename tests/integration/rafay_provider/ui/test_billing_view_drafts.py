"""The Billing view's invoice drafts section (issue 23, part 1): drafts awaiting approval are visible,
with their totals, and a decided set says who decided what."""

from __future__ import annotations

from datetime import UTC, date, datetime

from fastapi.testclient import TestClient

from rafay_billing.ledger.coverage import register_orgs
from rafay_billing.period import Period
from rafay_billing.periods.drafts import REJECT, Decision, decide, draft_period
from rafay_provider.ui.auth import require_user
from tests.integration.rafay_provider.ui.test_billing_view import _app, landing  # noqa: F401 - a fixture
from tests.support.billed import Usage, bill

OCT = Period(date(2026, 10, 1))
AFTER = datetime(2026, 11, 2, tzinfo=UTC)


def test_drafts_awaiting_approval_and_decided_ones_are_shown(pg_conn, billing_dsn: str, landing) -> None:  # noqa: F811
    bill(pg_conn, [Usage("acme", date(2026, 10, 31), "cpu-vm", "vm1", "10"),
                   Usage("eurorg1", date(2026, 10, 31), "a100-vm", "eu1", "1.5", 4)], "r", names={"acme": "Acme"})
    register_orgs(pg_conn, [("acme", "Acme"), ("eurorg1", "EURORG1")], date(2026, 10, 31), "r")
    first = draft_period(pg_conn, OCT, actor="airflow:rafay_billing_close/r1", issuer="ACME", now=AFTER)
    try:
        decide(pg_conn, OCT, first.draft_set_id, Decision(REJECT, "wrong rate", "finance"), actor="a", issuer="ACME")
    except Exception:  # the rejection fails the close by design
        pass
    draft_period(pg_conn, OCT, actor="airflow:rafay_billing_close/r2", issuer="ACME", now=AFTER)
    app = _app(billing_dsn, landing)
    app.dependency_overrides[require_user] = lambda: object()
    html = TestClient(app).get("/").text
    assert "Invoice drafts (1 awaiting approval)" in html
    assert 'class="draft-row" data-set="2" data-status="pending" data-period="2026-10"' in html
    assert "1.20 USD" in html and "11.40 EUR" in html  # 10 h x 0.12; 6 GPU-h x 1.90
    assert 'data-set="1" data-status="discarded"' in html and "wrong rate" in html and "Reject" in html
