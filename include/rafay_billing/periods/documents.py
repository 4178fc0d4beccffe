"""A closed billing period's documents: per invoice a JSON, a CSV and a self-contained HTML invoice,
and a period summary (JSON and CSV).

:func:`write_period_documents` reads the period's issued invoices (``billing.invoices``, with
``period_start`` = the month) and their lines (``billing.invoice_lines``) and writes, into
``out_dir`` (the close writes them under the landing root at ``reports/period=YYYY-MM/``):

* ``<invoice_number>.json``: the invoice and its lines, machine-readable;
* ``<invoice_number>.csv``: its lines, one row each, for people and spreadsheets (every cell
  neutralized with :func:`rafay_billing.reports.neutralize`);
* ``<invoice_number>.html``: the human-readable invoice. Self-contained: inline CSS, no scripts, no
  external resource of any kind (and a Content-Security-Policy that forbids both, should a value
  ever slip through). Every value is HTML-escaped by the template engine (Jinja2, autoescape on):
  an organization may be called ``<script>…`` or ``=HYPERLINK(…)`` and is shown as written.
* ``summary.json`` and ``summary.csv``: the period's invoices (number, org, currency, subtotal,
  line count) and, when the caller passes them, the unbilled records that the close allowed.

Money is written exactly as stored: amounts are NUMERIC in the currency's minor unit already
(JPY 0 decimals, BHD 3), so they are printed from their ``Decimal`` as they are, never re-rounded
and never through a float. JSON carries money and quantities as strings for that reason.

Corrections (lines of ``charge_class = 'correction'``) are shown apart from the period's own charges,
with the days they correct when the period's correction line items tell them. Tax is out of scope:
the ERP adds it, and every document says so.

``out_dir`` is a ``pathlib.Path`` or an Airflow ``ObjectStoragePath``-like object: only ``/``,
``mkdir(parents=True, exist_ok=True)`` and ``open("w", ...)`` are used on it. No Airflow import.
"""

from __future__ import annotations

import functools
import io
import json
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from rafay_billing.db import sql, transaction
from rafay_billing.errors import DocumentError
from rafay_billing.period import Period
from rafay_billing.periods.invoices import Invoice, InvoiceLine, zero_of
from rafay_billing.reports import write_csv

INVOICE_TEMPLATE = "invoice.html"
TAX_NOTE = "Tax is out of scope of this invoice: amounts exclude tax, which the ERP adds."

LINE_COLUMNS: tuple[str, ...] = (
    "Invoice number",
    "Period",
    "Org ID",
    "Organization",
    "Currency",
    "Line",
    "Charge class",
    "Corrects days",
    "Profile type",
    "Profile",
    "Price ID",
    "Pricing unit",
    "Unit price",
    "Quantity",
    "Amount",
    "Items",
    "Contract",  # issue 22: the contract of a contract charge, or the reservation covering usage (amount 0)
)
SUMMARY_COLUMNS: tuple[str, ...] = (
    "Invoice number",
    "Org ID",
    "Organization",
    "Currency",
    "Subtotal",
    "Line count",
)
UNBILLED_FIELDS: tuple[str, ...] = (
    "org_id",
    "organization",
    "usage_date",
    "profile_type",
    "profile",
    "instance",
    "instance_id",
    "reason",
    "detail",
)
UNBILLED_COLUMNS: tuple[str, ...] = (
    "Unbilled record: org ID",
    "Organization",
    "Usage date",
    "Profile type",
    "Profile",
    "Instance",
    "Instance ID",
    "Reason",
    "Detail",
)


def write_period_documents(
    conn: Any,
    period: Period,
    out_dir: Any,
    *,
    unbilled: Iterable[Mapping[str, Any]] | None = None,
) -> list[str]:
    """Write the documents of a closed period's invoices and its summary into ``out_dir``.

    Returns the written files as strings (``str()`` of each path), per invoice in issue order its
    ``.json``, ``.csv`` and ``.html``, then ``summary.json`` and ``summary.csv``. ``unbilled`` is the
    list of unbilled records the close allowed (``{"allow_exceptions": true}``), as mappings with the
    keys of :data:`UNBILLED_FIELDS` (rows of ``billing.rating_exceptions`` fit); they are listed on the
    summary. Raises :class:`DocumentError` when the period is not closed, or when an invoice's stored
    subtotal is not the exact sum of its lines (nothing is written then).
    """
    closed, invoices = _read_period(conn, period)
    unbilled_rows = [_unbilled_row(record) for record in unbilled] if unbilled is not None else []

    out_dir.mkdir(parents=True, exist_ok=True)
    written: list[str] = []
    stems: dict[str, str] = {}
    for invoice in invoices:
        stem = invoice.file_stem
        if stem in stems:  # two numbers that clean to one name: a numbering bug, never overwrite
            raise DocumentError(
                f"invoices {stems[stem]!r} and {invoice.invoice_number!r} would share the file name {stem!r}"
            )
        stems[stem] = invoice.invoice_number
        written.append(_write_text(out_dir, f"{stem}.json", _json_text(invoice_document(invoice, period))))
        written.append(_write_text(out_dir, f"{stem}.csv", invoice_csv(invoice, period)))
        written.append(_write_text(out_dir, f"{stem}.html", render_invoice_html(invoice, period)))
    summary = summary_document(period, closed, invoices, unbilled_rows)
    written.append(_write_text(out_dir, "summary.json", _json_text(summary)))
    written.append(_write_text(out_dir, "summary.csv", summary_csv(invoices, unbilled_rows)))
    return written


# --- reading ---------------------------------------------------------------------------------------


def _read_period(conn: Any, period: Period) -> tuple[dict[str, Any], list[Invoice]]:
    from psycopg.rows import dict_row  # keep module import light

    params = {"period_start": period.start}
    with transaction(conn), conn.cursor(row_factory=dict_row) as cur:
        cur.execute(sql("documents/period.sql"), params)
        closed = cur.fetchone()
        if closed is None:
            raise DocumentError(
                f"billing period {period.label} is not closed: invoices and their documents exist only "
                "for closed periods (run the rafay_billing_close DAG first)"
            )
        cur.execute(sql("documents/invoices.sql"), params)
        invoices = [Invoice(**row) for row in cur.fetchall()]
        cur.execute(sql("documents/invoice_lines.sql"), params)
        lines = cur.fetchall()
    by_id = {invoice.invoice_id: invoice for invoice in invoices}
    for row in lines:
        invoice_id = row.pop("invoice_id")
        by_id[invoice_id].lines.append(InvoiceLine(**row))
    for invoice in invoices:
        total = invoice.total(invoice.lines)
        if total != invoice.subtotal:
            raise DocumentError(
                f"invoice {invoice.invoice_number}: stored subtotal {_money(invoice.subtotal)} is not the sum "
                f"of its {len(invoice.lines)} lines ({_money(total)}); refusing to write documents that "
                "disagree with themselves"
            )
    return closed, invoices


# --- the documents ---------------------------------------------------------------------------------


def invoice_document(invoice: Invoice, period: Period) -> dict[str, Any]:
    """The invoice (``document`` ``invoice``) or credit note (``credit_note``, naming the invoices it
    corrects) as JSON-ready data: money and quantities as exact decimal strings."""
    document = {
        "document": invoice.document_type,
        "invoice_id": invoice.invoice_id,
        "invoice_number": invoice.invoice_number,
        "invoice_seq": invoice.invoice_seq,
        "issuer": invoice.issuer,
        "status": invoice.status,
        "issue_date": _utc(invoice.issued_at).date().isoformat(),
        "issued_at": _timestamp(invoice.issued_at),
        "issued_by": invoice.issued_by,
        "customer": {"org_id": invoice.org_id, "organization": invoice.organization},
        "period": _period_data(period),
        "currency": invoice.currency,
        "minor_unit": invoice.minor_unit,
        "line_count": invoice.line_count,
        "charges_total": _money(invoice.total(invoice.charges)),
        "corrections_total": _money(invoice.total(invoice.corrections)),
        "subtotal": _money(invoice.subtotal),
        "tax": TAX_NOTE,
        "lines": [
            {
                "line_no": line.line_no,
                "charge_class": line.charge_class,
                "corrects_days": [d.isoformat() for d in line.corrects_days],
                "profile_type": line.profile_type,
                "profile": line.profile,
                "price_id": line.price_id,
                "pricing_unit": line.pricing_unit,
                "unit_price": _money(line.unit_price),
                "quantity": _money(line.quantity),
                "amount": _money(line.amount),
                "item_count": line.item_count,
                # issue 22: a contract's month-level charge names its category and contract (its CSV line
                # shows them as profile type "contract", profile = what it is, price id = contract id);
                # usage a reservation covers (rule 2) is category "usage" with the reservation's id
                **({"charge_category": line.charge_category, "contract_id": line.contract_id}
                   if line.contract_id is not None else {}),
                # rule 3: an instance's monthly recurring charge, apart from its month-priced days (amount 0)
                **({"charge_level": "month"} if line.is_mrc else {}),
            }
            for line in invoice.lines
        ],
    }
    if invoice.is_credit_note:  # the invoices it corrects; an invoice's document is as it always was
        document["corrects_invoices"] = list(invoice.corrects)
    return document


def invoice_csv(invoice: Invoice, period: Period) -> str:
    """The invoice's lines as a human-facing CSV (excel dialect, every cell neutralized)."""
    rows = [
        (
            invoice.invoice_number,
            period.label,
            invoice.org_id,
            invoice.organization,
            invoice.currency,
            line.line_no,
            line.charge_class,
            ";".join(d.isoformat() for d in line.corrects_days),
            line.profile_type,
            line.profile,
            line.price_id,
            line.pricing_unit,
            line.unit_price,
            line.quantity,
            line.amount,
            line.item_count,
            line.contract_id or "",
        )
        for line in invoice.lines
    ]
    buffer = io.StringIO(newline="")
    write_csv(buffer, LINE_COLUMNS, rows)
    return buffer.getvalue()


def summary_document(
    period: Period, closed: Mapping[str, Any], invoices: Sequence[Invoice], unbilled: Sequence[dict[str, Any]]
) -> dict[str, Any]:
    totals: dict[str, tuple[int, Decimal]] = {}
    for invoice in invoices:
        count, total = totals.get(invoice.currency, (0, zero_of(invoice.minor_unit)))
        totals[invoice.currency] = (count + 1, total + invoice.subtotal)
    return {
        "document": "period_summary",
        "period": _period_data(period),
        "closed_at": _timestamp(closed["closed_at"]),
        "closed_by": closed["closed_by"],
        "allow_exceptions": closed["allow_exceptions"],
        "tax": TAX_NOTE,
        "invoice_count": len(invoices),
        "totals": [
            {"currency": currency, "invoice_count": count, "subtotal": _money(total)}
            for currency, (count, total) in sorted(totals.items())
        ],
        "invoices": [
            {
                "invoice_number": invoice.invoice_number,
                "document_type": invoice.document_type,
                "org_id": invoice.org_id,
                "organization": invoice.organization,
                "currency": invoice.currency,
                "subtotal": _money(invoice.subtotal),
                "line_count": invoice.line_count,
                "files": {kind: f"{invoice.file_stem}.{kind}" for kind in ("json", "csv", "html")},
            }
            for invoice in invoices
        ],
        "unbilled": list(unbilled),
    }


def summary_csv(invoices: Sequence[Invoice], unbilled: Sequence[dict[str, Any]]) -> str:
    """The period's invoices; then, when there are any, a blank row and the unbilled records allowed."""
    buffer = io.StringIO(newline="")
    write_csv(
        buffer,
        SUMMARY_COLUMNS,
        (
            (i.invoice_number, i.org_id, i.organization, i.currency, i.subtotal, i.line_count)
            for i in invoices
        ),
    )
    if unbilled:
        buffer.write("\r\n")
        write_csv(buffer, UNBILLED_COLUMNS, ([r[f] for f in UNBILLED_FIELDS] for r in unbilled))
    return buffer.getvalue()


def render_invoice_html(invoice: Invoice, period: Period) -> str:
    """The self-contained HTML invoice (Jinja2, autoescape on: every value is escaped)."""
    return _templates().get_template(INVOICE_TEMPLATE).render(
        invoice=invoice,
        period=period,
        charges=invoice.charges,
        corrections=invoice.corrections,
        charges_total=invoice.total(invoice.charges),
        corrections_total=invoice.total(invoice.corrections),
        issue_date=_utc(invoice.issued_at).date().isoformat(),
        issued_at=_timestamp(invoice.issued_at),
        tax_note=TAX_NOTE,
    )


@functools.cache
def _templates() -> Any:
    import jinja2  # only the HTML needs it

    env = jinja2.Environment(
        loader=jinja2.PackageLoader("rafay_billing", "templates"),
        autoescape=True,  # every template, whatever its name: values are hostile
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["money"] = _money
    env.filters["days"] = lambda days: ", ".join(d.isoformat() for d in days)
    return env


# --- helpers ---------------------------------------------------------------------------------------


def _money(value: Decimal) -> str:
    """A stored NUMERIC as written: no rounding, no exponent, no float."""
    return format(value, "f")




def _utc(moment: datetime) -> datetime:
    return moment.astimezone(UTC)


def _timestamp(moment: datetime) -> str:
    return _utc(moment).isoformat().replace("+00:00", "Z")


def _period_data(period: Period) -> dict[str, str]:
    return {
        "label": period.label,
        "start": period.start.isoformat(),
        "end": period.end.isoformat(),
        "last_day": period.last_day.isoformat(),
    }


def _unbilled_row(record: Mapping[str, Any]) -> dict[str, Any]:
    row: dict[str, Any] = {}
    for name in UNBILLED_FIELDS:
        value = record.get(name)
        if isinstance(value, datetime):
            value = _timestamp(value)
        elif isinstance(value, date):
            value = value.isoformat()
        elif isinstance(value, Decimal):
            value = _money(value)
        elif value is not None:
            value = str(value)
        row[name] = value
    return row


def _json_text(document: Mapping[str, Any]) -> str:
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


def _write_text(out_dir: Any, name: str, text: str) -> str:
    target = out_dir / name
    with target.open("w", encoding="utf-8", newline="") as handle:
        handle.write(text)
    return str(target)


__all__ = [
    "LINE_COLUMNS",
    "SUMMARY_COLUMNS",
    "TAX_NOTE",
    "UNBILLED_COLUMNS",
    "UNBILLED_FIELDS",
    "DocumentError",
    "Invoice",
    "InvoiceLine",
    "Period",
    "invoice_csv",
    "invoice_document",
    "render_invoice_html",
    "summary_csv",
    "summary_document",
    "write_period_documents",
]
