"""``rafay-billing contracts sync``: the Airflow sync of ``billing_contracts_uri``, outside Airflow.

Kept in its own module so the main CLI only registers it (:func:`add_parser`) and dispatches to
:func:`run`. Exit status: 0 synced, 1 refused (bad file, retroactive change) or database error,
2 bad arguments.
"""

from __future__ import annotations

import argparse
import getpass
import os
import sys
from datetime import date
from pathlib import Path
from typing import Any

from rafay_billing import settings as defaults
from rafay_billing.db_errors import database_error_line

PROG = "rafay-billing contracts"


class ContractsUsageError(Exception):
    """Bad or missing arguments: reported on one line, exit status 2."""


def add_parser(sub: Any) -> None:
    """Register ``contracts`` (with its ``sync`` subcommand) on the main CLI's subparsers."""
    contracts = sub.add_parser(
        "contracts", help="manage billing.contracts (reservations, commitments, fees)",
        description="Manage billing.contracts: reservations, minimum commitments and fees.",
    )
    actions = contracts.add_subparsers(dest="contracts_command", metavar="ACTION")
    sync = actions.add_parser(
        "sync", help="sync a contracts CSV into billing.contracts (as the DAGs do with billing_contracts_uri)",
        description=(
            "Validate a contracts CSV and store every added or changed contract as a new version of "
            "billing.contracts, in one transaction. Nothing is written when the file has a bad line (each is "
            "named), omits a contract the table holds (the sync never deletes one: a term_end ends it), or "
            "changes what a closed month charged or covered (unless --allow-retroactive: the acceptance is "
            "audited). Prints what changed and any warnings (unknown orgs, commitments in a currency the org "
            "has no price in). Exit status: 0 synced, 1 refused or database error, 2 bad arguments."
        ),
    )
    sync.add_argument("--dsn", help="billing database, libpq string or URL (default: $BILLING_DATABASE_URL)")
    sync.add_argument("--file", required=True, help="the contracts CSV (UTF-8), or - for standard input")
    sync.add_argument("--billing-start", help="[rafay_billing] billing_start_date, YYYY-MM-DD: months before it "
                      "are not charged or protected, and its month is prorated from it (give it as the DAGs "
                      "have it; default: none)")
    sync.add_argument("--allow-retroactive", action="store_true",
                      help="accept omitted contracts (kept as they are) and changes of closed months (audited)")
    sync.add_argument("--by", help="who syncs, recorded on the versions and audit entries "
                      "(default: cli:$USER)")


def _read(path: str) -> bytes:
    if path == "-":
        return sys.stdin.buffer.read()
    file = Path(path)
    if not file.is_file():
        raise ContractsUsageError(f"--file {path}: no such file")
    return file.read_bytes()


def _actor(args: argparse.Namespace, env: dict[str, str]) -> str:
    if args.by and args.by.strip():
        return args.by.strip()
    try:
        user = env.get("USER") or getpass.getuser()
    except OSError:
        user = "unknown"
    return f"cli:{user}"


def run(args: argparse.Namespace, env: dict[str, str] | None = None) -> int:
    """The ``contracts`` command; returns the exit status (prints its own errors)."""
    env = dict(os.environ) if env is None else env
    if getattr(args, "contracts_command", None) != "sync":
        print(f"{PROG}: error: give an action: sync", file=sys.stderr)
        return 2
    try:
        return _sync(args, env)
    except ContractsUsageError as exc:
        print(f"{PROG} sync: error: {exc}", file=sys.stderr)
        return 2


def _sync(args: argparse.Namespace, env: dict[str, str]) -> int:
    dsn = args.dsn or env.get(defaults.ENV_DATABASE_URL, "")
    if not dsn.strip():
        raise ContractsUsageError(f"no database: pass --dsn or set {defaults.ENV_DATABASE_URL}")
    data = _read(args.file)
    try:
        start = date.fromisoformat(args.billing_start) if getattr(args, "billing_start", None) else None
    except ValueError:
        raise ContractsUsageError(f"--billing-start must be a UTC day YYYY-MM-DD, got {args.billing_start!r}") from None
    import psycopg

    from rafay_billing.contracts.sync import ContractsError, RetroactiveChangeError
    from rafay_billing.periods.contract_changes import sync_and_rerate

    try:
        with psycopg.connect(dsn) as conn:
            changes = sync_and_rerate(conn, data, allow_retroactive=args.allow_retroactive, actor=_actor(args, env),
                                      billing_start=start)
    except (ContractsError, RetroactiveChangeError) as exc:
        print(f"{PROG} sync: {args.file} refused, billing.contracts unchanged:\n{exc}", file=sys.stderr)
        return 1
    except psycopg.Error as exc:
        print(f"{PROG} sync: error: the billing database refused or is unreachable: {database_error_line(exc, dsn)}",
              file=sys.stderr)
        return 1
    print(changes)
    for warning in changes.sync.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    return 0
