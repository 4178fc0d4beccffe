"""Rate a billing window in SQL: landed usage × price book → charge line items and rating exceptions.

Why in SQL: a window can hold a million usage rows; PostgreSQL prices them where they are, with the
price lookup done once per distinct (org, profile_type, profile) through an index, and the money
arithmetic stays NUMERIC end to end (``include/sql/rating/rate_window.sql`` holds the rules).

Why one transaction: re-rating a window must replace its line items and exceptions, never add to
them, and readers must see either the old rating or the new one, never a mix.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from rafay_billing.db import sql, transaction
from rafay_billing.window import Window

REASONS: tuple[str, ...] = ("unpriced", "ambiguous_price", "missing_gpu_count", "invalid_usage")


@dataclass(frozen=True)
class RatingSummary:
    """What a window holds after rating (also what :func:`window_summary` reads back)."""

    line_items: int
    exceptions_by_reason: dict[str, int]
    totals_by_currency: dict[str, Decimal]
    orgs: int
    usage_rows: int = 0
    line_items_by_currency: dict[str, int] = field(default_factory=dict)

    @property
    def exceptions(self) -> int:
        return sum(self.exceptions_by_reason.values())

    def __str__(self) -> str:
        totals = ", ".join(f"{amount} {cur}" for cur, amount in sorted(self.totals_by_currency.items())) or "none"
        reasons = ", ".join(f"{r}: {n}" for r, n in sorted(self.exceptions_by_reason.items()) if n) or "none"
        return (
            f"{self.usage_rows} usage rows of {self.orgs} orgs: {self.line_items} line items, "
            f"{self.exceptions} exceptions ({reasons}); totals {totals}"
        )


def _params(window: Window) -> dict[str, Any]:
    return {"window_start": window.start, "window_end": window.end, "window_start_iso": window.start_iso}


def rate_window(conn: Any, window: Window, run_id: str) -> RatingSummary:
    """Replace ``window``'s line items and exceptions with a fresh rating of its landed usage.

    Every usage record of the window ends up in exactly one place: a line item (records sharing an
    instance_key are summed) or a ``rating_exceptions`` row with its reason. The table statistics are
    refreshed first in a short transaction of their own, so the plan fits the rows just loaded.
    """
    params = _params(window)
    with transaction(conn), conn.cursor() as cur:
        cur.execute(sql("rating/analyze_usage.sql"))
    with transaction(conn), conn.cursor() as cur:
        cur.execute(sql("rating/lock.sql"), {"lock_key": f"rating|{window.start_iso}|{window.end_iso}"})
        cur.execute(sql("rating/settings.sql"))
        cur.execute(sql("rating/delete_line_items.sql"), params)
        cur.execute(sql("rating/delete_exceptions.sql"), params)
        cur.execute(sql("rating/rate_window.sql"), {**params, "run_id": run_id})
        return _summary(cur, params)


def window_summary(conn: Any, window: Window) -> RatingSummary:
    """Counts and totals of a window as it stands in the database."""
    with transaction(conn), conn.cursor() as cur:
        return _summary(cur, _params(window))


def _summary(cur: Any, params: dict[str, Any]) -> RatingSummary:
    cur.execute(sql("rating/window_summary.sql"), params)
    totals: dict[str, Decimal] = {}
    per_currency: dict[str, int] = {}
    reasons: dict[str, int] = dict.fromkeys(REASONS, 0)
    counts: dict[str, int] = {}
    for kind, key, value in cur.fetchall():
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
    )


def _fetch(conn: Any, name: str, window: Window) -> list[dict[str, Any]]:
    from psycopg.rows import dict_row  # noqa: PLC0415 - keep module import light

    with transaction(conn), conn.cursor(row_factory=dict_row) as cur:
        cur.execute(sql(name), _params(window))
        return cur.fetchall()


def fetch_line_items(conn: Any, window: Window) -> list[dict[str, Any]]:
    """The window's line items for reports: contract columns (timestamps as ISO ``Z`` text) plus
    instance_key, gpu_count and run_id; ordered by organization, profile type, profile, instance."""
    return _fetch(conn, "rating/fetch_line_items.sql", window)


def fetch_seed_rows(conn: Any, window: Window) -> list[dict[str, Any]]:
    """The window's landed usage as seed report rows (organization, profile_type, profile, instance,
    seed_usage, status) in the seed's order: org listing (org_seq), then record order (record_seq)."""
    return _fetch(conn, "rating/fetch_seed_rows.sql", window)


def fetch_exceptions(conn: Any, window: Window) -> list[dict[str, Any]]:
    """The window's rating exceptions, by org and record order."""
    return _fetch(conn, "rating/fetch_exceptions.sql", window)
