"""Rule 8 (second half): a contract whose org has never been listed blocks the close of a month it charges."""

from __future__ import annotations

from datetime import date

import psycopg
import pytest

from rafay_billing import db
from rafay_billing.contracts.readiness import describe_unlisted, unlisted_orgs
from rafay_billing.contracts.source import COLUMNS
from rafay_billing.contracts.sync import sync_contracts
from rafay_billing.period import Period

HEADER = ",".join(COLUMNS)
NOV, DEC = Period(date(2026, 11, 1)), Period(date(2026, 12, 1))


@pytest.fixture
def conn(pg_conn: psycopg.Connection) -> psycopg.Connection:
    pg_conn.autocommit = True
    db.migrate(pg_conn)
    return pg_conn


def test_an_unlisted_org_blocks_only_the_months_its_contracts_charge(conn: psycopg.Connection) -> None:
    rows = [
        "r-1,fanta,reservation,,h100,gpu_hour,8,2.15,,USD,,2026-12-10T14:00:00Z,,,,",
        "f-1,fanta,fee,,,,,,50,USD,one_time,2026-11-03T09:00:00Z,,,,setup",
        "c-1,coke,commitment,,,,,,1000,USD,,2026-11-01,,,,",
    ]
    result = sync_contracts(conn, "\n".join([HEADER, *rows]) + "\n")
    assert sum("has never been listed" in w for w in result.warnings) == 2  # both orgs unknown so far
    assert unlisted_orgs(conn, NOV) == {"coke": ["c-1"], "fanta": ["f-1"]}
    assert unlisted_orgs(conn, DEC) == {"coke": ["c-1"], "fanta": ["r-1"]}
    assert unlisted_orgs(conn, Period(date(2026, 10, 1))) == {}
    assert unlisted_orgs(conn, NOV, billing_start=date(2026, 12, 1)) == {}
    conn.execute("INSERT INTO billing.org_registry (org_id, organization, first_listed_date, last_listed_date,"
                 " last_run_id) VALUES ('coke', 'Coke', '2026-11-01', '2026-11-01', 'r')")
    blocking = unlisted_orgs(conn, DEC)
    assert blocking == {"fanta": ["r-1"]}
    assert "org 'fanta' (contract(s) r-1)" in describe_unlisted(blocking, DEC)
