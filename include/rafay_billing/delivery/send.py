"""Post every pending document of one endpoint: at least once, acknowledged once.

Each request carries ``Idempotency-Key: <document id>`` and a fresh signature. An attempt is counted in
``billing.deliveries`` before it is sent and its answer recorded after, so a crash in between shows the
attempt and the next run sends the same document again with the same key (the receiver deduplicates).
Transient failures wait in a queue ordered by when they are due, so one document's backoff or
``Retry-After`` never delays the others; a document that is not delivered within the policy stays
pending (or failed) and is named in the report. The transport is the caller's (the Airflow step gives
``HttpHook``'s session; the tests a plain one): ``transport(body, headers, timeout) -> response``.
"""

from __future__ import annotations

import heapq
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from rafay_billing.delivery import state
from rafay_billing.delivery.payload import DocumentBody, load_document
from rafay_billing.delivery.policy import (
    DELIVERED,
    FAILED,
    DeliveryConfigError,
    Outcome,
    RetryPolicy,
    classify_error,
    classify_response,
)
from rafay_billing.delivery.signature import HEADER, sign
from rafay_billing.errors import DocumentError

log = logging.getLogger(__name__)
USER_AGENT = "rafay-billing-delivery/1"


class Response(Protocol):
    status_code: int
    headers: Mapping[str, str]
    text: str


Transport = Callable[[bytes, dict[str, str], tuple[float, float]], Response]


@dataclass
class DeliveryReport:
    """What one run did at one endpoint; ``undelivered`` maps each document number it leaves pending or
    failed to why."""

    endpoint: str
    delivered: list[str] = field(default_factory=list)
    undelivered: dict[str, str] = field(default_factory=dict)
    requests: int = 0

    def summary(self) -> str:
        text = (f"{len(self.delivered)} document(s) delivered to {self.endpoint} in {self.requests} request(s)"
                f"; {len(self.undelivered)} undelivered")
        if self.undelivered:
            text += ": " + "; ".join(f"{number} ({why})" for number, why in self.undelivered.items())
        return text

    def as_dict(self) -> dict[str, Any]:
        return {"endpoint": self.endpoint, "delivered": list(self.delivered),
                "undelivered": dict(self.undelivered), "requests": self.requests}


def headers_for(document: DocumentBody, secret: str, timestamp: int) -> dict[str, str]:
    return {
        "Content-Type": "application/json; charset=utf-8",
        "Idempotency-Key": document.document_id,
        HEADER: sign(secret, document.body, timestamp),
        "User-Agent": USER_AGENT,
    }


def deliver_pending(
    conn: Any,
    endpoint: str,
    secret: str,
    transport: Transport,
    policy: RetryPolicy | None = None,
    *,
    clock: Callable[[], float] = time.time,
    sleep: Callable[[float], None] = time.sleep,
) -> DeliveryReport:
    """Send every pending document of ``endpoint`` (one run at a time per endpoint: :class:`state.DeliveryBusy`)."""
    if not secret:
        raise DeliveryConfigError("no signing secret: set the billing_delivery connection's password")
    policy = policy or RetryPolicy()
    report = DeliveryReport(endpoint)
    with state.endpoint_lock(conn, endpoint):
        # (due time, order, id, number): a document is due no earlier than the second after its last
        # signed attempt, so no two of its requests ever carry the same signature (a receiver refuses that)
        due = [(float(last + 1 if last is not None else 0), seq, doc_id, number)
               for seq, (doc_id, number, last) in enumerate(state.pending(conn, endpoint))]
        heapq.heapify(due)
        bodies: dict[str, DocumentBody] = {}
        tries: dict[str, int] = {}  # this run's requests per document (the row counts every run's)
        while due:
            when, seq, doc_id, number = heapq.heappop(due)
            wait = when - clock()
            if wait > 0:
                sleep(wait)
            signed_at = max(int(clock()), int(when))
            delay = _attempt(conn, report, policy, bodies, tries, doc_id, number, secret, transport, signed_at)
            if delay is not None:
                heapq.heappush(due, (max(clock() + delay, signed_at + 1.0), seq, doc_id, number))
    log.info("%s", report.summary())
    return report


def _attempt(conn: Any, report: DeliveryReport, policy: RetryPolicy, bodies: dict[str, DocumentBody],
             tries: dict[str, int], doc_id: str, number: str, secret: str, transport: Transport,
             signed_at: int) -> float | None:
    """One request for one document; the seconds until its next attempt, or None when done for this run."""
    endpoint = report.endpoint
    try:
        document = bodies.get(doc_id) or load_document(conn, doc_id)
    except DocumentError as exc:
        log.error("%s: not sent: %s", number, exc)
        report.undelivered[number] = str(exc)
        return None
    bodies[doc_id] = document
    attempt = state.claim(conn, endpoint, doc_id, document.sha256, signed_at)
    if attempt is None:  # delivered or failed since it was listed: never sent twice
        return None
    report.requests += 1
    tries[doc_id] = tries.get(doc_id, 0) + 1
    try:
        response = transport(document.body, headers_for(document, secret, signed_at), policy.timeout)
        outcome = classify_response(response.status_code, response.headers, response.text)
    except Exception as exc:
        classified = classify_error(exc)
        if classified is None:  # not the network: a bug or a broken configuration, for every document
            state.record(conn, endpoint, doc_id, Outcome("retry", error=f"{type(exc).__name__}: {exc}"[:1024]))
            raise
        outcome = classified
    state.record(conn, endpoint, doc_id, outcome)
    return _next(report, policy, number, tries[doc_id], attempt, outcome)


def _next(report: DeliveryReport, policy: RetryPolicy, number: str, tried: int, attempt: int,
          outcome: Outcome) -> float | None:
    """Log the outcome; the delay before the next try (``tried``: this run's, ``attempt``: the row's count)."""
    if outcome.verdict == DELIVERED:
        log.info("%s: delivered (HTTP %s, attempt %d)", number, outcome.status_code, attempt)
        report.delivered.append(number)
        report.undelivered.pop(number, None)
        return None
    if outcome.verdict == FAILED:
        log.error("%s: refused, not retried: %s", number, outcome.describe())
        report.undelivered[number] = f"failed: {outcome.describe()}"
        return None
    delay = policy.delay(tried, outcome.retry_after)
    if delay is None:
        why = (f"Retry-After {outcome.retry_after:g} s is beyond {policy.max_retry_after_seconds:g} s"
               if outcome.retry_after is not None and outcome.retry_after > policy.max_retry_after_seconds
               else f"{tried} attempt(s) in this run")
        log.warning("%s: still pending after %s (last: %s); a later run sends it", number, why, outcome.describe())
        report.undelivered[number] = f"pending: {outcome.describe()}"
        return None
    log.warning("%s: %s (attempt %d); retrying in %.1f s", number, outcome.describe(), attempt, delay)
    return delay
