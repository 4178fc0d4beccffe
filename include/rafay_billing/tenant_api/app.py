"""The tenant statements API (FastAPI): a customer portal reads one tenant's issued documents, line items
and daily usage with that tenant's API token.

Isolation is the point. The token decides the org, and every route reads only that org's rows (the org is
a parameter of each statement). A document, period or line item of another org answers exactly as one
that does not exist: the same 404 and body, reached through the same statement. A missing, malformed,
unknown, revoked or expired token gets the same 401. A token over its rate limit gets 429. Path values
that cannot name anything (over-long, NUL, not a period) are also the plain 404.

Every response carries ``X-Content-Type-Options: nosniff``, ``Cache-Control: no-store``,
``Referrer-Policy: no-referrer`` and a Content-Security-Policy; the HTML statement's policy allows no
script, image, font, connection or form (inline styles only) and runs sandboxed, framed only by the
configured portal origins (``frame_ancestors``, default none). The interactive docs pages are off (they
load scripts from a CDN); the OpenAPI schema is at ``/openapi.json``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Annotated, Any, Literal
from urllib.parse import quote

from fastapi import APIRouter, Depends, FastAPI, HTTPException, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from rafay_billing.db import sql
from rafay_billing.period import Period
from rafay_billing.periods.documents import invoice_csv, invoice_document, render_invoice_html
from rafay_billing.tenant_api import queries
from rafay_billing.tenant_api.cursor import CursorError
from rafay_billing.tenant_api.pool import ConnectionPool, PoolTimeout
from rafay_billing.tenant_api.ratelimit import RateLimiter
from rafay_billing.tenant_api.tokens import TokenChecker

NOT_FOUND = "Not Found"  # Starlette's own body for a path that matches no route: one answer for all
UNAUTHORIZED = "invalid or missing API token"
_PERIOD = re.compile(r"^(\d{4})-(0[1-9]|1[0-2])$")
_ORIGIN = re.compile(r"^(https?://[A-Za-z0-9.-]+(:\d{1,5})?|'self'|'none')$")
MAX_PAGE_SIZE = 500
API_CSP = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"


@dataclass(frozen=True)
class TenantApiSettings:
    rate_per_minute: float = 120.0
    burst: int | None = None
    frame_ancestors: tuple[str, ...] = ("'none'",)
    max_range_days: int = 92

    def __post_init__(self) -> None:
        for origin in self.frame_ancestors:
            if not _ORIGIN.match(origin):
                raise ValueError(f"frame ancestor {origin!r} must be an origin like https://portal.example.com, "
                                 "or 'self' or 'none'")
        if self.max_range_days < 1:
            raise ValueError("max_range_days must be positive")

    @property
    def html_csp(self) -> str:
        return ("default-src 'none'; style-src 'unsafe-inline'; img-src 'none'; font-src 'none'; "
                "connect-src 'none'; base-uri 'none'; form-action 'none'; "
                f"frame-ancestors {' '.join(self.frame_ancestors)}; sandbox")


@dataclass(frozen=True)
class Tenant:
    org_id: str
    token_id: str


def _not_found() -> HTTPException:
    return HTTPException(status_code=404, detail=NOT_FOUND)


def _period(text: str) -> Period:
    match = _PERIOD.match(text)
    if not match or int(match.group(1)) < 1970:
        raise _not_found()
    return Period(date(int(match.group(1)), int(match.group(2)), 1))


def _document_key(text: str) -> str:
    if not text or len(text) > queries.MAX_DOCUMENT_KEY or "\x00" in text:
        raise _not_found()
    return text


@dataclass
class Service:
    """What the routes share: the connections, the token checks, the limiter and the settings."""

    pool: ConnectionPool
    settings: TenantApiSettings
    limiter: RateLimiter
    checker: TokenChecker


def _service(request: Request) -> Service:
    service: Service = request.app.state.tenant_api
    return service


def _connection(request: Request) -> Iterator[Any]:
    with _service(request).pool.connection() as conn:
        yield conn


_bearer = HTTPBearer(auto_error=False, description="A tenant API token: rbt_<id>_<secret>")
Conn = Annotated[Any, Depends(_connection)]


def _tenant(request: Request, conn: Conn,
            credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]) -> Tenant:
    service = _service(request)
    found = service.checker.authenticate(conn, credentials.credentials if credentials else None)
    if found is None:
        raise HTTPException(status_code=401, detail=UNAUTHORIZED, headers={"WWW-Authenticate": "Bearer"})
    wait = service.limiter.acquire(found[1])
    if wait > 0:
        raise HTTPException(status_code=429, detail="rate limit exceeded for this token",
                            headers={"Retry-After": str(max(1, math.ceil(wait)))})
    return Tenant(*found)


Who = Annotated[Tenant, Depends(_tenant)]
router = APIRouter()


@router.get("/healthz", include_in_schema=False)
def healthz(conn: Conn) -> dict[str, str]:
    conn.execute(sql("tenant_api/health.sql")).fetchone()
    return {"status": "ok"}


@router.get("/v1/documents", summary="The tenant's issued invoices and credit notes")
def documents(
    who: Who, conn: Conn,
    period: Annotated[str | None, Query(pattern=r"^\d{4}-(0[1-9]|1[0-2])$", description="YYYY-MM")] = None,
    type: Annotated[Literal["invoice", "credit_note"] | None, Query(description="document type")] = None,
) -> dict[str, Any]:
    chosen = _period(period) if period else None
    return {"documents": queries.list_documents(conn, who.org_id, period=chosen, document_type=type)}


def _document(who: Tenant, conn: Any, key: str) -> queries.Document:
    found = queries.find_document(conn, who.org_id, _document_key(key))
    if found is None:
        raise _not_found()
    return found


@router.get("/v1/documents/{document_id}", summary="One issued document as JSON (by its id or number)")
def document_json(who: Who, conn: Conn, document_id: str) -> dict[str, Any]:
    doc = _document(who, conn, document_id)
    body = invoice_document(doc.invoice, Period(doc.invoice.period_start))
    return {**body, "document": doc.document_type, "document_type": doc.document_type}


@router.get("/v1/documents/{document_id}/csv", summary="One issued document's lines as CSV",
            response_class=Response, responses={200: {"content": {"text/csv": {}}}})
def document_csv(who: Who, conn: Conn, document_id: str) -> Response:
    doc = _document(who, conn, document_id)
    name = quote(f"{doc.invoice.file_stem}.csv", safe="")
    return Response(invoice_csv(doc.invoice, Period(doc.invoice.period_start)), media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": f"attachment; filename*=UTF-8''{name}"})


@router.get("/v1/documents/{document_id}/html", summary="One issued document as a self-contained HTML statement",
            response_class=HTMLResponse)
def document_html(request: Request, who: Who, conn: Conn, document_id: str) -> HTMLResponse:
    doc = _document(who, conn, document_id)
    return HTMLResponse(render_invoice_html(doc.invoice, Period(doc.invoice.period_start)),
                        headers={"Content-Security-Policy": _service(request).settings.html_csp})


@router.get("/v1/periods/{period}/line-items", summary="The line items of an issued period, cursor-paged")
def line_items(
    who: Who, conn: Conn, period: str,
    cursor: Annotated[str | None, Query(description="next_cursor of the previous page")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE)] = 100,
) -> dict[str, Any]:
    chosen = _period(period)
    if not queries.period_issued(conn, who.org_id, chosen):
        raise _not_found()
    try:
        return queries.line_items_page(conn, who.org_id, chosen, cursor, limit)
    except CursorError:
        raise HTTPException(status_code=400, detail="invalid cursor: pass next_cursor of the previous page") from None


@router.get("/v1/usage/daily", summary="Daily usage and charges of a date range (inclusive, UTC days)")
def daily(
    request: Request, who: Who, conn: Conn,
    first: Annotated[date, Query(alias="from", description="first UTC day, YYYY-MM-DD")],
    last: Annotated[date, Query(alias="to", description="last UTC day (inclusive), YYYY-MM-DD")],
) -> dict[str, Any]:
    longest = _service(request).settings.max_range_days
    if last < first:
        raise HTTPException(status_code=400, detail="'to' is before 'from'")
    if last - first >= timedelta(days=longest):
        raise HTTPException(status_code=400, detail=f"a range is at most {longest} days")
    return {"from": first.isoformat(), "to": last.isoformat(), "days": queries.daily_usage(conn, who.org_id, first, last)}


async def _security_headers(request: Request, call_next: Any) -> Response:
    response: Response = await call_next(request)
    headers = response.headers
    headers.setdefault("Content-Security-Policy", API_CSP)
    headers.setdefault("X-Content-Type-Options", "nosniff")
    headers.setdefault("Cache-Control", "no-store")
    headers.setdefault("Referrer-Policy", "no-referrer")
    framed = "text/html" in headers.get("content-type", "") and _service(request).settings.frame_ancestors != ("'none'",)
    if not framed:
        headers.setdefault("X-Frame-Options", "DENY")
    return response


async def _invalid(request: Request, exc: Exception) -> JSONResponse:
    """422 naming the parameter and the rule, never echoing the value sent (no reflected input)."""
    errors = exc.errors() if isinstance(exc, RequestValidationError) else []
    return JSONResponse({"detail": [{"loc": list(e.get("loc", ())), "msg": e.get("msg", ""), "type": e.get("type", "")}
                                    for e in errors]}, status_code=422)


async def _busy(request: Request, exc: Exception) -> JSONResponse:
    return JSONResponse({"detail": "the service is busy, try again"}, status_code=503, headers={"Retry-After": "1"})


def create_app(pool: ConnectionPool, settings: TenantApiSettings | None = None) -> FastAPI:
    """The service over ``pool`` (connections as the tenant API's database role)."""
    settings = settings or TenantApiSettings()
    app = FastAPI(
        title="Rafay billing: tenant statements API",
        version="1",
        description="Read-only: one tenant's issued invoices and credit notes, their line items, and daily "
        "usage and charges. Every route answers for the org of the bearer token only.",
        docs_url=None, redoc_url=None, swagger_ui_oauth2_redirect_url=None,
    )
    app.state.tenant_api = Service(pool, settings, RateLimiter(settings.rate_per_minute, settings.burst),
                                   TokenChecker())
    app.middleware("http")(_security_headers)
    app.add_exception_handler(PoolTimeout, _busy)
    app.add_exception_handler(RequestValidationError, _invalid)
    app.include_router(router)
    return app
