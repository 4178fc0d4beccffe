"""Issue 21, rule 10: history that cannot be rewritten, whoever connects (real PostgreSQL).

TRUNCATE fires no row triggers: before 008 a TRUNCATE of the line items let a re-billing of a closed
day charge its hours a second time. And an issued invoice took new lines.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import psycopg
import pytest

from rafay_billing import db
from rafay_billing.ledger.coverage import register_orgs
from rafay_billing.ledger.price_book import sync_price_book
from rafay_billing.period import Period
from rafay_billing.periods.close import close_period
from tests.support.billed import PRICE_BOOK, Usage, bill

OCT = Period(date(2026, 10, 1))
DAY = date(2026, 10, 31)

# Every table of the schema holds ledger history (or what the ledger is checked against).
LEDGER_TABLES = [
    "audit_log", "billing_periods", "charge_line_items", "coverage", "currencies", "exception_waivers",
    "invoice_counters", "invoice_lines", "invoices", "org_registry", "price_book", "price_book_history",
    "rating_exceptions", "schema_migrations", "usage_records",
]


def issue_october(conn: psycopg.Connection) -> str:
    """Bill 2026-10-31 for one org and close October: one issued invoice; returns its id."""
    conn.autocommit = True
    db.migrate(conn)
    sync_price_book(conn, PRICE_BOOK)
    register_orgs(conn, [("acme", "ACME")], DAY, "r", last_day=DAY)
    bill(conn, [Usage("acme", DAY, "cpu-vm", "vm1", "10"), Usage("acme", DAY, "h100-vm", "g1", "2", 1)], "r")
    result = close_period(conn, OCT, actor="test", issuer="RAFAY")
    assert len(result.invoices) == 1
    return conn.execute("SELECT invoice_id FROM billing.invoices").fetchone()[0]


def test_every_table_of_the_schema_is_listed(pg_conn: psycopg.Connection) -> None:
    """A table a later migration adds gets the trigger too (migrate attaches it): listed here to be seen."""
    db.migrate(pg_conn)
    tables = {r[0] for r in pg_conn.execute(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = 'billing' AND table_type = 'BASE TABLE'"
    )}
    assert set(LEDGER_TABLES) <= tables
    without = pg_conn.execute(
        "SELECT c.relname FROM pg_class c WHERE c.relnamespace = 'billing'::regnamespace AND c.relkind = 'r'"
        " AND NOT EXISTS (SELECT 1 FROM pg_trigger g WHERE g.tgrelid = c.oid AND (g.tgtype::int & 34) = 34)"
    ).fetchall()
    assert without == []


@pytest.mark.parametrize("table", LEDGER_TABLES)
def test_truncate_is_refused_on_every_ledger_table(pg_conn: psycopg.Connection, table: str) -> None:
    """Even for the owner (here a superuser): a TRUNCATE would make a closed day billable twice."""
    db.migrate(pg_conn)
    pg_conn.commit()
    with pytest.raises(psycopg.errors.IntegrityConstraintViolation, match="TRUNCATE is refused|issued history"):
        pg_conn.execute(f"TRUNCATE billing.{table} CASCADE")  # CASCADE: past the foreign keys, to the triggers
    pg_conn.rollback()
    with pytest.raises(psycopg.Error):  # refused by a trigger, or first by a foreign key
        pg_conn.execute(f"TRUNCATE billing.{table}")
    pg_conn.rollback()


def test_truncated_line_items_cannot_bill_a_closed_day_twice(pg_conn: psycopg.Connection) -> None:
    issue_october(pg_conn)
    items = pg_conn.execute("SELECT count(*), sum(amount) FROM billing.charge_line_items").fetchone()
    for table in ("charge_line_items", "usage_records", "audit_log"):
        with pytest.raises(psycopg.errors.IntegrityConstraintViolation, match=f"billing.{table} is ledger history"):
            pg_conn.execute(f"TRUNCATE billing.{table} CASCADE")
    assert pg_conn.execute("SELECT count(*), sum(amount) FROM billing.charge_line_items").fetchone() == items


def test_an_issued_invoice_takes_no_new_line(pg_conn: psycopg.Connection) -> None:
    invoice_id = issue_october(pg_conn)
    count, lines = pg_conn.execute(
        "SELECT i.line_count, (SELECT count(*) FROM billing.invoice_lines l WHERE l.invoice_id = i.invoice_id)"
        " FROM billing.invoices i"
    ).fetchone()
    assert count == lines == 2
    extra = (
        "INSERT INTO billing.invoice_lines (invoice_id, line_no, profile_type, profile, price_id, pricing_unit,"
        " unit_price, charge_class, quantity, amount, item_count)"
        " VALUES (%s, %s, 'compute', 'cpu-vm', 'cpu', 'instance_hour', 0.12, 'regular', 1, 0.12, 1)"
    )
    for line_no in (3, 99):
        with pytest.raises(psycopg.errors.IntegrityConstraintViolation, match="is issued with 2 line"):
            pg_conn.execute(extra, (invoice_id, line_no))  # autocommit: checked at the statement's commit
    with pytest.raises(psycopg.errors.IntegrityConstraintViolation, match="is issued with 2 line"):
        with pg_conn.transaction():
            pg_conn.execute(extra, (invoice_id, 3))
            pg_conn.execute("SELECT 1")  # still inside: the check is deferred to the commit
    assert pg_conn.execute("SELECT count(*), sum(amount) FROM billing.invoice_lines").fetchone()[0] == 2
    subtotal = pg_conn.execute("SELECT subtotal FROM billing.invoices").fetchone()[0]
    assert subtotal == Decimal("6.70")  # 10 h x 0.12 + 2 GPU-h x 2.75
