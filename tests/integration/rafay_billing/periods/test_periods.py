"""Billing periods against a real PostgreSQL: readiness, the close, invoices and their numbers, waivers.

Usage is landed and rated with the pipeline's own load and rating steps; the expectations (amounts,
subtotals, lines) are spelled out here as literals or summed from the rows independently.
"""

from __future__ import annotations

import threading
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import psycopg
import pytest

from rafay_billing import cli, db
from rafay_billing.errors import PeriodError, PeriodNotReady, WaiverError
from rafay_billing.ledger.coverage import record_failed, register_orgs
from rafay_billing.ledger.load import load_org_usage
from rafay_billing.ledger.price_book import sync_price_book
from rafay_billing.ledger.rating import DaySlice, rate_slices
from rafay_billing.ledger.usage_changes import usage_changes
from rafay_billing.period import Period, parse_period
from rafay_billing.periods.close import close_period, readiness
from rafay_billing.periods.invoices import fetch_invoice_lines, fetch_invoices
from rafay_billing.periods.waivers import waive, waive_open
from rafay_billing.window import Window
from tests.support.landed_usage import usage_csv

# 1 h x 0.015 = 0.015 -> 0.02 per item (half-up): three items are 0.06, where re-rounding their
# unrounded sum (0.045) would give 0.05.
PRICES = """\
price_id,org_id,profile_type,profile,unit,unit_price,currency,effective_from,effective_to
vm,,,vm,instance_hour,0.015,USD,2026-01-01,
gpu,,,gpu-vm,gpu_hour,1.25,EUR,2026-01-01,
zurich,zurich,,,instance_hour,3.10,CHF,2026-01-01,
"""
OCT = Period(date(2026, 10, 1))
NOV = Period(date(2026, 11, 1))
AFTER_NOV = datetime(2026, 12, 1, 1, tzinfo=UTC)
FIRST_DAY = date(2026, 10, 30)  # the orgs' first listing: October needs only its last two days
NAMES = {"acme": "Acme", "zurich": "Zürich AG"}


def usage(day: date, org_id: str, instances: list[tuple[str, str, str, int | None]]) -> list[dict[str, Any]]:
    """Usage rows of one (org, day): (profile, instance id, hours, gpus) each."""
    window = Window.for_day(day)
    return [
        {
            "window_start": window.start_iso, "window_end": window.end_iso, "org_id": org_id,
            "organization": NAMES.get(org_id, org_id), "org_seq": 0, "record_seq": seq, "profile_type": "compute",
            "profile": profile, "instance": f"vm-{iid}", "instance_id": iid, "instance_key": iid,
            "status": "running", "seed_usage": hours, "usage_hours": Decimal(hours), "gpu_count": gpus,
            "invalid_reason": None, "record_start": None, "record_end": None,
            "source_page": f"usage-{profile}-page-0000.json", "source_index": seq,
        }
        for seq, (profile, iid, hours, gpus) in enumerate(instances)
    ]


ACME = [("vm", "a1", "1", None), ("vm", "a2", "1", None), ("vm", "a3", "1", None), ("gpu-vm", "g1", "2.5", 2)]
ZURICH = [("vm", "z1", "24", None)]


def bill(conn: psycopg.Connection, days: list[date], per_org: dict[str, list], run_id: str = "r") -> None:
    """Land and rate the same usage for each org on each day (the daily DAG's load and rate steps)."""
    slices = []
    for org_id, instances in per_org.items():
        for day in days:
            load_org_usage(conn, Window.for_day(day), org_id, usage_csv(usage(day, org_id, instances)), run_id)
            slices.append(DaySlice(org_id, day, NAMES.get(org_id, org_id)))
    rate_slices(conn, slices, run_id)


@pytest.fixture
def conn(pg_conn: psycopg.Connection) -> psycopg.Connection:
    pg_conn.autocommit = True
    db.migrate(pg_conn)
    sync_price_book(pg_conn, PRICES)
    register_orgs(pg_conn, list(NAMES.items()), FIRST_DAY, "r", last_day=date(2026, 11, 30))
    return pg_conn


@pytest.fixture
def october(conn: psycopg.Connection) -> psycopg.Connection:
    """October's two expected days billed for both orgs."""
    bill(conn, [date(2026, 10, 30), date(2026, 10, 31)], {"acme": ACME, "zurich": ZURICH})
    return conn


def close(conn: psycopg.Connection, period: Period = OCT, **kwargs: Any):
    kwargs.setdefault("actor", "test")
    kwargs.setdefault("issuer", "ACME")
    kwargs.setdefault("now", AFTER_NOV)
    return close_period(conn, period, **kwargs)


def one(conn: psycopg.Connection, query: str, params: Any = None) -> Any:
    return conn.execute(query, params).fetchone()[0]


# --- periods -----------------------------------------------------------------------------------------


def test_a_period_is_a_utc_calendar_month() -> None:
    assert parse_period("2026-10") == OCT and OCT.label == "2026-10"
    assert (OCT.start, OCT.end, OCT.last_day) == (date(2026, 10, 1), date(2026, 11, 1), date(2026, 10, 31))
    assert len(OCT.days()) == 31 and len(parse_period("2028-02").days()) == 29
    assert Period.before(datetime(2026, 11, 1, tzinfo=UTC)) == OCT  # the monthly close of 11-01 closes October
    assert Period.before(date(2026, 11, 20)) == OCT
    assert Period.before(date(2027, 1, 1)) == parse_period("2026-12")
    assert Period.containing(datetime(2026, 10, 31, 23, 59, tzinfo=UTC)) == OCT
    assert OCT.next() == NOV
    for bad in ("2026-13", "2026/10", "26-10", "2026-1", "", "October", None, "२०२६-११", "２０２６-１１"):
        with pytest.raises(PeriodError, match="YYYY-MM"):
            parse_period(bad)  # type: ignore[arg-type]
    with pytest.raises(PeriodError, match="1st of a month"):
        Period(date(2026, 10, 2))


# --- the close -----------------------------------------------------------------------------------------


def test_one_invoice_per_org_and_currency_with_the_exact_sum_of_its_items(october: psycopg.Connection) -> None:
    result = close(october)
    assert not result.already_closed
    got = [(i.invoice_number, i.org_id, i.organization, i.currency, i.subtotal, i.line_count)
           for i in result.invoices]
    assert got == [
        # acme: 3 vm items a day at 0.02 (0.015 rounded half-up), 2 days -> 0.12, not round(6 x 0.015) = 0.09
        ("ACME-000001", "acme", "Acme", "EUR", Decimal("12.50"), 1),  # 2.5 h x 2 GPUs x 1.25, 2 days
        ("ACME-000002", "acme", "Acme", "USD", Decimal("0.12"), 1),
        ("ACME-000003", "zurich", "Zürich AG", "CHF", Decimal("148.80"), 1),  # 24 h x 3.10, 2 days
    ]
    sums = dict(((o, c), s) for o, c, s in october.execute(
        "SELECT org_id, currency, sum(amount) FROM billing.charge_line_items "
        "WHERE billing_period_start = '2026-10-01' GROUP BY 1, 2"
    ).fetchall())
    assert {(i.org_id, i.currency): i.subtotal for i in result.invoices} == sums
    assert [(i.invoice_id, i.period_start, i.period_end, i.status) for i in result.invoices][0] == (
        "ACME-2026-10-acme-EUR", date(2026, 10, 1), date(2026, 11, 1), "issued"
    )
    assert fetch_invoices(october, OCT) == list(result.invoices)
    assert result.totals_by_currency == {"CHF": Decimal("148.80"), "EUR": Decimal("12.50"), "USD": Decimal("0.12")}


def test_invoice_lines_group_items_by_profile_price_and_class(october: psycopg.Connection) -> None:
    bill(october, [date(2026, 10, 31)], {"acme": [*ACME, ("vm", "a4", "2", None)]}, run_id="r2")
    result = close(october)
    usd = next(i for i in result.invoices if i.currency == "USD")
    [line] = fetch_invoice_lines(october, usd.invoice_id)
    assert (line.line_no, line.profile_type, line.profile, line.price_id, line.pricing_unit, line.unit_price,
            line.charge_class) == (1, "compute", "vm", "vm", "instance_hour", Decimal("0.015"), "regular")
    # 10-30: a1..a3 (1 h each); 10-31 re-billed: a1..a3 and a4 (2 h, 0.03)
    assert (line.quantity, line.amount, line.item_count) == (Decimal("8"), Decimal("0.15"), 7)
    assert usd.subtotal == line.amount and usd.line_count == 1


def test_closing_twice_issues_nothing_and_changes_nothing(october: psycopg.Connection) -> None:
    first = close(october)
    snapshot = [october.execute(f"SELECT * FROM billing.{t} ORDER BY 1, 2").fetchall()
                for t in ("invoices", "invoice_lines", "invoice_counters", "audit_log", "billing_periods")]
    again = close(october, actor="someone else", allow_exceptions=True)
    assert again.already_closed and again.invoices == first.invoices and again.closed_by == "test"
    assert [october.execute(f"SELECT * FROM billing.{t} ORDER BY 1, 2").fetchall()
            for t in ("invoices", "invoice_lines", "invoice_counters", "audit_log", "billing_periods")] == snapshot


def test_numbers_are_gap_free_per_issuer_across_periods_and_corrections_land_on_the_next(
    october: psycopg.Connection,
) -> None:
    assert [i.invoice_number for i in close(october).invoices] == ["ACME-000001", "ACME-000002", "ACME-000003"]
    with pytest.raises(PeriodNotReady):  # a refused close consumes no number
        close(october, NOV)
    # a late change to an October day after its close: a correction on November's invoice
    bill(october, [date(2026, 10, 31)], {"zurich": [("vm", "z1", "24", None), ("vm", "z2", "10", None)]}, "fix")
    bill(october, NOV.days(), {"acme": ACME[:1], "zurich": ZURICH}, run_id="nov")
    november = close(october, NOV)
    assert [(i.invoice_number, i.org_id, i.currency) for i in november.invoices] == [
        ("ACME-000004", "acme", "USD"), ("ACME-000005", "zurich", "CHF"),
    ]
    zurich = november.invoices[1]
    lines = [(ln.charge_class, ln.quantity, ln.amount, ln.item_count) for ln in fetch_invoice_lines(october, zurich.invoice_id)]
    # November's own 30 days (24 h x 3.10 = 74.40 each), then 10-31's correction: 24 h reversed, 34 h charged
    assert lines == [("regular", Decimal("720"), Decimal("2232.00"), 30), ("correction", Decimal("10"), Decimal("31.00"), 3)]
    assert zurich.subtotal == Decimal("2263.00") and zurich.line_count == 2
    assert one(october, "SELECT last_number FROM billing.invoice_counters WHERE issuer = 'ACME'") == 5


def test_each_issuer_has_its_own_sequence(october: psycopg.Connection) -> None:
    october.execute("INSERT INTO billing.invoice_counters VALUES ('ACME', 0), ('OTHER', 41)")
    assert [i.invoice_number for i in close(october, issuer="OTHER").invoices] == [
        "OTHER-000042", "OTHER-000043", "OTHER-000044"
    ]
    assert october.execute("SELECT issuer, last_number FROM billing.invoice_counters ORDER BY 1").fetchall() == [
        ("ACME", 0), ("OTHER", 44)
    ]


def test_concurrent_closes_of_one_period_issue_once(october: psycopg.Connection, billing_dsn: str) -> None:
    results: list[Any] = []

    def run() -> None:
        with psycopg.connect(billing_dsn, autocommit=True) as c:
            results.append(close(c))

    threads = [threading.Thread(target=run) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(r.already_closed for r in results) == [False, True, True]
    assert {tuple(r.invoices) for r in results} == {tuple(fetch_invoices(october, OCT))}
    assert one(october, "SELECT count(*) FROM billing.invoices") == 3
    assert one(october, "SELECT last_number FROM billing.invoice_counters") == 3


def test_the_close_is_audited(october: psycopg.Connection) -> None:
    close(october, actor="airflow:rafay_billing_close/manual__1")
    rows = october.execute("SELECT action, actor, period_start, org_id, detail FROM billing.audit_log "
                           "WHERE action IN ('close', 'issue') ORDER BY audit_id").fetchall()
    assert [(a, o) for a, _, _, o, _ in rows] == [("issue", "acme"), ("issue", "acme"), ("issue", "zurich"), ("close", None)]
    assert {actor for _, actor, _, _, _ in rows} == {"airflow:rafay_billing_close/manual__1"}
    assert rows[0][4]["invoice_number"] == "ACME-000001" and rows[0][4]["subtotal"] == "12.50"
    assert rows[-1][4]["totals"] == {"CHF": "148.80", "EUR": "12.50", "USD": "0.12"}
    assert rows[-1][2] == date(2026, 10, 1)


# --- what blocks a close -----------------------------------------------------------------------------


def nothing_written(conn: psycopg.Connection) -> bool:
    return all(one(conn, f"SELECT count(*) FROM billing.{t}") == 0
               for t in ("billing_periods", "invoices", "invoice_lines", "invoice_counters"))


def test_a_missing_day_blocks_the_close_naming_it(conn: psycopg.Connection) -> None:
    bill(conn, [date(2026, 10, 30), date(2026, 10, 31)], {"acme": ACME})
    bill(conn, [date(2026, 10, 30)], {"zurich": ZURICH})
    with pytest.raises(PeriodNotReady) as caught:
        close(conn)
    message = str(caught.value)
    assert "1 (org, day)(s) are not billed: zurich (Zürich AG): 2026-10-31 (missing)" in message
    assert "rafay_usage_billing" in message
    assert nothing_written(conn)
    state = readiness(conn, OCT, now=AFTER_NOV)
    assert [(d.org_id, d.usage_date, d.status) for d in state.uncovered] == [("zurich", date(2026, 10, 31), "missing")]
    assert not state.ready(allow_exceptions=True)


def test_a_failed_day_blocks_the_close_naming_it_and_why(october: psycopg.Connection) -> None:
    record_failed(october, [("acme", date(2026, 10, 31), "Acme", "extraction failed: HTTP 503")], "r3")
    with pytest.raises(PeriodNotReady, match=r"acme \(Acme\): 2026-10-31 \(failed: extraction failed: HTTP 503\)"):
        close(october, allow_exceptions=True)
    assert nothing_written(october)


def test_days_before_an_orgs_first_listing_are_not_asked_for(october: psycopg.Connection) -> None:
    register_orgs(october, [("newco", "NewCo")], date(2026, 10, 31), "r", last_day=date(2026, 11, 30))
    with pytest.raises(PeriodNotReady, match=r"1 \(org, day\)\(s\) are not billed: newco \(NewCo\): 2026-10-31 "):
        close(october)
    bill(october, [date(2026, 10, 31)], {"newco": ZURICH[:1]})
    assert readiness(october, OCT, now=AFTER_NOV).ready()


def test_consecutive_missing_days_are_named_as_a_range(october: psycopg.Connection) -> None:
    with pytest.raises(PeriodNotReady) as caught:
        close(october, NOV)
    assert "acme (Acme): 2026-11-01..2026-11-30 (missing); zurich (Zürich AG): 2026-11-01..2026-11-30 (missing)" in str(
        caught.value
    )


def test_a_period_that_has_not_ended_cannot_be_closed(october: psycopg.Connection) -> None:
    with pytest.raises(PeriodNotReady, match=r"period 2026-10 has not ended yet: it ends 2026-11-01T00:00:00Z"):
        close(october, now=datetime(2026, 10, 31, 23, tzinfo=UTC))


UNPRICED = [*ACME, ("misc", "m1", "3", None)]


def test_an_open_exception_blocks_the_close_and_a_waiver_unblocks_it(october: psycopg.Connection) -> None:
    bill(october, [date(2026, 10, 31)], {"acme": UNPRICED}, run_id="r2")
    with pytest.raises(PeriodNotReady) as caught:
        close(october)
    message = str(caught.value)
    assert "1 open rating exception(s): acme 2026-10-31 profile misc instance vm-m1 (key m1): unpriced" in message
    assert "rafay-billing waive" in message
    assert nothing_written(october)
    waiver = waive(october, "acme", date(2026, 10, 31), "misc", "m1", "unpriced", "test instance, not billed", "ops")
    assert (waiver.records, waiver.waived_by) == (1, "ops")
    assert readiness(october, OCT, now=AFTER_NOV).ready()
    assert len(close(october).invoices) == 3
    [(actor, detail)] = october.execute("SELECT actor, detail FROM billing.audit_log WHERE action = 'waiver'").fetchall()
    assert actor == "ops" and detail["why"] == "test instance, not billed" and detail["reason"] == "unpriced"


def test_a_later_rating_that_bills_the_record_closes_its_exception(october: psycopg.Connection) -> None:
    bill(october, [date(2026, 10, 31)], {"acme": UNPRICED}, run_id="r2")
    assert not readiness(october, OCT, now=AFTER_NOV).ready()
    sync_price_book(october, PRICES + "misc,,,misc,instance_hour,1.00,USD,2026-01-01,\n")
    bill(october, [date(2026, 10, 31)], {"acme": UNPRICED}, run_id="r3")
    assert readiness(october, OCT, now=AFTER_NOV).ready()


def test_allow_exceptions_closes_and_lists_them(october: psycopg.Connection) -> None:
    bill(october, [date(2026, 10, 31)], {"acme": UNPRICED}, run_id="r2")
    result = close(october, allow_exceptions=True)
    assert [(e.org_id, e.usage_date, e.profile, e.instance_key, e.reason) for e in result.open_exceptions] == [
        ("acme", date(2026, 10, 31), "misc", "m1", "unpriced")
    ]
    assert "1 open exception(s) allowed" in str(result)
    assert one(october, "SELECT allow_exceptions FROM billing.billing_periods") is True
    detail = one(october, "SELECT detail FROM billing.audit_log WHERE action = 'close'")
    assert [e["instance_key"] for e in detail["open_exceptions"]] == ["m1"] and detail["allow_exceptions"] is True


def test_a_waiver_needs_a_reason_and_a_matching_exception(october: psycopg.Connection) -> None:
    bill(october, [date(2026, 10, 31)], {"acme": UNPRICED}, run_id="r2")
    day = date(2026, 10, 31)
    with pytest.raises(WaiverError, match="needs a reason"):
        waive(october, "acme", day, "misc", "m1", "unpriced", "  ", "ops")
    with pytest.raises(WaiverError, match="is not one of unpriced"):
        waive(october, "acme", day, "misc", "m1", "typo", "why", "ops")
    with pytest.raises(WaiverError) as caught:
        waive(october, "acme", day, "misc", "vm-m1", "unpriced", "why", "ops")  # the name, not the key
    message = str(caught.value)
    assert "no rating exception matches org acme, day 2026-10-31, profile misc, instance vm-m1" in message
    assert "it holds: profile misc instance m1 reason unpriced" in message and "billing.open_exceptions" in message
    with pytest.raises(WaiverError, match="that day has no exceptions at all"):
        waive(october, "acme", date(2026, 10, 30), "misc", "m1", "unpriced", "why", "ops")
    waive(october, "acme", day, "misc", "m1", "unpriced", "why", "ops")
    with pytest.raises(WaiverError, match="already waived by ops"):
        waive(october, "acme", day, "misc", "m1", "unpriced", "again", "ops")
    assert one(october, "SELECT count(*) FROM billing.exception_waivers") == 1


def test_waive_all_open_exceptions_of_a_period(october: psycopg.Connection) -> None:
    bill(october, [date(2026, 10, 30), date(2026, 10, 31)], {"acme": UNPRICED}, run_id="r2")
    waivers = waive_open(october, OCT, "October test instances", "ops")
    assert [(w.usage_date, w.instance_key, w.records) for w in waivers] == [
        (date(2026, 10, 30), "m1", 1), (date(2026, 10, 31), "m1", 1)
    ]
    assert readiness(october, OCT, now=AFTER_NOV).ready() and waive_open(october, OCT, "again", "ops") == []
    assert one(october, "SELECT count(*) FROM billing.audit_log WHERE action = 'waiver'") == 2


# --- the waive command ---------------------------------------------------------------------------------


def test_waive_command(october: psycopg.Connection, billing_dsn: str, capsys: pytest.CaptureFixture) -> None:
    bill(october, [date(2026, 10, 30), date(2026, 10, 31)], {"acme": UNPRICED}, run_id="r2")
    base = ["waive", "--dsn", billing_dsn, "--org", "acme", "--profile", "misc", "--instance", "m1",
            "--reason", "unpriced"]
    assert cli.main([*base, "--day", "2026-10-31", "--why", "demo box", "--by", "ana"]) == 0
    assert "waived acme 2026-10-31 profile misc instance m1 (unpriced, 1 record(s)) by ana" in capsys.readouterr().out
    assert cli.main([*base, "--day", "2026-10-31", "--why", "again", "--by", "ana"]) == 1
    assert "already waived by ana" in capsys.readouterr().err
    assert cli.main([*base, "--day", "31/10/2026", "--why", "x"]) == 2
    assert "--day must be a UTC day like 2026-10-31" in capsys.readouterr().err
    assert cli.main([*base, "--day", "2026-10-30", "--why", ""]) == 1
    assert "needs a reason" in capsys.readouterr().err
    assert cli.main(["waive", "--dsn", billing_dsn, "--all-open", "--period", "2026-10", "--why", "rest"]) == 0
    assert "1 waiver(s)" in capsys.readouterr().out
    assert readiness(october, OCT, now=AFTER_NOV).ready()
    assert cli.main(["waive", "--dsn", billing_dsn, "--all-open", "--org", "acme", "--why", "x"]) == 2
    assert "--all-open goes with --period" in capsys.readouterr().err


# --- late usage ------------------------------------------------------------------------------------------


def test_usage_changes_compare_a_new_read_with_the_usage_that_billed_the_day(october: psycopg.Connection) -> None:
    day = date(2026, 10, 31)
    for org_id, instances in (("acme", ACME), ("zurich", [*ZURICH, ("vm", "z2", "1.5", None)])):
        load_org_usage(october, Window.for_day(day), org_id, usage_csv(usage(day, org_id, instances)), "close")
    changes = {c.org_id: c for c in usage_changes(october, [("acme", day), ("zurich", day)], "close")}
    assert not changes["acme"].changed and changes["acme"].billed_run_id == "r"
    assert changes["zurich"].changed
    assert str(changes["zurich"]) == (
        "zurich 2026-10-31: usage changed: 1 -> 2 records, 24 -> 25.5 h (billed by run r)"
    )
    assert usage_changes(october, [("acme", day + timedelta(days=1))], "close")[0].billed_run_id is None


def test_days_after_an_orgs_last_listing_are_not_asked_for(october: psycopg.Connection) -> None:
    """An org that left Rafay on 10-30 (no listing since) does not block the close for 10-31."""
    register_orgs(october, [("gone", "Gone Inc"), *NAMES.items()], FIRST_DAY, "r", last_day=FIRST_DAY)
    register_orgs(october, list(NAMES.items()), date(2026, 10, 31), "r", full_listing=True)  # gone has left
    with pytest.raises(PeriodNotReady, match=r"gone \(Gone Inc\): 2026-10-30 ") as info:
        close(october)
    assert "2026-10-31" not in str(info.value).split("gone (Gone Inc)")[1].split("\n")[0]


# --- issue 21: the close's rules ---------------------------------------------------------------------

NO_GPU_PRICE = "\n".join(line for line in PRICES.splitlines() if not line.startswith("gpu,")) + "\n"


def refund_of_a_closed_day(conn: psycopg.Connection) -> None:
    """October closed; then the GPU price is deleted and 10-31 re-billed: g1 no longer rates, so its
    issued 6.25 EUR is reversed into November with nothing charged (a refund), and g1 is an exception
    dated in closed October. November's own days are billed (USD and CHF only)."""
    close(conn)
    sync_price_book(conn, NO_GPU_PRICE)
    bill(conn, [date(2026, 10, 31)], {"acme": ACME}, run_id="fix")
    bill(conn, NOV.days(), {"acme": ACME[:1], "zurich": ZURICH}, run_id="nov")


def test_rule1_an_exception_of_a_corrected_closed_day_blocks_the_period_its_correction_lands_in(
    october: psycopg.Connection,
) -> None:
    refund_of_a_closed_day(october)
    with pytest.raises(PeriodNotReady) as caught:
        close(october, NOV)
    message = str(caught.value)
    assert ("1 open rating exception(s): acme 2026-10-31 profile gpu-vm instance vm-g1 (key g1): unpriced "
            "(a correction of its closed day, landing in 2026-11)") in message
    assert one(october, "SELECT count(*) FROM billing.invoices WHERE period_start = '2026-11-01'") == 0
    assert october.execute(
        "SELECT org_id, usage_date, instance_key, reason, billing_period_start FROM billing.open_exceptions"
    ).fetchall() == [("acme", date(2026, 10, 31), "g1", "unpriced", date(2026, 11, 1))]
    [blocking] = readiness(october, NOV, now=AFTER_NOV).open_exceptions
    assert blocking.corrects_a_closed_day and readiness(october, OCT, now=AFTER_NOV).open_exceptions == ()
    waive_open(october, NOV, "GPU product retired, refund agreed", "ops")  # waiving it lets it through
    november = close(october, NOV)
    assert not november.already_closed
    detail = one(october, "SELECT detail FROM billing.audit_log WHERE action = 'waiver'")
    assert detail["instance_key"] == "g1" and detail["why"] == "GPU product retired, refund agreed"


def test_rule1_allow_exceptions_lets_a_closed_days_exception_through_and_the_audit_says_so(
    october: psycopg.Connection,
) -> None:
    refund_of_a_closed_day(october)
    result = close(october, NOV, allow_exceptions=True)
    assert [(e.usage_date, e.instance_key, e.corrects_a_closed_day) for e in result.open_exceptions] == [
        (date(2026, 10, 31), "g1", True)
    ]
    detail = one(october, "SELECT detail FROM billing.audit_log WHERE action = 'close' AND period_start = '2026-11-01'")
    assert detail["allow_exceptions"] is True and detail["allowed_corrections_of_closed_days"] == 1
    assert [e["instance_key"] for e in detail["open_exceptions"]] == ["g1"]
    # allowed once: the exception does not block December
    assert readiness(october, Period(date(2026, 12, 1))).open_exceptions == ()


def test_rule4_the_close_rerates_the_period_at_the_price_book_as_it_stands(october: psycopg.Connection) -> None:
    sync_price_book(october, PRICES.replace("vm,,,vm,instance_hour,0.015,", "vm,,,vm,instance_hour,0.03,"))
    result = close(october)
    acme_usd = next(i for i in result.invoices if (i.org_id, i.currency) == ("acme", "USD"))
    assert acme_usd.subtotal == Decimal("0.18")  # 6 vm-hours x 0.03, not the 0.015 they were rated at
    assert result.rerated_items == 6
    detail = one(october, "SELECT detail FROM billing.audit_log WHERE action = 'close'")
    assert detail["rerated_items"] == 6
    assert one(october, "SELECT count(*) FROM billing.charge_line_items WHERE unit_price = 0.015") == 0


def test_rule4_an_unchanged_price_book_rerates_nothing(october: psycopg.Connection) -> None:
    before = october.execute("SELECT ctid::text, xmin::text FROM billing.charge_line_items ORDER BY 1").fetchall()
    assert close(october).rerated_items == 0
    assert october.execute("SELECT ctid::text, xmin::text FROM billing.charge_line_items ORDER BY 1").fetchall() == before


def test_rule4_closing_a_closed_period_again_rerates_nothing(october: psycopg.Connection) -> None:
    close(october)
    items = october.execute("SELECT * FROM billing.charge_line_items ORDER BY 1, 2, 3, 4").fetchall()
    sync_price_book(october, PRICES.replace("vm,,,vm,instance_hour,0.015,", "vm,,,vm,instance_hour,0.03,"))
    again = close(october)
    assert again.already_closed and again.rerated_items == 0
    assert october.execute("SELECT * FROM billing.charge_line_items ORDER BY 1, 2, 3, 4").fetchall() == items


def test_rule11_a_negative_net_is_a_credit_note_with_its_own_numbers_naming_what_it_corrects(
    october: psycopg.Connection,
) -> None:
    refund_of_a_closed_day(october)
    october_eur = one(october, "SELECT invoice_id FROM billing.invoices WHERE org_id = 'acme' AND currency = 'EUR'")
    november = close(october, NOV, allow_exceptions=True)
    docs = [(i.invoice_number, i.document_type, i.org_id, i.currency, i.subtotal) for i in november.invoices]
    assert docs == [
        ("ACME-000004", "invoice", "acme", "USD", Decimal("0.60")),
        ("ACME-000005", "invoice", "zurich", "CHF", Decimal("2232.00")),
        ("ACME-CN-000001", "credit_note", "acme", "EUR", Decimal("-6.25")),
    ]
    assert november.invoices[-1].corrects == (october_eur,)
    assert "2 invoice(s) and 1 credit note(s)" in str(november)
    assert october.execute("SELECT issuer, document_type, last_number FROM billing.invoice_counters ORDER BY 2").fetchall() == [
        ("ACME", "credit_note", 1), ("ACME", "invoice", 5)
    ]
    issued = october.execute("SELECT detail FROM billing.audit_log WHERE action = 'issue' AND org_id = 'acme' "
                             "AND period_start = '2026-11-01' ORDER BY audit_id").fetchall()
    assert [d["document_type"] for (d,) in issued] == ["invoice", "credit_note"]


def test_rule11_counters_move_only_forward_and_only_by_issuing(october: psycopg.Connection) -> None:
    close(october)
    with pytest.raises(psycopg.errors.IntegrityConstraintViolation, match="moves only when a document is issued"):
        october.execute("UPDATE billing.invoice_counters SET last_number = last_number + 1")
    with pytest.raises(psycopg.errors.IntegrityConstraintViolation, match="cannot be deleted"):
        october.execute("DELETE FROM billing.invoice_counters")
    with pytest.raises(psycopg.errors.IntegrityConstraintViolation, match="counter's next number is 4"):
        october.execute(
            "INSERT INTO billing.invoices (invoice_id, issuer, invoice_seq, invoice_number, org_id, organization,"
            " currency, period_start, period_end, subtotal, line_count, issued_by) VALUES ('x', 'ACME', 9,"
            " 'ACME-000009', 'acme', 'Acme', 'USD', '2026-10-01', '2026-11-01', 1, 1, 'hand')"
        )
    with pytest.raises(psycopg.errors.CheckViolation):  # a negative net is never an invoice
        october.execute(
            "INSERT INTO billing.invoices (invoice_id, issuer, invoice_seq, invoice_number, org_id, organization,"
            " currency, period_start, period_end, subtotal, line_count, issued_by) VALUES ('x', 'ACME', 4,"
            " 'ACME-000004', 'acme', 'Acme', 'USD', '2026-10-01', '2026-11-01', -1, 1, 'hand')"
        )
    assert one(october, "SELECT last_number FROM billing.invoice_counters") == 3
    with pytest.raises(PeriodError, match="not ending in -CN"):
        close(october, NOV, issuer="ACME-CN")


def test_rule12_an_earlier_open_period_with_billed_days_blocks_the_close_naming_it(conn: psycopg.Connection) -> None:
    bill(conn, [date(2026, 10, 30), date(2026, 10, 31)], {"acme": ACME, "zurich": ZURICH})
    bill(conn, NOV.days(), {"acme": ACME[:1], "zurich": ZURICH}, run_id="nov")
    with pytest.raises(PeriodNotReady) as caught:
        close(conn, NOV, allow_exceptions=True)
    assert "earlier period(s) 2026-10 hold billed days and are still open" in str(caught.value)
    assert "close 2026-10 first" in str(caught.value)
    assert nothing_written(conn)
    # months before billing_start_date are not invoiced by the close and never block it
    assert not close(conn, NOV, billing_start=date(2026, 11, 1)).already_closed


def test_rule12_months_close_in_order(conn: psycopg.Connection) -> None:
    bill(conn, [date(2026, 10, 30), date(2026, 10, 31)], {"acme": ACME, "zurich": ZURICH})
    bill(conn, NOV.days(), {"acme": ACME[:1], "zurich": ZURICH}, run_id="nov")
    close(conn, OCT, billing_start=date(2026, 10, 15))
    november = close(conn, NOV, billing_start=date(2026, 10, 15))
    assert [i.invoice_number for i in november.invoices] == ["ACME-000004", "ACME-000005"]


def test_rule17_long_details_and_labels_are_clipped_in_close_messages_and_the_audit_log(
    october: psycopg.Connection,
) -> None:
    long_id = "x" * 5000
    record_failed(october, [("acme", date(2026, 10, 31), "Acme", "HTTP 503: " + "y" * 5000)], "r3")
    with pytest.raises(PeriodNotReady) as caught:
        close(october)
    message = str(caught.value)
    assert "y" * 1014 + "... [" in message and "y" * 1100 not in message
    bill(october, [date(2026, 10, 31)], {"acme": [*ACME, ("misc", long_id, "3", None)]}, run_id="r4")
    with pytest.raises(PeriodNotReady) as caught:
        close(october)
    message = str(caught.value)
    assert "x" * 1024 + "... [3976 more characters]" in message and "x" * 1100 not in message
    close(october, allow_exceptions=True)
    detail = one(october, "SELECT detail FROM billing.audit_log WHERE action = 'close'")
    [allowed] = detail["open_exceptions"]
    assert allowed["instance_key"] == "x" * 1024 + "... [3976 more characters]"
    assert max(len(v) for v in allowed.values() if isinstance(v, str)) <= 1024 + 30


def test_rule17_a_long_waiver_is_clipped_in_the_audit_log_and_kept_whole_on_the_waiver(
    october: psycopg.Connection,
) -> None:
    bill(october, [date(2026, 10, 31)], {"acme": UNPRICED}, run_id="r2")
    why = "because " + "z" * 3000
    waive(october, "acme", date(2026, 10, 31), "misc", "m1", "unpriced", why, "ops")
    detail = one(october, "SELECT detail FROM billing.audit_log WHERE action = 'waiver'")
    assert detail["why"] == why[:1024] + f"... [{len(why) - 1024} more characters]"
    assert one(october, "SELECT why FROM billing.exception_waivers") == why
