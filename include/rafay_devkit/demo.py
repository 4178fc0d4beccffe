"""``make demo``: bill and close a month of simulated Rafay usage end to end on this laptop.

Starts the Rafay simulator and an embedded PostgreSQL, runs the real ``rafay_usage_billing`` DAG
with ``airflow dags test`` for the whole month as one window (billed day by day), with the demo's
contracts (a reservation accepted mid-day, a fee, a commitment) and a monthly recurring price, prints a
per-org charge summary, then runs the real ``rafay_billing_close`` DAG for that month and prints the
invoices (number, org, currency, total), their contract and monthly lines, and where the files went, delivers them signed to a local stand-in of the
provider's billing system with the real ``rafay_billing_delivery`` DAG, fetches one tenant's invoice list
through the tenant statements API with a fresh token, then stops everything it started.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from rafay_billing.db import sql
from rafay_devkit.airflow_env import airflow_env, dags_test, migrate_metadata_db
from rafay_devkit.billing_receiver import Receiver
from rafay_devkit.postgres import EmbeddedPostgres
from rafay_devkit.project import demo_contracts, demo_monthly_prices, demo_price_book, work_dir
from rafay_devkit.tenant_api_demo import show_first_tenant
from rafay_provider.settings import CLOSE_DAG_ID, DELIVERY_CONN_ID, DELIVERY_DAG_ID

DEMO_DIR = work_dir(".demo")
DEMO_SIGNING_SECRET = "whsec-demo-only"  # the demo's own receiver; a real one comes from a secret store


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--month", default="2026-10", help="the month to bill and close, YYYY-MM (default %(default)s)")
    parser.add_argument("--orgs", type=int, default=12, help="simulated organizations (default %(default)s)")
    parser.add_argument("--seed", type=int, default=7)
    return parser.parse_args(argv)


def _print_summary(dsn: str, window_start: datetime, window_end: datetime) -> None:
    import psycopg

    with psycopg.connect(dsn) as conn:
        rows = conn.execute(sql("reports/charge_summary_by_org.sql"), {"ws": window_start, "we": window_end}).fetchall()
        exceptions = conn.execute(sql("reports/exception_counts.sql"), {"ws": window_start, "we": window_end}).fetchall()
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




def _print_invoices(dsn: str, month: str) -> None:
    import psycopg

    with psycopg.connect(dsn) as conn:
        rows = conn.execute(sql("periods/demo_invoices.sql"), {"period_start": f"{month}-01"}).fetchall()
    print(f"\nInvoices issued for {month}:")
    print(f"  {'Number':<14} {'Organization':<34} {'Currency':<8} {'Total':>14}")
    for number, organization, currency, subtotal in rows:
        print(f"  {number:<14} {organization[:34]:<34} {currency:<8} {subtotal:>14}")
    if not rows:
        print("  none (see .demo/close.log)")
        return
    with psycopg.connect(dsn) as conn:
        lines = conn.execute(sql("periods/demo_month_lines.sql"), {"period_start": f"{month}-01"}).fetchall()
    print("  Their reservation, contract and monthly recurring (MRC) lines:")
    for number, category, contract_id, profile, unit, quantity, amount, currency in lines:
        what = {"usage": "covered by reservation" if contract_id else "MRC", "purchase": "contract charge",
                "true_up": "commitment true-up"}.get(category, category)
        print(f"  {number:<14} {what:<22} {contract_id or profile:<20} {quantity:>14} {unit:<14} "
              f"{amount:>12} {currency}")


def _price_book_with_monthly_prices() -> Path:
    """The demo price book plus its monthly recurring prices, as one CSV under .demo."""
    book = DEMO_DIR / "price_book.csv"
    monthly = demo_monthly_prices().read_text().splitlines()[1:]  # without its header
    book.write_text(demo_price_book().read_text().rstrip("\n") + "\n" + "\n".join(monthly) + "\n")
    return book


def _deliver(env: dict[str, str], logical: str, month: str) -> int:
    """Issue 24: the month's documents posted by the delivery DAG to a local receiver that checks every
    signature; prints what it stored. Returns the DAG run's exit status."""
    with Receiver(secret=DEMO_SIGNING_SECRET) as receiver:
        env = {**env, f"AIRFLOW_CONN_{DELIVERY_CONN_ID.upper()}": json.dumps(
            {"conn_type": "http", "host": receiver.url, "password": DEMO_SIGNING_SECRET})}
        print(f"\n  Running: airflow dags test {DELIVERY_DAG_ID} {logical} -c '{{\"period\": \"{month}\"}}'"
              f"  (receiver {receiver.url}; log: .demo/delivery.log)")
        delivered = dags_test(env, logical, {"period": month}, dag_id=DELIVERY_DAG_ID)
        (DEMO_DIR / "delivery.log").write_text(delivered.stdout + delivered.stderr)
    verified = sum(1 for r in receiver.requests if r.signature_ok)
    print(f"  The billing system stored {len(receiver.stored)} document(s); {verified} of {len(receiver.requests)} "
          f"request(s) had a valid signature, {receiver.replays} replay(s) refused")
    for _id, body in sorted(receiver.stored.items()):
        doc = json.loads(body)["document"]
        print(f"    {doc['invoice_number']:<14} {doc['customer']['organization'][:34]:<34} {doc['currency']:<8} "
              f"{doc['subtotal']:>14}")
    return delivered.returncode


def main(argv: list[str] | None = None) -> int:
    from rafay_simulator import RafaySimulator, SimulatorConfig

    args = _parse_args(argv)
    window_start = datetime.fromisoformat(f"{args.month}-01").replace(tzinfo=UTC)
    window_end = (window_start + timedelta(days=32)).replace(day=1)
    shutil.rmtree(DEMO_DIR, ignore_errors=True)
    DEMO_DIR.mkdir(parents=True)
    data_dir = DEMO_DIR / "billing-data"
    print(f"Demo: billing and closing {args.month} [{window_start:%Y-%m-%d}, {window_end:%Y-%m-%d}) "
          f"for {args.orgs} simulated orgs")
    config = SimulatorConfig(seed=args.seed, orgs=args.orgs, now=window_end + timedelta(days=1))
    with RafaySimulator(config) as sim, EmbeddedPostgres(DEMO_DIR / "postgres") as pg:
        print(f"  Rafay simulator: {sim.url}")
        logins = pg.create_billing_database("billing")
        dsn = logins.admin
        print(f"  Billing database: {dsn} (connections: owner {logins.owner}, writer {logins.writer}, "
              f"reader {logins.reader})")
        env = airflow_env(
            DEMO_DIR / "airflow",
            rafay_url=sim.url,
            rafay_api_key=sim.api_key,
            billing_dsn=logins.writer,
            billing_owner_dsn=logins.owner,
            billing_reader_dsn=logins.reader,
            data_uri=data_dir.as_uri(),
            price_book_uri=_price_book_with_monthly_prices().as_uri(),
            # the ledger starts with the demo month, so no earlier day is reported missing
            billing_start_date=window_start.date().isoformat(),
        )
        env["AIRFLOW_VAR_BILLING_CONTRACTS_URI"] = demo_contracts().as_uri()
        print(f"  Contracts: {demo_contracts()} (Variable billing_contracts_uri)")
        print("  Preparing Airflow metadata database ...")
        migrate_metadata_db(env)
        logical = window_end.date().isoformat()
        conf = {"window_start": f"{window_start:%Y-%m-%dT%H:%M:%SZ}", "window_end": f"{window_end:%Y-%m-%dT%H:%M:%SZ}"}
        print(f"  Running: airflow dags test rafay_usage_billing {logical} -c '{json.dumps(conf)}'"
              "  (log: .demo/dags-test.log)")
        billed = dags_test(env, logical, conf)
        (DEMO_DIR / "dags-test.log").write_text(billed.stdout + billed.stderr)
        _print_summary(dsn, window_start, window_end)
        close_conf = {"allow_exceptions": True}  # the simulated month has no unbilled records unless priced so
        print(f"\n  Running: airflow dags test rafay_billing_close {logical} -c '{json.dumps(close_conf)}'"
              "  (log: .demo/close.log)")
        closed = dags_test(env, logical, close_conf, dag_id=CLOSE_DAG_ID)
        (DEMO_DIR / "close.log").write_text(closed.stdout + closed.stderr)
        _print_invoices(dsn, args.month)
        delivery_status = _deliver(env, logical, args.month)
        show_first_tenant(logins, args.month)  # issue 24: a tenant's list through the tenant API
    print(f"\nFiles under the landing root {data_dir}:")
    for folder in sorted({p.parent for p in (data_dir / "reports").rglob("*") if p.is_file()}):
        names = sorted(p.name for p in folder.iterdir() if p.is_file())
        shown = ", ".join(names[:4]) + (f", ... ({len(names)} files)" if len(names) > 4 else "")
        print(f"  {folder.relative_to(data_dir)}/: {shown}")
    raw = sum(1 for p in (data_dir / "raw").rglob("*.json"))
    print(f"  raw/...: {raw} raw API responses and per-(org, day) usage.csv files (kept per run for audit)")
    print(f"Billing run {'succeeded' if billed.returncode == 0 else 'needs attention - see .demo/dags-test.log'}; "
          f"close {'succeeded' if closed.returncode == 0 else 'FAILED - see .demo/close.log'}; "
          f"delivery {'succeeded' if delivery_status == 0 else 'FAILED - see .demo/delivery.log'}; "
          "simulator and PostgreSQL stopped.")
    return closed.returncode or delivery_status


if __name__ == "__main__":
    sys.exit(main())
