"""A tiny threaded forward proxy on loopback that records what passes through it.

Plain-http requests (absolute URI in the request line) are forwarded and their headers recorded, so a
test sees exactly what a proxy would read; ``CONNECT host:port`` opens a tunnel whose bytes it relays
without reading them (as a real proxy in front of an https console does). One request per client
connection (``Connection: close``): enough for a client with a pool, which simply reconnects.
"""

from __future__ import annotations

import http.client
import select
import socket
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit


@dataclass
class ProxiedRequest:
    """One request the proxy received: ``CONNECT`` with ``host:port`` (recorded when the tunnel opens;
    ``tunnel_bytes`` grows while it relays), or a forwarded method with its URL."""

    method: str
    target: str
    headers: dict[str, str] = field(default_factory=dict)
    tunnel_bytes: int = 0


class _Handler(BaseHTTPRequestHandler):
    server: _ProxyServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:
        return

    def _record(self) -> ProxiedRequest:
        request = ProxiedRequest(self.command, self.path, dict(self.headers.items()))
        self.server.record(request)
        return request

    def do_GET(self) -> None:
        parts = urlsplit(self.path)
        if parts.scheme != "http" or not parts.hostname:
            self._record()
            self.send_error(400, "a forward proxy needs an absolute http:// URL")
            return
        self._record()
        upstream = http.client.HTTPConnection(parts.hostname, parts.port or 80, timeout=30)
        headers = {k: v for k, v in self.headers.items() if k.lower() not in ("proxy-connection", "connection")}
        try:
            upstream.request(self.command, parts.path + (f"?{parts.query}" if parts.query else ""), headers=headers)
            reply = upstream.getresponse()
            body = reply.read()
        except OSError as exc:
            self.send_error(502, f"upstream failed: {exc}")
            return
        finally:
            upstream.close()
        self.send_response(reply.status, reply.reason)
        for key, value in reply.getheaders():
            if key.lower() not in ("connection", "transfer-encoding", "content-length", "keep-alive"):
                self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)
        self.close_connection = True

    def do_CONNECT(self) -> None:
        host, _, port = self.path.rpartition(":")
        try:
            upstream = socket.create_connection((host.strip("[]"), int(port)), timeout=30)
        except (OSError, ValueError) as exc:
            self._record()
            self.send_error(502, f"cannot reach {self.path}: {exc}")
            return
        record = self._record()
        self.send_response(200, "Connection established")
        self.end_headers()
        self.wfile.flush()
        self._relay(self.connection, upstream, record)
        self.close_connection = True

    def _relay(self, client: socket.socket, upstream: socket.socket, record: ProxiedRequest) -> None:
        try:
            sockets = [client, upstream]
            while True:
                readable, _, broken = select.select(sockets, [], sockets, 30)
                if broken or not readable:
                    return
                for sock in readable:
                    data = sock.recv(65536)
                    if not data:
                        return
                    (upstream if sock is client else client).sendall(data)
                    with self.server.lock:
                        record.tunnel_bytes += len(data)
        except OSError:
            return
        finally:
            upstream.close()


class _ProxyServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.lock = threading.Lock()
        self.log: list[ProxiedRequest] = []

    def record(self, request: ProxiedRequest) -> None:
        with self.lock:
            self.log.append(request)


class ForwardProxy:
    """``with ForwardProxy() as proxy:`` -> ``proxy.url`` (``http://127.0.0.1:<port>``), ``proxy.requests``."""

    def __init__(self) -> None:
        self._server = _ProxyServer()
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="forward-proxy", daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    @property
    def requests(self) -> list[ProxiedRequest]:
        """What the proxy has received so far (copies)."""
        with self._server.lock:
            return [ProxiedRequest(r.method, r.target, dict(r.headers), r.tunnel_bytes) for r in self._server.log]

    def start(self) -> ForwardProxy:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> ForwardProxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
