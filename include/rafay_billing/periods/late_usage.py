"""Late usage: the orgs the close expects usage of (a new read is compared with the billed usage by
``rafay_billing.ledger.usage_changes``)."""

from __future__ import annotations

from datetime import date
from typing import Any

from rafay_billing.db import sql, transaction


def registry_orgs(conn: Any, day: date) -> dict[str, tuple[str, date]]:
    """``{org_id: (organization, first_listed_date)}`` of the orgs the ledger expects usage of by ``day``."""
    with transaction(conn), conn.cursor() as cur:
        cur.execute(sql("periods/registry_orgs.sql"), {"day": day})
        return {org_id: (name, first) for org_id, name, first in cur.fetchall()}
