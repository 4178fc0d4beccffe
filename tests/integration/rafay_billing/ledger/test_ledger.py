"""The ledger's rules at the (org, UTC day) grain, against a real PostgreSQL: impossible usage,
minor units, coverage, traceability, and the rules the schema itself enforces on hand-written SQL."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import psycopg
import pytest

from rafay_billing import db
from rafay_billing.ledger.coverage import fetch_coverage, record_failed, register_orgs, uncovered_days
from rafay_billing.ledger.load import load_org_usage
from rafay_billing.ledger.price_book import sync_price_book
from rafay_billing.ledger.rating import DaySlice, fetch_exceptions, fetch_line_items, rate_slices, rate_window
from rafay_billing.window import Window
from tests.support.landed_usage import W1, W2, usage_csv

PRICES = """\
price_id,org_id,profile_type,profile,unit,unit_price,currency,effective_from,effective_to
hour,,,vm,instance_hour,2.00,USD,2026-01-01,
gpu,,,gpu-vm,gpu_hour,1.00,USD,2026-01-01,
jpy,yen,,,instance_hour,100.5,JPY,2026-01-01,
bhd,dinar,,,instance_hour,0.0005,BHD,2026-01-01,
iqd,iraq,,,instance_hour,1.2345,IQD,2026-01-01,
"""


def record(window: Window, org_id: str, seq: int, hours: Any, *, instance_id: str = "i-1", profile: str = "vm",
           gpus: int | None = None, start: str | None = None, end: str | None = None) -> dict[str, Any]:
    return {
        "window_start": window.start_iso, "window_end": window.end_iso, "org_id": org_id,
        "organization": org_id.title(), "org_seq": 0, "record_seq": seq, "profile_type": "compute",
        "profile": profile, "instance": f"vm-{instance_id}", "instance_id": instance_id, "instance_key": instance_id,
        "status": "running", "seed_usage": str(hours), "usage_hours": Decimal(hours), "gpu_count": gpus,
        "invalid_reason": None, "record_start": start, "record_end": end,
        "source_page": f"usage-{profile}-page-0000.json", "source_index": seq,
    }


@pytest.fixture
def conn(pg_conn: psycopg.Connection) -> psycopg.Connection:
    pg_conn.autocommit = True
    db.migrate(pg_conn)
    sync_price_book(pg_conn, PRICES)
    return pg_conn


def rate(conn: psycopg.Connection, window: Window, org_id: str, rows: list[dict], run_id: str = "r"):
    load_org_usage(conn, window, org_id, usage_csv(rows), run_id, source_dir=f"file:///land/{org_id}")
    return rate_slices(conn, [DaySlice(org_id, window.start.date(), org_id.title())], run_id)


@pytest.mark.parametrize("hours", ["48", "1E+6", "1E+40", "24.02"])
def test_hours_beyond_the_day_are_usage_exceeds_window(conn: psycopg.Connection, hours: str) -> None:
    """Defect 5: 48 h, 1E+6 h and 1E+40 h in a 24 h day were billed."""
    summary = rate(conn, W1, "acme", [record(W1, "acme", 0, hours)])
    assert summary.line_items == 0 and summary.totals_by_currency == {}
    [exc] = fetch_exceptions(conn, W1)
    assert exc["reason"] == "usage_exceeds_window"
    assert "more than the 24 h of the day" in exc["detail"]


def test_a_full_day_and_rounding_tolerance_are_billed(conn: psycopg.Connection) -> None:
    summary = rate(conn, W1, "acme", [record(W1, "acme", 0, "24"), record(W1, "acme", 1, "24.009", instance_id="i-2")])
    assert summary.exceptions == 0
    assert summary.totals_by_currency == {"USD": Decimal("96.02")}  # 48.00 + 48.018 -> 48.02


def test_stop_start_segments_are_summed_and_checked_together(conn: psycopg.Connection) -> None:
    rows = [
        record(W1, "acme", 0, "5", start="2026-11-10T00:00:00Z", end="2026-11-10T05:00:00Z"),
        record(W1, "acme", 1, "7", start="2026-11-10T10:00:00Z", end="2026-11-10T17:00:00Z"),
        record(W1, "acme", 2, "20", instance_id="i-2"),
        record(W1, "acme", 3, "10", instance_id="i-2"),  # 30 h for one instance in one day
    ]
    summary = rate(conn, W1, "acme", rows)
    [item] = fetch_line_items(conn, W1)
    assert (item["instance_key"], item["usage_hours"], item["amount"]) == ("i-1", Decimal("12"), Decimal("24.00"))
    assert sorted((e["record_seq"], e["reason"]) for e in fetch_exceptions(conn, W1)) == [
        (2, "usage_exceeds_window"), (3, "usage_exceeds_window")
    ]
    assert summary.exceptions_by_reason["usage_exceeds_window"] == 2


def test_zero_gpus_on_a_gpu_hour_price_is_missing_gpu_count(conn: psycopg.Connection) -> None:
    """Defect 10: GPU=0 on a per-GPU-hour price billed 0.00 with no exception."""
    summary = rate(conn, W1, "acme", [record(W1, "acme", 0, "3", profile="gpu-vm", gpus=0)])
    assert summary.line_items == 0
    [exc] = fetch_exceptions(conn, W1)
    assert (exc["reason"], exc["detail"]) == ("missing_gpu_count", "price gpu is per gpu_hour but the GPU count is 0")


@pytest.mark.parametrize(
    ("org_id", "hours", "amount"),
    [
        ("yen", "1", "101"),  # 100.5 JPY: half-up to whole yen (was 100.50)
        ("yen", "0.5", "50"),  # 50.25
        ("dinar", "1", "0.001"),  # 0.0005 BHD: half-up to 3 decimals
        ("iraq", "1", "1.235"),  # 1.2345 IQD: 3 decimals (Babel says 0)
        ("acme", "0.0025", "0.01"),  # 0.005 USD
    ],
)
def test_amounts_are_rounded_once_to_the_currency_minor_unit(
    conn: psycopg.Connection, org_id: str, hours: str, amount: str
) -> None:
    rate(conn, W1, org_id, [record(W1, org_id, 0, hours)])
    [item] = fetch_line_items(conn, W1)
    assert str(item["amount"]) == amount


def test_coverage_says_billed_exceptions_or_failed(conn: psycopg.Connection) -> None:
    rate(conn, W1, "acme", [record(W1, "acme", 0, "10")])
    rate(conn, W1, "beta", [record(W1, "beta", 0, "10"), record(W1, "beta", 1, "99", instance_id="i-2")])
    rate(conn, W1, "gamma", [])  # listed, no usage that day: billed, nothing to charge
    record_failed(conn, [("delta", W1.start.date(), "Delta", "extraction failed: HTTP 500")], "r")
    rows = {c["org_id"]: c for c in fetch_coverage(conn, W1.start.date(), W2.start.date())}
    assert {k: v["status"] for k, v in rows.items()} == {
        "acme": "billed", "beta": "exceptions", "gamma": "billed", "delta": "failed"
    }
    assert (rows["acme"]["line_items"], rows["acme"]["usage_rows"], rows["acme"]["totals"]) == (1, 1, {"USD": "20.00"})
    assert (rows["beta"]["exceptions"], rows["beta"]["billed_run_id"]) == (1, "r")
    assert rows["delta"]["detail"] == "extraction failed: HTTP 500" and rows["delta"]["billed_run_id"] is None


def test_a_failed_retry_keeps_the_earlier_items_but_flags_the_day(conn: psycopg.Connection) -> None:
    rate(conn, W1, "acme", [record(W1, "acme", 0, "10")], "run-1")
    record_failed(conn, [("acme", W1.start.date(), "Acme", "extraction failed: timeout")], "run-2")
    [cov] = fetch_coverage(conn, W1.start.date(), W2.start.date())
    assert (cov["status"], cov["run_id"], cov["billed_run_id"]) == ("failed", "run-2", "run-1")
    assert [i["run_id"] for i in fetch_line_items(conn, W1)] == ["run-1"]  # nothing lost, nothing doubled


def test_uncovered_days_from_each_orgs_first_listing(conn: psycopg.Connection) -> None:
    register_orgs(conn, [("acme", "Acme")], date(2026, 11, 8), "r", last_day=date(2026, 11, 11))
    register_orgs(conn, [("newco", "NewCo")], date(2026, 11, 10), "r", last_day=date(2026, 11, 11))
    rate(conn, W1, "acme", [record(W1, "acme", 0, "1")])
    rate(conn, W1, "newco", [record(W1, "newco", 0, "99")])
    gaps = uncovered_days(conn, ["acme", "newco"], date(2026, 11, 1), date(2026, 11, 12))
    assert gaps == [
        ("acme", date(2026, 11, 8), "missing"), ("acme", date(2026, 11, 9), "missing"),
        ("acme", date(2026, 11, 11), "missing"),
        ("newco", date(2026, 11, 10), "exceptions"), ("newco", date(2026, 11, 11), "missing"),
    ]


def test_each_line_item_leads_to_its_records_and_raw_pages(conn: psycopg.Connection) -> None:
    rows = [record(W1, "acme", 0, "5"), record(W1, "acme", 1, "7"), record(W1, "acme", 2, "99", instance_id="i-9")]
    rate(conn, W1, "acme", rows, "run-7")
    trace = conn.execute(
        "SELECT instance_key, record_seq, source_uri, source_index FROM billing.line_item_sources"
        " ORDER BY record_seq"
    ).fetchall()
    assert trace == [
        ("i-1", 0, "file:///land/acme/usage-vm-page-0000.json", 0),
        ("i-1", 1, "file:///land/acme/usage-vm-page-0000.json", 1),
    ]
    # the exception leads to its record the same way
    [exc] = conn.execute(
        "SELECT u.source_page, u.source_index FROM billing.rating_exceptions e JOIN billing.usage_records u"
        " USING (org_id, usage_date, run_id, record_seq)"
    ).fetchall()
    assert exc == ("usage-vm-page-0000.json", 2)


ITEM = (
    "INSERT INTO billing.charge_line_items (org_id, usage_date, profile, instance_key, window_start, window_end,"
    " organization, profile_type, instance, usage_hours, pricing_unit, pricing_quantity, unit_price, currency,"
    " minor_unit, amount, price_id, run_id) VALUES ('acme', %(day)s, 'vm', 'i-1', %(ws)s, %(we)s, 'Acme', 'compute',"
    " 'vm-i-1', 1, 'instance_hour', %(q)s, 2, 'USD', 2, %(amount)s, 'hour', %(run)s)"
)


@pytest.mark.parametrize(
    ("overrides", "error", "constraint"),
    [
        ({"amount": Decimal("2.001")}, psycopg.errors.CheckViolation, "amount_rounded_once"),
        ({"q": Decimal("1.0024"), "amount": Decimal("2.00")}, None, None),
        ({"q": Decimal("1.0024"), "amount": Decimal("2.01")}, psycopg.errors.CheckViolation, "amount_rounded_once"),
        ({"we": datetime(2026, 11, 12, tzinfo=UTC)}, psycopg.errors.CheckViolation, "one_day"),
        ({"ws": datetime(2026, 11, 10, 12, tzinfo=UTC)}, psycopg.errors.CheckViolation, "one_day"),
        ({"run": "another-run"}, psycopg.errors.ForeignKeyViolation, "no landed usage record"),
    ],
)
def test_the_schema_refuses_what_hand_written_sql_gets_wrong(
    conn: psycopg.Connection, overrides: dict, error: type | None, constraint: str | None
) -> None:
    load_org_usage(conn, W1, "acme", usage_csv([record(W1, "acme", 0, "1")]), "r")
    params = {"day": W1.start.date(), "ws": W1.start, "we": W1.end, "q": Decimal(1), "amount": Decimal("2.00"),
              "run": "r", **overrides}
    if error is None:
        conn.execute(ITEM, params)
        return
    with pytest.raises(error, match=constraint):
        conn.execute(ITEM, params)


def test_rerating_one_day_twice_never_doubles(conn: psycopg.Connection) -> None:
    """Defect 1 at the core: re-billing an (org, day) replaces it, whichever run asks."""
    rows = [record(W1, "acme", 0, "24")]
    rate(conn, W1, "acme", rows, "daily")
    rate(conn, W1, "acme", rows, "two-day-window")
    load_org_usage(conn, W2, "acme", usage_csv([record(W2, "acme", 0, "24")]), "two-day-window")
    rate_window(conn, Window(W1.start, W2.end), "two-day-window")
    items = fetch_line_items(conn, Window(W1.start, W2.end))
    assert [(i["usage_date"], i["amount"], i["run_id"]) for i in items] == [
        (W1.start.date(), Decimal("48.00"), "two-day-window"), (W2.start.date(), Decimal("48.00"), "two-day-window")
    ]


def test_prices_change_only_at_midnight_utc_in_the_table_too(conn: psycopg.Connection) -> None:
    with pytest.raises(psycopg.errors.CheckViolation, match="price_book_midnight_utc"):
        conn.execute(
            "INSERT INTO billing.price_book (price_id, unit, unit_price, currency, effective_from)"
            " VALUES ('noon', 'instance_hour', 1, 'USD', '2026-11-10T12:00:00Z')"
        )
    with pytest.raises(psycopg.errors.ForeignKeyViolation, match="price_book_currency_fkey"):
        conn.execute(
            "INSERT INTO billing.price_book (price_id, unit, unit_price, currency, effective_from)"
            " VALUES ('xyz', 'instance_hour', 1, 'XYZ', '2026-11-10')"
        )


def test_on_a_fresh_ledger_the_billing_start_date_counts_new_orgs_later_do_not(conn: psycopg.Connection) -> None:
    """The first run of a deployment that starts billing on 11-08 but first runs for 11-10 must say
    11-08 and 11-09 are missing; an org first listed later is a new tenant, not a gap."""
    register_orgs(conn, [("acme", "Acme")], date(2026, 11, 10), "r1", start_floor=date(2026, 11, 8))
    register_orgs(conn, [("acme", "Acme"), ("newco", "NewCo")], date(2026, 11, 11), "r2", last_day=date(2026, 11, 11),
                  start_floor=date(2026, 11, 8))
    assert uncovered_days(conn, ["acme", "newco"], date(2026, 11, 8), date(2026, 11, 11)) == [
        ("acme", date(2026, 11, 8), "missing"), ("acme", date(2026, 11, 9), "missing"),
        ("acme", date(2026, 11, 10), "missing"),
    ]


def test_a_day_whose_exceptions_are_all_waived_counts_as_billed(conn: psycopg.Connection) -> None:
    register_orgs(conn, [("acme", "Acme")], W1.start.date(), "r")
    rate(conn, W1, "acme", [record(W1, "acme", 0, "99")])
    assert uncovered_days(conn, ["acme"], W1.start.date(), W2.start.date()) == [("acme", W1.start.date(), "exceptions")]
    conn.execute(
        "INSERT INTO billing.exception_waivers (org_id, usage_date, profile, instance_key, reason, why, waived_by)"
        " VALUES ('acme', %s, 'vm', 'i-1', 'usage_exceeds_window', 'meter fault, credited', 'finance')",
        (W1.start.date(),),
    )
    assert uncovered_days(conn, ["acme"], W1.start.date(), W2.start.date()) == []


def test_an_org_no_longer_listed_is_not_asked_for_after_its_last_listing(conn: psycopg.Connection) -> None:
    register_orgs(conn, [("acme", "Acme"), ("gone", "Gone")], date(2026, 11, 8), "r", last_day=date(2026, 11, 9))
    register_orgs(conn, [("acme", "Acme")], date(2026, 11, 10), "r", last_day=date(2026, 11, 11), full_listing=True)
    gaps = uncovered_days(conn, ["acme", "gone"], date(2026, 11, 8), date(2026, 11, 12))
    assert [(o, d.day) for o, d, _ in gaps] == [("acme", 8), ("acme", 9), ("acme", 10), ("acme", 11),
                                                ("gone", 8), ("gone", 9)]


def test_an_org_missing_from_a_limited_listing_has_not_left(conn: psycopg.Connection) -> None:
    register_orgs(conn, [("acme", "Acme"), ("beta", "Beta")], date(2026, 11, 8), "r")
    register_orgs(conn, [("acme", "Acme")], date(2026, 11, 9), "r")  # a run with conf orgs ["acme"]
    assert [(o, d.day) for o, d, _ in uncovered_days(conn, ["beta"], date(2026, 11, 8), date(2026, 11, 10))] == [
        ("beta", 8), ("beta", 9)
    ]
