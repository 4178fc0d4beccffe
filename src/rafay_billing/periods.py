"""Billing periods: readiness, the monthly close, invoices, waivers (Airflow-free; SQL in ``rafay_billing/sql/periods``).

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
import re
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from rafay_billing.db import sql, transaction
from rafay_billing.jsonable import to_jsonable

REASONS: tuple[str, ...] = (
    "unpriced", "ambiguous_price", "missing_gpu_count", "invalid_usage", "usage_exceeds_window", "missing_dimension",
)
"""Exception reasons a waiver may name (``billing.rating_exceptions.reason``)."""
LISTED_AT_MOST = 20
"""Messages name this many problems of a kind, then say how many more there are and where to look."""
_PERIOD_RE = re.compile(r"^(\d{4})-(\d{2})$")
_ISSUER_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,31}$")


class PeriodError(ValueError):
    """A period label, issuer or waiver input is unusable; the message says what to write."""


class PeriodNotReady(RuntimeError):
    """The period cannot be closed yet: the message names every missing or failed (org, day) and open
    exception, and what to do about each. ``readiness`` holds the details."""

    def __init__(self, readiness: Readiness, allow_exceptions: bool) -> None:
        super().__init__(readiness.describe(allow_exceptions=allow_exceptions))
        self.readiness = readiness


class WaiverError(ValueError):
    """A waiver is refused (no reason given, no such exception, already waived); the message says what to check."""


# --- periods ---------------------------------------------------------------------------------------


@dataclass(frozen=True, order=True)
class Period:
    """A billing period: one calendar month in UTC, ``[start, end)``."""

    start: date

    def __post_init__(self) -> None:
        if self.start.day != 1:
            raise PeriodError(f"a billing period starts on the 1st of a month, got {self.start.isoformat()}")

    @property
    def end(self) -> date:
        """The first day after the period (exclusive end)."""
        return (self.start.replace(day=28) + timedelta(days=4)).replace(day=1)

    @property
    def last_day(self) -> date:
        return self.end - timedelta(days=1)

    @property
    def label(self) -> str:
        """``YYYY-MM``: how operators, file paths and the close DAG's conf name the period."""
        return f"{self.start:%Y-%m}"

    @property
    def start_datetime(self) -> datetime:
        return datetime(self.start.year, self.start.month, 1, tzinfo=UTC)

    @property
    def end_datetime(self) -> datetime:
        return datetime(self.end.year, self.end.month, 1, tzinfo=UTC)

    def days(self) -> list[date]:
        """Every UTC day of the period, in order."""
        return [self.start + timedelta(days=i) for i in range((self.end - self.start).days)]

    def next(self) -> Period:
        return Period(self.end)

    @classmethod
    def containing(cls, moment: date | datetime) -> Period:
        """The period a day (or a UTC instant) falls in."""
        day = _utc_date(moment)
        return cls(day.replace(day=1))

    @classmethod
    def before(cls, logical_date: date | datetime) -> Period:
        """The month before the one ``logical_date`` falls in: the monthly close of 2026-11-01 closes 2026-10."""
        first = _utc_date(logical_date).replace(day=1)
        return cls.containing(first - timedelta(days=1))

    def __str__(self) -> str:
        return self.label


def _utc_date(moment: date | datetime) -> date:
    if isinstance(moment, datetime):
        if moment.tzinfo is None:
            raise PeriodError(f"{moment!r} has no time zone; give a timezone-aware UTC time or a date")
        return moment.astimezone(UTC).date()
    return moment


def parse_period(text: str) -> Period:
    """``"2026-10"`` as a :class:`Period`; anything else is a :class:`PeriodError` that shows the form."""
    value = str(text).strip() if text is not None else ""
    match = _PERIOD_RE.match(value)
    if not match:
        raise PeriodError(f"a billing period is written YYYY-MM (a calendar month in UTC, e.g. 2026-10), got {text!r}")
    year, month = int(match.group(1)), int(match.group(2))
    if not (1 <= month <= 12) or year < 1970:
        raise PeriodError(f"billing period {value!r} is not a month: write YYYY-MM with MM from 01 to 12")
    return Period(date(year, month, 1))


def check_issuer(issuer: str) -> str:
    """The issuer name is part of every invoice number: letters, digits, ``._-``, at most 32 characters."""
    if not isinstance(issuer, str) or not _ISSUER_RE.match(issuer):
        raise PeriodError(
            f"invoice issuer {issuer!r} is not usable in invoice numbers: use 1 to 32 letters, digits, '.', '_' "
            "or '-', starting with a letter or digit (e.g. ACME)"
        )
    return issuer


def _period_params(period: Period) -> dict[str, Any]:
    return {"period_start": period.start, "period_end": period.end, "label": period.label}


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
    return (
        f"{len(uncovered)} (org, day)(s) are not billed: " + "; ".join(parts) + tail
        + " - bill them with rafay_usage_billing (conf {\"window_start\": \"<day>T00:00:00Z\", "
        "\"window_end\": \"<day after>T00:00:00Z\"}) and close again"
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
    params = _period_params(period)
    cur.execute(sql("periods/uncovered.sql"), params)
    uncovered = tuple(UncoveredDay(*row) for row in cur.fetchall())
    cur.execute(sql("periods/open_exceptions.sql"), params)
    exceptions = tuple(OpenException(*row) for row in cur.fetchall())
    ended = (now or datetime.now(UTC)) >= period.end_datetime
    return Readiness(period, uncovered, exceptions, ended, _closed(cur, period))


def _closed(cur: Any, period: Period) -> ClosedPeriod | None:
    cur.execute(sql("periods/closed_period.sql"), _period_params(period))
    row = cur.fetchone()
    if row is None:
        return None
    _, _, closed_at, closed_by, allow = row
    return ClosedPeriod(period, closed_at, closed_by, allow)


def closed_period(conn: Any, period: Period) -> ClosedPeriod | None:
    """The period's close (when and by whom), or None while it is open."""
    with transaction(conn), conn.cursor() as cur:
        return _closed(cur, period)


# --- invoices --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Invoice:
    """An issued invoice (``billing.invoices``): one (org, currency) of one period."""

    invoice_id: str
    invoice_number: str
    issuer: str
    invoice_seq: int
    org_id: str
    organization: str
    currency: str
    period_start: date
    period_end: date
    status: str
    subtotal: Decimal
    line_count: int
    issued_at: datetime
    issued_by: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class InvoiceLine:
    """One line of an invoice: its period's items of one profile, price and charge class, summed."""

    invoice_id: str
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

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


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
        return _totals(self.invoices)

    def __str__(self) -> str:
        what = "was already closed" if self.already_closed else "closed"
        totals = ", ".join(f"{v} {k}" for k, v in sorted(self.totals_by_currency.items())) or "nothing"
        extra = f", {len(_waiver_keys(self.open_exceptions))} open exception(s) allowed" if self.open_exceptions else ""
        return f"period {self.period.label} {what}: {len(self.invoices)} invoice(s), totals {totals}{extra}"


def _totals(invoices: Iterable[Invoice]) -> dict[str, Decimal]:
    totals: dict[str, Decimal] = {}
    for inv in invoices:
        totals[inv.currency] = totals.get(inv.currency, Decimal(0)) + inv.subtotal
    return dict(sorted(totals.items()))


def fetch_invoices(conn: Any, period: Period) -> list[Invoice]:
    """The period's invoices, in number order (empty while it is open)."""
    with transaction(conn), conn.cursor() as cur:
        return _fetch_invoices(cur, period)


def _fetch_invoices(cur: Any, period: Period) -> list[Invoice]:
    cur.execute(sql("periods/fetch_invoices.sql"), _period_params(period))
    return [Invoice(*row) for row in cur.fetchall()]


def fetch_invoice_lines(conn: Any, invoice_id: str) -> list[InvoiceLine]:
    """An invoice's lines, in line order (regular lines first, then corrections)."""
    with transaction(conn), conn.cursor() as cur:
        cur.execute(sql("periods/fetch_invoice_lines.sql"), {"invoice_id": invoice_id})
        return [InvoiceLine(*row) for row in cur.fetchall()]


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
        invoices = _issue(cur, period, actor, issuer)
        _audit_close(cur, period, actor, issuer, invoices, state.open_exceptions, allow_exceptions)
    return CloseResult(period, False, tuple(invoices), closed_at, actor, state.open_exceptions, allow_exceptions)


def _existing(cur: Any, closed: ClosedPeriod) -> CloseResult:
    invoices = _fetch_invoices(cur, closed.period)
    return CloseResult(closed.period, True, tuple(invoices), closed.closed_at, closed.closed_by,
                       allow_exceptions=closed.allow_exceptions)


def _insert_period(cur: Any, period: Period, actor: str, allow_exceptions: bool) -> datetime:
    cur.execute(sql("periods/insert_period.sql"), {**_period_params(period), "actor": actor,
                                                   "allow_exceptions": allow_exceptions})
    return cur.fetchone()[0]


def _issue(cur: Any, period: Period, actor: str, issuer: str) -> list[Invoice]:
    """Number and write the period's invoices and their lines; advance the issuer's counter by as many."""
    cur.execute(sql("periods/ensure_counter.sql"), {"issuer": issuer})
    cur.execute(sql("periods/lock_counter.sql"), {"issuer": issuer})
    last_number = cur.fetchone()[0]
    params = {**_period_params(period), "issuer": issuer, "actor": actor, "last_number": last_number}
    cur.execute(sql("periods/issue_invoices.sql"), params)
    issued = len(cur.fetchall())
    cur.execute(sql("periods/insert_invoice_lines.sql"), params)
    cur.execute(sql("periods/advance_counter.sql"), {"issuer": issuer, "issued": issued})
    cur.execute(sql("periods/audit_issued.sql"), params)
    return _fetch_invoices(cur, period)


def _audit_close(cur: Any, period: Period, actor: str, issuer: str, invoices: Sequence[Invoice],
                 exceptions: Sequence[OpenException], allow_exceptions: bool) -> None:
    detail = {
        "period": period.label, "issuer": issuer, "invoices": len(invoices),
        "invoice_numbers": [inv.invoice_number for inv in invoices],
        "totals": to_jsonable(_totals(invoices)),
        "allow_exceptions": allow_exceptions,
        "open_exceptions": [e.as_dict() for e in exceptions],
    }
    cur.execute(sql("audit/record.sql"), {"action": "close", "actor": actor, "period_start": period.start,
                                          "org_id": None, "usage_date": None, "detail": json.dumps(detail)})


# --- waivers ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Waiver:
    """An operator's decision that the records of (org, day, profile, instance, reason) are not billed."""

    org_id: str
    usage_date: date
    profile: str
    instance_key: str
    reason: str
    why: str
    waived_by: str
    waived_at: datetime
    records: int = field(default=0)

    def __str__(self) -> str:
        return (f"waived {self.org_id} {self.usage_date} profile {self.profile} instance {self.instance_key} "
                f"({self.reason}, {self.records} record(s)) by {self.waived_by}: {self.why}")


def _check_reason(reason: str) -> None:
    if reason not in REASONS:
        raise WaiverError(f"exception reason {reason!r} is not one of {', '.join(REASONS)}")


def _check_why_and_actor(why: str, actor: str) -> None:
    if not str(why or "").strip():
        raise WaiverError("a waiver needs a reason finance can read (--why \"...\"): why is this record not billed?")
    if not str(actor or "").strip():
        raise WaiverError("a waiver needs the name of who gives it (--by NAME)")


def waive(
    conn: Any, org_id: str, usage_date: date, profile: str, instance_key: str, reason: str, why: str, actor: str
) -> Waiver:
    """Waive the rating exception(s) of one (org, day, profile, instance_key, reason): they stop blocking
    the close of its period (and of any later rating of that record with the same reason).

    Refused, saying what to check, when ``why`` is empty, when no exception matches (the message lists
    what that org's day does hold), or when it is already waived. Recorded in the audit log.
    """
    _check_reason(reason)
    _check_why_and_actor(why, actor)
    key = {"org_id": org_id, "usage_date": usage_date, "profile": profile, "instance_key": instance_key,
           "reason": reason}
    with transaction(conn), conn.cursor() as cur:
        cur.execute(sql("periods/matching_exceptions.sql"), key)
        matches = cur.fetchall()
        if not matches:
            raise WaiverError(_no_match_message(cur, key))
        _, waived_by, waived_at, earlier_why = matches[0]
        if waived_by is not None:
            raise WaiverError(
                f"{org_id} {usage_date} profile {profile} instance {instance_key} ({reason}) is already waived "
                f"by {waived_by} at {waived_at.isoformat()}: {earlier_why}"
            )
        cur.execute(sql("periods/insert_waiver.sql"), {**key, "why": why.strip(), "actor": actor,
                                                       "records": len(matches)})
        return replace(Waiver(*cur.fetchone()), records=len(matches))


def _no_match_message(cur: Any, key: dict[str, Any]) -> str:
    cur.execute(sql("periods/day_exceptions.sql"), key)
    held = [f"profile {p} instance {k} reason {r}" + (" (waived)" if w else "") for p, k, r, w in cur.fetchall()]
    what = "; it holds: " + "; ".join(held[:LISTED_AT_MOST]) if held else "; that day has no exceptions at all"
    return (
        f"no rating exception matches org {key['org_id']}, day {key['usage_date']}, profile {key['profile']}, "
        f"instance {key['instance_key']}, reason {key['reason']}{what}. Check billing.open_exceptions "
        f"(SELECT org_id, usage_date, profile, instance_key, reason FROM billing.open_exceptions WHERE org_id = "
        f"'{key['org_id']}'): --instance is the instance_key (the instance id, or name:<instance> for records "
        "without one), --profile the profile name"
    )


def waive_open(conn: Any, period: Period, why: str, actor: str) -> list[Waiver]:
    """Waive every open exception of ``period``'s days with one reason (one waiver and audit entry each)."""
    _check_why_and_actor(why, actor)
    with transaction(conn), conn.cursor() as cur:
        cur.execute(sql("periods/waive_open.sql"), {**_period_params(period), "why": why.strip(), "actor": actor})
        return [Waiver(*row) for row in cur.fetchall()]


# --- late usage ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class UsageChange:
    """How a new read of an (org, day) compares with the usage that billed it."""

    org_id: str
    usage_date: date
    billed_run_id: str | None
    old_records: int
    old_hours: Decimal
    new_records: int
    new_hours: Decimal
    changed: bool

    def __str__(self) -> str:
        if self.billed_run_id is None:
            return f"{self.org_id} {self.usage_date}: not billed before; {self.new_records} records, {self.new_hours} h"
        state = "changed" if self.changed else "unchanged"
        return (f"{self.org_id} {self.usage_date}: usage {state}: {self.old_records} -> {self.new_records} records, "
                f"{self.old_hours} -> {self.new_hours} h (billed by run {self.billed_run_id})")


def usage_changes(conn: Any, slices: Sequence[tuple[str, date]], run_id: str) -> list[UsageChange]:
    """Compare the usage ``run_id`` landed for each (org_id, day) with the usage that billed it
    (``billing.coverage.billed_run_id``): Rafay aggregates with a lag, so a day read again can differ."""
    if not slices:
        return []
    params = {"org_ids": [o for o, _ in slices], "usage_dates": [d for _, d in slices], "run_id": run_id}
    with transaction(conn), conn.cursor() as cur:
        cur.execute(sql("periods/usage_changes.sql"), params)
        return [UsageChange(*row) for row in cur.fetchall()]


def registry_orgs(conn: Any, day: date) -> dict[str, tuple[str, date]]:
    """``{org_id: (organization, first_listed_date)}`` of the orgs the ledger expects usage of by ``day``."""
    with transaction(conn), conn.cursor() as cur:
        cur.execute(sql("periods/registry_orgs.sql"), {"day": day})
        return {org_id: (name, first) for org_id, name, first in cur.fetchall()}
