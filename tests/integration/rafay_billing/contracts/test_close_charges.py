"""Month-level contract charges through the close (issue 22, rules 1, 4, 5, 6, 8, 9) over a real PostgreSQL.

The usage is loaded and rated with the pipeline's own steps; every expected amount is computed here
independently, from the contract terms, with exact fractions rounded once half-up.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import ROUND_HALF_UP, Decimal
from fractions import Fraction

import psycopg
import pytest

from rafay_billing.contracts.source import COLUMNS
from rafay_billing.contracts.sync import sync_contracts
from rafay_billing.errors import PeriodNotReady
from rafay_billing.ledger.coverage import register_orgs
from rafay_billing.period import Period
from rafay_billing.periods.close import CloseResult, close_period, readiness
from rafay_billing.periods.invoices import fetch_invoice_lines, fetch_invoices
from rafay_billing.periods.preview import preview_period
from tests.support.billed import Usage, bill

NOV, DEC = Period(date(2026, 11, 1)), Period(date(2026, 12, 1))
AFTER_NOV = datetime(2026, 12, 1, 1, tzinfo=UTC)
HEADER = ",".join(COLUMNS)
CONTRACTS = [
    "r-1,coke,reservation,,h100-vm,gpu_hour,8,2.15,,USD,,2026-11-10T14:00:00Z,,,,8 H100 reserved",
    "c-1,coke,commitment,,,,,,1000,USD,,2026-11-16,,,,minimum spend",
    "f-1,coke,fee,,,,,,299.99,USD,monthly,2026-11-11,,,,support plan",
    "f-2,coke,fee,,,,,,50,USD,one_time,2026-11-03T09:00:00Z,,,,onboarding",
]
USAGE = [
    Usage("coke", date(2026, 11, 1), "cpu-vm", "c1", "10"),        # 10 h x 0.12 = 1.20, on the month's first day
    Usage("coke", date(2026, 11, 20), "h100-vm", "g1", "5", 8),    # 5 h x 8 GPUs x 2.75 = 110.00, in c-1's term
    Usage("coke", date(2026, 11, 30), "cpu-vm", "c1", "0.5"),      # 0.06
    Usage("pepsi", date(2026, 11, 30), "cpu-vm", "p1", "24"),      # 2.88, no contracts
]


def _money(value: Fraction) -> Decimal:
    return (Decimal(value.numerator) / Decimal(value.denominator)).quantize(Decimal("0.01"), ROUND_HALF_UP)


def _hours(start: datetime, end: datetime) -> Fraction:
    return Fraction(int((end - start).total_seconds()), 3600)


# expectations, from the contract terms above
RESERVATION_FEE = _money(8 * Fraction("2.15") * _hours(datetime(2026, 11, 10, 14, tzinfo=UTC),
                                                       datetime(2026, 12, 1, tzinfo=UTC)))
ELIGIBLE_C1 = Decimal("110.00") + Decimal("0.06")  # usage dated 2026-11-16..30; the 1.20 of 11-01 is out of term
TRUE_UP = _money(Fraction(1000) * 15 / 30 - Fraction(ELIGIBLE_C1))
MONTHLY_FEE = _money(Fraction("299.99") * 20 / 30)  # 2026-11-11..30: 20 of 30 days
ONE_TIME_FEE = Decimal("50.00")
USAGE_COKE = Decimal("1.20") + Decimal("110.00") + Decimal("0.06")
# With r-1 (rule 2): g1's 5 h x 8 GPUs on 11-20 are inside r-1's term and its 192 GPU-hours that day:
# covered, billed 0 (a line of its own), so neither billed nor eligible spend once the day is rated again.
ELIGIBLE_C1_R1 = Decimal("0.06")
TRUE_UP_R1 = _money(Fraction(1000) * 15 / 30 - Fraction(ELIGIBLE_C1_R1))
USAGE_COKE_R1 = Decimal("1.20") + Decimal("0.06")


@pytest.fixture
def conn(pg_conn: psycopg.Connection) -> psycopg.Connection:
    bill(pg_conn, USAGE, "r")
    register_orgs(pg_conn, [("coke", "COKE"), ("pepsi", "PEPSI")], date(2026, 11, 30), "r",
                  last_day=date(2026, 11, 30))
    return pg_conn


def _sync(conn: psycopg.Connection, *rows: str, **kwargs: object) -> None:
    sync_contracts(conn, "\n".join([HEADER, *rows]) + "\n", **kwargs)  # type: ignore[arg-type]


def _close(conn: psycopg.Connection, period: Period, **kwargs: object) -> CloseResult:
    return close_period(conn, period, actor="test", issuer="ACME", now=datetime(2027, 1, 2, tzinfo=UTC),
                        **kwargs)  # type: ignore[arg-type]


def test_expectations_are_what_the_terms_say() -> None:
    assert RESERVATION_FEE == Decimal("8428.00")  # 490 h x 8 GPUs x 2.15
    assert TRUE_UP == Decimal("389.94") and MONTHLY_FEE == Decimal("199.99")
    assert TRUE_UP_R1 == Decimal("499.94")


def test_the_close_writes_and_invoices_the_months_contract_charges(conn: psycopg.Connection) -> None:
    """Rules 1, 4, 5, 6: a reservation fee, a true-up and two fees, each its own invoice line with the
    contract id, on the month's invoice of the org and currency; another org's invoice is unchanged."""
    _sync(conn, *CONTRACTS)
    result = _close(conn, NOV)
    assert {(c.contract_id, c.amount) for c in result.contract_charges} == {
        ("r-1", RESERVATION_FEE), ("c-1", TRUE_UP_R1), ("f-1", MONTHLY_FEE), ("f-2", ONE_TIME_FEE)}
    invoices = {i.org_id: i for i in fetch_invoices(conn, NOV)}
    assert invoices["coke"].subtotal == USAGE_COKE_R1 + RESERVATION_FEE + TRUE_UP_R1 + MONTHLY_FEE + ONE_TIME_FEE
    assert invoices["pepsi"].subtotal == Decimal("2.88")
    lines = fetch_invoice_lines(conn, invoices["coke"].invoice_id)
    assert invoices["coke"].line_count == len(lines)
    contract_lines = {(ln.contract_id, ln.charge_category, ln.pricing_unit, ln.amount) for ln in lines
                      if ln.contract_id}
    assert contract_lines == {
        ("r-1", "purchase", "gpu_hour", RESERVATION_FEE), ("c-1", "true_up", "month", TRUE_UP_R1),
        ("f-1", "purchase", "month", MONTHLY_FEE), ("f-2", "purchase", "one_time", ONE_TIME_FEE),
        ("r-1", "usage", "gpu_hour", Decimal("0.00"))}  # rule 2: the usage r-1 covers, its own line
    covered = next(ln for ln in lines if ln.contract_id == "r-1" and ln.charge_category == "usage")
    assert (covered.quantity, covered.unit_price, covered.price_id) == (Decimal(40), Decimal(0), "h100")
    # usage lines first, then the contract charges, each line once
    assert [ln.contract_id is not None for ln in lines] == sorted(ln.contract_id is not None for ln in lines)
    assert sum((ln.amount for ln in lines if ln.charge_category == "usage"), Decimal(0)) == USAGE_COKE_R1
    items = conn.execute(
        "SELECT usage_date, charge_level, window_start, window_end, billing_period_start FROM"
        " billing.charge_line_items WHERE contract_id = 'r-1' AND charge_level = 'month'").fetchall()
    assert items == [(date(2026, 11, 1), "month", datetime(2026, 11, 1, tzinfo=UTC),
                      datetime(2026, 12, 1, tzinfo=UTC), date(2026, 11, 1))]


def test_billing_start_prorates_the_first_month(conn: psycopg.Connection) -> None:
    """Rule 9: nothing is charged before billing_start_date; a term that started earlier is prorated."""
    _sync(conn, "f-1,coke,fee,,,,,,299.99,USD,monthly,2026-11-11,,,,support plan",
          "f-2,coke,fee,,,,,,50,USD,one_time,2026-11-03T09:00:00Z,,,,onboarding")
    result = _close(conn, NOV, billing_start=date(2026, 11, 21))
    assert {(c.contract_id, c.amount) for c in result.contract_charges} == {
        ("f-1", _money(Fraction("299.99") * 10 / 30))}


def test_rebilling_the_first_day_never_replaces_the_month_items(conn: psycopg.Connection) -> None:
    """Rule 6: month items are dated on the month's first day but keyed apart from its usage: re-billing
    that day after the close corrects only its usage, in the next open period."""
    _sync(conn, *CONTRACTS)
    _close(conn, NOV)
    before = conn.execute("SELECT contract_id, amount FROM billing.charge_line_items WHERE charge_level = 'month'"
                          " ORDER BY 1").fetchall()
    bill(conn, [Usage("coke", date(2026, 11, 1), "cpu-vm", "c1", "12")], "r2")
    corrections = conn.execute(
        "SELECT entry, amount, charge_level, billing_period_start FROM billing.charge_line_items"
        " WHERE charge_class = 'correction' ORDER BY entry").fetchall()
    assert corrections == [("charge", Decimal("1.44"), "day", date(2026, 12, 1)),
                           ("reversal", Decimal("-1.20"), "day", date(2026, 12, 1))]
    after = conn.execute("SELECT contract_id, amount FROM billing.charge_line_items WHERE charge_level = 'month'"
                         " ORDER BY 1").fetchall()
    assert after == before and len(after) == 4


def test_a_contract_of_an_org_never_listed_blocks_the_close_naming_it(conn: psycopg.Connection) -> None:
    """Rule 8: even with allow_exceptions; the other months close."""
    _sync(conn, "f-9,fanta,fee,,,,,,10,USD,monthly,2026-11-01,,,,typo of an org id")
    with pytest.raises(PeriodNotReady, match=r"fanta.*f-9"):
        _close(conn, NOV, allow_exceptions=True)
    assert fetch_invoices(conn, NOV) == []
    state = readiness(conn, NOV, now=AFTER_NOV)
    assert not state.ready(allow_exceptions=True) and state.unlisted_contracts == (("fanta", ("f-9",)),)
    assert readiness(conn, Period(date(2026, 10, 1)), now=AFTER_NOV).unlisted_contracts == ()


def test_preview_of_the_open_month_is_what_the_close_then_issues_and_writes_nothing(
        conn: psycopg.Connection, billing_dsn: str, capsys: pytest.CaptureFixture[str]) -> None:
    """Rule 6: `rafay-billing preview --dsn --period YYYY-MM` prints the open month's invoices as of now,
    contract charges included, without writing; the close then issues exactly those totals."""
    from rafay_billing import cli
    from rafay_billing.periods.close import rerate_period
    from rafay_billing.periods.preview import preview_period

    _sync(conn, *CONTRACTS)
    # r-1 covers days rated before it was synced once they are rated again (rule 2; the close re-rates)
    rerate_period(conn, NOV)
    items = conn.execute("SELECT count(*), xmax FROM billing.charge_line_items GROUP BY 2").fetchall()
    docs = {d.org_id: d for d in preview_period(conn, NOV)}
    expected_coke = USAGE_COKE_R1 + RESERVATION_FEE + TRUE_UP_R1 + MONTHLY_FEE + ONE_TIME_FEE
    assert docs["coke"].subtotal == expected_coke and docs["pepsi"].subtotal == Decimal("2.88")
    assert {ln.contract_id for ln in docs["coke"].lines} == {None, "r-1", "c-1", "f-1", "f-2"}
    assert cli.main(["preview", "--dsn", billing_dsn, "--period", "2026-11"]) == 0
    out = capsys.readouterr().out
    assert f"invoice coke (COKE) USD: subtotal {expected_coke}" in out and "true_up contract c-1" in out
    assert conn.execute("SELECT count(*), xmax FROM billing.charge_line_items GROUP BY 2").fetchall() == items
    assert conn.execute("SELECT count(*) FROM billing.billing_periods").fetchone() == (0,)
    issued = {i.org_id: i.subtotal for i in fetch_invoices(conn, NOV) or _close(conn, NOV).invoices}
    assert issued == {"coke": expected_coke, "pepsi": Decimal("2.88")}
    assert cli.main(["preview", "--dsn", billing_dsn, "--period", "2026-11"]) == 1  # closed: read the invoices
    assert "is closed" in capsys.readouterr().err


def _corrections(conn: psycopg.Connection) -> list[tuple]:
    return conn.execute(
        "SELECT contract_id, entry, amount, usage_date, billing_period_start FROM billing.charge_line_items"
        " WHERE charge_level = 'month' AND charge_class = 'correction' ORDER BY contract_id, correction_seq,"
        " entry DESC").fetchall()


def test_a_contract_changed_after_close_is_corrected_in_the_next_open_period(conn: psycopg.Connection) -> None:
    """Rule 7: the sync that accepts a retroactive change writes the closed month's issued net reversed
    and its new charge into the earliest open period; a repeat or an unchanged month writes nothing; a
    further change before that period closes replaces the pending correction; the next close issues it."""
    _sync(conn, *CONTRACTS)
    _close(conn, NOV)
    unchanged = [*CONTRACTS[:3], CONTRACTS[3].replace("onboarding", "onboarding renamed")]
    _sync(conn, *unchanged, allow_retroactive=True)  # a description: no charge of November changes
    assert _corrections(conn) == []
    f1 = CONTRACTS[2].replace("299.99", "330")
    r1 = CONTRACTS[0].replace("2026-11-10T14:00:00Z,,", "2026-11-10T14:00:00Z,2026-11-20T00:00:00Z,")
    _sync(conn, r1, CONTRACTS[1], f1, CONTRACTS[3], allow_retroactive=True)
    new_fee = _money(Fraction(330) * 20 / 30)
    new_reservation = _money(8 * Fraction("2.15") * _hours(datetime(2026, 11, 10, 14, tzinfo=UTC),
                                                           datetime(2026, 11, 20, tzinfo=UTC)))
    assert new_reservation == Decimal("3887.20")  # 226 h x 8 x 2.15
    nov, dec = NOV.start, DEC.start
    expected = [("f-1", "reversal", -MONTHLY_FEE, nov, dec), ("f-1", "charge", new_fee, nov, dec),
                ("r-1", "reversal", -RESERVATION_FEE, nov, dec), ("r-1", "charge", new_reservation, nov, dec)]
    assert _corrections(conn) == expected
    _sync(conn, r1, CONTRACTS[1], f1, CONTRACTS[3], allow_retroactive=True)  # a repeat: nothing doubles
    assert _corrections(conn) == expected
    f1_again = CONTRACTS[2].replace("299.99", "360")
    _sync(conn, r1, CONTRACTS[1], f1_again, CONTRACTS[3], allow_retroactive=True)
    assert _corrections(conn)[:2] == [("f-1", "reversal", -MONTHLY_FEE, nov, dec),
                                      ("f-1", "charge", Decimal("240.00"), nov, dec)]
    # December closes with its own charges (r-1 ended in November) and November's corrections
    bill(conn, [Usage("coke", date(2026, 12, d), "cpu-vm", "c1", "1") for d in range(1, 32)]
         + [Usage("pepsi", date(2026, 12, d), "cpu-vm", "p1", "1") for d in range(1, 32)], "dec")
    december = _close(conn, DEC)
    coke = next(i for i in december.invoices if i.org_id == "coke")
    dec_usage = Decimal("0.12") * 31
    dec_true_up = _money(Fraction(1000) - Fraction(dec_usage))
    corrections = (Decimal("240.00") - MONTHLY_FEE) + (new_reservation - RESERVATION_FEE)
    assert coke.subtotal == dec_usage + dec_true_up + Decimal("360.00") + corrections
    assert coke.document_type == "credit_note"  # the reservation's refund outweighs December's charges
    lines = fetch_invoice_lines(conn, coke.invoice_id)
    by_contract: dict[str | None, Decimal] = {}
    for ln in lines:
        if ln.charge_class == "correction":  # a reversal and a new charge at another unit price: two lines
            by_contract[ln.contract_id] = by_contract.get(ln.contract_id, Decimal(0)) + ln.amount
    assert by_contract == {"f-1": Decimal("240.00") - MONTHLY_FEE, "r-1": new_reservation - RESERVATION_FEE}


def test_a_usage_correction_of_an_in_term_day_corrects_the_true_up_at_the_next_close(
        conn: psycopg.Connection) -> None:
    """Rule 4: eligible spend is the usage as currently rated, later corrections included: more usage on a
    closed in-term day lowers the closed month's true-up, corrected by the close of the month it lands in."""
    _sync(conn, CONTRACTS[1])
    _close(conn, NOV)
    bill(conn, [Usage("coke", date(2026, 11, 20), "h100-vm", "g1", "10", 8)], "r2")  # 110.00 -> 220.00
    bill(conn, [Usage(org, date(2026, 12, d), "cpu-vm", "x", "0") for org in ("coke", "pepsi")
                for d in range(1, 32)], "dec")
    # rule 6: the preview of December shows the November true-up's correction its close will write
    [preview] = [d for d in preview_period(conn, DEC) if d.org_id == "coke"]
    december = _close(conn, DEC)
    new_true_up = _money(Fraction(500) - Fraction(Decimal("220.00") + Decimal("0.06")))
    assert _corrections(conn) == [("c-1", "reversal", -TRUE_UP, NOV.start, DEC.start),
                                  ("c-1", "charge", new_true_up, NOV.start, DEC.start)]
    coke = next(i for i in december.invoices if i.org_id == "coke")
    # December: a 1000 true-up (no usage), the 110.00 day correction, the November true-up's correction
    assert coke.subtotal == Decimal("1000.00") + Decimal("110.00") + (new_true_up - TRUE_UP)
    assert preview.subtotal == coke.subtotal
    assert sorted(ln.amount for ln in preview.lines if ln.contract_id == "c-1" and ln.charge_class == "correction"
                  ) == [-TRUE_UP, new_true_up]
