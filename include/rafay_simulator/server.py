"""The HTTP server standing in for a customer's Rafay console, with fault injection and a request log.

Built on ``http.server`` (HTTP/1.1 keep-alive, one daemon thread per connection) so it runs in-process
for tests and as ``python -m rafay_simulator`` for the demo, with nothing beyond the standard
library (``cryptography`` only when TLS is asked for).

This module is the simulator's lifecycle, fault list, request log and admin API; the endpoints
live in :mod:`.routing`, the faults in :mod:`.faults`, the socket side in :mod:`.handler` and the
knobs in :mod:`.config`. Their public names are re-exported here.
"""

from __future__ import annotations

import hmac
import json
import shutil
import socket
import threading
from collections import deque
from dataclasses import asdict
from datetime import UTC, datetime
from typing import Any

from rafay_simulator.config import SimulatorConfig
from rafay_simulator.dataset import Dataset, floor_to_grid
from rafay_simulator.faults import FAULT_KINDS, LISTING_CHANGE_KINDS, ActiveFault, Fault, pick_faults
from rafay_simulator.handler import RequestRecord, SimulatorHandler, SimulatorHTTPServer, url_host
from rafay_simulator.routing import PARTNER_PREFIX, ApiError, ApiRoutes, parse_time, to_json

REQUEST_LOG_LIMIT = 100_000


class RafaySimulator(ApiRoutes):
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
        self.client_cert: str | None = None
        self.client_key: str | None = None
        self._tls_dir: str | None = None
        self._lock = threading.Lock()
        self._faults: list[ActiveFault] = []
        self._log: deque[RequestRecord] = deque(maxlen=REQUEST_LOG_LIMIT)
        self._in_flight = 0
        self._max_in_flight = 0
        self._connections_opened = 0
        self._next_connection_id = 0
        self._open_sockets: set[socket.socket] = set()
        self._stopping = threading.Event()
        self._release = threading.Event()  # ends the fault delays in progress; see release_delays()
        self._httpd: SimulatorHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # lifecycle

    def start(self) -> RafaySimulator:
        """Bind, then serve on a daemon thread; returns self so ``RafaySimulator(cfg).start()`` reads well."""
        if self._httpd is not None:
            return self
        self._stopping.clear()
        self._release = threading.Event()
        self._httpd = SimulatorHTTPServer((self.host, self.port), SimulatorHandler, self)
        if self.config.tls:
            from rafay_simulator.tls import make_certificates, server_context

            certs = make_certificates(url_host(self.host))
            self._tls_dir, self.ca_bundle = certs.directory, certs.ca_cert
            self.client_cert, self.client_key = certs.client_cert, certs.client_key
            self._httpd.ssl_context = server_context(certs, require_client_cert=self.config.client_cert)
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
        self._release.set()
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
        host = url_host(self.host)
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
            self._faults.append(ActiveFault(fault))

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

    def release_delays(self) -> None:
        """End the fault delays (``latency``, ``slow``) in progress now: their requests are answered at
        once, as if the delay had run out; delays that start later run in full. Why: a test that holds
        one request while something else happens need not wait out a delay chosen to outlast that."""
        with self._lock:
            release, self._release = self._release, threading.Event()
        release.set()

    def _sleep(self, ms: float) -> None:
        if ms > 0:
            with self._lock:
                release = self._release
            release.wait(ms / 1000)  # set by release_delays() or stop()

    def _matching_faults(self, path: str, org: str | None) -> list[Fault]:
        """Consume one use of each matching request fault, in order, up to the first terminal one."""
        with self._lock:
            return pick_faults(self._faults, path, org)

    def _listing_view(self, path: str, org: str | None, items: list[Any]) -> list[Any]:
        """The listing as its listing-change faults have changed it; counts the page as served."""
        with self._lock:
            changing = [a for a in self._faults if a.fault.kind in LISTING_CHANGE_KINDS and a.matches(path, org)]
            for active in changing:
                items = active.view(path, items)
            for active in changing:
                active.page_served(path)
        return items

    def _check_key(self, supplied: str | None) -> bool:
        return supplied is not None and hmac.compare_digest(supplied.encode(), self.api_key.encode())

    # --- admin ---

    def admin(self, method: str, name: str, body: bytes) -> tuple[int, Any]:
        """``/_sim/<name>``: drive a simulator running in another process."""
        if name == "faults" and method == "POST":
            try:
                payload = json.loads(body or b"[]")
                items = payload if isinstance(payload, list) else [payload]
                new = [Fault(**item) for item in items]
            except (ValueError, TypeError) as exc:
                raise ApiError(400, "bad_request", f"invalid fault list: {exc}") from None
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
        raise ApiError(404, "not_found", f"no admin endpoint {method} /_sim/{name}")


__all__ = [
    "FAULT_KINDS",
    "LISTING_CHANGE_KINDS",
    "PARTNER_PREFIX",
    "ApiError",
    "Fault",
    "RafaySimulator",
    "RequestRecord",
    "SimulatorConfig",
    "parse_time",
    "to_json",
]
