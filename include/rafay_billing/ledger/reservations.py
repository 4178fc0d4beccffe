"""Reservation coverage in rating (issue 22, rule 2): the stage's instance items split into covered parts.

Why a step over the stage: rating prices a day's usage on demand in one set-based statement; the days
that have a reservation are few, so they go through the stage (``pg_temp.rated_days``, like re-rated
days) and this step replaces the stage's instance items by their covered and on-demand parts before the
stage is applied to the ledger or compared with what a closed day issued. A covered part is an item of
its own (``covered_by`` = the reservation, in the line items' key), so re-rating an unchanged day writes
nothing and a closed day's coverage change is corrected like any usage change. The arithmetic is
:mod:`rafay_billing.contracts.coverage` (exact, rounded once per part).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from decimal import Decimal
from fractions import Fraction
from typing import Any

from rafay_billing.contracts.coverage import DayTerms, InstanceUsage, Part, allocate, day_terms
from rafay_billing.contracts.source import Contract
from rafay_billing.contracts.store import read_contracts
from rafay_billing.db import sql
from rafay_billing.ledger.slices import DaySlice


def _params(slices: Sequence[DaySlice]) -> dict[str, Any]:
    return {"org_ids": [s.org_id for s in slices], "usage_dates": [s.usage_date for s in slices]}


def reserved_slices(cur: Any, slices: Sequence[DaySlice], billing_start: date | None = None) -> set[tuple[str, date]]:
    """The (org, day)s of ``slices`` that a current reservation's term meets (from ``billing_start`` on)."""
    if not slices:
        return set()
    cur.execute(sql("reservations/reserved_slices.sql"), {**_params(slices), "billing_start": billing_start})
    return {(org_id, day) for org_id, day in cur.fetchall()}


def _reservations(cur: Any, org_ids: set[str]) -> dict[tuple[str, str, str], list[Contract]]:
    from psycopg.rows import dict_row

    with cur.connection.cursor(row_factory=dict_row) as dcur:
        contracts = read_contracts(dcur, "contracts/current.sql")
    by_profile: dict[tuple[str, str, str], list[Contract]] = {}
    for c in contracts:
        if c.kind == "reservation" and c.org_id in org_ids and c.profile:
            by_profile.setdefault((c.org_id, c.profile_type or "compute", c.profile), []).append(c)
    return by_profile


def cover_stage(cur: Any, slices: Sequence[DaySlice], run_id: str, billing_start: date | None = None, *,
                safe_times: bool = False) -> int:
    """Split the stage's instance items of ``slices`` (rated on demand from ``run_id``'s usage) into
    covered parts and on-demand rests by the current reservations; returns how many covered parts.
    ``safe_times``: read record times as rating did (see ``rating/rate_days.sql``)."""
    if not slices:
        return 0
    params = _params(slices)
    by_profile = _reservations(cur, {s.org_id for s in slices})
    cur.execute(sql("reservations/stage_items.sql"), params)
    pairs = {(s.org_id, s.usage_date) for s in slices}
    groups: dict[tuple[str, date, str, str], list[tuple[Any, ...]]] = {}
    for row in cur.fetchall():
        if (row[0], row[2], row[3]) in by_profile and (row[0], row[1]) in pairs:
            groups.setdefault((row[0], row[1], row[2], row[3]), []).append(row)
    terms: dict[tuple[str, date, str, str], DayTerms] = {}
    for org_id, day, ptype, profile in groups:
        found = day_terms(by_profile[(org_id, ptype, profile)], day, billing_start)
        if found is not None:
            terms[(org_id, day, ptype, profile)] = found
    if not terms:
        return 0
    in_term = _in_term_hours(cur, {**params, "safe_times": safe_times}, run_id, terms)
    parts: list[tuple[tuple[str, date, str, str], Part]] = []
    for key, term in terms.items():
        usage = [InstanceUsage(r[4], r[5], r[6], r[7], r[8], in_term.get((*key, r[4]), Fraction(0)))
                 for r in groups[key]]
        parts.extend((key, p) for p in allocate(term, usage))
    _write(cur, parts)
    return sum(1 for _, p in parts if p.covered_by)


def _in_term_hours(cur: Any, params: dict[str, Any], run_id: str,
                   terms: dict[tuple[str, date, str, str], DayTerms]) -> dict[tuple[str, date, str, str, str], Fraction]:
    """Per instance of a reserved profile: its billed hours that day inside the terms' union, exact."""
    cur.execute(sql("reservations/record_hours.sql"), {**params, "run_id": run_id})
    hours: dict[tuple[str, date, str, str, str], Fraction] = {}
    for org_id, day, ptype, profile, key, ts, te, billed in cur.fetchall():
        term = terms.get((org_id, day, ptype, profile))
        if term is None or billed is None:
            continue
        k = (org_id, day, ptype, profile, key)
        hours[k] = hours.get(k, Fraction(0)) + Fraction(billed) * term.in_term_share(ts, te)
    return hours


def _write(cur: Any, parts: Sequence[tuple[tuple[str, date, str, str], Part]]) -> None:
    """Covered parts into the stage, then each touched item reduced to its on-demand rest (or removed)."""
    rows: dict[tuple[str, date, str, str, str, str], tuple[Decimal, Decimal]] = {}
    for k, p in parts:
        if p.covered_by:
            rows[(*k, p.instance_key, p.covered_by)] = (p.quantity, p.usage_hours)
            rows.setdefault((*k, p.instance_key, ""), (Decimal(0), Decimal(0)))  # wholly covered unless a rest follows
    if not rows:
        return
    for k, p in parts:
        if not p.covered_by:
            rows[(*k, p.instance_key, "")] = (p.quantity, p.usage_hours)
    keys = list(rows)
    org_ids = sorted({k[0] for k in keys})
    cur.execute(sql("reservations/create_parts.sql"))
    cur.execute(sql("reservations/insert_parts.sql"), {
        "org_ids": [k[0] for k in keys], "usage_dates": [k[1] for k in keys], "profile_types": [k[2] for k in keys],
        "profiles": [k[3] for k in keys], "instance_keys": [k[4] for k in keys], "covered_bys": [k[5] for k in keys],
        "quantities": [rows[k][0] for k in keys], "hours": [rows[k][1] for k in keys],
    })
    cur.execute(sql("reservations/analyze_parts.sql"))
    for name in ("insert_covered_parts", "remove_covered_items", "reduce_on_demand"):
        cur.execute(sql(f"reservations/{name}.sql"), {"org_ids": org_ids})
