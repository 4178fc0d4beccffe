"""``rafay-billing metrics``: a drop-in for the blog's ``ncp_metrics.py``, with paging, retries, concurrency;
``rafay-billing waive``: an operator's waiver of an open rating exception before the monthly close.
``rafay-billing accept-shrink``: an operator accepts a held (shrunken) re-read of an (org, day).

Same inputs (``DAYS``, ``RAFAY_CONSOLE_URL``, ``RAFAY_DEFAULT_API_KEY``; flags win), same outputs
(``ncp-metrics-<ts>.csv`` and ``ncp-metrics-sorted-<ts>.csv`` with the same rows in the same order),
built on the same client and extraction code as the Airflow DAG. It must start fast and run where
Airflow is not installed, so nothing here imports Airflow, pandas or a database driver (``waive``
imports psycopg when it runs).
"""

from __future__ import annotations

import argparse
import gc
import importlib
import logging
import os
import sys
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rafay_billing import settings as defaults
from rafay_billing.window import Window, WindowError, parse_utc

if TYPE_CHECKING:
    from rafay_billing.period import Period
    from rafay_billing.source.client import RafayClient
    from rafay_billing.source.extract import OrgExtraction, OrgRef
    from rafay_billing.source.sources import UsageSource

log = logging.getLogger("rafay_billing.cli")


class UsageError(Exception):
    """Bad or missing input: reported on one line, exit status 2."""


def _parser(only_metrics: bool = False) -> argparse.ArgumentParser:
    """The command line; ``only_metrics`` builds the ``metrics`` subcommand alone.

    Why that option: the other subcommands' parsers import their modules (FOCUS export, the
    database layer, the tenant API...), tens of milliseconds of start-up that ``rafay-billing
    metrics``, a nightly cron job timed against the blog script, never uses. Parsing a ``metrics``
    command line is the same either way (same flags, errors and help text)."""
    parser = argparse.ArgumentParser(
        prog="rafay-billing", description="Rafay usage metering for billing (seed-compatible commands)."
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    _metrics_parser(sub)
    if only_metrics:
        return parser
    _add_focus_export(sub)
    _waive_parser(sub)
    _contracts_parser(sub)
    from rafay_billing.periods import preview_cli  # stdlib only at import

    preview_cli.add_parser(sub)
    from rafay_billing.delivery import cli as deliveries  # stdlib only at import

    deliveries.add_parser(sub)
    from rafay_billing.tenant_api import cli as tenant_api  # stdlib only at import

    tenant_api.add_parsers(sub)
    _accept_shrink_parser(sub)
    return parser


def _metrics_parser(sub: Any) -> None:
    metrics = sub.add_parser(
        "metrics",
        help="write ncp-metrics-<ts>.csv and ncp-metrics-sorted-<ts>.csv like the blog script",
        description=(
            "Read every organization's per-instance usage for a window and write the blog script's two "
            "CSVs. Environment: DAYS, RAFAY_CONSOLE_URL, RAFAY_DEFAULT_API_KEY, RAFAY_ALLOW_INSECURE_HTTP "
            "(flags win). The API key is sent over plain http only to this machine (127.0.0.0/8, ::1, "
            "localhost) unless --allow-insecure-http (or RAFAY_ALLOW_INSECURE_HTTP=1) says otherwise."
        ),
    )
    metrics.add_argument("--days", type=str, help="window: the N days up to now (default: $DAYS)")
    metrics.add_argument("--start", help="window start, UTC ISO-8601 (e.g. 2026-11-10T00:00:00Z)")
    metrics.add_argument("--end", help="window end (exclusive), UTC ISO-8601")
    metrics.add_argument("--out", default=".", help="directory for the CSVs (default: working directory)")
    metrics.add_argument("--concurrency", type=str, default=str(defaults.CONCURRENCY),
                         help=f"requests in flight at most (default {defaults.CONCURRENCY})")
    metrics.add_argument("--page-size", type=str, default=str(defaults.PAGE_SIZE),
                         help=f"records asked for per page (default {defaults.PAGE_SIZE}; a server may cap it lower)")
    metrics.add_argument("--console-url", help="console domain or base URL (default: $RAFAY_CONSOLE_URL)")
    metrics.add_argument("--ca-bundle", help="CA bundle file to verify the console's TLS certificate")
    metrics.add_argument(
        "--allow-insecure-http", action="store_true", default=None,
        help="send the API key over plain http:// to a host that is not this machine (test consoles only; "
        "default: $RAFAY_ALLOW_INSECURE_HTTP, off)",
    )
    metrics.add_argument(
        "--api", choices=("v2", "partner", "partner_only"), default=None,
        help="usage API: v2 (the blog's per-org endpoints, default), partner (Rafay's billing metrics "
        "API, orgs from the v2 listing) or partner_only (a console without the v2 listing; orgs keyed by "
        "their partner id); default: $RAFAY_API, else v2",
    )
    metrics.add_argument("-v", "--verbose", action="store_true", help="log every API call (never the key)")


def _contracts_parser(sub: Any) -> None:
    """``contracts sync`` (issue 22): its parser and handler live in :mod:`rafay_billing.periods.contracts_cli`."""
    from rafay_billing.periods import contracts_cli  # stdlib only at import

    contracts_cli.add_parser(sub)


# --- focus-export ---------------------------------------------------------------------------------------


def _add_focus_export(sub: Any) -> None:
    """The ``focus-export`` subcommand (its own parser and handler, :func:`run_focus_export`)."""
    from rafay_billing.periods import focus as d  # stdlib at import: pandas, pyarrow, psycopg load lazily

    cmd = sub.add_parser(
        "focus-export",
        help="write a billing period's line items as a FOCUS 1.0 file (CSV or Parquet)",
        description=(
            "Write one row per line item of billing period YYYY-MM (the calendar month in UTC whose "
            "invoices carry it: the month's own items and corrections of earlier, closed months) in the "
            "FinOps Foundation's FOCUS 1.0 columns, plus the pre-release names focus-validator 1.0.0 "
            "still requires. A period without line items writes a valid empty file (header or schema "
            "only) and says so on stderr. Exit status: 0 written, 1 database error, 2 bad arguments."
        ),
    )
    cmd.add_argument("--dsn", default=None,
                     help="billing database, libpq string or URL (default: $BILLING_DATABASE_URL)")
    cmd.add_argument("--period", required=True, help="billing period, YYYY-MM (e.g. 2026-10)")
    cmd.add_argument("--out", required=True,
                     help="file to write (replaced atomically), or - for standard output")
    cmd.add_argument("--format", choices=d.FORMATS, default=None,
                     help="csv or parquet (default: parquet when --out ends in .parquet, else csv)")
    cmd.add_argument("--issuer", default=d.DEFAULT_INVOICE_ISSUER,
                     help=f"InvoiceIssuerName (default {d.DEFAULT_INVOICE_ISSUER!r})")
    cmd.add_argument("--provider", default=d.DEFAULT_PROVIDER,
                     help=f"ProviderName (default {d.DEFAULT_PROVIDER!r})")
    cmd.add_argument("--publisher", default=d.DEFAULT_PUBLISHER,
                     help=f"PublisherName (default {d.DEFAULT_PUBLISHER!r})")
    cmd.add_argument("--service-category", default=d.DEFAULT_SERVICE_CATEGORY,
                     help=f"ServiceCategory, one of FOCUS 1.0's (default {d.DEFAULT_SERVICE_CATEGORY!r})")
    cmd.add_argument("--parquet-decimals", choices=d.PARQUET_DECIMALS, default="decimal128",
                     help="decimal128: exact (default); float64: doubles, which focus-validator 1.0.0 "
                     "needs (it rejects decimal columns)")
    cmd.add_argument("--spec-columns-only", action="store_true",
                     help="leave out the pre-release copies ChargeType, InvoiceIssuer, Provider, Publisher, "
                     "ResourceID (for tools that match column names regardless of case)")


def run_focus_export(args: argparse.Namespace, env: dict[str, str]) -> int:
    """The ``focus-export`` command; returns the exit status."""
    from rafay_billing.period import PeriodError, parse_period
    from rafay_billing.periods import focus  # pandas/pyarrow/psycopg only for this command

    try:
        period = parse_period(args.period)
    except PeriodError as exc:
        raise UsageError(f"--period: {exc}") from None
    dsn = args.dsn or env.get(defaults.ENV_DATABASE_URL, "")
    if not dsn.strip():
        raise UsageError(f"no database: pass --dsn or set {defaults.ENV_DATABASE_URL}")
    fmt = args.format or ("parquet" if args.out.lower().endswith((".parquet", ".pq")) else "csv")
    if args.out == "-":
        target: Any = sys.stdout.buffer
    else:
        target = Path(args.out)
        if target.is_dir():
            raise UsageError(f"--out {args.out} is a directory: give the file to write")
        if not target.parent.is_dir():
            raise UsageError(f"--out {args.out}: directory {target.parent} does not exist")
    import psycopg

    try:
        with psycopg.connect(dsn) as conn:
            status = focus.period_status(conn, period)
            rows = focus.write_focus_export(
                conn, period, target, fmt,
                invoice_issuer=args.issuer, provider=args.provider, publisher=args.publisher,
                service_category=args.service_category, prerelease_columns=not args.spec_columns_only,
                parquet_decimals=args.parquet_decimals,
            )
    except focus.FocusExportError as exc:
        raise UsageError(str(exc)) from None
    except psycopg.Error as exc:
        from rafay_billing.db_errors import database_error_line

        print(f"rafay-billing focus-export: error: database: {database_error_line(exc, dsn)}", file=sys.stderr)
        return 1
    state = "closed" if status.closed else "open: its items can still change until it is closed"
    print(f"{rows} FOCUS rows of billing period {args.period} ({state}) -> "
          f"{'stdout' if args.out == '-' else args.out} ({fmt})", file=sys.stderr)
    if rows == 0:
        print(f"rafay-billing focus-export: warning: billing period {args.period} has no line items; "
              "wrote an empty file", file=sys.stderr)
    return 0


def _waive_parser(sub: Any) -> None:
    waive = sub.add_parser(
        "waive",
        help="waive an open rating exception with a reason, so it no longer blocks the monthly close",
        description=(
            "Record that the usage records of one (org, day, profile, instance, reason) will not be billed, and "
            "why (billing.exception_waivers and billing.audit_log). An open exception blocks the close of its "
            "billing period until a later rating bills it or it is waived. Find them in billing.open_exceptions; "
            "--instance is its instance_key (the instance id, or name:<instance> for records without one). "
            "--all-open --period YYYY-MM waives every open exception of a period with one --why."
        ),
    )
    waive.add_argument("--dsn", help="billing database, libpq string or URL (default: $BILLING_DATABASE_URL)")
    waive.add_argument("--org", help="org id (billing.open_exceptions.org_id)")
    waive.add_argument("--day", help="usage day, UTC, YYYY-MM-DD")
    waive.add_argument("--profile", help="profile name")
    waive.add_argument("--instance", help="instance key (the instance id, or name:<instance>)")
    waive.add_argument("--reason", help="exception reason: unpriced, ambiguous_price, missing_gpu_count, "
                       "invalid_usage, usage_exceeds_window, missing_dimension or usage_outside_day")
    waive.add_argument("--why", help="why this usage is not billed, in words finance can read (required)")
    waive.add_argument("--by", help="who waives it (default: $USER, else the login name)")
    waive.add_argument("--all-open", action="store_true", help="waive every open exception of --period")
    waive.add_argument("--period", help="with --all-open: the billing period, YYYY-MM")


def _positive_int(text: str | None, what: str) -> int:
    try:
        value = int(str(text).strip())
    except ValueError:
        raise UsageError(f"{what} must be a positive whole number, got {text!r}") from None
    if value < 1:
        raise UsageError(f"{what} must be a positive whole number, got {text!r}")
    return value


def _insecure_http(args: argparse.Namespace, env: dict[str, str]) -> bool:
    """``--allow-insecure-http``, else ``RAFAY_ALLOW_INSECURE_HTTP`` (1/true/yes/on or 0/false/no/off)."""
    if args.allow_insecure_http:
        return True
    text = env.get(defaults.ENV_ALLOW_INSECURE_HTTP, "").strip().lower()
    if text in ("", "0", "false", "no", "off"):
        return False
    if text in ("1", "true", "yes", "on"):
        return True
    raise UsageError(f"{defaults.ENV_ALLOW_INSECURE_HTTP} must be 1/true/yes/on or 0/false/no/off, got {text!r}")


def window_from_args(args: argparse.Namespace, env: dict[str, str], now: datetime) -> Window:
    """``--start/--end``, else ``--days``/``DAYS`` ending now (second precision, like the seed)."""
    if args.start or args.end:
        if args.days is not None:
            raise UsageError("give either --days or --start/--end, not both")
        if not (args.start and args.end):
            raise UsageError("--start and --end go together (UTC, e.g. 2026-11-10T00:00:00Z)")
        try:
            return Window(parse_utc(args.start, "--start"), parse_utc(args.end, "--end"))
        except WindowError as exc:
            raise UsageError(str(exc)) from None
    if args.days is not None:
        days = _positive_int(args.days, "--days")
    elif env.get("DAYS", "").strip():
        days = _positive_int(env["DAYS"], "DAYS")
    else:
        raise UsageError("no window: set DAYS (days to look back), or pass --days N or --start/--end")
    try:
        return Window.last_days(days, now.astimezone(UTC).replace(microsecond=0))
    except WindowError as exc:
        raise UsageError(str(exc)) from None


def run_metrics(args: argparse.Namespace, env: dict[str, str], *, whole_process: bool = False) -> int:
    """The ``metrics`` command; returns the exit status.

    ``whole_process``: this command is all the process does (the console script; not a caller
    that goes on, like the tests or the benchmark). Then what the imports made is frozen out of the
    garbage collector (:func:`gc.freeze`): none of it becomes garbage before the process exits, and
    the collections during the run and the one at exit (a fifth of the time after the files were
    written) no longer walk it.
    """
    from rafay_billing.errors import RafayConfigError, RafayError
    from rafay_billing.reports import write_ncp_metrics_csvs
    from rafay_billing.source.client import RafayClient
    from rafay_billing.source.sources import usage_source

    stamp = time.strftime("%m%d%Y-%H%M%S")  # local time, as the seed names its files
    window = window_from_args(args, env, datetime.now(UTC))
    concurrency = _positive_int(args.concurrency, "--concurrency")
    page_size = _positive_int(args.page_size, "--page-size")
    url = args.console_url or env.get(defaults.ENV_CONSOLE_URL, "")
    if not url.strip():
        raise UsageError(f"{defaults.ENV_CONSOLE_URL} is not set: your console's domain (rafay.acme.com) or a base URL")
    key = env.get(defaults.ENV_API_KEY, "")
    if not key.strip():
        raise UsageError(f"{defaults.ENV_API_KEY} is not set: the Default Org's Org Admin API key")
    out = Path(args.out)
    check_out_dir(out, args.out)
    insecure = _insecure_http(args, env)
    try:
        source = usage_source(args.api or env.get(defaults.ENV_API))
    except ValueError as exc:
        raise UsageError(f"{defaults.ENV_API}: {exc}") from None
    try:
        client = RafayClient(
            url, key, verify=args.ca_bundle or True, concurrency=concurrency, page_size=page_size,
            auth_hint="check RAFAY_DEFAULT_API_KEY (the Default Org's Org Admin API key)",
            allow_insecure_http=insecure,
        )
    except RafayConfigError as exc:
        raise UsageError(str(exc)) from None

    if whole_process:
        gc.freeze()
    started = time.perf_counter()
    print(f"Reading usage for [{window.start_iso}, {window.end_iso}) from {client.base_url} ({source.api} API) ...",
          file=sys.stderr)
    try:
        with client:
            orgs = source.list_orgs(client, window)
            results = _extract_orgs(source, client, orgs, window, concurrency)
    except RafayError as exc:
        print(f"rafay-billing: error: {exc}", file=sys.stderr)
        return 1
    for result in results:
        log.info("%s", result.summary_line())
    rows = [row for result in results for row in result.rows]
    try:
        out.mkdir(parents=True, exist_ok=True)
        unsorted_path, sorted_path = write_ncp_metrics_csvs(rows, out, stamp)
    except OSError as exc:
        _remove_partial(out, stamp)
        print(f"rafay-billing: error: cannot write the CSVs to {out}: {exc.strerror or exc}"
              + (f" ({exc.filename})" if exc.filename else "")
              + "; the usage was read but no CSV was kept: free space or fix the permissions there, or give "
              "--out another directory",
              file=sys.stderr)
        return 1
    snap = client.stats.snapshot()
    invalid = sum(r.invalid for r in results)
    print(
        f"{len(orgs)} orgs, {sum(r.profiles for r in results)} profiles, {len(rows)} rows"
        + (f" ({invalid} with unusable hours)" if invalid else "")
        + f", {snap.requests} requests, {snap.retries} retries, {time.perf_counter() - started:.1f} s",
        file=sys.stderr,
    )
    print(unsorted_path)
    print(sorted_path)
    if whole_process:
        gc.freeze()  # the rows too: the process ends here
    return 0


def _writable_dir(path: Path) -> bool:
    """Whether this process may add entries to the directory ``path`` (write and search permission)."""
    return os.access(path, os.W_OK | os.X_OK)


def check_out_dir(out: Path, given: str) -> None:
    """Refuse an ``--out`` the CSVs could not be written to, before any request is made.

    Why up front: the reads can take minutes, and an unusable directory found only when the CSVs are
    written wastes them. Why not create it here: the README promises no files on an API failure, so
    a missing ``--out`` is only checked to be creatable (its nearest existing ancestor is a
    directory this process can write to) and is created once the reads have succeeded.
    """
    if os.path.isdir(out):  # os.path's tests: a path it may not look into is a no, never an exception
        if not _writable_dir(out):
            raise UsageError(f"--out {given} is not writable: give a directory you can write to")
        return
    if os.path.lexists(out):
        raise UsageError(f"--out {given} is not a directory")
    ancestor = out.absolute().parent
    while not os.path.lexists(ancestor) and ancestor != ancestor.parent:
        ancestor = ancestor.parent
    if not os.path.isdir(ancestor):
        raise UsageError(f"--out {given} cannot be created: {ancestor} is not a directory")
    if not _writable_dir(ancestor):
        raise UsageError(f"--out {given} cannot be created: {ancestor} is not writable; give a directory you can "
                         "write to (a missing one is created)")


def _remove_partial(out: Path, stamp: str) -> None:
    """Remove what a failed write of the CSVs left (a half-written file must not pass for a result)."""
    from rafay_billing.reports import ncp_metrics_file_names

    for name in ncp_metrics_file_names(stamp):
        try:
            (out / name).unlink(missing_ok=True)
        except OSError:
            pass  # the directory itself is gone or unusable: nothing of ours is left in it to remove


def _extract_orgs(
    source: UsageSource, client: RafayClient, orgs: list[OrgRef], window: Window, concurrency: int
) -> list[OrgExtraction]:
    """Every org's extraction, ``concurrency`` orgs at a time, in listing order.

    Every org's profile listing is queued first: at the end of the run only usage requests remain,
    which fill every slot, instead of an org whose usage still waits for its own profile listing
    (one more round trip with the other slots idle). Every org's profiles are read on one shared
    pool of ``concurrency`` threads, not on a pool made and ended per org."""
    workers = max(1, min(concurrency, len(orgs)))
    with (ThreadPoolExecutor(max_workers=workers, thread_name_prefix="rafay-org") as pool,
          ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="rafay-profile") as profiles):
        ahead = [pool.submit(source.list_ahead, client, o) for o in orgs]

        def extract(i: int, org: OrgRef) -> OrgExtraction:
            # its listing was queued before this task, so a worker has taken it already: never a
            # deadlock; the profiles are read on the one shared pool (it never waits for an org)
            return source.extract_org(client, org, window, org_seq=i, concurrency=concurrency,
                                      listed=ahead[i].result(), pool=profiles)

        futures = [pool.submit(extract, i, o) for i, o in enumerate(orgs)]
        return [f.result() for f in futures]


def _waive_day(text: str | None) -> date:
    value = (text or "").strip()
    try:
        if len(value) == 10:
            return date.fromisoformat(value)
    except ValueError:
        pass
    raise UsageError(f"--day must be a UTC day like 2026-10-31, got {text!r}")


def _login_name() -> str:
    import getpass

    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no passwd entry (containers): the waiver then needs --by
        return ""


def _waive_target(args: argparse.Namespace) -> tuple[Period | None, date | None]:
    """``(period, None)`` for ``--all-open``, ``(None, day)`` for one waiver; UsageError says what is missing."""
    from rafay_billing.period import PeriodError, parse_period

    key = {"--org": args.org, "--day": args.day, "--profile": args.profile, "--instance": args.instance,
           "--reason": args.reason}
    if args.all_open:
        given = [flag for flag, value in key.items() if value]
        if given or not args.period:
            raise UsageError("--all-open goes with --period YYYY-MM and --why, not with " + (", ".join(given) or "nothing"))
        try:
            return parse_period(args.period), None
        except PeriodError as exc:
            raise UsageError(f"--period: {exc}") from None
    missing = [flag for flag, value in key.items() if not value]
    if missing:
        raise UsageError(f"give {', '.join(missing)} (or --all-open --period YYYY-MM)")
    return None, _waive_day(args.day)


def run_waive(args: argparse.Namespace, env: dict[str, str]) -> int:
    """The ``waive`` command; returns the exit status (2: bad input, 1: refused or database unreachable)."""
    from rafay_billing.errors import PeriodError, WaiverError
    from rafay_billing.periods.waivers import waive, waive_open

    dsn = args.dsn or env.get(defaults.ENV_DATABASE_URL, "")
    if not dsn.strip():
        raise UsageError("give --dsn or set BILLING_DATABASE_URL (the billing database)")
    actor = args.by or env.get("USER") or env.get("LOGNAME") or _login_name()
    period, day = _waive_target(args)
    import psycopg  # only this command needs a database driver

    try:
        with psycopg.connect(dsn, autocommit=True) as conn:
            if period is not None:
                waivers = waive_open(conn, period, args.why or "", actor)
            else:
                assert day is not None  # _waive_target returns one of the two
                waivers = [waive(conn, args.org, day, args.profile, args.instance, args.reason, args.why or "", actor)]
    except (WaiverError, PeriodError) as exc:
        print(f"rafay-billing waive: refused: {exc}", file=sys.stderr)
        return 1
    except psycopg.Error as exc:
        from rafay_billing.db_errors import database_error_line

        print(f"rafay-billing waive: error: the billing database refused or is unreachable: "
              f"{database_error_line(exc, dsn)}", file=sys.stderr)
        return 1
    for waiver in waivers:
        print(waiver)
    if period is not None:
        print(f"{len(waivers)} waiver(s) for period {period.label}")
    return 0


# Subcommands whose parser and handler live in their own module: command -> (module, handler(args, env)).
_MODULE_COMMANDS = {
    "contracts": ("rafay_billing.periods.contracts_cli", "run"),
    "preview": ("rafay_billing.periods.preview_cli", "run"),
    "deliveries": ("rafay_billing.delivery.cli", "main"),
    "serve-tenant-api": ("rafay_billing.tenant_api.cli", "main"),
    "tenant-token": ("rafay_billing.tenant_api.cli", "main"),
}


# --- accept-shrink (issue 21 rule 2) ----------------------------------------------------------------


def _accept_shrink_parser(sub: Any) -> None:
    cmd = sub.add_parser(
        "accept-shrink",
        help="accept a held re-read of an (org, day) whose usage shrank, and rate the day from it",
        description=(
            "A re-read of a billed (org, day) whose total instance hours fall below [rafay_billing] "
            "shrink_guard_ratio (default 0.5) of what the day holds, or that has no records, is held "
            "(billing.coverage status held, reason usage_shrank): the earlier items stand and the day blocks "
            "its period's close. This rates the day from run RUN's extraction, in one transaction with an "
            "audit entry (billing.audit_log, action accept_shrink); a day of a closed period gets corrections. "
            "Exit status: 0 rated, 1 refused or database error, 2 bad arguments."
        ),
    )
    cmd.add_argument("--dsn", help="billing database, libpq string or URL (default: $BILLING_DATABASE_URL)")
    cmd.add_argument("--org", required=True, help="org id (billing.coverage.org_id)")
    cmd.add_argument("--day", required=True, help="usage day, UTC, YYYY-MM-DD")
    cmd.add_argument("--run", required=True, help="the run whose extraction is held (billing.coverage.run_id)")
    cmd.add_argument("--reason", required=True, help="why the smaller usage is right, in words finance can read")
    cmd.add_argument("--by", help="who accepts it (default: $USER, else the login name)")
    cmd.add_argument("--billing-start", help="[rafay_billing] billing_start_date, YYYY-MM-DD: reservations cover "
                     "usage from that day on, as in the DAG's rating (default: no start)")


def run_accept_shrink(args: argparse.Namespace, env: dict[str, str]) -> int:
    """The ``accept-shrink`` command; returns the exit status."""
    from rafay_billing.ledger.acceptance import accept_shrink
    from rafay_billing.ledger.guards import GuardError

    dsn = args.dsn or env.get("BILLING_DATABASE_URL", "")
    if not dsn.strip():
        raise UsageError("give --dsn or set BILLING_DATABASE_URL (the billing database)")
    if not (args.reason or "").strip():
        raise UsageError("--reason must say why the smaller usage is right (it is audited)")
    actor = args.by or env.get("USER") or env.get("LOGNAME") or _login_name()
    if not actor:
        raise UsageError("give --by (who accepts it): no user name in the environment")
    day = _waive_day(args.day)
    try:
        start = date.fromisoformat(args.billing_start) if args.billing_start else None
    except ValueError:
        raise UsageError(f"--billing-start must be a UTC day YYYY-MM-DD, got {args.billing_start!r}") from None
    import psycopg  # only this command needs a database driver

    try:
        with psycopg.connect(dsn, autocommit=True) as conn:
            summary = accept_shrink(conn, args.org, day, args.run, args.reason, actor, billing_start=start)
    except GuardError as exc:
        print(f"rafay-billing accept-shrink: refused: {exc}", file=sys.stderr)
        return 1
    except psycopg.Error as exc:
        from rafay_billing.db_errors import database_error_line

        print(f"rafay-billing accept-shrink: error: the billing database refused or is unreachable: "
              f"{database_error_line(exc, dsn)}", file=sys.stderr)
        return 1
    print(f"{args.org} {day}: rated from run {args.run} (accepted by {actor}): {summary}")
    for c in summary.corrections:
        delta = ", ".join(f"{v} {k}" for k, v in sorted(c.delta_by_currency.items()))
        print(f"correction {c.correction_seq} written into period {c.period_start} (difference {delta})")
    return 0


_LOCAL_COMMANDS = {"focus-export": run_focus_export, "waive": run_waive, "accept-shrink": run_accept_shrink}
"""Subcommands handled here: command -> handler(args, env); a UsageError is exit status 2."""


def main(argv: Sequence[str] | None = None) -> int:
    """Console script entry point (``rafay-billing``)."""
    whole_process = argv is None  # the console script: nothing runs after this command
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = _parser(only_metrics=argv[:1] == ["metrics"])
    args = parser.parse_args(argv)
    local = _LOCAL_COMMANDS.get(args.command)
    if local is not None:
        try:
            return local(args, dict(os.environ))
        except UsageError as exc:
            print(f"rafay-billing {args.command}: error: {exc}", file=sys.stderr)
            return 2
    if args.command in _MODULE_COMMANDS:
        module, function = _MODULE_COMMANDS[args.command]
        return int(getattr(importlib.import_module(module), function)(args, dict(os.environ)))
    if args.command != "metrics":
        parser.print_help(sys.stderr)
        return 2
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if args.verbose:
        logging.getLogger("rafay_billing").setLevel(logging.DEBUG)
        logging.getLogger("urllib3").setLevel(logging.WARNING)
    try:
        return run_metrics(args, dict(os.environ), whole_process=whole_process)
    except UsageError as exc:
        print(f"rafay-billing metrics: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
