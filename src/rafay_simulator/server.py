"""The HTTP server standing in for a customer's Rafay console, with fault injection and a request log.

Built on ``http.server`` (HTTP/1.1 keep-alive, one daemon thread per connection) so it runs in-process
for tests and as ``python -m rafay_simulator`` for the demo, with nothing beyond the standard
library (``cryptography`` only when TLS is asked for).
"""

from __future__ import annotations

import hmac
import json
import re
import shutil
import socket
import sys
import threading
import time
import traceback
from collections import deque
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from decimal import Decimal
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, unquote

from rafay_simulator.dataset import (
    REMOVE,
    Dataset,
    Instance,
    Org,
    Profile,
    RawNumber,
    floor_to_grid,
    format_time,
    hours_2dp,
    stable_uuid,
    usage_display,
)
from rafay_simulator.partner_api import org_listing_item, partner_records, usage_core, usage_parameters

PARTNER_PREFIX = "/apis/billing.envmgmt.io/v1/metrics/partner/instance/kind/"
PARTNER_SEGMENTS = PARTNER_PREFIX.strip("/").split("/")
SEED_FIELDS = ("instance_name", "usage_hours", "status")
REQUEST_LOG_LIMIT = 100_000
LISTING_CHANGE_KINDS = ("insert_head", "remove_head")
FAULT_KINDS = ("latency", "status", "malformed_json", "slow", "drop", *LISTING_CHANGE_KINDS)
_TIME_RE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z")
_DIGITS_RE = re.compile(r"[0-9]{1,12}")
_SURROGATE_RE = re.compile("[\ud800-\udfff]")


@dataclass(frozen=True)
class SimulatorConfig:
    """How the simulated console behaves; every knob exists for a test or the demo.

    Paging variants of real servers: ``max_page_size`` caps every page; ``omit_count`` leaves
    ``count`` out of listing replies; ``echo_requested_limit`` echoes the ``limit`` asked for rather
    than the page size served (with a cap and no count, a client that stops at the first page
    shorter than ``limit`` loses records); ``ignore_paging`` answers like a seed-era server: the
    whole listing every time, whatever ``offset``/``limit`` say, with no paging fields at all.
    ``apis`` says which APIs the console serves (``("v2",)``: a v2-only console; ``("partner",)``: a
    partner-only one, whose ``/v2/...`` answers 404); ``org_listing_ids`` adds each org's partner id
    to the org listing as ``metadata.id``.
    """

    seed: int = 7
    orgs: int = 30
    profiles_per_org: tuple[int, int] = (2, 6)
    instances_per_profile: tuple[int, int] = (1, 8)
    api_key: str = "sim-secret-key"
    latency_ms: int = 0
    max_page_size: int | None = None
    v2_default_limit: int | None = None
    partner_default_limit: int = 10
    seed_fields_only: bool = False
    now: datetime | None = None
    tls: bool = False
    dataset: Dataset | None = None
    anomalies: bool = False
    omit_count: bool = False
    echo_requested_limit: bool = False
    ignore_paging: bool = False
    apis: tuple[str, ...] = ("v2", "partner")
    org_listing_ids: bool = False


@dataclass(frozen=True)
class Fault:
    """A misbehaviour applied to matching requests (``re.search`` on the raw path, optional org).

    ``times`` is how many matching requests it affects (None = all of them).

    ``insert_head`` and ``remove_head`` change a listing while it is paged (data that changes
    between a client's page requests), separately for every listing path the regex matches:
    ``remove_head`` drops the listing's first record after every ``after_pages`` pages served, at
    most ``times`` times (None = until it is empty); ``insert_head`` lists the records without
    their first ``times`` (None = 1) at first, and puts one back at the head after every
    ``after_pages`` pages served. Either shifts every later offset by one: a client that pages on
    regardless reads one record twice (insert) or skips one (remove). Once all changes are done the
    listing holds still, so a client that reads it again from the start gets a consistent copy.
    """

    kind: str
    path_regex: str = ".*"
    times: int | None = None
    status: int = 503
    retry_after: str | int | None = None
    delay_ms: int = 0
    html: bool = False
    org: str | None = None
    after_pages: int = 1

    def __post_init__(self) -> None:
        if self.kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {self.kind!r}; expected one of {FAULT_KINDS}")
        re.compile(self.path_regex)
        if self.times is not None and self.times < 0:
            raise ValueError("times must be None or >= 0")
        if self.after_pages < 1:
            raise ValueError("after_pages must be at least 1")


@dataclass(frozen=True)
class RequestRecord:
    """One API request (admin ``/_sim/`` calls are not logged). The API key is never kept.

    Logged just before the reply is written, so a client that has its reply also finds the record.
    ``status`` is what the simulator sent, 0 when it sent nothing (``drop`` fault, client gone first).
    ``started_at`` is ``time.monotonic()`` when the request was read; ``duration_ms`` runs to the reply.
    """

    method: str
    path: str
    query: dict[str, str]
    status: int
    duration_ms: float
    connection_id: int
    started_at: float
    api_key_ok: bool


class _ActiveFault:
    def __init__(self, fault: Fault) -> None:
        self.fault = fault
        self.pattern = re.compile(fault.path_regex)
        self.remaining = fault.times
        self.listings: dict[str, list[int]] = {}  # listing change kinds: path -> [pages served, changes]

    def matches(self, path: str, org: str | None) -> bool:
        return bool(self.pattern.search(path)) and (self.fault.org is None or self.fault.org == org)

    @property
    def max_changes(self) -> int | None:
        if self.fault.kind == "insert_head":
            return 1 if self.fault.times is None else self.fault.times
        return self.fault.times

    def view(self, path: str, items: list[Any]) -> list[Any]:
        """The listing as this fault has changed it so far."""
        changes = self.listings.get(path, [0, 0])[1]
        if self.fault.kind == "insert_head":
            hidden = (self.max_changes or 0) - changes
            return items[hidden:]
        return items[changes:]

    def page_served(self, path: str) -> None:
        state = self.listings.setdefault(path, [0, 0])
        state[0] += 1
        limit = self.max_changes
        if state[0] % self.fault.after_pages == 0 and (limit is None or state[1] < limit):
            state[1] += 1


class _ApiError(Exception):
    def __init__(self, status: int, error: str, message: str) -> None:
        super().__init__(message)
        self.status, self.error, self.message = status, error, message


# --- JSON with exact decimals ----------------------------------------------------------------


def _decimal_text(value: Decimal) -> str:
    text = format(value.normalize(), "f")
    return "0" if text in ("-0", "0") else text


def to_json(value: Any) -> str:
    """Serialize like ``json.dumps`` but write Decimals as exact JSON numbers (no float artefacts).

    A ``RawNumber`` is written verbatim (``1E+200000`` stays that literal); text with lone
    surrogates (a name given as ``"\\ud800"``) as ``\\u`` escapes, as a real server would send them.
    """
    if isinstance(value, RawNumber):
        return str.__str__(value)
    if isinstance(value, Decimal):
        return _decimal_text(value)
    if isinstance(value, dict):
        return "{" + ", ".join(f"{json.dumps(str(k), ensure_ascii=False)}: {to_json(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(to_json(v) for v in value) + "]"
    if isinstance(value, str) and _SURROGATE_RE.search(value):
        return json.dumps(value)  # a lone surrogate only travels as a \\ud800 escape (not encodable in UTF-8)
    return json.dumps(value, ensure_ascii=False)


def parse_time(value: str | None, name: str) -> datetime:
    """Accept exactly RFC 3339 UTC with second precision and ``Z`` (what the real API documents)."""
    if not value:
        raise _ApiError(400, "bad_request", f"missing required query parameter {name}")
    if not _TIME_RE.fullmatch(value):
        raise _ApiError(400, "bad_request", f"{name} must be RFC 3339 UTC like 2026-11-01T00:00:00Z, got {value!r}")
    try:
        return datetime.strptime(value, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    except ValueError:
        raise _ApiError(400, "bad_request", f"{name} is not a valid time: {value!r}") from None


def _window(query: dict[str, str], start_name: str, end_name: str) -> tuple[datetime, datetime]:
    start = parse_time(query.get(start_name), start_name)
    end = parse_time(query.get(end_name), end_name)
    if end <= start:
        raise _ApiError(400, "bad_request", f"{end_name} must be after {start_name}")
    return start, end


def _int_param(query: dict[str, str], name: str, minimum: int) -> int | None:
    raw = query.get(name)
    if raw is None or raw == "":
        return None
    if not _DIGITS_RE.fullmatch(raw) or int(raw) < minimum:
        raise _ApiError(400, "bad_request", f"{name} must be an integer >= {minimum}, got {raw!r}")
    return int(raw)


# --- the simulator ---------------------------------------------------------------------------


class RafaySimulator:
    """A running (after ``start()``) simulated Rafay console on a loopback port."""

    def __init__(self, config: SimulatorConfig | None = None, host: str = "127.0.0.1", port: int = 0) -> None:
        self.config = config or SimulatorConfig()
        self.dataset: Dataset = self.config.dataset or Dataset.generate(
            self.config.seed,
            self.config.orgs,
            self.config.profiles_per_org,
            self.config.instances_per_profile,
            anomalies=self.config.anomalies,
        )
        self.host, self.port = host, port
        self.ca_bundle: str | None = None
        self._tls_dir: str | None = None
        self._lock = threading.Lock()
        self._faults: list[_ActiveFault] = []
        self._log: deque[RequestRecord] = deque(maxlen=REQUEST_LOG_LIMIT)
        self._in_flight = 0
        self._max_in_flight = 0
        self._connections_opened = 0
        self._next_connection_id = 0
        self._open_sockets: set[socket.socket] = set()
        self._stopping = threading.Event()
        self._httpd: _Server | None = None
        self._thread: threading.Thread | None = None

    # lifecycle

    def start(self) -> RafaySimulator:
        """Bind, then serve on a daemon thread; returns self so ``RafaySimulator(cfg).start()`` reads well."""
        if self._httpd is not None:
            return self
        self._stopping.clear()
        self._httpd = _Server((self.host, self.port), _Handler, self)
        if self.config.tls:
            from rafay_simulator.tls import make_certificates, server_context

            certs = make_certificates(_url_host(self.host))
            self._tls_dir, self.ca_bundle = certs.directory, certs.ca_cert
            self._httpd.ssl_context = server_context(certs)
        self.port = self._httpd.server_address[1]
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                        name=f"rafay-simulator-{self.port}", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop accepting, cut open keep-alive connections and pending fault sleeps, remove TLS files."""
        httpd, self._httpd = self._httpd, None
        if httpd is None:
            return
        self._stopping.set()
        httpd.shutdown()
        httpd.server_close()
        with self._lock:
            sockets = list(self._open_sockets)
        for sock in sockets:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        if self._thread is not None:
            self._thread.join(timeout=5)
        if self._tls_dir:
            shutil.rmtree(self._tls_dir, ignore_errors=True)
            self._tls_dir = None

    def __enter__(self) -> RafaySimulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        """Base URL, e.g. ``http://127.0.0.1:54321`` (``https`` with ``tls``)."""
        scheme = "https" if self.config.tls else "http"
        host = _url_host(self.host)
        if ":" in host:
            host = f"[{host}]"
        return f"{scheme}://{host}:{self.port}"

    @property
    def api_key(self) -> str:
        return self.config.api_key

    # faults and stats

    def add_fault(self, fault: Fault) -> None:
        """Append a fault; faults apply in the order they were added."""
        with self._lock:
            self._faults.append(_ActiveFault(fault))

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    @property
    def faults(self) -> list[dict[str, Any]]:
        """Current faults with how many matches each has left (None = unlimited)."""
        with self._lock:
            return [{**asdict(a.fault), "remaining": a.remaining} for a in self._faults]

    @property
    def requests(self) -> list[RequestRecord]:
        """Snapshot of the request log (oldest first)."""
        with self._lock:
            return list(self._log)

    @property
    def max_in_flight(self) -> int:
        with self._lock:
            return self._max_in_flight

    @property
    def connections_opened(self) -> int:
        with self._lock:
            return self._connections_opened

    def reset_stats(self) -> None:
        """Clear the request log and counters (connection ids keep increasing)."""
        with self._lock:
            self._log.clear()
            self._max_in_flight = self._in_flight
            self._connections_opened = 0

    def now(self) -> datetime:
        """The simulated clock, floored to the 9-second grid."""
        return floor_to_grid(self.config.now if self.config.now is not None else datetime.now(UTC))

    # internals used by the handler

    def _connection_opened(self, sock: socket.socket) -> int:
        with self._lock:
            self._connections_opened += 1
            self._next_connection_id += 1
            self._open_sockets.add(sock)
            return self._next_connection_id

    def _connection_closed(self, sock: socket.socket) -> None:
        with self._lock:
            self._open_sockets.discard(sock)

    def _enter(self) -> None:
        with self._lock:
            self._in_flight += 1
            self._max_in_flight = max(self._max_in_flight, self._in_flight)

    def _leave(self, record: RequestRecord) -> None:
        with self._lock:
            self._in_flight -= 1
            self._log.append(record)

    def _sleep(self, ms: float) -> None:
        if ms > 0:
            self._stopping.wait(ms / 1000)

    def _matching_faults(self, path: str, org: str | None) -> list[Fault]:
        """Consume one use of each matching fault, in order, up to the first terminal one."""
        chosen: list[Fault] = []
        with self._lock:
            for active in self._faults:
                fault = active.fault
                if fault.kind in LISTING_CHANGE_KINDS:
                    continue  # applied to the listing itself, see _page
                if active.remaining == 0 or not active.pattern.search(path):
                    continue
                if fault.org is not None and fault.org != org:
                    continue
                if active.remaining is not None:
                    active.remaining -= 1
                chosen.append(fault)
                if fault.kind in ("status", "malformed_json", "drop"):
                    break
        return chosen

    def _check_key(self, supplied: str | None) -> bool:
        return supplied is not None and hmac.compare_digest(supplied.encode(), self.api_key.encode())

    # --- API ---

    def _page(
        self, query: dict[str, str], items: list[Any], default_limit: int | None, path: str, org: str | None
    ) -> tuple[list[Any], dict]:
        """One page of a listing and its paging fields, as the config's server variant sends them."""
        offset = _int_param(query, "offset", 0) or 0
        limit = _int_param(query, "limit", 1)
        with self._lock:
            changing = [a for a in self._faults if a.fault.kind in LISTING_CHANGE_KINDS and a.matches(path, org)]
            for active in changing:
                items = active.view(path, items)
            for active in changing:
                active.page_served(path)
        if self.config.ignore_paging:
            return items, {}
        size = limit if limit is not None else default_limit
        if self.config.max_page_size is not None:
            size = self.config.max_page_size if size is None else min(size, self.config.max_page_size)
        if size is None:
            page, size = items[offset:], len(items)
        else:
            page = items[offset: offset + size]
        meta = {"count": len(items), "offset": offset, "limit": size}
        if self.config.echo_requested_limit and limit is not None:
            meta["limit"] = limit
        if self.config.omit_count:
            del meta["count"]
        return page, meta

    def _org_or_404(self, org_id: str) -> Org:
        org = self.dataset.org(org_id)
        if org is None:
            raise _ApiError(404, "not_found", f"organization {org_id!r} not found")
        return org

    def route(
        self, method: str, segments: list[str], query: dict[str, str], path: str | None = None,
        fault_org: str | None = None,
    ) -> Any:
        """Answer one authenticated API request with a JSON-able value (raises _ApiError).

        ``path`` (the raw request path) and ``fault_org`` select the listing-change faults that apply.
        """
        path = path if path is not None else "/" + "/".join(segments)
        if segments[:2] == ["v2", "organizations"] and "v2" in self.config.apis:
            rest = segments[2:]
            if method != "GET":
                raise _ApiError(405, "method_not_allowed", f"{method} is not supported here")
            if not rest:
                orgs = [org_listing_item(o, self.config.org_listing_ids) for o in self.dataset.orgs]
                page, meta = self._page(query, orgs, self.config.v2_default_limit, path, fault_org)
                return {"items": page, **meta}
            if len(rest) == 3 and rest[1:] == ["ncp", "profiles"]:
                org = self._org_or_404(rest[0])
                items = [self._profile_item(org, p) for p in org.profiles]
                page, meta = self._page(query, items, self.config.v2_default_limit, path, fault_org)
                return {"items": page, **meta}
            if len(rest) == 5 and rest[1:3] == ["ncp", "profiles"] and rest[4] == "usage":
                org = self._org_or_404(rest[0])
                profile = self.dataset.profile(org.org_id, rest[3])
                if profile is None:
                    raise _ApiError(404, "not_found", f"profile {rest[3]!r} not found in organization {org.org_id!r}")
                start, end = _window(query, "start_time", "end_time")
                records = self._v2_usage(profile, start, end)
                page, meta = self._page(query, records, self.config.v2_default_limit, path, fault_org)
                return {"instance_usage_data": page, **meta}
        if (len(segments) == 9 and segments[:7] == PARTNER_SEGMENTS and segments[8] == "usage"
                and "partner" in self.config.apis):
            if method != "GET":
                raise _ApiError(405, "method_not_allowed", f"{method} is not supported here")
            return self._partner_usage(segments[7], query, path, fault_org)
        raise _ApiError(404, "not_found", "no such endpoint")

    @staticmethod
    def _profile_item(org: Org, profile: Profile) -> dict[str, Any]:
        return {
            "metadata": {"name": profile.name, "id": profile.profile_id or stable_uuid(org.org_id, profile.name)},
            "spec": {"type": profile.type, "variables": [dict(v) for v in profile.spec_variables]},
        }

    @staticmethod
    def _apply_overrides(record: dict[str, Any], instance: Instance, only: tuple[str, ...] | None) -> dict[str, Any]:
        for key, value in instance.record_overrides.items():
            if only is not None and key not in only:
                continue
            if value is REMOVE:
                record.pop(key, None)
            else:
                record[key] = value
        return record

    def _v2_usage(self, profile: Profile, start: datetime, end: datetime) -> list[dict[str, Any]]:
        records = []
        now = self.now()
        for instance, hours, (lo, hi) in usage_core(profile, start, end, now):
            if self.config.seed_fields_only:
                record = {"instance_name": instance.name, "usage_hours": hours_2dp(hours), "status": instance.status(now)}
                records.append(self._apply_overrides(record, instance, SEED_FIELDS))
                continue
            display = usage_display(hours)
            record = {
                "instance_name": instance.name,
                "instance_id": instance.instance_id,
                "status": instance.status(now),
                "usage_hours": hours_2dp(hours),
                "usage": display,
                "raw_usage": hours,
                "start_time": format_time(lo),
                "end_time": format_time(hi),
                "created_at": format_time(instance.created_at),
                "parameters": usage_parameters(profile, instance, hours, display),
            }
            records.append(self._apply_overrides(record, instance, None))
        return records

    def _partner_usage(self, kind: str, query: dict[str, str], path: str, fault_org: str | None) -> dict[str, Any]:
        if kind not in ("compute", "service"):
            raise _ApiError(400, "bad_request", f"kind must be compute or service, got {kind!r}")
        start, end = _window(query, "range_from", "range_to")
        org_filter = query.get("instance_organization_id") or None
        records = partner_records(self.dataset, kind, start, end, self.now(), org_filter,
                                  lambda record, instance: self._apply_overrides(record, instance, None))
        page, meta = self._page(query, records, self.config.partner_default_limit, path, fault_org)
        return {
            "kind": kind,
            "partner_id": self.dataset.partner_id,
            "organization_id": self.dataset.organization_id,
            "instance_usage_data": page,
            **meta,
            "range_from": format_time(start),
            "range_to": format_time(end),
        }

    # --- admin ---

    def admin(self, method: str, name: str, body: bytes) -> tuple[int, Any]:
        """``/_sim/<name>``: drive a simulator running in another process."""
        if name == "faults" and method == "POST":
            try:
                payload = json.loads(body or b"[]")
                items = payload if isinstance(payload, list) else [payload]
                new = [Fault(**item) for item in items]
            except (ValueError, TypeError) as exc:
                raise _ApiError(400, "bad_request", f"invalid fault list: {exc}") from None
            for fault in new:
                self.add_fault(fault)
            return 200, {"faults": len(self.faults)}
        if name == "faults" and method == "DELETE":
            self.clear_faults()
            return 200, {"faults": 0}
        if name == "faults" and method == "GET":
            return 200, self.faults
        if name == "requests" and method == "GET":
            return 200, [asdict(r) for r in self.requests]
        if name == "stats" and method == "GET":
            return 200, {"max_in_flight": self.max_in_flight, "connections_opened": self.connections_opened,
                         "requests": len(self.requests)}
        if name == "reset" and method == "POST":
            self.reset_stats()
            return 200, {"reset": True}
        raise _ApiError(404, "not_found", f"no admin endpoint {method} /_sim/{name}")


def _url_host(host: str) -> str:
    return "127.0.0.1" if host in ("", "0.0.0.0") else ("::1" if host == "::" else host)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], handler: type, sim: RafaySimulator) -> None:
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        self.sim = sim
        self.ssl_context = None
        super().__init__(address, handler)

    def finish_request(self, request: Any, client_address: Any) -> None:
        # The TLS handshake runs here, on the connection's own thread, not in the accept loop.
        if self.ssl_context is not None:
            try:
                request.settimeout(30)
                request = self.ssl_context.wrap_socket(request, server_side=True)
            except OSError:
                return
        self.RequestHandlerClass(request, client_address, self)

    def handle_error(self, request: Any, client_address: Any) -> None:
        exc = sys.exc_info()[1]
        if isinstance(exc, OSError):
            return  # client went away; nothing to report
        super().handle_error(request, client_address)


_NGINX_PAGE = (
    "<html>\r\n<head><title>{code} {phrase}</title></head>\r\n<body>\r\n"
    "<center><h1>{code} {phrase}</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n"
)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "RafaySimulator/1.0"
    sys_version = ""
    disable_nagle_algorithm = True
    timeout = 120  # idle keep-alive connections are closed after this
    server: _Server

    def setup(self) -> None:
        super().setup()
        self.connection_id = self.server.sim._connection_opened(self.connection)

    def finish(self) -> None:
        try:
            super().finish()
        except OSError:
            pass
        finally:
            self.server.sim._connection_closed(self.connection)

    def handle(self) -> None:
        try:
            super().handle()
        except OSError:
            pass  # reset / broken pipe / TLS error: the client is gone

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - signature from the base class
        pass

    def do_GET(self) -> None:
        self._dispatch()

    do_POST = do_PUT = do_PATCH = do_DELETE = do_GET

    def _send(self, status: int, body: bytes, content_type: str, extra: dict[str, str] | None = None) -> None:
        self._log_request(status)  # before any byte goes out, so a client that got a reply finds it logged
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for key, value in (extra or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(body)

    def _send_json(self, status: int, value: Any, extra: dict[str, str] | None = None) -> None:
        self._send(status, to_json(value).encode(), "application/json", extra)

    def _dispatch(self) -> None:
        sim = self.server.sim
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length > 0 else b""
        raw_path, _, raw_query = self.path.partition("?")
        query = dict(parse_qsl(raw_query, keep_blank_values=True))
        segments = [unquote(s) for s in raw_path.strip("/").split("/")] if raw_path.strip("/") else []
        key_ok = sim._check_key(self.headers.get("x-api-key"))

        if segments[:1] == ["_sim"]:
            try:
                if not key_ok:
                    raise _ApiError(401, "unauthorized", "missing or invalid x-api-key")
                status, value = sim.admin(self.command, "/".join(segments[1:]), body)
                self._send_json(status, value)
            except _ApiError as err:
                self._send_json(err.status, {"error": err.error, "message": err.message})
            return

        self._pending = (time.monotonic(), raw_path, query, key_ok)
        sim._enter()
        try:
            self._serve(sim, raw_path, segments, query, key_ok)
        except OSError:
            self.close_connection = True
        finally:
            self._log_request(0)  # no-op when a reply was sent

    _pending: tuple[float, str, dict[str, str], bool] | None = None

    def _log_request(self, status: int) -> None:
        """Close the request's in-flight span and append its record (once; admin calls have none)."""
        if self._pending is None:
            return
        started, raw_path, query, key_ok = self._pending
        self._pending = None
        self.server.sim._leave(RequestRecord(
            method=self.command, path=raw_path, query=query, status=status,
            duration_ms=(time.monotonic() - started) * 1000, connection_id=self.connection_id,
            started_at=started, api_key_ok=key_ok,
        ))

    def _serve(self, sim: RafaySimulator, raw_path: str, segments: list[str], query: dict[str, str],
               key_ok: bool) -> None:
        """Run latency, faults, auth and routing, then reply (or drop the connection)."""
        sim._sleep(sim.config.latency_ms)
        org = segments[2] if segments[:2] == ["v2", "organizations"] and len(segments) > 2 else \
            query.get("instance_organization_id")
        mangle = False
        for fault in sim._matching_faults(raw_path, org):
            if fault.kind in ("latency", "slow"):
                sim._sleep(fault.delay_ms)
            elif fault.kind == "drop":
                self._log_request(0)
                self.close_connection = True
                try:
                    self.connection.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                return
            elif fault.kind == "status":
                self._send_fault_status(fault)
                return
            elif fault.kind == "malformed_json":
                mangle = True
        if sim._stopping.is_set():
            self.close_connection = True
            return
        try:
            if not key_ok:
                raise _ApiError(401, "unauthorized", "missing or invalid x-api-key")
            status, value = 200, sim.route(self.command, segments, query, raw_path, org)
        except _ApiError as err:
            status, value = err.status, {"error": err.error, "message": err.message}
        except Exception:  # a simulator bug: report it like a real server would, and loudly on stderr
            traceback.print_exc()
            status, value = 500, {"error": "internal", "message": "simulator error"}
        body = to_json(value).encode()
        if mangle:
            status, body = 200, body[: max(1, len(body) // 2)]
        self._send(status, body, "application/json")

    def _send_fault_status(self, fault: Fault) -> None:
        extra = {}
        if fault.retry_after is not None:
            extra["Retry-After"] = str(fault.retry_after)
        try:
            phrase = HTTPStatus(fault.status).phrase
        except ValueError:
            phrase = "Error"
        if fault.html:
            body = _NGINX_PAGE.format(code=fault.status, phrase=phrase).encode()
            self._send(fault.status, body, "text/html", extra)
        else:
            error = re.sub(r"[^a-z0-9]+", "_", phrase.lower()).strip("_")
            self._send_json(fault.status, {"error": error, "message": f"{phrase} (injected by the simulator)"}, extra)


__all__ = ["Fault", "RafaySimulator", "RequestRecord", "SimulatorConfig", "to_json"]
