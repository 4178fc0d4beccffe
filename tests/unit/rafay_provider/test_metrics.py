"""Issue 23 part 3: the metric names and values each step reports (the wire is tested end to end in
tests/e2e/test_metrics_e2e.py); a metric that cannot be sent never fails the step."""

from __future__ import annotations

from decimal import Decimal
from types import SimpleNamespace

import pytest

from rafay_billing.source.client import ClientStats
from rafay_provider import metrics


class Recorder:
    def __init__(self) -> None:
        self.calls: list[tuple] = []

    def incr(self, stat: str, count: int = 1) -> None:
        self.calls.append(("c", stat, count))

    def gauge(self, stat: str, value: float) -> None:
        self.calls.append(("g", stat, value))

    def timing(self, stat: str, dt: float) -> None:
        self.calls.append(("ms", stat, dt))


@pytest.fixture
def sent(monkeypatch) -> Recorder:
    recorder = Recorder()
    monkeypatch.setattr(metrics, "_stats", lambda: recorder)
    return recorder


def _doc(currency: str, subtotal: str) -> SimpleNamespace:
    return SimpleNamespace(currency=currency, subtotal=Decimal(subtotal), is_credit_note=Decimal(subtotal) < 0)


def test_the_close_reports_invoices_and_credit_notes_issued_and_their_totals(sent: Recorder) -> None:
    result = SimpleNamespace(already_closed=False, invoices=[
        _doc("USD", "100.10"), _doc("USD", "0.05"), _doc("JPY", "1200"), _doc("EUR", "-12.34")])
    metrics.issued(result)
    assert sent.calls == [
        ("c", "rafay_billing.invoices_issued", 3),
        ("c", "rafay_billing.credit_notes_issued", 1),
        ("g", "rafay_billing.invoiced_total.JPY", 1200.0),
        ("g", "rafay_billing.invoiced_total.USD", 100.15),
        ("g", "rafay_billing.credited_total.EUR", 12.34),
    ]


def test_a_period_closed_before_reports_nothing(sent: Recorder) -> None:
    metrics.issued(SimpleNamespace(already_closed=True, invoices=[_doc("USD", "1.00")]))
    assert sent.calls == []


def test_rated_reports_items_exceptions_by_reason_held_days_and_amount_per_currency(sent: Recorder) -> None:
    result = {"slices": 2, "line_items": 7, "exceptions_by_reason": {"unpriced": 2, "invalid_usage": 0},
              "totals_by_currency": {"USD": "876.06", "EUR": "1102.00"}, "held": ["acme 2026-11-10"]}
    assert metrics.rated(result) is result  # a step returns what it reports
    assert sent.calls == [
        ("c", "rafay_billing.items_rated", 7),
        ("c", "rafay_billing.exceptions.unpriced", 2),
        ("c", "rafay_billing.held_org_days", 1),
        ("g", "rafay_billing.amount_billed.EUR", 1102.0),
        ("g", "rafay_billing.amount_billed.USD", 876.06),
    ]


def test_client_requests_report_counts_and_one_timer_per_request(sent: Recorder) -> None:
    stats = ClientStats()
    for ms in (12.5, 40.0, 7.25):
        stats.add_request(ms)
    stats.add_retry()
    stats.add_reread()
    stats.add_reread()
    metrics.client_requests(SimpleNamespace(stats=stats))
    assert sent.calls == [
        ("c", "rafay_billing.api_requests", 3), ("c", "rafay_billing.api_retries", 1),
        ("c", "rafay_billing.pages_reread", 2),
        ("ms", "rafay_billing.api_request_latency", 12.5), ("ms", "rafay_billing.api_request_latency", 40.0),
        ("ms", "rafay_billing.api_request_latency", 7.25),
    ]


def test_a_metric_that_cannot_be_sent_never_fails_the_step(monkeypatch, caplog) -> None:
    def broken() -> None:
        raise OSError("no route to statsd")

    monkeypatch.setattr(metrics, "_stats", broken)
    result = {"rows": 3, "failed": [], "loaded": [], "orgs": []}
    assert metrics.loaded(result) is result  # type: ignore[arg-type]
    assert "metrics of load_usage not emitted: no route to statsd" in caplog.text


def test_names_stay_statsd_safe() -> None:
    assert metrics.name("exceptions", "usage exceeds/window") == "rafay_billing.exceptions.usage_exceeds_window"
    assert metrics.name("orgs_listed") == "rafay_billing.orgs_listed"
