"""What the Billing view reads from the billing database (SQL in ``rafay_billing/sql/ui/``).

Airflow-free: every function takes a psycopg 3 connection. Lists are paged and searchable, charts are
top-N with an "others" bucket, so 1,000 orgs stay readable.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from rafay_billing.db import sql

PAGE_SIZE = 50
MAX_PAGE_SIZE = 500


@dataclass(frozen=True)
class Page:
    rows: list[dict[str, Any]]
    total: int
    offset: int
    limit: int

    @property
    def has_next(self) -> bool:
        return self.offset + len(self.rows) < self.total


def like_pattern(search: str | None) -> str | None:
    """``search`` as an ILIKE ``%…%`` pattern with the wildcards it contains escaped; None for no search."""
    text = (search or "").strip()
    if not text:
        return None
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def fetch_rows(conn: Any, name: str, params: dict[str, Any]) -> list[dict[str, Any]]:
    """Every row ``ui/<name>.sql`` returns, as dicts."""
    with conn.cursor() as cur:
        cur.execute(sql(name), params)
        columns = [c.name for c in cur.description]
        return [dict(zip(columns, row, strict=True)) for row in cur.fetchall()]


def paged(conn: Any, name: str, params: dict[str, Any], limit: int, offset: int) -> Page:
    """One page of a query that returns ``total_rows`` on each row (``LIMIT %(limit)s OFFSET %(offset)s``)."""
    limit = max(1, min(int(limit), MAX_PAGE_SIZE))
    offset = max(0, int(offset))
    rows = fetch_rows(conn, name, {**params, "limit": limit, "offset": offset})
    total = int(rows[0].pop("total_rows")) if rows else 0
    for row in rows[1:]:
        row.pop("total_rows", None)
    if not rows and offset:
        # past the end: the total is still wanted for the pager
        probe = fetch_rows(conn, name, {**params, "limit": 1, "offset": 0})
        total = int(probe[0]["total_rows"]) if probe else 0
    return Page(rows, total, offset, limit)


def latest_day(conn: Any) -> date | None:
    """The latest UTC day with anything rated."""
    with conn.cursor() as cur:
        cur.execute(sql("ui/latest_day.sql"))
        row = cur.fetchone()
        return row[0] if row else None


def window_totals(conn: Any, first_day: date, end_day: date, *, search: str | None = None,
                  limit: int = PAGE_SIZE, offset: int = 0) -> Page:
    """Rows per (day, org, currency) of ``[first_day, end_day)``: items, hours, amount, run, exceptions."""
    page = paged(conn, "ui/window_totals.sql",
                 {"first_day": first_day, "end_day": end_day, "pattern": like_pattern(search)}, limit, offset)
    for row in page.rows:
        row["currency"] = row["currency"].strip() if row["currency"] else None
        row["exceptions"] = dict(sorted((row["exceptions"] or {}).items()))
    return page


def currency_totals(conn: Any, first_day: date, end_day: date, *, search: str | None = None) -> list[dict[str, Any]]:
    """Totals per currency of the orgs ``search`` matches (all orgs without one), like the table below them."""
    return fetch_rows(conn, "ui/currency_totals.sql",
                 {"first_day": first_day, "end_day": end_day, "pattern": like_pattern(search)})


# --- what needs attention ----------------------------------------------------------------------------

COVERAGE_STATUSES = ("billed", "exceptions", "failed", "held", "missing")
MAX_RUNS = 100


def coverage(conn: Any, first_day: date, end_day: date, *, search: str | None = None,
             limit: int = PAGE_SIZE, offset: int = 0) -> Page:
    """Each (org, day) of the window with its status (``missing``: expected, no coverage row), reason,
    detail and run; the ones needing attention first."""
    return paged(conn, "ui/coverage.sql",
                 {"first_day": first_day, "end_day": end_day, "pattern": like_pattern(search)}, limit, offset)


@dataclass(frozen=True)
class CoverageSummary:
    """The whole window's (org, day)s by status; ``open_exceptions``: days ``exceptions`` with some still open."""

    org_days: int
    billed: int
    exceptions: int
    open_exceptions: int
    failed: int
    held: int
    missing: int

    @property
    def attention(self) -> int:
        return self.failed + self.held + self.missing + self.open_exceptions

    @property
    def clean(self) -> bool:
        """Every expected (org, day) billed, no exception open; an empty window is not clean."""
        return self.org_days > 0 and self.attention == 0


def coverage_summary(conn: Any, first_day: date, end_day: date) -> CoverageSummary:
    row = fetch_rows(conn, "ui/coverage_summary.sql", {"first_day": first_day, "end_day": end_day})[0]
    return CoverageSummary(**{k: int(v) for k, v in row.items()})


def run_totals(conn: Any, first_day: date, end_day: date, *, search: str | None = None) -> list[dict[str, Any]]:
    """Per run with anything in the window: its (org, day)s by status, line items and amount per currency."""
    rows = fetch_rows(conn, "ui/run_totals.sql", {"first_day": first_day, "end_day": end_day,
                                             "pattern": like_pattern(search), "limit": MAX_RUNS})
    for row in rows:
        row["totals"] = {c: Decimal(v) for c, v in sorted((row["totals"] or {}).items())}
    return rows


def chart_currencies(conn: Any, first_day: date, end_day: date) -> list[str]:
    return [r["currency"].strip() for r in fetch_rows(conn, "ui/chart_currencies.sql",
                                                 {"first_day": first_day, "end_day": end_day})]


@dataclass
class DailySeries:
    """One chart series: an org (``org_id`` None for "others") and its amount per day."""

    org_id: str | None
    label: str
    amounts: list[Decimal] = field(default_factory=list)


@dataclass(frozen=True)
class DailyCharges:
    currency: str
    days: list[date]
    series: list[DailySeries]


def daily_charges(conn: Any, end_day: date, currency: str, *, days: int = 30, top: int = 8) -> DailyCharges:
    """Charges per day and org in ``currency`` over the ``days`` days before ``end_day``: the ``top``
    orgs by the range's total, then one "others" series for the rest (absent if there is none)."""
    first_day = end_day - timedelta(days=days)
    rows = fetch_rows(conn, "ui/daily_charges.sql",
                 {"first_day": first_day, "end_day": end_day, "currency": currency, "top": top})
    day_list = [first_day + timedelta(days=i) for i in range(days)]
    index = {d: i for i, d in enumerate(day_list)}
    series: dict[str | None, DailySeries] = {}
    order: dict[str | None, int] = {}
    for r in rows:
        key = r["org_id"]
        if key not in series:
            label = f"{r['organization']} ({r['org_id']})" if key else "others"
            series[key] = DailySeries(key, label, [Decimal(0)] * days)
            order[key] = r["rank"] if r["rank"] is not None else top + 1
        series[key].amounts[index[r["usage_date"]]] += Decimal(r["amount"])
    ordered = sorted(series.values(), key=lambda s: order[s.org_id])
    return DailyCharges(currency, day_list, ordered)


def gpu_hours_by_profile(conn: Any, first_day: date, end_day: date, *, top: int = 10) -> list[tuple[str, Decimal]]:
    """GPU-hours per profile, largest first: ``top`` profiles, then "others" summed (if any)."""
    rows = fetch_rows(conn, "ui/gpu_hours.sql", {"first_day": first_day, "end_day": end_day})
    shown = [(r["profile"], Decimal(r["gpu_hours"])) for r in rows[:top]]
    rest = sum((Decimal(r["gpu_hours"]) for r in rows[top:]), Decimal(0))
    if len(rows) > top:
        shown.append((f"others ({len(rows) - top} profiles)", rest))
    return shown


def open_exceptions(conn: Any, *, search: str | None = None, limit: int = PAGE_SIZE, offset: int = 0) -> Page:
    return paged(conn, "ui/open_exceptions.sql", {"pattern": like_pattern(search)}, limit, offset)


def periods(conn: Any) -> list[dict[str, Any]]:
    return fetch_rows(conn, "ui/periods.sql", {})


def invoices(conn: Any, period_start: date, *, search: str | None = None, limit: int = PAGE_SIZE,
             offset: int = 0) -> Page:
    page = paged(conn, "ui/invoices.sql", {"period_start": period_start, "pattern": like_pattern(search)},
                 limit, offset)
    for row in page.rows:
        row["currency"] = row["currency"].strip()
    return page


def invoice_drafts(conn: Any, *, limit: int = 12) -> list[dict[str, Any]]:
    """The latest invoice draft sets (approval before issuing, issue 23): pending ones await an answer."""
    return fetch_rows(conn, "ui/invoice_drafts.sql", {"limit": limit})
