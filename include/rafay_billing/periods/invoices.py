"""Invoices: the one model of an issued document (invoice or credit note) and its lines, reading them,
and issuing a period's.

Numbers are ``<issuer>-NNNNNN`` for invoices and ``<issuer>-CN-NNNNNN`` for credit notes (a negative
net: issued money given back is a document of its own kind, never a negative invoice), each gap-free
per (issuer, document type): :func:`issue` runs inside the close's transaction, so a failed close
consumes no number, and the insert of a document takes its number (migration 011's trigger).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from rafay_billing.db import sql, transaction
from rafay_billing.errors import PeriodError
from rafay_billing.paths import safe_component
from rafay_billing.period import Period, period_params

_ISSUER_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,31}$")


def check_issuer(issuer: str) -> str:
    """The issuer name is part of every invoice number: letters, digits, ``._-``, at most 32 characters,
    not ending in ``-CN`` (``<issuer>-CN-NNNNNN`` is a credit note's number)."""
    if not isinstance(issuer, str) or not _ISSUER_RE.match(issuer) or issuer.upper().endswith("-CN"):
        raise PeriodError(
            f"invoice issuer {issuer!r} is not usable in invoice numbers: use 1 to 32 letters, digits, '.', '_' "
            "or '-', starting with a letter or digit and not ending in -CN (e.g. ACME)"
        )
    return issuer


DOCUMENT_TYPES: tuple[str, ...] = ("invoice", "credit_note")
"""``billing.invoices.document_type``: a net of zero or more is an invoice, a negative one a credit note."""


@dataclass(frozen=True)
class InvoiceLine:
    """One line of an issued document: its period's items of one profile, price, charge class, charge
    category and contract, summed. ``corrects_days``: the usage days a correction line corrects (filled
    where documents are written); ``invoice_id`` when the line was read on its own."""

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
    corrects_days: tuple[date, ...] = ()
    charge_category: str = "usage"
    contract_id: str | None = None
    invoice_id: str = ""
    charge_level: str = "day"
    """``month`` for a month-level line: a contract charge, or an instance's monthly recurring charge (MRC)."""

    @property
    def is_mrc(self) -> bool:
        """A monthly recurring charge (issue 22, rule 3): month-level usage, no contract."""
        return self.charge_level == "month" and self.contract_id is None

    def __post_init__(self) -> None:
        object.__setattr__(self, "corrects_days", tuple(self.corrects_days or ()))

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Invoice:
    """An issued document (``billing.invoices``): one (org, currency) of one period; a ``credit_note``
    when its subtotal is negative, naming in ``corrects`` the invoices whose days it corrects. The one
    model of an issued document: the close returns it, documents, delivery and the tenant API render
    it (with ``minor_unit`` and ``lines`` when they read them)."""

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
    document_type: str = "invoice"
    corrects: tuple[str, ...] = ()
    minor_unit: int | None = field(default=None, compare=False)
    lines: list[InvoiceLine] = field(default_factory=list, compare=False, hash=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "corrects", tuple(self.corrects or ()))

    @property
    def is_credit_note(self) -> bool:
        """A negative net: issued money given back, a document of its own kind (issue 21, rule 11)."""
        return self.document_type == "credit_note"

    @property
    def title(self) -> str:
        """What the document says it is: "Invoice" or "Credit note"."""
        return "Credit note" if self.is_credit_note else "Invoice"

    @property
    def file_stem(self) -> str:
        """The documents' file name stem: the invoice number, kept as it is when it is path-safe."""
        return safe_component(self.invoice_number)

    @property
    def charges(self) -> list[InvoiceLine]:
        return [line for line in self.lines if line.charge_class == "regular"]

    @property
    def corrections(self) -> list[InvoiceLine]:
        return [line for line in self.lines if line.charge_class == "correction"]

    def total(self, lines: Iterable[InvoiceLine]) -> Decimal:
        """Exact sum of the lines' amounts (zero written with the currency's decimals)."""
        return sum((line.amount for line in lines), zero_of(self.minor_unit))

    def as_dict(self) -> dict[str, Any]:
        """The document's own fields (what the close's results and audit entries carry), without its lines."""
        data = asdict(self)
        data.pop("lines")
        data.pop("minor_unit")
        return data


def zero_of(minor_unit: int | None) -> Decimal:
    """Zero written with the currency's decimals (``0.00`` for USD), plain zero when they are unknown."""
    return Decimal(0) if minor_unit is None else Decimal((0, (0,), -minor_unit))


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
        names = [c.name for c in cur.description]
        return [InvoiceLine(**dict(zip(names, row, strict=True))) for row in cur.fetchall()]


def issue(cur: Any, period: Period, actor: str, issuer: str) -> list[Invoice]:
    """Number and write the period's documents (invoices and credit notes), their lines and what each
    credit note corrects; each insert advances its (issuer, document type) counter by one."""
    params = {**period_params(period), "issuer": issuer, "actor": actor}
    cur.execute(sql("periods/issue_invoices.sql"), params)
    cur.execute(sql("periods/insert_invoice_lines.sql"), params)
    cur.execute(sql("periods/credit_note_references.sql"), params)
    cur.execute(sql("periods/audit_issued.sql"), params)
    return fetch_invoices_in(cur, period)
