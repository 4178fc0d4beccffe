"""Rate (org, UTC day) slices in SQL: landed usage × price book → charge line items, exceptions, coverage.

Why in SQL: a window can hold a million usage rows; PostgreSQL prices them where they are, with the
price lookup done once per distinct (org, profile_type, profile) through an index, and the money
arithmetic stays NUMERIC end to end, rounded once to the currency's ISO 4217 minor unit
(``rafay_billing/sql/rating/rate_days.sql`` holds the rules).

Why (org, day) slices: the ledger's unit. Re-billing a day replaces that (org, day), whichever window
asked for it, so overlapping windows never bill an hour twice, and a run limited to some orgs never
touches the others. Why one transaction per slice: readers see a day's old rating or its new one,
never a mix (a window's orgs may be rated in a few parallel transactions, see :func:`rate_slices`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import date
from decimal import Decimal
from typing import Any

from rafay_billing.db import sql, transaction
from rafay_billing.ledger.guards import DEFAULT_SHRINK_GUARD_RATIO, Guarded, guard_slices
from rafay_billing.ledger.reservations import cover_stage, reserved_slices
from rafay_billing.ledger.slices import DaySlice
from rafay_billing.window import Window

log = logging.getLogger(__name__)

REASONS: tuple[str, ...] = (
    "unpriced", "ambiguous_price", "missing_gpu_count", "invalid_usage", "usage_exceeds_window", "missing_dimension",
    "usage_outside_day",
)
HOURS_TOLERANCE = Decimal("0.01")
"""Hours an instance may exceed its 24 h day by before it is ``usage_exceeds_window`` (36 s: meter rounding)."""


@dataclass(frozen=True)
class RatingSummary:
    """What rated slices hold after rating (also what :func:`slices_summary` reads back)."""

    line_items: int
    exceptions_by_reason: dict[str, int]
    totals_by_currency: dict[str, Decimal]
    orgs: int
    usage_rows: int = 0
    line_items_by_currency: dict[str, int] = field(default_factory=dict)
    slices: int = 0
    corrections: tuple[Correction, ...] = ()
    failed: tuple[RatingFailure, ...] = ()

    @property
    def exceptions(self) -> int:
        return sum(self.exceptions_by_reason.values())

    def __str__(self) -> str:
        totals = ", ".join(f"{amount} {cur}" for cur, amount in sorted(self.totals_by_currency.items())) or "none"
        reasons = ", ".join(f"{r}: {n}" for r, n in sorted(self.exceptions_by_reason.items()) if n) or "none"
        return (
            f"{self.usage_rows} usage rows of {self.orgs} orgs in {self.slices} (org, day) slices: "
            f"{self.line_items} line items, {self.exceptions} exceptions ({reasons}); totals {totals}"
        )


def _slice_params(slices: Sequence[DaySlice]) -> dict[str, Any]:
    return {
        "org_ids": [s.org_id for s in slices],
        "usage_dates": [s.usage_date for s in slices],
        "organizations": [s.organization for s in slices],
    }


def rate_slices(
    conn: Any,
    slices: Sequence[DaySlice],
    run_id: str,
    *,
    connect: Callable[[], Any] | None = None,
    connections: int = 1,
    shrink_guard_ratio: Decimal = DEFAULT_SHRINK_GUARD_RATIO,
    billing_start: date | None = None,
) -> RatingSummary:
    """Replace the slices' line items and exceptions with a rating of the usage ``run_id`` landed.

    Only these (org, day)s change: another org's items, or another day's, keep their amounts and run
    id. Every usage record of a slice ends up in exactly one place: a line item (records sharing an
    instance_key are summed) or a ``rating_exceptions`` row with its reason; the slices' coverage is
    written in the same transaction. Items rated again with the same values are left untouched, so an
    unchanged re-rating writes no line item. A day of a closed billing period keeps its issued items:
    its fresh rating is compared with them and the difference is written as corrections into the
    earliest open period (:func:`corrections` of the returned summary; nothing when unchanged).
    No statistics are needed first: every read of the slices' usage is one index scan per slice,
    whatever the table's statistics say (rating/rate_days.sql), and the stage is analyzed itself.

    With ``connect`` (a factory of new connections to the same database) and ``connections`` > 1, the
    orgs are split into groups of whole orgs that ``connections`` connections rate at the same time,
    each group in its own transaction: PostgreSQL runs one statement on one core, and rating is
    core-bound. Each (org, day) is still rated in exactly one transaction, so a reader sees its old
    rating or its new one, never a mix. After a failure no group starts; the groups done stay rated
    and the error is raised (a retry re-rates them, unchanged ones without writing).

    Under the slices' locks, the guard (:func:`rafay_billing.ledger.guards.guard_slices`) first leaves
    out each slice whose run's extraction is older than the one the day holds (``superseded``) or
    shrank below ``shrink_guard_ratio`` of it (``held``): those days keep their items.

    Days that a current reservation's term meets (from ``billing_start``, the ``[rafay_billing]
    billing_start_date``; None: any day) are rated through the stage and their instance items split into
    covered and on-demand parts (issue 22 rule 2, :mod:`rafay_billing.ledger.reservations`).
    """
    slices = sorted(set(slices), key=lambda s: (s.org_id, s.usage_date))
    if connect is None or connections <= 1:
        return _rate_group(conn, slices, run_id, shrink_guard_ratio, billing_start)
    # twice as many groups as connections, taken in turn: a connection that finishes early takes the
    # next group instead of idling while the other one rates the window's heavier orgs
    groups = _org_groups(slices, 2 * connections)
    if len(groups) <= 1:
        return _rate_group(conn, slices, run_id, shrink_guard_ratio, billing_start)
    return _combine(_rate_groups_in_parallel(conn, connect, groups, run_id, connections, shrink_guard_ratio,
                                             billing_start), len(slices))


def _org_groups(slices: Sequence[DaySlice], count: int) -> list[list[DaySlice]]:
    """``slices`` (sorted) cut into up to ``count`` runs of whole orgs (an org's days stay together) of
    about equal slice counts. Contiguous runs, so parallel groups write to different ranges of the
    line items' key instead of interleaving in the same index pages."""
    orgs: list[list[DaySlice]] = []
    for s in slices:
        if orgs and orgs[-1][0].org_id == s.org_id:
            orgs[-1].append(s)
        else:
            orgs.append([s])
    count = max(1, min(count, len(orgs)))
    groups: list[list[DaySlice]] = [[] for _ in range(count)]
    done = 0
    for org_slices in orgs:
        groups[min(count - 1, done * count // max(1, len(slices)))].extend(org_slices)
        done += len(org_slices)
    return [g for g in groups if g] or [[]]


def _rate_groups_in_parallel(
    conn: Any, connect: Callable[[], Any], groups: list[list[DaySlice]], run_id: str, connections: int,
    shrink_guard_ratio: Decimal = DEFAULT_SHRINK_GUARD_RATIO, billing_start: date | None = None,
) -> list[RatingSummary]:
    """Rate ``groups`` on ``conn`` and ``connections - 1`` new connections at once, each connection
    taking the next group when it is done with one (every group is its own transaction). After an
    error no connection starts another group; the error is raised once all have stopped."""
    import queue  # only when rating in parallel
    from concurrent.futures import ThreadPoolExecutor

    todo: queue.SimpleQueue[list[DaySlice]] = queue.SimpleQueue()
    for group in groups:
        todo.put(group)
    results: list[RatingSummary] = []
    errors: list[BaseException] = []

    def work(on: Any) -> None:
        while not errors:
            try:
                group = todo.get_nowait()
            except queue.Empty:
                return
            try:
                results.append(_rate_group(on, group, run_id, shrink_guard_ratio, billing_start))
            except BaseException as exc:  # re-raised below, after the others stop
                errors.append(exc)

    def work_on_new_connection() -> None:
        try:
            other = connect()
        except BaseException as exc:
            errors.append(exc)
            return
        try:
            work(other)
        finally:
            other.close()

    workers = min(connections, len(groups)) - 1
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="rating") as pool:
        futures = [pool.submit(work_on_new_connection) for _ in range(workers)]
        work(conn)
        for future in futures:
            future.result()
    if errors:
        raise errors[0]
    return results


def _combine(parts: Sequence[RatingSummary], slices: int) -> RatingSummary:
    """One summary of groups of whole orgs (so orgs, like every other count, add up)."""
    totals: dict[str, Decimal] = {}
    per_currency: dict[str, int] = {}
    reasons: dict[str, int] = dict.fromkeys(REASONS, 0)
    for part in parts:
        for cur, amount in part.totals_by_currency.items():
            totals[cur] = totals.get(cur, Decimal(0)) + amount
        for cur, n in part.line_items_by_currency.items():
            per_currency[cur] = per_currency.get(cur, 0) + n
        for reason, n in part.exceptions_by_reason.items():
            reasons[reason] = reasons.get(reason, 0) + n
    corrections = sorted((c for p in parts for c in p.corrections), key=lambda c: (c.org_id, c.usage_date))
    return RatingSummary(
        line_items=sum(p.line_items for p in parts),
        exceptions_by_reason=reasons,
        totals_by_currency=totals,
        orgs=sum(p.orgs for p in parts),
        usage_rows=sum(p.usage_rows for p in parts),
        line_items_by_currency=per_currency,
        slices=slices,
        corrections=tuple(corrections),
        failed=tuple(f for p in parts for f in p.failed),
    )


def _rate_group(
    conn: Any, slices: Sequence[DaySlice], run_id: str, shrink_guard_ratio: Decimal = DEFAULT_SHRINK_GUARD_RATIO,
    billing_start: date | None = None,
) -> RatingSummary:
    """Rate ``slices`` in one transaction on ``conn``: guard, stage, apply or correct, coverage, summary.

    The guard (``ledger/guards.py``, issue 21 rules 2 and 3) runs first, under the days' locks, so no
    other run rates in between: it keeps out stale and shrinking re-reads. Why savepoints: an error
    rating one org (a key its usage breaks, a number beyond a column) must not stop the other orgs of
    the group, on this try or any retry (rule 13). The group is rated set-based under one savepoint
    (the fast, usual case); if that fails, each org is rated again under a savepoint of its own (record
    times read by a function that never fails, rule 9), and the days of an org that still fails are
    marked ``failed`` in coverage with the database's error (their earlier items stand) and listed in
    the summary's ``failed``. A lost connection is no org's fault: it is raised.
    """
    import psycopg

    with transaction(conn), conn.cursor() as cur:
        keys = [f"rating|{s.org_id}|{s.usage_date.isoformat()}" for s in slices]
        cur.execute(sql("rating/lock.sql"), {"lock_keys": keys})
        guarded = guard_slices(cur, slices, run_id, shrink_guard_ratio)  # issue 21 rules 2, 3 (ledger/guards.py)
        slices = guarded.slices
        params = {**_slice_params(slices), "run_id": run_id, "hours_tolerance": HOURS_TOLERANCE}
        cur.execute(sql("rating/settings.sql"))
        corrected: list[Correction] = []
        failed: list[RatingFailure] = []
        rows: list[tuple[Any, ...]] | None = None
        try:
            with conn.transaction():  # a read becomes the day's own with its rating, or not at all
                guarded.mark_rated(cur, slices)
                corrected, rows = _rate_set(cur, slices, run_id, billing_start=billing_start)
        except psycopg.OperationalError:
            raise
        except psycopg.Error as exc:
            corrected, failed = _rate_each_org(conn, cur, guarded, run_id, exc, billing_start)
        if failed:
            _record_failed(cur, [s for s in slices if s.org_id in {f.org_id for f in failed}], failed, run_id)
        # the set-based rating's coverage step returned the summary; after a failure it is read again
        summary = _summary_of(rows, len(slices)) if rows is not None else _summary(cur, params, len(slices))
    return replace(summary, corrections=tuple(corrected), failed=tuple(failed))


@dataclass(frozen=True)
class RatingFailure:
    """An org whose days could not be rated: they are ``failed`` in coverage with ``error``."""

    org_id: str
    days: tuple[date, ...]
    error: str


def _rate_each_org(
    conn: Any, cur: Any, guarded: Guarded, run_id: str, error: Exception, billing_start: date | None = None
) -> tuple[list[Correction], list[RatingFailure]]:
    """After the group failed with ``error``: each org under its own savepoint; the ones that fail
    (their reads stay unrated, as their days' items stay as they were)."""
    import psycopg

    orgs: dict[str, list[DaySlice]] = {}
    for s in guarded.slices:
        orgs.setdefault(s.org_id, []).append(s)
    log.warning("rating %d org(s) failed (%s): rating each org on its own, record times read safely",
                len(orgs), _why(error))
    corrected: list[Correction] = []
    failed: list[RatingFailure] = []
    for org_id, days in orgs.items():
        try:
            with conn.transaction():
                guarded.mark_rated(cur, days)
                corrected.extend(_rate_set(cur, days, run_id, safe_times=True, billing_start=billing_start)[0])
        except psycopg.OperationalError:
            raise
        except psycopg.Error as exc:
            failed.append(RatingFailure(org_id, tuple(s.usage_date for s in days), _why(exc)))
    return corrected, failed


def _why(exc: Any) -> str:
    """The database's error, in at most 1,024 characters (it may quote a huge key)."""
    diag = getattr(exc, "diag", None)
    text = " ".join(p for p in (getattr(diag, "message_primary", None) or str(exc),
                                getattr(diag, "message_detail", None)) if p)
    text = f"rating failed: {text}"
    return text if len(text) <= 1024 else text[:1023] + "\u2026"


def _record_failed(cur: Any, slices: Sequence[DaySlice], failed: Sequence[RatingFailure], run_id: str) -> None:
    why = {f.org_id: f.error for f in failed}
    cur.execute(sql("coverage/record_failed.sql"), {
        **_slice_params(slices), "details": [why[s.org_id] for s in slices], "run_id": run_id,
    })


def _rate_set(cur: Any, slices: Sequence[DaySlice], run_id: str, *, safe_times: bool = False,
              billing_start: date | None = None) -> tuple[list[Correction], list[tuple[Any, ...]]]:
    """Rate ``slices`` set-based on ``cur`` (inside the caller's transaction): stage, reservation
    coverage, apply or correct, coverage. Returns the corrections written and the slices' summary rows
    (``rating/record_coverage.sql``, as ``run_summary.sql`` gives them). ``safe_times``: read record
    times through a validating function (slower) rather than a cast that fails the statement on a time
    it cannot read."""
    params = {**_slice_params(slices), "run_id": run_id, "hours_tolerance": HOURS_TOLERANCE,
              "safe_times": safe_times}
    closed = _pairs(cur, "rating/closed_slices.sql", params)
    held = _pairs(cur, "rating/slices_with_items.sql", params)
    reserved = reserved_slices(cur, slices, billing_start)
    # open days with no items yet and no reservation (the nightly case) are rated straight into the
    # ledger; days rated before, days with a reservation and days of closed periods into the stage, to
    # be covered, then applied or corrected
    unrated = [s for s in slices if (s.org_id, s.usage_date) not in closed | held | reserved]
    rerated = [s for s in slices if (s.org_id, s.usage_date) in (held | reserved) - closed]
    closed_slices = [s for s in slices if (s.org_id, s.usage_date) in closed]
    cur.execute(sql("rating/delete_exceptions.sql"), params)
    cur.execute(sql("rating/create_stage.sql"))
    cur.execute(sql("rating/stage_prices.sql"), params)
    cur.execute(sql("rating/analyze_stage.sql"))
    if unrated:
        cur.execute(_rate_into("billing", "charge_line_items"), {**params, **_slice_params(unrated)})
    if rerated or closed_slices:
        cur.execute(_rate_into("pg_temp", "rated_days"), {**params, **_slice_params(rerated + closed_slices)})
        cover_stage(cur, [s for s in rerated + closed_slices if (s.org_id, s.usage_date) in reserved], run_id,
                    billing_start, safe_times=safe_times)
    if rerated:
        _apply(cur, {**params, **_slice_params(rerated)})
    corrected: list[Correction] = []
    if closed_slices:
        corrected = _correct(cur, {**params, **_slice_params(closed_slices)}, run_id)
    cur.execute(sql("rating/record_coverage.sql"), params)
    return corrected, cur.fetchall()


def _pairs(cur: Any, name: str, params: dict[str, Any]) -> set[tuple[str, date]]:
    cur.execute(sql(name), params)
    return {(org_id, day) for org_id, day in cur.fetchall()}


def _rate_into(schema: str, table: str) -> Any:
    """``rating/rate_days.sql`` writing its line items into ``schema.table`` (a composed statement)."""
    from psycopg import sql as pgsql  # keep module import light

    return pgsql.SQL(sql("rating/rate_days.sql")).format(items=pgsql.Identifier(schema, table))


def _apply(cur: Any, params: dict[str, Any]) -> None:
    """Make the re-rated open slices' line items what the stage holds: delete what differs, insert
    what is new (what is unchanged stays as it is)."""
    cur.execute(sql("rating/delete_changed_items.sql"), params)
    cur.execute(sql("rating/slices_to_fill.sql"), params)
    fill = _fill_params(params, cur.fetchall())
    if fill is not None:
        cur.execute(sql("rating/insert_rated_items.sql"), fill)


def _fill_params(params: dict[str, Any], counts: Sequence[tuple[str, date, int, int]]) -> dict[str, Any] | None:
    """The parameters of ``rating/insert_rated_items.sql`` from ``rating/slices_to_fill.sql``'s counts:
    only the slices that hold fewer items than the stage (the others are complete), with the ones that
    still hold some as kept; None when every slice is complete (an unchanged re-rating: no insert)."""
    todo = [(o, d, held) for o, d, held, staged in counts if held < staged]
    if not todo:
        return None
    kept = [(o, d) for o, d, held in todo if held > 0]
    return {**params, "org_ids": [o for o, _, _ in todo], "usage_dates": [d for _, d, _ in todo],
            "kept_org_ids": [o for o, _ in kept], "kept_usage_dates": [d for _, d in kept]}


@dataclass(frozen=True)
class Correction:
    """A day of a closed period re-billed with another result: where its correction went."""

    org_id: str
    usage_date: date
    period_start: date
    correction_seq: int
    delta_by_currency: dict[str, Decimal]


def rating_statements(into_stage: bool = False) -> list[tuple[str, Any]]:
    """The statements :func:`rate_slices` runs for days of open periods, in order, as (file, statement)
    pairs (benchmarks, EXPLAIN): a first rating (items straight into the ledger) or, with
    ``into_stage``, a re-rating (stage, then the changes applied)."""
    head = [(f"rating/{n}.sql", sql(f"rating/{n}.sql"))
            for n in ("delete_exceptions", "create_stage", "stage_prices", "analyze_stage")]
    if not into_stage:
        return [*head, ("rating/rate_days.sql", _rate_into("billing", "charge_line_items"))]
    return [*head, ("rating/rate_days.sql", _rate_into("pg_temp", "rated_days")),
            *[(f"rating/{n}.sql", sql(f"rating/{n}.sql"))
              for n in ("delete_changed_items", "slices_to_fill", "insert_rated_items")]]


def _correct(cur: Any, params: dict[str, Any], run_id: str) -> list[Correction]:
    """Write what differs between the closed days' stage and their issued items as corrections."""
    import json

    cur.execute(sql("rating/changed_closed_days.sql"), params)
    changed = cur.fetchall()
    if not changed:
        return []
    params = {**params, "org_ids": [o for o, _ in changed], "usage_dates": [d for _, d in changed]}
    cur.execute(sql("rating/delete_pending_corrections.sql"), params)
    cur.execute(sql("rating/correct_days.sql"), params)
    found = [
        Correction(org_id, day, period, seq, {k: Decimal(v) for k, v in (delta or {}).items()})
        for org_id, day, period, seq, delta in cur.fetchall()
    ]
    for c in found:
        cur.execute(sql("audit/record.sql"), {
            "action": "correction", "actor": run_id, "period_start": c.period_start, "org_id": c.org_id,
            "usage_date": c.usage_date,
            "detail": json.dumps({"correction_seq": c.correction_seq,
                                  "delta": {k: str(v) for k, v in c.delta_by_currency.items()}}),
        })
    return found


def landed_slices(conn: Any, window: Window, run_id: str) -> list[DaySlice]:
    """The (org, day) slices of ``window`` that ``run_id`` landed usage for, or an extraction with no
    records (an empty re-read: rating it replaces the day, or holds it, ``ledger/guards.py``)."""
    days = window.days()
    with transaction(conn), conn.cursor() as cur:
        cur.execute(
            sql("rating/landed_slices.sql"),
            {"run_id": run_id, "first_day": days[0].start.date(), "end_day": window.end.date()},
        )
        return [DaySlice(org_id, day, name) for org_id, day, name in cur.fetchall()]


def rate_window(
    conn: Any, window: Window, run_id: str, *, connect: Callable[[], Any] | None = None, connections: int = 1
) -> RatingSummary:
    """Rate every (org, day) of ``window`` that ``run_id`` landed usage for (tests, benchmarks, tools)."""
    return rate_slices(conn, landed_slices(conn, window, run_id), run_id, connect=connect, connections=connections)


def slices_summary(conn: Any, slices: Sequence[DaySlice], run_id: str) -> RatingSummary:
    """Counts and totals of the slices as they stand in the database."""
    params = {**_slice_params(slices), "run_id": run_id}
    with transaction(conn), conn.cursor() as cur:
        return _summary(cur, params, len(slices))


def _summary(cur: Any, params: dict[str, Any], slices: int) -> RatingSummary:
    cur.execute(sql("rating/run_summary.sql"), params)
    return _summary_of(cur.fetchall(), slices)


def _summary_of(rows: Sequence[tuple[Any, ...]], slices: int) -> RatingSummary:
    """A summary from (kind, key, value) rows (``rating/run_summary.sql``, ``record_coverage.sql``)."""
    totals: dict[str, Decimal] = {}
    per_currency: dict[str, int] = {}
    reasons: dict[str, int] = dict.fromkeys(REASONS, 0)
    counts: dict[str, int] = {}
    for kind, key, value in rows:
        if kind == "currency":
            totals[key] = value
        elif kind == "currency_items":
            per_currency[key] = int(value)
        elif kind == "reason":
            reasons[key] = int(value)
        else:
            counts[kind] = int(value)
    return RatingSummary(
        line_items=sum(per_currency.values()),
        exceptions_by_reason=reasons,
        totals_by_currency=totals,
        orgs=counts.get("orgs", 0),
        usage_rows=counts.get("usage_rows", 0),
        line_items_by_currency=per_currency,
        slices=slices,
    )


def _day_params(window: Window) -> dict[str, Any]:
    return {"first_day": window.start.date(), "end_day": window.end.date()}


def _fetch(conn: Any, name: str, window: Window) -> list[dict[str, Any]]:
    from psycopg.rows import dict_row  # keep module import light

    window.days()  # whole days only
    with transaction(conn), conn.cursor(row_factory=dict_row) as cur:
        cur.execute(sql(name), _day_params(window))
        return cur.fetchall()


def _stream(conn: Any, name: str, window: Window, batch: int = 5000) -> Iterator[dict[str, Any]]:
    """Rows of ``name`` through a server-side cursor, ``batch`` at a time: a report of a night with
    200,000 line items never sits in the task's memory at once. Consume it before using ``conn`` again."""
    from psycopg.rows import dict_row  # keep module import light

    window.days()  # whole days only
    with transaction(conn), conn.cursor(name="rafay_report_rows", row_factory=dict_row) as cur:
        cur.itersize = batch
        cur.execute(sql(name), _day_params(window))
        yield from cur


def iter_line_items(conn: Any, window: Window) -> Iterator[dict[str, Any]]:
    """:func:`fetch_line_items`, streamed (same rows, same order)."""
    return _stream(conn, "rating/fetch_line_items.sql", window)


def iter_ncp_metrics_rows(conn: Any, window: Window, *, sort: bool = False) -> Iterator[dict[str, Any]]:
    """:func:`fetch_ncp_metrics_rows`, streamed (same rows, same order). With ``sort``, the same rows in
    the sorted ncp-metrics file's order (``reports.ncp_metrics_sort_key``, equal keys in the seed's
    order), sorted by PostgreSQL, so the sorted file streams too."""
    return _stream(conn, "reports/ncp_metrics_rows_sorted.sql" if sort else "rating/fetch_ncp_metrics_rows.sql",
                   window)


def fetch_line_items(conn: Any, window: Window) -> list[dict[str, Any]]:
    """The line items of the window's days for reports: contract columns (timestamps as ISO ``Z``
    text, the day's bounds) plus instance_key, gpu_count, run_id and usage_date; ordered by
    organization, day, profile type, profile, instance."""
    return _fetch(conn, "rating/fetch_line_items.sql", window)


def fetch_ncp_metrics_rows(conn: Any, window: Window) -> list[dict[str, Any]]:
    """The usage that stands for the window's days as seed report rows (organization, profile_type,
    profile, instance, seed_usage, status): each (org, day) from the run that billed it, in the seed's
    order (org listing, then day, then record order)."""
    return _fetch(conn, "rating/fetch_ncp_metrics_rows.sql", window)


def fetch_exceptions(conn: Any, window: Window) -> list[dict[str, Any]]:
    """The rating exceptions of the window's days, by org, day and record order."""
    return _fetch(conn, "rating/fetch_exceptions.sql", window)
