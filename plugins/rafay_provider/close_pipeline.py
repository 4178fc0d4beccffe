"""The monthly close DAG's steps (``rafay_billing_close``): Airflow glue around ``rafay_billing.periods.close``.

Imported inside tasks only, never at DAG parse time. Connections, the landing root and the Rafay
client are the daily DAG's (``rafay_provider.pipeline``). Only small references (the period, counts,
totals, file names) travel through XCom; invoices are read back from the billing database.
"""

from __future__ import annotations

import logging
import math
from datetime import UTC, date, datetime, timedelta
from typing import Any

from airflow.sdk import Context, ObjectStoragePath
from airflow.sdk.exceptions import AirflowFailException

from rafay_billing.errors import PeriodError
from rafay_billing.jsonable import to_jsonable
from rafay_billing.period import Period, parse_period
from rafay_billing.periods.clip import clip
from rafay_billing.window import Window, format_utc
from rafay_provider import metrics, settings
from rafay_provider.extraction import extract_org_day
from rafay_provider.payloads import BatchOrg, LandedOrgDay
from rafay_provider.resources import billing_connection, landing_root, page_writer, rafay_access, run_dir

log = logging.getLogger(__name__)

LATE_USAGE_DAYS = 2
"""Rafay aggregates usage with a lag: the close re-reads the period's last this many days."""
DEFAULTS: dict[str, Any] = {
    "period": None, "allow_exceptions": False, "settle_minutes": settings.SETTLE_MINUTES,
    "wait_minutes": settings.CLOSE_WAIT_MINUTES, "poke_seconds": settings.CLOSE_POKE_SECONDS,
}
"""The close's knobs (DAG params; a run's conf wins): see the DAG's documentation."""


def close_run_id(context: Context) -> str:
    """The run id the close's re-read usage and re-ratings are recorded under. Prefixed: a scheduled close
    and a scheduled daily run of the same night share Airflow's run id, and usage rows are kept per run."""
    return f"rafay_billing_close__{context['run_id']}"


def actor(context: Context) -> str:
    """Who closed the period, for billing_periods, invoices and the audit log."""
    return f"airflow:rafay_billing_close/{context['run_id']}"


def _period(data: dict) -> Period:
    return parse_period(data["period"])


def period_dir(period: Period) -> ObjectStoragePath:
    """``<landing root>/reports/period=YYYY-MM``: the period's invoices, summary and FOCUS export."""
    return landing_root() / "reports" / f"period={period.label}"


# --- resolve ---------------------------------------------------------------------------------------


def _setting(context: Context, key: str) -> Any:
    conf = dict(getattr(context.get("dag_run"), "conf", None) or {})
    params = dict(context.get("params") or {})
    return conf.get(key, params.get(key, DEFAULTS[key]))


def _whole_number(value: Any, key: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise PeriodError(f"{key} must be a whole number >= {minimum}, got {value!r}")
    return value


def _which_period(context: Context) -> Period:
    label = _setting(context, "period")
    if label:
        return parse_period(label)
    end = context.get("data_interval_end") or context.get("logical_date")
    if end is None:
        raise PeriodError('this run has no data interval (a manual run without a logical date): '
                          'give the period in its conf, e.g. {"period": "2026-10"}')
    return Period.before(end)


def resolve_close_period(context: Context) -> dict:
    """The period to close: conf ``period`` (YYYY-MM), else the month before the data interval's end
    (the run of 2026-11-01 closes 2026-10); with the knobs, checked before anything is read."""
    try:
        period = _which_period(context)
        allow = _setting(context, "allow_exceptions")
        if not isinstance(allow, bool):
            raise PeriodError(f"allow_exceptions must be true or false, got {allow!r}")
        settle = _whole_number(_setting(context, "settle_minutes"), "settle_minutes", 0)
        wait = _whole_number(_setting(context, "wait_minutes"), "wait_minutes", 0)
        poke = _whole_number(_setting(context, "poke_seconds"), "poke_seconds", 1)
    except PeriodError as exc:
        raise AirflowFailException(f"Bad close conf: {exc}") from None
    settle_until = period.end_datetime + timedelta(minutes=settle)
    wait_until = max(datetime.now(UTC), settle_until) + timedelta(minutes=wait)
    log.info(
        "Closing billing period %s ([%s, %s) UTC)%s; its last day settles at %s; waiting until %s at most.",
        period.label, period.start, period.end, " allowing open exceptions" if allow else "",
        format_utc(settle_until), format_utc(wait_until),
    )
    return {
        "period": period.label, "start": period.start.isoformat(), "end": period.end.isoformat(),
        "allow_exceptions": allow, "settle_until": format_utc(settle_until), "wait_until": format_utc(wait_until),
        "wait_minutes": wait, "poke_seconds": poke,
    }


# --- wait ------------------------------------------------------------------------------------------


# --- price book, late usage, re-rating ------------------------------------------------------------

REREAD_TASK = "reread_late_usage"
"""The mapped late-usage re-read: one task instance per org (pool ``rafay_api``)."""
REREAD_DONE_XCOM_KEY = "late_usage_done"
REREAD_FAILURES_XCOM_KEY = "late_usage_failures"


def _already_closed(period: Period) -> bool:
    from rafay_billing.periods.close import closed_period

    with billing_connection() as conn:
        closed = closed_period(conn, period)
    if closed is not None:
        log.info("Period %s is already closed (%s by %s): nothing is re-read, re-rated or checked.",
                 period.label, format_utc(closed.closed_at), closed.closed_by)
    return closed is not None


def sync_price_book(period_data: dict) -> dict:
    """The price book as it stands, before the period is re-rated against it (not for a closed period)."""
    from rafay_provider.pipeline import sync_price_book as sync

    if _already_closed(_period(period_data)):
        return {"closed": True}
    return sync()


def late_usage_orgs(period_data: dict, context: Context) -> list[list[BatchOrg]]:
    """The orgs whose last days the close re-reads: the registry's orgs that the listing still has, one
    per mapped task (several per task only when they outnumber ``[core] max_map_length``). Empty for a
    closed period: nothing is re-read."""
    from airflow.sdk.configuration import conf

    from rafay_billing.periods.late_usage import registry_orgs
    period = _period(period_data)
    if _already_closed(period):
        return []
    days = period.days()[-LATE_USAGE_DAYS:]
    with billing_connection() as conn:
        expected = registry_orgs(conn, days[-1])
    span = Window(Window.for_day(days[0]).start, Window.for_day(days[-1]).end)
    folder = run_dir("raw", span, close_run_id(context))
    folder.mkdir(parents=True, exist_ok=True)
    client, source = rafay_access()
    listed = source.list_orgs(client, span, on_page=page_writer(folder))
    gone = sorted(set(expected) - {o.org_id for o in listed})
    if gone:
        log.warning("Not in the org listing any more, so not re-read: %s", ", ".join(gone))
    orgs: list[BatchOrg] = [
        {"org_id": o.org_id, "name": o.name, "org_seq": seq, "partner_id": o.partner_id,
         "partner_problem": o.partner_problem}
        for seq, o in enumerate(listed) if o.org_id in expected
    ]
    per_task = max(1, math.ceil(len(orgs) / max(1, conf.getint("core", "max_map_length", fallback=1024))))
    metrics.client_requests(client)
    log.info("Re-reading the last %d day(s) of %s for %d org(s), %d per task.", len(days), period.label,
             len(orgs), per_task)
    return [orgs[i : i + per_task] for i in range(0, len(orgs), per_task)]


def reread_label(orgs: list[BatchOrg]) -> str:
    """The mapped task's name in the UI: the org id (or the first and last of a batch)."""
    ids = [o["org_id"] for o in orgs]
    return ids[0] if len(ids) == 1 else f"{ids[0]} … {ids[-1]} ({len(ids)} orgs)"


def rebill_late_usage(orgs: list[BatchOrg], period_data: dict, context: Context) -> dict:
    """Re-read one org's (or one batch's) last days of the period from Rafay and re-bill every (org, day)
    whose usage changed since it was billed, before anything is issued. A re-read that fails fails this
    org's task only (after re-billing what did read), so it retries alone; the failures are pushed for
    :func:`collect_late_usage`, which names them in the close's refusal."""
    from rafay_billing.periods.late_usage import registry_orgs

    period = _period(period_data)
    days = period.days()[-LATE_USAGE_DAYS:]
    with billing_connection() as conn:
        expected = registry_orgs(conn, days[-1])
    run_id = close_run_id(context)
    landed, failures = _reread(expected, days, run_id, orgs)
    rebilled = _rebill_changed(landed, run_id) if landed else []
    ti = context["ti"]
    ti.xcom_push(key=REREAD_DONE_XCOM_KEY, value=[] if failures else [o["org_id"] for o in orgs])
    ti.xcom_push(key=REREAD_FAILURES_XCOM_KEY, value=[
        {"org_id": o, "day": d, "error": clip(why)} for o, d, why in failures
    ])
    if failures:
        raise RuntimeError(
            f"{len(failures)} (org, day) re-read(s) failed; nothing is issued until they succeed: "
            + "; ".join(f"{o} {d}: {clip(why)}" for o, d, why in failures)
        )
    # XCom stays small: the count, and the first (org, day)s re-billed (the log has them all)
    return {"re_read": len(landed), "rebilled": len(rebilled), "first_rebilled": rebilled[:20]}


def _reread(
    expected: dict[str, tuple[str, date]], days: list[date], run_id: str, orgs: list[BatchOrg]
) -> tuple[list[LandedOrgDay], list[tuple[str, str, str]]]:
    """Extract the (org, day)s of ``orgs`` from each org's first expected day on; lands them like the daily DAG."""
    client, source = rafay_access()
    landed: list[LandedOrgDay] = []
    failures: list[tuple[str, str, str]] = []
    for ref in orgs:
        if ref["org_id"] not in expected:
            continue
        for day in (d for d in days if d >= expected[ref["org_id"]][1]):
            try:
                landed.append(extract_org_day(client, ref, Window.for_day(day), run_id, source))
            except Exception as exc:  # one (org, day)'s failure must not stop the others' re-read
                log.error("org %s, day %s: re-read failed: %s", ref["org_id"], day, exc)
                failures.append((ref["org_id"], day.isoformat(), str(exc)[:500]))
    metrics.client_requests(client)
    return landed, failures


def _pulled(context: Context, key: str) -> list[Any]:
    pulled = context["ti"].xcom_pull(task_ids=[REREAD_TASK], key=key) or []
    return [item for chunk in pulled if chunk for item in chunk]


def collect_late_usage(period_data: dict, batches: list[list[BatchOrg]] | None, context: Context) -> dict:
    """Refuse to go on, naming each org whose re-read failed (or never ran), once every org's re-read
    has finished; the others' re-billed days stay re-billed. Runs whatever the mapped tasks ended as."""
    period = _period(period_data)
    if batches is None:
        raise AirflowFailException(f"The org listing for {period.label}'s late-usage re-read failed: see "
                                   "late_usage_orgs' log; nothing is issued until it succeeds.")
    wanted = [o["org_id"] for batch in batches for o in batch]
    done = set(_pulled(context, REREAD_DONE_XCOM_KEY))
    failures = _pulled(context, REREAD_FAILURES_XCOM_KEY)
    failed = [o for o in wanted if o not in done]
    if failed:
        why: dict[str, list[str]] = {}
        for f in failures:
            why.setdefault(f["org_id"], []).append(f"{f['day']}: {f['error']}")
        raise AirflowFailException(
            f"period {period.label} cannot be closed yet: the late-usage re-read failed for {len(failed)} org(s): "
            + "; ".join(f"{o} ({'; '.join(why[o]) if o in why else f'see {REREAD_TASK} [{o}]'})" for o in failed)
            + f" - clear the failed {REREAD_TASK} task(s) once the cause is fixed (the other orgs are re-read)"
        )
    log.info("Late usage of %s re-read for %d org(s).", period.label, len(wanted))
    return {"orgs": len(wanted)}


def rerate_period(period_data: dict) -> dict:
    """Re-rate the period's days against the price book as it stands (only differences are written);
    the count goes to the close's audit entry. A closed period is left as it is."""
    from rafay_billing.periods.close import rerate_period as rerate

    period = _period(period_data)
    if _already_closed(period):
        return {"closed": True, "rerated_items": 0}
    with billing_connection() as conn:
        changed = rerate(conn, period, _billing_start())
    (log.warning if changed else log.info)(
        "Re-rated %s against the price book as it stands: %d line item(s) changed.", period.label, changed)
    return {"closed": False, "rerated_items": changed}


def _rebill_changed(landed: list[LandedOrgDay], run_id: str) -> list[str]:
    """Load what was re-read (kept per run, like every run's usage) and re-rate the (org, day)s that changed."""
    from rafay_billing.ledger.guards import confirm_unchanged
    from rafay_billing.ledger.load import load_org_usage
    from rafay_billing.ledger.rating import DaySlice, rate_slices
    from rafay_billing.ledger.usage_changes import usage_changes

    names = {(i["org_id"], i["day"]): i["name"] for i in landed}
    with billing_connection() as conn:
        for item in landed:
            with ObjectStoragePath(item["usage_uri"]).open("rb") as handle:
                load_org_usage(conn, Window.for_day(date.fromisoformat(item["day"])), item["org_id"], handle,
                               run_id, source_dir=item.get("source_dir"),
                               # issue 21 rule 3: the seq _extract_org_day took before its first request
                               extraction_seq=item.get("extraction_seq"))
        changes = usage_changes(conn, [(i["org_id"], date.fromisoformat(i["day"])) for i in landed], run_id)
        for change in changes:
            (log.warning if change.changed else log.info)("Late usage check: %s", change)
        changed = [c for c in changes if c.changed]
        # issue 21 rule 3: an unchanged re-read is not rated, but it is the day's newest read: a run that
        # read before it must not rate over it (ledger/guards.py confirm_unchanged)
        confirm_unchanged(conn, [(c.org_id, c.usage_date) for c in changes if not c.changed], run_id)
        if changed:
            slices = [DaySlice(c.org_id, c.usage_date, names[(c.org_id, c.usage_date.isoformat())]) for c in changed]
            # issue 21 rule 2: a re-read that shrank is held (it then blocks the close), not rated
            summary = rate_slices(conn, slices, run_id, shrink_guard_ratio=_shrink_guard_ratio(),
                                  billing_start=_billing_start())
            log.warning("Re-billed %d (org, day)(s) whose usage changed since they were billed: %s",
                        len(changed), summary)
    if not changed:
        log.info("The period's last %d day(s) read the same as when they were billed: nothing re-billed.",
                 LATE_USAGE_DAYS)
    return [f"{c.org_id} {c.usage_date}" for c in changed]


def _shrink_guard_ratio() -> Any:
    """``[rafay_billing] shrink_guard_ratio`` for the close's re-rating of re-read days (issue 21 rule 2)."""
    from rafay_provider.settings import shrink_guard_ratio

    return shrink_guard_ratio()


# --- check and issue -------------------------------------------------------------------------------


def _billing_start() -> date:
    from rafay_provider.settings import billing_start_date

    return billing_start_date()


def check_ready(period_data: dict) -> dict:
    """Fail, naming every earlier open period, missing or failed (org, day) and open exception (its
    days', and closed days' whose correction lands in it), unless the period may close."""
    from rafay_billing.periods.close import readiness

    period = _period(period_data)
    allow = bool(period_data["allow_exceptions"])
    with billing_connection() as conn:
        state = readiness(conn, period, billing_start=_billing_start())
    if state.closed is not None:
        log.info("Period %s is already closed (%s by %s): nothing to check.", period.label,
                 format_utc(state.closed.closed_at), state.closed.closed_by)
        return {"closed": True, "open_exceptions": 0}
    if not state.ready(allow_exceptions=allow):
        raise AirflowFailException(
            state.describe(allow_exceptions=allow)
            + ("" if allow or not state.open_exceptions else
               '\nTo close with the open exceptions listed on the period report, trigger with conf '
               f'{{"period": "{period.label}", "allow_exceptions": true}}.')
        )
    if state.open_exceptions:
        log.warning("Closing with open exceptions (allow_exceptions): %s", state.exceptions_summary())
    log.info("%s", state.describe(allow_exceptions=allow))
    return {"closed": False, "open_exceptions": len(state.open_exceptions)}


def _issuer() -> str:
    """``[rafay_billing] invoice_issuer``; a bad one fails the task without retries, naming the setting."""
    from rafay_provider.settings import SettingsError, invoice_issuer

    try:
        return invoice_issuer()
    except SettingsError as exc:
        raise AirflowFailException(str(exc)) from None


def _rerated_items(rerated: dict | None) -> int:
    """How many items :func:`rerate_period` changed (counted in the close's audit entry)."""
    return int((rerated or {}).get("rerated_items") or 0)


def issue_invoices(period_data: dict, context: Context, rerated: dict | None = None) -> dict:
    """Close the period and issue its documents (one transaction: re-rate, check, issue; a period closed
    before issues nothing). ``rerated``: :func:`rerate_period`'s result, counted in the audit entry."""
    from rafay_billing.errors import PeriodNotReady
    from rafay_billing.periods.close import close_period

    period = _period(period_data)
    issuer = _issuer()
    with billing_connection() as conn:
        try:
            result = close_period(conn, period, actor=actor(context), issuer=issuer,
                                  allow_exceptions=bool(period_data["allow_exceptions"]),
                                  billing_start=_billing_start(),
                                  rerated_before=_rerated_items(rerated))
        except PeriodNotReady as exc:
            raise AirflowFailException(f"{exc}\n(the ledger changed after check_ready; nothing was issued)") from None
    metrics.issued(result)
    if result.already_closed:
        log.info("Period %s was already closed: nothing issued.", period.label)
    for inv in result.invoices:
        log.info("%s %s: %s (%s), %s %s, %d line(s)", "Credit note" if inv.is_credit_note else "Invoice",
                 inv.invoice_number, inv.org_id, inv.organization, inv.subtotal, inv.currency, inv.line_count)
    log.info("%s", result)
    return {
        "period": period.label, "already_closed": result.already_closed, "invoices": len(result.invoices),
        "totals": to_jsonable(dict(result.totals_by_currency)),
        "open_exceptions": len(result.open_exceptions), "issuer": issuer,
        "credit_notes": sum(1 for inv in result.invoices if inv.is_credit_note), "rerated_items": result.rerated_items,
    }


# --- documents, FOCUS, the asset -------------------------------------------------------------------


def write_documents(period_data: dict) -> dict:
    """The invoices (JSON, CSV, HTML) and the period summary under ``reports/period=YYYY-MM/``; a period
    closed with open exceptions lists them (the records still unbilled) on the summary."""
    from rafay_billing.periods.close import readiness
    from rafay_billing.periods.documents import write_period_documents

    period = _period(period_data)
    out_dir = period_dir(period)
    out_dir.mkdir(parents=True, exist_ok=True)
    with billing_connection("reader") as conn:
        unbilled = [e.as_dict() for e in readiness(conn, period).open_exceptions]
        files = write_period_documents(conn, period, out_dir, unbilled=unbilled or None)
    log.info("Wrote %d document(s) for %s to %s", len(files), period.label, out_dir)
    return {"files": len(files), "dir": str(out_dir)}


def export_focus(period_data: dict) -> dict:
    """The period's line items in FOCUS 1.0 columns, next to the invoices (``focus-YYYY-MM.csv``), with
    the invoices' issuer as ``InvoiceIssuerName``."""
    from rafay_billing.periods.focus import write_focus_export
    from rafay_provider.settings import invoice_issuer

    period = _period(period_data)
    out_dir = period_dir(period)
    out_dir.mkdir(parents=True, exist_ok=True)
    out = out_dir / f"focus-{period.label}.csv"
    with billing_connection("reader") as conn:
        rows = write_focus_export(conn, period, out, fmt="csv", invoice_issuer=invoice_issuer())
    log.info("FOCUS export of %s: %d row(s) in %s", period.label, rows, out)
    return {"rows": rows, "file": str(out)}


def announce_closed_period(period_data: dict, issued: dict, context: Context) -> dict:
    """Attach what closed to the closed-periods Asset event (emitted when this task succeeds)."""
    from airflow.sdk import Asset

    from rafay_provider.settings import CLOSED_PERIODS_URI

    period = _period(period_data)
    extra = {
        "period": period.label, "period_start": period.start.isoformat(), "period_end": period.end.isoformat(),
        "invoices": issued.get("invoices", 0), "totals": issued.get("totals", {}),
        "already_closed": bool(issued.get("already_closed")), "reports": str(period_dir(period)),
    }
    context["outlet_events"][Asset(CLOSED_PERIODS_URI)].extra = extra
    log.info("Announcing closed period %s to %s consumers: %s", period.label, CLOSED_PERIODS_URI, extra)
    return extra


# --- approval before issuing (issue 23, part 1: [rafay_billing] close_approval = required) ------------

DRAFT_TASK = "draft_invoices"
APPROVAL_TASK = "approve_invoices"


def drafts_dir(period: Period, draft_set_id: int) -> ObjectStoragePath:
    """``<landing root>/reports/period=YYYY-MM/drafts/set=N``: one drafting's documents (never issued ones)."""
    return period_dir(period) / "drafts" / f"set={draft_set_id}"


def draft_invoices(period_data: dict, context: Context, rerated: dict | None = None) -> dict:
    """Write the period's documents as drafts with the fingerprint of what it carries (one transaction,
    the close's own preparation: nothing is numbered or issued), their draft documents under the
    landing root, and the reviewer's summary (the approval request's body). A closed period drafts nothing."""
    from rafay_billing.errors import PeriodNotReady
    from rafay_billing.periods.drafts import draft_period, summary_markdown, write_draft_documents

    period = _period(period_data)
    issuer = _issuer()
    with billing_connection() as conn:
        try:
            drafts = draft_period(conn, period, actor=actor(context), issuer=issuer,
                                  allow_exceptions=bool(period_data["allow_exceptions"]),
                                  billing_start=_billing_start(),
                                  rerated_before=_rerated_items(rerated))
        except PeriodNotReady as exc:
            raise AirflowFailException(f"{exc}\n(the ledger changed after check_ready; nothing was drafted)") from None
    if drafts.already_closed:
        log.info("Period %s was already closed: nothing drafted, nothing to approve.", period.label)
        return {"period": period.label, "already_closed": True, "issuer": issuer}
    if drafts.superseded:
        log.warning("Superseded the pending draft set(s) %s of %s.", drafts.superseded, period.label)
    files = write_draft_documents(drafts, drafts_dir(period, drafts.draft_set_id))
    log.info("%s; %d draft document(s) in %s", drafts, len(files), drafts_dir(period, drafts.draft_set_id))
    return {
        "period": period.label, "already_closed": False, "issuer": issuer, "draft_set_id": drafts.draft_set_id,
        "fingerprint": drafts.fingerprint, "documents": len(drafts.drafts),
        "totals": to_jsonable(drafts.totals_by_currency), "dir": str(drafts_dir(period, drafts.draft_set_id)),
        "body": summary_markdown(drafts.summary, draft_set_id=drafts.draft_set_id, fingerprint=drafts.fingerprint,
                                 issuer=issuer),
    }


def approval_response(context: Context) -> dict | None:
    """The approval task's response (chosen options, the comment, who answered, when), or None."""
    return context["ti"].xcom_pull(task_ids=APPROVAL_TASK)


def _responder(user: Any) -> str | None:
    if not user:
        return None  # the response timed out and the default (Reject) was taken
    user_id, name = str(user.get("id") or ""), str(user.get("name") or "")
    return name if not user_id or user_id == name else f"{name} (id {user_id})" if name else user_id


def _when(value: Any) -> datetime | None:
    if value is None or isinstance(value, datetime):
        return value
    return datetime.fromisoformat(str(value).replace("Z", "+00:00"))


def issue_approved(period_data: dict, context: Context) -> dict:
    """Act on the reviewer's answer: Approve with an unchanged fingerprint issues the drafts exactly as they
    are (numbers taken now); Reject discards them and fails with the reviewer's comment; a changed period
    issues nothing and fails asking for a new close. Audited either way."""
    from rafay_billing.errors import DraftError
    from rafay_billing.periods.close import closed_period
    from rafay_billing.periods.drafts import Decision, decide, fetch_draft_set

    period = _period(period_data)
    drafted = context["ti"].xcom_pull(task_ids=DRAFT_TASK) or {}
    issuer = drafted.get("issuer")
    if not drafted or drafted.get("already_closed"):
        with billing_connection() as conn:
            closed = closed_period(conn, period)
        if closed is None:
            raise AirflowFailException(f"no drafts of {period.label} to act on: see {DRAFT_TASK}")
        log.info("Period %s was already closed: nothing issued.", period.label)
        return _issued_result(period, _existing_close(period), str(issuer or ""))
    response = approval_response(context)
    if not response or not response.get("chosen_options"):
        raise AirflowFailException(f"{APPROVAL_TASK} left no answer: nothing issued; close {period.label} again")
    decision = Decision(
        option=str(response["chosen_options"][0]),
        comment=str((response.get("params_input") or {}).get("comment") or "").strip(),
        responded_by=_responder(response.get("responded_by_user")),
        responded_at=_when(response.get("responded_at")),
    )
    log.info("Answer to the drafts of %s (set %s): %s by %s at %s%s", period.label, drafted["draft_set_id"],
             decision.option, decision.who, decision.responded_at,
             f", comment: {clip(decision.comment)}" if decision.comment else "")
    with billing_connection() as conn:
        try:
            result = decide(conn, period, int(drafted["draft_set_id"]), decision, actor=actor(context),
                            issuer=str(issuer), billing_start=_billing_start())
        except DraftError as exc:
            raise AirflowFailException(str(exc)) from None
        issued_set = fetch_draft_set(conn, int(drafted["draft_set_id"]))
    log.info("Draft set %s is %s.", issued_set.draft_set_id, issued_set.status)
    metrics.issued(result)  # the documents were numbered now, when the approval was acted on
    return _issued_result(period, result, str(issuer))


def _existing_close(period: Period) -> Any:
    from rafay_billing.periods.close import CloseResult, closed_period
    from rafay_billing.periods.invoices import fetch_invoices

    with billing_connection() as conn:
        closed = closed_period(conn, period)
        invoices = fetch_invoices(conn, period)
    assert closed is not None
    return CloseResult(period, True, tuple(invoices), closed.closed_at, closed.closed_by,
                       allow_exceptions=closed.allow_exceptions)


def _issued_result(period: Period, result: Any, issuer: str) -> dict:
    for inv in result.invoices:
        log.info("%s %s: %s (%s), %s %s, %d line(s)", "Credit note" if inv.is_credit_note else "Invoice",
                 inv.invoice_number, inv.org_id, inv.organization, inv.subtotal, inv.currency, inv.line_count)
    log.info("%s", result)
    return {
        "period": period.label, "already_closed": result.already_closed, "invoices": len(result.invoices),
        "totals": to_jsonable(dict(result.totals_by_currency)),
        "open_exceptions": len(result.open_exceptions), "issuer": issuer,
        "credit_notes": sum(1 for inv in result.invoices if inv.is_credit_note), "rerated_items": result.rerated_items,
    }
