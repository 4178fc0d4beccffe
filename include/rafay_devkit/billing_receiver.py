"""A provider's billing system on this machine, for ``make demo`` and the delivery tests: a threaded
HTTP server on 127.0.0.1 that verifies every request's signature with :func:`rafay_billing.delivery.signature.verify_signature`, refuses
replays (a signature seen before), deduplicates by ``Idempotency-Key``, and injects faults per document.

Faults are scripted per document id, consumed one per request: ``"500"``/``"503"`` (answer that status),
``"429:<s>"`` (429 with ``Retry-After: <s>``), ``"400"``/``"422"`` (a permanent refusal with a body),
``"timeout"`` (hold the answer past the client's read timeout, storing nothing), ``"slow-ack"`` (store
the document, then hold the answer past the timeout: the acknowledgement is lost), ``"reset"`` (drop the
connection with a TCP reset before storing), ``"reset-ack"`` (store, then reset). With no fault left the
document is stored (first time: 201) or recognised (200, ``duplicate``).
"""

from __future__ import annotations

import hashlib
import json
import socket
import struct
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from rafay_billing.delivery.signature import HEADER, verify_signature


@dataclass
class Seen:
    """One request as the receiver saw it."""

    document_id: str | None
    idempotency_key: str | None
    signature_ok: bool
    answer: str  # the status sent, or the fault that replaced it
    at: float


@dataclass
class Receiver:
    secret: str
    tolerance: float = 300.0
    hold_seconds: float = 2.0
    authorization: str | None = None  # the Authorization header it requires, if any
    faults: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    stored: dict[str, bytes] = field(default_factory=dict)  # document id -> body, stored once
    acknowledgements: dict[str, int] = field(default_factory=lambda: defaultdict(int))  # new stores per id
    requests: list[Seen] = field(default_factory=list)
    bad_signatures: int = 0
    replays: int = 0
    headers_seen: list[dict[str, str]] = field(default_factory=list)
    _signatures: set[str] = field(default_factory=set)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self.server is not None
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}/rafay/documents"

    def stored_sha256(self) -> dict[str, str]:
        return {doc: hashlib.sha256(body).hexdigest() for doc, body in self.stored.items()}

    def fault(self, document_id: str | None) -> str | None:
        with self._lock:
            script = self.faults.get(document_id or "")
            return script.pop(0) if script else None

    def handle(self, handler: BaseHTTPRequestHandler) -> None:
        length = int(handler.headers.get("Content-Length") or 0)
        body = handler.rfile.read(length)
        key = handler.headers.get("Idempotency-Key")
        signature = handler.headers.get(HEADER) or ""
        ok = verify_signature(self.secret, signature, body, time.time(), self.tolerance)
        with self._lock:
            self.headers_seen.append(dict(handler.headers.items()))
        try:
            document_id = json.loads(body)["document_id"]
        except (ValueError, KeyError, TypeError):
            document_id = None

        def seen(answer: str) -> None:
            with self._lock:
                self.requests.append(Seen(document_id, key, ok, answer, time.time()))

        refused = self._refusal(handler, ok, signature, key, document_id)
        if refused is not None:
            seen(refused[0])
            return _answer(handler, refused[1], {"error": refused[2]})
        fault = self.fault(document_id)
        if fault in ("timeout", "reset"):
            seen(fault)
            return _hold(handler, self.hold_seconds) if fault == "timeout" else _reset(handler)
        if fault and fault.split(":")[0].isdigit():
            code, _, after = fault.partition(":")
            seen(code)
            extra = {"Retry-After": after} if after else {}
            return _answer(handler, int(code), {"error": f"injected {code}", "detail": "x" * 3000}, extra)
        self._store(handler, body, document_id, fault, seen)

    def _refusal(self, handler: BaseHTTPRequestHandler, ok: bool, signature: str, key: str | None,
                 document_id: str | None) -> tuple[str, int, str] | None:
        """(what was seen, status, error) for a request a billing system must refuse; None to go on."""
        if self.authorization is not None and handler.headers.get("Authorization") != self.authorization:
            return "401-auth", 401, "missing or wrong Authorization"
        if not ok:
            with self._lock:
                self.bad_signatures += 1
            return "401", 401, "bad signature"
        with self._lock:
            replay = signature in self._signatures
            self._signatures.add(signature)
            if replay:
                self.replays += 1
        if replay:
            return "409-replay", 409, "replayed request"
        if key != document_id:
            return "400-key", 400, "Idempotency-Key is not the document id"
        return None

    def _store(self, handler: BaseHTTPRequestHandler, body: bytes, document_id: str | None, fault: str | None,
               seen: Any) -> None:
        """Store a document once (201), recognise it again (200), refuse another body under its key (422)."""
        with self._lock:
            new = document_id not in self.stored
            if new:
                self.stored[document_id] = body
                self.acknowledgements[document_id] += 1
            same = self.stored[document_id] == body
        if fault in ("slow-ack", "reset-ack"):
            seen(fault)
            return _hold(handler, self.hold_seconds) if fault == "slow-ack" else _reset(handler)
        if not same:
            seen("422-conflict")
            return _answer(handler, 422, {"error": "a different body under the same Idempotency-Key"})
        seen("201" if new else "200")
        return _answer(handler, 201 if new else 200, {"status": "stored" if new else "duplicate", "id": document_id})

    def __enter__(self) -> Receiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                receiver.handle(self)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        class Server(ThreadingHTTPServer):
            daemon_threads = True

            def handle_error(self, request: Any, client_address: Any) -> None:
                pass  # a client that gave up (timeout) makes the late answer fail: expected

        self.server = Server(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True, name="delivery-receiver").start()
        return self

    def __exit__(self, *exc: object) -> None:
        assert self.server is not None
        self.server.shutdown()
        self.server.server_close()


def _answer(handler: BaseHTTPRequestHandler, status: int, payload: dict, headers: dict | None = None) -> None:
    data = json.dumps(payload).encode()
    handler.send_response(status)
    handler.send_header("Content-Type", "application/json")
    handler.send_header("Content-Length", str(len(data)))
    for name, value in (headers or {}).items():
        handler.send_header(name, value)
    handler.end_headers()
    handler.wfile.write(data)


def _hold(handler: BaseHTTPRequestHandler, seconds: float) -> None:
    time.sleep(seconds)
    handler.close_connection = True


def _reset(handler: BaseHTTPRequestHandler) -> None:
    handler.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    handler.close_connection = True
    handler.connection.close()
