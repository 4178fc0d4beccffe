"""The open month's invoices as they would be issued today, month-level contract charges included
(issue 22, rule 6: ``rafay-billing preview``). Read only: one READ ONLY transaction, nothing written.

Why: a customer with a reservation or a commitment is charged at close for the whole month; finance
and the customer want to see that amount before it is issued. The lines are grouped as the close
groups them, and the contract charges are computed by the same code the close runs
(:func:`~rafay_billing.contracts.ledger_items.compute_month_charges`), from the ledger as it stands:
a true-up falls as usage grows through the month.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from fractions import Fraction
from typing import Any

from rafay_billing.contracts.charges import MonthCharge
from rafay_billing.contracts.ledger_items import compute_month_charges, current_contracts, eligible_spend
from rafay_billing.contracts.mrc import MrcItem, compute_mrc
from rafay_billing.contracts.source import Contract
from rafay_billing.db import sql, transaction
from rafay_billing.errors import PeriodError
from rafay_billing.period import Period


@dataclass(frozen=True)
class PreviewLine:
    """One line of a previewed document (as ``billing.invoice_lines`` would hold it)."""

    profile_type: str
    profile: str
    price_id: str
    pricing_unit: str
    unit_price: Decimal
    charge_class: str
    charge_category: str
    contract_id: str | None
    quantity: Decimal
    amount: Decimal
    item_count: int
    charge_level: str = "day"

    @property
    def is_mrc(self) -> bool:
        """A monthly recurring charge (issue 22, rule 3): month-level usage, no contract."""
        return self.charge_level == "month" and self.contract_id is None


@dataclass
class PreviewInvoice:
    """What the (org, currency) document of the period would be if the month closed now."""

    org_id: str
    organization: str
    currency: str
    lines: list[PreviewLine] = field(default_factory=list)

    @property
    def subtotal(self) -> Decimal:
        return sum((line.amount for line in self.lines), Decimal(0))

    @property
    def document_type(self) -> str:
        return "credit_note" if self.subtotal < 0 else "invoice"


def preview_period(conn: Any, period: Period, billing_start: date | None = None) -> list[PreviewInvoice]:
    """The period's documents as they would be issued today, by (org, currency); refuses a closed
    period (its documents are issued: read them instead)."""
    from rafay_billing.periods.close import closed_period_in

    with transaction(conn), conn.cursor() as cur:
        cur.execute(sql("periods/read_only.sql"))
        closed = closed_period_in(cur, period)
        if closed is not None:
            raise PeriodError(f"period {period.label} is closed (by {closed.closed_by}): its invoices are issued, "
                              "read them (rafay-billing focus-export, or the period's documents) instead of a preview")
        cur.execute(sql("periods/preview_lines.sql"), {"period_start": period.start})
        rows = cur.fetchall()
        mrc = compute_mrc(cur, period, billing_start)
        # the open month holds no MRC items yet: a partial-term commitment counts MRC from its day items,
        # a whole-month one from the month's MRC items, which only the close writes: counted here
        charges = month_charges_with_mrc(cur, period, billing_start, mrc)
    docs: dict[tuple[str, str], PreviewInvoice] = {}
    for org_id, organization, currency, *rest in rows:
        doc = docs.setdefault((org_id, currency), PreviewInvoice(org_id, organization, currency))
        doc.lines.append(PreviewLine(*rest))
    for m in mrc:  # each instance's monthly recurring charge, as the close would write it
        doc = docs.setdefault((m.org_id, m.currency), PreviewInvoice(m.org_id, m.organization, m.currency))
        doc.lines.append(PreviewLine(m.profile_type, m.profile, m.price_id, m.unit, m.unit_price, "regular", "usage",
                                     None, m.quantity, m.amount, 1, "month"))
    for c in charges:
        doc = docs.setdefault((c.org_id, c.currency), PreviewInvoice(c.org_id, c.org_id, c.currency))
        doc.lines.append(PreviewLine("contract", c.kind, c.contract_id, c.unit, c.unit_price, "regular", c.category,
                                     c.contract_id, c.quantity, c.amount, 1, "month"))
    for doc in docs.values():  # usage first, then contract charges, then corrections (as issued)
        doc.lines.sort(key=lambda ln: (ln.charge_class == "correction", ln.contract_id is not None,
                                       ln.contract_id is None and ln.charge_level == "month"))
    return [docs[key] for key in sorted(docs)]


def month_charges_with_mrc(cur: Any, period: Period, billing_start: date | None, mrc: list[MrcItem],
                           contracts: Sequence[Contract] | None = None) -> list[MonthCharge]:
    """The month's contract charges (of ``contracts``, else every current one), each whole-month
    commitment's eligible spend counting the previewed MRC of its org and currency, as the close counts
    the MRC items it writes first."""
    if not mrc:
        return compute_month_charges(cur, period, billing_start, contracts=contracts)
    from rafay_billing.contracts.charges import in_term_span, month_charges

    extra: dict[tuple[str, str], Decimal] = {}
    for m in mrc:
        extra[(m.org_id, m.currency)] = extra.get((m.org_id, m.currency), Decimal(0)) + m.amount
    contracts = list(current_contracts(cur) if contracts is None else contracts)
    eligible: dict[str, Decimal | Fraction] = {}
    for c in contracts:
        if c.kind != "commitment":
            continue
        spend = eligible_spend(cur, c, period, billing_start)
        if in_term_span(c, period.start_datetime, period.end_datetime, billing_start) == (
                period.start_datetime, period.end_datetime):
            spend = Fraction(spend) + Fraction(extra.get((c.org_id, c.currency), Decimal(0)))
        eligible[c.contract_id] = spend
    return month_charges(contracts, period, eligible, billing_start)


def describe_preview(period: Period, docs: list[PreviewInvoice]) -> str:
    """The preview as text: one block per document, its lines, its subtotal."""
    if not docs:
        return f"period {period.label} (open): nothing to invoice so far"
    out = [f"period {period.label} (open): what its documents would be if it closed now"]
    for doc in docs:
        out.append(f"{doc.document_type} {doc.org_id} ({doc.organization}) {doc.currency}: subtotal {doc.subtotal}")
        for ln in doc.lines:
            what = (f"{ln.charge_category} contract {ln.contract_id} ({ln.profile})" if ln.contract_id
                    else f"{ln.profile_type}/{ln.profile} price {ln.price_id}"
                    + (" monthly recurring charge" if ln.is_mrc else ""))
            out.append(f"  {ln.charge_class:<10} {what}: {ln.quantity} {ln.pricing_unit} x {ln.unit_price}"
                       f" = {ln.amount}")
    return "\n".join(out)
