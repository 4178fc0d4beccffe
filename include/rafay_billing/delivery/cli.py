"""``rafay-billing deliveries list|retry``: where each issued document stands at the billing system,
and putting failed deliveries back in the queue (the next delivery run sends them).

Light to import (the console script's start-up): psycopg and the delivery state load when a command runs.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from rafay_billing import settings as defaults

STATUSES = ("pending", "delivered", "failed")
COLUMNS = ("DOCUMENT", "PERIOD", "ORG", "CURRENCY", "AMOUNT", "STATUS", "ATTEMPTS", "LAST", "ENDPOINT")


class UsageError(Exception):
    """Bad or missing input: one line on stderr, exit status 2."""


def add_parser(sub: Any) -> None:
    """Register ``deliveries`` (with ``list`` and ``retry``) on the main parser's subparsers."""
    cmd = sub.add_parser(
        "deliveries",
        help="list issued documents' delivery to the billing system, or retry failed ones",
        description=(
            "Issued documents are posted to the billing system (connection billing_delivery) by the "
            "rafay_billing_delivery DAG. 'list' shows each one's status: pending (to send or being retried), "
            "delivered (acknowledged with a 2xx: final, never sent again) or failed (refused with a 4xx; the "
            "response is kept). 'retry' puts failed ones back to pending: the next run sends them. "
            "Exit status: 0 done, 1 refused or database error, 2 bad arguments."
        ),
    )
    actions = cmd.add_subparsers(dest="deliveries_command", metavar="ACTION", required=True)
    listing = actions.add_parser("list", help="each document's delivery status")
    listing.add_argument("--status", choices=STATUSES, help="only this status")
    listing.add_argument("--period", help="only documents of this billing period, YYYY-MM")
    listing.add_argument("--endpoint", help="only this endpoint (the receiver's URL as listed)")
    listing.add_argument("--format", choices=("table", "json"), default="table", help="table (default) or json")
    retry = actions.add_parser("retry", help="set failed deliveries back to pending, so the next run sends them")
    retry.add_argument("documents", nargs="*", metavar="DOCUMENT",
                       help="invoice numbers or ids (default with --all: every failed delivery)")
    retry.add_argument("--all", action="store_true", help="every failed delivery (of --endpoint, if given)")
    retry.add_argument("--endpoint", help="only deliveries to this endpoint")
    for parser in (listing, retry):
        parser.add_argument("--dsn", help="billing database, libpq string or URL (default: $BILLING_DATABASE_URL)")


def main(args: argparse.Namespace, env: dict[str, str]) -> int:
    """Run ``deliveries <action>``; returns the exit status."""
    name = f"rafay-billing deliveries {args.deliveries_command}"
    try:
        dsn = args.dsn or env.get(defaults.ENV_DATABASE_URL, "")
        if not dsn.strip():
            raise UsageError(f"no database: pass --dsn or set {defaults.ENV_DATABASE_URL}")
        if args.deliveries_command == "list":
            return _list(args, dsn, _period(args.period))
        if bool(args.documents) == bool(args.all):
            raise UsageError("name the documents to retry (invoice numbers or ids), or pass --all")
        return _retry(args, dsn, name)
    except UsageError as exc:
        print(f"{name}: error: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:  # psycopg.Error, imported lazily
        if type(exc).__module__.startswith("psycopg"):
            from rafay_billing.db_errors import database_error_line

            print(f"{name}: error: the billing database refused or is unreachable: {database_error_line(exc, dsn)}",
                  file=sys.stderr)
            return 1
        raise


def _period(label: str | None) -> Any:
    if label is None:
        return None
    from rafay_billing.errors import PeriodError
    from rafay_billing.period import parse_period

    try:
        return parse_period(label)
    except PeriodError as exc:
        raise UsageError(f"--period: {exc}") from None


def _list(args: argparse.Namespace, dsn: str, period: Any) -> int:
    import psycopg

    from rafay_billing.delivery.state import list_deliveries
    from rafay_billing.jsonable import to_jsonable

    with psycopg.connect(dsn, autocommit=True) as conn:
        found = list_deliveries(conn, status=args.status, endpoint=args.endpoint, period=period)
    if args.format == "json":
        print(json.dumps([to_jsonable(d.as_dict()) for d in found], indent=2, ensure_ascii=False))
        return 0
    table = [COLUMNS] + [
        (d.invoice_number, f"{d.period_start:%Y-%m}", d.org_id, d.currency, format(d.subtotal, "f"), d.status,
         str(d.attempts), str(d.last_status_code) if d.last_status_code is not None else ("error" if d.last_error else "-"),
         d.endpoint)
        for d in found
    ]
    widths = [max(len(row[i]) for row in table) for i in range(len(COLUMNS) - 1)]
    for row in table:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=False)) + "  " + row[-1])
    return 0


def _retry(args: argparse.Namespace, dsn: str, name: str) -> int:
    import psycopg

    from rafay_billing.delivery.state import retry_failed

    with psycopg.connect(dsn, autocommit=True) as conn:
        reset = retry_failed(conn, args.documents or None, args.endpoint)
    for _, number, endpoint in reset:
        print(f"{number}: failed -> pending ({endpoint}); the next delivery run sends it")
    missing = sorted(set(args.documents) - {n for _, n, _ in reset} - {i for i, _, _ in reset})
    if missing:
        print(f"{name}: no failed delivery of {', '.join(missing)} (see rafay-billing deliveries list)", file=sys.stderr)
        return 1
    if not reset:
        print("no failed deliveries", file=sys.stderr)
    return 0
