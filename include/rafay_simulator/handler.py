"""The HTTP side of the simulator: the threading server (TLS per connection) and the request handler.

The handler reads a request, applies latency and faults, asks the routes for the JSON answer and
writes it; it logs each API request (``RequestRecord``) just before the reply goes out.
"""

from __future__ import annotations

import socket
import sys
import time
import traceback
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, unquote

from rafay_simulator.faults import fault_reply
from rafay_simulator.routing import ApiError, to_json

if TYPE_CHECKING:
    from rafay_simulator.server import RafaySimulator


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


def url_host(host: str) -> str:
    return "127.0.0.1" if host in ("", "0.0.0.0") else ("::1" if host == "::" else host)


class SimulatorHTTPServer(ThreadingHTTPServer):
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


class SimulatorHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "RafaySimulator/1.0"
    sys_version = ""
    disable_nagle_algorithm = True
    timeout = 120  # idle keep-alive connections are closed after this
    server: SimulatorHTTPServer

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

    def log_message(self, format: str, *args: Any) -> None:
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
                    raise ApiError(401, "unauthorized", "missing or invalid x-api-key")
                status, value = sim.admin(self.command, "/".join(segments[1:]), body)
                self._send_json(status, value)
            except ApiError as err:
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
        mangle = self._run_faults(sim, raw_path, org)
        if mangle is None:
            return  # a fault replied or dropped the connection
        if sim._stopping.is_set():
            self.close_connection = True
            return
        status, body = self._answer(sim, segments, query, raw_path, org, key_ok)
        if mangle:
            status, body = 200, body[: max(1, len(body) // 2)]
        self._send(status, body, "application/json")

    def _run_faults(self, sim: RafaySimulator, raw_path: str, org: str | None) -> bool | None:
        """Apply the request's faults: None when one of them already replied or dropped the
        connection, else whether the body is to be mangled (``malformed_json``)."""
        mangle = False
        for fault in sim._matching_faults(raw_path, org):
            if fault.kind in ("latency", "slow"):
                sim._sleep(fault.delay_ms)
            elif fault.kind == "drop":
                self._drop()
                return None
            elif fault.kind == "status":
                self._send(*fault_reply(fault))
                return None
            elif fault.kind == "malformed_json":
                mangle = True
        return mangle

    def _drop(self) -> None:
        self._log_request(0)
        self.close_connection = True
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def _answer(self, sim: RafaySimulator, segments: list[str], query: dict[str, str], raw_path: str,
                org: str | None, key_ok: bool) -> tuple[int, bytes]:
        """The routed JSON reply, or the error a real console would send."""
        try:
            if not key_ok:
                raise ApiError(401, "unauthorized", "missing or invalid x-api-key")
            status, value = 200, sim.route(self.command, segments, query, raw_path, org)
        except ApiError as err:
            status, value = err.status, {"error": err.error, "message": err.message}
        except Exception:  # a simulator bug: report it like a real server would, and loudly on stderr
            traceback.print_exc()
            status, value = 500, {"error": "internal", "message": "simulator error"}
        return status, to_json(value).encode()
