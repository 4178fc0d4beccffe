"""The shape of rating's plan where it decides the cost of a million-row day (issue 25, target 3).

Read with EXPLAIN over a real PostgreSQL, the statement exactly as ``rate_slices`` runs it; the
figures are ``bench/bench_rating.py``'s.
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import psycopg

from rafay_billing import db
from rafay_billing.ledger.load import load_org_usage
from rafay_billing.ledger.price_book import sync_price_book
from rafay_billing.ledger.rating import HOURS_TOLERANCE, rating_statements
from tests.support.landed_usage import COLUMNS, W1, usage_csv

BOOK = """\
price_id,org_id,profile_type,profile,unit,unit_price,currency,effective_from,effective_to
cpu,,compute,cpu-vm,instance_hour,0.12,USD,2026-01-01,
"""


def _record(seq: int) -> dict[str, Any]:
    return {
        "window_start": W1.start_iso, "window_end": W1.end_iso, "org_id": "coke", "organization": "COKE",
        "org_seq": 0, "record_seq": seq, "profile_type": "compute", "profile": "cpu-vm", "instance": f"i{seq}",
        "instance_id": f"id-{seq}", "instance_key": f"id-{seq}", "status": "running", "seed_usage": "2",
        "usage_hours": Decimal(2), "gpu_count": None, "invalid_reason": None, "record_start": None,
        "record_end": None, "source_page": None, "source_index": None,
    }


def test_the_billable_rows_are_not_copied_into_a_second_work_table(pg_conn: psycopg.Connection) -> None:
    """rate_days.sql materializes the classified rows once (``rated``, read by both inserts); the
    billable ones are read from it, not written again into a ``billable`` work table (a million wide
    rows copied once more: 6 % of the first rating's CPU, measured)."""
    conn = pg_conn
    conn.autocommit = True
    db.migrate(conn)
    sync_price_book(conn, BOOK)
    load_org_usage(conn, W1, "coke", usage_csv([_record(s) for s in range(3)], COLUMNS), "r1")
    statements = dict(rating_statements(into_stage=False))
    params = {"org_ids": ["coke"], "usage_dates": [W1.single_day()], "run_id": "r1",
              "hours_tolerance": HOURS_TOLERANCE, "safe_times": False}
    conn.autocommit = False
    with conn.transaction(force_rollback=True), conn.cursor() as cur:
        cur.execute(db.sql("rating/create_stage.sql"))
        cur.execute(statements["rating/stage_prices.sql"], params)
        cur.execute(psycopg.sql.SQL("EXPLAIN (FORMAT JSON) ") + statements["rating/rate_days.sql"], params)
        plan = json.dumps(cur.fetchone()[0])
    assert "CTE rated" in plan
    assert "CTE billable" not in plan
