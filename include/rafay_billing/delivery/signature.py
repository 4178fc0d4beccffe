"""The request signature: ``X-Rafay-Billing-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256>``.

``v1`` is HMAC-SHA256 keyed with the connection's secret over ``f"{t}.{body}"`` (the body's exact bytes,
UTF-8 JSON). A receiver recomputes it, compares in constant time and refuses a timestamp outside its
tolerance, so a captured request cannot be replayed later; remembering the signatures it has accepted
within the tolerance (or the ``Idempotency-Key``) refuses one replayed at once.
Standard library only: :func:`verify_signature` can be copied into a receiver as it is.
"""

from __future__ import annotations

import hashlib
import hmac

HEADER = "X-Rafay-Billing-Signature"
DEFAULT_TOLERANCE_SECONDS = 300


def sign(secret: str, body: bytes, timestamp: int) -> str:
    """The header value for ``body`` sent at ``timestamp`` (unix seconds)."""
    digest = hmac.new(secret.encode("utf-8"), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def verify_signature(secret: str, header: str, body: bytes, now: float,
                     tolerance: float = DEFAULT_TOLERANCE_SECONDS) -> bool:
    """True when ``header`` signs ``body`` with ``secret`` and its timestamp is within ``tolerance``
    seconds of ``now``. Any ``v1`` may match (several are allowed while a secret is rotated)."""
    parts: dict[str, list[str]] = {}
    for item in (header or "").split(","):
        key, sep, value = item.strip().partition("=")
        if sep:
            parts.setdefault(key, []).append(value)
    try:
        timestamp = int(parts["t"][0])
    except (KeyError, ValueError):
        return False
    if abs(now - timestamp) > tolerance:
        return False
    expected = hmac.new(secret.encode("utf-8"), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return any(hmac.compare_digest(expected, candidate) for candidate in parts.get("v1", []))
