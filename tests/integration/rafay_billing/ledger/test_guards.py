"""Issue 21, rules 2 and 3, over a real PostgreSQL: a shrinking re-read never replaces a billed day
(it is ``held`` until accepted), and a stale run never overwrites a newer extraction."""

from __future__ import annotations

import itertools
from datetime import date
from decimal import Decimal
from typing import Any

import psycopg
import pytest

from rafay_billing import db
from rafay_billing.ledger.coverage import register_orgs, uncovered_days
from rafay_billing.ledger.load import load_org_usage
from rafay_billing.ledger.price_book import sync_price_book
from rafay_billing.ledger.rating import DaySlice, rate_slices
from rafay_billing.window import Window
from tests.support.landed_usage import usage_csv

DAY = date(2026, 10, 31)
W = Window.for_day(DAY)
SLICE = DaySlice("acme", DAY, "Acme")
BOOK = """price_id,org_id,profile_type,profile,unit,unit_price,currency,effective_from,effective_to
vm,,,,instance_hour,{price},USD,2026-01-01,
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
    sync_price_book(pg_conn, BOOK.format(price="2.00"))
    return pg_conn


def land(conn: psycopg.Connection, run_id: str, hours: str = "10", instances: int = 2, **kw: Any) -> int:
    return load_org_usage(conn, W, "acme", usage_csv(rows(hours, instances)), run_id, **kw)


def bill(conn: psycopg.Connection, run_id: str, hours: str = "10", instances: int = 2, **kw: Any):
    land(conn, run_id, hours, instances)
    return rate_slices(conn, [SLICE], run_id, **kw)


def items(conn: psycopg.Connection) -> list[tuple]:
    return conn.execute(
        "SELECT billing_period_start::text, charge_class, entry, instance_key, usage_hours, unit_price, amount, run_id"
        " FROM billing.charge_line_items ORDER BY billing_period_start, correction_seq, entry DESC, instance_key"
    ).fetchall()


def coverage(conn: psycopg.Connection) -> tuple:
    return conn.execute(
        "SELECT status, reason, run_id, billed_run_id FROM billing.coverage WHERE org_id = 'acme' AND usage_date = %s",
        (DAY,),
    ).fetchone()


# --- rule 2: a shrinking re-read ----------------------------------------------------------------------


def test_an_empty_re_read_does_not_replace_a_billed_day_it_is_held(conn) -> None:
    bill(conn, "night")
    billed = items(conn)
    assert sum(i[6] for i in billed) == Decimal("40.00")
    assert land(conn, "empty", instances=0) == 0  # the API answered with no records (retention, permissions)
    rate_slices(conn, [SLICE], "empty")
    assert items(conn) == billed  # the earlier items stand
    assert coverage(conn) == ("held", "usage_shrank", "empty", "night")
    [detail] = conn.execute("SELECT detail FROM billing.coverage").fetchone()
    assert "accept-shrink --org acme --day 2026-10-31 --run empty" in detail


def test_a_re_read_below_the_ratio_is_held_one_at_or_above_it_replaces(conn) -> None:
    bill(conn, "night")  # 20 h
    bill(conn, "shrunk", hours="4.99")  # 9.98 h < 0.5 x 20 h
    assert coverage(conn) == ("held", "usage_shrank", "shrunk", "night")
    assert {i[7] for i in items(conn)} == {"night"}
    bill(conn, "half", hours="5")  # 10 h: not below the ratio
    assert coverage(conn) == ("billed", None, "half", "half")
    assert sum(i[6] for i in items(conn)) == Decimal("20.00")


def test_a_read_whose_rating_failed_is_not_what_the_day_holds(conn) -> None:
    """A read passes the guard but rating its org fails (any database error; the day is ``failed`` and its
    items stand): that read was never billed, so it is not the day's extraction. Marked ``rated`` (the guard
    marked it before the org's rating, outside the savepoint that rolled back), it let the next read shrink
    the day from 20 h to 5.5 h unheld (5.5 >= 0.5 x its 10 h), and kept the day's own run from re-rating it."""
    bill(conn, "night")  # 20 h, 40.00
    conn.execute("""
        CREATE FUNCTION pg_temp.refuse() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN RAISE EXCEPTION 'cannot bill org %', NEW.org_id; END $$;
        CREATE TRIGGER refuse BEFORE INSERT OR UPDATE OR DELETE ON billing.charge_line_items
            FOR EACH ROW EXECUTE FUNCTION pg_temp.refuse();
    """)
    assert [f.org_id for f in bill(conn, "failing", hours="5").failed] == ["acme"]  # 10 h: passes the guard
    conn.execute("DROP TRIGGER refuse ON billing.charge_line_items")
    assert coverage(conn)[:2] == ("failed", None) and {i[7] for i in items(conn)} == {"night"}
    held = conn.execute("SELECT run_id FROM billing.extractions WHERE usage_date = %s AND status = 'rated'",
                        (DAY,)).fetchall()
    assert held == [("night",)]
    rate_slices(conn, [SLICE], "night")  # the day's own run re-rates it (it was refused as superseded)
    assert coverage(conn) == ("billed", None, "night", "night")
    bill(conn, "shrunk", hours="2.75")  # 5.5 h < 0.5 x the 20 h billed
    assert coverage(conn) == ("held", "usage_shrank", "shrunk", "night")
    assert {i[7] for i in items(conn)} == {"night"} and sum(i[6] for i in items(conn)) == Decimal("40.00")


def test_the_shrink_guard_ratio_is_a_setting(conn) -> None:
    bill(conn, "night")
    bill(conn, "smaller", hours="3", shrink_guard_ratio=Decimal("0.25"))  # 6 h >= 0.25 x 20 h
    assert coverage(conn) == ("billed", None, "smaller", "smaller")
    bill(conn, "smallest", hours="1", shrink_guard_ratio=Decimal("0.25"))  # 2 h < 0.25 x 6 h? no: 2 >= 1.5
    assert coverage(conn)[0] == "billed"
    bill(conn, "tiny", hours="0.1", shrink_guard_ratio=Decimal("0.25"))  # 0.2 h < 0.25 x 2 h
    assert coverage(conn)[:3] == ("held", "usage_shrank", "tiny")


def test_re_rating_the_extraction_a_day_holds_is_never_guarded_and_keeps_a_hold(conn) -> None:
    bill(conn, "night")
    bill(conn, "empty", instances=0)
    assert coverage(conn)[0] == "held"
    sync_price_book(conn, BOOK.format(price="3.00"))
    rate_slices(conn, [SLICE], "night")  # a price change re-rates the extraction the day holds
    assert sum(i[6] for i in items(conn)) == Decimal("60.00")
    assert coverage(conn) == ("held", "usage_shrank", "empty", "night")  # still waiting for a decision


def test_a_later_read_that_passes_the_guard_clears_the_hold(conn) -> None:
    bill(conn, "night")
    bill(conn, "empty", instances=0)
    bill(conn, "again", hours="11")
    assert coverage(conn) == ("billed", None, "again", "again")


def test_accept_shrink_rates_the_held_extraction_in_one_audited_step(conn) -> None:
    from rafay_billing.ledger.acceptance import accept_shrink
    from rafay_billing.ledger.guards import GuardError

    bill(conn, "night")
    bill(conn, "shrunk", hours="2")
    with pytest.raises(GuardError, match="reason"):
        accept_shrink(conn, "acme", DAY, "shrunk", " ", "ops@example.com")
    with pytest.raises(GuardError, match="no extraction"):
        accept_shrink(conn, "acme", DAY, "nosuchrun", "why", "ops@example.com")
    accept_shrink(conn, "acme", DAY, "shrunk", "instances were stopped on the 31st", "ops@example.com")
    assert coverage(conn) == ("billed", None, "shrunk", "shrunk")
    assert sum(i[6] for i in items(conn)) == Decimal("8.00")
    [(action, actor, org_id, usage_date, detail)] = conn.execute(
        "SELECT action, actor, org_id, usage_date, detail FROM billing.audit_log").fetchall()
    assert (action, actor, org_id, usage_date) == ("accept_shrink", "ops@example.com", "acme", DAY)
    assert detail["run_id"] == "shrunk" and detail["reason"] == "instances were stopped on the 31st"
    with pytest.raises(GuardError, match="holds already"):
        accept_shrink(conn, "acme", DAY, "shrunk", "again", "ops@example.com")
    with pytest.raises(GuardError, match="older"):
        accept_shrink(conn, "acme", DAY, "night", "go back", "ops@example.com")


def test_a_held_day_blocks_the_close_even_with_allow_exceptions_until_accepted(conn) -> None:
    from rafay_billing.errors import PeriodNotReady
    from rafay_billing.ledger.acceptance import accept_shrink
    from rafay_billing.period import parse_period
    from rafay_billing.periods.close import close_period

    register_orgs(conn, [("acme", "Acme")], DAY, "night")
    bill(conn, "night")
    bill(conn, "empty", instances=0)
    with pytest.raises(PeriodNotReady, match="allow_exceptions does not close over it") as refused:
        close_period(conn, parse_period("2026-10"), actor="test", issuer="RAFAY", allow_exceptions=True)
    assert "2026-10-31 (held" in str(refused.value)
    assert uncovered_days(conn, ["acme"], DAY, date(2026, 11, 1)) == [("acme", DAY, "held")]  # check_run too
    accept_shrink(conn, "acme", DAY, "empty", "the org was emptied on purpose", "ops")
    closed = close_period(conn, parse_period("2026-10"), actor="test", issuer="RAFAY")
    assert not closed.already_closed and not closed.invoices  # accepted: the day holds no usage


def test_an_accepted_closed_day_is_corrected(conn) -> None:
    from rafay_billing.ledger.acceptance import accept_shrink

    bill(conn, "night")
    conn.execute("INSERT INTO billing.billing_periods (period_start, period_end, closed_by) "
                 "VALUES ('2026-10-01', '2026-11-01', 'test')")
    bill(conn, "retention", instances=0)  # on a closed day this used to refund the day in full
    assert coverage(conn)[0] == "held"
    assert [i for i in items(conn) if i[0] == "2026-11-01"] == []  # no refund
    summary = accept_shrink(conn, "acme", DAY, "retention", "usage really was deleted", "ops")
    [correction] = summary.corrections
    assert correction.delta_by_currency == {"USD": Decimal("-40.00")}


# --- rule 3: a stale run ----------------------------------------------------------------------------


def test_a_stale_run_that_rates_after_a_newer_read_is_superseded(conn) -> None:
    from rafay_billing.ledger.guards import next_extraction_seq

    stale_seq = next_extraction_seq(conn)  # the nightly run starts reading ...
    late_seq = next_extraction_seq(conn)  # ... the close's late-usage re-read starts after it
    land(conn, "close", hours="12", extraction_seq=late_seq)
    rate_slices(conn, [SLICE], "close")
    land(conn, "nightly", hours="10", extraction_seq=stale_seq)  # ... and the nightly run rates last
    rate_slices(conn, [SLICE], "nightly")
    assert {i[7] for i in items(conn)} == {"close"} and sum(i[6] for i in items(conn)) == Decimal("48.00")
    assert coverage(conn) == ("billed", None, "close", "close")
    assert conn.execute(
        "SELECT status FROM billing.extractions WHERE run_id = 'nightly'").fetchone() == ("superseded",)


@pytest.mark.parametrize("order", list(itertools.permutations(["a", "b", "c"])))
def test_any_interleaving_ends_as_the_highest_seq_extraction_that_passed(conn, order) -> None:
    from rafay_billing.ledger.guards import next_extraction_seq

    # a reads 10 h per instance, b (later) shrinks to 2 h, c (latest) reads 9 h
    hours = {"a": "10", "b": "2", "c": "9"}
    seqs = {run: next_extraction_seq(conn) for run in "abc"}
    for run in "abc":
        land(conn, run, hours[run], extraction_seq=seqs[run])
    for run in order:
        rate_slices(conn, [SLICE], run)
    assert {i[7] for i in items(conn)} == {"c"}
    assert sum(i[6] for i in items(conn)) == Decimal("36.00")
    assert coverage(conn) == ("billed", None, "c", "c")


def test_a_retried_rating_of_a_held_extraction_changes_nothing(conn) -> None:
    bill(conn, "night")
    bill(conn, "empty", instances=0)
    before = (items(conn), coverage(conn))
    rate_slices(conn, [SLICE], "empty")
    assert (items(conn), coverage(conn)) == before


def test_the_extraction_history_is_append_only(conn) -> None:
    bill(conn, "night")
    with pytest.raises(psycopg.errors.IntegrityConstraintViolation, match="append-only"):
        conn.execute("DELETE FROM billing.extractions")
    with pytest.raises(psycopg.errors.IntegrityConstraintViolation, match="cannot change"):
        conn.execute("UPDATE billing.extractions SET instance_hours = 0")


def test_the_accept_shrink_command(conn, billing_dsn, capsys) -> None:
    from rafay_billing.cli import main

    bill(conn, "night")
    bill(conn, "shrunk", hours="1")
    base = ["accept-shrink", "--dsn", billing_dsn, "--org", "acme", "--day", "2026-10-31"]
    assert main([*base, "--run", "shrunk", "--reason", " ", "--by", "ops"]) == 2
    assert main([*base, "--run", "night", "--reason", "go back", "--by", "ops"]) == 1
    assert "refused" in capsys.readouterr().err
    assert main([*base, "--run", "shrunk", "--reason", "instances stopped", "--by", "ops"]) == 0
    assert "rated from run shrunk" in capsys.readouterr().out
    assert coverage(conn) == ("billed", None, "shrunk", "shrunk")
    assert conn.execute("SELECT actor, detail->>'reason' FROM billing.audit_log").fetchall() == [
        ("ops", "instances stopped")]


def test_rate_window_rates_an_empty_extraction_so_the_guard_sees_it(conn) -> None:
    from rafay_billing.ledger.rating import landed_slices, rate_window

    bill(conn, "night")
    land(conn, "empty", instances=0)
    assert landed_slices(conn, W, "empty") == [SLICE]
    rate_window(conn, W, "empty")
    assert coverage(conn) == ("held", "usage_shrank", "empty", "night")


def test_an_unchanged_re_read_that_is_not_rated_still_supersedes_older_reads(conn) -> None:
    """The close's late-usage check rates only days that changed; its unchanged read is still the day's
    newest, so a run that read in between (differently) and rates last must not replace the day."""
    from rafay_billing.ledger.guards import confirm_unchanged, next_extraction_seq

    bill(conn, "night")  # 20 h
    between = next_extraction_seq(conn)  # a run starts reading (it will see 12 h an instance) ...
    land(conn, "close", hours="10")  # ... the close re-reads later: the same as billed, so not rated
    assert confirm_unchanged(conn, [("acme", DAY)], "close") == [("acme", DAY)]
    land(conn, "between", hours="12", extraction_seq=between)
    rate_slices(conn, [SLICE], "between")
    assert {i[7] for i in items(conn)} == {"night"} and sum(i[6] for i in items(conn)) == Decimal("40.00")
    assert coverage(conn) == ("billed", None, "night", "night")
    # a changed re-read confirms nothing; a later run's read rates as usual
    land(conn, "close-2", hours="11")
    assert confirm_unchanged(conn, [("acme", DAY)], "close-2") == []
    bill(conn, "later", hours="11")
    assert coverage(conn) == ("billed", None, "later", "later")


def test_an_unchanged_re_read_releases_an_older_hold(conn) -> None:
    from rafay_billing.ledger.guards import confirm_unchanged

    bill(conn, "night")
    bill(conn, "empty", instances=0)
    assert coverage(conn)[0] == "held"
    land(conn, "close")  # the close reads the day again: all there, as billed
    confirm_unchanged(conn, [("acme", DAY)], "close")
    assert coverage(conn) == ("billed", None, "night", "night")
