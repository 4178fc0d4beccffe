"""MRC, monthly recurring prices (issue 22, rules 3, 4, 6, 7) over a real PostgreSQL.

Usage is landed and rated with the pipeline's own steps; every expected amount is computed here
independently from the price book (exact fractions, rounded once half-up).
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import ROUND_HALF_UP, Decimal
from fractions import Fraction
from pathlib import Path

import psycopg
import pytest

from rafay_billing.contracts.source import COLUMNS as CONTRACT_COLUMNS
from rafay_billing.contracts.sync import sync_contracts
from rafay_billing.errors import PeriodError
from rafay_billing.ledger.coverage import register_orgs
from rafay_billing.ledger.price_book import (
    PriceBookError,
    fetch_price_book,
    parse_price_book,
    sync_price_book,
)
from rafay_billing.period import Period
from rafay_billing.periods.close import CloseResult, close_period
from rafay_billing.periods.invoices import fetch_invoice_lines, fetch_invoices
from rafay_billing.periods.preview import preview_period
from tests.support.billed import Usage, bill

NOV, DEC = Period(date(2026, 11, 1)), Period(date(2026, 12, 1))
PRICE_BOOK = """\
price_id,org_id,profile_type,profile,unit,unit_price,currency,effective_from,effective_to
cpu,,compute,cpu-vm,instance_hour,0.12,USD,2026-01-01,
h100,,compute,h100-vm,gpu_hour,2.75,USD,2026-01-01,
vm-month,,compute,mrc-vm,instance_month,310.00,USD,2026-01-01,
gpu-month,,compute,gpu-vm,gpu_month,1000,USD,2026-01-01,
switch-hourly,,compute,switch-vm,instance_hour,0.50,USD,2026-01-01,2026-11-16
switch-monthly,,compute,switch-vm,instance_month,300,USD,2026-11-16,
"""


def _money(value: Fraction) -> Decimal:
    return (Decimal(value.numerator) / Decimal(value.denominator)).quantize(Decimal("0.01"), ROUND_HALF_UP)


def _bill(conn: psycopg.Connection, usage: list[Usage], run_id: str = "r") -> None:
    bill(conn, usage, run_id, price_book=PRICE_BOOK)


def _register(conn: psycopg.Connection, *orgs: str) -> None:
    register_orgs(conn, [(o, o.upper()) for o in orgs], date(2026, 11, 30), "r", last_day=date(2026, 11, 30))


def _close(conn: psycopg.Connection, period: Period, **kwargs: object) -> CloseResult:
    return close_period(conn, period, actor="test", issuer="ACME", now=datetime(2027, 1, 2, tzinfo=UTC),
                        **kwargs)  # type: ignore[arg-type]


def _days(profile: str, instance: str, first: int, last: int, hours: str = "10", gpus: int | None = None,
          month: int = 11, org: str = "coke") -> list[Usage]:
    return [Usage(org, date(2026, month, d), profile, instance, hours, gpus) for d in range(first, last + 1)]


def _day_items(conn: psycopg.Connection, instance: str) -> list[tuple]:
    return conn.execute(
        "SELECT usage_date, pricing_unit, unit_price, pricing_quantity, amount FROM billing.charge_line_items"
        " WHERE instance = %s AND charge_level = 'day' AND charge_class = 'regular' ORDER BY usage_date",
        (instance,)).fetchall()


def _mrc_items(conn: psycopg.Connection, **where: str) -> list[tuple]:
    return conn.execute(
        "SELECT org_id, usage_date, profile_type, profile, instance_key, dimension, pricing_unit, unit_price,"
        " pricing_quantity, amount, charge_category, contract_id, charge_class, entry, billing_period_start"
        " FROM billing.charge_line_items WHERE charge_level = 'month' AND charge_category = 'usage'"
        " ORDER BY billing_period_start, instance_key, correction_seq, entry DESC").fetchall()


# --- the price book ------------------------------------------------------------------------------------


def test_the_price_book_sync_accepts_the_month_units(pg_conn: psycopg.Connection) -> None:
    """Rule 3: instance_month and gpu_month are instance prices, stored as they are; a dimension on them, or a
    gpu_month and a GPU dimension row pricing the same GPUs, is refused naming the line."""
    _bill(pg_conn, _days("cpu-vm", "c1", 1, 1))
    units = {r["price_id"]: (r["unit"], r["unit_price"]) for r in fetch_price_book(pg_conn)}
    assert units["vm-month"] == ("instance_month", Decimal("310.00"))
    assert units["gpu-month"] == ("gpu_month", Decimal("1000"))
    header = "price_id,org_id,profile_type,profile,unit,unit_price,currency,effective_from,effective_to,dimension\n"
    with pytest.raises(PriceBookError, match=r"line 2.*dimension 'CPU' needs unit dimension_hour \(instance_month"):
        parse_price_book(header + "p,,,vm,instance_month,10,USD,2026-01-01,,CPU\n")
    with pytest.raises(PriceBookError, match=r"line 3.*gpu_month and dimension_hour of 'GPU'.*billed twice"):
        sync_price_book(pg_conn, header + "p,,,vm,gpu_month,10,USD,2026-01-01,,\ng,,,vm,dimension_hour,1,USD,"
                                          "2026-01-01,,GPU\n")


# --- rating: a month-priced day bills 0 and counts its units ----------------------------------------------


def test_month_priced_days_are_items_of_amount_0_with_their_units(pg_conn: psycopg.Connection) -> None:
    """Rule 3: pricing_unit = the month unit, unit_price = the month price, quantity = 1 (instance_month) or the
    GPU count (gpu_month) on a used day, 0 on an idle one; amount 0. Several records of one instance count once."""
    _bill(pg_conn, [Usage("coke", date(2026, 11, 3), "mrc-vm", "m1", "5"),
                    Usage("coke", date(2026, 11, 3), "mrc-vm", "m1", "7"),   # stop and start: still 1 instance
                    Usage("coke", date(2026, 11, 4), "mrc-vm", "m1", "0"),   # idle: 0
                    Usage("coke", date(2026, 11, 3), "gpu-vm", "g1", "10", 8),
                    Usage("coke", date(2026, 11, 3), "cpu-vm", "c1", "10")])
    assert _day_items(pg_conn, "m1") == [
        (date(2026, 11, 3), "instance_month", Decimal("310.00"), Decimal(1), Decimal("0.00")),
        (date(2026, 11, 4), "instance_month", Decimal("310.00"), Decimal(0), Decimal("0.00"))]
    assert _day_items(pg_conn, "g1") == [(date(2026, 11, 3), "gpu_month", Decimal("1000"), Decimal(8), Decimal(0))]
    assert _day_items(pg_conn, "c1") == [(date(2026, 11, 3), "instance_hour", Decimal("0.12"), Decimal(10),
                                          Decimal("1.20"))]
    with pytest.raises(psycopg.errors.CheckViolation):  # the schema keeps a month-priced day at 0
        pg_conn.execute("UPDATE billing.charge_line_items SET amount = 1 WHERE instance = 'm1'")


def test_gpu_month_without_a_gpu_count_is_missing_gpu_count(pg_conn: psycopg.Connection) -> None:
    """Rule 3: like gpu_hour, no GPU count (or 0 GPUs) is a missing_gpu_count exception, not an item."""
    _bill(pg_conn, [Usage("coke", date(2026, 11, 3), "gpu-vm", "g1", "10"),
                    Usage("coke", date(2026, 11, 3), "gpu-vm", "g2", "10", 0)])
    assert _day_items(pg_conn, "g1") == [] and _day_items(pg_conn, "g2") == []
    rows = pg_conn.execute("SELECT instance, reason, detail FROM billing.rating_exceptions ORDER BY 1").fetchall()
    assert rows == [("g1", "missing_gpu_count", "price gpu-month is per gpu_month but the instance has no GPU count"),
                    ("g2", "missing_gpu_count", "price gpu-month is per gpu_month but the GPU count is 0")]


# --- the close: one monthly item per instance -------------------------------------------------------------


def test_a_full_month_at_one_price_costs_exactly_the_monthly_price(pg_conn: psycopg.Connection) -> None:
    """Rule 3: every day of November used at 310.00 a month = 310.00, not 30 x round(310/30); the close
    writes it as a month-level usage item keyed like the instance's days, and the invoice lists it on its
    own line apart from the 30 day items of amount 0."""
    _bill(pg_conn, _days("mrc-vm", "m1", 1, 30, hours="24"))
    _register(pg_conn, "coke")
    result = _close(pg_conn, NOV)
    assert [(m.instance_key, m.amount, m.quantity) for m in result.mrc] == [("id-m1", Decimal("310.00"), 1)]
    assert _mrc_items(pg_conn) == [
        ("coke", NOV.start, "compute", "mrc-vm", "id-m1", "", "instance_month", Decimal("310.00"), Decimal(1),
         Decimal("310.00"), "usage", None, "regular", "charge", NOV.start)]
    [invoice] = fetch_invoices(pg_conn, NOV)
    assert invoice.subtotal == Decimal("310.00")
    lines = [(ln.charge_level, ln.pricing_unit, ln.quantity, ln.amount, ln.item_count)
             for ln in fetch_invoice_lines(pg_conn, invoice.invoice_id)]
    assert lines == [("day", "instance_month", Decimal(30), Decimal("0.00"), 30),
                     ("month", "instance_month", Decimal(1), Decimal("310.00"), 1)]


def test_part_of_a_month_gpu_month_and_a_switch_from_hourly_to_monthly(pg_conn: psycopg.Connection) -> None:
    """Rule 3: an instance used 10 of 30 days pays 10/30 of the month; gpu_month multiplies by the GPU
    count; a price that changes from hourly to monthly on the 16th bills days 1-15 hourly and 16-30
    monthly, never both. The close's invoice total carries the MRC."""
    _bill(pg_conn, _days("mrc-vm", "m1", 3, 12) + _days("gpu-vm", "g1", 1, 7, gpus=8)
          + _days("switch-vm", "s1", 1, 30, hours="10") + [Usage("coke", date(2026, 11, 13), "mrc-vm", "m1", "0")])
    _register(pg_conn, "coke")
    partial = _money(Fraction("310.00") * 10 / 30)
    gpus = _money(Fraction(1000) * 8 * 7 / 30)
    hourly = 15 * 10 * Decimal("0.50")
    switched = _money(Fraction(300) * 15 / 30)
    assert (partial, gpus, hourly, switched) == (Decimal("103.33"), Decimal("1866.67"), Decimal("75.00"),
                                                Decimal("150.00"))
    result = _close(pg_conn, NOV)
    assert {(m.instance_key, m.unit, m.amount) for m in result.mrc} == {
        ("id-m1", "instance_month", partial), ("id-g1", "gpu_month", gpus), ("id-s1", "instance_month", switched)}
    assert {m.instance_key: m.quantity for m in result.mrc}["id-g1"] == Decimal("1.866667")  # 56 GPU-days / 30
    day_amounts = pg_conn.execute(
        "SELECT sum(amount) FILTER (WHERE usage_date < '2026-11-16'), sum(amount) FILTER (WHERE usage_date >="
        " '2026-11-16'), count(*) FROM billing.charge_line_items WHERE instance = 's1' AND charge_level = 'day'"
    ).fetchone()
    assert day_amounts == (hourly, Decimal("0.00"), 30)
    [invoice] = fetch_invoices(pg_conn, NOV)
    assert invoice.subtotal == partial + gpus + hourly + switched


def _december(conn: psycopg.Connection) -> None:
    bill(conn, [Usage("coke", date(2026, 12, d), "cpu-vm", "x", "0") for d in range(1, 32)], "dec",
         price_book=PRICE_BOOK)


def test_a_re_rated_closed_day_corrects_the_mrc_at_the_next_close(pg_conn: psycopg.Connection) -> None:
    """Rule 7: a closed month's day that becomes used after the close (re-billed) changes that month's MRC:
    the next close writes the issued MRC reversed and the new one in its own period; re-billing a used day
    with other hours changes no MRC and writes nothing."""
    _bill(pg_conn, _days("mrc-vm", "m1", 1, 10) + _days("mrc-vm", "m1", 11, 30, hours="0"))
    _register(pg_conn, "coke")
    assert _close(pg_conn, NOV).mrc[0].amount == _money(Fraction(310) * 10 / 30)
    issued = _money(Fraction(310) * 10 / 30)
    _bill(pg_conn, [Usage("coke", date(2026, 11, 5), "mrc-vm", "m1", "23")], "r2")  # other hours: same MRC
    _december(pg_conn)
    _close(pg_conn, DEC)
    assert [r for r in _mrc_items(pg_conn) if r[12] == "correction"] == []
    # Nov 11 becomes used after both closes: its correction lands in January, whose close corrects the MRC
    _bill(pg_conn, [Usage("coke", date(2026, 11, 11), "mrc-vm", "m1", "4")], "r3")
    bill(pg_conn, [Usage("coke", date(2027, 1, d), "cpu-vm", "x", "1") for d in range(1, 32)], "jan",
         price_book=PRICE_BOOK)
    jan = Period(date(2027, 1, 1))
    [preview] = preview_period(pg_conn, jan)  # rule 6: the MRC correction the close will write, before it does
    result = close_period(pg_conn, jan, actor="test", issuer="ACME", now=datetime(2027, 2, 2, tzinfo=UTC))
    new = _money(Fraction(310) * 11 / 30)
    corrections = [(r[9], r[13], r[14]) for r in _mrc_items(pg_conn) if r[12] == "correction"]
    assert corrections == [(-issued, "reversal", jan.start), (new, "charge", jan.start)]
    [invoice] = result.invoices
    assert invoice.subtotal == Decimal("0.12") * 31 + (new - issued)
    assert preview.subtotal == invoice.subtotal
    assert [(ln.charge_class, ln.charge_level, ln.amount) for ln in preview.lines if ln.charge_level == "month"] == [
        ("correction", "month", -issued), ("correction", "month", new)]


# --- commitments count MRC; the preview shows it ----------------------------------------------------------

CONTRACT_HEADER = ",".join(CONTRACT_COLUMNS)


def test_mrc_counts_as_eligible_spend_of_a_commitment(pg_conn: psycopg.Connection) -> None:
    """Rule 4: a whole-month commitment counts the month's MRC item; one whose term starts on the 16th
    counts the exact shares (unit_price x units / days) of the in-term month-priced days; both as written
    by the close, MRC first."""
    _bill(pg_conn, _days("mrc-vm", "m1", 1, 30, hours="24") + _days("cpu-vm", "c1", 20, 20))  # 310.00 + 1.20
    _register(pg_conn, "coke")
    sync_contracts(pg_conn, "\n".join([
        CONTRACT_HEADER, "c-1,coke,commitment,,,,,,1000,USD,,2026-11-01,,,,whole month",
        "c-2,coke,commitment,,,,,,1000,USD,,2026-11-16,,,,second half"]) + "\n")
    result = _close(pg_conn, NOV)
    whole = _money(Fraction(1000) - Fraction("310.00") - Fraction("1.20"))
    half = _money(Fraction(1000) * 15 / 30 - Fraction(310) * 15 / 30 - Fraction("1.20"))
    assert (whole, half) == (Decimal("688.80"), Decimal("343.80"))
    assert {(c.contract_id, c.amount) for c in result.contract_charges} == {("c-1", whole), ("c-2", half)}
    [invoice] = fetch_invoices(pg_conn, NOV)
    assert invoice.subtotal == Decimal("310.00") + Decimal("1.20") + whole + half


def test_the_preview_shows_the_open_months_mrc(pg_conn: psycopg.Connection) -> None:
    """Rule 6: `preview` prints the MRC as it stands (a line of its own), and the true-up counting it."""
    from rafay_billing.periods.preview import describe_preview

    _bill(pg_conn, _days("mrc-vm", "m1", 1, 6))
    sync_contracts(pg_conn, f"{CONTRACT_HEADER}\nc-1,coke,commitment,,,,,,100,USD,,2026-11-01,,,,min\n")
    [doc] = preview_period(pg_conn, NOV)
    mrc = _money(Fraction(310) * 6 / 30)
    assert [(ln.charge_level, ln.contract_id, ln.amount) for ln in doc.lines] == [
        ("day", None, Decimal("0.00")), ("month", None, mrc), ("month", "c-1", _money(Fraction(100) - Fraction(mrc)))]
    assert doc.subtotal == Decimal(100)
    assert f"compute/mrc-vm price vm-month monthly recurring charge: 0.200000 instance_month x 310.00 = {mrc}" in (
        describe_preview(NOV, [doc]))
    assert pg_conn.execute("SELECT count(*) FROM billing.charge_line_items WHERE charge_level = 'month'"
                           ).fetchone() == (0,)


def test_an_instance_priced_monthly_in_two_currencies_in_one_month_blocks_the_close(
        pg_conn: psycopg.Connection) -> None:
    """One monthly item per (instance, month) has one currency: the close refuses, naming the instance."""
    book = PRICE_BOOK + "eur-month,,compute,eur-vm,instance_month,200,EUR,2026-11-10,\n" \
                        "usd-month,,compute,eur-vm,instance_month,250,USD,2026-01-01,2026-11-10\n"
    bill(pg_conn, _days("eur-vm", "e1", 8, 12), "r", price_book=book)
    _register(pg_conn, "coke")
    bill(pg_conn, [Usage("coke", date(2026, 11, 30), "cpu-vm", "c1", "1")], "r2", price_book=book)
    with pytest.raises(PeriodError, match=r"instance 'id-e1' \(org coke, profile eur-vm\) has month prices in "
                                          r"EUR and USD in 2026-11"):
        _close(pg_conn, NOV)
    assert fetch_invoices(pg_conn, NOV) == []


def test_mrc_in_focus_and_the_documents(pg_conn: psycopg.Connection, tmp_path: Path) -> None:
    """Where it shows: the MRC item is a FOCUS `Usage` row with ChargeFrequency `Recurring`, no commitment
    discount; the export passes focus-validator and BilledCost per (org, currency) is the subtotal; the
    JSON document marks the MRC line (charge_level month)."""
    from rafay_billing.periods import focus
    from rafay_billing.periods.documents import _read_period, invoice_document, render_invoice_html
    from tests.support.focus import assert_focus_valid

    _bill(pg_conn, _days("mrc-vm", "m1", 1, 15) + _days("gpu-vm", "g1", 1, 3, gpus=4)
          + _days("cpu-vm", "c1", 30, 30))
    _register(pg_conn, "coke")
    _close(pg_conn, NOV)
    rows = focus.focus_frame(pg_conn, NOV).to_dict("records")
    monthly = {r["ResourceId"]: r for r in rows if "rafay:charge_level\": \"month" in r["Tags"]}
    got = {k: (r["ChargeCategory"], r["ChargeFrequency"], r["PricingUnit"], r["CommitmentDiscountId"],
               Decimal(str(r["BilledCost"]))) for k, r in monthly.items()}
    assert got == {"id-m1": ("Usage", "Recurring", "Instance-Months", None, Decimal("155.00")),
                   "id-g1": ("Usage", "Recurring", "GPU-Months", None, _money(Fraction(1000) * 4 * 3 / 30))}
    assert monthly["id-m1"]["ChargeDescription"].startswith(
        "monthly recurring charge of mrc-vm (compute) instance m1 (2026-11): ")
    [invoice] = fetch_invoices(pg_conn, NOV)
    assert sum((Decimal(str(r["BilledCost"])) for r in rows), Decimal(0)) == invoice.subtotal == (
        Decimal("155.00") + Decimal("400.00") + Decimal("1.20"))
    path = tmp_path / "focus-2026-11.csv"
    focus.write_focus_export(pg_conn, NOV, path)
    assert_focus_valid(path)
    [with_lines] = _read_period(pg_conn, NOV)[1]
    document = invoice_document(with_lines, NOV)
    assert [(ln["pricing_unit"], ln["amount"]) for ln in document["lines"] if ln.get("charge_level") == "month"] == [
        ("gpu_month", "400.00"), ("instance_month", "155.00")]
    assert render_invoice_html(with_lines, NOV).count("monthly recurring charge") == 2


def test_the_preview_of_a_drafted_month_is_what_its_approval_would_issue(pg_conn: psycopg.Connection) -> None:
    """Rule 6 with drafts awaiting approval (``close_approval = required``): the month stays open with its
    month-level items drafted; the preview (and the Billing view's contract charges) computes them again
    as the close will, replacing the drafted ones, so nothing is counted twice: not the MRC, not the fees,
    and not the MRC in a whole-month commitment's eligible spend."""
    from rafay_billing.contracts.mrc import compute_mrc
    from rafay_billing.periods.drafts import draft_period
    from rafay_billing.periods.preview import month_charges_with_mrc

    _bill(pg_conn, _days("mrc-vm", "m1", 1, 6) + _days("mrc-vm", "m1", 7, 30, hours="0"))
    _register(pg_conn, "coke")
    sync_contracts(pg_conn, "\n".join([CONTRACT_HEADER, "c-1,coke,commitment,,,,,,100,USD,,2026-11-01,,,,min",
                                       "f-1,coke,fee,,,,,,10,USD,monthly,2026-11-01,,,,support"]) + "\n")
    mrc = _money(Fraction(310) * 6 / 30)  # 62.00; the true-up is 100 - 62.00, the fee 10
    expected = mrc + (Decimal(100) - mrc) + Decimal(10)
    [before] = preview_period(pg_conn, NOV)
    drafts = draft_period(pg_conn, NOV, actor="test", issuer="ACME", now=datetime(2027, 1, 2, tzinfo=UTC))
    [after] = preview_period(pg_conn, NOV)
    assert before.subtotal == after.subtotal == drafts.drafts[0].subtotal == expected
    assert [(ln.contract_id, ln.amount) for ln in after.lines if ln.charge_level == "month"] == [
        (None, mrc), ("c-1", Decimal(100) - mrc), ("f-1", Decimal(10))]
    with pg_conn.cursor() as cur:
        charges = month_charges_with_mrc(cur, NOV, None, compute_mrc(cur, NOV))
    assert {(c.contract_id, c.amount) for c in charges} == {("c-1", Decimal(100) - mrc), ("f-1", Decimal(10))}


def test_drafting_twice_then_closing_writes_the_mrc_once_and_issues_the_drafts(pg_conn: psycopg.Connection) -> None:
    """Rule 6: each preparation of the close (drafts awaiting approval) replaces the month's MRC items,
    never doubles them; the drafts carry the MRC line exactly as the invoice then issues it."""
    from rafay_billing.periods.drafts import draft_period

    _bill(pg_conn, _days("mrc-vm", "m1", 1, 15) + _days("mrc-vm", "m1", 16, 30, hours="0"))
    _register(pg_conn, "coke")
    for _ in range(2):
        drafts = draft_period(pg_conn, NOV, actor="test", issuer="ACME", now=datetime(2027, 1, 2, tzinfo=UTC))
    assert [(d.subtotal, d.line_count) for d in drafts.drafts] == [(Decimal("155.00"), 2)]
    assert len(_mrc_items(pg_conn)) == 1
    [invoice] = _close(pg_conn, NOV).invoices
    assert (invoice.subtotal, invoice.line_count, len(_mrc_items(pg_conn))) == (Decimal("155.00"), 2, 1)
