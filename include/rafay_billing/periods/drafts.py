"""Invoice drafts for approval before issuing (``[rafay_billing] close_approval = required``; SQL in
``rafay_billing/sql/drafts``).

Why drafts: finance does not let a machine issue invoices unseen. The close writes what it would
issue as drafts (``billing.invoice_draft_sets``, ``billing.invoice_drafts``, ``billing.invoice_draft_lines``;
never ``billing.invoices``, whose rows are all issued), through the very path that issues
(:func:`~rafay_billing.periods.close.prepared_close`), so the drafts carry whatever the close writes
before issuing. With them goes a fingerprint of what the period carries (:func:`period_fingerprint`,
computed in SQL from the ledger): its line items (incl. corrections landing in it and month-level
charges written as items), the names on its documents, its exceptions and their waivers.

A reviewer's answer is acted on by :func:`decide`: Approve with an unchanged fingerprint issues the
period through the same issuing code as an unapproved close (numbers gap-free, taken at that moment)
and checks that what was issued is exactly the drafts; Reject discards the drafts (marked, kept) and
numbers nothing; a changed fingerprint, or a period no longer ready, issues nothing and marks the drafts
stale. Every answer is audited with who answered, when, and the totals they saw.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from rafay_billing.db import sql, transaction
from rafay_billing.errors import DraftError, DraftsRejected, DraftsStale, PeriodNotReady
from rafay_billing.jsonable import to_jsonable
from rafay_billing.period import Period, period_params
from rafay_billing.periods.clip import clip
from rafay_billing.periods.close import (
    CloseResult,
    OpenException,
    check_actor,
    existing_result,
    issue_prepared,
    prepared_close,
)
from rafay_billing.periods.invoices import check_issuer

APPROVE = "Approve"
REJECT = "Reject"
LARGEST_CHANGES = 5
"""How many (org, currency) changes against the previous month the reviewer is shown."""
LISTED = 10
"""How many waived exceptions the reviewer's summary names (the count is always whole)."""


@dataclass(frozen=True)
class Draft:
    """One document the period would issue: (org, currency), invoice or credit note, no number yet."""

    draft_set_id: int
    org_id: str
    organization: str
    currency: str
    document_type: str
    subtotal: Decimal
    line_count: int


@dataclass(frozen=True)
class DraftLine:
    org_id: str
    currency: str
    line_no: int
    profile_type: str
    profile: str
    price_id: str
    pricing_unit: str
    unit_price: Decimal
    charge_class: str
    quantity: Decimal
    amount: Decimal
    item_count: int


@dataclass(frozen=True)
class DraftSet:
    """A drafting of one period (``billing.invoice_draft_sets``) with its documents and lines.

    ``already_closed``: the period was closed before; nothing was drafted (``draft_set_id`` is 0)."""

    draft_set_id: int
    period: Period
    issuer: str
    fingerprint: str
    status: str
    allow_exceptions: bool
    drafted_at: datetime | None
    drafted_by: str
    summary: dict[str, Any]
    decided_at: datetime | None = None
    decided_by: str | None = None
    decision: str | None = None
    decision_comment: str | None = None
    drafts: tuple[Draft, ...] = ()
    lines: tuple[DraftLine, ...] = ()
    superseded: tuple[int, ...] = ()
    already_closed: bool = False

    @property
    def totals_by_currency(self) -> dict[str, Decimal]:
        totals: dict[str, Decimal] = {}
        for d in self.drafts:
            totals[d.currency] = totals.get(d.currency, Decimal(0)) + d.subtotal
        return dict(sorted(totals.items()))

    def __str__(self) -> str:
        if self.already_closed:
            return f"period {self.period.label} was already closed: nothing drafted"
        credit = sum(1 for d in self.drafts if d.document_type == "credit_note")
        totals = ", ".join(f"{v} {k}" for k, v in self.totals_by_currency.items()) or "nothing"
        return (f"period {self.period.label}: draft set {self.draft_set_id} ({self.status}), "
                f"{len(self.drafts) - credit} invoice draft(s) and {credit} credit note draft(s), totals {totals}")


@dataclass(frozen=True)
class Decision:
    """A reviewer's answer (the HITL response): the option, the comment, who answered and when
    (``responded_by`` None: nobody answered in time and the default, Reject, was taken)."""

    option: str
    comment: str = ""
    responded_by: str | None = None
    responded_at: datetime | None = None

    @property
    def who(self) -> str:
        return self.responded_by or "nobody (the response timed out; the default Reject was taken)"


@dataclass
class _Outcome:
    status: str
    detail: dict[str, Any] = field(default_factory=dict)


# --- the fingerprint -------------------------------------------------------------------------------


def fingerprint_in(cur: Any, period: Period) -> str:
    """The SHA-256 of what ``period`` carries, read inside the caller's transaction."""
    cur.execute(sql("drafts/fingerprint.sql"), period_params(period))
    return str(cur.fetchone()[0])


def period_fingerprint(conn: Any, period: Period) -> str:
    """What the period carries, as a hash that changes when any of it changes, and not when another
    period does (see ``sql/drafts/fingerprint.sql`` for what goes in)."""
    with transaction(conn), conn.cursor() as cur:
        return fingerprint_in(cur, period)


# --- drafting --------------------------------------------------------------------------------------


def draft_period(
    conn: Any, period: Period, *, actor: str, issuer: str, allow_exceptions: bool = False,
    now: datetime | None = None, billing_start: date | None = None, rerate: bool = True, rerated_before: int = 0,
) -> DraftSet:
    """Write the documents ``period`` would issue as drafts, with its fingerprint and the reviewer's
    summary, in one transaction through the close's own preparation (lock, re-rate, readiness: raises
    :class:`PeriodNotReady` like :func:`~rafay_billing.periods.close.close_period`). A pending drafting of
    the period is superseded. A closed period drafts nothing (``already_closed``)."""
    check_issuer(issuer)
    check_actor(actor)
    with prepared_close(conn, period, allow_exceptions=allow_exceptions, now=now, billing_start=billing_start,
                        rerate=rerate, rerated_before=rerated_before, actor=actor) as prepared:
        cur = prepared.cur
        if prepared.closed is not None:
            return DraftSet(0, period, issuer, "", "closed", prepared.closed.allow_exceptions, None,
                            prepared.closed.closed_by, {}, already_closed=True)
        assert prepared.state is not None
        params = {**period_params(period), "actor": actor, "issuer": issuer, "allow_exceptions": allow_exceptions}
        cur.execute(sql("drafts/supersede_pending.sql"), params)
        superseded = tuple(int(r[0]) for r in cur.fetchall())
        params["fingerprint"] = fingerprint_in(cur, period)
        cur.execute(sql("drafts/insert_set.sql"), params)
        draft_set_id = int(cur.fetchone()[0])
        params["draft_set_id"] = draft_set_id
        cur.execute(sql("drafts/insert_drafts.sql"), params)
        cur.execute(sql("drafts/insert_draft_lines.sql"), params)
        drafts, lines = _documents(cur, draft_set_id)
        summary = approval_summary(cur, period, drafts, lines, prepared.state.open_exceptions, prepared.rerated)
        cur.execute(sql("drafts/set_summary.sql"), {"draft_set_id": draft_set_id, "summary": json.dumps(summary)})
        _audit(cur, "draft", actor, period, {
            "draft_set_id": draft_set_id, "issuer": issuer, "fingerprint": params["fingerprint"],
            "superseded": list(superseded), "documents": len(drafts), "totals": summary["totals"],
            "allow_exceptions": allow_exceptions, "rerated_items": prepared.rerated,
        })
        result = _fetch_set(cur, draft_set_id)
    return DraftSet(**{**result.__dict__, "superseded": superseded})


def fetch_draft_set(conn: Any, draft_set_id: int) -> DraftSet:
    """A draft set with its documents and lines (any status)."""
    with transaction(conn), conn.cursor() as cur:
        return _fetch_set(cur, draft_set_id)


def _fetch_set(cur: Any, draft_set_id: int) -> DraftSet:
    cur.execute(sql("drafts/fetch_set.sql"), {"draft_set_id": draft_set_id})
    row = cur.fetchone()
    if row is None:
        raise DraftError(f"draft set {draft_set_id} does not exist (see billing.invoice_draft_sets)")
    return _set_from_row(cur, row)


def _set_from_row(cur: Any, row: Sequence[Any]) -> DraftSet:
    (set_id, start, issuer, fingerprint, status, allow, drafted_at, drafted_by, summary, decided_at, decided_by,
     decision, comment) = row
    drafts, lines = _documents(cur, set_id)
    return DraftSet(int(set_id), Period(start), issuer, fingerprint, status, allow, drafted_at, drafted_by,
                    summary or {}, decided_at, decided_by, decision, comment, drafts, lines)


def _documents(cur: Any, draft_set_id: int) -> tuple[tuple[Draft, ...], tuple[DraftLine, ...]]:
    cur.execute(sql("drafts/fetch_drafts.sql"), {"draft_set_id": draft_set_id})
    drafts = tuple(Draft(int(r[0]), r[1], r[2], r[3].strip(), *r[4:]) for r in cur.fetchall())
    cur.execute(sql("drafts/fetch_draft_lines.sql"), {"draft_set_id": draft_set_id})
    lines = tuple(DraftLine(r[0], r[1].strip(), *r[2:]) for r in cur.fetchall())
    return drafts, lines


# --- what the reviewer sees ------------------------------------------------------------------------


def approval_summary(
    cur: Any, period: Period, drafts: Sequence[Draft], lines: Sequence[DraftLine],
    open_exceptions: Sequence[OpenException] = (), rerated: int = 0,
) -> dict[str, Any]:
    """The month in numbers for the reviewer: totals per currency, document counts, the largest changes
    against the previous month's issued documents, waived exceptions, corrections carried, open
    exceptions allowed. JSON-able (money as exact decimal strings)."""
    totals: dict[str, Decimal] = {}
    for d in drafts:
        totals[d.currency] = totals.get(d.currency, Decimal(0)) + d.subtotal
    cur.execute(sql("drafts/previous_documents.sql"), period_params(period))
    previous = {(org, cur_.strip()): amount for org, cur_, amount in cur.fetchall()}
    now = {(d.org_id, d.currency): d.subtotal for d in drafts}
    names = {d.org_id: d.organization for d in drafts}
    deltas: list[tuple[Decimal, str, str]] = sorted(
        ((now.get(key, Decimal(0)) - previous.get(key, Decimal(0)), key[0], key[1])
         for key in now.keys() | previous.keys()),
        key=lambda c: (-abs(c[0]), c[1], c[2]))
    changes = [
        {"org_id": org, "organization": names.get(org, org), "currency": currency,
         "previous": str(previous[(org, currency)]) if (org, currency) in previous else None,
         "current": str(now[(org, currency)]) if (org, currency) in now else None, "change": str(delta)}
        for delta, org, currency in deltas if delta != 0
    ]
    cur.execute(sql("drafts/waived_exceptions.sql"), period_params(period))
    waived = [
        {"org_id": o, "usage_date": d.isoformat(), "profile": clip(p), "instance_key": clip(k), "reason": r,
         "why": clip(why), "waived_by": clip(by)}
        for o, d, p, k, r, why, by in cur.fetchall()
    ]
    corrections: dict[str, dict[str, Any]] = {}
    for ln in lines:
        if ln.charge_class == "correction":
            c = corrections.setdefault(ln.currency, {"lines": 0, "items": 0, "amount": Decimal(0)})
            c["lines"] += 1
            c["items"] += ln.item_count
            c["amount"] += ln.amount
    return to_jsonable({
        "period": period.label,
        "totals": dict(sorted(totals.items())),
        "documents": len(drafts),
        "invoices": sum(1 for d in drafts if d.document_type == "invoice"),
        "credit_notes": sum(1 for d in drafts if d.document_type == "credit_note"),
        "previous_period": _previous_label(period),
        "largest_changes": changes[:LARGEST_CHANGES],
        "waived_exceptions": len(waived),
        "waived": waived[:LISTED],
        "corrections": dict(sorted(corrections.items())),
        "open_exceptions_allowed": len(open_exceptions),
        "rerated_items": rerated,
    })


def _previous_label(period: Period) -> str:
    start = period.start
    return f"{start.year - 1}-12" if start.month == 1 else f"{start.year}-{start.month - 1:02d}"


def summary_markdown(summary: dict[str, Any], *, draft_set_id: int, fingerprint: str, issuer: str) -> str:
    """The approval request's body (Markdown): what the reviewer approves or rejects."""
    label = summary.get("period", "?")
    totals = summary.get("totals") or {}
    out = [
        f"**Period {label}**, issuer `{issuer}`, draft set {draft_set_id} (fingerprint `{fingerprint[:12]}…`).",
        "",
        f"**Documents:** {summary.get('documents', 0)} ({summary.get('invoices', 0)} invoice(s), "
        f"{summary.get('credit_notes', 0)} credit note(s)).",
        "",
        "**Totals per currency**",
        "",
        "| Currency | Total |",
        "|---|---:|",
        *[f"| {cur} | {amount} |" for cur, amount in totals.items()],
    ]
    if not totals:
        out.append("| – | nothing billed |")
    changes = summary.get("largest_changes") or []
    out += ["", f"**Largest changes against {summary.get('previous_period', 'the previous month')}**", ""]
    if changes:
        out += ["| Org | Currency | Previous | Now | Change |", "|---|---|---:|---:|---:|"]
        out += [f"| {clip(c['org_id'])} ({clip(c['organization'])}) | {c['currency']} | {c['previous'] or '–'} | "
                f"{c['current'] or '–'} | {c['change']} |" for c in changes]
    else:
        out.append("No change against the previous month's issued documents.")
    corrections = summary.get("corrections") or {}
    out += ["", "**Corrections carried** (changes to closed months landing here)", ""]
    out += ([f"- {cur}: {c['lines']} line(s), {c['items']} item(s), {c['amount']}" for cur, c in corrections.items()]
            or ["None."])
    waived = summary.get("waived") or []
    out += ["", f"**Waived exceptions:** {summary.get('waived_exceptions', 0)}", ""]
    out += [f"- {w['org_id']} {w['usage_date']} {w['profile']} {w['instance_key']}: {w['reason']} – {w['why']} "
            f"(by {w['waived_by']})" for w in waived]
    if summary.get("open_exceptions_allowed"):
        out += ["", f"**Open exceptions allowed (not billed):** {summary['open_exceptions_allowed']}"]
    out += ["", "Approve issues these drafts exactly as they are (numbers are taken then). Reject discards them; "
            "the reason goes in the comment."]
    return "\n".join(out)


# --- the decision ----------------------------------------------------------------------------------


def decide(
    conn: Any, period: Period, draft_set_id: int, decision: Decision, *, actor: str, issuer: str,
    now: datetime | None = None, billing_start: date | None = None,
) -> CloseResult:
    """Act on the reviewer's answer to draft set ``draft_set_id`` of ``period``.

    Approve: if the period still carries what was drafted (same fingerprint, still ready), close it and
    issue through the close's issuing code (numbers gap-free, taken now), check the issued documents are
    exactly the drafts, mark the set issued. Otherwise nothing is issued, the set is marked stale and
    :class:`DraftsStale` asks for a new close. Reject: the set is marked discarded, nothing is numbered,
    and :class:`DraftsRejected` carries the reviewer's comment. Each outcome is audited (action
    ``approval``) with who answered, when, and the totals they saw. A retry after an approval that
    committed returns the issued documents (``already_closed``)."""
    check_issuer(issuer)
    check_actor(actor)
    if decision.option not in (APPROVE, REJECT):
        raise DraftError(f"unknown answer {decision.option!r}: expected {APPROVE} or {REJECT}")
    if decision.option == REJECT:
        _settle(conn, period, draft_set_id, decision, actor, _Outcome("discarded"))
        raise DraftsRejected(
            f"the drafts of {period.label} (set {draft_set_id}) were rejected by {decision.who}"
            f"{': ' + clip(decision.comment) if decision.comment else ' (no comment)'}; they are discarded and "
            f"nothing was numbered or issued - fix what the comment names and close {period.label} again"
        )
    try:
        return _approve(conn, period, draft_set_id, decision, actor, issuer, now, billing_start)
    except _Stale as stale:
        _settle(conn, period, draft_set_id, decision, actor, _Outcome("stale", stale.detail))
        raise DraftsStale(str(stale)) from None


class _Stale(Exception):
    def __init__(self, message: str, detail: dict[str, Any]) -> None:
        super().__init__(message)
        self.detail = detail


def _approve(conn: Any, period: Period, draft_set_id: int, decision: Decision, actor: str, issuer: str,
             now: datetime | None, billing_start: date | None) -> CloseResult:
    new_close = (f" - nothing was issued; close {period.label} again (rafay_billing_close with conf "
                 f"{{\"period\": \"{period.label}\"}}) to draft it anew and ask for approval again")
    allow = _pending(conn, period, draft_set_id).allow_exceptions
    try:
        with prepared_close(conn, period, allow_exceptions=allow, now=now, billing_start=billing_start,
                            rerate=False, actor=actor) as prepared:
            cur = prepared.cur
            if prepared.closed is not None:
                return existing_result(cur, prepared.closed)
            cur.execute(sql("drafts/pending_set.sql"), period_params(period))
            row = cur.fetchone()
            draft_set = _check_pending(row, cur, period, draft_set_id)
            if draft_set.issuer != issuer:
                raise DraftError(f"draft set {draft_set_id} was drafted for issuer {draft_set.issuer!r}, the close "
                                 f"now issues as {issuer!r}: close {period.label} again")
            current = fingerprint_in(cur, period)
            if current != draft_set.fingerprint:
                raise _Stale(
                    f"what period {period.label} carries changed after its drafts (set {draft_set_id}) were "
                    f"written (fingerprint {draft_set.fingerprint[:12]}… is now {current[:12]}…: its items, "
                    "corrections landing in it, month-level charges or waivers)" + new_close,
                    {"fingerprint_drafted": draft_set.fingerprint, "fingerprint_now": current},
                )
            result = issue_prepared(prepared, actor=actor, issuer=issuer, allow_exceptions=allow)
            cur.execute(sql("drafts/issued_differs.sql"), {**period_params(period), "draft_set_id": draft_set_id})
            differs = cur.fetchall()
            if differs:  # the fingerprint matched, so this is a bug: roll everything back
                raise DraftError(f"the documents issued for {period.label} differ from the approved drafts "
                                 f"(set {draft_set_id}): {differs[:3]} - nothing was issued")
            decided_at = _decide_row(cur, draft_set_id, "issued", decision)
            _audit(cur, "approval", actor, period, _approval_detail(
                draft_set, decision, decided_at, "issued",
                {"invoice_numbers": [i.invoice_number for i in result.invoices]}))
            return result
    except PeriodNotReady as exc:
        raise _Stale(f"period {period.label} is no longer ready to issue its drafts (set {draft_set_id}): {exc}"
                     + new_close, {"not_ready": clip(str(exc))}) from None


def _pending(conn: Any, period: Period, draft_set_id: int) -> DraftSet:
    with transaction(conn), conn.cursor() as cur:
        cur.execute(sql("drafts/pending_set.sql"), period_params(period))
        row = cur.fetchone()
        if row is None:
            cur.execute(sql("drafts/fetch_set.sql"), {"draft_set_id": draft_set_id})
            found = cur.fetchone()
            if found is not None and found[4] == "issued":  # an approval that committed, retried
                return _set_from_row(cur, found)
        return _check_pending(row, cur, period, draft_set_id)


def _check_pending(row: Sequence[Any] | None, cur: Any, period: Period, draft_set_id: int) -> DraftSet:
    if row is None:
        cur.execute(sql("drafts/fetch_set.sql"), {"draft_set_id": draft_set_id})
        found = cur.fetchone()
        state = f"it is {found[4]}" if found else "it does not exist"
        raise DraftError(f"draft set {draft_set_id} of {period.label} is not pending ({state}): close "
                         f"{period.label} again to draft it anew")
    if int(row[0]) != draft_set_id:
        raise DraftError(f"draft set {draft_set_id} of {period.label} was superseded by set {row[0]} (a newer close "
                         "of the period): that set's approval decides")
    return _set_from_row(cur, row)


def _settle(conn: Any, period: Period, draft_set_id: int, decision: Decision, actor: str,
            outcome: _Outcome) -> DraftSet:
    """Mark the pending set discarded or stale and audit the answer, in a transaction of its own."""
    with transaction(conn), conn.cursor() as cur:
        cur.execute(sql("drafts/pending_set.sql"), period_params(period))
        draft_set = _check_pending(cur.fetchone(), cur, period, draft_set_id)
        decided_at = _decide_row(cur, draft_set_id, outcome.status, decision)
        _audit(cur, "approval", actor, period, _approval_detail(draft_set, decision, decided_at, outcome.status,
                                                                outcome.detail))
    return draft_set


def _decide_row(cur: Any, draft_set_id: int, status: str, decision: Decision) -> datetime:
    cur.execute(sql("drafts/decide.sql"), {
        "draft_set_id": draft_set_id, "status": status, "decided_by": decision.who[:200],
        "decision": decision.option, "comment": decision.comment or None,
    })
    return cur.fetchone()[0]


def _approval_detail(draft_set: DraftSet, decision: Decision, decided_at: datetime, outcome: str,
                     extra: dict[str, Any]) -> dict[str, Any]:
    return to_jsonable({
        "draft_set_id": draft_set.draft_set_id, "decision": decision.option, "comment": clip(decision.comment or ""),
        "responded_by": decision.responded_by, "responded_at": decision.responded_at,
        "timed_out": decision.responded_by is None, "outcome": outcome, "decided_at": decided_at,
        "fingerprint": draft_set.fingerprint, "issuer": draft_set.issuer,
        "totals_seen": draft_set.summary.get("totals", {}), "documents_seen": len(draft_set.drafts),
        **extra,
    })


def _audit(cur: Any, action: str, actor: str, period: Period, detail: dict[str, Any]) -> None:
    cur.execute(sql("audit/record.sql"), {"action": action, "actor": actor, "period_start": period.start,
                                          "org_id": None, "usage_date": None,
                                          "detail": json.dumps(to_jsonable(detail))})


# --- draft documents -------------------------------------------------------------------------------


def draft_documents(draft_set: DraftSet) -> dict[str, dict[str, Any]]:
    """The set's documents as JSON-ready data, by file name: one ``DRAFT-<org>-<currency>.json`` per
    document (``status`` ``draft``, no number: numbers are taken when issued) and ``summary.json``."""
    by_doc: dict[tuple[str, str], list[DraftLine]] = {}
    for ln in draft_set.lines:
        by_doc.setdefault((ln.org_id, ln.currency), []).append(ln)
    files: dict[str, dict[str, Any]] = {}
    for d in draft_set.drafts:
        files[f"DRAFT-{_safe(d.org_id)}-{d.currency}.json"] = to_jsonable({
            "document": d.document_type, "status": "draft", "invoice_number": None,
            "draft_set_id": draft_set.draft_set_id, "fingerprint": draft_set.fingerprint,
            "issuer": draft_set.issuer, "drafted_at": draft_set.drafted_at, "drafted_by": draft_set.drafted_by,
            "customer": {"org_id": d.org_id, "organization": d.organization},
            "period": {"label": draft_set.period.label, "start": draft_set.period.start,
                       "end": draft_set.period.end},
            "currency": d.currency, "subtotal": d.subtotal, "line_count": d.line_count,
            "lines": [{k: v for k, v in ln.__dict__.items() if k not in ("org_id", "currency")}
                      for ln in by_doc.get((d.org_id, d.currency), [])],
        })
    files["summary.json"] = to_jsonable({
        "status": draft_set.status, "draft_set_id": draft_set.draft_set_id, "issuer": draft_set.issuer,
        "fingerprint": draft_set.fingerprint, "summary": draft_set.summary,
        "documents": sorted(f for f in files if f != "summary.json"),
    })
    return files


def write_draft_documents(draft_set: DraftSet, out_dir: Any) -> list[str]:
    """Write :func:`draft_documents` into ``out_dir`` (a local path or an ObjectStoragePath)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for name, document in draft_documents(draft_set).items():
        target = out_dir / name
        target.write_text(json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False) + "\n")
        written.append(str(target))
    return written


def _safe(text: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "._-" else "_" for ch in text)[:64] or "_"
