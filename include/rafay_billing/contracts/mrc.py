"""Monthly recurring charges in the ledger (issue 22, rules 3, 6, 7): computed, written, corrected.

Why month-level items: an instance priced per month (``instance_month``, ``gpu_month``) is billed once per
month, for the share of the month it was used. Its days are rated as usual into day items of amount 0
(``pricing_quantity`` = the units billed monthly that day: 1 instance, or its GPU count), so re-billing a
day stays a day's business; the money is one ``charge_level`` ``'month'``, ``charge_category`` ``'usage'``
item per (instance, month), written by the close with the same key as the instance's day items
(org, profile_type, profile, instance_key, dimension ''), dated on the month's first day: the day items
of amount 0 point to it by that key. The arithmetic is :func:`rafay_billing.contracts.charges.mrc_charges`
(exact, divided once, rounded once); this module feeds it the month's days as currently rated.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from fractions import Fraction
from typing import Any

from rafay_billing.contracts.charges import MrcDay, days_in, mrc_charges
from rafay_billing.contracts.month_corrections import MonthItems, correct_months
from rafay_billing.db import sql
from rafay_billing.errors import PeriodError
from rafay_billing.period import Period

log = logging.getLogger(__name__)

InstanceKey = tuple[str, str, str, str]
"""(org_id, profile_type, profile, instance_key): the instance a monthly charge belongs to."""


@dataclass(frozen=True)
class MrcItem:
    """One instance's monthly charge of one month, as its month-level line item.

    ``unit``, ``unit_price`` and ``price_id`` are those of the month's last month-priced day (the price in
    force at its end; when the price changed within the month the amount is the exact day-weighted sum,
    not ``quantity × unit_price``); ``quantity`` is the month share in instances or GPUs (6 places,
    display); ``usage_hours`` the hours of the days it counts; ``amount`` exact, rounded once.
    """

    org_id: str
    profile_type: str
    profile: str
    instance_key: str
    period: Period
    organization: str
    instance: str
    instance_id: str | None
    unit: str
    unit_price: Decimal
    price_id: str
    currency: str
    quantity: Decimal
    usage_hours: Decimal
    amount: Decimal
    days: tuple[date, ...] = ()
    labels: str = "{}"

    @property
    def key(self) -> InstanceKey:
        return (self.org_id, self.profile_type, self.profile, self.instance_key)


def _day_rows(cur: Any, period: Period, org_id: str | None = None) -> list[dict[str, Any]]:
    from psycopg.rows import dict_row

    with cur.connection.cursor(row_factory=dict_row) as dcur:
        dcur.execute(sql("mrc/days.sql"), {"first_day": period.start, "end_day": period.end, "org_id": org_id})
        return list(dcur.fetchall())


def compute_mrc(cur: Any, period: Period, billing_start: date | None = None, org_id: str | None = None
                ) -> list[MrcItem]:
    """Every instance's monthly charge of ``period`` from the ledger as it stands on ``cur`` (rule 3): per
    instance, ``Σ unit_price × units`` over its used month-priced days (from ``billing_start`` on)
    ``÷ days in the month``, rounded once. Raises :class:`PeriodError` naming an instance whose month
    prices of one month are in two currencies (one monthly item per instance and month holds one).
    ``org_id``: that org's instances only."""
    by_instance: dict[InstanceKey, list[dict[str, Any]]] = {}
    for row in _day_rows(cur, period, org_id):
        by_instance.setdefault((row["org_id"], row["profile_type"], row["profile"], row["instance_key"]),
                               []).append(row)
    items: list[MrcItem] = []
    for key, rows in sorted(by_instance.items()):
        days = [MrcDay(r["usage_date"], r["pricing_unit"], r["unit_price"], r["currency"],
                       gpu_count=int(r["quantity"]) if r["pricing_unit"] == "gpu_month" else None,
                       usage_hours=r["quantity"]) for r in rows]
        charges = mrc_charges(days, period, billing_start)
        if len(charges) > 1:
            raise PeriodError(
                f"instance {key[3]!r} (org {key[0]}, profile {key[2]}) has month prices in "
                f"{' and '.join(c.currency for c in charges)} in {period.label}: one monthly charge has one "
                "currency; end the price book row of one currency at a month's start and re-rate the month")
        if not charges:
            continue
        charge = charges[0]
        counted = set(charge.days)
        used = [r for r in rows if r["usage_date"] in counted]
        last = used[-1]
        items.append(MrcItem(
            org_id=key[0], profile_type=key[1], profile=key[2], instance_key=key[3], period=period,
            organization=last["organization"], instance=last["instance"], instance_id=last["instance_id"],
            unit=last["pricing_unit"], unit_price=last["unit_price"], price_id=last["price_id"],
            currency=charge.currency,
            quantity=charge.quantity,
            usage_hours=sum((r["usage_hours"] for r in used), Decimal(0)), amount=charge.amount,
            days=charge.days, labels=json.dumps(last["labels"] or {}),
        ))
    return items


def in_term_share(cur: Any, org_id: str, currency: str, first_day: date, end_day: date) -> Fraction:
    """Rule 4's MRC part of a commitment's eligible spend for a term that covers only part of a month:
    the exact per-day shares ``unit_price × units ÷ days in the month`` of the org's used month-priced
    days in ``[first_day, end_day)`` (one month), in ``currency``, as currently rated."""
    period = Period.containing(first_day)
    total = Fraction(0)
    for r in _day_rows(cur, period, org_id):
        if r["currency"] == currency and first_day <= r["usage_date"] < end_day and r["quantity"] > 0:
            units = Fraction(1) if r["pricing_unit"] == "instance_month" else Fraction(r["quantity"])
            total += units * Fraction(r["unit_price"])
    return total / days_in(period)


def item_params(item: MrcItem, *, run_id: str, billing_period_start: date, charge_class: str = "regular",
                correction_seq: int = 0, entry: str = "charge", reverses_run_id: str | None = None
                ) -> dict[str, Any]:
    """The parameters of ``mrc/insert_item.sql`` for ``item`` (a reversal negates it)."""
    sign = -1 if entry == "reversal" else 1
    return {
        "org_id": item.org_id, "month": item.period.start, "profile": item.profile, "instance_key": item.instance_key,
        "charge_class": charge_class, "correction_seq": correction_seq, "entry": entry,
        "organization": item.organization, "profile_type": item.profile_type, "instance": item.instance,
        "instance_id": item.instance_id, "usage_hours": sign * item.usage_hours, "unit": item.unit,
        "quantity": sign * item.quantity, "unit_price": item.unit_price, "currency": item.currency,
        "amount": sign * item.amount, "price_id": item.price_id, "run_id": run_id,
        "billing_period_start": billing_period_start, "reverses_run_id": reverses_run_id, "labels": item.labels,
    }


def write_mrc(cur: Any, items: Iterable[MrcItem], run_id: str) -> int:
    """Write ``items`` as regular month-level items of their own (open) month; returns how many."""
    rows = [item_params(i, run_id=run_id, billing_period_start=i.period.start) for i in items]
    if rows:
        cur.executemany(sql("mrc/insert_item.sql"), rows)
    return len(rows)


def log_mrc(period: Period, items: list[MrcItem]) -> None:
    """The month's monthly recurring charges, one line per instance, as a folded group of the task log."""
    log.info("::group::Monthly recurring charges of %s: %d item(s)", period.label, len(items))
    for i in items:
        log.info("org %s %s/%s instance %s: %d day(s), %s %s x %s = %s %s", i.org_id, i.profile_type, i.profile,
                 i.instance, len(i.days), i.quantity, i.unit, i.unit_price, i.amount, i.currency)
    if not items:
        log.info("no monthly recurring charges")
    log.info("::endgroup::")


# --- corrections of closed months (rule 7) ------------------------------------------------------------


def _row_key(row: dict[str, Any]) -> InstanceKey:
    return (row["org_id"], row["profile_type"], row["profile"], row["instance_key"])


def _reversal(row: dict[str, Any], month: Period) -> MrcItem:
    return MrcItem(row["org_id"], row["profile_type"], row["profile"], row["instance_key"], month, row["organization"],
                   row["instance"], row["instance_id"], row["unit"], row["unit_price"], row["price_id"],
                   row["currency"], row["quantity"], row["usage_hours"], row["amount"])


MRC_ITEMS: MonthItems[InstanceKey, MrcItem] = MonthItems(
    sql_dir="mrc",
    compute=lambda cur, month, start: compute_mrc(cur, month, start),
    key=lambda item: item.key,
    row_key=_row_key,
    next_params=lambda key, new, old: dict(zip(("org_id", "profile_type", "profile", "instance_key"), key,
                                               strict=True)),
    reversal=_reversal,
    params=lambda item, **kw: item_params(item, **kw),
    describe=lambda key: f"MRC of instance {key[3]} (org {key[0]})",
)
"""Monthly recurring charges as month-level items that rule 7 corrects (:mod:`.month_corrections`)."""


def correct_mrc(cur: Any, months: Iterable[Period], run_id: str,
                billing_start: date | None = None) -> list[tuple[InstanceKey, Period]]:
    """Rule 7: compute the MRC of closed ``months`` again from their days as currently rated; for each
    instance whose charge differs from what was issued, write into the earliest open period the issued
    net reversed and the new charge (``charge_class`` ``correction``, one correction number). Unchanged
    writes nothing; a repeat replaces the pending corrections, never adds to them."""
    return correct_months(cur, MRC_ITEMS, months, run_id, billing_start)
