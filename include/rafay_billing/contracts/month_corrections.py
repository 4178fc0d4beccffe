"""Rule 7 for month-level items (contract charges and monthly recurring charges): a closed month's
charges computed again and, where they differ from what was issued, corrected in the earliest open
period. One routine for both kinds, so they cannot drift apart in how a correction is numbered,
reversed or replaced.

A correction is the issued net reversed (one reversal per issued currency, each its own correction
number) and the new charge (``charge_class`` ``correction``); an unchanged month writes nothing, and a
repeat replaces the pending corrections in open periods instead of adding to them.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass
from datetime import date
from typing import Any, Generic, Protocol, TypeVar

from rafay_billing.db import sql
from rafay_billing.period import Period

log = logging.getLogger(__name__)


class Charge(Protocol):
    """What a month-level charge shows the comparison with what was issued."""

    @property
    def currency(self) -> str: ...

    @property
    def amount(self) -> Any: ...

    @property
    def quantity(self) -> Any: ...


K = TypeVar("K", bound=Hashable)
T = TypeVar("T", bound=Charge)


@dataclass(frozen=True)
class MonthItems(Generic[K, T]):
    """One kind of month-level item: its statements (``<sql_dir>/delete_pending_corrections.sql``,
    ``issued.sql``, ``next_correction.sql``, ``insert_item.sql``) and how its rows become charges."""

    sql_dir: str
    compute: Callable[[Any, Period, date | None], list[T]]
    key: Callable[[T], K]
    row_key: Callable[[dict[str, Any]], K]
    next_params: Callable[[K, T | None, list[dict[str, Any]]], dict[str, Any]]
    reversal: Callable[[dict[str, Any], Period], T]
    params: Callable[..., dict[str, Any]]
    describe: Callable[[K], str]


def _issued(cur: Any, items: MonthItems[K, T], month: Period) -> dict[K, list[dict[str, Any]]]:
    from psycopg.rows import dict_row

    with cur.connection.cursor(row_factory=dict_row) as dcur:
        dcur.execute(sql(f"{items.sql_dir}/issued.sql"), {"month": month.start})
        rows = dcur.fetchall()
    issued: dict[K, list[dict[str, Any]]] = {}
    for row in rows:
        issued.setdefault(items.row_key(row), []).append(row)
    return issued


def _same(issued: list[dict[str, Any]], fresh: Charge | None) -> bool:
    if fresh is None:
        return not issued
    return len(issued) == 1 and (issued[0]["currency"], issued[0]["amount"], issued[0]["quantity"]) == (
        fresh.currency, fresh.amount, fresh.quantity)


@dataclass(frozen=True)
class MonthCorrection(Generic[K, T]):
    """What differs for one key of a closed month: its issued rows (net per currency, to be reversed)
    and its charge as computed now (None: nothing is owed any more)."""

    key: K
    month: Period
    issued: tuple[dict[str, Any], ...]
    new: T | None


def month_differences(cur: Any, items: MonthItems[K, T], month: Period, fresh: Iterable[T]
                      ) -> list[MonthCorrection[K, T]]:
    """The keys of closed ``month`` whose ``fresh`` charge differs from what was issued (pending
    corrections in open periods are not issued: they are replaced). Writes nothing: the close writes
    these (:func:`correct_months`) and the preview shows them."""
    by_key = {items.key(c): c for c in fresh}
    issued = _issued(cur, items, month)
    return [MonthCorrection(key, month, tuple(issued.get(key, [])), by_key.get(key))
            for key in sorted(by_key.keys() | issued.keys())  # type: ignore[type-var]
            if not _same(issued.get(key, []), by_key.get(key))]


def correct_months(cur: Any, items: MonthItems[K, T], months: Iterable[Period], run_id: str,
                   billing_start: date | None = None) -> list[tuple[K, Period]]:
    """Compute the charges of closed ``months`` again and correct each one that differs from what was
    issued (see the module docstring). Returns the (key, month)s corrected."""
    written: list[tuple[K, Period]] = []
    for month in sorted(set(months)):
        cur.execute(sql(f"{items.sql_dir}/delete_pending_corrections.sql"), {"month": month.start})
        for change in month_differences(cur, items, month, items.compute(cur, month, billing_start)):
            key, old, new = change.key, change.issued, change.new
            cur.execute(sql(f"{items.sql_dir}/next_correction.sql"),
                        {"month": month.start, **items.next_params(key, new, list(old))})
            period, seq = cur.fetchone()
            for row in old:  # one reversal per issued currency, each its own correction number
                params = items.params(items.reversal(row, month), run_id=run_id, billing_period_start=period,
                                      charge_class="correction", correction_seq=seq, entry="reversal")
                params["reverses_run_id"] = row["run_id"]
                cur.execute(sql(f"{items.sql_dir}/insert_item.sql"), params)
                seq += 1
            if new is not None:
                cur.execute(sql(f"{items.sql_dir}/insert_item.sql"), items.params(
                    new, run_id=run_id, billing_period_start=period, charge_class="correction",
                    correction_seq=max(seq - 1, 1) if old else seq))
            written.append((key, month))
            log.info("%s, %s: issued %s, now %s: corrected in period %s", items.describe(key), month.label,
                     ", ".join(f"{r['amount']} {r['currency']}" for r in old) or "nothing",
                     f"{new.amount} {new.currency}" if new is not None else "nothing", period)
    return written
