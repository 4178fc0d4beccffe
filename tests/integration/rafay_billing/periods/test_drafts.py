"""Invoice drafts and their approval (issue 23, part 1) over a real PostgreSQL: drafts carry what the
close would issue and issue nothing; the fingerprint follows what the period carries and only that;
Approve issues the drafts exactly, numbered then; Reject discards them (kept, marked) and numbers
nothing; a changed period issues nothing and asks for a new close; every answer is audited."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import psycopg
import pytest

from rafay_billing import db
from rafay_billing.errors import DraftError, DraftsRejected, DraftsStale
from rafay_billing.ledger.coverage import register_orgs
from rafay_billing.ledger.price_book import sync_price_book
from rafay_billing.periods.close import close_period
from rafay_billing.periods.drafts import (
    APPROVE,
    REJECT,
    Decision,
    decide,
    draft_documents,
    draft_period,
    fetch_draft_set,
    period_fingerprint,
    summary_markdown,
    write_draft_documents,
)
from rafay_billing.periods.invoices import fetch_invoice_lines, fetch_invoices
from rafay_billing.periods.waivers import waive_open
from tests.integration.rafay_billing.periods.test_periods import (
    ACME,
    AFTER_NOV,
    FIRST_DAY,
    NAMES,
    NO_GPU_PRICE,
    NOV,
    OCT,
    PRICES,
    ZURICH,
    bill,
)

ANSWERED = datetime(2026, 11, 2, 9, 30, tzinfo=UTC)
FINANCE = Decision(APPROVE, "looks right", "finance", ANSWERED)


@pytest.fixture
def conn(pg_conn: psycopg.Connection) -> psycopg.Connection:
    pg_conn.autocommit = True
    db.migrate(pg_conn)
    sync_price_book(pg_conn, PRICES)
    register_orgs(pg_conn, list(NAMES.items()), FIRST_DAY, "r", last_day=date(2026, 11, 30))
    return pg_conn


@pytest.fixture
def october(conn: psycopg.Connection) -> psycopg.Connection:
    bill(conn, [date(2026, 10, 30), date(2026, 10, 31)], {"acme": ACME, "zurich": ZURICH})
    return conn


def draft(conn: psycopg.Connection, period: Any = OCT, **kwargs: Any):
    kwargs.setdefault("actor", "airflow:rafay_billing_close/r1")
    kwargs.setdefault("issuer", "ACME")
    kwargs.setdefault("now", AFTER_NOV)
    return draft_period(conn, period, **kwargs)


def answer(conn: psycopg.Connection, drafts: Any, decision: Decision = FINANCE, **kwargs: Any):
    kwargs.setdefault("actor", "airflow:rafay_billing_close/r1")
    kwargs.setdefault("issuer", "ACME")
    kwargs.setdefault("now", AFTER_NOV)
    return decide(conn, drafts.period, drafts.draft_set_id, decision, **kwargs)


def count(conn: psycopg.Connection, table: str) -> int:
    return conn.execute(f"SELECT count(*) FROM billing.{table}").fetchone()[0]


def nothing_issued(conn: psycopg.Connection) -> bool:
    return all(count(conn, t) == 0 for t in ("billing_periods", "invoices", "invoice_lines", "invoice_counters"))


# --- drafts ------------------------------------------------------------------------------------------


def test_drafts_carry_what_the_close_would_issue_and_issue_nothing(october: psycopg.Connection) -> None:
    drafts = draft(october)
    assert nothing_issued(october)
    assert [(d.org_id, d.organization, d.currency, d.document_type, d.subtotal, d.line_count) for d in drafts.drafts] == [
        ("acme", "Acme", "EUR", "invoice", Decimal("12.50"), 1),
        ("acme", "Acme", "USD", "invoice", Decimal("0.12"), 1),
        ("zurich", "Zürich AG", "CHF", "invoice", Decimal("148.80"), 1),
    ]
    assert drafts.status == "pending" and len(drafts.fingerprint) == 64
    assert drafts.summary["totals"] == {"CHF": "148.80", "EUR": "12.50", "USD": "0.12"}
    assert drafts.summary["documents"] == 3
    # issued afterwards without approval (a copy of the database would do the same): the same documents
    issued = close_period(october, OCT, actor="t", issuer="ACME", now=AFTER_NOV)
    assert [(i.org_id, i.currency, i.subtotal, i.line_count) for i in issued.invoices] == [
        (d.org_id, d.currency, d.subtotal, d.line_count) for d in drafts.drafts]
    usd = next(i for i in issued.invoices if i.currency == "USD")
    [line] = fetch_invoice_lines(october, usd.invoice_id)
    [draft_line] = [ln for ln in drafts.lines if ln.currency == "USD"]
    assert (line.line_no, line.profile, line.quantity, line.amount, line.item_count) == (
        draft_line.line_no, draft_line.profile, draft_line.quantity, draft_line.amount, draft_line.item_count)
    audit = october.execute("SELECT actor, detail FROM billing.audit_log WHERE action = 'draft'").fetchall()
    assert audit[0][0] == "airflow:rafay_billing_close/r1" and audit[0][1]["fingerprint"] == drafts.fingerprint


def test_drafting_refuses_a_period_that_is_not_ready_like_the_close(conn: psycopg.Connection) -> None:
    from rafay_billing.errors import PeriodNotReady

    bill(conn, [date(2026, 10, 31)], {"acme": ACME, "zurich": ZURICH})  # 10-30 missing
    with pytest.raises(PeriodNotReady, match="2026-10-30"):
        draft(conn)
    assert count(conn, "invoice_draft_sets") == 0


def test_drafts_are_what_the_reviewer_saw_and_a_set_is_decided_once(october: psycopg.Connection) -> None:
    drafts = draft(october)
    for statement in ("UPDATE billing.invoice_drafts SET subtotal = 0", "DELETE FROM billing.invoice_draft_lines",
                      "DELETE FROM billing.invoice_draft_sets",
                      "UPDATE billing.invoice_draft_sets SET fingerprint = repeat('0', 64)"):
        with pytest.raises(psycopg.errors.IntegrityConstraintViolation):
            october.execute(statement)
    with pytest.raises(DraftsRejected):
        answer(october, drafts, Decision(REJECT, "no"))
    with pytest.raises(psycopg.errors.IntegrityConstraintViolation, match="decided once"):
        october.execute("UPDATE billing.invoice_draft_sets SET status = 'pending', decided_at = NULL")


def test_a_new_close_supersedes_the_pending_drafts(october: psycopg.Connection) -> None:
    first = draft(october)
    second = draft(october, actor="airflow:rafay_billing_close/r2")
    assert second.superseded == (first.draft_set_id,)
    assert fetch_draft_set(october, first.draft_set_id).status == "superseded"
    with pytest.raises(DraftError, match="superseded by set 2"):
        answer(october, first)
    assert nothing_issued(october)
    assert [i.invoice_number for i in answer(october, second).invoices] == ["ACME-000001", "ACME-000002", "ACME-000003"]


def test_draft_documents_under_the_landing_root(october: psycopg.Connection, tmp_path) -> None:
    drafts = draft(october)
    written = write_draft_documents(drafts, tmp_path / "drafts")
    assert sorted(p.rsplit("/", 1)[1] for p in written) == [
        "DRAFT-acme-EUR.json", "DRAFT-acme-USD.json", "DRAFT-zurich-CHF.json", "summary.json"]
    doc = draft_documents(drafts)["DRAFT-zurich-CHF.json"]
    assert doc["status"] == "draft" and doc["invoice_number"] is None and doc["subtotal"] == "148.80"
    assert doc["lines"][0]["amount"] == "148.80" and doc["customer"]["organization"] == "Zürich AG"


# --- the fingerprint ---------------------------------------------------------------------------------


def test_the_fingerprint_changes_with_what_the_period_carries_and_not_with_other_periods(
    october: psycopg.Connection,
) -> None:
    before = period_fingerprint(october, OCT)
    bill(october, NOV.days()[:3], {"acme": ACME, "zurich": ZURICH}, run_id="nightly")  # November's nights
    bill(october, [date(2026, 10, 31)], {"acme": ACME, "zurich": ZURICH}, run_id="same")  # re-read, unchanged
    assert period_fingerprint(october, OCT) == before
    bill(october, [date(2026, 10, 31)], {"zurich": [("vm", "z1", "23", None)]}, run_id="late")  # an item changed
    changed = period_fingerprint(october, OCT)
    assert changed != before
    sync_price_book(october, NO_GPU_PRICE)
    bill(october, [date(2026, 10, 30)], {"acme": ACME}, run_id="nogpu")  # g1 is an exception now
    with_exception = period_fingerprint(october, OCT)
    assert with_exception != changed
    waive_open(october, OCT, "GPU retired", "ops")  # a waiver is carried too
    assert period_fingerprint(october, OCT) not in (before, changed, with_exception)


def test_a_correction_landing_in_the_period_changes_its_fingerprint(october: psycopg.Connection) -> None:
    close_period(october, OCT, actor="t", issuer="ACME", now=AFTER_NOV)
    bill(october, NOV.days(), {"acme": ACME[:1], "zurich": ZURICH}, run_id="nov")
    before = period_fingerprint(october, NOV)
    bill(october, [date(2026, 10, 31)], {"zurich": [*ZURICH, ("vm", "z2", "10", None)]}, run_id="fix")
    assert period_fingerprint(october, NOV) != before  # October's correction lands in November


# --- the decision ------------------------------------------------------------------------------------


def test_approve_issues_the_drafts_exactly_as_they_are_numbered_then(october: psycopg.Connection) -> None:
    drafts = draft(october)
    bill(october, NOV.days()[:2], {"acme": ACME}, run_id="nightly")  # nightly work meanwhile: not a change
    result = answer(october, drafts)
    assert [(i.invoice_number, i.org_id, i.currency, i.subtotal, i.line_count, i.document_type)
            for i in result.invoices] == [
        ("ACME-000001", d.org_id, d.currency, d.subtotal, d.line_count, d.document_type) if n == 0 else
        (f"ACME-00000{n + 1}", d.org_id, d.currency, d.subtotal, d.line_count, d.document_type)
        for n, d in enumerate(drafts.drafts)]
    assert fetch_invoices(october, OCT) == list(result.invoices)
    assert october.execute("SELECT last_number FROM billing.invoice_counters").fetchone()[0] == 3
    decided = fetch_draft_set(october, drafts.draft_set_id)
    assert (decided.status, decided.decision, decided.decided_by, decided.decision_comment) == (
        "issued", "Approve", "finance", "looks right")
    [(actor, detail)] = october.execute(
        "SELECT actor, detail FROM billing.audit_log WHERE action = 'approval'").fetchall()
    assert actor == "airflow:rafay_billing_close/r1"
    assert detail["responded_by"] == "finance" and detail["responded_at"] == "2026-11-02T09:30:00Z"
    assert detail["totals_seen"] == {"CHF": "148.80", "EUR": "12.50", "USD": "0.12"}
    assert detail["outcome"] == "issued" and detail["invoice_numbers"] == ["ACME-000001", "ACME-000002", "ACME-000003"]
    # a retry of the deciding task finds the period issued and issues nothing
    again = answer(october, drafts)
    assert again.already_closed and again.invoices == result.invoices


def test_reject_discards_the_drafts_numbers_nothing_and_fails_with_the_comment(october: psycopg.Connection) -> None:
    drafts = draft(october)
    with pytest.raises(DraftsRejected, match="rejected by finance: zurich's hours look doubled"):
        answer(october, drafts, Decision(REJECT, "zurich's hours look doubled", "finance", ANSWERED))
    assert nothing_issued(october)
    decided = fetch_draft_set(october, drafts.draft_set_id)
    assert decided.status == "discarded" and len(decided.drafts) == 3  # marked, kept
    detail = october.execute("SELECT detail FROM billing.audit_log WHERE action = 'approval'").fetchone()[0]
    assert (detail["decision"], detail["outcome"], detail["comment"]) == ("Reject", "discarded",
                                                                         "zurich's hours look doubled")
    assert detail["totals_seen"]["CHF"] == "148.80"
    # the month closes later, numbered from 1: the rejection consumed no number
    assert [i.invoice_number for i in answer(october, draft(october)).invoices][0] == "ACME-000001"


def test_a_timed_out_request_is_a_reject_by_nobody(october: psycopg.Connection) -> None:
    drafts = draft(october)
    with pytest.raises(DraftsRejected, match="nobody"):
        answer(october, drafts, Decision(REJECT, "", None, ANSWERED))
    detail = october.execute("SELECT detail FROM billing.audit_log WHERE action = 'approval'").fetchone()[0]
    assert detail["timed_out"] is True and detail["responded_by"] is None


def test_a_changed_period_issues_nothing_and_asks_for_a_new_close(october: psycopg.Connection) -> None:
    drafts = draft(october)
    bill(october, [date(2026, 10, 31)], {"zurich": [("vm", "z1", "23", None)]}, run_id="late")
    with pytest.raises(DraftsStale, match="changed after its drafts .* close 2026-10 again"):
        answer(october, drafts)
    assert nothing_issued(october)
    assert fetch_draft_set(october, drafts.draft_set_id).status == "stale"
    detail = october.execute("SELECT detail FROM billing.audit_log WHERE action = 'approval'").fetchone()[0]
    assert detail["outcome"] == "stale" and detail["fingerprint_now"] != detail["fingerprint_drafted"]


def test_a_period_no_longer_ready_issues_nothing(october: psycopg.Connection) -> None:
    from rafay_billing.ledger.coverage import record_failed

    drafts = draft(october)
    record_failed(october, [("zurich", date(2026, 10, 31), "Zürich AG", "extraction failed: HTTP 503")], "r9")
    with pytest.raises(DraftsStale, match="no longer ready"):
        answer(october, drafts)
    assert nothing_issued(october)


def test_the_summary_shows_changes_corrections_and_waivers(october: psycopg.Connection) -> None:
    close_period(october, OCT, actor="t", issuer="ACME", now=AFTER_NOV)
    sync_price_book(october, NO_GPU_PRICE)
    bill(october, [date(2026, 10, 31)], {"acme": ACME}, run_id="fix")  # g1's 6.25 EUR reversed into November
    bill(october, NOV.days(), {"acme": ACME[:1], "zurich": ZURICH}, run_id="nov")
    waive_open(october, NOV, "GPU product retired, refund agreed", "ops")
    drafts = draft(october, NOV, now=datetime(2026, 12, 1, 1, tzinfo=UTC))
    s = drafts.summary
    assert s["totals"] == {"CHF": "2232.00", "EUR": "-6.25", "USD": "0.60"}
    assert (s["documents"], s["invoices"], s["credit_notes"]) == (3, 2, 1)
    assert s["largest_changes"][0] == {"org_id": "zurich", "organization": "Zürich AG", "currency": "CHF",
                                       "previous": "148.80", "current": "2232.00", "change": "2083.20"}
    # g1 reversed (a refund), and acme's vm items of 10-31 re-billed at the same price (net zero)
    assert s["corrections"] == {"EUR": {"lines": 1, "items": 1, "amount": "-6.25"},
                                "USD": {"lines": 1, "items": 6, "amount": "0.00"}}
    assert s["waived_exceptions"] == 1 and s["waived"][0]["why"] == "GPU product retired, refund agreed"
    body = summary_markdown(s, draft_set_id=drafts.draft_set_id, fingerprint=drafts.fingerprint, issuer="ACME")
    for text in ("| CHF | 2232.00 |", "2 invoice(s), 1 credit note(s)", "Largest changes against 2026-10",
                 "| zurich (Zürich AG) | CHF | 148.80 | 2232.00 | 2083.20 |", "EUR: 1 line(s), 1 item(s), -6.25",
                 "**Waived exceptions:** 1", "GPU product retired"):
        assert text in body, text
