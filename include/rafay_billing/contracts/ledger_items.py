"""A month's contract charges in the ledger (issue 22, rules 1, 4, 5, 6): computed, written, logged.

Why line items: invoices, corrections, FOCUS and reports already read ``billing.charge_line_items``;
a reservation fee, a fee or a true-up written there as a ``charge_level`` ``'month'`` item (dated on
the month's first day, keyed apart from that day's usage) is carried by the month's invoice like
usage, and is as immutable once the month closes. The arithmetic is
:mod:`rafay_billing.contracts.charges` (exact, rounded once); this module feeds it the current
contracts and each commitment's eligible spend read from the ledger, and writes what it returns.

The close computes them for the month being closed, inside its transaction, after the re-rating (so a
true-up sees the usage as invoiced) and before issuing (:func:`write_month_charges`). The preview
computes the same for an open month without writing (:mod:`rafay_billing.periods.preview`).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from datetime import date
from decimal import Decimal
from fractions import Fraction
from typing import Any

from rafay_billing.contracts.charges import MonthCharge, in_term_span, month_charges
from rafay_billing.contracts.month_corrections import MonthItems, correct_months
from rafay_billing.contracts.mrc import correct_mrc, in_term_share
from rafay_billing.contracts.source import Contract
from rafay_billing.contracts.store import read_contracts
from rafay_billing.db import sql
from rafay_billing.period import Period

log = logging.getLogger(__name__)


def current_contracts(cur: Any) -> list[Contract]:
    """The current version of every contract, read on ``cur``'s connection (inside its transaction)."""
    from psycopg.rows import dict_row

    with cur.connection.cursor(row_factory=dict_row) as dcur:
        return read_contracts(dcur, "contracts/current.sql")


def eligible_spend(cur: Any, c: Contract, period: Period, billing_start: date | None = None,
                   mrc: Mapping[tuple[str, str], Decimal] | None = None) -> Decimal | Fraction:
    """Rule 4: the org's usage charges in the commitment's currency for usage on the term's days of the
    month (from ``billing_start`` on), as currently rated: regular items and every later correction of
    those days; never purchases or true-ups. MRC counts too: the month's MRC items (and their
    corrections) when the term covers the whole month, else the exact per-day shares of the in-term
    month-priced days (``unit_price × units ÷ days in the month``; a Fraction, rounded by the true-up).

    ``mrc``: the month's MRC per (org, currency) as computed now, counted instead of its month-level
    items (what the preview needs: the close replaces drafted MRC items and re-corrects a closed
    month's, so the items the ledger holds are not what the close will count)."""
    span = in_term_span(c, period.start_datetime, period.end_datetime, billing_start)
    if span is None:
        return Decimal(0)
    whole_month = span == (period.start_datetime, period.end_datetime)
    cur.execute(sql("contract_charges/eligible_spend.sql"), {
        "org_id": c.org_id, "currency": c.currency, "first_day": span[0].date(), "end_day": span[1].date(),
        "month": period.start, "whole_month": whole_month, "count_month_items": mrc is None})
    spend = Decimal(cur.fetchone()[0])
    if whole_month:
        return spend if mrc is None else spend + mrc.get((c.org_id, c.currency), Decimal(0))
    return Fraction(spend) + in_term_share(cur, c.org_id, c.currency, span[0].date(), span[1].date())


def compute_month_charges(cur: Any, period: Period, billing_start: date | None = None,
                          contracts: Sequence[Contract] | None = None,
                          mrc: Mapping[tuple[str, str], Decimal] | None = None) -> list[MonthCharge]:
    """Every contract's month-level charge of ``period`` (reservation fees, fees, true-ups), by contract
    id, from the ledger as it stands on ``cur`` (``contracts``: these instead of the current ones;
    ``mrc``: the month's MRC per (org, currency) as computed now, see :func:`eligible_spend`)."""
    chosen = list(current_contracts(cur) if contracts is None else contracts)
    eligible = {c.contract_id: eligible_spend(cur, c, period, billing_start, mrc)
                for c in chosen if c.kind == "commitment"}
    return month_charges(chosen, period, eligible, billing_start)


def item_params(charge: MonthCharge, *, run_id: str, billing_period_start: date, charge_class: str = "regular",
                correction_seq: int = 0, entry: str = "charge") -> dict[str, Any]:
    """The parameters of ``contract_charges/insert_item.sql`` for ``charge`` (a reversal negates it)."""
    sign = -1 if entry == "reversal" else 1
    return {
        "org_id": charge.org_id, "month": charge.period.start, "kind": charge.kind, "contract_id": charge.contract_id,
        "charge_class": charge_class, "correction_seq": correction_seq, "entry": entry, "unit": charge.unit,
        "quantity": sign * charge.quantity, "unit_price": charge.unit_price, "currency": charge.currency,
        "amount": sign * charge.amount, "run_id": run_id, "billing_period_start": billing_period_start,
        "reverses_run_id": run_id if entry == "reversal" else None, "category": charge.category,
    }


def write_month_charges(cur: Any, charges: Iterable[MonthCharge], run_id: str) -> int:
    """Write ``charges`` as regular month-level items of their own (open) month; returns how many."""
    rows = [item_params(c, run_id=run_id, billing_period_start=c.period.start) for c in charges]
    if rows:
        cur.executemany(sql("contract_charges/insert_item.sql"), rows)
    return len(rows)


def describe_by_org(charges: Sequence[MonthCharge]) -> list[str]:
    """One log line per org and currency (its total), then one per charge: what the close charged."""
    lines: list[str] = []
    orgs: dict[str, list[MonthCharge]] = {}
    for c in charges:
        orgs.setdefault(c.org_id, []).append(c)
    for org_id, items in sorted(orgs.items()):
        totals: dict[str, Decimal] = {}
        for c in items:
            totals[c.currency] = totals.get(c.currency, Decimal(0)) + c.amount
        lines.append(f"org {org_id}: " + ", ".join(f"{v} {k}" for k, v in sorted(totals.items()))
                     + f" in {len(items)} contract charge(s)")
        lines.extend(f"  {c.contract_id} {c.kind} ({c.category}): {c.quantity} {c.unit} x {c.unit_price}"
                     f" = {c.amount} {c.currency}" for c in items)
    return lines


def log_month_charges(period: Period, charges: Sequence[MonthCharge]) -> None:
    """The month's contract charges per org, as a folded group of the task log."""
    log.info("::group::Contract charges of %s: %d item(s)", period.label, len(charges))
    for line in describe_by_org(charges) or ["no contract charges"]:
        log.info("%s", line)
    log.info("::endgroup::")


# --- corrections of closed months (rule 7) ------------------------------------------------------------


def _reversal(row: dict[str, Any], month: Period) -> MonthCharge:
    return MonthCharge(row["contract_id"], row["org_id"], month, row["kind"], row["category"], row["currency"],
                       row["unit"], row["quantity"], row["unit_price"], row["amount"])


CONTRACT_CHARGES: MonthItems[str, MonthCharge] = MonthItems(
    sql_dir="contract_charges",
    compute=lambda cur, month, start: compute_month_charges(cur, month, start),
    key=lambda c: c.contract_id,
    row_key=lambda row: row["contract_id"],
    next_params=lambda cid, new, old: {"org_id": new.org_id if new is not None else old[0]["org_id"],
                                       "contract_id": cid},
    reversal=_reversal,
    params=lambda charge, **kw: item_params(charge, **kw),
    describe=lambda cid: f"contract {cid}",
)
"""Contract charges as month-level items that rule 7 corrects (:mod:`.month_corrections`)."""


def correct_month_charges(cur: Any, months: Iterable[Period], run_id: str,
                          billing_start: date | None = None) -> list[tuple[str, Period]]:
    """Rule 7: recompute the contract charges of closed ``months`` from the contracts and the ledger as
    they stand now; for each contract whose charge differs from what was issued for the month, write
    into the earliest open period the issued net reversed and the new charge (``charge_class``
    ``correction``). A month whose charges are unchanged writes nothing, and so does a repeat (pending
    corrections in open periods are replaced, never added to). Returns the (contract, month)s corrected."""
    return correct_months(cur, CONTRACT_CHARGES, months, run_id, billing_start)


def correct_true_ups(cur: Any, period: Period, run_id: str, billing_start: date | None = None) -> list[tuple[str, Period]]:
    """Rules 3, 4, 7 after close: usage corrections of closed months' days that land in ``period`` change
    those months' MRC and eligible spend, so the close of ``period`` computes their MRC again
    (:func:`~rafay_billing.contracts.mrc.correct_mrc`), then their contract charges, and corrects what
    differs (:func:`correct_month_charges`; in practice the true-ups)."""
    cur.execute(sql("contract_charges/corrected_months.sql"), {"period_start": period.start})
    months = [Period(month) for (month,) in cur.fetchall()]
    if not months:
        return []
    # MRC first (rule 3, 7): a closed month's MRC counts in its commitments' eligible spend
    correct_mrc(cur, months, run_id, billing_start)
    return correct_month_charges(cur, months, run_id, billing_start)
