"""How a new read of an (org, day) compares with the usage that billed it (Rafay aggregates with a lag,
so a day read again can differ): the close's late-usage check and the guard's confirmation use it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

from rafay_billing.db import sql, transaction


@dataclass(frozen=True)
class UsageChange:
    """How a new read of an (org, day) compares with the usage that billed it."""

    org_id: str
    usage_date: date
    billed_run_id: str | None
    old_records: int
    old_hours: Decimal
    new_records: int
    new_hours: Decimal
    changed: bool

    def __str__(self) -> str:
        if self.billed_run_id is None:
            return f"{self.org_id} {self.usage_date}: not billed before; {self.new_records} records, {self.new_hours} h"
        state = "changed" if self.changed else "unchanged"
        return (f"{self.org_id} {self.usage_date}: usage {state}: {self.old_records} -> {self.new_records} records, "
                f"{self.old_hours} -> {self.new_hours} h (billed by run {self.billed_run_id})")


def usage_changes(conn: Any, slices: Sequence[tuple[str, date]], run_id: str) -> list[UsageChange]:
    """Compare the usage ``run_id`` landed for each (org_id, day) with the usage that billed it
    (``billing.coverage.billed_run_id``): Rafay aggregates with a lag, so a day read again can differ."""
    if not slices:
        return []
    params = {"org_ids": [o for o, _ in slices], "usage_dates": [d for _, d in slices], "run_id": run_id}
    with transaction(conn), conn.cursor() as cur:
        cur.execute(sql("periods/usage_changes.sql"), params)
        return [UsageChange(*row) for row in cur.fetchall()]
