"""The billing DAG's steps: Airflow glue (connections, Variables, object storage, XCom) around the
Airflow-free core in ``rafay_billing``. Imported inside tasks only, never at DAG parse time.

The ledger's unit is (org, UTC day): a run's window (whole UTC days) is extracted, landed, loaded and
rated day by day, and ``billing.coverage`` records each (org, day) as billed, billed with exceptions,
or failed. Only small references (window bounds, org ids, days, file URIs, counts) travel through
XCom; usage rows travel through files under the landing root and the billing database.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from typing import Any, cast

from airflow.sdk import Context, ObjectStoragePath, Variable
from airflow.sdk.exceptions import AirflowFailException

from rafay_billing.jsonable import to_jsonable
from rafay_billing.window import Window, WindowError, format_utc, resolve_window
from rafay_provider import metrics
from rafay_provider.extraction import extract_org_day, extraction_seqs
from rafay_provider.payloads import (
    BatchOrg,
    ExtractFailure,
    FailedOrgDay,
    LandedOrgDay,
    LoadResult,
    OrgBatch,
    RateResult,
    WindowPayload,
)
from rafay_provider.resources import (
    billing_connection,
    new_billing_connection,
    page_writer,
    rafay_access,
    run_dir,
)
from rafay_provider.settings import (
    EXTRACT_FAILURES_XCOM_KEY,
    EXTRACT_TASK,
    EXTRACTED_XCOM_KEY,
    PRICE_BOOK_VARIABLE,
    SETTLE_MINUTES,
)

log = logging.getLogger(__name__)

OVERRIDE_KEYS = ("window_start", "window_end", "days", "orgs", "allow_long_window")


# --- helpers -----------------------------------------------------------------------------------


def _window(data: WindowPayload | None) -> Window:
    """The window resolve_window pushed; a task that runs after it failed (trigger rule all_done)
    gets None and fails here, without retries, saying why instead of crashing on a missing XCom."""
    if not data:
        raise AirflowFailException(
            "no billing window: resolve_window did not succeed (see its log, usually a bad trigger conf); "
            "nothing was loaded, rated or checked in this run"
        )
    return Window.from_dict(dict(data))


def _run_id(context: Context) -> str:
    return context["run_id"]


# --- steps -----------------------------------------------------------------------------------


def resolve_run_window(context: Context) -> WindowPayload:
    params = dict(context.get("params") or {})
    dag_run = context.get("dag_run")
    conf = dict(getattr(dag_run, "conf", None) or {})
    overrides = {k: conf.get(k, params.get(k)) for k in OVERRIDE_KEYS}
    overrides = {k: v for k, v in overrides.items() if v is not None}
    from rafay_provider.settings import SettingsError, max_window_days

    try:
        window, orgs = resolve_window(
            context.get("data_interval_start"), context.get("data_interval_end"), overrides,
            max_days=max_window_days(),
        )
        settle_minutes = conf.get("settle_minutes", params.get("settle_minutes", SETTLE_MINUTES))
        if isinstance(settle_minutes, bool) or not isinstance(settle_minutes, int) or settle_minutes < 0:
            raise WindowError(f"settle_minutes must be a whole number >= 0, got {settle_minutes!r}")
    except (WindowError, SettingsError) as exc:
        raise AirflowFailException(f"Bad billing window: {exc}") from None
    settle_until = window.end + timedelta(minutes=settle_minutes)
    scope = f"orgs {', '.join(orgs)}" if orgs else "all orgs"
    log.info(
        "Billing window [%s, %s) (%.1f h) for %s; usage considered settled from %s.",
        window.start_iso, window.end_iso, window.hours, scope, format_utc(settle_until),
    )
    return {
        "window_start": window.start_iso, "window_end": window.end_iso, "orgs": orgs,
        "settle_until": format_utc(settle_until),
    }


def migrate_schema() -> list[str]:
    from rafay_billing import db
    from rafay_provider.settings import database_roles

    with billing_connection("owner") as conn:
        applied = db.migrate(conn, database_roles())
    log.info("Billing schema: %s", f"applied {', '.join(applied)}" if applied else "up to date")
    return applied


def sync_price_book() -> dict:
    """Sync the CSV the Variable names (unset: the table is used as it is); a bad book fails the task
    naming its CSV lines, the table unchanged. The file's bytes go to the core undecoded, so a byte that
    is not UTF-8 (an Excel Windows-1252 save) is refused naming its line, not a bare UnicodeDecodeError."""
    from rafay_billing.ledger import price_book

    uri = Variable.get(PRICE_BOOK_VARIABLE, default=None)
    if not uri:
        log.info("Variable %s is not set: billing.price_book is used as it is.", PRICE_BOOK_VARIABLE)
        return {"source": None}
    data = ObjectStoragePath(uri).read_bytes()
    with billing_connection() as conn:
        try:
            result = price_book.sync_price_book(conn, data)
        except price_book.PriceBookError as exc:
            raise AirflowFailException(f"Price book {uri} rejected, table left unchanged:\n{exc}") from None
    log.info("Price book synced from %s: %s", uri, result)
    return {"source": uri, "result": str(result)}


def list_org_batches(window_data: WindowPayload, context: Context) -> list[OrgBatch]:
    """Orgs to bill, in listing order, split into at most ``[core] max_map_length`` batches."""
    from airflow.sdk.configuration import conf

    folder = run_dir("raw", _window(window_data), _run_id(context))
    folder.mkdir(parents=True, exist_ok=True)
    from rafay_billing.errors import RafayAuthError

    client, source = rafay_access()
    try:
        listed = source.list_orgs(client, _window(window_data), on_page=page_writer(folder))
    except RafayAuthError as exc:
        raise AirflowFailException(
            f"The Rafay API refused the API key while listing organizations (not retried: waiting cannot fix "
            f"it). Fix the connection the message names, then clear this task: {exc}"
        ) from None
    orgs: list[BatchOrg] = [{"org_id": o.org_id, "name": o.name, "org_seq": seq, "partner_id": o.partner_id,
                             "partner_problem": o.partner_problem} for seq, o in enumerate(listed)]
    if not source.lists_every_org:
        orgs += _idle_known_orgs(orgs)
    wanted = window_data.get("orgs")
    if wanted:
        known = {o["org_id"] for o in orgs}
        unknown = sorted(set(wanted) - known)
        if unknown:
            raise AirflowFailException(
                f"conf orgs names unknown organization ids {unknown}; known ids: {sorted(known)}"
            )
        orgs = [o for o in orgs if o["org_id"] in set(wanted)]
    max_tasks = max(1, conf.getint("core", "max_map_length", fallback=1024))
    per_batch = max(1, math.ceil(len(orgs) / max_tasks))
    batches = [orgs[i : i + per_batch] for i in range(0, len(orgs), per_batch)]
    metrics.listed(len(orgs), client)
    log.info(
        "%d organizations to bill in %d extraction task(s) (%d per task; max_map_length %d).",
        len(orgs), len(batches), per_batch, max_tasks,
    )
    return batches


def _idle_known_orgs(listed: list[BatchOrg]) -> list[BatchOrg]:
    """The registry's orgs missing from a listing that shows an org only on days with usage
    (``partner_only``): billed too, so their idle days are ``billed`` with zero items, not missing."""
    from rafay_billing.ledger.coverage import known_orgs

    seen = {o["org_id"] for o in listed}
    with billing_connection() as conn:
        known = [(org_id, name) for org_id, name in known_orgs(conn) if org_id not in seen]
    if known:
        log.info("%d known organization(s) have no usage in this window and are billed with zero items: %s",
                 len(known), ", ".join(org_id for org_id, _ in known))
    return [{"org_id": org_id, "name": name, "org_seq": len(listed) + i, "partner_id": org_id,
             "partner_problem": None, "sighted": False} for i, (org_id, name) in enumerate(known)]


def is_scheduled_window(context: Context) -> bool:
    """True when the run bills its own data interval as a regular run: not a backfill (run type
    ``backfill``) and no conf window (``window_start``/``window_end``/``days``).

    Why: only such a run's listing dates an org (issue 21, rule 15); a backfill or a conf window of
    an old window says nothing about when today's orgs began.
    """
    dag_run = context.get("dag_run")
    run_type = getattr(dag_run, "run_type", None)
    if str(getattr(run_type, "value", run_type)) == "backfill":
        return False
    conf = dict(getattr(dag_run, "conf", None) or {})
    params = dict(context.get("params") or {})
    return all(conf.get(k, params.get(k)) is None for k in ("window_start", "window_end", "days"))


def _usage_days(landed: list[LandedOrgDay]) -> dict[str, tuple[date, date]]:
    """Each org's first and last day with usage records among the (org, day)s that landed."""
    spans: dict[str, tuple[date, date]] = {}
    for item in landed:
        if item.get("rows"):
            day = date.fromisoformat(item["day"])
            first, last = spans.get(item["org_id"], (day, day))
            spans[item["org_id"]] = (min(first, day), max(last, day))
    return spans


def extract_batch(batch: OrgBatch, window_data: WindowPayload, context: Context) -> list[LandedOrgDay]:
    """Extract each org's window day by day: raw pages and a usage CSV land per (org, day).

    What landed is pushed even if some (org, day)s fail (the task then fails, and retries): one org's
    or day's failure never loses the others' work, and a failed (org, day) is never billed partially.
    A refused API key (401/403) is not asked again for the org's other days and fails the task at once
    (AirflowFailException, no retries): waiting cannot fix it, the connection named in the message can.
    """
    from rafay_billing.errors import RafayAuthError

    window = _window(window_data)
    client, source = rafay_access()
    run_id = _run_id(context)
    landed: list[LandedOrgDay] = []
    failures: list[ExtractFailure] = []
    refused: list[str] = []
    with extraction_seqs() as take_seq:
        for org in batch:
            refusal: RafayAuthError | None = None
            for day in window.days():
                if refusal is not None:  # the key was refused for this org: asking again cannot help
                    failures.append(_failure(org, day, refusal))
                    continue
                try:
                    landed.append(extract_org_day(client, org, day, run_id, source, take_seq))
                except Exception as exc:  # one (org, day)'s failure must not lose the others' work
                    log.error("org %s (%s), day %s: extraction failed: %s", org["org_id"], org["name"],
                              day.start.date(), exc)
                    failures.append(_failure(org, day, exc))
                    if isinstance(exc, RafayAuthError):
                        refusal = exc
                        refused.append(f"{org['org_id']} ({org['name']}): {exc}")
    metrics.client_requests(client)
    ti = context["ti"]
    ti.xcom_push(key=EXTRACTED_XCOM_KEY, value=landed)
    ti.xcom_push(key=EXTRACT_FAILURES_XCOM_KEY, value=failures)
    if refused:
        # 401/403: the key is wrong, expired or lacks rights; a retry minutes later gets the same answer
        raise AirflowFailException(
            "The Rafay API refused the API key (not retried: waiting cannot fix it). Fix the connection the "
            "message names, then clear this task: " + "; ".join(refused)
        )
    if failures:
        raise RuntimeError(
            f"{len(failures)} (org, day) extraction(s) failed: "
            + "; ".join(f"{f['org_id']} ({f['name']}) {f['day']}: {f['error']}" for f in failures)
        )
    return landed


def _failure(org: BatchOrg, day: Window, exc: BaseException) -> ExtractFailure:
    return {"org_id": org["org_id"], "name": org["name"], "day": day.start.date().isoformat(),
            "error": str(exc)[:2000]}


def _org_ref(org: BatchOrg | LandedOrgDay) -> dict[str, str]:
    return {"org_id": org["org_id"], "name": org["name"]}


def _pulled(context: Context, key: str) -> list[Any]:
    pulled = context["ti"].xcom_pull(task_ids=[EXTRACT_TASK], key=key) or []
    return [item for chunk in pulled if chunk for item in chunk]


def load_usage(window_data: WindowPayload | None, batches: list[OrgBatch] | None, context: Context) -> LoadResult:
    """Load every (org, day) that landed; mark every listed (org, day) that did not as ``failed``.

    Runs even when some orgs failed extraction, so every good (org, day) is billed; refuses to run
    when the org listing itself failed, so nothing downstream mistakes old data for this run's.
    """
    from rafay_billing.ledger.coverage import record_failed, register_orgs
    from rafay_billing.ledger.load import LoadError, load_org_usage
    from rafay_provider.settings import billing_start_date

    window = _window(window_data)  # fails, saying why, when resolve_window did not succeed
    assert window_data is not None
    if batches is None:
        raise AirflowFailException(
            "the organization listing did not succeed (see the list_orgs task log): nothing was loaded "
            "or rated in this run; fix the cause and clear list_orgs"
        )
    run_id = _run_id(context)
    listed = [o for b in batches for o in b]
    landed: list[LandedOrgDay] = sorted(_pulled(context, EXTRACTED_XCOM_KEY), key=lambda s: (s["org_seq"], s["day"]))
    failures: list[ExtractFailure] = _pulled(context, EXTRACT_FAILURES_XCOM_KEY)
    extract_errors = {(f["org_id"], f["day"]): f["error"] for f in failures}
    loaded: list[list[str]] = []
    failed: list[dict[str, str]] = []
    rows = 0
    with billing_connection() as conn:
        register_orgs(conn, [(o["org_id"], o["name"]) for o in listed if o.get("sighted", True)],
                      window.start.date(), run_id, start_floor=billing_start_date(),
                      last_day=window.days()[-1].start.date(), full_listing=not window_data.get("orgs"),
                      scheduled=is_scheduled_window(context), usage_days=_usage_days(landed))
        for item in landed:
            day = Window.for_day(date.fromisoformat(item["day"]))
            try:
                with ObjectStoragePath(item["usage_uri"]).open("rb") as handle:
                    count = load_org_usage(
                        conn, day, item["org_id"], handle, run_id, source_dir=item.get("source_dir"),
                        extraction_seq=item.get("extraction_seq"),
                    )
            except LoadError as exc:
                log.error("org %s (%s), day %s: not loaded: %s", item["org_id"], item["name"], item["day"], exc)
                failed.append({**_org_ref(item), "day": item["day"], "detail": f"load failed: {exc}"})
                continue
            rows += count
            loaded.append([item["org_id"], item["day"], item["name"]])
            log.info("org %s (%s), day %s: loaded %d usage rows", item["org_id"], item["name"], item["day"], count)
        done = {(o, d) for o, d, _ in loaded} | {(f["org_id"], f["day"]) for f in failed}
        for org in listed:
            for day in window.days():
                key = (org["org_id"], day.start.date().isoformat())
                if key not in done:
                    why = extract_errors.get(key, "no usage was extracted (see the extract_org task log)")
                    failed.append({**_org_ref(org), "day": key[1], "detail": f"extraction failed: {why}"})
        record_failed(conn, [(f["org_id"], date.fromisoformat(f["day"]), f["name"], f["detail"]) for f in failed],
                      run_id)
    if failed:
        log.warning(
            "%d (org, day)(s) are not billed in this run and are marked failed in billing.coverage: %s",
            len(failed), ", ".join(f"{f['org_id']} {f['day']}" for f in failed),
        )
    log.info("Loaded %d usage rows for %d (org, day)(s) into billing.usage_records.", rows, len(loaded))
    return metrics.loaded({
        "loaded": loaded,
        "rows": rows,
        "failed": [FailedOrgDay(org_id=f["org_id"], name=f["name"], day=f["day"]) for f in failed],
        "orgs": [o["org_id"] for o in listed],
    })


def rate(window_data: WindowPayload, loaded: LoadResult, context: Context) -> RateResult:
    """Rate exactly the (org, day)s this run loaded: other orgs and days keep their items and run id."""
    from rafay_billing.ledger.guards import run_decisions
    from rafay_billing.ledger.rating import DaySlice, rate_slices
    from rafay_provider.settings import billing_start_date, rating_connections, shrink_guard_ratio

    window = _window(window_data)
    slices = [DaySlice(org_id, date.fromisoformat(day), name) for org_id, day, name in loaded.get("loaded") or []]
    if not slices:
        log.info("Nothing was loaded in this run: no (org, day) to rate.")
        return {"slices": 0, "line_items": 0, "exceptions_by_reason": {}, "totals_by_currency": {}}
    with billing_connection() as conn:
        summary = rate_slices(conn, slices, _run_id(context), connect=new_billing_connection,
                              connections=rating_connections(), shrink_guard_ratio=shrink_guard_ratio(),
                              billing_start=billing_start_date())
        refused = run_decisions(conn, slices, _run_id(context))
        _log_money_table(conn, window, _run_id(context))
    for org_id, day in refused["superseded"]:
        log.warning("org %s, day %s: superseded: a newer extraction was rated since this run read it; the "
                    "day is left as it is", org_id, day)
    for org_id, day in refused["held"]:
        log.warning("org %s, day %s: held (usage_shrank): this run's read shrank; the earlier items stand "
                    "(see billing.coverage.detail)", org_id, day)
    totals = ", ".join(f"{amount} {cur}" for cur, amount in sorted(summary.totals_by_currency.items())) or "none"
    exceptions = sum(summary.exceptions_by_reason.values())
    log.info(
        "Rated %d (org, day)(s) of [%s, %s): %d line items, %d exceptions %s; totals per currency: %s",
        len(slices), window.start_iso, window.end_iso, summary.line_items, exceptions,
        {k: v for k, v in sorted(summary.exceptions_by_reason.items()) if v}, totals,
    )
    for c in summary.corrections:
        log.warning(
            "org %s, day %s is in a closed billing period: correction %d written into period %s (difference %s)",
            c.org_id, c.usage_date, c.correction_seq, c.period_start,
            ", ".join(f"{v} {k}" for k, v in sorted(c.delta_by_currency.items())),
        )
    return metrics.rated(cast(RateResult, to_jsonable(
        {
            "slices": len(slices),
            "line_items": summary.line_items,
            "exceptions_by_reason": dict(summary.exceptions_by_reason),
            "totals_by_currency": dict(summary.totals_by_currency),
            "corrections": len(summary.corrections),
            "held": [f"{o} {d}" for o, d in refused["held"]],
            "superseded": [f"{o} {d}" for o, d in refused["superseded"]],
        }
    )))


def _log_money_table(conn: Any, window: Window, run_id: str) -> None:
    """Per-org charges of this run (top 50 by amount, totals per currency) in a collapsible log group."""
    from rafay_billing.ledger.money_table import TOP_N, fetch_org_totals, format_table, grouped

    rows = fetch_org_totals(conn, run_id, window.start.date(), window.end.date())
    title = f"Charges per org of [{window.start_iso}, {window.end_iso}): top {min(TOP_N, len(rows))} of {len(rows)}"
    for line in grouped(title, format_table(rows)):
        log.info("%s", line)


LINE_ITEM_COLUMNS = (
    "window_start", "window_end", "org_id", "organization", "profile_type", "profile", "instance",
    "instance_id", "usage_hours", "pricing_unit", "pricing_quantity", "unit_price", "currency", "amount",
    "price_id", "charge_class", "billing_period_start", "dimension", "labels",
)


def publish_reports(window_data: WindowPayload, context: Context) -> dict[str, Any]:
    """The window's ncp-metrics CSVs and line items, streamed from the database into the files.

    Every file is written row by row from a server-side cursor (the sorted ncp-metrics copy from an
    ``ORDER BY`` query, not an in-memory sort), all three from one read-only snapshot: the task's
    memory does not grow with the window's rows, and the files agree with each other.
    """
    from rafay_billing import reports
    from rafay_billing.ledger.rating import iter_line_items, iter_ncp_metrics_rows

    window = _window(window_data)
    out = run_dir("reports", window, _run_id(context))
    out.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%m%d%Y-%H%M%S")
    counted = {"ncp_metrics_rows": 0}

    def ncp_metrics_rows(rows: Iterator[dict[str, Any]]) -> Iterator[dict[str, Any]]:
        for row in rows:
            counted["ncp_metrics_rows"] += 1
            yield row

    line_items_path = out / "line-items.csv"
    with (
        billing_connection("reader") as conn,
        _report_snapshot(conn),
        _closing(iter_ncp_metrics_rows(conn, window)) as unsorted_rows,
        _closing(iter_ncp_metrics_rows(conn, window, sort=True)) as sorted_rows,
        _closing(iter_line_items(conn, window)) as line_items,
    ):
        files = reports.write_ncp_metrics_csvs(ncp_metrics_rows(unsorted_rows), out, stamp, sorted_rows=sorted_rows)
        with line_items_path.open("w", encoding="utf-8", newline="") as handle:
            items = reports.write_csv(
                handle, LINE_ITEM_COLUMNS, ([row.get(c) for c in LINE_ITEM_COLUMNS] for row in line_items),
            )
    written = [str(f) for f in files] + [str(line_items_path)]
    log.info("Reports for [%s, %s): %s", window.start_iso, window.end_iso, ", ".join(written))
    return {"files": written, "ncp_metrics_rows": counted["ncp_metrics_rows"], "line_items": items}


@contextmanager
def _closing(rows: Iterator[Any]) -> Iterator[Iterator[Any]]:
    """``rows`` (a cursor stream, unstarted until read), closed on the way out: a failure half-way
    through a file ends the stream's cursor and savepoint before the snapshot's transaction rolls back."""
    try:
        yield rows
    finally:
        close = getattr(rows, "close", None)
        if close is not None:
            close()


@contextmanager
def _report_snapshot(conn: Any) -> Iterator[None]:
    """One read-only REPEATABLE READ transaction around every query of the reports (each stream's own
    transaction becomes a savepoint in it)."""
    from rafay_billing.db import sql, transaction

    with transaction(conn):
        with conn.cursor() as cur:
            cur.execute(sql("reports/snapshot.sql"))
        yield


def check_run(window_data: WindowPayload | None, context: Context) -> dict[str, bool]:
    """Fail, after all good work is written, when anything of this run or its look-back is not billed."""
    from rafay_billing.ledger.coverage import uncovered_days
    from rafay_provider.settings import COVERAGE_LOOKBACK_DAYS, billing_start_date

    ti = context["ti"]
    window = _window(window_data)
    loaded = ti.xcom_pull(task_ids="load_usage") or {}
    rated = ti.xcom_pull(task_ids="rate_window") or {}
    problems: list[str] = []
    if not loaded:
        problems.append("usage was not loaded (see the list_orgs and load_usage task logs)")
    elif not rated:
        problems.append("the loaded days were not rated (see the rate_window task log)")
    failed = loaded.get("failed") or []
    if failed:
        problems.append(
            f"{len(failed)} (org, day)(s) failed and are not billed: "
            + ", ".join(f"{f['org_id']} ({f['name']}) {f['day']}" for f in failed)
            + " - clear their extract_org task instances (and downstream) once the cause is fixed"
        )
    held = _held_days(window, loaded.get("orgs") or [])
    if held:
        problems.append(
            f"{len(held)} (org, day)(s) are held (usage_shrank: a re-read fell below shrink_guard_ratio of the "
            "billed hours, or to no records; the earlier items stand): " + ", ".join(str(h) for h in held)
            + " - accept each with rafay-billing accept-shrink --org ORG --day DAY --run RUN --reason TEXT, "
            "or read the day again"
        )
    by_reason = {k: v for k, v in (rated.get("exceptions_by_reason") or {}).items() if v}
    if by_reason:
        counts = ", ".join(f"{reason}: {n}" for reason, n in sorted(by_reason.items()))
        problems.append(
            f"{sum(by_reason.values())} usage record(s) not billed ({counts}); see billing.rating_exceptions"
        )
    orgs = loaded.get("orgs") or []
    first_day = max(window.end.date() - timedelta(days=COVERAGE_LOOKBACK_DAYS), billing_start_date())
    if orgs and first_day < window.start.date():
        with billing_connection() as conn:
            gaps = uncovered_days(conn, orgs, first_day, window.start.date())
        if gaps:
            problems.append(
                f"{len(gaps)} earlier (org, day)(s) since {first_day} are not billed: "
                + "; ".join(f"{org_id}: " + ", ".join(f"{d} ({status})" for d, status in days)
                            for org_id, days in _by_org(gaps))
                + " - bill them with a run whose conf is "
                '{"window_start": "<day>T00:00:00Z", "window_end": "<next day>T00:00:00Z"} (or a backfill)'
            )
    if problems:
        raise AirflowFailException(
            f"Window [{window.start_iso}, {window.end_iso}) needs attention; all good line items are written.\n- "
            + "\n- ".join(problems)
        )
    log.info(
        "Window [%s, %s) billed cleanly: %s (org, day)(s), %s line items, totals %s.",
        window.start_iso, window.end_iso, rated.get("slices"), rated.get("line_items"),
        rated.get("totals_by_currency"),
    )
    return {"ok": True}


def _held_days(window: Window, orgs: list[str]) -> list[Any]:
    """The window's ``held`` (org, day)s of the listed orgs (this run's shrunken reads, or earlier ones)."""
    from rafay_billing.ledger.guards import held_days

    if not orgs:
        return []
    with billing_connection() as conn:
        return held_days(conn, window.start.date(), window.end.date(), orgs)


def _by_org(gaps: list[tuple[str, date, str]]) -> list[tuple[str, list[tuple[date, str]]]]:
    grouped: dict[str, list[tuple[date, str]]] = {}
    for org_id, day, status in gaps:
        grouped.setdefault(org_id, []).append((day, status))
    return list(grouped.items())


def fail_if_any_task_failed() -> None:
    """The run's watcher: it only runs when some task failed, and then fails the run whatever the
    other leaves did (a green run must mean every task succeeded)."""
    raise AirflowFailException(
        "a task of this run failed (see the tasks marked failed or upstream_failed); the run is not clean"
    )
