"""The org registry's first expected day (issue 21, rule 15) and partner-only sightings (rule 14 c).

An org's first expected day is the earlier of its first day with usage and the day billed by the
first scheduled run that listed it: a backfill (or a conf window) of an old window never back-dates
it to the window's start, so the months in between stay closable. On a partner-only console, where an
org is listed only on days with usage, its expected days run from its first to its last sighting.
"""

from __future__ import annotations

from datetime import date

import psycopg
import pytest

from rafay_billing import db
from rafay_billing.ledger.coverage import register_orgs, uncovered_days


@pytest.fixture
def conn(pg_conn: psycopg.Connection) -> psycopg.Connection:
    db.migrate(pg_conn)
    return pg_conn


def registry(conn: psycopg.Connection) -> dict[str, tuple]:
    rows = conn.execute(
        "SELECT org_id, first_listed_date, last_listed_date, unlisted_from FROM billing.org_registry"
    ).fetchall()
    return {r[0]: r[1:] for r in rows}


def test_a_backfill_of_an_old_window_does_not_back_date_current_orgs(conn: psycopg.Connection) -> None:
    """Before: the backfill of 09-01..09-05 made every listed org expected from 09-01, so September
    and October could not close."""
    register_orgs(conn, [("acme", "Acme"), ("beta", "Beta")], date(2026, 11, 10), "scheduled__1")
    # a backfill lists today's orgs for 09-01..09-04: acme had no usage then, beta some on 09-03
    register_orgs(conn, [("acme", "Acme"), ("beta", "Beta"), ("newco", "NewCo")], date(2026, 9, 1), "backfill__1",
                  last_day=date(2026, 9, 4), full_listing=True, scheduled=False,
                  usage_days={"beta": (date(2026, 9, 3), date(2026, 9, 3))})
    assert registry(conn) == {
        "acme": (date(2026, 11, 10), date(2026, 11, 10), None),
        "beta": (date(2026, 9, 3), date(2026, 11, 10), None),  # the earlier of its first usage and its listing
    }  # newco: no usage in the backfill, never listed by a scheduled run: not expected yet
    gaps = uncovered_days(conn, ["acme", "beta", "newco"], date(2026, 9, 1), date(2026, 11, 10))
    assert {o for o, _, _ in gaps} == {"beta"} and min(d for _, d, _ in gaps) == date(2026, 9, 3)


def test_a_first_run_that_is_a_backfill_ignores_the_billing_start_date(conn: psycopg.Connection) -> None:
    register_orgs(conn, [("acme", "Acme"), ("beta", "Beta")], date(2026, 10, 5), "backfill__1",
                  last_day=date(2026, 10, 6), start_floor=date(2026, 6, 1), scheduled=False,
                  usage_days={"acme": (date(2026, 10, 6), date(2026, 10, 6))})
    assert registry(conn) == {"acme": (date(2026, 10, 6), date(2026, 10, 6), None)}
    # the first scheduled run still takes the billing start date on an empty registry ... of scheduled runs
    register_orgs(conn, [("acme", "Acme"), ("beta", "Beta")], date(2026, 11, 10), "scheduled__1",
                  start_floor=date(2026, 6, 1))
    assert registry(conn)["beta"][0] == date(2026, 11, 10)  # not empty any more: a new tenant


def test_a_scheduled_run_still_registers_every_listed_org_from_its_day(conn: psycopg.Connection) -> None:
    register_orgs(conn, [("acme", "Acme")], date(2026, 11, 10), "scheduled__1")
    register_orgs(conn, [("acme", "Acme"), ("idle", "Idle")], date(2026, 11, 11), "scheduled__2",
                  usage_days={"acme": (date(2026, 11, 11), date(2026, 11, 11))})
    assert registry(conn) == {"acme": (date(2026, 11, 10), date(2026, 11, 11), None),
                              "idle": (date(2026, 11, 11), date(2026, 11, 11), None)}


def test_partner_only_expected_days_run_from_first_to_last_sighting(conn: psycopg.Connection) -> None:
    """A scheduled run of a partner-only console registers only the orgs sighted (with usage): one
    idle on 11-11 is expected up to 11-10, and from its next sighting on again."""
    register_orgs(conn, [("c1", "Coke"), ("p1", "Pepsi")], date(2026, 11, 10), "scheduled__1", full_listing=True)
    register_orgs(conn, [("c1", "Coke")], date(2026, 11, 11), "scheduled__2", full_listing=True)
    assert registry(conn)["p1"] == (date(2026, 11, 10), date(2026, 11, 10), date(2026, 11, 11))
    assert uncovered_days(conn, ["p1"], date(2026, 11, 10), date(2026, 11, 13)) == [
        ("p1", date(2026, 11, 10), "missing")]
    register_orgs(conn, [("c1", "Coke"), ("p1", "Pepsi")], date(2026, 11, 12), "scheduled__3", full_listing=True)
    assert registry(conn)["p1"] == (date(2026, 11, 10), date(2026, 11, 12), None)
