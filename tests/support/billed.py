"""A billing database with rated days, built through the real loader and rater (no hand-written
line items: the ledger's triggers refuse those): for the Billing view's and the money table's tests."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from rafay_billing import db
from rafay_billing.ledger.load import load_org_usage
from rafay_billing.ledger.price_book import sync_price_book
from rafay_billing.ledger.rating import DaySlice, rate_slices
from rafay_billing.window import Window
from tests.support.landed_usage import usage_csv

PRICE_BOOK = """\
price_id,org_id,profile_type,profile,unit,unit_price,currency,effective_from,effective_to
cpu,,compute,cpu-vm,instance_hour,0.12,USD,2026-01-01,
h100,,compute,h100-vm,gpu_hour,2.75,USD,2026-01-01,
a100-eur,eurorg1,compute,a100-vm,gpu_hour,1.90,EUR,2026-01-01,
"""


@dataclass(frozen=True)
class Usage:
    """One usage record: ``profile`` is cpu-vm (instance-hour), h100-vm or a100-vm (GPU-hour), or
    ``nope-vm`` (no price: an ``unpriced`` exception)."""

    org_id: str
    day: date
    profile: str
    instance: str
    hours: str
    gpus: int | None = None


def _rows(org_id: str, name: str, org_seq: int, window: Window, usage: list[Usage]) -> list[dict[str, Any]]:
    rows = []
    for seq, u in enumerate(usage):
        rows.append({
            "window_start": window.start_iso, "window_end": window.end_iso, "org_id": org_id, "organization": name,
            "org_seq": org_seq, "record_seq": seq, "profile_type": "compute", "profile": u.profile,
            "instance": u.instance, "instance_id": f"id-{u.instance}", "instance_key": f"id-{u.instance}",
            "status": "running", "seed_usage": u.hours, "usage_hours": Decimal(u.hours), "gpu_count": u.gpus,
            "invalid_reason": None, "record_start": None, "record_end": None, "source_page": None,
            "source_index": None,
        })
    return rows


def bill(conn: Any, usage: list[Usage], run_id: str, names: dict[str, str] | None = None,
         price_book: str = PRICE_BOOK) -> None:
    """Migrate, sync the price book, land and rate every (org, day) of ``usage`` as run ``run_id``."""
    conn.autocommit = True
    db.migrate(conn)
    sync_price_book(conn, price_book)
    names = names or {}
    slices = []
    keys = sorted({(u.org_id, u.day) for u in usage})
    seqs = {org: i for i, org in enumerate(sorted({k[0] for k in keys}))}
    for org_id, day in keys:
        window = Window(datetime(day.year, day.month, day.day, tzinfo=UTC),
                        datetime(day.year, day.month, day.day, tzinfo=UTC) + timedelta(days=1))
        name = names.get(org_id, org_id.upper())
        rows = _rows(org_id, name, seqs[org_id], window, [u for u in usage if (u.org_id, u.day) == (org_id, day)])
        load_org_usage(conn, window, org_id, usage_csv(rows), run_id)
        slices.append(DaySlice(org_id, day, name))
    rate_slices(conn, slices, run_id)
