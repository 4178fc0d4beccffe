"""After a period is closed its items never change: re-billing one of its days writes corrections into
the earliest open period, and the database itself refuses to rewrite closed history (real PostgreSQL)."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

import psycopg
import pytest

from rafay_billing import db
from rafay_billing.ledger.load import LoadError, load_org_usage
from rafay_billing.ledger.price_book import sync_price_book
from rafay_billing.ledger.rating import DaySlice, rate_slices
from rafay_billing.window import Window
from tests.support.landed_usage import usage_csv

DAY = date(2026, 10, 31)
W = Window.for_day(DAY)
BOOK = """price_id,org_id,profile_type,profile,unit,unit_price,currency,effective_from,effective_to
vm,,,,instance_hour,{price},{currency},2026-01-01,
"""


def rows(hours: str = "10", instances: int = 2) -> list[dict[str, Any]]:
    return [{
        "window_start": W.start_iso, "window_end": W.end_iso, "org_id": "acme", "organization": "Acme",
        "org_seq": 0, "record_seq": i, "profile_type": "compute", "profile": "vm", "instance": f"vm-{i}",
        "instance_id": f"i-{i}", "instance_key": f"i-{i}", "status": "running", "seed_usage": hours,
        "usage_hours": Decimal(hours), "gpu_count": None, "invalid_reason": None,
        "source_page": "usage-vm-page-0000.json", "source_index": i,
    } for i in range(instances)]


@pytest.fixture
def conn(pg_conn: psycopg.Connection) -> psycopg.Connection:
    pg_conn.autocommit = True
    db.migrate(pg_conn)
    return pg_conn


def bill(conn: psycopg.Connection, run_id: str, *, price: str = "2.00", currency: str = "USD", hours: str = "10",
         instances: int = 2):
    sync_price_book(conn, BOOK.format(price=price, currency=currency))
    load_org_usage(conn, W, "acme", usage_csv(rows(hours, instances)), run_id)
    return rate_slices(conn, [DaySlice("acme", DAY, "Acme")], run_id)


def close(conn: psycopg.Connection, month: str) -> None:
    start = date.fromisoformat(f"{month}-01")
    end = date(start.year + (start.month == 12), start.month % 12 + 1, 1)
    conn.execute("INSERT INTO billing.billing_periods (period_start, period_end, closed_by) VALUES (%s, %s, 'test')",
                 (start, end))


def items(conn: psycopg.Connection, period: str | None = None) -> list[tuple]:
    return conn.execute(
        "SELECT billing_period_start::text, charge_class, correction_seq, entry, instance_key, pricing_quantity,"
        " unit_price, currency::text, amount FROM billing.charge_line_items"
        " WHERE %(p)s::date IS NULL OR billing_period_start = %(p)s::date"
        " ORDER BY billing_period_start, correction_seq, entry DESC, instance_key",
        {"p": period},
    ).fetchall()


def net(conn: psycopg.Connection) -> dict[str, Decimal]:
    return dict(conn.execute(
        "SELECT currency::text, sum(amount) FROM billing.charge_line_items GROUP BY 1 HAVING sum(amount) <> 0"
    ).fetchall())


def test_rebilling_a_closed_day_writes_reversal_and_new_items_into_the_next_open_period(conn) -> None:
    bill(conn, "oct-run")
    close(conn, "2026-10")
    issued = items(conn, "2026-10-01")
    summary = bill(conn, "fix-run", price="2.50")
    assert items(conn, "2026-10-01") == issued  # the issued items are untouched
    assert items(conn, "2026-11-01") == [
        ("2026-11-01", "correction", 1, "reversal", "i-0", Decimal("-10"), Decimal("2.00"), "USD", Decimal("-20.00")),
        ("2026-11-01", "correction", 1, "reversal", "i-1", Decimal("-10"), Decimal("2.00"), "USD", Decimal("-20.00")),
        ("2026-11-01", "correction", 1, "charge", "i-0", Decimal("10"), Decimal("2.50"), "USD", Decimal("25.00")),
        ("2026-11-01", "correction", 1, "charge", "i-1", Decimal("10"), Decimal("2.50"), "USD", Decimal("25.00")),
    ]
    [correction] = summary.corrections
    assert (correction.period_start, correction.correction_seq, correction.delta_by_currency) == (
        date(2026, 11, 1), 1, {"USD": Decimal("10.00")}  # new - old = 50.00 - 40.00
    )
    assert net(conn) == {"USD": Decimal("50.00")}
    [audit] = conn.execute("SELECT action, actor, org_id, usage_date, detail FROM billing.audit_log").fetchall()
    assert audit[:4] == ("correction", "fix-run", "acme", DAY) and audit[4]["delta"] == {"USD": "10.00"}


def test_an_unchanged_day_writes_nothing_and_a_repeated_correction_is_not_doubled(conn) -> None:
    bill(conn, "oct-run")
    close(conn, "2026-10")
    assert bill(conn, "same-again").corrections == ()
    assert items(conn, "2026-11-01") == []
    bill(conn, "fix-1", price="2.50")
    after_first = items(conn)
    bill(conn, "fix-2", price="2.50")  # the same correction again
    assert [i[:-1] for i in items(conn)] == [i[:-1] for i in after_first] and net(conn) == {"USD": Decimal("50.00")}
    assert conn.execute("SELECT count(*) FROM billing.audit_log").fetchone() == (1,)


def test_pending_corrections_are_replaced_until_their_period_closes_then_corrected_again(conn) -> None:
    bill(conn, "oct-run")
    close(conn, "2026-10")
    bill(conn, "fix-1", price="2.50")
    bill(conn, "fix-2", price="3.00")  # November is still open: its pending correction is replaced
    assert {i[2] for i in items(conn, "2026-11-01")} == {1}
    assert net(conn) == {"USD": Decimal("60.00")}
    close(conn, "2026-11")
    bill(conn, "fix-3", price="3.00", hours="12")  # now the issued state is October's items + November's correction
    december = items(conn, "2026-12-01")
    assert {(i[2], i[3]) for i in december} == {(2, "reversal"), (2, "charge")}
    assert sum(i[-1] for i in december if i[3] == "reversal") == Decimal("-60.00")  # reverses the net, 3.00 x 20 h
    assert net(conn) == {"USD": Decimal("72.00")}  # 2 x 12 h x 3.00


def test_a_currency_change_corrects_per_currency(conn) -> None:
    bill(conn, "oct-run")
    close(conn, "2026-10")
    summary = bill(conn, "to-euro", price="1.90", currency="EUR")
    assert summary.corrections[0].delta_by_currency == {"USD": Decimal("-40.00"), "EUR": Decimal("38.00")}
    assert net(conn) == {"EUR": Decimal("38.00")}


def test_an_instance_that_vanished_is_reversed_and_a_new_one_charged(conn) -> None:
    bill(conn, "oct-run", instances=2)
    close(conn, "2026-10")
    bill(conn, "late-run", instances=1)
    assert net(conn) == {"USD": Decimal("20.00")}
    assert [(i[3], i[4]) for i in items(conn, "2026-11-01")] == [
        ("reversal", "i-0"), ("reversal", "i-1"), ("charge", "i-0")
    ]


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE billing.charge_line_items SET amount = 0, pricing_quantity = 0",
        "DELETE FROM billing.charge_line_items",
        "DELETE FROM billing.usage_records",
        "UPDATE billing.usage_records SET usage_hours = 1",
        "INSERT INTO billing.charge_line_items (org_id, usage_date, profile, instance_key, window_start, window_end,"
        " organization, profile_type, instance, usage_hours, pricing_unit, pricing_quantity, unit_price, currency,"
        " minor_unit, amount, price_id, run_id) SELECT org_id, usage_date, profile, 'extra', window_start,"
        " window_end, organization, profile_type, instance, usage_hours, pricing_unit, pricing_quantity, unit_price,"
        " currency, minor_unit, amount, price_id, run_id FROM billing.charge_line_items LIMIT 1",
        "UPDATE billing.billing_periods SET closed_by = 'me'",
        "DELETE FROM billing.billing_periods",
        "DELETE FROM billing.audit_log",
    ],
)
def test_the_database_refuses_to_rewrite_a_closed_period(conn, statement: str) -> None:
    bill(conn, "oct-run")
    conn.execute(
        "INSERT INTO billing.audit_log (action, actor, period_start) VALUES ('close', 'test', '2026-10-01')"
    )
    close(conn, "2026-10")
    before = items(conn)
    with pytest.raises(psycopg.errors.IntegrityConstraintViolation, match="closed|issued history"):
        conn.execute(statement)
    assert items(conn) == before


def test_a_new_runs_usage_of_a_closed_day_is_added_beside_the_issued_usage(conn) -> None:
    bill(conn, "oct-run")
    close(conn, "2026-10")
    load_org_usage(conn, W, "acme", usage_csv(rows("11")), "later-run")
    assert conn.execute(
        "SELECT run_id, count(*) FROM billing.usage_records GROUP BY 1 ORDER BY 1"
    ).fetchall() == [("later-run", 2), ("oct-run", 2)]
    # ... but that run may not replace it: a retry that would delete the issued run's rows is refused
    with pytest.raises(LoadError, match="cannot be replaced: billing period 2026-10-01 is closed"):
        load_org_usage(conn, W, "acme", usage_csv(rows("11")), "oct-run")


def test_issued_invoices_never_change(conn) -> None:
    bill(conn, "oct-run")
    close(conn, "2026-10")
    conn.execute(
        "INSERT INTO billing.invoices (invoice_id, issuer, invoice_seq, invoice_number, org_id, organization,"
        " currency, period_start, period_end, subtotal, line_count, issued_by) VALUES"
        " ('inv-1', 'ACME', 1, 'ACME-000001', 'acme', 'Acme', 'USD', '2026-10-01', '2026-11-01', 40.00, 2, 'test')"
    )
    for statement in ("UPDATE billing.invoices SET subtotal = 0", "DELETE FROM billing.invoices",
                      "TRUNCATE billing.invoices CASCADE"):
        with pytest.raises(psycopg.errors.IntegrityConstraintViolation, match="issued history"):
            conn.execute(statement)
    assert conn.execute("SELECT subtotal FROM billing.invoices").fetchone() == (Decimal("40.00"),)


def test_used_prices_are_versioned_not_lost(conn) -> None:
    bill(conn, "oct-run")
    sync_price_book(conn, BOOK.format(price="2.50", currency="USD"))
    sync_price_book(conn, BOOK.replace("vm,,,,", "vm2,,,,").format(price="3.00", currency="USD"))  # vm is gone
    history = conn.execute(
        "SELECT price_id, unit_price, change FROM billing.price_book_history ORDER BY version_id"
    ).fetchall()
    assert history == [("vm", Decimal("2.00"), "UPDATE"), ("vm", Decimal("2.50"), "DELETE")]
