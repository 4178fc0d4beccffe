"""``rafay-billing serve-tenant-api`` and ``rafay-billing tenant-token create|revoke|list``.

Light to import (the console script's start-up): FastAPI, uvicorn and psycopg load when a command runs.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from datetime import UTC, date, datetime, timedelta
from typing import Any

from rafay_billing import settings as defaults

DEFAULT_PORT = 8090
_DURATION = re.compile(r"^(\d{1,5})([dh])$")


class UsageError(Exception):
    """Bad or missing input: one line on stderr, exit status 2."""


def add_parsers(sub: Any) -> None:
    """Register ``serve-tenant-api`` and ``tenant-token`` on the main parser's subparsers."""
    serve = sub.add_parser(
        "serve-tenant-api",
        help="serve tenants' issued documents, line items and daily usage over HTTP (read-only, per-org tokens)",
        description=(
            "A read-only HTTP API for a customer portal: each request carries one tenant's API token "
            "(rafay-billing tenant-token create) and sees only that tenant's data. Connect as a login of the "
            "tenant API database role (default rafay_billing_tenant_api): the service refuses a login that may "
            "write or read more. OpenAPI schema: /openapi.json. Exit status: 1 refused or database error, "
            "2 bad arguments."
        ),
    )
    serve.add_argument("--dsn", help=f"the tenant API's database login (default: ${defaults.ENV_TENANT_API_DATABASE_URL})")
    serve.add_argument("--host", default="127.0.0.1", help="interface to listen on (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"port (default {DEFAULT_PORT})")
    serve.add_argument("--rate-limit", type=float, default=120.0, metavar="N",
                       help="requests per minute per token (default 120); beyond it: 429 with Retry-After")
    serve.add_argument("--burst", type=int, default=None, help="requests a token may make at once (default N/6)")
    serve.add_argument("--frame-ancestors", nargs="*", default=["'none'"], metavar="ORIGIN",
                       help="origins that may frame the HTML statements, e.g. https://portal.example.com "
                       "(default 'none')")
    serve.add_argument("--max-range-days", type=int, default=92, help="longest daily-usage range (default 92)")
    serve.add_argument("--pool-size", type=int, default=4, help="database connections (default 4)")
    serve.add_argument("--log-level", default="info", choices=("critical", "error", "warning", "info", "debug"))

    tokens = sub.add_parser(
        "tenant-token",
        help="create, revoke or list the tenant API's per-org tokens",
        description=(
            "A token gives a customer portal one org's statements through rafay-billing serve-tenant-api. "
            "'create' prints the token once (only a salted hash is stored: keep it now); 'revoke' ends it at "
            "once; 'list' shows ids, orgs and dates, never a token. Creation and revocation are recorded in "
            "billing.audit_log. Use the writer's login (default $BILLING_DATABASE_URL)."
        ),
    )
    actions = tokens.add_subparsers(dest="token_command", metavar="ACTION", required=True)
    create = actions.add_parser("create", help="make a token for one org and print it once")
    create.add_argument("--org", required=True, help="the org id (metadata.name) the token may read")
    create.add_argument("--expires", help="expiry: a UTC time (2027-01-31T00:00:00Z), a day (2027-01-31), "
                        "or a duration from now (90d, 12h); default: never")
    create.add_argument("--label", default="", help="a note for the list (e.g. the portal's name)")
    create.add_argument("--allow-unknown-org", action="store_true",
                        help="make it even when no run has listed the org yet")
    revoke = actions.add_parser("revoke", help="revoke a token at once (by its id, as listed)")
    revoke.add_argument("token_id", metavar="TOKEN_ID")
    listing = actions.add_parser("list", help="the tokens: ids, orgs, dates (never the tokens)")
    listing.add_argument("--org", help="only this org's tokens")
    listing.add_argument("--format", choices=("table", "json"), default="table")
    for parser in (create, revoke, listing):
        parser.add_argument("--dsn", help="billing database, the writer's login (default: $BILLING_DATABASE_URL)")
    for parser in (create, revoke):
        parser.add_argument("--by", help="who does it, for the audit log (default: $USER)")


def main(args: argparse.Namespace, env: dict[str, str]) -> int:
    """Run ``serve-tenant-api`` or ``tenant-token <action>``; returns the exit status."""
    name = "rafay-billing " + ("serve-tenant-api" if args.command == "serve-tenant-api"
                               else f"tenant-token {args.token_command}")
    try:
        if args.command == "serve-tenant-api":
            return _serve(args, env)
        return _tokens(args, env, name)
    except UsageError as exc:
        print(f"{name}: error: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:
        from rafay_billing.tenant_api.server import RoleTooPowerful
        from rafay_billing.tenant_api.tokens import TokenError

        if isinstance(exc, (TokenError, RoleTooPowerful)):
            print(f"{name}: refused: {exc}", file=sys.stderr)
            return 1
        if type(exc).__module__.startswith("psycopg"):
            from rafay_billing.db_errors import database_error_line

            print(f"{name}: error: the billing database refused or is unreachable: {database_error_line(exc, *_dsns(args, env))}",
                  file=sys.stderr)
            return 1
        raise


def _dsns(args: argparse.Namespace, env: dict[str, str]) -> list[str | None]:
    """Every DSN the command may have connected with: whichever it was, its password is masked in errors."""
    return [getattr(args, "dsn", None), *(value for key, value in env.items() if key.endswith("DATABASE_URL"))]


def _serve(args: argparse.Namespace, env: dict[str, str]) -> int:
    from rafay_billing.tenant_api.app import TenantApiSettings
    from rafay_billing.tenant_api.server import serve

    dsn = args.dsn or env.get(defaults.ENV_TENANT_API_DATABASE_URL, "")
    if not dsn.strip():
        raise UsageError(f"no database: pass --dsn or set {defaults.ENV_TENANT_API_DATABASE_URL} "
                         "(a login of the tenant API role)")
    if not 0 < args.port < 65536 or args.pool_size < 1:
        raise UsageError("--port must be 1-65535 and --pool-size at least 1")
    try:
        settings = TenantApiSettings(rate_per_minute=args.rate_limit, burst=args.burst,
                                     frame_ancestors=tuple(args.frame_ancestors or ["'none'"]),
                                     max_range_days=args.max_range_days)
        if args.rate_limit <= 0 or (args.burst is not None and args.burst < 1):
            raise ValueError("--rate-limit must be positive and --burst at least 1")
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    serve(dsn, args.host, args.port, settings=settings, pool_size=args.pool_size, log_level=args.log_level)
    return 0


def parse_expiry(text: str | None, now: datetime) -> datetime | None:
    """``--expires``: a UTC timestamp, a UTC day (its midnight), or ``<N>d``/``<N>h`` from ``now``."""
    if text is None:
        return None
    value = text.strip()
    duration = _DURATION.match(value)
    if duration:
        amount, unit = int(duration.group(1)), duration.group(2)
        return now + (timedelta(days=amount) if unit == "d" else timedelta(hours=amount))
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
        try:
            return datetime.combine(date.fromisoformat(value), datetime.min.time(), UTC)
        except ValueError:
            pass
    from rafay_billing.window import WindowError, parse_utc

    try:
        return parse_utc(value, "--expires")
    except WindowError:
        raise UsageError(f"--expires must be a UTC time (2027-01-31T00:00:00Z), a day (2027-01-31) or a duration "
                         f"(90d, 12h), got {text!r}") from None


def _actor(args: argparse.Namespace, env: dict[str, str]) -> str:
    actor = (args.by or env.get("USER") or env.get("LOGNAME") or "").strip()
    if not actor:
        raise UsageError("pass --by NAME (who does it, for the audit log): $USER is not set")
    return actor


def _tokens(args: argparse.Namespace, env: dict[str, str], name: str) -> int:
    dsn = args.dsn or env.get(defaults.ENV_DATABASE_URL, "")
    if not dsn.strip():
        raise UsageError(f"no database: pass --dsn or set {defaults.ENV_DATABASE_URL}")
    import psycopg

    from rafay_billing.tenant_api import tokens

    if args.token_command == "create":
        actor, expires = _actor(args, env), parse_expiry(args.expires, datetime.now(UTC))
        with psycopg.connect(dsn, autocommit=True) as conn:
            if not args.allow_unknown_org and not tokens.org_known(conn, args.org):
                raise tokens.TokenError(f"no run has listed org {args.org!r} and it has no invoice: check the id "
                                        "(metadata.name), or pass --allow-unknown-org")
            issued = tokens.create_token(conn, args.org, actor, expires_at=expires, label=args.label)
        print(issued.token)
        until = f"until {issued.expires_at.isoformat()}" if issued.expires_at else "with no expiry"
        print(f"token {issued.token_id} for org {issued.org_id}, {until}. It is shown only now: store it in the "
              "portal's secret store (only a salted hash is kept).", file=sys.stderr)
        return 0
    if args.token_command == "revoke":
        actor = _actor(args, env)
        with psycopg.connect(dsn, autocommit=True) as conn:
            info = tokens.revoke_token(conn, args.token_id, actor)
        print(f"token {info.token_id} of org {info.org_id} revoked at {info.revoked_at.isoformat() if info.revoked_at else ''}")
        return 0
    with psycopg.connect(dsn, autocommit=True) as conn:
        found = tokens.list_tokens(conn, args.org)
    if args.format == "json":
        print(json.dumps([t.as_dict() for t in found], indent=2, ensure_ascii=False))
        return 0
    rows = [("TOKEN_ID", "ORG", "STATE", "CREATED", "EXPIRES", "LAST_USED", "LABEL")]
    now = datetime.now(UTC)
    for t in found:
        state = "revoked" if t.revoked_at else ("expired" if t.expires_at and t.expires_at <= now else "active")
        rows.append((t.token_id, t.org_id, state, _when(t.created_at), _when(t.expires_at), _when(t.last_used_at),
                     t.label))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]) - 1)]
    for r in rows:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=False)) + "  " + r[-1])
    return 0


def _when(moment: datetime | None) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if moment else "-"

