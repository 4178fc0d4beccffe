"""What contracts ask of a close (issue 22, rule 8): a month charged for an org never listed cannot close.

Why: the sync accepts a contract of an unknown org with a warning (the org may simply not be listed
yet), but invoicing it would bill an org the ledger has never seen, possibly a typo of another's id.
The close asks :func:`unlisted_orgs` and refuses the month, naming the orgs and contracts, until the
org is listed or the contract's ``org_id`` is fixed.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from rafay_billing.contracts.charges import contract_periods
from rafay_billing.contracts.store import read_contracts
from rafay_billing.db import transaction
from rafay_billing.period import Period


def unlisted_orgs(conn: Any, period: Period, billing_start: date | None = None) -> dict[str, list[str]]:
    """``org_id -> contract ids`` of the current contracts that charge ``period`` for an org not in
    ``billing.org_registry``; empty when nothing blocks the close."""
    with transaction(conn), conn.cursor() as cur:
        return unlisted_orgs_in(cur, period, billing_start)


def unlisted_orgs_in(cur: Any, period: Period, billing_start: date | None = None) -> dict[str, list[str]]:
    """:func:`unlisted_orgs` on ``cur``'s connection, inside the caller's transaction (the close's)."""
    from psycopg.rows import dict_row

    with cur.connection.cursor(row_factory=dict_row) as dcur:
        contracts = read_contracts(dcur, "contracts/unlisted.sql")
    blocking: dict[str, list[str]] = {}
    for c in contracts:
        if period in contract_periods(c, period, billing_start):
            blocking.setdefault(c.org_id, []).append(c.contract_id)
    return blocking


def describe_unlisted(blocking: dict[str, list[str]], period: Period) -> str:
    """The close's refusal line for :func:`unlisted_orgs`' answer."""
    orgs = "; ".join(f"org {org!r} (contract(s) {', '.join(ids)})" for org, ids in sorted(blocking.items()))
    return (f"{period.label} cannot close: contracts charge it for orgs the pipeline has never listed: {orgs}. "
            "Fix the contract's org_id (the org's metadata.name) or wait until the org is listed.")
