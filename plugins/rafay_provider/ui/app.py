"""The Billing view's FastAPI app (mounted by the api-server under ``/billing``; see ``plugin.py``).

Routes, all behind :func:`rafay_provider.ui.auth.require_user`:

- ``GET /`` the page: a window's totals per (day, org, currency) with their runs, charts (daily charges
  per org over 30 days, GPU-hours per profile), open exceptions, report downloads, invoices per period,
  and one org's contracts (reservation capacity and use per day, the month's contract charges);
- ``GET /api/totals`` the same totals as JSON (paged, searchable);
- ``GET /reports/{name}`` one report file streamed from the landing root (file or s3): the browser
  sees the relative name only.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from typing import Any
from urllib.parse import quote, urlencode

from fastapi import Depends, FastAPI, HTTPException, Query
from fastapi.responses import HTMLResponse, JSONResponse, StreamingResponse
from jinja2 import Environment, PackageLoader, select_autoescape

from rafay_billing.errors import PeriodError
from rafay_billing.period import Period, parse_period
from rafay_provider.settings import BILLING_DAG_ID
from rafay_provider.ui import charts, contracts, formats, links, queries, reports
from rafay_provider.ui.auth import require_user

log = logging.getLogger(__name__)

DAG_ID = BILLING_DAG_ID
UNREACHABLE = (
    "The billing database is unreachable (connection billing_postgres_reader, else billing_postgres). "
    "The api-server log says why; check the connection and that the database is up."
)
MAX_WINDOW_DAYS = 92
CHART_DAYS = 30


@dataclass
class Sources:
    """How the app reaches its data; tests give their own (a DSN, a temp landing root)."""

    conninfo: Callable[[], dict[str, Any]]
    landing_root: Callable[[], Any]
    ui_base_path: Callable[[], str]
    run_states: Callable[[Sequence[str]], dict[str, str]] = field(default=lambda run_ids: {})
    billing_start: Callable[[], date | None] = field(default=lambda: None)


def airflow_sources() -> Sources:
    from rafay_provider.settings import billing_start_date
    from rafay_provider.ui import sources

    return Sources(sources.billing_conninfo, sources.landing_root, sources.ui_base_path, sources.run_states,
                   billing_start_date)


def _environment() -> Environment:
    env = Environment(loader=PackageLoader("rafay_provider.ui", "templates"), autoescape=select_autoescape())
    env.filters["money"] = formats.money
    env.filters["hours"] = formats.hours
    return env


def _parse_day(text: str | None, what: str) -> date | None:
    if not text:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise HTTPException(400, f"{what} must be a date like 2026-11-10, got {text!r}") from None


@contextmanager
def _connect(src: Sources) -> Iterator[Any]:
    """A read-only connection to the billing database; a missing schema or server becomes a 503 that says why."""
    import psycopg

    try:
        with psycopg.connect(**src.conninfo()) as conn:
            conn.read_only = True
            yield conn
    except (psycopg.errors.UndefinedTable, psycopg.errors.InvalidSchemaName):
        raise HTTPException(
            503, "The billing schema is not in the billing database yet: the rafay_usage_billing DAG's "
            "migrate_schema task creates it; run the DAG once.",
        ) from None
    except psycopg.errors.InsufficientPrivilege:
        raise HTTPException(
            503, "The Billing view's database login may not read the billing schema: make it a member of the "
            "billing reader role ([rafay_billing] db_reader_role), then migrate once.",
        ) from None
    except psycopg.OperationalError as exc:
        # The driver's message names the server, port and user: for the api-server log, not the browser.
        log.warning("Billing view: the billing database is unreachable: %s", str(exc).strip())
        raise HTTPException(503, UNREACHABLE) from None


def _window_of(conn: Any, day: str | None, days: int) -> tuple[date, date]:
    first = _parse_day(day, "day") or queries.latest_day(conn) or date.today()
    return first, first + timedelta(days=days)


def _page_data(conn: Any, first: date, end: date, state: dict[str, Any]) -> dict[str, Any]:
    """Everything the page shows that comes from the database."""
    limit = state["limit"]
    chart_first = end - timedelta(days=CHART_DAYS)
    currencies = queries.chart_currencies(conn, chart_first, end)
    currency = state["currency"] if state["currency"] in currencies else (currencies[0] if currencies else "USD")
    state["currency"] = currency
    period_list = queries.periods(conn)
    period = _parse_day(state["period"], "period") or (period_list[0]["period_start"] if period_list else None)
    state["period"] = period.isoformat() if period else ""
    gpu = queries.gpu_hours_by_profile(conn, chart_first, end)
    return {
        "totals": queries.window_totals(conn, first, end, search=state["q"], limit=limit, offset=state["offset"]),
        "per_currency": queries.currency_totals(conn, first, end, search=state["q"]),
        # what needs attention: coverage per (org, day), the window's verdict, the runs
        "coverage": queries.coverage(conn, first, end, search=state["q"], limit=limit, offset=state["coffset"]),
        "summary": queries.coverage_summary(conn, first, end),
        "runs": queries.run_totals(conn, first, end, search=state["q"]),
        "currencies": currencies,
        "daily_svg": charts.daily_stacked_bars(
            queries.daily_charges(conn, end, currency, days=CHART_DAYS, top=state["top"])),
        "gpu_svg": charts.horizontal_bars(gpu, unit="GPU-h", chart_id="chart-gpu", title="GPU-hours per profile"),
        "chart_first": chart_first, "chart_last": end - timedelta(days=1),
        "exceptions": queries.open_exceptions(conn, search=state["eq"], limit=limit, offset=state["eoffset"]),
        "periods": period_list, "period": period,
        "invoices": (queries.invoices(conn, period, search=state["iq"], limit=limit, offset=state["ioffset"])
                     if period else None),
        "drafts": queries.invoice_drafts(conn),
    }


def _contracts_data(conn: Any, first: date, state: dict[str, Any], billing_start: date | None) -> dict[str, Any]:
    """The Contracts section: the orgs with contracts (paged, searchable) and the chosen org's month."""
    try:
        month = parse_period(state["cmonth"]) if state["cmonth"] else Period.containing(first)
    except PeriodError as exc:
        raise HTTPException(400, f"cmonth: {exc}") from None
    state["cmonth"] = month.label
    orgs = contracts.contract_orgs(conn, search=state["cq"], limit=state["limit"], offset=state["cooffset"])
    org_id = state["corg"] or (orgs.rows[0]["org_id"] if orgs.rows else "")
    state["corg"] = org_id
    chosen = contracts.org_contracts(conn, org_id, month, billing_start) if org_id else None
    return {
        "contract_orgs": orgs, "org_contracts": chosen,
        "utilisation_svgs": [charts.utilisation_bars(u) for u in chosen.use] if chosen else [],
    }


def _report_files(src: Sources, first: date, end: date) -> tuple[list[reports.ReportFile], str | None]:
    try:
        return reports.list_reports(src.landing_root(), first, end), None
    except Exception as exc:  # the page stays useful when the landing root is unreachable
        return [], f"{type(exc).__name__}: {exc}"


def _download(src: Sources, name: str) -> StreamingResponse:
    try:
        path = reports.resolve(src.landing_root(), name)
    except reports.ReportPathError as exc:
        raise HTTPException(400, str(exc)) from None
    if not path.exists():
        raise HTTPException(404, f"no report {name!r} under the landing root")
    handle = path.open("rb")

    def chunks() -> Iterator[bytes]:
        with handle:
            while block := handle.read(1 << 16):
                yield block

    file_name = name.rsplit("/", 1)[-1]
    return StreamingResponse(chunks(), media_type="text/csv",
                             headers={"Content-Disposition": f'attachment; filename="{file_name}"'})


def create_app(sources: Sources | None = None) -> FastAPI:
    """The app; ``sources`` defaults to Airflow's ``billing_postgres`` and ``billing_data_uri``."""
    src = sources or airflow_sources()
    env = _environment()
    app = FastAPI(title="Rafay billing", docs_url=None, redoc_url=None, openapi_url=None,
                  dependencies=[Depends(require_user)])

    @app.get("/", response_class=HTMLResponse)
    def page(
        day: str | None = None,
        days: int = Query(1, ge=1, le=MAX_WINDOW_DAYS),
        q: str | None = None,
        offset: int = Query(0, ge=0),
        limit: int = Query(queries.PAGE_SIZE, ge=1, le=queries.MAX_PAGE_SIZE),
        currency: str | None = None,
        top: int = Query(8, ge=1, le=30),
        eq: str | None = None,
        eoffset: int = Query(0, ge=0),
        period: str | None = None,
        iq: str | None = None,
        ioffset: int = Query(0, ge=0),
        coffset: int = Query(0, ge=0),
        corg: str | None = Query(None, max_length=200),
        cmonth: str | None = None,
        cq: str | None = None,
        cooffset: int = Query(0, ge=0),
    ) -> HTMLResponse:
        state: dict[str, Any] = {"days": days, "q": q or "", "offset": offset, "limit": limit,
                                 "currency": currency, "top": top, "eq": eq or "", "eoffset": eoffset,
                                 "period": period or "", "iq": iq or "", "ioffset": ioffset, "coffset": coffset,
                                 "corg": corg or "", "cmonth": cmonth or "", "cq": cq or "", "cooffset": cooffset}
        with _connect(src) as conn:
            first, end = _window_of(conn, day, days)
            state["day"] = first.isoformat()
            data = _page_data(conn, first, end, state)
            data.update(_contracts_data(conn, first, state, src.billing_start()))
        report_files, reports_error = _report_files(src, first, end)
        data["run_states"] = _run_states(src, data)
        data["failed_runs"] = sorted(r for r, st in data["run_states"].items() if st == "failed")

        def link(**changes: Any) -> str:
            merged = {**state, **changes}
            return "?" + urlencode({k: v for k, v in merged.items() if v not in ("", None)})

        base = src.ui_base_path()
        html = env.get_template("billing.html").render(
            first=first, end=end, last=end - timedelta(days=1), days=days, state=state, link=link,
            reports=report_files, reports_error=reports_error, **data,
            run_url=lambda run_id: links.run_path(base, run_id),
            task_url=lambda row: links.task_path(base, row),
            airflow_run=links.airflow_run,
            report_url=lambda name: f"reports/{quote(name, safe='/=')}",
        )
        return HTMLResponse(html)

    @app.get("/api/totals")
    def api_totals(
        day: str | None = None,
        days: int = Query(1, ge=1, le=MAX_WINDOW_DAYS),
        q: str | None = None,
        offset: int = Query(0, ge=0),
        limit: int = Query(queries.PAGE_SIZE, ge=1, le=queries.MAX_PAGE_SIZE),
    ) -> JSONResponse:
        with _connect(src) as conn:
            first, end = _window_of(conn, day, days)
            page_ = queries.window_totals(conn, first, end, search=q, limit=limit, offset=offset)
            per_currency = queries.currency_totals(conn, first, end, search=q)
            summary = queries.coverage_summary(conn, first, end)
        return JSONResponse({
            "window_start": first.isoformat(), "window_end": end.isoformat(),
            "window_clean": summary.clean, "coverage": {**vars(summary), "attention": summary.attention},
            "total_rows": page_.total, "offset": page_.offset, "limit": page_.limit,
            "rows": [_jsonable(r) for r in page_.rows],
            "currency_totals": [_jsonable(r) for r in per_currency],
        })

    @app.get("/reports/{name:path}")
    def download(name: str) -> StreamingResponse:
        return _download(src, name)

    return app


def _run_states(src: Sources, data: dict[str, Any]) -> dict[str, str]:
    """Airflow's state of each run the page names; the page stays useful (states unknown) without it."""
    run_ids = sorted({r["run_id"] for r in data["runs"]} | {r["run_id"] for r in data["coverage"].rows if r["run_id"]})
    try:
        return src.run_states(run_ids)
    except Exception as exc:
        log.warning("Billing view: the runs' states could not be read from Airflow: %s", exc)
        return {}


def _jsonable(row: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in row.items():
        if isinstance(v, Decimal):
            out[k] = str(v)
        elif isinstance(v, date):
            out[k] = v.isoformat()
        else:
            out[k] = v
    return out
