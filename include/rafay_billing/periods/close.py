"""The monthly close: re-rating, readiness, then issuing, in one transaction (SQL in ``rafay_billing/sql/periods``).

Finance invoices a calendar month (UTC) once and never changes what it issued. Why the close is one
transaction: the period row, its invoices, their numbers and lines and the audit entries appear
together or not at all, so a failed close consumes no invoice number (numbers stay gap-free per
issuer) and a reader never sees a half-issued period. Why a readiness check first: an invoice issued
while a day is missing, failed or holds unbilled records would be wrong, and it can never be changed
afterwards (migration 004's triggers); later changes become corrections on a later invoice.

An exception is open until a later rating bills the record or an operator waives it (:func:`waive`);
``allow_exceptions`` closes anyway and lists the open ones in the result and the audit log. An exception
blocks the period its correction lands in (``billing_period_start``): the period's own days, and days of
closed periods re-billed since, whose issued charges were reversed (issue 21, rule 1).

Why re-rate first (rule 4): a price changed after a day was rated and before its month closes must be
what the invoice charges; the rating's replace writes only differences, so an unchanged day costs a
read. Why months close in order (rule 12): invoice numbers follow the months, and a correction of a
day lands in the earliest open period, which must be the next one to issue.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from rafay_billing.contracts.charges import MonthCharge
from rafay_billing.contracts.ledger_items import (
    compute_month_charges,
    correct_true_ups,
    log_month_charges,
    write_month_charges,
)
from rafay_billing.contracts.mrc import MrcItem, compute_mrc, log_mrc, write_mrc
from rafay_billing.contracts.readiness import describe_unlisted, unlisted_orgs_in
from rafay_billing.db import sql, transaction
from rafay_billing.errors import PeriodError, PeriodNotReady
from rafay_billing.jsonable import to_jsonable
from rafay_billing.period import Period, period_params
from rafay_billing.periods.clip import clip, clip_all
from rafay_billing.periods.invoices import Invoice, check_issuer, fetch_invoices_in, issue, totals_by_currency
from rafay_billing.periods.waivers import LISTED_AT_MOST

# --- readiness -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class UncoveredDay:
    """An (org, day) the period needs and the ledger does not hold: ``missing`` or ``failed``."""

    org_id: str
    organization: str
    usage_date: date
    status: str
    detail: str | None = None


@dataclass(frozen=True)
class OpenException:
    """A usage record that is not billed and not waived, blocking the close of ``billing_period_start``
    (its own day's period, or the one a correction of its closed day lands in)."""

    org_id: str
    organization: str
    usage_date: date
    profile_type: str
    profile: str
    instance: str
    instance_id: str | None
    instance_key: str
    record_seq: int
    reason: str
    detail: str
    usage_hours: Decimal | None
    run_id: str
    billing_period_start: date | None = None

    @property
    def corrects_a_closed_day(self) -> bool:
        """Its day's period is closed: it blocks the period its correction lands in."""
        return self.billing_period_start is not None and self.billing_period_start > self.usage_date.replace(day=1)

    @property
    def waiver_key(self) -> tuple[str, date, str, str, str]:
        """What a waiver names: (org, day, profile, instance_key, reason)."""
        return (self.org_id, self.usage_date, self.profile, self.instance_key, self.reason)

    def as_dict(self) -> dict[str, Any]:
        """JSON-able, every text clipped to :data:`~rafay_billing.periods.clip.TEXT_LIMIT` (audit, summaries)."""
        return clip_all(to_jsonable(asdict(self)))


@dataclass(frozen=True)
class ClosedPeriod:
    """A period's ``billing.billing_periods`` row."""

    period: Period
    closed_at: datetime
    closed_by: str
    allow_exceptions: bool


@dataclass(frozen=True)
class Readiness:
    """What stands between a period and its close."""

    period: Period
    uncovered: tuple[UncoveredDay, ...]
    open_exceptions: tuple[OpenException, ...]
    ended: bool = True
    closed: ClosedPeriod | None = None
    earlier_open: tuple[Period, ...] = ()
    unlisted_contracts: tuple[tuple[str, tuple[str, ...]], ...] = ()
    """(org, contract ids) of contracts that charge the period for an org never listed (issue 22, rule 8)."""

    @property
    def coverage_complete(self) -> bool:
        """Every org of the registry has every day of the period (from its first listing on) billed."""
        return not self.uncovered

    def ready(self, *, allow_exceptions: bool = False) -> bool:
        """The period may be closed: it has ended, no earlier period with billed days is open, nothing is
        missing or failed, and no exception is open (unless ``allow_exceptions``)."""
        return (self.ended and not self.earlier_open and not self.uncovered and not self.unlisted_contracts
                and (allow_exceptions or not self.open_exceptions))

    def problems(self, *, allow_exceptions: bool = False) -> list[str]:
        """One sentence per kind of problem, each naming what is wrong and what to do."""
        found: list[str] = []
        if not self.ended:
            found.append(
                f"period {self.period.label} has not ended yet: it ends {self.period.end.isoformat()}T00:00:00Z"
            )
        if self.earlier_open:
            found.append(_describe_earlier_open(self.earlier_open, self.period))
        if self.uncovered:
            found.append(_describe_uncovered(self.uncovered, self.period))
        if self.open_exceptions and not allow_exceptions:
            found.append(_describe_exceptions(self.open_exceptions))
        if self.unlisted_contracts:  # allow_exceptions does not close over it: the invoice's org is unknown
            found.append(describe_unlisted({org: list(ids) for org, ids in self.unlisted_contracts}, self.period))
        return found

    def exceptions_summary(self) -> str:
        """The open exceptions, each named with what a waiver of it would say ('' when none)."""
        return _describe_exceptions(self.open_exceptions) if self.open_exceptions else ""

    def describe(self, *, allow_exceptions: bool = False) -> str:
        problems = self.problems(allow_exceptions=allow_exceptions)
        if not problems:
            extra = (f"; {len(_waiver_keys(self.open_exceptions))} open exception(s) are allowed"
                     if self.open_exceptions else "")
            return f"period {self.period.label} is ready to close{extra}"
        return f"period {self.period.label} cannot be closed yet:\n- " + "\n- ".join(problems)


def _day_runs(days: Sequence[UncoveredDay]) -> list[tuple[date, date, str, str | None]]:
    """Consecutive days of one org with one status and detail, as (first, last, status, detail)."""
    runs: list[tuple[date, date, str, str | None]] = []
    for d in days:
        if runs and runs[-1][1] + timedelta(days=1) == d.usage_date and runs[-1][2:] == (d.status, d.detail):
            runs[-1] = (runs[-1][0], d.usage_date, d.status, d.detail)
        else:
            runs.append((d.usage_date, d.usage_date, d.status, d.detail))
    return runs


def _describe_earlier_open(earlier: Sequence[Period], period: Period) -> str:
    labels = ", ".join(p.label for p in earlier[:LISTED_AT_MOST])
    more = f" and {len(earlier) - LISTED_AT_MOST} more" if len(earlier) > LISTED_AT_MOST else ""
    return (
        f"earlier period(s) {labels}{more} hold billed days and are still open: months close in order "
        f"(invoice numbers follow the months, and corrections land in the earliest open period) - close "
        f"{earlier[0].label} first (rafay_billing_close with conf {{\"period\": \"{earlier[0].label}\"}}), "
        f"then {period.label}"
    )


def _describe_uncovered(uncovered: Sequence[UncoveredDay], period: Period) -> str:
    by_org: dict[tuple[str, str], list[UncoveredDay]] = {}
    for d in uncovered:
        by_org.setdefault((d.org_id, d.organization), []).append(d)
    parts = []
    for (org_id, name), days in list(by_org.items())[:LISTED_AT_MOST]:
        runs = ", ".join(
            (f"{a}" if a == b else f"{a}..{b}") + f" ({status}{': ' + clip(detail) if detail else ''})"
            for a, b, status, detail in _day_runs(days)
        )
        parts.append(f"{clip(org_id)} ({clip(name)}): {runs}")
    more = len(by_org) - LISTED_AT_MOST
    tail = f"; and {more} more org(s) (see billing.coverage)" if more > 0 else ""
    # held days (issue 21 rule 2) block even with allow_exceptions: an operator decides on each
    held = ("; a held day's newest read shrank: accept it (rafay-billing accept-shrink --org ORG --day DAY "
            "--run RUN --reason TEXT) or read the day again; allow_exceptions does not close over it"
            if any(d.status == "held" for d in uncovered) else "")
    return (
        f"{len(uncovered)} (org, day)(s) are not billed: " + "; ".join(parts) + tail
        + " - bill them with rafay_usage_billing (conf {\"window_start\": \"<day>T00:00:00Z\", "
        "\"window_end\": \"<day after>T00:00:00Z\"}) and close again" + held
    )


def _waiver_keys(exceptions: Iterable[OpenException]) -> dict[tuple, list[OpenException]]:
    keys: dict[tuple, list[OpenException]] = {}
    for e in exceptions:
        keys.setdefault(e.waiver_key, []).append(e)
    return keys


def _describe_exceptions(exceptions: Sequence[OpenException]) -> str:
    keys = _waiver_keys(exceptions)
    parts = []
    for (org_id, day, profile, instance_key, reason), records in list(keys.items())[:LISTED_AT_MOST]:
        first = records[0]
        lands = (f" (a correction of its closed day, landing in {first.billing_period_start:%Y-%m})"
                 if first.corrects_a_closed_day else "")
        parts.append(
            f"{clip(org_id)} {day} profile {clip(profile)} instance {clip(first.instance)} (key {clip(instance_key)}): "
            f"{reason}{lands}" + (f" ({len(records)} records)" if len(records) > 1 else "") + f" - {clip(first.detail)}"
        )
    more = len(keys) - LISTED_AT_MOST
    tail = f"; and {more} more (see billing.open_exceptions)" if more > 0 else ""
    return (
        f"{len(keys)} open rating exception(s): " + "; ".join(parts) + tail
        + " - fix the cause (e.g. the price book) and re-bill the day, or waive each with "
        "rafay-billing waive --org ORG --day DAY --profile PROFILE --instance KEY --reason REASON --why TEXT, "
        "or close with allow_exceptions"
    )


def readiness(
    conn: Any, period: Period, *, now: datetime | None = None, billing_start: date | None = None
) -> Readiness:
    """What blocks closing ``period``: an earlier open period holding billed days (from the month of
    ``billing_start`` on; None: any), missing or failed (org, day)s of the orgs in
    ``billing.org_registry`` (each from its first listing on), open exceptions whose correction lands in
    the period (its days', and closed days' re-billed since), and whether it has ended."""
    with transaction(conn), conn.cursor() as cur:
        return _readiness(cur, period, now, billing_start)


def _readiness(cur: Any, period: Period, now: datetime | None, billing_start: date | None = None) -> Readiness:
    params = period_params(period)
    cur.execute(sql("periods/uncovered.sql"), params)
    uncovered = tuple(UncoveredDay(*row) for row in cur.fetchall())
    cur.execute(sql("periods/open_exceptions.sql"), params)
    exceptions = tuple(OpenException(*row) for row in cur.fetchall())
    cur.execute(sql("periods/earlier_open.sql"), {**params, "billing_start": billing_start})
    earlier = tuple(Period(month) for (month,) in cur.fetchall())
    ended = (now or datetime.now(UTC)) >= period.end_datetime
    unlisted = tuple((org, tuple(ids)) for org, ids in sorted(unlisted_orgs_in(cur, period, billing_start).items()))
    return Readiness(period, uncovered, exceptions, ended, _closed(cur, period), earlier, unlisted)


def _closed(cur: Any, period: Period) -> ClosedPeriod | None:
    cur.execute(sql("periods/closed_period.sql"), period_params(period))
    row = cur.fetchone()
    if row is None:
        return None
    _, _, closed_at, closed_by, allow = row
    return ClosedPeriod(period, closed_at, closed_by, allow)


def closed_period_in(cur: Any, period: Period) -> ClosedPeriod | None:
    """:func:`closed_period` inside the caller's transaction, on its cursor."""
    return _closed(cur, period)


def closed_period(conn: Any, period: Period) -> ClosedPeriod | None:
    """The period's close (when and by whom), or None while it is open."""
    with transaction(conn), conn.cursor() as cur:
        return _closed(cur, period)


@dataclass(frozen=True)
class CloseResult:
    """What :func:`close_period` did: the period's invoices, and the open exceptions it closed with.

    ``already_closed``: the period was closed before; nothing was issued or changed, and ``invoices``
    are the ones issued then. ``rerated_items``: line items the re-rating before issuing changed.
    """

    period: Period
    already_closed: bool
    invoices: tuple[Invoice, ...]
    closed_at: datetime
    closed_by: str
    open_exceptions: tuple[OpenException, ...] = ()
    allow_exceptions: bool = False
    rerated_items: int = 0
    contract_charges: tuple[MonthCharge, ...] = ()
    """The month-level contract charges this close wrote (issue 22): reservation fees, fees, true-ups."""
    mrc: tuple[MrcItem, ...] = ()
    """The monthly recurring charges this close wrote (issue 22, rule 3), one per (instance, month)."""

    @property
    def totals_by_currency(self) -> dict[str, Decimal]:
        return totals_by_currency(self.invoices)

    def __str__(self) -> str:
        what = "was already closed" if self.already_closed else "closed"
        totals = ", ".join(f"{v} {k}" for k, v in sorted(self.totals_by_currency.items())) or "nothing"
        extra = f", {len(_waiver_keys(self.open_exceptions))} open exception(s) allowed" if self.open_exceptions else ""
        credit = sum(1 for i in self.invoices if i.is_credit_note)
        docs = f"{len(self.invoices) - credit} invoice(s)" + (f" and {credit} credit note(s)" if credit else "")
        rerated = f", {self.rerated_items} line item(s) re-rated" if self.rerated_items else ""
        return f"period {self.period.label} {what}: {docs}, totals {totals}{extra}{rerated}"


def rerate_period(conn: Any, period: Period, billing_start: date | None = None) -> int:
    """Re-rate the period's billed days against the price book as it stands (each from the usage that
    billed it, :func:`~rafay_billing.ledger.rating.rate_slices`); returns how many line items changed
    (rewritten, added or removed). The rating's replace writes only differences: an unchanged day writes
    nothing. Days of a closed period are left alone (0). In one transaction (a savepoint inside a
    caller's transaction: the close re-rates inside its own). ``billing_start``: reservations cover
    usage from that day on (issue 22 rule 2; None: any day)."""
    from rafay_billing.ledger.rating import DaySlice, rate_slices

    params = period_params(period)
    with transaction(conn):
        with conn.cursor() as cur:
            if _closed(cur, period) is not None:
                return 0
            cur.execute(sql("periods/rerate_slices.sql"), params)
            by_run: dict[str, list[DaySlice]] = {}
            for run_id, org_id, day, name in cur.fetchall():
                by_run.setdefault(run_id, []).append(DaySlice(org_id, day, name))
            before = _item_versions(cur, params)
        for run_id, slices in by_run.items():
            rate_slices(conn, slices, run_id, billing_start=billing_start)
        with conn.cursor() as cur:
            after = _item_versions(cur, params)
    return sum(1 for key in before.keys() | after.keys() if before.get(key) != after.get(key))


def _item_versions(cur: Any, params: dict[str, Any]) -> dict[tuple, str]:
    cur.execute(sql("periods/item_versions.sql"), params)
    return {tuple(row[:-1]): row[-1] for row in cur.fetchall()}


@dataclass
class PreparedClose:
    """A close up to the point of issuing (:func:`prepared_close`): inside its transaction, under the
    close lock and the ledger lock, with readiness checked. ``closed``: the period was closed before
    (nothing was re-rated or checked then)."""

    cur: Any
    period: Period
    closed: ClosedPeriod | None
    state: Readiness | None = None
    rerated: int = 0
    charges: tuple[MonthCharge, ...] = ()
    mrc: tuple[MrcItem, ...] = ()


@contextmanager
def prepared_close(
    conn: Any, period: Period, *, allow_exceptions: bool = False, now: datetime | None = None,
    billing_start: date | None = None, rerate: bool = True, rerated_before: int = 0, actor: str = "close",
) -> Iterator[PreparedClose]:
    """Everything the close does before it issues, in one transaction that the caller's block ends:
    take the close lock, re-rate (``rerate``), lock the ledger, check readiness (raises
    :class:`PeriodNotReady`). Why one function: issuing now (:func:`close_period`) and writing drafts for
    approval (:mod:`rafay_billing.periods.drafts`) must see the very same ledger, and whatever the close
    writes before issuing belongs here, so both carry it."""
    with transaction(conn), conn.cursor() as cur:
        cur.execute(sql("periods/close_lock.sql"))
        closed = _closed(cur, period)
        if closed is not None:
            yield PreparedClose(cur, period, closed)
            return
        rerated = rerated_before + (rerate_period(conn, period, billing_start) if rerate else 0)
        cur.execute(sql("periods/lock_ledger.sql"))
        state = _readiness(cur, period, now, billing_start)
        if not state.ready(allow_exceptions=allow_exceptions):
            raise PeriodNotReady(state, allow_exceptions)
        # the month's contract charges (issue 22), from the usage as re-rated, before the month is closed;
        # an earlier preparation's (drafts awaiting approval) are replaced, so drafts and issue carry the same
        cur.execute(sql("contract_charges/delete_month_items.sql"), period_params(period))
        # MRC (rule 3) before the contract charges: a commitment's eligible spend counts it
        mrc = compute_mrc(cur, period, billing_start)
        write_mrc(cur, mrc, actor)
        log_mrc(period, mrc)
        charges = compute_month_charges(cur, period, billing_start)
        write_month_charges(cur, charges, actor)
        correct_true_ups(cur, period, actor, billing_start)
        log_month_charges(period, charges)
        yield PreparedClose(cur, period, None, state, rerated, tuple(charges), tuple(mrc))


def issue_prepared(prepared: PreparedClose, *, actor: str, issuer: str, allow_exceptions: bool) -> CloseResult:
    """Close the prepared period and issue its documents (numbers taken now, gap-free), audited."""
    cur, period, state = prepared.cur, prepared.period, prepared.state
    assert state is not None and prepared.closed is None
    closed_at = _insert_period(cur, period, actor, allow_exceptions)
    invoices = issue(cur, period, actor, issuer)
    _audit_close(cur, period, actor, issuer, invoices, state.open_exceptions, allow_exceptions, prepared.rerated,
                 len(prepared.charges))
    return CloseResult(period, False, tuple(invoices), closed_at, actor, state.open_exceptions, allow_exceptions,
                       prepared.rerated, prepared.charges, prepared.mrc)


def close_period(
    conn: Any, period: Period, *, actor: str, issuer: str, allow_exceptions: bool = False,
    now: datetime | None = None, billing_start: date | None = None, rerate: bool = True, rerated_before: int = 0,
) -> CloseResult:
    """Close ``period`` and issue its documents, in one transaction: re-rate its days against the price
    book as it stands (``rerate``), check readiness, issue. Raises :class:`PeriodNotReady` naming what
    blocks it unless the period is ready (with ``allow_exceptions``, open exceptions do not block and are
    returned; an earlier open period with billed days, from the month of ``billing_start`` on, always
    blocks). A period closed before is returned as it is: nothing is re-rated, issued or changed.

    One document per (org, currency) with items carried by the period (its own days' regular items and
    the corrections that landed in it): an invoice ``<issuer>-NNNNNN`` for a net of zero or more, a
    credit note ``<issuer>-CN-NNNNNN`` for a negative one, each gap-free per (issuer, document type).
    ``actor`` (a run or a user) is recorded on the period, the documents and the audit log, with the
    number of line items re-rated (``rerated_before``: those a re-rating of the same close changed
    earlier, e.g. the close DAG's ``rerate_period`` task).
    """
    check_issuer(issuer)
    check_actor(actor)
    with prepared_close(conn, period, allow_exceptions=allow_exceptions, now=now, billing_start=billing_start,
                        rerate=rerate, rerated_before=rerated_before, actor=actor) as prepared:
        if prepared.closed is not None:
            return existing_result(prepared.cur, prepared.closed)
        return issue_prepared(prepared, actor=actor, issuer=issuer, allow_exceptions=allow_exceptions)


def check_actor(actor: str) -> str:
    """Who closes (a run or a user) is recorded everywhere: it may not be empty."""
    if not str(actor or "").strip():
        raise PeriodError("closing a period needs an actor (the run or the person closing it)")
    return actor


def existing_result(cur: Any, closed: ClosedPeriod) -> CloseResult:
    invoices = fetch_invoices_in(cur, closed.period)
    return CloseResult(closed.period, True, tuple(invoices), closed.closed_at, closed.closed_by,
                       allow_exceptions=closed.allow_exceptions)


def _insert_period(cur: Any, period: Period, actor: str, allow_exceptions: bool) -> datetime:
    cur.execute(sql("periods/insert_period.sql"), {**period_params(period), "actor": actor,
                                                   "allow_exceptions": allow_exceptions})
    return cur.fetchone()[0]


def _audit_close(cur: Any, period: Period, actor: str, issuer: str, invoices: Sequence[Invoice],
                 exceptions: Sequence[OpenException], allow_exceptions: bool, rerated: int,
                 contract_charges: int = 0) -> None:
    detail = {
        "period": period.label, "issuer": issuer, "invoices": len(invoices),
        "invoice_numbers": [inv.invoice_number for inv in invoices],
        "credit_notes": [inv.invoice_number for inv in invoices if inv.is_credit_note],
        "totals": to_jsonable(totals_by_currency(invoices)),
        "allow_exceptions": allow_exceptions,
        "open_exceptions": [e.as_dict() for e in exceptions],
        # open exceptions of closed days whose correction (a refund) this close issues, allowed or waived
        "allowed_corrections_of_closed_days": sum(1 for e in exceptions if e.corrects_a_closed_day),
        "rerated_items": rerated,
        "contract_charges": contract_charges,
    }
    cur.execute(sql("audit/record.sql"), {"action": "close", "actor": actor, "period_start": period.start,
                                          "org_id": None, "usage_date": None, "detail": json.dumps(detail)})
