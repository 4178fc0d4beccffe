"""Benchmark: landing usage rows in PostgreSQL with COPY (``load_org_usage``) vs row-by-row INSERTs.

Generates per-org usage CSVs of one UTC day (the ledger's unit is (org, day); the normalised usage
columns of docs/design.md, including each record's interval and the raw page and position it came
from), starts its own embedded PostgreSQL, then, in the same process and database:

- COPY: loads every org's file through ``rafay_billing.ledger.load.load_org_usage`` (lock, delete of this
  run's rows for the (org, day) + COPY + count check, one transaction per org), into an empty table
  and again as a re-load by the same run (a retry: replaces that run's rows of every org);
- INSERT baseline: the same per-org transactions, but one ``INSERT`` statement per row, both with
  psycopg 3's server-side prepared statement (its default after five executions: the strongest
  row-by-row baseline) and unprepared (every row parsed and planned, like psycopg2's client-side
  binding). A million single-row INSERTs take minutes, so the baseline runs on a sample (default
  20,000 rows) and its rate is extrapolated; the output says so. CSV parsing is not counted against
  the baseline (rows are pre-parsed), which flatters it.

Every round measures all of them side by side, each from a freshly truncated table after a
CHECKPOINT (otherwise whichever runs after the COPYs pays for their pending writes) and with
autovacuum off for the usage table (TRUNCATE leaves it nothing to do); the medians of
the rounds and of the per-round ratios are reported. PostgreSQL runs on the same machine (loopback
TCP, tens of microseconds per round trip): the most favourable setting for row-by-row INSERTs, whose cost is one
round trip per row, while COPY streams. Targets: >= 100,000 rows/s and >= 10x the INSERT baseline.

    .venv/bin/python bench/bench_load.py [--rows 1000000] [--orgs 100] [--insert-sample 20000] [--repeats 3]
"""

from __future__ import annotations

import argparse
import csv
import os
import platform
import random
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

from rafay_billing import db
from rafay_billing.ledger.load import load_org_usage
from rafay_billing.window import Window
from rafay_devkit.postgres import EmbeddedPostgres

# The normalised usage columns of docs/design.md, in order (written here independently of usage.py;
# load_org_usage refuses a file whose header differs from USAGE_COLUMNS).
COLUMNS = (
    "window_start", "window_end", "org_id", "organization", "org_seq", "record_seq", "profile_type", "profile",
    "instance", "instance_id", "instance_key", "status", "seed_usage", "usage_hours", "gpu_count",
    "invalid_reason", "record_start", "record_end", "source_page", "source_index", "dimensions", "labels",
)
WINDOW = Window(datetime(2026, 11, 10, tzinfo=UTC), datetime(2026, 11, 11, tzinfo=UTC))  # one UTC day
DAY = WINDOW.single_day()
TEXT_COLUMNS = frozenset((2, 3, 6, 7, 8, 10, 11, 12))  # kept as "" when empty, like COPY FORCE_NOT_NULL
PROFILE_TYPES = ("compute", "compute", "compute", "service", "gpu-only")
PAGE_SIZE = 1000  # records per raw usage page (source_page / source_index)


def org_id(n: int) -> str:
    return f"org{n:05d}"


def profile_of(n: int, k: int) -> tuple[str, str]:
    """(profile_type, profile) of profile ``k`` of org ``n``: a few shared profile names, some org-only ones."""
    profile_type = PROFILE_TYPES[k % len(PROFILE_TYPES)]
    name = f"{profile_type}-shared-{k % 4}" if k < 6 else f"{profile_type}-{org_id(n)}-{k}"
    return profile_type, name


def _time_of_day(day: Window, seconds: int) -> str:
    """The start of the one-day window ``day`` plus ``seconds`` (0 .. 86,400), as ISO UTC text."""
    if seconds >= 86_400:
        return day.end_iso
    hours, rest = divmod(seconds, 3600)
    return f"{day.start_iso[:10]}T{hours:02d}:{rest // 60:02d}:{rest % 60:02d}Z"


def usage_rows(window: Window, n: int, count: int, profiles: int, rng: random.Random) -> Iterator[list[str]]:
    """``count`` usage rows of org ``n`` for the day ``window``: exact decimal hours, GPU counts, ~0.5 %
    invalid, ~0.5 % GPU unknown; each record's interval within the day and its raw page and position."""
    oid = org_id(n)
    placement = random.Random(n)  # record start times: their own stream, so ``rng`` draws what it always drew
    for seq in range(count):
        profile_type, profile = profile_of(n, seq % profiles)
        instance_id = f"{oid}-{seq:07d}"
        micro = rng.randrange(0, 24_000_000)
        hours = f"{micro / 1_000_000:.6f}"
        seconds = (micro * 36 + 9_999) // 10_000  # the hours in whole seconds, rounded up
        begin = placement.randrange(0, 86_400 - seconds + 1)
        roll = rng.random()
        invalid = "non-numeric usage_hours: 'n/a'" if roll < 0.005 else ""
        gpus = "" if 0.005 <= roll < 0.01 else str(rng.choice((1, 2, 4, 8)))
        page, index = divmod(seq // profiles, PAGE_SIZE)
        yield [
            window.start_iso, window.end_iso, oid, f"Organization {n}, \"Ltd\"", str(n), str(seq), profile_type,
            profile, f"vm-{seq}", instance_id, instance_id, "running", hours if not invalid else "n/a",
            "" if invalid else hours, gpus, invalid, _time_of_day(window, begin),
            _time_of_day(window, begin + seconds),
            f"usage-{profile}-page-{page + 1:04d}.json", str(index), "{}", "{}",
        ]


def write_usage_files(
    directory: Path, window: Window, total_rows: int, orgs: int, profiles: int = 10, seed: int = 7
) -> list[tuple[str, Path, int]]:
    """Per-org usage CSVs under ``directory``; returns (org_id, path, rows) per org."""
    rng = random.Random(seed)
    files = []
    per_org, extra = divmod(total_rows, orgs)
    for n in range(orgs):
        count = per_org + (1 if n < extra else 0)
        path = directory / f"{org_id(n)}-{window.label}.csv"
        with path.open("w", encoding="utf-8", newline="") as handle:
            writer = csv.writer(handle, lineterminator="\n")
            writer.writerow(COLUMNS)
            writer.writerows(usage_rows(window, n, count, profiles, rng))
        files.append((org_id(n), path, count))
    return files


def source_dir(path: Path) -> str:
    """Where the raw pages a file's rows point at would be (``load_org_usage(source_dir=...)``, as the DAG)."""
    return f"{path.parent.as_uri()}/org={path.name.split('-', 1)[0]}"


def copy_all(conn, files: list[tuple[str, Path, int]], window: Window, run_id: str) -> tuple[float, int]:
    started = time.perf_counter()
    rows = 0
    for oid, path, _ in files:
        with path.open("rb") as handle:
            rows += load_org_usage(conn, window, oid, handle, run_id, source_dir=source_dir(path))
    return time.perf_counter() - started, rows


def _psql_copy_command(path: Path) -> str:
    """``load/copy_usage.sql`` (the very COPY ``load_org_usage`` runs) as one ``\\copy`` line reading ``path``."""
    text = " ".join(ln.split("--", 1)[0] for ln in db.sql("load/copy_usage.sql").splitlines())
    text = " ".join(text.split()).rstrip(";").strip()
    assert text.startswith("COPY ") and " FROM STDIN " in text, text
    return "\\copy " + text[len("COPY "):].replace(" FROM STDIN ", f" FROM '{path}' ")


def psql_copy_all(psql: Path, dsn: str, files: list[tuple[str, Path, int]], run_id: str, workdir: Path) -> float:
    """The floor: ``psql \\copy`` of the same files into the same table, one psql session, one
    transaction per file that only sets the load context (the table's defaults need it) and copies.
    No lock, no delete of earlier rows, no count check: what PostgreSQL itself does with the files."""
    script = workdir / f"copy-{run_id}.psql"
    with script.open("w", encoding="utf-8") as out:
        for _, path, _ in files:
            out.write("BEGIN;\n")
            out.write(f"SELECT set_config('billing.usage_date', '{DAY.isoformat()}', true), "
                      f"set_config('billing.run_id', '{run_id}', true), "
                      f"set_config('billing.source_dir', '{source_dir(path)}', true) \\g /dev/null\n")
            out.write(_psql_copy_command(path) + "\n")
            out.write("COMMIT;\n")
    started = time.perf_counter()
    subprocess.run([str(psql), "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", dsn, "-f", str(script)], check=True,
                   stdout=subprocess.DEVNULL)
    return time.perf_counter() - started


def sample_rows(files: list[tuple[str, Path, int]], sample: int, run_id: str) -> list[tuple[str, list[list]]]:
    """The first ``sample`` rows, per org, as INSERT parameters ("" -> NULL except in text columns), the
    CSV's cells followed by what ``load_org_usage`` supplies: usage_date, run_id, source_dir."""
    batches: list[tuple[str, list[list]]] = []
    left = sample
    for oid, path, _ in files:
        if left <= 0:
            break
        with path.open(encoding="utf-8", newline="") as handle:
            reader = csv.reader(handle)
            next(reader)
            rows = []
            for cells in reader:
                rows.append([c if c != "" or i in TEXT_COLUMNS else None for i, c in enumerate(cells)]
                            + [DAY, run_id, source_dir(path)])
                if len(rows) == left:
                    break
        left -= len(rows)
        batches.append((oid, rows))
    return batches


def insert_rows(conn, batches: list[tuple[str, list[list]]], prepare: bool, run_id: str) -> tuple[float, int]:
    """Row-by-row INSERTs, per org: delete this run's rows of the (org, day) + one INSERT per row, one
    transaction per org (like the COPY path, less its lock and count check).

    ``prepare``: psycopg 3 prepares a statement server-side after a few executions (its default);
    without it every INSERT is parsed and planned again, as with psycopg2's client-side binding.
    """
    insert = db.sql("bench/insert_usage_row.sql")
    delete = db.sql("load/delete_org_day_run.sql")
    conn.prepare_threshold = 5 if prepare else None
    started = time.perf_counter()
    count = 0
    for oid, rows in batches:
        with db.transaction(conn), conn.cursor() as cur:
            cur.execute(delete, {"usage_date": DAY, "org_id": oid, "run_id": run_id})
            for values in rows:
                cur.execute(insert, values)
                count += 1
    conn.prepare_threshold = 5
    return time.perf_counter() - started, count


def landed_rows(conn) -> int:
    """Rows in billing.usage_records (all runs, all days)."""
    with db.transaction(conn), conn.cursor() as cur:
        cur.execute(db.sql("bench/count_usage.sql"))
        return cur.fetchone()[0]


def truncate(conn) -> None:
    """Empty the table and flush pending writes, so every timed section starts from the same state."""
    with db.transaction(conn), conn.cursor() as cur:
        cur.execute(db.sql("bench/truncate_usage.sql"))
    checkpoint(conn)


def checkpoint(conn) -> None:
    conn.autocommit = True
    conn.execute(db.sql("bench/checkpoint.sql"))
    conn.autocommit = False


def machine() -> str:
    model = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{platform.system()} {platform.machine()}, {os.cpu_count()} CPUs ({model}), Python {platform.python_version()}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--orgs", type=int, default=100)
    parser.add_argument("--insert-sample", type=int, default=20_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--no-insert", action="store_true", help="skip the row-by-row INSERT baseline")
    args = parser.parse_args(argv)

    import psycopg

    print(f"Machine: {machine()}")
    with tempfile.TemporaryDirectory(prefix="bench-load-") as tmp, EmbeddedPostgres() as pg:
        dsn = pg.create_database("bench")
        started = time.perf_counter()
        files = write_usage_files(Path(tmp), WINDOW, args.rows, args.orgs)
        size = sum(p.stat().st_size for _, p, _ in files)
        print(f"Generated {args.rows:,} usage rows of {DAY} in {args.orgs} org files ({size / 1e6:.0f} MB) "
              f"in {time.perf_counter() - started:.1f} s")
        with psycopg.connect(dsn) as conn:
            db.migrate(conn)
            with db.transaction(conn), conn.cursor() as cur:
                cur.execute(db.sql("bench/autovacuum_off.sql"))
            print(f"PostgreSQL {conn.info.server_version // 10000}.{conn.info.server_version % 10000} (embedded, "
                  "loopback TCP)")
            batches = sample_rows(files, args.insert_sample, "insert")
            sample = sum(len(rows) for _, rows in batches)
            fresh, reload, prepared, unprepared, floor = [], [], [], [], []
            for i in range(args.repeats):  # side by side in every round, so the ratios share conditions
                truncate(conn)
                seconds, rows = copy_all(conn, files, WINDOW, f"copy-{i}")
                assert rows == args.rows, rows
                fresh.append(args.rows / seconds)
                checkpoint(conn)
                # the same run again (a retry): replaces that run's rows of every org, adds none
                seconds, rows = copy_all(conn, files, WINDOW, f"copy-{i}")
                assert rows == args.rows, rows
                reload.append(args.rows / seconds)
                assert landed_rows(conn) == args.rows, "the re-load added rows instead of replacing them"
                truncate(conn)
                seconds = psql_copy_all(pg.bin_dir / "psql", dsn, files, f"psql-{i}", Path(tmp))
                assert landed_rows(conn) == args.rows
                floor.append(args.rows / seconds)
                if args.no_insert:
                    prepared.append(float("nan"))
                    unprepared.append(float("nan"))
                else:
                    truncate(conn)
                    seconds, _ = insert_rows(conn, batches, prepare=True, run_id="insert")
                    prepared.append(sample / seconds)
                    truncate(conn)
                    seconds, _ = insert_rows(conn, batches, prepare=False, run_id="insert")
                    unprepared.append(sample / seconds)
                print(f"  round {i + 1}: COPY {fresh[-1]:,.0f} rows/s, re-load {reload[-1]:,.0f} rows/s, "
                      f"psql \\copy {floor[-1]:,.0f} rows/s ({fresh[-1] / floor[-1] * 100:.0f}%), "
                      f"INSERT {prepared[-1]:,.0f} rows/s (unprepared {unprepared[-1]:,.0f}): "
                      f"{fresh[-1] / prepared[-1]:.1f}x (load {' '.join(f'{x:.2f}' for x in os.getloadavg())})")

    med = statistics.median
    copy_rate, reload_rate, insert_rate, plain_rate = med(fresh), med(reload), med(prepared), med(unprepared)
    ratio = med([c / p for c, p in zip(fresh, prepared, strict=True)])
    ratio_plain = med([c / p for c, p in zip(fresh, unprepared, strict=True)])
    floor_rate = med(floor)
    of_floor = med([c / f for c, f in zip(fresh, floor, strict=True)])
    print()
    print(f"Landing {args.rows:,} usage rows of one day ({args.orgs} orgs, one transaction per org), median of "
          f"{args.repeats} rounds:")
    print(f"  {'method':<66} {'seconds':>9} {'rows/s':>10}")
    rows_ = [
        ("COPY via load_org_usage, into an empty table", copy_rate),
        ("COPY via load_org_usage, re-load by the same run (replaces)", reload_rate),
        ("floor: psql \\copy of the same files, one session, into an empty table", floor_rate),
        (f"row-by-row INSERT, prepared (sample of {sample:,}, extrapolated)", insert_rate),
        (f"row-by-row INSERT, unprepared (sample of {sample:,}, extrapolated)", plain_rate),
    ]
    for label, rate in rows_:
        print(f"  {label:<66} {args.rows / rate:>9.1f} {rate:>10,.0f}")
    print(f"COPY vs row-by-row INSERT (median of per-round ratios): {ratio:.1f}x prepared, {ratio_plain:.1f}x "
          f"unprepared. INSERT figures are for {sample:,} rows extrapolated to {args.rows:,}.")
    print(f"COPY vs psql \\copy (median of per-round ratios): {of_floor * 100:.0f}% of the floor's throughput; "
          f"target >= 50% {'met' if of_floor >= 0.5 else 'MISSED'}")
    print(f"Targets: >= 100,000 rows/s {'met' if copy_rate >= 100_000 else 'MISSED'} ({copy_rate:,.0f}); "
          f">= 10x INSERTs {'met' if ratio >= 10 else 'MISSED'} ({ratio:.1f}x vs prepared INSERTs over loopback).")
    return 0


if __name__ == "__main__":
    sys.exit(main())
