"""Reservation coverage in rating (issue 22, rule 2) over a real PostgreSQL.

Usage is landed and rated with the pipeline's own loader and rater; every expected quantity and amount
is computed here independently, from the terms and the records, with exact fractions rounded once
half-up (quantities to 6 places, money to the cent).
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from decimal import ROUND_HALF_UP, Decimal
from fractions import Fraction
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
from rafay_billing.period import Period
from rafay_billing.periods.close import close_period
from rafay_billing.periods.contract_changes import sync_and_rerate
from rafay_billing.window import Window
from tests.support.landed_usage import COLUMNS as LEGACY_COLUMNS
from tests.support.landed_usage import usage_csv

DAY = date(2026, 11, 10)
W = Window.for_day(DAY)
LAST = date(2026, 11, 30)
COLUMNS = [*LEGACY_COLUMNS, "dimensions", "labels"]
BOOK = """\
price_id,org_id,profile_type,profile,unit,unit_price,currency,effective_from,effective_to,dimension
h100,,compute,h100-vm,gpu_hour,2.75,USD,2026-01-01,,
l4,,compute,l4-vm,instance_hour,1.10,USD,2026-01-01,,
cpu,,compute,cpu-vm,instance_hour,0.12,USD,2026-01-01,,
cpu-disk,,compute,cpu-vm,dimension_hour,0.01,USD,2026-01-01,,Disk
"""
CONTRACT_HEADER = ",".join(CONTRACT_COLUMNS)


def _q(value: Fraction | Decimal | int) -> Decimal:
    """Half-up to 6 places, computed here (not the project's helper)."""
    f = Fraction(value)
    return (Decimal(f.numerator) / Decimal(f.denominator)).quantize(Decimal("0.000001"), ROUND_HALF_UP) \
        if f.denominator != 1 else Decimal(f.numerator).quantize(Decimal("0.000001"))


def _usd(value: Fraction | Decimal) -> Decimal:
    f = Fraction(value)
    return (Decimal(f.numerator) / Decimal(f.denominator)).quantize(Decimal("0.01"), ROUND_HALF_UP)


def record(seq: int, instance: str, hours: str, *, profile: str, gpu: int | None = None,
           start: str | None = None, end: str | None = None, dims: dict[str, str] | None = None,
           day: date = DAY) -> dict[str, Any]:
    window = Window.for_day(day)
    return {
        "window_start": window.start_iso, "window_end": window.end_iso, "org_id": "coke", "organization": "COKE",
        "org_seq": 0, "record_seq": seq, "profile_type": "compute", "profile": profile, "instance": instance,
        "instance_id": f"id-{instance}", "instance_key": f"id-{instance}", "status": "running", "seed_usage": hours,
        "usage_hours": Decimal(hours), "gpu_count": gpu, "invalid_reason": None, "record_start": start,
        "record_end": end, "source_page": None, "source_index": None,
        "dimensions": json.dumps(dims or {}), "labels": json.dumps({}),
    }


@pytest.fixture
def conn(pg_conn: psycopg.Connection) -> psycopg.Connection:
    pg_conn.autocommit = True
    db.migrate(pg_conn)
    sync_price_book(pg_conn, BOOK)
    # expected from the month's last day (billed in the close's test): the close asks nothing else of it
    register_orgs(pg_conn, [("coke", "COKE")], LAST, "r", last_day=LAST)
    return pg_conn


def contracts(conn: psycopg.Connection, *rows: str, **kwargs: Any) -> None:
    sync_contracts(conn, "\n".join([CONTRACT_HEADER, *rows]) + "\n", **kwargs)


def rate(conn: psycopg.Connection, rows: list[dict[str, Any]], run_id: str = "r1", day: date = DAY) -> None:
    load_org_usage(conn, Window.for_day(day), "coke", usage_csv(rows, COLUMNS), run_id)
    rate_slices(conn, [DaySlice("coke", day, "COKE")], run_id)


def items(conn: psycopg.Connection, day: date = DAY, charge_class: str = "regular") -> dict[tuple[str, str, str], dict]:
    """(instance, dimension, covered_by) -> the day item's numbers."""
    from psycopg.rows import dict_row

    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(
            "SELECT instance, dimension, covered_by, pricing_unit, pricing_quantity, usage_hours, unit_price, amount,"
            " list_unit_price, contract_id, price_id, entry FROM billing.charge_line_items"
            " WHERE usage_date = %s AND charge_level = 'day' AND charge_class = %s", (day, charge_class))
        return {(r["instance"], r["dimension"], r["covered_by"]): r for r in cur.fetchall()}


def test_a_reservation_accepted_at_14_00_covers_only_in_term_usage(conn: psycopg.Connection) -> None:
    """Under capacity: records with times are split at 14:00 by their interval, records without times
    pro rata (10 of 24 hours in term); the in-term part is covered, the rest on-demand."""
    contracts(conn, "r-1,coke,reservation,,h100-vm,gpu_hour,8,2.15,,USD,,2026-11-10T14:00:00Z,,,,8 H100")
    rate(conn, [
        record(0, "a", "4", profile="h100-vm", gpu=8, start="2026-11-10T12:00:00Z", end="2026-11-10T16:00:00Z"),
        record(1, "b", "12", profile="h100-vm", gpu=8),
    ])
    capacity = 8 * 10  # GPU-hours from 14:00
    in_term_a = Fraction(4) * 2 / 4 * 8  # 14:00-16:00 of 12:00-16:00, 8 GPUs
    in_term_b = Fraction(12) * 10 / 24 * 8
    assert in_term_a + in_term_b <= capacity
    got = items(conn)
    assert set(got) == {("a", "", "r-1"), ("a", "", ""), ("b", "", "r-1"), ("b", "", "")}
    for inst, total, covered in (("a", Fraction(4 * 8), in_term_a), ("b", Fraction(12 * 8), in_term_b)):
        cov, od = got[(inst, "", "r-1")], got[(inst, "", "")]
        assert (cov["pricing_unit"], cov["pricing_quantity"], cov["unit_price"], cov["amount"]) == (
            "gpu_hour", _q(covered), Decimal(0), Decimal("0.00"))
        assert (cov["list_unit_price"], cov["contract_id"], cov["price_id"]) == (Decimal("2.75"), "r-1", "h100")
        assert cov["usage_hours"] == _q(covered / 8)
        assert od["pricing_quantity"] == _q(total - covered)
        assert od["amount"] == _usd((total - covered) * Fraction("2.75"))
        assert (od["covered_by"], od["contract_id"], od["list_unit_price"]) == ("", None, None)
    assert got[("a", "", "")]["amount"] == Decimal("44.00") and got[("b", "", "")]["amount"] == Decimal("154.00")


def test_over_capacity_instances_are_covered_in_byte_order_and_the_straddling_one_is_split(
        conn: psycopg.Connection) -> None:
    """Capacity 24 instance-hours; 'id-B' sorts before 'id-a' in byte order (not in a locale's)."""
    contracts(conn, "r-1,coke,reservation,,cpu-vm,instance_hour,1,0.05,,USD,,2026-11-01,,,,1 cpu-vm")
    rate(conn, [record(0, "a", "20", profile="cpu-vm"), record(1, "B", "10", profile="cpu-vm"),
                record(2, "c", "5", profile="cpu-vm")])
    got = items(conn)
    assert got[("B", "", "r-1")]["pricing_quantity"] == Decimal(10)
    assert ("B", "", "") not in got  # wholly covered: no on-demand part
    assert got[("a", "", "r-1")]["pricing_quantity"] == Decimal(14)
    assert got[("a", "", "")]["pricing_quantity"] == Decimal(6)
    assert got[("a", "", "")]["amount"] == _usd(Fraction(6) * Fraction("0.12"))
    assert ("c", "", "r-1") not in got and got[("c", "", "")]["amount"] == Decimal("0.60")
    assert sum(i["pricing_quantity"] for k, i in got.items() if k[2] == "r-1") == 24


def test_two_reservations_are_consumed_in_term_start_order(conn: psycopg.Connection) -> None:
    """r-z (term from Nov 1, 1 instance: 24 h) is consumed before r-a (from 12:00, 2 instances: 24 h);
    the instance that crosses from one to the other has a covered part of each."""
    contracts(conn, "r-a,coke,reservation,,cpu-vm,instance_hour,2,0.05,,USD,,2026-11-10T12:00:00Z,,,,",
              "r-z,coke,reservation,,cpu-vm,instance_hour,1,0.05,,USD,,2026-11-01,,,,")
    rate(conn, [record(0, "x", "20", profile="cpu-vm"), record(1, "y", "20", profile="cpu-vm"),
                record(2, "z", "20", profile="cpu-vm")])
    got = items(conn)
    covered = {k: i["pricing_quantity"] for k, i in got.items() if k[2]}
    assert covered == {("x", "", "r-z"): 20, ("y", "", "r-z"): 4, ("y", "", "r-a"): 16, ("z", "", "r-a"): 8}
    assert ("y", "", "") not in got and got[("z", "", "")]["pricing_quantity"] == 12


def test_a_gpu_hour_reservation_converts_an_instance_hour_price_and_skips_an_instance_without_gpus(
        conn: psycopg.Connection) -> None:
    """24 GPU-hours reserved; 'w' has no GPU count (never covered, capacity left for 'z'); 'z' has 7 GPUs
    for 10 h = 70 GPU-hours: 24 covered = 24/7 instance-hours, rounded half-up to 6 places."""
    contracts(conn, "r-1,coke,reservation,,l4-vm,gpu_hour,1,0.50,,USD,,2026-11-01,,,,")
    rate(conn, [record(0, "w", "5", profile="l4-vm"), record(1, "z", "10", profile="l4-vm", gpu=7)])
    got = items(conn)
    assert ("w", "", "r-1") not in got and got[("w", "", "")]["amount"] == Decimal("5.50")
    covered_hours = _q(Fraction(24, 7))
    on_demand = Decimal(10) - covered_hours
    assert on_demand == _q(Fraction(70 - 24, 7))  # the on-demand quantity, converted and rounded
    cov, od = got[("z", "", "r-1")], got[("z", "", "")]
    assert (cov["pricing_unit"], cov["pricing_quantity"], cov["list_unit_price"]) == (
        "instance_hour", covered_hours, Decimal("1.10"))
    assert (od["pricing_unit"], od["pricing_quantity"], od["amount"]) == (
        "instance_hour", on_demand, _usd(Fraction(on_demand) * Fraction("1.10")))
    assert od["amount"] == Decimal("7.23")


def test_dimension_items_are_never_covered(conn: psycopg.Connection) -> None:
    contracts(conn, "r-1,coke,reservation,,cpu-vm,instance_hour,4,0.05,,USD,,2026-11-01,,,,")
    rate(conn, [record(0, "d", "10", profile="cpu-vm", dims={"disk": "500"})])
    got = items(conn)
    assert set(got) == {("d", "", "r-1"), ("d", "Disk", "")}
    assert got[("d", "Disk", "")]["amount"] == Decimal("5.00")


def test_re_rating_unchanged_coverage_writes_nothing(conn: psycopg.Connection) -> None:
    contracts(conn, "r-1,coke,reservation,,cpu-vm,instance_hour,1,0.05,,USD,,2026-11-10T14:00:00Z,,,,")
    rows = [record(0, "a", "20", profile="cpu-vm"), record(1, "b", "10", profile="cpu-vm",
                                                           start="2026-11-10T08:00:00Z", end="2026-11-10T18:00:00Z")]
    rate(conn, rows)
    versions = "SELECT instance, covered_by, ctid::text, xmin::text FROM billing.charge_line_items ORDER BY 1, 2"
    before = conn.execute(versions).fetchall()
    assert len(before) == 4
    rate_slices(conn, [DaySlice("coke", DAY, "COKE")], "r1")
    assert conn.execute(versions).fetchall() == before


def test_a_closed_days_coverage_change_is_corrected_in_the_next_open_period(conn: psycopg.Connection) -> None:
    """A reservation accepted retroactively over a closed day: re-rating the day writes its coverage as a
    correction into the earliest open period (the on-demand item reversed, the covered and on-demand
    parts charged), net = minus the covered list value; once more, nothing."""
    rate(conn, [record(0, "a", "20", profile="cpu-vm")])
    rate(conn, [record(0, "e", "1", profile="cpu-vm", day=LAST)], day=LAST)
    close_period(conn, Period(date(2026, 11, 1)), actor="test", issuer="ACME",
                 now=datetime(2026, 12, 2, tzinfo=UTC), allow_exceptions=True)
    contracts(conn, "r-1,coke,reservation,,cpu-vm,instance_hour,1,0.05,,USD,,2026-11-10T14:00:00Z,,,,",
              allow_retroactive=True)
    rate_slices(conn, [DaySlice("coke", DAY, "COKE")], "r1")
    covered = Fraction(20) * 10 / 24
    rows = conn.execute(
        "SELECT entry, covered_by, pricing_quantity, amount, billing_period_start FROM billing.charge_line_items"
        " WHERE charge_class = 'correction' AND charge_level = 'day' ORDER BY entry, covered_by").fetchall()
    assert rows == [
        ("charge", "", Decimal(20) - _q(covered), _usd((20 - Fraction(_q(covered))) * Fraction("0.12")),
         date(2026, 12, 1)),
        ("charge", "r-1", _q(covered), Decimal("0.00"), date(2026, 12, 1)),
        ("reversal", "", Decimal(-20), Decimal("-2.40"), date(2026, 12, 1)),
    ]
    count = "SELECT count(*), max(xmin::text) FROM billing.charge_line_items"
    before = conn.execute(count).fetchone()
    rate_slices(conn, [DaySlice("coke", DAY, "COKE")], "r1")
    assert conn.execute(count).fetchone() == before


def test_invoices_and_documents_list_covered_usage_as_its_own_line(conn: psycopg.Connection) -> None:
    """The month's invoice carries the covered part as a line of its own (amount 0, the reservation's id)
    beside the on-demand rest; the JSON, CSV and HTML documents show it."""
    from rafay_billing.periods.documents import (
        _read_period,
        invoice_csv,
        invoice_document,
        render_invoice_html,
    )

    contracts(conn, "r-1,coke,reservation,,cpu-vm,instance_hour,1,0.05,,USD,,2026-11-01,,,,")
    disk = {"disk": "0"}
    rate(conn, [record(0, "a", "20", profile="cpu-vm", dims=disk), record(1, "b", "10", profile="cpu-vm", dims=disk)])
    rate(conn, [record(0, "e", "1", profile="cpu-vm", day=LAST, dims=disk)], day=LAST)
    close_period(conn, Period(date(2026, 11, 1)), actor="test", issuer="ACME",
                 now=datetime(2026, 12, 2, tzinfo=UTC))
    _, [invoice] = _read_period(conn, Period(date(2026, 11, 1)))
    usage = [(ln.contract_id, ln.quantity, ln.unit_price, ln.amount) for ln in invoice.lines
             if ln.charge_category == "usage" and ln.price_id == "cpu"]
    # 11-10: 24 of 30 h covered (a 20, b 4), b's 6 h on demand; 11-30: e's 1 h covered (24 h a day)
    assert sorted(usage, key=str) == sorted([(None, Decimal(6), Decimal("0.12"), Decimal("0.72")),
                                             ("r-1", Decimal(25), Decimal(0), Decimal("0.00"))], key=str)
    period = Period(date(2026, 11, 1))
    lines = invoice_document(invoice, period)["lines"]
    covered = [ln for ln in lines if ln.get("contract_id") == "r-1" and ln["charge_category"] == "usage"]
    assert [(ln["amount"], ln["quantity"], ln["price_id"]) for ln in covered] == [("0.00", "25.000000", "cpu")]
    assert ",cpu,instance_hour,0,25.000000,0.00,3,r-1\r\n" in invoice_csv(invoice, period)
    assert "covered by reservation r-1" in render_invoice_html(invoice, period)


def test_nothing_is_covered_before_billing_start(conn: psycopg.Connection) -> None:
    """Rule 9 with rule 2: a reservation's capacity starts at billing_start_date, like its fee."""
    contracts(conn, "r-1,coke,reservation,,cpu-vm,instance_hour,1,0.05,,USD,,2026-11-01,,,,")
    load_org_usage(conn, W, "coke", usage_csv([record(0, "a", "5", profile="cpu-vm")], COLUMNS), "r1")
    rate_slices(conn, [DaySlice("coke", DAY, "COKE")], "r1", billing_start=date(2026, 11, 11))
    assert set(items(conn)) == {("a", "", "")}
    rate_slices(conn, [DaySlice("coke", DAY, "COKE")], "r1", billing_start=DAY)
    assert set(items(conn)) == {("a", "", "r-1")}


# --- a contracts sync re-rates the days a reservation change reaches (periods/contract_changes.py) ------
# Open days are covered at once (the preview is right), a retroactive reservation over a closed month
# corrects that month's covered usage in the earliest open period (not only its fee), and an unchanged
# sync writes nothing.

# one cpu-vm instance-hour reserved from 14:00 on DAY: 10 in-term hours of the day
RESERVATION_14H = "r-1,coke,reservation,,cpu-vm,instance_hour,1,0.05,,USD,,2026-11-10T14:00:00Z,,,,"


def _sync_and_rerate(conn: psycopg.Connection, *rows: str, **kwargs: object) -> Any:
    return sync_and_rerate(conn, "\n".join([CONTRACT_HEADER, *rows]) + "\n", **kwargs)  # type: ignore[arg-type]


COVERED_14H = Fraction(20) * 10 / 24  # 20 h without times: pro rata, 10 of 24 hours in term


def test_a_reservation_synced_after_its_days_were_rated_covers_them_at_once(conn: psycopg.Connection) -> None:
    rate(conn, [record(0, "a", "20", profile="cpu-vm")])
    assert set(items(conn)) == {("a", "", "")}  # rated before the reservation existed: on demand
    changes = _sync_and_rerate(conn, RESERVATION_14H)
    assert changes.rerated_days == 1 and not changes.corrections
    got = items(conn)
    assert got[("a", "", "r-1")]["pricing_quantity"] == _q(COVERED_14H)
    assert got[("a", "", "")]["amount"] == _usd((20 - Fraction(_q(COVERED_14H))) * Fraction("0.12"))
    # the same file again: nothing changed, nothing rated
    count = "SELECT count(*), max(xmin::text) FROM billing.charge_line_items"
    before = conn.execute(count).fetchone()
    assert _sync_and_rerate(conn, RESERVATION_14H).rerated_days == 0
    assert conn.execute(count).fetchone() == before
    # ended before it began to matter (term moved past the day): the day is on demand again
    changes = _sync_and_rerate(conn, RESERVATION_14H.replace("2026-11-10T14:00:00Z", "2026-11-12T00:00:00Z"))
    assert changes.rerated_days == 1 and set(items(conn)) == {("a", "", "")}


def test_a_retroactive_reservation_corrects_the_closed_months_usage_not_only_its_fee(conn: psycopg.Connection) -> None:
    """Without the re-rating the fee would be corrected and the covered hours stay billed: paid twice."""
    rate(conn, [record(0, "a", "20", profile="cpu-vm")])
    rate(conn, [record(0, "e", "1", profile="cpu-vm", day=LAST)], day=LAST)
    close_period(conn, Period(date(2026, 11, 1)), actor="test", issuer="ACME",
                 now=datetime(2026, 12, 2, tzinfo=UTC), allow_exceptions=True)
    with pytest.raises(Exception, match="r-1"):
        _sync_and_rerate(conn, RESERVATION_14H)  # refused without allow_retroactive
    changes = _sync_and_rerate(conn, RESERVATION_14H, allow_retroactive=True)
    # DAY and LAST are billed days in its term; only DAY's coverage changes (LAST: 1 h, covered too)
    assert changes.rerated_days == 2
    assert {(c.org_id, c.usage_date) for c in changes.corrections} == {("coke", DAY), ("coke", LAST)}
    day_rows = conn.execute(
        "SELECT usage_date, entry, covered_by, pricing_quantity, amount, billing_period_start"
        " FROM billing.charge_line_items WHERE charge_class = 'correction' AND charge_level = 'day'"
        " ORDER BY usage_date, entry, covered_by").fetchall()
    on_demand = 20 - Fraction(_q(COVERED_14H))
    dec = date(2026, 12, 1)
    assert day_rows == [
        (DAY, "charge", "", _q(on_demand), _usd(on_demand * Fraction("0.12")), dec),
        (DAY, "charge", "r-1", _q(COVERED_14H), Decimal("0.00"), dec),
        (DAY, "reversal", "", Decimal(-20), Decimal("-2.40"), dec),
        (LAST, "charge", "r-1", Decimal(1), Decimal("0.00"), dec),  # 1 h, wholly covered
        (LAST, "reversal", "", Decimal(-1), Decimal("-0.12"), dec),
    ]
    # and the fee of the closed month is corrected by the same sync (rule 7): 1 x 0.05 x 490 h
    fee = conn.execute("SELECT sum(amount) FROM billing.charge_line_items WHERE contract_id = 'r-1'"
                       " AND charge_level = 'month' AND charge_class = 'correction'").fetchone()[0]
    assert fee == _usd(Fraction("0.05") * 490)
