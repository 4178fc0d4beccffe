"""The per-org money table of a rating run: org, currency, items, hours and amount, the top N by amount
plus a total line per currency, as plain text lines for a task log.

Airflow-free: the rating task wraps the lines in a collapsible log group (``::group::`` /
``::endgroup::``), so a run over 1,000 orgs shows one folded line until an operator opens it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

from rafay_billing.db import sql

TOP_N = 50
GROUP_START = "::group::"
GROUP_END = "::endgroup::"


@dataclass(frozen=True)
class OrgMoney:
    org_id: str
    organization: str
    currency: str
    items: int
    hours: Decimal
    amount: Decimal


def fetch_org_totals(conn: Any, run_id: str, first_day: date, end_day: date) -> list[OrgMoney]:
    """Per (org, currency) totals of what ``run_id`` rated for the days ``[first_day, end_day)``, largest first."""
    with conn.cursor() as cur:
        cur.execute(sql("money_table/org_totals.sql"),
                    {"run_id": run_id, "first_day": first_day, "end_day": end_day})
        return [OrgMoney(r[0], r[1], r[2].strip(), int(r[3]), Decimal(r[4]), Decimal(r[5])) for r in cur.fetchall()]


def _cut(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def format_table(rows: Sequence[OrgMoney], top: int = TOP_N) -> list[str]:
    """The table's lines: a header, the ``top`` rows by amount, then one total line per currency over
    *every* row (not only the ones shown), and how many rows were left out."""
    ranked = sorted(rows, key=lambda r: (-r.amount, r.org_id, r.currency))
    shown = ranked[:top]
    header = f"{'org':<12} {'organization':<24} {'cur':<3} {'items':>7} {'hours':>14} {'amount':>16}"
    lines = [header, "-" * len(header)]
    for r in shown:
        lines.append(
            f"{_cut(r.org_id, 12):<12} {_cut(r.organization, 24):<24} {r.currency:<3} {r.items:>7,} "
            f"{r.hours:>14,.2f} {r.amount:>16,}"
        )
    if len(ranked) > len(shown):
        lines.append(f"... {len(ranked) - len(shown)} more (org, currency) row(s) not shown; the totals include them")
    lines.append("-" * len(header))
    for currency, items, hours, amount, orgs in _totals(ranked):
        lines.append(
            f"{'TOTAL':<12} {f'{orgs} org(s)':<24} {currency:<3} {items:>7,} {hours:>14,.2f} {amount:>16,}"
        )
    return lines


def _totals(rows: Iterable[OrgMoney]) -> list[tuple[str, int, Decimal, Decimal, int]]:
    by_currency: dict[str, list[Any]] = {}
    for r in rows:
        acc = by_currency.setdefault(r.currency, [0, Decimal(0), Decimal(0), set()])
        acc[0] += r.items
        acc[1] += r.hours
        acc[2] += r.amount
        acc[3].add(r.org_id)
    return [(c, a[0], a[1], a[2], len(a[3])) for c, a in sorted(by_currency.items())]


def grouped(title: str, lines: Sequence[str]) -> list[str]:
    """``lines`` inside a collapsible group of Airflow's log view, one log event per line."""
    return [f"{GROUP_START}{title}", *lines, GROUP_END]
