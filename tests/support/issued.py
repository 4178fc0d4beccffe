"""A billing database with a closed period and issued documents, made by the real loader, rater and
close (as ``test_periods.py`` does): four invoices of October 2026 in three currencies."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from rafay_billing import db
from rafay_billing.ledger.coverage import register_orgs
from rafay_billing.ledger.load import load_org_usage
from rafay_billing.ledger.price_book import sync_price_book
from rafay_billing.ledger.rating import DaySlice, rate_slices
from rafay_billing.period import Period
from rafay_billing.periods.close import close_period
from rafay_billing.window import Window
from tests.support.landed_usage import usage_csv

PRICES = """\
price_id,org_id,profile_type,profile,unit,unit_price,currency,effective_from,effective_to
vm,,,vm,instance_hour,0.015,USD,2026-01-01,
gpu,,,gpu-vm,gpu_hour,1.25,EUR,2026-01-01,
zurich,zurich,,,instance_hour,3.10,CHF,2026-01-01,
"""
OCTOBER = Period(date(2026, 10, 1))
DAYS = [date(2026, 10, 30), date(2026, 10, 31)]
NAMES = {"acme": "Acme", "globex": "Globex <script>", "zurich": "Zürich AG"}
USAGE = {
    "acme": [("vm", "a1", "1", None), ("vm", "a2", "1.5", None), ("gpu-vm", "g1", "2.5", 2)],
    "globex": [("vm", "x1", "7.25", None)],
    "zurich": [("vm", "z1", "24", None)],
}


def _usage(day: date, org_id: str, instances: list[tuple[str, str, str, int | None]]) -> list[dict[str, Any]]:
    window = Window.for_day(day)
    return [
        {
            "window_start": window.start_iso, "window_end": window.end_iso, "org_id": org_id,
            "organization": NAMES[org_id], "org_seq": 0, "record_seq": seq, "profile_type": "compute",
            "profile": profile, "instance": f"vm-{iid}", "instance_id": iid, "instance_key": iid,
            "status": "running", "seed_usage": hours, "usage_hours": Decimal(hours), "gpu_count": gpus,
            "invalid_reason": None, "record_start": None, "record_end": None,
            "source_page": f"usage-{profile}-page-0000.json", "source_index": seq,
        }
        for seq, (profile, iid, hours, gpus) in enumerate(instances)
    ]


def close_october(conn: Any, issuer: str = "ACME") -> list[Any]:
    """Migrate, bill October's last two days for three orgs and close October; returns its invoices."""
    conn.autocommit = True
    db.migrate(conn)
    sync_price_book(conn, PRICES)
    register_orgs(conn, list(NAMES.items()), DAYS[0], "r", last_day=date(2026, 11, 30))
    slices = []
    for org_id, instances in USAGE.items():
        for day in DAYS:
            load_org_usage(conn, Window.for_day(day), org_id, usage_csv(_usage(day, org_id, instances)), "r")
            slices.append(DaySlice(org_id, day, NAMES[org_id]))
    rate_slices(conn, slices, "r")
    result = close_period(conn, OCTOBER, actor="test", issuer=issuer, now=datetime(2026, 12, 1, 1, tzinfo=UTC))
    return list(result.invoices)
