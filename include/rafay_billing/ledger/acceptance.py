"""An operator's acceptance of a held, shrunken re-read (issue 21, rule 2): ``rafay-billing accept-shrink``.

Why a module of its own: accepting rates the day (it uses the rating), while the guard itself runs
inside the rating; keeping them apart keeps the rating and the guard free of a loop.
"""

from __future__ import annotations

import json
import logging
from datetime import date
from typing import Any

from rafay_billing.db import sql, transaction
from rafay_billing.ledger.guards import GuardError
from rafay_billing.ledger.rating import DaySlice, RatingSummary, rate_slices

log = logging.getLogger(__name__)


def accept_shrink(conn: Any, org_id: str, day: date, run_id: str, reason: str, actor: str,
                  billing_start: date | None = None) -> RatingSummary:
    """Rate ``org_id``'s ``day`` from ``run_id``'s held extraction, as an operator decided, in one
    transaction with its audit entry. A closed day gets corrections, as any re-rating does.
    ``billing_start``: reservations cover usage from that day on, as in the DAG's rating.

    Refused when the run has no extraction of the day, when its extraction is older than the one the
    day holds (a later read was rated since: accepting it would go back in time), or without a reason.
    """
    if not reason or not reason.strip():
        raise GuardError("accept-shrink needs --reason: say why the smaller usage is right (it is audited)")
    where = f"org {org_id}, day {day.isoformat()}, run {run_id}"
    with transaction(conn), conn.cursor() as cur:
        cur.execute(sql("rating/lock.sql"), {"lock_keys": [f"rating|{org_id}|{day.isoformat()}"]})
        cur.execute(sql("guards/held_extraction.sql"), {"org_id": org_id, "usage_date": day, "run_id": run_id})
        row = cur.fetchone()
        if row is None:
            raise GuardError(f"{where}: the run landed no extraction of that day (see billing.extractions)")
        seq, status, records, hours, accepted_at, rated_seq, current_seq, organization = row
        if rated_seq == seq:
            raise GuardError(f"{where}: extraction {seq} is the one the day holds already; nothing to accept")
        if current_seq is not None and seq < current_seq:
            raise GuardError(
                f"{where}: extraction {seq} is older than the day's current read (extraction {current_seq}); "
                "nothing to accept (read the day again if its usage is wrong)"
            )
        cur.execute(sql("guards/accept.sql"), {"extraction_seq": seq, "actor": actor, "reason": reason.strip()})
        cur.execute(sql("audit/record.sql"), {
            "action": "accept_shrink", "actor": actor, "period_start": day.replace(day=1), "org_id": org_id,
            "usage_date": day,
            "detail": json.dumps({"run_id": run_id, "extraction_seq": seq, "replaces_extraction_seq": rated_seq,
                                  "status": status, "records": records, "instance_hours": str(hours),
                                  "reason": reason.strip()}),
        })
        summary = rate_slices(conn, [DaySlice(org_id, day, organization or org_id)], run_id,
                              billing_start=billing_start)
    log.warning("%s: shrunken extraction %d accepted by %s (%s) and rated: %s", where, seq, actor, reason, summary)
    return summary
