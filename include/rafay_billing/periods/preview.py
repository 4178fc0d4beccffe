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
from typing import Any

from rafay_billing.contracts.charges import MonthCharge
from rafay_billing.contracts.ledger_items import CONTRACT_CHARGES, compute_month_charges
from rafay_billing.contracts.month_corrections import K, MonthItems, T, month_differences
from rafay_billing.contracts.mrc import MRC_ITEMS, MrcItem, compute_mrc
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
    period (its documents are issued: read them instead).

    Computed as the close computes them, without writing: the month's MRC and contract charges
    (replacing any drafted ones awaiting approval), and the corrections of the closed months whose days
    have usage corrections landing here (their MRC and true-ups, rule 7), in place of pending ones."""
    from rafay_billing.periods.close import closed_period_in

    with transaction(conn), conn.cursor() as cur:
        cur.execute(sql("periods/read_only.sql"))
        closed = closed_period_in(cur, period)
        if closed is not None:
            raise PeriodError(f"period {period.label} is closed (by {closed.closed_by}): its invoices are issued, "
                              "read them (rafay-billing focus-export, or the period's documents) instead of a preview")
        cur.execute(sql("contract_charges/corrected_months.sql"), {"period_start": period.start})
        months = [Period(month) for (month,) in cur.fetchall()]
        cur.execute(sql("periods/preview_lines.sql"),
                    {"period_start": period.start, "recorrected_months": [m.start for m in months]})
        rows = cur.fetchall()
        mrc = compute_mrc(cur, period, billing_start)
        charges = month_charges_with_mrc(cur, period, billing_start, mrc)
        corrections = _closed_month_corrections(cur, period, months, billing_start)
    docs: dict[tuple[str, str], PreviewInvoice] = {}

    def add(org_id: str, organization: str, currency: str, line: PreviewLine) -> None:
        docs.setdefault((org_id, currency), PreviewInvoice(org_id, organization, currency)).lines.append(line)

    for org_id, organization, currency, *rest in rows:
        add(org_id, organization, currency, PreviewLine(*rest))
    month_items: list[tuple[MrcItem | MonthCharge, str, int]] = [(m, "regular", 1) for m in mrc]
    month_items += [(c, "regular", 1) for c in charges]
    for item, charge_class, sign in month_items + corrections:
        organization = item.organization if isinstance(item, MrcItem) else item.org_id
        add(item.org_id, organization, item.currency, _month_line(item, charge_class, sign))
    for doc in docs.values():  # usage first, then contract charges, then corrections (as issued)
        doc.lines.sort(key=lambda ln: (ln.charge_class == "correction", ln.contract_id is not None,
                                       ln.contract_id is None and ln.charge_level == "month"))
    return [docs[key] for key in sorted(docs)]


def _month_line(item: MrcItem | MonthCharge, charge_class: str, sign: int) -> PreviewLine:
    """A month-level item as a document line (``sign`` -1: its reversal)."""
    if isinstance(item, MrcItem):  # each instance's monthly recurring charge, as the close writes it
        return PreviewLine(item.profile_type, item.profile, item.price_id, item.unit, item.unit_price, charge_class,
                           "usage", None, sign * item.quantity, sign * item.amount, 1, "month")
    return PreviewLine("contract", item.kind, item.contract_id, item.unit, item.unit_price, charge_class,
                       item.category, item.contract_id, sign * item.quantity, sign * item.amount, 1, "month")


def _closed_month_corrections(cur: Any, period: Period, months: Sequence[Period], billing_start: date | None
                              ) -> list[tuple[MrcItem | MonthCharge, str, int]]:
    """What the close of ``period`` writes for closed ``months`` (``correct_true_ups``): each changed MRC
    and contract charge, its issued net reversed and its new charge, where the correction lands in
    ``period`` (not in an earlier open one)."""
    out: list[tuple[MrcItem | MonthCharge, str, int]] = []
    for month in months:
        cur.execute(sql("periods/earliest_open_period.sql"), {"month": month.start})
        if cur.fetchone()[0] != period.start:
            continue
        mrc = compute_mrc(cur, month, billing_start)  # MRC first: a whole-month commitment counts it
        mrc_changes = _changes(cur, MRC_ITEMS, month, mrc)
        charge_changes = _changes(cur, CONTRACT_CHARGES, month, month_charges_with_mrc(cur, month, billing_start, mrc))
        out.extend(mrc_changes)
        out.extend(charge_changes)
    return out


def _changes(cur: Any, items: MonthItems[K, T], month: Period, fresh: list[T]) -> list[tuple[T, str, int]]:
    out: list[tuple[T, str, int]] = []
    for change in month_differences(cur, items, month, fresh):
        out.extend((items.reversal(row, month), "correction", -1) for row in change.issued)
        if change.new is not None:
            out.append((change.new, "correction", 1))
    return out


def month_charges_with_mrc(cur: Any, period: Period, billing_start: date | None, mrc: list[MrcItem],
                           contracts: Sequence[Contract] | None = None) -> list[MonthCharge]:
    """The month's contract charges (of ``contracts``, else every current one), each whole-month
    commitment's eligible spend counting ``mrc`` (the month's MRC as computed now) instead of the
    month-level MRC items the ledger holds: the close replaces drafted ones (awaiting approval) and
    corrects a closed month's to what it computes, so ``mrc`` is what the close counts."""
    totals: dict[tuple[str, str], Decimal] = {}
    for m in mrc:
        totals[(m.org_id, m.currency)] = totals.get((m.org_id, m.currency), Decimal(0)) + m.amount
    return compute_month_charges(cur, period, billing_start, contracts=contracts, mrc=totals)


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
