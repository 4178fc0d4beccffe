"""Invoices: the one model of an issued invoice and its lines, reading them, and issuing a period's.

Numbers are ``<issuer>-NNNNNN``, gap-free per issuer: :func:`issue` runs inside the close's
transaction, so a failed close consumes no number.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from rafay_billing.db import sql, transaction
from rafay_billing.errors import PeriodError
from rafay_billing.periods.period import Period, period_params

_ISSUER_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,31}$")


def check_issuer(issuer: str) -> str:
    """The issuer name is part of every invoice number: letters, digits, ``._-``, at most 32 characters."""
    if not isinstance(issuer, str) or not _ISSUER_RE.match(issuer):
        raise PeriodError(
            f"invoice issuer {issuer!r} is not usable in invoice numbers: use 1 to 32 letters, digits, '.', '_' "
            "or '-', starting with a letter or digit (e.g. ACME)"
        )
    return issuer




@dataclass(frozen=True)
class Invoice:
    """An issued invoice (``billing.invoices``): one (org, currency) of one period."""

    invoice_id: str
    invoice_number: str
    issuer: str
    invoice_seq: int
    org_id: str
    organization: str
    currency: str
    period_start: date
    period_end: date
    status: str
    subtotal: Decimal
    line_count: int
    issued_at: datetime
    issued_by: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class InvoiceLine:
    """One line of an invoice: its period's items of one profile, price and charge class, summed."""

    invoice_id: str
    line_no: int
    profile_type: str
    profile: str
    price_id: str
    pricing_unit: str
    unit_price: Decimal
    charge_class: str
    quantity: Decimal
    amount: Decimal
    item_count: int

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def totals_by_currency(invoices: Iterable[Invoice]) -> dict[str, Decimal]:
    totals: dict[str, Decimal] = {}
    for inv in invoices:
        totals[inv.currency] = totals.get(inv.currency, Decimal(0)) + inv.subtotal
    return dict(sorted(totals.items()))


def fetch_invoices(conn: Any, period: Period) -> list[Invoice]:
    """The period's invoices, in number order (empty while it is open)."""
    with transaction(conn), conn.cursor() as cur:
        return fetch_invoices_in(cur, period)


def fetch_invoices_in(cur: Any, period: Period) -> list[Invoice]:
    cur.execute(sql("periods/fetch_invoices.sql"), period_params(period))
    return [Invoice(*row) for row in cur.fetchall()]


def fetch_invoice_lines(conn: Any, invoice_id: str) -> list[InvoiceLine]:
    """An invoice's lines, in line order (regular lines first, then corrections)."""
    with transaction(conn), conn.cursor() as cur:
        cur.execute(sql("periods/fetch_invoice_lines.sql"), {"invoice_id": invoice_id})
        return [InvoiceLine(*row) for row in cur.fetchall()]


def issue(cur: Any, period: Period, actor: str, issuer: str) -> list[Invoice]:
    """Number and write the period's invoices and their lines; advance the issuer's counter by as many."""
    cur.execute(sql("periods/ensure_counter.sql"), {"issuer": issuer})
    cur.execute(sql("periods/lock_counter.sql"), {"issuer": issuer})
    last_number = cur.fetchone()[0]
    params = {**period_params(period), "issuer": issuer, "actor": actor, "last_number": last_number}
    cur.execute(sql("periods/issue_invoices.sql"), params)
    issued = len(cur.fetchall())
    cur.execute(sql("periods/insert_invoice_lines.sql"), params)
    cur.execute(sql("periods/advance_counter.sql"), {"issuer": issuer, "issued": issued})
    cur.execute(sql("periods/audit_issued.sql"), params)
    return fetch_invoices_in(cur, period)
