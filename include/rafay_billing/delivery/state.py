"""``billing.deliveries``: per (document, endpoint) its status (pending, delivered, failed), attempts, the
last answer and timestamps. The schema keeps a delivered row final (migration 014's trigger); these
functions only queue, claim, record and list."""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from rafay_billing.db import sql, transaction
from rafay_billing.delivery.policy import DeliveryConfigError, Outcome
from rafay_billing.period import Period

STATUSES = ("pending", "delivered", "failed")


class DeliveryBusy(RuntimeError):
    """Another delivery run holds this endpoint: it sends the pending documents, this one sends nothing."""


def endpoint_id(url: str) -> str:
    """The endpoint as recorded: the receiver's URL without query or fragment. A URL carrying a user or
    password is refused (requests would send it as Basic auth, and it would be stored here)."""
    parts = urlsplit((url or "").strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise DeliveryConfigError(f"the delivery URL must be http:// or https:// with a host, got {url!r}")
    if parts.username is not None or parts.password is not None:
        raise DeliveryConfigError("the delivery URL must not carry a user or password: the signing secret is "
                                  "the connection's password, a receiver credential goes in the Authorization extra")
    return urlunsplit((parts.scheme, parts.netloc, parts.path or "/", "", ""))


@dataclass(frozen=True)
class Delivery:
    invoice_id: str
    invoice_number: str
    org_id: str
    currency: str
    subtotal: Decimal
    period_start: date
    endpoint: str
    status: str
    attempts: int
    last_status_code: int | None
    last_response: str | None
    last_error: str | None
    enqueued_at: datetime
    last_attempt_at: datetime | None
    delivered_at: datetime | None
    failed_at: datetime | None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def enqueue_period(conn: Any, endpoint: str, period: Period) -> list[str]:
    """Queue the period's issued documents for ``endpoint``; returns the ids queued now (documents
    queued before keep their row, delivered ones included: they are never sent again)."""
    with transaction(conn), conn.cursor() as cur:
        cur.execute(sql("delivery/enqueue_period.sql"), {"endpoint": endpoint, "period_start": period.start})
        return [row[0] for row in cur.fetchall()]


@contextmanager
def endpoint_lock(conn: Any, endpoint: str) -> Any:
    """Hold the endpoint for one run (a session lock on ``conn``); :class:`DeliveryBusy` when taken."""
    with transaction(conn), conn.cursor() as cur:
        cur.execute(sql("delivery/lock_endpoint.sql"), {"endpoint": endpoint})
        if not cur.fetchone()[0]:
            raise DeliveryBusy(f"another delivery run is sending to {endpoint}; it delivers the pending documents")
    try:
        yield
    finally:
        with transaction(conn), conn.cursor() as cur:
            cur.execute(sql("delivery/unlock_endpoint.sql"), {"endpoint": endpoint})


def pending(conn: Any, endpoint: str) -> list[tuple[str, str, int | None]]:
    """(document id, number, unix second of its last signed attempt) of the documents waiting for
    ``endpoint``, in issue order."""
    with transaction(conn), conn.cursor() as cur:
        cur.execute(sql("delivery/pending.sql"), {"endpoint": endpoint})
        return [(row[0], row[1], row[2]) for row in cur.fetchall()]


def claim(conn: Any, endpoint: str, invoice_id: str, payload_sha256: str, signed_at: int) -> int | None:
    """Count an attempt signed at ``signed_at`` (unix seconds) before sending it; the attempt number, or
    None when the document is not pending."""
    with transaction(conn), conn.cursor() as cur:
        cur.execute(sql("delivery/claim.sql"), {"endpoint": endpoint, "invoice_id": invoice_id,
                                                "payload_sha256": payload_sha256, "signed_at": signed_at})
        row = cur.fetchone()
    return None if row is None else int(row[0])


def record(conn: Any, endpoint: str, invoice_id: str, outcome: Outcome) -> None:
    """Store an attempt's answer (the row stays pending when it is retried)."""
    params = {"endpoint": endpoint, "invoice_id": invoice_id, "status": outcome.status,
              "status_code": outcome.status_code, "response": outcome.response, "error": outcome.error}
    with transaction(conn), conn.cursor() as cur:
        cur.execute(sql("delivery/record_outcome.sql"), params)


def period_statuses(conn: Any, endpoint: str, periods: Sequence[Period]) -> list[dict[str, Any]]:
    """Where the documents of ``periods`` stand at ``endpoint``, in issue order."""
    from psycopg.rows import dict_row

    with transaction(conn), conn.cursor(row_factory=dict_row) as cur:
        cur.execute(sql("delivery/period_statuses.sql"),
                    {"endpoint": endpoint, "period_starts": [p.start for p in periods]})
        return list(cur.fetchall())


def list_deliveries(conn: Any, *, status: str | None = None, endpoint: str | None = None,
                    period: Period | None = None) -> list[Delivery]:
    """Every delivery, filtered by status, endpoint and period of the document when given."""
    from psycopg.rows import class_row

    params = {"status": status, "endpoint": endpoint, "period_start": period.start if period else None}
    with transaction(conn), conn.cursor(row_factory=class_row(Delivery)) as cur:
        cur.execute(sql("delivery/list.sql"), params)
        return list(cur.fetchall())


def retry_failed(conn: Any, documents: Sequence[str] | None = None,
                 endpoint: str | None = None) -> list[tuple[str, str, str]]:
    """Set failed deliveries back to pending (by document id or number; None: every failed one);
    returns (id, number, endpoint) of each. Delivered and pending ones are left as they are."""
    params = {"documents": list(documents) if documents else None, "endpoint": endpoint}
    with transaction(conn), conn.cursor() as cur:
        cur.execute(sql("delivery/retry.sql"), params)
        return [(row[0], row[1], row[2]) for row in cur.fetchall()]
