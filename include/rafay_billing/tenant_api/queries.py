"""What the tenant API reads, always for one org (the token's): every statement in
``sql/tenant_api/*.sql`` takes the org as a parameter, and so does every function here. Nothing a caller
sends becomes SQL text: values travel as query parameters.

Another org's document, period or line item is "not found" by the same statement that finds nothing
for an id that does not exist, so both cost the same work and answer alike.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from rafay_billing.db import sql, transaction
from rafay_billing.period import Period
from rafay_billing.periods.invoices import Invoice, InvoiceLine
from rafay_billing.tenant_api.cursor import KEY_FIELDS, decode_cursor, encode_cursor

MAX_DOCUMENT_KEY = 200


@dataclass(frozen=True)
class Document:
    invoice: Invoice
    document_type: str


def _text(value: Any) -> Any:
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, datetime):
        return value.isoformat().replace("+00:00", "Z")
    if isinstance(value, date):
        return value.isoformat()
    return value


def list_documents(conn: Any, org_id: str, *, period: Period | None = None,
                   document_type: str | None = None) -> list[dict[str, Any]]:
    from psycopg.rows import dict_row

    params = {"org_id": org_id, "period_start": period.start if period else None, "document_type": document_type}
    with transaction(conn), conn.cursor(row_factory=dict_row) as cur:
        cur.execute(sql("tenant_api/documents.sql"), params)
        rows = cur.fetchall()
    return [
        {
            "document_id": r["invoice_id"],
            "document_type": r["document_type"],
            "number": r["invoice_number"],
            "issuer": r["issuer"],
            "status": r["status"],
            "organization": r["organization"],
            "period": f"{r['period_start']:%Y-%m}",
            "period_start": _text(r["period_start"]),
            "period_end": _text(r["period_end"]),
            "currency": r["currency"],
            "subtotal": _text(r["subtotal"]),
            "line_count": r["line_count"],
            "issued_at": _text(r["issued_at"]),
        }
        for r in rows
    ]


def find_document(conn: Any, org_id: str, key: str) -> Document | None:
    """The org's issued document whose id or number is ``key``, with its lines; None when the org has none."""
    from psycopg.rows import dict_row

    with transaction(conn), conn.cursor(row_factory=dict_row) as cur:
        cur.execute(sql("tenant_api/document.sql"), {"org_id": org_id, "document": key})
        row = cur.fetchone()
        if row is None:
            return None
        cur.execute(sql("tenant_api/document_lines.sql"), {"org_id": org_id, "invoice_id": row["invoice_id"]})
        lines = [InvoiceLine(**line) for line in cur.fetchall()]
    document_type = row.pop("document_type")
    return Document(Invoice(**row, lines=lines), document_type)


def period_issued(conn: Any, org_id: str, period: Period) -> bool:
    with transaction(conn), conn.cursor() as cur:
        cur.execute(sql("tenant_api/period_issued.sql"), {"org_id": org_id, "period_start": period.start})
        row = cur.fetchone()
    return bool(row and row[0])


def line_items_page(conn: Any, org_id: str, period: Period, cursor: str | None, limit: int) -> dict[str, Any]:
    """One page of the org's line items of an issued period; ``next_cursor`` is None on the last page.
    Raises :class:`~rafay_billing.tenant_api.cursor.CursorError` for a cursor this service did not write."""
    from psycopg.rows import dict_row

    keys: dict[str, Any] = {f"k_{name}": None for name in KEY_FIELDS}
    if cursor is not None:
        keys = decode_cursor(cursor, period.label)
    params = {"org_id": org_id, "period_start": period.start, "after": cursor is not None, "limit": limit + 1, **keys}
    with transaction(conn), conn.cursor(row_factory=dict_row) as cur:
        cur.execute(sql("tenant_api/line_items.sql"), params)
        rows = cur.fetchall()
    more = len(rows) > limit
    rows = rows[:limit]
    return {
        "period": period.label,
        "items": [{name: _text(value) for name, value in row.items()} for row in rows],
        "next_cursor": encode_cursor(period.label, rows[-1]) if more else None,
    }


def daily_usage(conn: Any, org_id: str, first: date, last: date) -> list[dict[str, Any]]:
    from psycopg.rows import dict_row

    with transaction(conn), conn.cursor(row_factory=dict_row) as cur:
        cur.execute(sql("tenant_api/daily.sql"), {"org_id": org_id, "first_day": first, "last_day": last})
        rows = cur.fetchall()
    return [{name: _text(value) for name, value in row.items()} for row in rows]
