"""Benchmark: rating 1,000,000 landed usage rows of one UTC day against a 10,000-row price book, in SQL.

Starts its own embedded PostgreSQL, lands one day's usage with ``load_org_usage`` (COPY, run
``bench``; 1,000 orgs x 1,000 rows, 10 profiles each), syncs a 10,000-row price book through
``sync_price_book`` (every specificity level, closed historical rows, four ISO 4217 currencies),
copies the day to the 6 days before it (run ``history``: the table then holds a week, as in
production, and the rated day is a seventh of it), then times ``rate_window`` over that day for run
``bench`` (the run's landed (org, day) slices, statistics, stage, apply, coverage, summary), side by
side with 2 connections (the DAG's default, ``[rafay_billing] rating_connections``) and with 1:

- the first rating of the day (the daily case: the day holds no line items yet);
- an immediate re-rating of the same run's usage (a retried or re-run rate_window: nothing changed);
- re-ratings after a VACUUM (what autovacuum does between real runs);
- a re-rating after every price went up 1 % (every line item changes: the replace's worst case).

Prints the ``EXPLAIN (ANALYZE, BUFFERS)`` plan of every statement of the first rating (in a
transaction that is rolled back) and the indexes they used. Target: <= 10 s on 2 cores, for the first
rating and the immediate re-rating.

    .venv/bin/python bench/bench_rating.py [--rows 1000000] [--orgs 1000] [--prices 10000] [--history-days 6]
                                           [--repeats 2] [--connections 2 1]
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_load import (
    DAY,
    PROFILE_TYPES,
    WINDOW,
    machine,
    org_id,
    profile_of,
    source_dir,
    write_usage_files,
)

from rafay_billing import db
from rafay_billing.ledger.load import load_org_usage
from rafay_billing.ledger.price_book import COLUMNS as PRICE_COLUMNS
from rafay_billing.ledger.price_book import sync_price_book
from rafay_billing.ledger.rating import (
    HOURS_TOLERANCE,
    landed_slices,
    rate_window,
    rating_statements,
)
from rafay_devkit.postgres import EmbeddedPostgres

CURRENCIES = ("USD", "EUR", "AUD", "JPY")
RUN_ID = "bench"  # the run whose landed usage is rated, every time (a re-rating re-rates that run's usage)


def price_book_csv(orgs: int, total: int) -> str:
    """A ``total``-row price book: a few global rows, then ten rows per org until the total is reached.

    Per org: org-wide (4), org + service (5), org + a shared compute profile (6), three org-only
    profiles with type (7), and four closed 2025 rows for the same keys (in the index, never applicable).
    Every tenth org has no org-wide row, so some of its usage falls back to global rows or is unpriced.
    """
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(PRICE_COLUMNS)
    rows = [
        ["g-compute", "", "compute", "", "gpu_hour", "2.10", "USD", "2026-01-01", ""],
        ["g-gpu-only", "", "gpu-only", "", "gpu_hour", "1.00", "USD", "2026-01-01", ""],
    ]
    rows += [[f"g-compute-shared-{k}", "", "compute", f"compute-shared-{k}", "gpu_hour", f"2.{50 + k}", "USD",
              "2026-01-01", ""] for k in range(4)]
    rows += [[f"g-service-shared-{k}", "", "", f"service-shared-{k}", "instance_hour", f"0.{40 + k}", "USD",
              "2026-01-01", ""] for k in range(4)]
    n = 0
    while len(rows) < total and n < orgs:
        oid, cur = org_id(n), CURRENCIES[n % len(CURRENCIES)]
        own = [profile_of(n, k) for k in range(6, 10)]
        keyed = [(oid, "compute", "compute-shared-0", "gpu_hour")] + [
            (oid, ptype, profile, "gpu_hour" if ptype != "service" else "instance_hour") for ptype, profile in own[:3]
        ]
        current = []
        if n % 10 != 9:
            current.append([f"{oid}-all", oid, "", "", "instance_hour", "3.10", cur, "2026-01-01", ""])
        else:
            current.append([f"{oid}-gpu-only", oid, "gpu-only", "", "gpu_hour", "1.25", cur, "2026-01-01", ""])
        current.append([f"{oid}-service", oid, "service", "", "instance_hour", "0.45", cur, "2026-01-01", ""])
        for i, (o, ptype, profile, unit) in enumerate(keyed):
            current.append([f"{oid}-k{i}", o, ptype if i else "", profile, unit, f"{2 + i / 10:.2f}", cur,
                            "2026-01-01", ""])
            current.append([f"{oid}-k{i}-2025", o, ptype if i else "", profile, unit, "9.99", cur, "2025-01-01",
                            "2026-01-01"])
        rows += current[: total - len(rows)]
        n += 1
    writer.writerows(rows)
    return out.getvalue()


def land(conn, files) -> float:
    started = time.perf_counter()
    for oid, path, _ in files:
        with path.open("rb") as handle:
            load_org_usage(conn, WINDOW, oid, handle, RUN_ID, source_dir=source_dir(path))
    return time.perf_counter() - started


def add_history(conn, days: int) -> float:
    """Copy the day's usage to each of the ``days`` days before it (run ``history``), server-side,
    then VACUUM ANALYZE."""
    started = time.perf_counter()
    for day in range(1, days + 1):
        with db.transaction(conn), conn.cursor() as cur:
            cur.execute(db.sql("bench/copy_window_history.sql"),
                        {"days_back": day, "usage_date": DAY, "run_id": RUN_ID, "history_run_id": "history"})
    conn.autocommit = True
    conn.execute(db.sql("bench/vacuum_analyze.sql"))
    conn.execute(db.sql("bench/checkpoint.sql"))
    conn.autocommit = False
    return time.perf_counter() - started


def timed_rating(conn, dsn: str, connections: int):
    import psycopg

    started = time.perf_counter()
    summary = rate_window(conn, WINDOW, RUN_ID, connect=lambda: psycopg.connect(dsn), connections=connections)
    return time.perf_counter() - started, summary


def settle(conn) -> None:
    """What happens between two real ratings of a window: autovacuum clears the replaced rows."""
    conn.autocommit = True
    conn.execute(db.sql("bench/vacuum_ratings.sql"))
    conn.execute(db.sql("bench/checkpoint.sql"))
    conn.autocommit = False


def slice_params(conn) -> dict:
    slices = landed_slices(conn, WINDOW, RUN_ID)
    return {"org_ids": [s.org_id for s in slices], "usage_dates": [s.usage_date for s in slices], "run_id": RUN_ID,
            "hours_tolerance": HOURS_TOLERANCE, "safe_times": False, "kept_org_ids": [], "kept_usage_dates": []}


def forget_items(conn) -> None:
    """Make the day unrated again (its line items deleted, then vacuumed), for another first rating."""
    with db.transaction(conn), conn.cursor() as cur:
        cur.execute(db.sql("bench/delete_day_items.sql"), slice_params(conn))
    settle(conn)


def explain(conn, into_stage: bool) -> list[tuple[str, float, str]]:
    """Each statement of a rating of the day on one connection, as ``rate_slices`` runs them, with
    ``EXPLAIN (ANALYZE, BUFFERS)``, in a transaction that is rolled back: a first rating (the day's
    items are deleted in the transaction first, so the day holds none) or, ``into_stage``, an
    immediate re-rating (stage, then only the changes applied)."""
    from psycopg import sql as pgsql

    params = slice_params(conn)
    plans = []
    with conn.transaction(force_rollback=True), conn.cursor() as cur:
        if not into_stage:
            cur.execute(db.sql("bench/delete_day_items.sql"), params)
        cur.execute(db.sql("rating/settings.sql"))
        for name, statement in rating_statements(into_stage):
            if name.endswith(("create_stage.sql", "analyze_stage.sql")):
                cur.execute(statement)
                continue
            if name.endswith("slices_with_items.sql"):
                cur.execute(statement, params)
                kept = cur.fetchall()
                params = {**params, "kept_org_ids": [o for o, _ in kept], "kept_usage_dates": [d for _, d in kept]}
                continue
            started = time.perf_counter()
            # bench only: the very statement rate_slices runs, explained
            cur.execute(pgsql.SQL("EXPLAIN (ANALYZE, BUFFERS) ") + pgsql.SQL(statement)
                        if isinstance(statement, str) else pgsql.SQL("EXPLAIN (ANALYZE, BUFFERS) ") + statement,
                        params)
            plans.append((name, time.perf_counter() - started, "\n".join(row[0] for row in cur.fetchall())))
    return plans


def load_average() -> str:
    try:
        return "load " + " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "load ?"


def rate_series(conn, dsn: str, connections: int, repeats: int, expected) -> dict:
    """First rating, immediate re-rating, re-ratings after VACUUM; every one must give ``expected``."""
    forget_items(conn)
    first, summary = timed_rating(conn, dsn, connections)
    if expected is not None:
        assert summary == expected, (summary, expected)
    print(f"  [{connections} connection(s)] first rating of the day (the daily case): {first:.2f} s "
          f"({load_average()}) - {summary}", flush=True)
    again_s, again = timed_rating(conn, dsn, connections)
    assert again == summary, (again, summary)
    print(f"  [{connections} connection(s)] immediate re-rating (nothing changed): {again_s:.2f} s "
          f"({load_average()}, same totals)", flush=True)
    settled = []
    for i in range(repeats):
        settle(conn)
        seconds, again = timed_rating(conn, dsn, connections)
        assert again == summary, (again, summary)
        settled.append(seconds)
        print(f"  [{connections} connection(s)] re-rating after autovacuum-like VACUUM {i + 1}: {seconds:.2f} s "
              f"(same totals)", flush=True)
    return {"first": first, "immediate": again_s, "settled": statistics.median(settled) if settled else None,
            "summary": summary}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--orgs", type=int, default=1_000)
    parser.add_argument("--prices", type=int, default=10_000)
    parser.add_argument("--history-days", type=int, default=6, help="earlier days the table holds")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--connections", type=int, nargs="+", default=[2, 1],
                        help="rating connections to compare (the first is the default's figure)")
    args = parser.parse_args(argv)

    import psycopg

    print(f"Machine: {machine()}")
    with tempfile.TemporaryDirectory(prefix="bench-rating-") as tmp, EmbeddedPostgres() as pg:
        dsn = pg.create_database("bench")
        started = time.perf_counter()
        files = write_usage_files(Path(tmp), WINDOW, args.rows, args.orgs)
        print(f"Generated {args.rows:,} usage rows for {DAY} [{WINDOW.start_iso}, {WINDOW.end_iso}) ({args.orgs:,} orgs, "
              f"profile types {', '.join(sorted(set(PROFILE_TYPES)))}) in {time.perf_counter() - started:.1f} s")
        book = price_book_csv(args.orgs, args.prices)
        with psycopg.connect(dsn) as conn:
            db.migrate(conn)
            print(f"PostgreSQL {conn.info.server_version // 10000}.{conn.info.server_version % 10000} (embedded)")
            started = time.perf_counter()
            result = sync_price_book(conn, book)
            print(f"Price book sync: {result} in {time.perf_counter() - started:.2f} s")
            print(f"Landed {args.rows:,} usage rows with COPY (run {RUN_ID!r}) in {land(conn, files):.1f} s")
            if args.history_days:
                seconds = add_history(conn, args.history_days)
                print(f"Copied them to the {args.history_days} days before (table: "
                      f"{args.rows * (args.history_days + 1):,} rows) and vacuumed in {seconds:.1f} s")
            series, expected = {}, None
            for n in args.connections:
                series[n] = rate_series(conn, dsn, n, args.repeats, expected)
                expected = series[n]["summary"]
                if expected.usage_rows != args.rows or expected.slices != args.orgs:
                    raise SystemExit(f"rated {expected.usage_rows} rows in {expected.slices} slices; landed "
                                     f"{args.rows:,} rows of {args.orgs} orgs")
            default = args.connections[0]
            with db.transaction(conn), conn.cursor() as cur:
                cur.execute(db.sql("bench/raise_prices.sql"))
            changed_s, changed = timed_rating(conn, dsn, default)
            print(f"  [{default} connection(s)] re-rating after every price went up 1 % (every item replaced): "
                  f"{changed_s:.2f} s ({load_average()}) - {changed}", flush=True)
            plans = [("first rating", p) for p in explain(conn, into_stage=False)]
            plans += [("immediate re-rating", p) for p in explain(conn, into_stage=True)]
    print()
    used: set[str] = set()
    for case, (name, seconds, plan) in plans:
        print(f"EXPLAIN (ANALYZE, BUFFERS) of rafay_billing/sql/{name} ({case}, {args.orgs:,} slices of {DAY}, "
              f"run {RUN_ID!r}, 1 connection): {seconds:.2f} s")
        print(plan)
        print()
        used |= set(re.findall(r"(?:Index Scan|Index Only Scan|Index Scan Backward) using (\w+)", plan))
        used |= set(re.findall(r"Bitmap Index Scan on (\w+)", plan))
    print(f"Indexes used by the rating statements: {', '.join(sorted(used)) if used else 'none'}")
    d = series[default]
    print(f"rate_window over {args.rows:,} usage rows of one day, {args.prices:,}-row price book (wall time incl. "
          f"slice lookup, ANALYZE, stage, apply, coverage, summary), {default} connection(s): first {d['first']:.2f} s; "
          f"immediate re-rating {d['immediate']:.2f} s; re-rating median {d['settled']:.2f} s (after VACUUM); "
          f"after a price change {changed_s:.2f} s.")
    for n in args.connections[1:]:
        o = series[n]
        print(f"  with {n} connection(s): first {o['first']:.2f} s; immediate re-rating {o['immediate']:.2f} s; "
              f"re-rating median {o['settled']:.2f} s.")
    met = max(d["first"], d["immediate"]) <= 10
    print(f"Target <= 10 s on 2 cores (first rating and immediate re-rating): {'met' if met else 'MISSED'} "
          f"(first {d['first']:.2f} s, immediate re-rating {d['immediate']:.2f} s).")
    print("BENCH_RESULT " + json.dumps({
        "item": "3 rating", "metric": f"rate_window, {args.rows:,} rows of one day x {args.prices:,} prices",
        "baseline": "", "result": f"first {d['first']:.2f} s, re-rating {d['immediate']:.2f} s ({default} connections); "
                                  f"price change {changed_s:.2f} s",
        "ratio": "", "target": "<= 10 s first and re-rating", "met": met,
    }))
    return 0


if __name__ == "__main__":
    sys.exit(main())
