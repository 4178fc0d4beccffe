"""A stub console over real HTTP: a threaded server on 127.0.0.1 that answers every GET with what a
test's function makes of the request, and records each request's path and headers.

Why besides the Rafay simulator: some replies depend on the request itself (a gateway's error page
that echoes the ``x-api-key`` header), which the simulator's faults cannot express.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

Reply = tuple[int, dict[str, str], bytes]
Answer = Callable[[str, dict[str, str]], Reply]
"""``answer(path, headers) -> (status, headers, body)``; ``path`` with its query, header names lower-case."""


@dataclass
class StubConsole:
    url: str
    requests: list[tuple[str, dict[str, str]]] = field(default_factory=list)


@contextmanager
def stub_console(answer: Answer) -> Iterator[StubConsole]:
    """A running stub console whose replies ``answer`` makes; stopped on exit."""
    lock = threading.Lock()
    stub = StubConsole(url="")

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True  # the body right after the headers, not 40 ms later

        def do_GET(self) -> None:
            headers = {name.lower(): value for name, value in self.headers.items()}
            with lock:
                stub.requests.append((self.path, headers))
            status, reply_headers, body = answer(self.path, headers)
            self.send_response(status)
            for name, value in {"Content-Type": "application/json", **reply_headers}.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    stub.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield stub
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
