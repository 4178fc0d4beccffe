"""Issue 21's rating and price-book rules, each against a real PostgreSQL: what the ledger must not bill
twice, or leave unbilled, because of how the usage or the price book looks.

Usage is landed as the extraction writes it (the CSV is built here), then rated; amounts are written out.
"""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal
from typing import Any

import psycopg
import pytest

from rafay_billing import db
from rafay_billing.ledger.load import load_org_usage
from rafay_billing.ledger.price_book import PriceBookError, parse_price_book, sync_price_book
from rafay_billing.ledger.rating import DaySlice, fetch_line_items, rate_slices
from rafay_billing.window import Window
from tests.support.landed_usage import COLUMNS as LEGACY_COLUMNS
from tests.support.landed_usage import usage_csv

DAY = date(2026, 11, 10)
W = Window.for_day(DAY)
OCT = date(2026, 10, 31)
COLUMNS = [*LEGACY_COLUMNS, "dimensions", "labels"]
HEADER = ("price_id,org_id,profile_type,profile,unit,unit_price,currency,effective_from,effective_to,"
          "dimension,label_key,label_value\n")


def record(seq: int, instance: str, hours: str, *, day: date = DAY, org: str = "acme", profile: str = "vm",
           ptype: str = "compute", dims: dict[str, str | None] | None = None, labels: dict[str, str] | None = None,
           gpu: int | None = None, start: str | None = None, end: str | None = None,
           instance_id: str | None = None) -> dict[str, Any]:
    window = Window.for_day(day)
    key = instance_id or f"id-{instance}"
    return {
        "window_start": window.start_iso, "window_end": window.end_iso, "org_id": org, "organization": org.title(),
        "org_seq": 0, "record_seq": seq, "profile_type": ptype, "profile": profile, "instance": instance,
        "instance_id": key, "instance_key": key, "status": "running", "seed_usage": hours,
        "usage_hours": Decimal(hours), "gpu_count": gpu, "invalid_reason": None,
        "record_start": start, "record_end": end,
        "dimensions": json.dumps(dims or {}), "labels": json.dumps(labels or {}),
    }


@pytest.fixture
def conn(pg_conn: psycopg.Connection) -> psycopg.Connection:
    pg_conn.autocommit = True
    db.migrate(pg_conn)
    return pg_conn


def rate(conn: psycopg.Connection, rows: list[dict], run_id: str = "r1", org: str = "acme", day: date = DAY):
    load_org_usage(conn, Window.for_day(day), org, usage_csv(rows, COLUMNS), run_id)
    return rate_slices(conn, [DaySlice(org, day, org.title())], run_id)


def items(conn: psycopg.Connection, day: date = DAY) -> dict[tuple[str, str], dict]:
    return {(i["instance"], i["dimension"]): i for i in fetch_line_items(conn, Window.for_day(day))}


def exceptions(conn: psycopg.Connection, day: date = DAY) -> set[tuple]:
    return set(conn.execute(
        "SELECT instance, dimension, reason FROM billing.rating_exceptions WHERE usage_date = %s", (day,)
    ).fetchall())


def details(conn: psycopg.Connection, reason: str) -> list[str]:
    return [d for (d,) in conn.execute(
        "SELECT detail FROM billing.rating_exceptions WHERE reason = %s ORDER BY record_seq, dimension", (reason,))]


def close(conn: psycopg.Connection, start: str, end: str) -> None:
    conn.execute("INSERT INTO billing.billing_periods (period_start, period_end, closed_by) VALUES (%s, %s, 'test')",
                 (start, end))


# --- rule 5: an unchanged closed day writes nothing, zero items included ------------------------------


def test_rule5_rerating_an_unchanged_closed_day_with_zero_items_writes_nothing(conn) -> None:
    sync_price_book(conn, HEADER + "vm,,,vm,instance_hour,2.00,USD,2026-01-01,,,,\n"
                                   "free,,,free-vm,instance_hour,0,USD,2026-01-01,,,,\n")
    rows = [record(0, "idle", "0", day=OCT), record(1, "busy", "10", day=OCT),
            record(2, "gratis", "5", day=OCT, profile="free-vm")]
    rate(conn, rows, "oct", day=OCT)
    close(conn, "2026-10-01", "2026-11-01")
    before = conn.execute("SELECT count(*) FROM billing.charge_line_items").fetchone()[0]
    for run in ("again-1", "again-2"):
        summary = rate(conn, rows, run, day=OCT)
        assert summary.corrections == ()
    assert conn.execute("SELECT count(*) FROM billing.charge_line_items").fetchone()[0] == before
    assert conn.execute("SELECT count(*) FROM billing.charge_line_items WHERE charge_class = 'correction'"
                        ).fetchone()[0] == 0
    assert conn.execute("SELECT count(*) FROM billing.audit_log WHERE action = 'correction'").fetchone()[0] == 0
    # a real change is still corrected, and only once
    rows[1] = record(1, "busy", "12", day=OCT)
    assert len(rate(conn, rows, "fix", day=OCT).corrections) == 1
    assert rate(conn, rows, "fix-again", day=OCT).corrections == ()


# --- rule 8: a dimension price never hides an unpriced instance ---------------------------------------


def test_rule8_instance_hours_need_an_instance_price_whatever_dimensions_are_priced(conn) -> None:
    sync_price_book(conn, HEADER + "disk,,,,dimension_hour,0.0001,USD,2026-01-01,,Disk,,\n"
                                   "vm,,,vm,instance_hour,1.00,USD,2026-01-01,,,,\n"
                                   "free,,,free-vm,instance_hour,0,USD,2026-01-01,,,,\n")
    summary = rate(conn, [
        record(0, "priced", "10", dims={"disk": "1000"}),
        record(1, "unpriced", "10", profile="other-vm", dims={"disk": "1000"}),
        record(2, "free", "10", profile="free-vm", dims={"disk": "1000"}),
    ])
    got = items(conn)
    assert got[("priced", "")]["amount"] == Decimal("10.00") and got[("priced", "Disk")]["amount"] == Decimal("0.10")
    assert got[("free", "")]["amount"] == Decimal("0.00")  # unit_price 0: explicitly free, billed at 0
    assert ("unpriced", "") not in got
    assert exceptions(conn) == {("unpriced", "", "unpriced")}
    assert summary.exceptions_by_reason["unpriced"] == 1
    assert conn.execute("SELECT status FROM billing.coverage").fetchone()[0] == "exceptions"


# --- rule 6: a label a price row names is an identity, whatever its value looks like ------------------


def test_rule6_a_numeric_label_named_by_a_price_row_is_an_identity_label(conn) -> None:
    sync_price_book(conn, HEADER + "vm,,,vm,instance_hour,1.50,USD,2026-01-01,,,,\n"
                                   "contract,,,vm,instance_hour,1.10,USD,2026-01-01,,,Contract ID,1001\n"
                                   "cpu,,,vm,dimension_hour,0.01,USD,2026-01-01,,CPU,,\n")
    # as the extraction lands them: every label's text in labels, numeric ones also as a quantity
    rate(conn, [
        record(0, "contracted", "10", labels={"Contract ID": "1001", "CPU": "4", "Team": "ml"},
               dims={"contract id": "10010", "cpu": "40"}),
        record(1, "other", "10", labels={"Contract ID": "1002", "CPU": "4"}, dims={"contract id": "10020", "cpu": "40"}),
    ])
    got = items(conn)
    assert got[("contracted", "")]["price_id"] == "contract" and got[("contracted", "")]["amount"] == Decimal("11.00")
    assert got[("other", "")]["price_id"] == "vm"
    assert set(got) == {("contracted", ""), ("contracted", "CPU"), ("other", ""), ("other", "CPU")}  # never 1001 x h
    # the identity label stays on every item (and so in FOCUS Tags); CPU, a quantity no row names, does not
    assert json.loads(got[("contracted", "CPU")]["labels"]) == {"Contract ID": "1001", "Team": "ml"}
    assert json.loads(got[("other", "")]["labels"]) == {"Contract ID": "1002"}
    assert exceptions(conn) == set()


def test_rule6_the_sync_refuses_a_name_used_as_label_key_and_dimension(conn) -> None:
    book = HEADER + ("vm,,,vm,instance_hour,1.50,USD,2026-01-01,,,,\n"
                     "c1,,,vm,instance_hour,1.10,USD,2026-01-01,,,Contract ID,1001\n"
                     "c2,,,vm,dimension_hour,0.10,USD,2026-01-01,,contract id,,\n")
    with pytest.raises(PriceBookError) as err:
        sync_price_book(conn, book)
    problems = dict(err.value.problems)
    assert "dimension 'contract id'" in problems[4] and "label_key on line(s) 3" in problems[4]
    assert conn.execute("SELECT count(*) FROM billing.price_book").fetchone()[0] == 0


# --- rule 7: an instance's GPU-hours are priced once ---------------------------------------------------


def test_rule7_a_gpu_hour_price_and_a_gpu_dimension_price_make_the_instance_ambiguous(conn) -> None:
    """The sync refuses such a pair (below); rating still refuses it in a table it did not write (rows
    inserted by hand, or synced before the sync refused every such pair)."""
    sync_price_book(conn, HEADER + "acme-gpu,acme,,gpu-box,gpu_hour,2.00,USD,2026-01-01,,,,\n"
                                   "cpu-dim,,,,dimension_hour,0.01,USD,2026-01-01,,CPU,,\n"
                                   "vm,,,vm,instance_hour,1.00,USD,2026-01-01,,,,\n")
    conn.execute("INSERT INTO billing.price_book (price_id, unit, unit_price, currency, effective_from, dimension)"
                 " VALUES ('gpu-dim', 'dimension_hour', 0.50, 'USD', '2026-01-01', 'GPU')")
    summary = rate(conn, [
        record(0, "box", "10", profile="gpu-box", gpu=8, dims={"gpu": "80", "cpu": "320"}),
        record(1, "vm", "10", dims={"gpu": "10", "cpu": "40"}),  # instance_hour: its GPU dimension bills once
    ])
    got = items(conn)
    assert not [k for k in got if k[0] == "box"]  # nothing of it billed
    assert set(got) == {("vm", ""), ("vm", "GPU"), ("vm", "CPU")}
    assert exceptions(conn) == {("box", "", "ambiguous_price")}
    [detail] = details(conn, "ambiguous_price")
    assert "acme-gpu" in detail and "gpu-dim" in detail
    assert summary.exceptions_by_reason["ambiguous_price"] == 1


def test_rule7_the_sync_refuses_the_plain_case_naming_both_lines() -> None:
    with pytest.raises(PriceBookError) as err:
        parse_price_book(HEADER + "g1,acme,compute,gpu-box,gpu_hour,2.00,USD,2026-01-01,,,,\n"
                                  "ok,acme,compute,gpu-box,dimension_hour,0.5,USD,2026-01-01,,CPU,,\n"
                                  "g2,acme,compute,gpu-box,dimension_hour,0.5,USD,2026-06-01,,gpu,,\n")
    problems = dict(err.value.problems)
    assert set(problems) == {4} and "'g2'" in problems[4] and "'g1' (line 2)" in problems[4]
    # no common day, or no instance both can apply to, is accepted
    assert parse_price_book(HEADER + "g1,acme,compute,gpu-box,gpu_hour,2.00,USD,2026-01-01,2026-06-01,,,\n"
                                     "g2,acme,compute,gpu-box,dimension_hour,0.5,USD,2026-06-01,,GPU,,\n"
                                     "g3,globex,,gpu-box,dimension_hour,0.5,USD,2026-01-01,,GPU,,\n")


def test_rule7_the_sync_refuses_a_gpu_price_and_a_gpu_dimension_price_of_different_scopes(conn) -> None:
    """The contract: "two rows pricing the same quantity (a gpu_hour row and a GPU dimension row) are refused
    by the sync", not only when org, profile type, profile and label are the same: every org's list price per
    GPU-hour and one org's GPU dimension rate both apply to that org's instances, which rating would leave
    unbilled (ambiguous_price)."""
    book = HEADER + ("gpu-list,,,gpu-box,gpu_hour,2.00,USD,2026-01-01,,,,\n"
                     "acme-gpu,acme,,gpu-box,dimension_hour,1.80,USD,2026-01-01,,GPU,,\n")
    with pytest.raises(PriceBookError) as err:
        sync_price_book(conn, book)
    [(line, message)] = err.value.problems
    assert line == 3 and "'acme-gpu'" in message and "'gpu-list' (line 2)" in message
    assert "org_id='acme', profile_type=any, profile='gpu-box'" in message and "from 2026-01-01" in message
    assert "billed twice" in message and "keep one of them" in message
    assert conn.execute("SELECT count(*) FROM billing.price_book").fetchone()[0] == 0


# a gpu_hour or gpu_month row (first) and a GPU dimension row (second) that some instance can match on a common day
SAME_GPU_HOURS = [
    # an org's GPU price and a GPU dimension price for everything
    ("g,acme,compute,gpu-box,gpu_hour,2.00,USD,2026-01-01,,,,", "d,,,,dimension_hour,0.50,USD,2026-01-01,,gpu,,"),
    # each names another part: acme's instances of gpu-box
    ("g,acme,,,gpu_hour,2.00,USD,2026-01-01,,,,", "d,,compute,gpu-box,dimension_hour,0.50,USD,2026-01-01,,GPU,,"),
    # ranges sharing only June
    ("g,,,gpu-box,gpu_hour,2.00,USD,2026-01-01,2026-07-01,,,", "d,,,gpu-box,dimension_hour,0.50,USD,2026-06-01,,GPU,,"),
    # a label and no label; two label keys (an instance may carry both); one label, its key in another case
    ("g,,,gpu-box,gpu_hour,2.00,USD,2026-01-01,,,Contract ID,C-1", "d,,,gpu-box,dimension_hour,0.5,USD,2026-01-01,,GPU,,"),
    ("g,,,gpu-box,gpu_hour,2.00,USD,2026-01-01,,,Contract ID,C-1",
     "d,,,gpu-box,dimension_hour,0.5,USD,2026-01-01,,GPU,Team,ml"),
    ("g,,,gpu-box,gpu_hour,2.00,USD,2026-01-01,,,Contract ID,C-1",
     "d,,,gpu-box,dimension_hour,0.5,USD,2026-01-01,,GPU,contract id,C-1"),
    # gpu_month prices the same GPUs
    ("g,,,gpu-box,gpu_month,900,USD,2026-01-01,,,,", "d,acme,,,dimension_hour,0.50,USD,2026-01-01,,GPU,,"),
]


@pytest.mark.parametrize(("gpu_row", "dimension_row"), SAME_GPU_HOURS)
def test_rule7_the_sync_refuses_any_pair_that_can_price_the_same_gpu_hours(gpu_row: str, dimension_row: str) -> None:
    for first, second in ((gpu_row, dimension_row), (dimension_row, gpu_row)):
        with pytest.raises(PriceBookError) as err:
            parse_price_book(f"{HEADER}{first}\n{second}\n")
        [(line, message)] = err.value.problems
        later, earlier = second.split(",")[0], first.split(",")[0]
        assert line == 3 and f"price {later!r}" in message and f"price {earlier!r} (line 2)" in message, message
        assert "billed twice" in message


@pytest.mark.parametrize(("gpu_row", "other_row"), [
    # no common day (ranges are half-open)
    ("g,,,gpu-box,gpu_hour,2.00,USD,2026-01-01,2026-06-01,,,", "d,,,gpu-box,dimension_hour,0.5,USD,2026-06-01,,GPU,,"),
    # another org, profile or profile type: no instance has both
    ("g,acme,,gpu-box,gpu_hour,2.00,USD,2026-01-01,,,,", "d,globex,,,dimension_hour,0.5,USD,2026-01-01,,GPU,,"),
    ("g,,,gpu-box,gpu_hour,2.00,USD,2026-01-01,,,,", "d,,,gpu-vm,dimension_hour,0.5,USD,2026-01-01,,GPU,,"),
    ("g,,compute,,gpu_hour,2.00,USD,2026-01-01,,,,", "d,,service,,dimension_hour,0.5,USD,2026-01-01,,GPU,,"),
    # one label key with two values (key in any case): an instance carries one of them
    ("g,,,gpu-box,gpu_hour,2.00,USD,2026-01-01,,,Contract ID,C-1",
     "d,,,gpu-box,dimension_hour,0.5,USD,2026-01-01,,GPU,contract id,C-2"),
    # not the same quantity: a price per instance-hour, or another dimension
    ("g,,,gpu-box,instance_hour,2.00,USD,2026-01-01,,,,", "d,acme,,,dimension_hour,0.5,USD,2026-01-01,,GPU,,"),
    ("g,,,gpu-box,gpu_hour,2.00,USD,2026-01-01,,,,", "d,acme,,,dimension_hour,0.5,USD,2026-01-01,,CPU,,"),
])
def test_rule7_rows_no_instance_shares_on_a_common_day_are_accepted(gpu_row: str, other_row: str) -> None:
    assert len(parse_price_book(f"{HEADER}{gpu_row}\n{other_row}\n")) == 2


# --- rule 17: price-book input hardening ---------------------------------------------------------------


def test_rule17_a_nul_byte_in_a_price_book_cell_is_a_line_numbered_error(conn) -> None:
    book = HEADER + "vm,,,vm,instance_hour,1.50,USD,2026-01-01,,,,\n" + "x,,,v\x00m,instance_hour,1,USD,2026-01-01,,,,\n"
    with pytest.raises(PriceBookError) as err:
        sync_price_book(conn, book)
    problems = dict(err.value.problems)
    assert "NUL" in problems[3] and "profile" in problems[3]
    with pytest.raises(PriceBookError):
        sync_price_book(conn, book.encode())


@pytest.mark.parametrize("price", ["١٫٥", "١٥", "１.５０", "1.５"])
def test_rule17_price_book_numbers_take_ascii_digits_only(price: str) -> None:
    with pytest.raises(PriceBookError) as err:
        parse_price_book(HEADER + f"vm,,,vm,instance_hour,{price},USD,2026-01-01,,,,\n")
    assert "not a plain decimal" in dict(err.value.problems)[2]
    with pytest.raises(PriceBookError):
        parse_price_book(HEADER + "vm,,,vm,instance_hour,1,USD,２０２６-01-01,,,,\n")


def test_rule17_long_exception_details_are_bounded(conn) -> None:
    sync_price_book(conn, HEADER + "vm,,,vm,instance_hour,1.50,USD,2026-01-01,,,,\n")
    rate(conn, [record(0, "a", "10", profile="unknown", labels={"Team": "t" * 3000})])
    [detail] = details(conn, "unpriced")
    assert len(detail) == 1024 and detail.endswith("…")


# --- rule 13: profile type in the line item key; one org's failure never stops the others ------------


def test_rule13_compute_and_service_profiles_of_one_name_and_instance_key_are_two_items(conn) -> None:
    sync_price_book(conn, HEADER + "c,,compute,,instance_hour,1.00,USD,2026-01-01,,,,\n"
                                   "s,,service,,instance_hour,2.00,USD,2026-01-01,,,,\n")
    rate(conn, [record(0, "x", "10", profile="shared", ptype="compute", instance_id="k-1"),
                record(1, "x", "3", profile="shared", ptype="service", instance_id="k-1")])
    got = {(i["profile_type"], i["price_id"], i["usage_hours"], i["amount"]) for i in fetch_line_items(conn, W)}
    assert got == {("compute", "c", Decimal(10), Decimal("10.00")), ("service", "s", Decimal(3), Decimal("6.00"))}
    assert exceptions(conn) == set()
    # the hours bound is per instance of one profile type: 10 + 20 h of two kinds are not 30 h of one
    rate(conn, [record(0, "x", "10", profile="shared", ptype="compute", instance_id="k-1"),
                record(1, "x", "20", profile="shared", ptype="service", instance_id="k-1")], "r2")
    assert exceptions(conn) == set() and len(fetch_line_items(conn, W)) == 2


def test_rule13_a_failure_rating_one_org_never_stops_the_other_orgs_of_its_group(conn) -> None:
    sync_price_book(conn, HEADER + "vm,,,,instance_hour,1.00,USD,2026-01-01,,,,\n")
    # any database error while rating one org's items (here a trigger refusing that org's items)
    conn.execute("""
        CREATE FUNCTION pg_temp.refuse_bad() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN RAISE EXCEPTION 'cannot bill org %', NEW.org_id; END $$;
        CREATE TRIGGER refuse_bad BEFORE INSERT ON billing.charge_line_items
            FOR EACH ROW WHEN (NEW.org_id = 'bad') EXECUTE FUNCTION pg_temp.refuse_bad();
    """)
    slices = []
    for org in ("acme", "bad", "zeta"):
        load_org_usage(conn, W, org, usage_csv([record(0, "vm", "5", org=org)], COLUMNS), "r1")
        slices.append(DaySlice(org, DAY, org.title()))
    summary = rate_slices(conn, slices, "r1")
    assert [(f.org_id, f.days) for f in summary.failed] == [("bad", (DAY,))]
    assert "cannot bill org bad" in summary.failed[0].error
    assert {i["org_id"] for i in fetch_line_items(conn, W)} == {"acme", "zeta"}
    coverage = dict(conn.execute("SELECT org_id, status FROM billing.coverage").fetchall())
    assert coverage == {"acme": "billed", "bad": "failed", "zeta": "billed"}
    detail = conn.execute("SELECT detail FROM billing.coverage WHERE org_id = 'bad'").fetchone()[0]
    assert "cannot bill org bad" in detail
    # a retry without the cause bills it
    conn.execute("DROP TRIGGER refuse_bad ON billing.charge_line_items")
    assert rate_slices(conn, slices, "r1").failed == ()
    assert conn.execute("SELECT status FROM billing.coverage WHERE org_id = 'bad'").fetchone()[0] == "billed"


# --- rule 9: record times --------------------------------------------------------------------------------


def test_rule9_a_record_is_billed_on_a_day_for_the_share_of_its_interval_inside_it(conn) -> None:
    sync_price_book(conn, HEADER + "vm,,,vm,instance_hour,1.00,USD,2026-01-01,,,,\n"
                                   "cpu,,,vm,dimension_hour,0.01,USD,2026-01-01,,CPU,,\n")
    summary = rate(conn, [
        # 23:00 -> 01:00, returned for both days: one hour on each
        record(0, "late", "2", start="2026-11-10T23:00:00Z", end="2026-11-11T01:00:00Z", dims={"cpu": "48"}),
        # 1 h over 3 h, 2 of them inside the day: 0.6666666... -> 0.666667 (half-up, 6 places)
        record(1, "early", "1", start="2026-11-09T23:00:00Z", end="2026-11-10T02:00:00Z"),
        record(2, "inside", "4", start="2026-11-10T08:00:00Z", end="2026-11-10T12:00:00Z"),
        record(3, "untimed", "5"),
        record(4, "too-many", "2", start="2026-11-10T10:00:00Z", end="2026-11-10T11:00:00Z"),
        record(5, "other-day", "1", start="2026-11-11T05:00:00Z", end="2026-11-11T06:00:00Z"),
        record(6, "rounding", "1.005", start="2026-11-10T10:00:00Z", end="2026-11-10T11:00:00Z"),  # within 0.01 h
    ])
    got = items(conn)
    assert got[("late", "")]["usage_hours"] == Decimal("1.000000") and got[("late", "")]["amount"] == Decimal("1.00")
    assert got[("late", "CPU")]["pricing_quantity"] == Decimal("24.000000")
    assert got[("early", "")]["usage_hours"] == Decimal("0.666667") and got[("early", "")]["amount"] == Decimal("0.67")
    assert got[("inside", "")]["usage_hours"] == Decimal(4) and got[("untimed", "")]["usage_hours"] == Decimal(5)
    assert got[("rounding", "")]["usage_hours"] == Decimal("1.005")
    assert {e for e in exceptions(conn) if e[2] != "missing_dimension"} == {
        ("too-many", "", "usage_outside_day"), ("other-day", "", "usage_outside_day")}
    too_many, other_day = details(conn, "usage_outside_day")
    assert "2 h" in too_many and "is 1.000000 h long" in too_many
    assert "does not meet 2026-11-10" in other_day
    assert summary.exceptions_by_reason["usage_outside_day"] == 2
    # the waiver accepts the new reason
    from rafay_billing.periods.waivers import REASONS
    assert "usage_outside_day" in REASONS


def test_rule9_a_time_the_database_cannot_read_bills_the_record_as_untimed_and_fails_nothing(conn) -> None:
    sync_price_book(conn, HEADER + "vm,,,,instance_hour,1.00,USD,2026-01-01,,,,\n")
    load_org_usage(conn, W, "acme", usage_csv([record(0, "ok", "2", start="2026-11-10T23:00:00Z",
                                                      end="2026-11-11T01:00:00Z")], COLUMNS), "r1")
    load_org_usage(conn, W, "zeta", usage_csv([record(0, "odd", "3", org="zeta", start="2026-02-30T00:00:00Z",
                                                      end="yesterday-ish"),
                                               record(1, "zoned", "2", org="zeta", start="2026-11-10T23:00:00+01:00",
                                                      end="2026-11-11 01:00:00")], COLUMNS), "r1")
    summary = rate_slices(conn, [DaySlice("acme", DAY, "Acme"), DaySlice("zeta", DAY, "Zeta")], "r1")
    assert summary.failed == ()
    got = items(conn)
    assert got[("ok", "")]["usage_hours"] == Decimal("1.000000")
    assert got[("odd", "")]["usage_hours"] == Decimal(3)
    # 22:00Z -> 01:00Z (a time without a zone is UTC): 2 of its 3 h inside the day, 2 h x 2/3
    assert got[("zoned", "")]["usage_hours"] == Decimal("1.333333")
