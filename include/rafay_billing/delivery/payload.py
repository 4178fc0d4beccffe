"""A document's delivery body: the issued invoice with its lines and totals, as UTF-8 JSON.

The document part is :func:`rafay_billing.periods.documents.invoice_document` (the same JSON the close
writes under the landing root): money and quantities are decimal strings exactly as stored, never
floats. The envelope adds the schema, the document id (also the ``Idempotency-Key``) and its type.
Keys are sorted and the separators fixed, so a document's body is the same bytes on every attempt.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from rafay_billing.db import sql, transaction
from rafay_billing.errors import DocumentError
from rafay_billing.period import Period
from rafay_billing.periods.documents import invoice_document
from rafay_billing.periods.invoices import Invoice, InvoiceLine

SCHEMA = "rafay-billing.document-delivery/v1"


@dataclass(frozen=True)
class DocumentBody:
    document_id: str
    number: str
    document_type: str
    body: bytes

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.body).hexdigest()


def encode(payload: dict[str, Any]) -> bytes:
    """Canonical JSON bytes: sorted keys, no spaces, UTF-8 (non-ASCII names as they are)."""
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def document_payload(invoice: Invoice, document_type: str) -> dict[str, Any]:
    return {
        "schema": SCHEMA,
        "document_id": invoice.invoice_id,
        "document_type": document_type,
        "document": invoice_document(invoice, Period(invoice.period_start)),
    }


def load_document(conn: Any, invoice_id: str) -> DocumentBody:
    """The body of one issued document; :class:`DocumentError` when it does not exist or its stored
    subtotal is not the sum of its lines (such a document is not sent)."""
    from psycopg.rows import dict_row  # keep module import light

    with transaction(conn), conn.cursor(row_factory=dict_row) as cur:
        cur.execute(sql("delivery/document.sql"), {"invoice_id": invoice_id})
        row = cur.fetchone()
        if row is None:
            raise DocumentError(f"document {invoice_id!r} is not an issued invoice")
        cur.execute(sql("delivery/document_lines.sql"), {"invoice_id": invoice_id})
        lines = [InvoiceLine(**line) for line in cur.fetchall()]
    document_type = row.pop("document_type")
    invoice = Invoice(**row, lines=lines)
    total = invoice.total(lines)
    if total != invoice.subtotal:
        raise DocumentError(
            f"document {invoice.invoice_number}: stored subtotal {invoice.subtotal} is not the sum of its "
            f"{len(lines)} lines ({total}); it is not delivered"
        )
    return DocumentBody(invoice.invoice_id, invoice.invoice_number, document_type,
                        encode(document_payload(invoice, document_type)))
