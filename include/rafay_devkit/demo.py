"""``make demo``: bill one day of simulated Rafay usage end to end on this laptop.

Starts the Rafay simulator and an embedded PostgreSQL, runs the real ``rafay_usage_billing`` DAG
with ``airflow dags test`` for one window, prints a per-org charge summary and where the files went,
then stops everything it started.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from rafay_devkit.airflow_env import REPO, airflow_env, dags_test, migrate_metadata_db
from rafay_devkit.postgres import EmbeddedPostgres

DEMO_DIR = REPO / ".demo"
PRICE_BOOK = REPO / "include" / "demo" / "price_book.csv"
SUMMARY_SQL = REPO / "include" / "sql" / "reports" / "charge_summary_by_org.sql"
EXCEPTIONS_SQL = REPO / "include" / "sql" / "reports" / "exception_counts.sql"


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--date", default="2026-11-26", help="logical date; bills the day before (default %(default)s)")
    parser.add_argument("--orgs", type=int, default=12, help="simulated organizations (default %(default)s)")
    parser.add_argument("--seed", type=int, default=7)
    return parser.parse_args(argv)


def _print_summary(dsn: str, window_start: datetime, window_end: datetime) -> None:
    import psycopg

    with psycopg.connect(dsn) as conn:
        rows = conn.execute(SUMMARY_SQL.read_text(), {"ws": window_start, "we": window_end}).fetchall()
        exceptions = conn.execute(EXCEPTIONS_SQL.read_text(), {"ws": window_start, "we": window_end}).fetchall()
    print(f"\nCharges for [{window_start:%Y-%m-%dT%H:%MZ}, {window_end:%Y-%m-%dT%H:%MZ}):")
    print(f"  {'Organization':<34} {'Line items':>10} {'Hours':>12} {'Amount':>14}  Currency")
    totals: dict[str, Decimal] = {}
    for organization, _org_id, items, hours, amount, currency in rows:
        print(f"  {organization[:34]:<34} {items:>10} {hours:>12} {amount:>14}  {currency}")
        totals[currency] = totals.get(currency, Decimal(0)) + amount
    for currency, amount in sorted(totals.items()):
        print(f"  {'TOTAL':<34} {'':>10} {'':>12} {amount:>14}  {currency}")
    if exceptions:
        print("  Not billed (billing.rating_exceptions): " + ", ".join(f"{r}: {n}" for r, n in exceptions))


def main(argv: list[str] | None = None) -> int:
    from rafay_simulator import RafaySimulator, SimulatorConfig

    args = _parse_args(argv)
    logical = datetime.fromisoformat(args.date).replace(tzinfo=UTC)
    window_start, window_end = logical - timedelta(days=1), logical
    shutil.rmtree(DEMO_DIR, ignore_errors=True)
    DEMO_DIR.mkdir(parents=True)
    data_dir = DEMO_DIR / "billing-data"
    print(f"Demo: billing [{window_start:%Y-%m-%d}, {window_end:%Y-%m-%d}) for {args.orgs} simulated orgs")
    config = SimulatorConfig(seed=args.seed, orgs=args.orgs, now=window_end + timedelta(days=1))
    with RafaySimulator(config) as sim, EmbeddedPostgres(DEMO_DIR / "postgres") as pg:
        print(f"  Rafay simulator: {sim.url}")
        dsn = pg.create_database("billing")
        print(f"  Billing database: {dsn}")
        env = airflow_env(
            DEMO_DIR / "airflow",
            rafay_url=sim.url,
            rafay_api_key=sim.api_key,
            billing_dsn=dsn,
            data_uri=data_dir.as_uri(),
            price_book_uri=PRICE_BOOK.as_uri(),
            # the demo bills one day: the ledger starts there, so no earlier day is reported missing
            billing_start_date=(logical - timedelta(days=1)).date().isoformat(),
        )
        print("  Preparing Airflow metadata database ...")
        migrate_metadata_db(env)
        print(f"  Running: airflow dags test rafay_usage_billing {args.date}  (log: .demo/dags-test.log)")
        proc = dags_test(env, args.date)
        (DEMO_DIR / "dags-test.log").write_text(proc.stdout + proc.stderr)
        _print_summary(dsn, window_start, window_end)
    print(f"\nFiles under the landing root {data_dir}:")
    for path in sorted(p for p in data_dir.rglob("*") if p.is_file() and p.parent.parent.name.startswith("window=")):
        print(f"  {path.relative_to(data_dir)}")
    raw = sum(1 for p in (data_dir / "raw").rglob("*.json"))
    print(f"  raw/...: {raw} raw API responses and per-org usage.csv files (kept per run for audit)")
    print(f"DAG run {'succeeded' if proc.returncode == 0 else 'FAILED - see .demo/dags-test.log'}; "
          "simulator and PostgreSQL stopped.")
    return proc.returncode


if __name__ == "__main__":
    sys.exit(main())
