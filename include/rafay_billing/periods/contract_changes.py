"""A contracts sync whose reservation changes reach the days they cover (issue 22, rules 2 and 7).

Why: coverage is decided when a day is rated. A reservation added, moved or ended after its days were
rated would otherwise leave them as they were: an open month's days priced on demand under a
reservation (its fee charged on top), or, accepted retroactively, a closed month whose fee is corrected
while its usage stays billed in full, the same hours paid twice. So every billed (org, day) that an
added or changed reservation's old or new term meets is rated again here, from the usage that billed
it, in the sync's own transaction: open days are replaced, closed days get their coverage corrections
in the earliest open period, exactly like usage corrections; an unchanged day writes nothing. A failure
leaves the contracts as they were, so a retry sees the same change again.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date
from typing import Any

from rafay_billing.contracts.sync import ContractSyncResult, ReservedSpan, sync_contracts
from rafay_billing.db import sql, transaction
from rafay_billing.ledger.rating import Correction, rate_slices
from rafay_billing.ledger.slices import DaySlice

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ContractChanges:
    """A sync's result and the re-rating it caused."""

    sync: ContractSyncResult
    rerated_days: int = 0
    corrections: tuple[Correction, ...] = ()

    def __str__(self) -> str:
        text = str(self.sync)
        if self.rerated_days:
            text += (f"; {self.rerated_days} billed (org, day)(s) under changed reservations rated again, "
                     f"{len(self.corrections)} of closed months corrected in the earliest open period")
        return text


def reserved_days(cur: Any, spans: tuple[ReservedSpan, ...], billing_start: date | None) -> dict[str, list[DaySlice]]:
    """The billed (org, day)s the spans meet, by the run whose usage billed them."""
    cur.execute(sql("periods/reserved_billed_days.sql"), {
        "org_ids": [s.org_id for s in spans], "starts": [s.start for s in spans], "ends": [s.end for s in spans],
        "billing_start": billing_start})
    by_run: dict[str, list[DaySlice]] = {}
    for run_id, org_id, day, name in cur.fetchall():
        by_run.setdefault(run_id, []).append(DaySlice(org_id, day, name))
    return by_run


def sync_and_rerate(conn: Any, text: str | bytes, *, allow_retroactive: bool = False, actor: str = "contracts-sync",
                    billing_start: date | None = None) -> ContractChanges:
    """:func:`~rafay_billing.contracts.sync.sync_contracts`, then every billed day an added or changed
    reservation's old or new term meets rated again, all in one transaction. Raises what the sync
    raises, with nothing written."""
    with transaction(conn):
        result = sync_contracts(conn, text, allow_retroactive=allow_retroactive, actor=actor,
                                billing_start=billing_start)
        if not result.reserved_spans:
            return ContractChanges(result)
        with conn.cursor() as cur:
            by_run = reserved_days(cur, result.reserved_spans, billing_start)
        corrections: list[Correction] = []
        for run_id, slices in sorted(by_run.items()):
            summary = rate_slices(conn, slices, run_id, billing_start=billing_start)
            corrections.extend(summary.corrections)
    changes = ContractChanges(result, sum(len(s) for s in by_run.values()), tuple(corrections))
    if changes.rerated_days:
        log.info("Reservations changed: %d billed (org, day)(s) rated again; corrections of closed days: %s",
                 changes.rerated_days, ", ".join(f"{c.org_id} {c.usage_date}" for c in corrections) or "none")
    return changes
