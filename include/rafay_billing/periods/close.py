"""The monthly close: readiness, then issuing, in one transaction (SQL in ``rafay_billing/sql/periods``).

Finance invoices a calendar month (UTC) once and never changes what it issued. Why the close is one
transaction: the period row, its invoices, their numbers and lines and the audit entries appear
together or not at all, so a failed close consumes no invoice number (numbers stay gap-free per
issuer) and a reader never sees a half-issued period. Why a readiness check first: an invoice issued
while a day is missing, failed or holds unbilled records would be wrong, and it can never be changed
afterwards (migration 004's triggers); later changes become corrections on a later invoice.

An exception is open until a later rating bills the record or an operator waives it (:func:`waive`);
``allow_exceptions`` closes anyway and lists the open ones in the result and the audit log.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from rafay_billing.db import sql, transaction
from rafay_billing.errors import PeriodError, PeriodNotReady
from rafay_billing.jsonable import to_jsonable
from rafay_billing.periods.invoices import Invoice, check_issuer, fetch_invoices_in, issue, totals_by_currency
from rafay_billing.periods.period import Period, period_params
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
    """A usage record of the period that is not billed and not waived."""

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

    @property
    def waiver_key(self) -> tuple[str, date, str, str, str]:
        """What a waiver names: (org, day, profile, instance_key, reason)."""
        return (self.org_id, self.usage_date, self.profile, self.instance_key, self.reason)

    def as_dict(self) -> dict[str, Any]:
        return to_jsonable(asdict(self))


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

    @property
    def coverage_complete(self) -> bool:
        """Every org of the registry has every day of the period (from its first listing on) billed."""
        return not self.uncovered

    def ready(self, *, allow_exceptions: bool = False) -> bool:
        """The period may be closed: it has ended, nothing is missing or failed, and no exception is open
        (unless ``allow_exceptions``)."""
        return self.ended and not self.uncovered and (allow_exceptions or not self.open_exceptions)

    def problems(self, *, allow_exceptions: bool = False) -> list[str]:
        """One sentence per kind of problem, each naming what is wrong and what to do."""
        found: list[str] = []
        if not self.ended:
            found.append(
                f"period {self.period.label} has not ended yet: it ends {self.period.end.isoformat()}T00:00:00Z"
            )
        if self.uncovered:
            found.append(_describe_uncovered(self.uncovered, self.period))
        if self.open_exceptions and not allow_exceptions:
            found.append(_describe_exceptions(self.open_exceptions))
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


def _describe_uncovered(uncovered: Sequence[UncoveredDay], period: Period) -> str:
    by_org: dict[tuple[str, str], list[UncoveredDay]] = {}
    for d in uncovered:
        by_org.setdefault((d.org_id, d.organization), []).append(d)
    parts = []
    for (org_id, name), days in list(by_org.items())[:LISTED_AT_MOST]:
        runs = ", ".join(
            (f"{a}" if a == b else f"{a}..{b}") + f" ({status}{': ' + detail if detail else ''})"
            for a, b, status, detail in _day_runs(days)
        )
        parts.append(f"{org_id} ({name}): {runs}")
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
        parts.append(
            f"{org_id} {day} profile {profile} instance {first.instance} (key {instance_key}): {reason}"
            + (f" ({len(records)} records)" if len(records) > 1 else "") + f" - {first.detail}"
        )
    more = len(keys) - LISTED_AT_MOST
    tail = f"; and {more} more (see billing.open_exceptions)" if more > 0 else ""
    return (
        f"{len(keys)} open rating exception(s): " + "; ".join(parts) + tail
        + " - fix the cause (e.g. the price book) and re-bill the day, or waive each with "
        "rafay-billing waive --org ORG --day DAY --profile PROFILE --instance KEY --reason REASON --why TEXT, "
        "or close with allow_exceptions"
    )


def readiness(conn: Any, period: Period, *, now: datetime | None = None) -> Readiness:
    """What blocks closing ``period``: missing or failed (org, day)s of the orgs in ``billing.org_registry``
    (each from its first listing on), open exceptions of the period's days, and whether it has ended."""
    with transaction(conn), conn.cursor() as cur:
        return _readiness(cur, period, now)


def _readiness(cur: Any, period: Period, now: datetime | None) -> Readiness:
    params = period_params(period)
    cur.execute(sql("periods/uncovered.sql"), params)
    uncovered = tuple(UncoveredDay(*row) for row in cur.fetchall())
    cur.execute(sql("periods/open_exceptions.sql"), params)
    exceptions = tuple(OpenException(*row) for row in cur.fetchall())
    ended = (now or datetime.now(UTC)) >= period.end_datetime
    return Readiness(period, uncovered, exceptions, ended, _closed(cur, period))


def _closed(cur: Any, period: Period) -> ClosedPeriod | None:
    cur.execute(sql("periods/closed_period.sql"), period_params(period))
    row = cur.fetchone()
    if row is None:
        return None
    _, _, closed_at, closed_by, allow = row
    return ClosedPeriod(period, closed_at, closed_by, allow)


def closed_period(conn: Any, period: Period) -> ClosedPeriod | None:
    """The period's close (when and by whom), or None while it is open."""
    with transaction(conn), conn.cursor() as cur:
        return _closed(cur, period)


@dataclass(frozen=True)
class CloseResult:
    """What :func:`close_period` did: the period's invoices, and the open exceptions it closed with.

    ``already_closed``: the period was closed before; nothing was issued or changed, and ``invoices``
    are the ones issued then.
    """

    period: Period
    already_closed: bool
    invoices: tuple[Invoice, ...]
    closed_at: datetime
    closed_by: str
    open_exceptions: tuple[OpenException, ...] = ()
    allow_exceptions: bool = False

    @property
    def totals_by_currency(self) -> dict[str, Decimal]:
        return totals_by_currency(self.invoices)

    def __str__(self) -> str:
        what = "was already closed" if self.already_closed else "closed"
        totals = ", ".join(f"{v} {k}" for k, v in sorted(self.totals_by_currency.items())) or "nothing"
        extra = f", {len(_waiver_keys(self.open_exceptions))} open exception(s) allowed" if self.open_exceptions else ""
        return f"period {self.period.label} {what}: {len(self.invoices)} invoice(s), totals {totals}{extra}"


def close_period(
    conn: Any, period: Period, *, actor: str, issuer: str, allow_exceptions: bool = False,
    now: datetime | None = None,
) -> CloseResult:
    """Close ``period`` and issue its invoices, in one transaction; raises :class:`PeriodNotReady` naming
    what is missing unless the period is ready (with ``allow_exceptions``, open exceptions do not block
    and are returned). A period closed before is returned as it is: nothing is issued or changed.

    One invoice per (org, currency) with items carried by the period (its own days' regular items and
    the corrections that landed in it), numbered ``<issuer>-NNNNNN`` gap-free per issuer;
    ``actor`` (a run or a user) is recorded on the period, the invoices and the audit log.
    """
    check_issuer(issuer)
    if not str(actor or "").strip():
        raise PeriodError("closing a period needs an actor (the run or the person closing it)")
    with transaction(conn), conn.cursor() as cur:
        cur.execute(sql("periods/close_lock.sql"))
        cur.execute(sql("periods/lock_ledger.sql"))
        state = _readiness(cur, period, now)
        if state.closed is not None:
            return _existing(cur, state.closed)
        if not state.ready(allow_exceptions=allow_exceptions):
            raise PeriodNotReady(state, allow_exceptions)
        closed_at = _insert_period(cur, period, actor, allow_exceptions)
        invoices = issue(cur, period, actor, issuer)
        _audit_close(cur, period, actor, issuer, invoices, state.open_exceptions, allow_exceptions)
    return CloseResult(period, False, tuple(invoices), closed_at, actor, state.open_exceptions, allow_exceptions)


def _existing(cur: Any, closed: ClosedPeriod) -> CloseResult:
    invoices = fetch_invoices_in(cur, closed.period)
    return CloseResult(closed.period, True, tuple(invoices), closed.closed_at, closed.closed_by,
                       allow_exceptions=closed.allow_exceptions)


def _insert_period(cur: Any, period: Period, actor: str, allow_exceptions: bool) -> datetime:
    cur.execute(sql("periods/insert_period.sql"), {**period_params(period), "actor": actor,
                                                   "allow_exceptions": allow_exceptions})
    return cur.fetchone()[0]


def _audit_close(cur: Any, period: Period, actor: str, issuer: str, invoices: Sequence[Invoice],
                 exceptions: Sequence[OpenException], allow_exceptions: bool) -> None:
    detail = {
        "period": period.label, "issuer": issuer, "invoices": len(invoices),
        "invoice_numbers": [inv.invoice_number for inv in invoices],
        "totals": to_jsonable(totals_by_currency(invoices)),
        "allow_exceptions": allow_exceptions,
        "open_exceptions": [e.as_dict() for e in exceptions],
    }
    cur.execute(sql("audit/record.sql"), {"action": "close", "actor": actor, "period_start": period.start,
                                          "org_id": None, "usage_date": None, "detail": json.dumps(detail)})
