"""Reservation coverage stays proportional to the reserved usage, whatever the statistics say (issue 25, 3).

The coverage step runs over this transaction's stage (``pg_temp.rated_days``, no statistics when it is
read) and over exceptions just written (stale statistics). Each statement's plan is read back as the
server ran it (``auto_explain`` at NOTICE level, with ANALYZE) during a real ``rate_slices``: a re-rating
of many orgs' days, one of which has a reservation, so the stage holds every org's items.
"""

from __future__ import annotations

import json
import re
from datetime import date
from decimal import Decimal
from typing import Any

import psycopg
import pytest

from rafay_billing import db
from rafay_billing.contracts.source import COLUMNS as CONTRACT_COLUMNS
from rafay_billing.contracts.sync import sync_contracts
from rafay_billing.ledger.coverage import register_orgs
from rafay_billing.ledger.load import load_org_usage
from rafay_billing.ledger.price_book import sync_price_book
from rafay_billing.ledger.rating import DaySlice, rate_slices
from rafay_billing.window import Window
from tests.support.landed_usage import COLUMNS as LEGACY_COLUMNS
from tests.support.landed_usage import usage_csv

DAY = date(2026, 11, 10)
W = Window.for_day(DAY)
COLUMNS = [*LEGACY_COLUMNS, "dimensions", "labels"]
ORGS = [f"o{n:02d}" for n in range(12)]
RESERVED = "o00"
PER_ORG = 60  # 40 H100 records (one in ten unusable: a whole-record exception), 20 cpu-vm records
BOOK = """\
price_id,org_id,profile_type,profile,unit,unit_price,currency,effective_from,effective_to,dimension
h100,,compute,h100-vm,gpu_hour,2.75,USD,2026-01-01,,
cpu,,compute,cpu-vm,instance_hour,0.12,USD,2026-01-01,,
"""


def _record(org: str, seq: int) -> dict[str, Any]:
    h100 = seq < 40
    invalid = h100 and seq % 10 == 9
    return {
        "window_start": W.start_iso, "window_end": W.end_iso, "org_id": org, "organization": org.upper(),
        "org_seq": 0, "record_seq": seq, "profile_type": "compute", "profile": "h100-vm" if h100 else "cpu-vm",
        "instance": f"i{seq}", "instance_id": f"id-{seq}", "instance_key": f"id-{seq}", "status": "running",
        "seed_usage": "n/a" if invalid else "6", "usage_hours": None if invalid else Decimal(6),
        "gpu_count": 8 if h100 else None, "invalid_reason": "non-numeric usage_hours: 'n/a'" if invalid else None,
        "record_start": "2026-11-10T06:00:00Z", "record_end": "2026-11-10T12:00:00Z", "source_page": None,
        "source_index": None, "dimensions": json.dumps({}), "labels": json.dumps({}),
    }


@pytest.fixture
def plans(pg_conn: psycopg.Connection) -> dict[str, str]:
    """The plans of the second (re-)rating of every org's day, keyed by SQL file name."""
    conn = pg_conn
    conn.autocommit = True
    db.migrate(conn)
    sync_price_book(conn, BOOK)
    register_orgs(conn, [(o, o.upper()) for o in ORGS], DAY, "r", last_day=DAY)
    # 10 x 8 GPUs reserved: 480 GPU-hours of the 36 x 48 the reserved org uses (some items split, some not)
    sync_contracts(conn, "\n".join([",".join(CONTRACT_COLUMNS),
                                    f"r-1,{RESERVED},reservation,,h100-vm,gpu_hour,80,1.50,,USD,,2026-11-01,,,,"]) + "\n")
    for org in ORGS:
        load_org_usage(conn, W, org, usage_csv([_record(org, s) for s in range(PER_ORG)], COLUMNS), "r1")
    slices = [DaySlice(o, DAY, o.upper()) for o in ORGS]
    rate_slices(conn, slices, "r1")
    notices: list[str] = []
    conn.add_notice_handler(lambda diag: notices.append(diag.message_primary or ""))
    for setting in ("LOAD 'auto_explain'", "SET auto_explain.log_min_duration = 0",
                    "SET auto_explain.log_analyze = on", "SET auto_explain.log_level = notice",
                    "SET auto_explain.log_nested_statements = on"):
        conn.execute(setting)
    rate_slices(conn, slices, "r1")  # a re-rating: the stage holds all twelve orgs' items
    conn.execute("RESET auto_explain.log_min_duration")
    names = {" ".join(p.read_text(encoding="utf-8").split())[:150]: p.relative_to(p.parents[1]).as_posix()
             for p in db.SQL_DIR.joinpath("reservations").iterdir()}  # type: ignore[attr-defined]
    found: dict[str, str] = {}
    for text in notices:
        query = text.split("Query Text:", 1)[-1]
        key = " ".join(query.split())[:150]
        for start, name in names.items():
            if key.startswith(start[:120]):
                found[name] = text
    return found


def _stage_rows_read(plan: str) -> int:
    """Rows the scan of the stage (pg_temp.rated_days) passed on."""
    rows = [int(m) for m in re.findall(r"Seq Scan on rated_days r\s+\(cost=[^)]*\)\s+\(actual time=[\d.]+\.\.[\d.]+ "
                                       r"rows=(\d+)", plan)]
    assert rows, plan
    return max(rows)


def test_the_in_term_hours_read_the_new_exceptions_once_hashed(plans: dict[str, str]) -> None:
    """Not a loop over every exception of the slices for each record (28M comparisons for 20 orgs)."""
    plan = plans["reservations/record_hours.sql"]
    assert "hashed SubPlan" in plan, plan
    assert "Anti Join" not in plan, plan


def test_the_coverage_statements_read_only_the_reserved_orgs_items_of_the_stage(plans: dict[str, str]) -> None:
    """The stage holds every re-rated org's items; the coverage step joins only the reserved org's."""
    reserved_items = 40 + 20  # at most one on-demand item per record of the reserved org, plus its parts
    for name in ("reservations/stage_items.sql", "reservations/insert_covered_parts.sql",
                 "reservations/remove_covered_items.sql", "reservations/reduce_on_demand.sql"):
        assert _stage_rows_read(plans[name]) <= reserved_items * 2, (name, plans[name])


def test_a_covered_part_is_built_by_one_call_per_part(plans: dict[str, str]) -> None:
    """``(jsonb_populate_record(...)).*`` calls the function once per column; a LATERAL call once per part."""
    plan = plans["reservations/insert_covered_parts.sql"]
    assert "Function Scan on jsonb_populate_record" in plan, plan
