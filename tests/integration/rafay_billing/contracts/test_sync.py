"""The contracts sync over a real PostgreSQL (issue 22): every version kept, nothing deleted, closed
months protected unless allow_retroactive (audited), and the table unchanged on any error."""

from __future__ import annotations

import random
import string
from datetime import UTC, date, datetime
from decimal import Decimal

import psycopg
import pytest

from rafay_billing import db
from rafay_billing.contracts import sync as contracts_sync
from rafay_billing.contracts.errors import ContractsError, RetroactiveChangeError
from rafay_billing.contracts.source import COLUMNS
from rafay_billing.contracts.sync import contracts_as_of, fetch_contracts, fetch_versions, sync_contracts
from rafay_billing.ledger.price_book import sync_price_book

HEADER = ",".join(COLUMNS)
R1 = "r-1,coke,reservation,,h100,gpu_hour,8,2.15,,USD,,2026-11-10T14:00:00Z,,,,8 H100"
C1 = "c-1,coke,commitment,,,,,,1000,USD,,2026-11-16,,,,minimum"
F1 = "f-1,coke,fee,,,,,,300,USD,monthly,2026-12-01,,,,support"
PRICES = ("price_id,org_id,profile_type,profile,unit,unit_price,currency,effective_from,effective_to\n"
          "all,,,,instance_hour,0.10,USD,2026-01-01,\n")


def _csv(*rows: str) -> str:
    return "\n".join([HEADER, *rows]) + "\n"


@pytest.fixture
def conn(pg_conn: psycopg.Connection) -> psycopg.Connection:
    pg_conn.autocommit = True
    db.migrate(pg_conn)
    sync_price_book(pg_conn, PRICES)
    pg_conn.execute(
        "INSERT INTO billing.org_registry (org_id, organization, first_listed_date, last_listed_date, last_run_id)"
        " VALUES ('coke', 'Coke', '2026-11-01', '2026-12-31', 'r')")
    return pg_conn


def _close(conn: psycopg.Connection, month: str) -> None:
    conn.execute("INSERT INTO billing.billing_periods (period_start, period_end, closed_by)"
                 " VALUES (%s::date, (%s::date + interval '1 month')::date, 'test')", (month, month))


def _snapshot(conn: psycopg.Connection) -> tuple[list, list]:
    audit = conn.execute("SELECT action, org_id, period_start, detail FROM billing.audit_log ORDER BY audit_id")
    return fetch_versions(conn), audit.fetchall()


def test_first_sync_stores_version_1_and_a_repeat_changes_nothing(conn: psycopg.Connection) -> None:
    result = sync_contracts(conn, _csv(R1, C1, F1), actor="test")
    assert (result.inserted, result.changed, result.unchanged, result.warnings) == (("r-1", "c-1", "f-1"), (), 0, ())
    current = {c.contract_id: c for c in fetch_contracts(conn)}
    assert current["r-1"].unit_price == Decimal("2.15") and str(current["r-1"].unit_price) == "2.15"
    assert current["r-1"].term_start == datetime(2026, 11, 10, 14, tzinfo=UTC) and current["r-1"].term_end is None
    assert current["c-1"].amount == Decimal("1000") and current["c-1"].frequency == "monthly"
    before = fetch_versions(conn)
    assert [(v["contract_id"], v["version"], v["valid_to"], v["synced_by"]) for v in before] == [
        ("c-1", 1, None, "test"), ("f-1", 1, None, "test"), ("r-1", 1, None, "test")]
    again = sync_contracts(conn, _csv(F1, C1, R1))
    assert (again.inserted, again.changed, again.unchanged) == ((), (), 3)
    assert fetch_versions(conn) == before
    assert "3 contracts: 0 new, 0 changed, 3 unchanged" == str(again)


def test_a_change_is_a_new_version_and_every_version_is_kept(conn: psycopg.Connection) -> None:
    sync_contracts(conn, _csv(R1, C1))
    first_synced = fetch_versions(conn)[1]["valid_from"]
    result = sync_contracts(conn, _csv(R1.replace("2.15", "2.05"), C1))
    assert result.changed == ("r-1",) and not result.retroactive
    versions = [v for v in fetch_versions(conn) if v["contract_id"] == "r-1"]
    assert [(v["version"], v["unit_price"]) for v in versions] == [(1, Decimal("2.15")), (2, Decimal("2.05"))]
    assert versions[0]["valid_to"] is not None and versions[1]["valid_to"] is None
    assert {c.contract_id: c.unit_price for c in fetch_contracts(conn)}["r-1"] == Decimal("2.05")
    [old] = [c for c in contracts_as_of(conn, first_synced) if c.contract_id == "r-1"]
    assert old.unit_price == Decimal("2.15")


def test_omitting_a_contract_is_refused_unless_allowed_and_it_is_never_deleted(conn: psycopg.Connection) -> None:
    sync_contracts(conn, _csv(R1, C1))
    before = _snapshot(conn)
    with pytest.raises(RetroactiveChangeError, match=r"contract 'c-1' is in billing.contracts but not in the file") as info:
        sync_contracts(conn, _csv(R1))
    assert info.value.omitted == ["c-1"] and _snapshot(conn) == before
    with pytest.raises(RetroactiveChangeError):
        sync_contracts(conn, HEADER + "\n")
    result = sync_contracts(conn, _csv(R1), allow_retroactive=True, actor="ops")
    assert result.omitted == ("c-1",) and "kept though not in the file: c-1" in str(result)
    assert {c.contract_id for c in fetch_contracts(conn)} == {"r-1", "c-1"}
    [(action, actor, org, detail)] = conn.execute(
        "SELECT action, actor, org_id, detail FROM billing.audit_log").fetchall()
    assert (action, actor, org, detail) == (
        "contracts_retroactive", "ops", "coke", {"contract_id": "c-1", "change": "omitted_kept", "months": []})


def test_a_change_of_a_closed_month_is_refused_then_accepted_and_audited(conn: psycopg.Connection) -> None:
    sync_contracts(conn, _csv(R1, C1, F1))
    _close(conn, "2026-11-01")
    before = _snapshot(conn)
    changed = _csv(R1.replace(",8,2.15,", ",8,2.05,"), C1.replace("1000", "900"), F1.replace("300", "250"))
    with pytest.raises(RetroactiveChangeError) as info:
        sync_contracts(conn, changed)
    assert info.value.changes == {"r-1": [date(2026, 11, 1)], "c-1": [date(2026, 11, 1)]}  # f-1 starts in December
    assert "contract 'r-1' changes closed month(s) 2026-11" in str(info.value)
    assert "allow_retroactive" in str(info.value)
    assert _snapshot(conn) == before  # nothing written
    result = sync_contracts(conn, changed, allow_retroactive=True, actor="finance")
    assert result.retroactive == {"r-1": (date(2026, 11, 1),), "c-1": (date(2026, 11, 1),)}
    assert set(result.changed) == {"r-1", "c-1", "f-1"}
    assert "retroactive changes of closed months accepted (audited): c-1 2026-11; r-1 2026-11" in str(result)
    audit = conn.execute("SELECT action, actor, period_start, org_id, detail FROM billing.audit_log"
                         " ORDER BY detail->>'contract_id'").fetchall()
    assert audit == [
        ("contracts_retroactive", "finance", date(2026, 11, 1), "coke",
         {"contract_id": "c-1", "change": "changed", "months": ["2026-11"]}),
        ("contracts_retroactive", "finance", date(2026, 11, 1), "coke",
         {"contract_id": "r-1", "change": "changed", "months": ["2026-11"]}),
    ]
    flags = {(v["contract_id"], v["version"]): v["retroactive"] for v in fetch_versions(conn)}
    assert flags[("r-1", 2)] and flags[("c-1", 2)] and not flags[("f-1", 2)] and not flags[("r-1", 1)]


def test_term_changes_only_matter_where_they_touch_a_closed_month(conn: psycopg.Connection) -> None:
    sync_contracts(conn, _csv(R1, C1))
    _close(conn, "2026-11-01")
    # ending a contract in an open month, or a new description, changes no closed month
    assert sync_contracts(conn, _csv(R1.replace("Z,,,,8 H100", "Z,2027-03-01,,,renamed"), C1)).changed == ("r-1",)
    # ending it inside the closed month does
    with pytest.raises(RetroactiveChangeError, match="'c-1' changes closed month"):
        sync_contracts(conn, _csv(R1.replace("Z,,,,8 H100", "Z,2027-03-01,,,renamed"),
                                  C1.replace("2026-11-16,", "2026-11-16,2026-11-20")))
    # a new contract: refused when its term reaches into a closed month, accepted from an open one on
    with pytest.raises(RetroactiveChangeError, match="'f-2' changes closed month"):
        sync_contracts(conn, _csv(R1.replace("Z,,,,8 H100", "Z,2027-03-01,,,renamed"), C1,
                                  F1.replace("f-1", "f-2").replace("2026-12-01", "2026-10-01")))
    with pytest.raises(RetroactiveChangeError, match="'f-3' changes closed month"):
        sync_contracts(conn, _csv(R1.replace("Z,,,,8 H100", "Z,2027-03-01,,,renamed"), C1,
                                  "f-3,coke,fee,,,,,,50,USD,one_time,2026-11-30T23:00:00Z,,,,setup"))
    assert sync_contracts(conn, _csv(R1.replace("Z,,,,8 H100", "Z,2027-03-01,,,renamed"), C1, F1)).inserted == ("f-1",)


def test_months_before_billing_start_are_not_protected(conn: psycopg.Connection) -> None:
    sync_contracts(conn, _csv(R1))
    _close(conn, "2026-11-01")
    changed = _csv(R1.replace(",8,2.15,", ",8,2.05,"))
    with pytest.raises(RetroactiveChangeError):
        sync_contracts(conn, changed)
    assert sync_contracts(conn, changed, billing_start=date(2026, 12, 1)).retroactive == {}


def test_a_bad_file_leaves_the_table_as_it_was(conn: psycopg.Connection) -> None:
    sync_contracts(conn, _csv(R1, C1))
    before = _snapshot(conn)
    with pytest.raises(ContractsError, match=r"line 3: quantity '0' must be greater than 0"):
        sync_contracts(conn, _csv(R1.replace("2.15", "3"), R1.replace("r-1", "r-2").replace(",8,", ",0,"), C1))
    assert _snapshot(conn) == before


# --- values the CSV allows but the database cannot store: refused naming the line, table unchanged -------------


def _noise(length: int, alphabet: str = string.ascii_letters + string.digits, seed: str = "") -> str:
    """Text that does not compress: PostgreSQL compresses a long index entry before it refuses it."""
    rng = random.Random(f"{length}/{seed}")
    return "".join(rng.choice(alphabet) for _ in range(length))


def _with(row: str, **cells: str) -> str:
    """``row`` with some cells replaced."""
    values = dict(zip(COLUMNS, row.split(","), strict=True)) | cells
    return ",".join(values[name] for name in COLUMNS)


@pytest.mark.parametrize("column", ["contract_id", "org_id", "profile_type", "profile", "description"])
def test_a_text_too_long_for_the_database_is_refused_naming_the_line(conn: psycopg.Connection, column: str) -> None:
    """A 9,000-character contract_id or org_id passed the checks, then PostgreSQL refused the new version
    (ProgramLimitExceeded: index row too large) naming no CSV line; a profile type, profile or
    description that long was stored. Names are bounded as in the price book (200 characters), a
    description, in no index, to 1,000."""
    sync_contracts(conn, _csv(R1, C1))
    before = _snapshot(conn)
    with pytest.raises(ContractsError) as info:
        sync_contracts(conn, _csv(R1, C1, _with(R1, **{"contract_id": "r-2", column: _noise(9000)})))
    [(line, message)] = info.value.problems
    bound = "1,000" if column == "description" else "200"
    assert line == 4 and f"{column} is 9,000 characters long" in message and f"at most {bound} " in message, message
    assert _snapshot(conn) == before


def test_the_bounds_fit_the_database_in_every_column_at_once(conn: psycopg.Connection) -> None:
    """200 characters of 4 UTF-8 bytes each (the most there is) in every name of a reservation, and a
    1,000-character description of them: stored and read back as written."""
    emoji = "".join(chr(c) for c in range(0x1F300, 0x1F3FF))
    longest = {column: _noise(200, emoji, seed=column) for column in ("contract_id", "org_id", "profile_type", "profile")}
    longest["description"] = _noise(1000, emoji, seed="description")
    result = sync_contracts(conn, _csv(_with(R1, **longest)))
    assert result.inserted == (longest["contract_id"],)
    [stored] = fetch_contracts(conn)
    assert {column: getattr(stored, column) for column in longest} == longest


@pytest.mark.parametrize(("column", "row"), [("quantity", R1), ("unit_price", R1), ("amount", C1), ("amount", F1)],
                         ids=["quantity", "unit_price", "commitment amount", "fee amount"])
def test_a_number_beyond_numeric_is_refused_naming_the_line(conn: psycopg.Connection, column: str, row: str) -> None:
    """NUMERIC keeps at most 16,383 digits after the point: 16,384 passed the checks, then PostgreSQL
    refused the new version (NumericValueOutOfRange) naming no CSV line."""
    sync_contracts(conn, _csv(row))
    before = _snapshot(conn)
    with pytest.raises(ContractsError) as info:
        sync_contracts(conn, _csv(_with(row, **{column: "1." + "1" * 16384})))
    [(line, message)] = info.value.problems
    assert line == 2 and f"{column} has 16,384 digits after the decimal point" in message, message
    assert "at most 16,383" in message
    assert _snapshot(conn) == before
    finest = "0." + "0" * 16382 + "1"
    sync_contracts(conn, _csv(_with(row, **{column: finest})))
    [stored] = fetch_contracts(conn)
    assert getattr(stored, column) == Decimal(finest)


def test_an_error_after_writing_rolls_everything_back(conn: psycopg.Connection, monkeypatch) -> None:
    sync_contracts(conn, _csv(R1))
    _close(conn, "2026-11-01")
    before = _snapshot(conn)

    def boom(cur, contracts):
        raise RuntimeError("lost the database")

    monkeypatch.setattr(contracts_sync, "_warnings", boom)
    with pytest.raises(RuntimeError, match="lost the database"):
        sync_contracts(conn, _csv(R1.replace("2.15", "3"), C1), allow_retroactive=True)
    assert _snapshot(conn) == before


def test_warnings_for_an_unlisted_org_and_a_commitment_in_an_unpriced_currency(conn: psycopg.Connection) -> None:
    result = sync_contracts(conn, _csv(R1.replace("coke", "fanta"), C1.replace("USD", "EUR")))
    assert set(result.inserted) == {"r-1", "c-1"}
    assert len(result.warnings) == 2
    assert "org 'fanta' (contract(s) r-1) has never been listed" in result.warnings[0]
    assert "commitment 'c-1' is in EUR but no price of org 'coke' is" in result.warnings[1]
    assert sync_contracts(conn, _csv(R1.replace("coke", "fanta"), C1.replace("USD", "EUR"))).warnings == result.warnings


def test_the_schema_keeps_versions_and_refuses_what_the_sync_refuses(conn: psycopg.Connection) -> None:
    sync_contracts(conn, _csv(R1, C1))
    for statement in ("DELETE FROM billing.contract_versions",
                      "TRUNCATE billing.contract_versions",
                      "UPDATE billing.contract_versions SET unit_price = 0 WHERE contract_id = 'r-1'",
                      "UPDATE billing.contract_versions SET unit_price = 0, valid_to = now() WHERE contract_id = 'r-1'"):
        with pytest.raises(psycopg.errors.IntegrityConstraintViolation, match="keeps every version"):
            conn.execute(statement)
    conn.execute("UPDATE billing.contract_versions SET valid_to = now() WHERE contract_id = 'r-1'")
    with pytest.raises(psycopg.errors.IntegrityConstraintViolation):
        conn.execute("UPDATE billing.contract_versions SET valid_to = NULL WHERE contract_id = 'r-1'")
    bad = ("INSERT INTO billing.contract_versions (contract_id, version, org_id, kind, amount, currency, frequency,"
           " term_start, synced_by) VALUES ('c-9', 1, 'coke', 'commitment', 10, 'USD', 'monthly', %s, 't')")
    with pytest.raises(psycopg.errors.CheckViolation, match="kind_cells"):
        conn.execute(bad, (datetime(2026, 11, 1, 12, tzinfo=UTC),))
    with pytest.raises(psycopg.errors.UniqueViolation):
        conn.execute("INSERT INTO billing.contract_versions (contract_id, version, org_id, kind, amount, currency,"
                     " frequency, term_start, synced_by) VALUES ('c-1', 2, 'coke', 'commitment', 10, 'USD',"
                     " 'monthly', '2026-11-01Z', 't')")


def test_the_audit_log_keeps_its_other_actions(conn: psycopg.Connection) -> None:
    conn.execute("INSERT INTO billing.audit_log (action, actor) VALUES ('close', 't'), ('contracts_retroactive', 't')")
    with pytest.raises(psycopg.errors.CheckViolation):
        conn.execute("INSERT INTO billing.audit_log (action, actor) VALUES ('anything', 't')")


def test_the_sync_waits_for_a_running_close(conn: psycopg.Connection, billing_dsn: str) -> None:
    sync_contracts(conn, _csv(R1))
    with psycopg.connect(billing_dsn) as closer:
        closer.execute(db.sql("periods/close_lock.sql"))  # a close in progress holds its lock
        conn.execute("SET lock_timeout = '200ms'")
        with pytest.raises(psycopg.errors.LockNotAvailable):
            sync_contracts(conn, _csv(R1, C1))
        closer.rollback()
    conn.execute("RESET lock_timeout")
    assert sync_contracts(conn, _csv(R1, C1)).inserted == ("c-1",)
