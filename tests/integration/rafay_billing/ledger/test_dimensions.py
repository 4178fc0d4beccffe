"""Per-dimension prices and billing labels (issue 11), rated in SQL on a real PostgreSQL.

Usage is landed as the extraction writes it (the CSV is built here, independently of
``rafay_billing.source.usage``), then rated; every amount is computed here with Decimal from sizes, hours
and prices, and the key ones are also spelled out as literals.
"""

from __future__ import annotations

import json
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
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
COLUMNS = [*LEGACY_COLUMNS, "dimensions", "labels"]
HEADER = "price_id,org_id,profile_type,profile,unit,unit_price,currency,effective_from,effective_to,dimension,label_key,label_value\n"
BOOK = HEADER + """\
vm-inst,,,vm,instance_hour,1.50,USD,2026-01-01,,,,
vm-cpu,,,vm,dimension_hour,0.004,USD,2026-01-01,,CPU,,
vm-mem,,,vm,dimension_hour,0.0005,USD,2026-01-01,,memory,,
vm-disk,,,vm,dimension_hour,0.00002,USD,2026-01-01,,Disk,,
acme-vm,acme,,vm,instance_hour,1.40,USD,2026-01-01,,,,
contract,,,vm,instance_hour,1.10,USD,2026-01-01,,,Contract ID,C-7
acme-cpu,acme,,vm,dimension_hour,0.003,USD,2026-01-01,,cpu,,
gpu-legacy,,,gpu-box,gpu_hour,2.00,USD,2026-01-01,,,,
gpu-dim,,,gpu-box,dimension_hour,0.25,USD,2026-01-01,,CPU,,
svc-cpu,,service,,dimension_hour,0.02,USD,2026-01-01,,CPU,,
"""


def record(seq: int, instance: str, hours: str, *, org: str = "acme", profile: str = "vm", ptype: str = "compute",
           dims: dict[str, str | None] | None = None, labels: dict[str, str] | None = None,
           gpu: int | None = None) -> dict[str, Any]:
    return {
        "window_start": W.start_iso, "window_end": W.end_iso, "org_id": org, "organization": org.title(),
        "org_seq": 0, "record_seq": seq, "profile_type": ptype, "profile": profile, "instance": instance,
        "instance_id": f"id-{instance}", "instance_key": f"id-{instance}", "status": "running", "seed_usage": hours,
        "usage_hours": Decimal(hours), "gpu_count": gpu, "invalid_reason": None,
        "dimensions": json.dumps(dims or {}), "labels": json.dumps(labels or {}),
    }


@pytest.fixture
def conn(pg_conn: psycopg.Connection) -> psycopg.Connection:
    pg_conn.autocommit = True
    db.migrate(pg_conn)
    sync_price_book(pg_conn, BOOK)
    return pg_conn


def rate(conn: psycopg.Connection, rows: list[dict], run_id: str = "r1", org: str = "acme"):
    load_org_usage(conn, W, org, usage_csv(rows, COLUMNS), run_id)
    return rate_slices(conn, [DaySlice(org, DAY, org.title())], run_id)


def items(conn: psycopg.Connection) -> dict[tuple[str, str], dict]:
    return {(i["instance"], i["dimension"]): i for i in fetch_line_items(conn, W)}


def exceptions(conn: psycopg.Connection) -> set[tuple]:
    return set(conn.execute(
        "SELECT instance, dimension, reason FROM billing.rating_exceptions WHERE usage_date = %s", (DAY,)
    ).fetchall())


def cents(value: Decimal) -> Decimal:
    return value.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)


def test_combined_pricing_one_record_several_items_with_specificity_per_dimension(conn) -> None:
    hours = Decimal("20.594723")
    cpu, mem, disk = Decimal(24) * hours, Decimal(256) * hours, Decimal(1500) * hours  # 1500 GB of disk
    rate(conn, [
        record(0, "a", str(hours), dims={"cpu": str(cpu), "memory": str(mem), "disk": str(disk), "gpu": str(hours)},
               labels={"ServiceID": "6c9d-1"}),
    ])
    got = items(conn)
    # instance: acme-vm (4 + 2) beats vm-inst (2); CPU: acme-cpu (6) beats vm-cpu (2); Memory, Disk: only rows
    want = {
        ("a", ""): ("acme-vm", "instance_hour", hours, Decimal("1.40")),
        ("a", "cpu"): ("acme-cpu", "dimension_hour", cpu, Decimal("0.003")),
        ("a", "memory"): ("vm-mem", "dimension_hour", mem, Decimal("0.0005")),
        ("a", "Disk"): ("vm-disk", "dimension_hour", disk, Decimal("0.00002")),
    }
    assert set(got) == set(want)  # GPU has no price here: no item, no exception
    for key, (price_id, unit, quantity, unit_price) in want.items():
        item = got[key]
        assert (item["price_id"], item["pricing_unit"], item["pricing_quantity"], item["unit_price"]) == (
            price_id, unit, quantity, unit_price)
        assert item["amount"] == cents(quantity * unit_price)
        assert item["usage_hours"] == hours and json.loads(item["labels"]) == {"ServiceID": "6c9d-1"}
    assert got[("a", "")]["amount"] == Decimal("28.83")  # 20.594723 h x 1.40
    assert got[("a", "cpu")]["pricing_quantity"] == Decimal("494.273352")  # 24 CPUs x 20.594723 h
    assert got[("a", "cpu")]["amount"] == Decimal("1.48")
    assert exceptions(conn) == set()


def test_a_label_match_outranks_an_org_match_and_only_for_that_label(conn) -> None:
    rate(conn, [
        record(0, "contracted", "10", labels={"contract id": "C-7"}),  # label keys match in any case
        record(1, "other-contract", "10", labels={"Contract ID": "C-8"}),
        record(2, "no-label", "10"),
    ])
    got = items(conn)
    assert got[("contracted", "")]["price_id"] == "contract"  # 8 + 2 = 10 > acme-vm's 6
    assert got[("contracted", "")]["amount"] == Decimal("11.00")
    assert got[("other-contract", "")]["price_id"] == "acme-vm"
    assert got[("no-label", "")]["amount"] == Decimal("14.00")


def test_a_missing_parameter_is_an_exception_naming_it_and_the_others_still_bill(conn) -> None:
    summary = rate(conn, [
        record(0, "full", "2", dims={"cpu": "16", "memory": "64", "disk": "400"}),
        record(1, "no-disk", "2", dims={"cpu": "16", "memory": "64"}),
        record(2, "bad-mem", "2", dims={"cpu": "16", "memory": None, "disk": "400"}),
    ])
    assert exceptions(conn) == {("no-disk", "Disk", "missing_dimension"), ("bad-mem", "memory", "missing_dimension")}
    detail = conn.execute(
        "SELECT detail FROM billing.rating_exceptions WHERE instance = 'no-disk'").fetchone()[0]
    assert detail == "price vm-disk is per dimension_hour of 'Disk' but the usage record has no 'Disk' parameter"
    got = items(conn)
    assert {k for k in got if k[0] == "no-disk"} == {("no-disk", ""), ("no-disk", "cpu"), ("no-disk", "memory")}
    assert {k for k in got if k[0] == "bad-mem"} == {("bad-mem", ""), ("bad-mem", "cpu"), ("bad-mem", "Disk")}
    assert got[("no-disk", "cpu")]["amount"] == cents(Decimal(16) * Decimal("0.003"))
    assert summary.exceptions_by_reason["missing_dimension"] == 2
    status = conn.execute("SELECT status, line_items, exceptions FROM billing.coverage").fetchone()
    assert status == ("exceptions", 10, 2)


def test_an_instance_without_an_instance_price_is_unpriced_though_a_dimension_is_priced(conn) -> None:
    # issue 21 rule 8 (was: unpriced only when no dimension has a price): the CPU dimension still bills,
    # the instance's hours are an unpriced exception
    rate(conn, [
        record(0, "svc", "3", profile="pods", ptype="service", dims={"cpu": "12"}),  # only svc-cpu applies
        record(1, "nothing", "3", profile="pods", ptype="other", dims={"cpu": "12"}),
    ])
    got = items(conn)
    assert set(got) == {("svc", "CPU")} and got[("svc", "CPU")]["amount"] == Decimal("0.24")  # 12 x 0.02
    assert exceptions(conn) == {("nothing", "", "unpriced"), ("svc", "", "unpriced")}


def test_gpu_hour_is_unchanged_and_combines_with_a_dimension(conn) -> None:
    rate(conn, [
        record(0, "box", "10", profile="gpu-box", gpu=8, dims={"cpu": "320"}),
        record(1, "no-count", "10", profile="gpu-box", dims={"cpu": "320"}),
    ])
    got = items(conn)
    assert got[("box", "")]["pricing_unit"] == "gpu_hour" and got[("box", "")]["amount"] == Decimal("160.00")
    assert got[("box", "CPU")]["amount"] == Decimal("80.00")
    assert got[("no-count", "CPU")]["amount"] == Decimal("80.00")  # the CPU dimension still bills
    assert exceptions(conn) == {("no-count", "", "missing_gpu_count")}


def test_window_bound_applies_to_instance_hours_only(conn) -> None:
    rate(conn, [
        record(0, "big-disk", "24", dims={"cpu": "96", "memory": "48", "disk": "48000"}),  # 2000 GB x 24 h: far above 24, legitimately
        record(1, "impossible", "30", dims={"cpu": "120"}),
    ])
    got = items(conn)
    assert got[("big-disk", "Disk")]["amount"] == Decimal("0.96")  # 48000 x 0.00002
    assert exceptions(conn) == {("impossible", "", "usage_exceeds_window")}
    assert not [k for k in got if k[0] == "impossible"]  # impossible hours bill no dimension either


def test_stop_start_records_sum_per_dimension(conn) -> None:
    first = record(0, "a", "5", dims={"cpu": "20"}, labels={"Contract ID": "C-7"})
    second = record(1, "a", "3", dims={"cpu": "12"}, labels={"Contract ID": "C-7"})
    rate(conn, [first, second])
    got = items(conn)
    assert got[("a", "")]["pricing_quantity"] == Decimal(8) and got[("a", "")]["amount"] == Decimal("8.80")
    assert got[("a", "cpu")]["pricing_quantity"] == Decimal(32) and got[("a", "cpu")]["amount"] == Decimal("0.10")


def test_a_closed_day_is_corrected_per_dimension_and_stays_immutable(conn) -> None:
    oct_day = date(2026, 10, 31)
    window = Window.for_day(oct_day)
    rows = [dict(record(0, "a", "10", dims={"cpu": "40"}, labels={"Contract ID": "C-7"}),
                 window_start=window.start_iso, window_end=window.end_iso)]
    load_org_usage(conn, window, "acme", usage_csv(rows, COLUMNS), "oct")
    rate_slices(conn, [DaySlice("acme", oct_day, "Acme")], "oct")
    conn.execute("INSERT INTO billing.billing_periods (period_start, period_end, closed_by) "
                 "VALUES ('2026-10-01', '2026-11-01', 'test')")
    with pytest.raises(psycopg.errors.IntegrityConstraintViolation, match="closed"):
        conn.execute("UPDATE billing.charge_line_items SET labels = '{}'::jsonb WHERE dimension = 'cpu'")
    rows[0]["dimensions"] = json.dumps({"cpu": "60"})
    load_org_usage(conn, window, "acme", usage_csv(rows, COLUMNS), "fix")
    summary = rate_slices(conn, [DaySlice("acme", oct_day, "Acme")], "fix")
    corrections = conn.execute(
        "SELECT dimension, entry, pricing_quantity, amount, labels FROM billing.charge_line_items "
        "WHERE charge_class = 'correction' ORDER BY dimension, entry").fetchall()
    assert corrections == [
        ("", "charge", Decimal(10), Decimal("11.00"), {"Contract ID": "C-7"}),
        ("", "reversal", Decimal(-10), Decimal("-11.00"), {"Contract ID": "C-7"}),
        ("cpu", "charge", Decimal(60), Decimal("0.18"), {"Contract ID": "C-7"}),
        ("cpu", "reversal", Decimal(-40), Decimal("-0.12"), {"Contract ID": "C-7"}),
    ]
    assert summary.corrections[0].delta_by_currency == {"USD": Decimal("0.06")}


def test_price_book_dimension_and_label_rules() -> None:
    with pytest.raises(PriceBookError) as err:
        parse_price_book(HEADER + "\n".join([
            "a,,,,dimension_hour,1,USD,2026-01-01,,,,",
            "b,,,,instance_hour,1,USD,2026-01-01,,CPU,,",
            "c,,,,instance_hour,1,USD,2026-01-01,,,Contract ID,",
            "d,,,vm,dimension_hour,1,USD,2026-01-01,,CPU,,",
            "e,,,vm,dimension_hour,2,USD,2026-06-01,,cpu,,",
        ]))
    problems = dict(err.value.problems)
    assert "needs a dimension" in problems[2] and "needs unit dimension_hour" in problems[3]
    assert "label_key and label_value go together" in problems[4]
    assert "overlaps price 'd'" in problems[6] and "dimension='cpu'" in problems[6]  # CPU = cpu
    # the same key for different dimensions or labels is no overlap; the old 9-column header still parses
    rows = parse_price_book(HEADER + "x,,,vm,dimension_hour,1,USD,2026-01-01,,CPU,,\n"
                            "y,,,vm,dimension_hour,1,USD,2026-01-01,,Disk,,\n"
                            "z,,,vm,instance_hour,1,USD,2026-01-01,,,Contract ID,C-7\n"
                            "w,,,vm,instance_hour,1,USD,2026-01-01,,,,\n")
    assert [r.specificity for r in rows] == [2, 2, 10, 2]
    assert parse_price_book(HEADER.split(",dimension")[0] + "\nv,,,,instance_hour,1,USD,2026-01-01,\n")


def test_the_database_refuses_inconsistent_price_rows(conn) -> None:
    insert = ("INSERT INTO billing.price_book (price_id, unit, unit_price, currency, effective_from, dimension, "
              "label_key, label_value) VALUES (%s, %s, 1, 'USD', '2026-01-01', %s, %s, %s)")
    for bad in (("p1", "dimension_hour", None, None, None), ("p2", "instance_hour", "CPU", None, None),
                ("p3", "instance_hour", None, "Contract ID", None)):
        with pytest.raises(psycopg.errors.CheckViolation):
            conn.execute(insert, bad)


def test_the_billing_views_count_an_instances_hours_once(conn) -> None:
    from rafay_billing.db import sql

    rate(conn, [
        record(0, "box", "10", profile="gpu-box", gpu=8, dims={"cpu": "320"}),  # gpu_hour item + CPU item
        record(1, "vm", "4", dims={"cpu": "16", "memory": "64", "disk": "80"}),  # 4 items
    ])
    params = {"first_day": DAY, "end_day": date(2026, 11, 11)}
    [(currency, orgs, count, hours, amount)] = conn.execute(sql("ui/currency_totals.sql"),
                                                            {**params, "pattern": None}).fetchall()
    assert (currency, orgs, count, hours) == ("USD", 1, 6, Decimal(14))  # 10 h + 4 h, not 10 x 2 + 4 x 4
    assert amount == sum(i["amount"] for i in items(conn).values())
    rows = conn.execute(sql("ui/window_totals.sql"), {**params, "pattern": None, "limit": 10, "offset": 0}).fetchall()
    assert [(r[4], r[5]) for r in rows] == [(6, Decimal(14))]
    assert conn.execute(sql("ui/gpu_hours.sql"), params).fetchall() == [("gpu-box", Decimal(80), 1)]
