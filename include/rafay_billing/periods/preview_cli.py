"""``rafay-billing preview --dsn --period YYYY-MM``: the open month's invoices as of now (issue 22, rule 6).

Its own module so the main CLI only registers it. Read only. Exit status: 0 printed, 1 refused (a
closed period) or database error, 2 bad arguments.
"""

from __future__ import annotations

import argparse
import os
import sys
from datetime import date
from typing import Any

from rafay_billing import settings as defaults
from rafay_billing.db_errors import database_error_line

PROG = "rafay-billing preview"


def add_parser(sub: Any) -> None:
    """Register ``preview`` on the main CLI's subparsers."""
    cmd = sub.add_parser(
        "preview", help="print what an open month's invoices would be today, contract charges included",
        description=(
            "Print, per (org, currency), the document an open billing period would issue if it closed now: "
            "its usage and correction lines as the close groups them, plus the month-level contract charges "
            "(reservation fees, fees, commitment true-ups) computed from the ledger as it stands. Writes "
            "nothing. Exit status: 0 printed, 1 refused (a closed period) or database error, 2 bad arguments."
        ),
    )
    cmd.add_argument("--dsn", help="billing database, libpq string or URL (default: $BILLING_DATABASE_URL)")
    cmd.add_argument("--period", required=True, help="the open month, YYYY-MM (UTC)")
    cmd.add_argument("--billing-start", help="[rafay_billing] billing_start_date, YYYY-MM-DD: nothing is charged "
                     "before it (default: none)")


def run(args: argparse.Namespace, env: dict[str, str] | None = None) -> int:
    """The ``preview`` command; returns the exit status (prints its own errors)."""
    from rafay_billing.errors import PeriodError
    from rafay_billing.period import parse_period

    env = dict(os.environ) if env is None else env
    dsn = args.dsn or env.get(defaults.ENV_DATABASE_URL, "")
    try:
        if not dsn.strip():
            raise PeriodError(f"no database: pass --dsn or set {defaults.ENV_DATABASE_URL}")
        period = parse_period(args.period)
        start = date.fromisoformat(args.billing_start) if args.billing_start else None
    except (PeriodError, ValueError) as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 2
    import psycopg

    from rafay_billing.periods.preview import describe_preview, preview_period

    try:
        with psycopg.connect(dsn) as conn:
            docs = preview_period(conn, period, start)
    except PeriodError as exc:
        print(f"{PROG}: refused: {exc}", file=sys.stderr)
        return 1
    except psycopg.Error as exc:
        print(f"{PROG}: error: the billing database refused or is unreachable: {database_error_line(exc, dsn)}",
              file=sys.stderr)
        return 1
    print(describe_preview(period, docs))
    return 0
