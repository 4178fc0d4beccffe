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
from rafay_billing.ledger.rating import (
    HOURS_TOLERANCE,
    DaySlice,
    rate_slices,
    rating_statements,
    slices_summary,
)
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


def test_a_rating_reads_its_days_once_for_coverage_and_summary(pg_conn: psycopg.Connection) -> None:
    """The summary comes from the coverage step's own per-day reads (rating/record_coverage.sql), not
    from reading every item and usage row of the days again (rating/run_summary.sql); it is the
    summary that reading them again gives."""
    conn = pg_conn
    conn.autocommit = True
    db.migrate(conn)
    sync_price_book(conn, BOOK)
    rows = [_record(s) for s in range(3)] + [{**_record(3), "usage_hours": None, "seed_usage": "n/a",
                                              "invalid_reason": "non-numeric usage_hours: 'n/a'"}]
    load_org_usage(conn, W1, "coke", usage_csv(rows, COLUMNS), "r1")
    queries: list[str] = []
    conn.add_notice_handler(lambda diag: queries.append(diag.message_primary or ""))
    for setting in ("LOAD 'auto_explain'", "SET auto_explain.log_min_duration = 0",
                    "SET auto_explain.log_level = notice"):
        conn.execute(setting)
    slices = [DaySlice("coke", W1.single_day(), "COKE")]
    summary = rate_slices(conn, slices, "r1")
    conn.execute("RESET auto_explain.log_min_duration")
    header = db.sql("rating/run_summary.sql").splitlines()[0]
    assert queries and not [q for q in queries if header in q]
    assert summary == slices_summary(conn, slices, "r1")
    assert (summary.usage_rows, summary.line_items, summary.exceptions) == (4, 3, 1)
    assert summary.totals_by_currency == {"USD": Decimal("0.72")}
