"""How a re-rating replaces a day's line items, and rating on several connections (issue 14).

A re-rating compares the fresh rating with what the day holds and writes only the difference, so an
unchanged day is not rewritten; the result must always equal a rating of the day from scratch. With
``connections`` > 1 a window's orgs are rated by parallel transactions, one group of whole orgs each.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import psycopg
import pytest

from rafay_billing import db
from rafay_billing.ledger.price_book import sync_price_book
from rafay_billing.ledger.rating import DaySlice, landed_slices, rate_slices, rate_window
from tests.integration.rafay_billing.ledger.test_rating import PRICE_BOOK, land, rating_db, usage_rows
from tests.support.landed_usage import W1

DAY = W1.start.date()


@pytest.fixture
def conn(pg_conn: psycopg.Connection) -> psycopg.Connection:
    return rating_db(pg_conn)


KEY = "org_id, usage_date, profile, instance_key, dimension, charge_class, correction_seq, entry"


def ledger(conn: psycopg.Connection) -> dict[str, Any]:
    """Everything rating writes, without the times it was written (rated_at, updated_at)."""
    items = conn.execute(
        f"SELECT {KEY}, to_jsonb(li) - 'rated_at' FROM billing.charge_line_items AS li ORDER BY {KEY}"
    ).fetchall()
    exceptions = conn.execute(
        "SELECT to_jsonb(e) - 'rated_at' FROM billing.rating_exceptions AS e ORDER BY org_id, usage_date, record_seq,"
        " dimension"
    ).fetchall()
    coverage = conn.execute(
        "SELECT to_jsonb(c) - 'updated_at' FROM billing.coverage AS c ORDER BY org_id, usage_date"
    ).fetchall()
    return {"items": items, "exceptions": exceptions, "coverage": coverage}


def row_versions(conn: psycopg.Connection) -> dict[tuple, tuple[str, str]]:
    """Each line item's physical row version: a rewritten row gets a new (ctid, xmin)."""
    rows = conn.execute(f"SELECT {KEY}, ctid::text, xmin::text FROM billing.charge_line_items").fetchall()
    return {tuple(r[:8]): (r[8], r[9]) for r in rows}


def rate_from_scratch(conn: psycopg.Connection, run_id: str) -> dict[str, Any]:
    """The ledger a rating of the day gives when the day held no items before."""
    with db.transaction(conn), conn.cursor() as cur:
        slices = landed_slices(conn, W1, run_id)
        cur.execute(db.sql("bench/delete_day_items.sql"),
                    {"org_ids": [s.org_id for s in slices], "usage_dates": [s.usage_date for s in slices]})
    rate_window(conn, W1, run_id)
    return ledger(conn)


def test_an_unchanged_re_rating_rewrites_no_line_item(conn: psycopg.Connection) -> None:
    land(conn, W1, usage_rows(W1), "r")
    first = rate_window(conn, W1, "r")
    before, versions = ledger(conn), row_versions(conn)
    assert first.line_items == len(versions) > 0
    again = rate_window(conn, W1, "r")  # a retried rate_window: same run, same usage, same prices
    assert again == first
    assert ledger(conn) == before
    assert row_versions(conn) == versions  # not one item deleted and inserted again


def test_a_price_change_rewrites_only_the_items_it_changes(conn: psycopg.Connection) -> None:
    land(conn, W1, usage_rows(W1), "r")
    rate_window(conn, W1, "r")
    versions = row_versions(conn)
    service = {k for k, in conn.execute(
        f"SELECT ({KEY}) FROM billing.charge_line_items WHERE price_id = 'type-service'").fetchall()}
    assert service and len(service) < len(versions)
    sync_price_book(conn, PRICE_BOOK.replace("type-service,,service,,instance_hour,0.45", "type-service,,service,,"
                                             "instance_hour,0.50"))
    rate_window(conn, W1, "r")
    after = row_versions(conn)
    changed = {k for k in versions if after.get(k) != versions[k]}
    assert len(changed) == len(service)  # the service items, and only they, were rewritten
    assert {r[0] for r in conn.execute(
        "SELECT DISTINCT unit_price FROM billing.charge_line_items WHERE price_id = 'type-service'")} == {
        Decimal("0.50")}
    assert ledger(conn) == rate_from_scratch(conn, "r")


def test_a_price_written_with_another_scale_is_rewritten_as_written(conn: psycopg.Connection) -> None:
    """0.450 equals 0.45 as a number but not in a report: the item must show the price as it now stands."""
    land(conn, W1, usage_rows(W1), "r")
    rate_window(conn, W1, "r")
    conn.execute("UPDATE billing.price_book SET unit_price = 0.450 WHERE price_id = 'type-service'")
    rate_window(conn, W1, "r")
    prices = {r[0] for r in conn.execute(
        "SELECT DISTINCT unit_price::text FROM billing.charge_line_items WHERE price_id = 'type-service'")}
    assert prices == {"0.450"}


def test_a_new_run_re_rates_every_item_and_a_rated_org_mixes_with_unrated_ones(conn: psycopg.Connection) -> None:
    rows = usage_rows(W1)
    land(conn, W1, rows, "run-1")
    rate_slices(conn, [DaySlice("acme", DAY, "Acme")], "run-1")  # one org rated, the others not yet
    rate_window(conn, W1, "run-1")  # acme re-rated (stage, unchanged), the others rated straight in
    assert ledger(conn) == rate_from_scratch(conn, "run-1")
    land(conn, W1, rows, "run-2")
    rate_window(conn, W1, "run-2")
    assert {r[0] for r in conn.execute("SELECT DISTINCT run_id FROM billing.charge_line_items")} == {"run-2"}
    assert ledger(conn) == rate_from_scratch(conn, "run-2")


@pytest.mark.parametrize("connections", [2, 3])
def test_parallel_groups_write_exactly_what_one_connection_writes(
    conn: psycopg.Connection, billing_dsn: str, connections: int
) -> None:
    land(conn, W1, usage_rows(W1), "r")
    serial = rate_window(conn, W1, "r")
    want = ledger(conn)
    opened: list[psycopg.Connection] = []

    def connect() -> psycopg.Connection:
        opened.append(psycopg.connect(billing_dsn))
        return opened[-1]

    with db.transaction(conn), conn.cursor() as cur:
        slices = landed_slices(conn, W1, "r")
        cur.execute(db.sql("bench/delete_day_items.sql"),
                    {"org_ids": [s.org_id for s in slices], "usage_dates": [s.usage_date for s in slices]})
    parallel = rate_window(conn, W1, "r", connect=connect, connections=connections)
    assert parallel == serial
    assert ledger(conn) == want
    orgs = len({s.org_id for s in slices})
    assert len(opened) == min(connections, orgs) - 1 and all(c.closed for c in opened)
    assert rate_window(conn, W1, "r", connect=connect, connections=connections) == serial  # and re-rated


def test_a_failed_group_raises_and_the_other_groups_stay_rated(conn: psycopg.Connection) -> None:
    land(conn, W1, usage_rows(W1), "r")
    slices = landed_slices(conn, W1, "r")

    def connect() -> psycopg.Connection:
        raise psycopg.OperationalError("the billing database refused a second connection")

    with pytest.raises(psycopg.OperationalError, match="second connection"):
        rate_slices(conn, slices, "r", connect=connect, connections=2)
    covered = {r[0] for r in conn.execute("SELECT org_id FROM billing.coverage WHERE billed_run_id = 'r'")}
    billed = {r[0] for r in conn.execute("SELECT DISTINCT org_id FROM billing.charge_line_items")}
    orgs = sorted({s.org_id for s in slices})
    # the groups rated before the error stand whole (a prefix of the orgs, each with its coverage),
    # the others are untouched: no group starts after an error
    assert covered == billed == set(orgs[: len(covered)]) and len(covered) < len(orgs)
    again = rate_slices(conn, slices, "r")  # the retry rates everything
    assert again.slices == len(slices)
    assert {r[0] for r in conn.execute("SELECT org_id FROM billing.coverage WHERE billed_run_id = 'r'")} == set(orgs)


def test_a_window_with_nothing_landed_rates_nothing_on_any_number_of_connections(
    conn: psycopg.Connection, billing_dsn: str
) -> None:
    summary = rate_slices(conn, [], "r", connect=lambda: psycopg.connect(billing_dsn), connections=2)
    assert (summary.slices, summary.line_items, summary.orgs) == (0, 0, 0)
