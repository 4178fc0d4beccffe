"""The Billing view's Contracts section (issue 22): one org's contracts, each reservation's capacity and
use per day, and the month's month-level charges: contract charges and monthly recurring charges (MRC)
(a preview while the month is open, as issued once it is closed). Airflow-free: every function takes a psycopg 3 connection (SQL in ``rafay_billing/sql/ui/``).

Why the same code as the close: capacity comes from
:func:`rafay_billing.contracts.charges.reservation_capacity` and an open month's charges from
:func:`rafay_billing.contracts.mrc.compute_mrc` and
:func:`rafay_billing.periods.preview.month_charges_with_mrc` (what ``rafay-billing preview`` prints), so what finance sees here is what the
close would charge, never a second estimate.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from rafay_billing.contracts.charges import reservation_capacity, round_quantity
from rafay_billing.contracts.mrc import compute_mrc
from rafay_billing.contracts.source import Contract
from rafay_billing.contracts.store import read_contracts
from rafay_billing.period import Period
from rafay_billing.periods.close import closed_period
from rafay_billing.periods.preview import month_charges_with_mrc
from rafay_provider.ui.queries import PAGE_SIZE, Page, fetch_rows, like_pattern, paged


@dataclass(frozen=True)
class ReservationUse:
    """One reservation over a month: per UTC day, its capacity and the usage it covered (its unit)."""

    contract_id: str
    profile: str
    unit: str
    days: list[date]
    capacity: list[Decimal]
    covered: list[Decimal]

    @property
    def capacity_total(self) -> Decimal:
        return sum(self.capacity, Decimal(0))

    @property
    def covered_total(self) -> Decimal:
        return sum(self.covered, Decimal(0))

    @property
    def utilisation(self) -> Decimal | None:
        """Covered ÷ capacity over the month, in percent to one place; None without capacity."""
        if not self.capacity_total:
            return None
        return (100 * self.covered_total / self.capacity_total).quantize(Decimal("0.1"))


@dataclass(frozen=True)
class ChargeRow:
    """A month-level charge as the section lists it: a contract's, or an instance's MRC (``contract_id``
    empty, ``instance`` named)."""

    contract_id: str
    category: str
    currency: str
    unit: str | None
    quantity: Decimal
    amount: Decimal
    instance: str = ""


@dataclass
class OrgContracts:
    """What the section shows for one org and month."""

    org_id: str
    month: Period
    closed: bool
    contracts: list[Contract]
    use: list[ReservationUse]
    charges: list[ChargeRow]
    usage: dict[str, Decimal] = field(default_factory=dict)

    @property
    def estimate(self) -> dict[str, Decimal]:
        """Usage plus contract charges per currency: the month's invoices before corrections of other months."""
        out = dict(self.usage)
        for c in self.charges:
            out[c.currency] = out.get(c.currency, Decimal(0)) + c.amount
        return dict(sorted(out.items()))


def contract_orgs(conn: Any, *, search: str | None = None, limit: int = PAGE_SIZE, offset: int = 0) -> Page:
    """The orgs with a current contract, with their contract and reservation counts."""
    return paged(conn, "ui/contract_orgs.sql", {"pattern": like_pattern(search)}, limit, offset)


def reservation_use(conn: Any, reservations: list[Contract], month: Period,
                    billing_start: date | None = None) -> list[ReservationUse]:
    """Each reservation's capacity and covered usage per day of ``month`` (days inside its term only)."""
    if not reservations:
        return []
    covered: dict[tuple[str, date], Decimal] = {}
    for row in fetch_rows(conn, "ui/reservation_use.sql", {
            "org_id": reservations[0].org_id, "first_day": month.start, "end_day": month.end,
            "contract_ids": [r.contract_id for r in reservations]}):
        covered[(row["contract_id"], row["usage_date"])] = Decimal(row["covered"])
    out = []
    for r in reservations:
        days, capacity, used = [], [], []
        day = month.start
        while day < month.end:
            cap = reservation_capacity(r, day, billing_start)
            if cap:
                days.append(day)
                capacity.append(round_quantity(cap))
                used.append(covered.get((r.contract_id, day), Decimal(0)))
            day += timedelta(days=1)
        out.append(ReservationUse(r.contract_id, r.profile or "", r.unit or "", days, capacity, used))
    return out


def org_contracts(conn: Any, org_id: str, month: Period, billing_start: date | None = None) -> OrgContracts:
    """One org's contracts and the month's contract charges: computed as the close would for an open
    month, the issued (and later corrected) month-level items for a closed one."""
    from psycopg.rows import dict_row

    with conn.cursor(row_factory=dict_row) as cur:
        contracts = read_contracts(cur, "ui/org_contracts.sql", {"org_id": org_id})
    closed = closed_period(conn, month) is not None
    if closed:
        charges = [ChargeRow(r["contract_id"] or "", r["charge_category"], r["currency"], r["pricing_unit"],
                             Decimal(r["quantity"]), Decimal(r["amount"]), r["instance"] or "")
                   for r in fetch_rows(conn, "ui/org_month_charges.sql", {"org_id": org_id, "month_start": month.start})]
    else:
        with conn.cursor() as cur:
            mrc = compute_mrc(cur, month, billing_start, org_id=org_id)
            computed = month_charges_with_mrc(cur, month, billing_start, mrc, contracts=contracts)
        charges = [ChargeRow("", "usage", m.currency, m.unit, m.quantity, m.amount, m.instance) for m in mrc]
        charges += [ChargeRow(c.contract_id, c.category, c.currency, c.unit, c.quantity, c.amount) for c in computed]
    usage = {r["currency"]: Decimal(r["amount"]) for r in fetch_rows(conn, "ui/org_month_usage.sql", {
        "org_id": org_id, "first_day": month.start, "end_day": month.end})}
    reservations = [c for c in contracts if c.kind == "reservation"]
    return OrgContracts(org_id, month, closed, contracts, reservation_use(conn, reservations, month, billing_start),
                        charges, usage)

