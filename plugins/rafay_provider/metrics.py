"""The billing metrics, emitted through Airflow's metrics system (``airflow.sdk.observability.stats.Stats``:
StatsD or OpenTelemetry as ``[metrics]`` says; a no-op when metrics are off).

Names are ``rafay_billing.<metric>[.<currency or reason>]`` under Airflow's prefix (``[metrics]
statsd_prefix``, default ``airflow``): StatsD drops tags, so the currency or reason is part of the name.
Each DAG step calls one function here with what it already has (its result, the client's counters), so
the steps stay as they were and the core (``rafay_billing``) knows nothing of Airflow. A metric that
cannot be sent never fails a step: it is logged and dropped.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from decimal import Decimal
from typing import Any

from rafay_provider.payloads import LoadResult, RateResult

log = logging.getLogger(__name__)

PREFIX = "rafay_billing"

# counters
ORGS_LISTED = "orgs_listed"
PROFILES_READ = "profiles_read"
RECORDS_READ = "records_read"
API_REQUESTS = "api_requests"
API_RETRIES = "api_retries"
PAGES_REREAD = "pages_reread"
ROWS_LOADED = "rows_loaded"
ITEMS_RATED = "items_rated"
EXCEPTIONS = "exceptions"  # .<reason>
HELD_DAYS = "held_org_days"
FAILED_DAYS = "failed_org_days"
INVOICES_ISSUED = "invoices_issued"
CREDIT_NOTES_ISSUED = "credit_notes_issued"
# timers
API_LATENCY = "api_request_latency"
# gauges (per currency)
AMOUNT_BILLED = "amount_billed"  # .<currency>
INVOICED_TOTAL = "invoiced_total"  # .<currency>
CREDITED_TOTAL = "credited_total"  # .<currency>, a positive amount


def name(metric: str, suffix: str | None = None) -> str:
    """``rafay_billing.<metric>[.<suffix>]`` with the suffix made StatsD-safe (``[A-Za-z0-9_.-]``)."""
    if suffix is None:
        return f"{PREFIX}.{metric}"
    safe = "".join(c if c.isalnum() or c in "_-" else "_" for c in str(suffix))
    return f"{PREFIX}.{metric}.{safe}"


def _stats() -> Any:
    from airflow.sdk.observability.stats import Stats

    return Stats


def _incr(metric: str, count: int, suffix: str | None = None) -> None:
    if count:
        _stats().incr(name(metric, suffix), count)


@contextmanager
def _observing(what: str) -> Iterator[None]:
    """Metrics are observations: a failure to send one is logged, never raised into the step."""
    try:
        yield
    except Exception as exc:
        log.warning("metrics of %s not emitted: %s", what, exc)


def listed(count: int, client: Any) -> None:
    """``list_orgs``: the organizations this run bills, and the listing's requests."""
    with _observing("list_orgs"):
        _incr(ORGS_LISTED, count)
    client_requests(client)


def extraction(result: Any) -> None:
    """One (org, day) read (``OrgExtraction``): its profiles and the usage records received."""
    with _observing("an extraction"):
        _incr(PROFILES_READ, int(result.profiles))
        _incr(RECORDS_READ, int(result.records))


def client_requests(client: Any) -> None:
    """A task's Rafay client, once its work is done: requests (every attempt), retries, pages re-read,
    and each request's latency as a timer (ms)."""
    with _observing("the Rafay requests"):
        stats = client.stats
        snap = stats.snapshot()
        _incr(API_REQUESTS, snap.requests)
        _incr(API_RETRIES, snap.retries)
        _incr(PAGES_REREAD, snap.rereads)
        timing = _stats().timing
        for ms in stats.latencies():
            timing(name(API_LATENCY), ms)


def loaded(result: LoadResult) -> LoadResult:
    """``load_usage``'s result, reported (usage rows loaded, the (org, day)s marked failed) and returned."""
    with _observing("load_usage"):
        _incr(ROWS_LOADED, int(result.get("rows") or 0))
        _incr(FAILED_DAYS, len(result.get("failed") or []))
    return result


def rated(result: RateResult) -> RateResult:
    """``rate_window``'s result, reported and returned: line items written, exceptions by reason, (org, day)s
    held, and the amount billed per currency (a gauge: this run's rated total, to the minor unit)."""
    with _observing("rate_window"):
        _incr(ITEMS_RATED, int(result.get("line_items") or 0))
        for reason, count in sorted((result.get("exceptions_by_reason") or {}).items()):
            _incr(EXCEPTIONS, int(count), reason)
        _incr(HELD_DAYS, len(result.get("held") or []))
        _gauges(AMOUNT_BILLED, (result.get("totals_by_currency") or {}).items())
    return result


def _gauges(metric: str, amounts: Iterable[tuple[str, Any]]) -> None:
    gauge = _stats().gauge
    for currency, amount in sorted(amounts):
        # a StatsD gauge is a float on the wire; str(Decimal) -> float keeps every minor unit of a bill
        gauge(name(metric, currency), float(Decimal(str(amount))))


def issued(result: Any) -> None:
    """The close's ``issue_invoices`` (a ``CloseResult``): invoices and credit notes issued by this run and
    their totals per currency (credit notes as positive amounts). A period closed before issues nothing."""
    if result.already_closed:
        return
    with _observing("issue_invoices"):
        invoices = [d for d in result.invoices if not d.is_credit_note]
        credits = [d for d in result.invoices if d.is_credit_note]
        _incr(INVOICES_ISSUED, len(invoices))
        _incr(CREDIT_NOTES_ISSUED, len(credits))
        for metric, docs, sign in ((INVOICED_TOTAL, invoices, 1), (CREDITED_TOTAL, credits, -1)):
            totals: dict[str, Decimal] = {}
            for doc in docs:
                totals[doc.currency] = totals.get(doc.currency, Decimal(0)) + sign * Decimal(doc.subtotal)
            _gauges(metric, totals.items())
