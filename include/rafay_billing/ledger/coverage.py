"""Coverage: which (org, UTC day)s the ledger holds, and which it should but does not.

Why a table of its own: "every day is billed" must be checkable in SQL, not inferred from line items
(a day with no usage has none). ``billing.coverage`` has one row per (org, day) with its status,
written in the same transaction as the day's rating (``billed``/``exceptions``; ``held`` when the
rating's guard kept a shrinking re-read out, see ``ledger/guards.py``) or by the load step (``failed``).
``billing.org_registry`` remembers each org's first expected day (its first day with usage, or the day
of the first scheduled run that listed it, whichever is earlier), so an org that is new is not asked
for days before it existed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date
from typing import Any

from rafay_billing.db import sql, transaction


def register_orgs(
    conn: Any,
    orgs: Sequence[tuple[str, str]],
    first_day: date,
    run_id: str,
    *,
    start_floor: date | None = None,
    last_day: date | None = None,
    full_listing: bool = False,
    scheduled: bool = True,
    usage_days: Mapping[str, tuple[date, date]] | None = None,
) -> None:
    """Record that a run listed ``orgs`` (``(org_id, name)``) for a window from ``first_day`` to
    ``last_day`` (inclusive; default ``first_day``): from its first expected day on, an org is
    expected to be billed every day. A ``full_listing`` (not limited to some orgs) that misses an org
    listed before marks it as gone from the day after its last listing: later days are not asked of it.

    An org's first expected day is the earlier of its first day with usage (``usage_days``: org ->
    (first, last) day with usage in the window) and the day billed by the first ``scheduled`` run
    that listed it. A run that is not ``scheduled`` (a backfill, a conf window) registers an org
    only from its days with usage: the start of a window someone asked for says nothing about when
    an org existed, and back-dating every current org to it would leave the months in between
    unclosable. Such a run's listed orgs without usage are not registered (a scheduled run will).

    On the ledger's first scheduled registration (an empty registry), ``start_floor`` (the
    deployment's billing start date), if earlier, is taken as the orgs' first day: the deployment
    bills from there.
    """
    if not orgs:
        return
    usage = usage_days or {}
    last = last_day or first_day
    spans: list[tuple[str, str, date, date]] = []
    for org_id, name in orgs:
        used = usage.get(org_id)
        if scheduled:
            spans.append((org_id, name, min(first_day, used[0]) if used else first_day,
                          max(last, used[1]) if used else last))
        elif used:
            spans.append((org_id, name, used[0], used[1]))
    with transaction(conn), conn.cursor() as cur:
        if spans:
            cur.execute(
                sql("coverage/register_orgs.sql"),
                {
                    "org_ids": [s[0] for s in spans],
                    "organizations": [s[1] for s in spans],
                    "first_days": [s[2] for s in spans],
                    "last_days": [s[3] for s in spans],
                    "start_floor": start_floor if scheduled else None,
                    "run_id": run_id,
                },
            )
        if full_listing:
            cur.execute(sql("coverage/mark_unlisted.sql"), {"org_ids": [o for o, _ in orgs], "first_day": first_day})


def known_orgs(conn: Any) -> list[tuple[str, str]]:
    """``(org_id, organization)`` of every org the registry knows, in id order.

    Why: a partner-only console lists an org only on days it has usage; the DAG bills the orgs it
    knows on the other days too (zero items, coverage ``billed``), so an idle day is never ``missing``.
    """
    with transaction(conn), conn.cursor() as cur:
        cur.execute(sql("coverage/known_orgs.sql"))
        return [(org_id, name) for org_id, name in cur.fetchall()]


def record_failed(conn: Any, failures: Sequence[tuple[str, date, str, str]], run_id: str) -> None:
    """Mark (org_id, day, organization, why) as ``failed`` by ``run_id``; earlier good items stand."""
    if not failures:
        return
    with transaction(conn), conn.cursor() as cur:
        cur.execute(
            sql("coverage/record_failed.sql"),
            {
                "org_ids": [f[0] for f in failures],
                "usage_dates": [f[1] for f in failures],
                "organizations": [f[2] for f in failures],
                "details": [f[3] for f in failures],
                "run_id": run_id,
            },
        )


def uncovered_days(
    conn: Any, org_ids: Sequence[str], first_day: date, end_day: date
) -> list[tuple[str, date, str]]:
    """``(org_id, day, status)`` for each day in ``[first_day, end_day)`` (from the org's first
    listing on) that is not ``billed``: status ``missing``, ``failed``, ``held`` or ``exceptions``."""
    if not org_ids or first_day >= end_day:
        return []
    with transaction(conn), conn.cursor() as cur:
        cur.execute(
            sql("coverage/uncovered_days.sql"),
            {"org_ids": list(org_ids), "first_day": first_day, "end_day": end_day},
        )
        return [(org_id, day, status) for org_id, day, status, _ in cur.fetchall()]


def fetch_coverage(conn: Any, first_day: date, end_day: date) -> list[dict[str, Any]]:
    """Coverage rows of ``[first_day, end_day)`` by org and day (operators, tests)."""
    from psycopg.rows import dict_row  # keep module import light

    with transaction(conn), conn.cursor(row_factory=dict_row) as cur:
        cur.execute(sql("coverage/fetch.sql"), {"first_day": first_day, "end_day": end_day})
        return cur.fetchall()
