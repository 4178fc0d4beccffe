"""Benchmark: what the ledger's key costs the first rating's insert, and whether a narrower key helps.

Round 3 named "a narrower ledger key" as what would bring the first rating of 1,000,000 rows under
10 s: the insert into ``charge_line_items`` dominates it, and its 11-column text key looked like the
reason. This measures that before anyone redesigns the ledger. Three copies of the table's columns,
check constraints and secondary indexes (``sql/bench/ledger_key_tables.sql``; no triggers, which
are the same for every key) differ only in the key:

- ``full``: the ledger's key (org, day, profile type, profile, instance, dimension, covered_by,
  level, class, correction, entry);
- ``hash``: (org, day, item_key), item_key a uuid (md5) of the other identity columns, computed in
  the insert: the narrowest unique key that needs no surrogate sequence;
- ``nokey``: none (what any key costs at most).

Each repeat empties them, writes a day of history into each (untimed), VACUUM ANALYZE and
CHECKPOINT, then times the next day's items into each, in its key order, the order rotating
repeat by repeat. One connection, the embedded PostgreSQL's settings.

    .venv/bin/python bench/bench_ledger_key.py [--orgs 1000] [--instances 1000] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from datetime import date

import psycopg

from rafay_billing import db
from rafay_devkit.postgres import EmbeddedPostgres

RESULT_PREFIX = "BENCH_RESULT "
HISTORY_DAY, DAY = date(2026, 11, 19), date(2026, 11, 20)
VARIANTS = ("full", "hash", "nokey")


def prepare(conn: psycopg.Connection, orgs: int, instances: int) -> None:
    conn.execute(db.sql("bench/ledger_key_tables.sql"))
    for day in (HISTORY_DAY, DAY):
        conn.execute(db.sql("bench/ledger_key_source.sql"), {"orgs": orgs, "instances": instances, "day": day})
    conn.execute(db.sql("bench/vacuum_analyze.sql"))


def one_repeat(conn: psycopg.Connection, order: list[str]) -> dict[str, float]:
    conn.execute(db.sql("bench/ledger_key_reset.sql"))
    for variant in VARIANTS:
        conn.execute(db.sql(f"bench/ledger_key_insert_{variant}.sql"), {"day": HISTORY_DAY})
    conn.execute(db.sql("bench/vacuum_analyze.sql"))
    conn.execute(db.sql("bench/checkpoint.sql"))
    seconds = {}
    for variant in order:
        started = time.perf_counter()
        conn.execute(db.sql(f"bench/ledger_key_insert_{variant}.sql"), {"day": DAY})
        seconds[variant] = time.perf_counter() - started
    return seconds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orgs", type=int, default=1000)
    parser.add_argument("--instances", type=int, default=1000, help="per org (rows per day = orgs x instances)")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    rows = args.orgs * args.instances
    print(f"Machine: {os.cpu_count()} cores, load {' '.join(f'{x:.2f}' for x in os.getloadavg())}; "
          f"{rows:,} items a day, {args.repeats} repeats", flush=True)
    with EmbeddedPostgres() as pg:  # its own temporary root, which the server's user can reach
        dsn = pg.create_database("bench_key")
        with psycopg.connect(dsn, autocommit=True) as conn:
            db.migrate(conn)
            prepare(conn, args.orgs, args.instances)
            runs: dict[str, list[float]] = {v: [] for v in VARIANTS}
            for repeat in range(args.repeats):
                order = list(VARIANTS[repeat % 3:] + VARIANTS[:repeat % 3])
                seconds = one_repeat(conn, order)
                for variant, s in seconds.items():
                    runs[variant].append(s)
                print(f"  repeat {repeat + 1}: " + ", ".join(f"{v} {seconds[v]:.2f} s" for v in order), flush=True)
            sizes = dict(conn.execute(db.sql("bench/ledger_key_sizes.sql")).fetchall())
    medians = {v: statistics.median(s) for v, s in runs.items()}
    for variant in VARIANTS:
        print(f"{variant:>6}: median {medians[variant]:.2f} s ({medians[variant] / rows * 1e6:.1f} µs per item), "
              f"{medians[variant] / medians['full']:.2f}x the ledger's key")
    print(f"key index sizes: ledger's {sizes.get('t_full_pkey', 0) / 2**20:.0f} MB, "
          f"hash {sizes.get('t_hash_pkey', 0) / 2**20:.0f} MB (two days of items)")
    print(RESULT_PREFIX + json.dumps({
        "item": "3b ledger key", "metric": "one day's items inserted, by key",
        "baseline": f"the ledger's key {medians['full']:.2f} s",
        "result": f"hash key {medians['hash']:.2f} s, no key {medians['nokey']:.2f} s ({rows:,} items)",
        "ratio": f"{medians['hash'] / medians['full']:.2f}x / {medians['nokey'] / medians['full']:.2f}x",
        "target": "diagnostic (issue 25 target 3)", "met": None,
        "rows": rows, "median_s": medians, "runs_s": runs, "key_bytes": sizes,
    }))
    return 0


if __name__ == "__main__":
    sys.exit(main())
