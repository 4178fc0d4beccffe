"""What an answer means: delivered (any 2xx, final), failed (other 4xx and 3xx: permanent, recorded with
the response), or retried (timeouts, connection errors, 5xx and 429) after a backoff that honours
``Retry-After``. Bodies are kept as a bounded excerpt (1 KB): enough to read why, never a whole page."""

from __future__ import annotations

import email.utils
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

EXCERPT_BYTES = 1024
DELIVERED, FAILED, RETRY = "delivered", "failed", "retry"


class DeliveryConfigError(ValueError):
    """The delivery cannot be attempted at all (connection, URL, settings); the message says what to fix."""


@dataclass(frozen=True)
class RetryPolicy:
    """Per document and run: at most ``max_attempts`` requests, waiting ``backoff_seconds`` after the first
    transient failure, doubling up to ``max_backoff_seconds``; a ``Retry-After`` wins when it is longer,
    and one longer than ``max_retry_after_seconds`` leaves the document pending for a later run.
    ``timeout`` is (connect, read) seconds, passed on every request."""

    max_attempts: int = 5
    backoff_seconds: float = 2.0
    max_backoff_seconds: float = 60.0
    max_retry_after_seconds: float = 300.0
    timeout: tuple[float, float] = (10.0, 30.0)

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise DeliveryConfigError(f"max_attempts must be at least 1, got {self.max_attempts}")
        if min(self.backoff_seconds, self.max_backoff_seconds, self.max_retry_after_seconds) < 0:
            raise DeliveryConfigError("backoff and Retry-After limits must be >= 0 seconds")
        if len(self.timeout) != 2 or min(self.timeout) <= 0:
            raise DeliveryConfigError(f"timeout must be (connect, read) seconds > 0, got {self.timeout!r}")

    def delay(self, attempt: int, retry_after: float | None) -> float | None:
        """Seconds to wait after failed attempt number ``attempt`` (1-based); None: not in this run."""
        if attempt >= self.max_attempts:
            return None
        wait = min(self.backoff_seconds * 2 ** (attempt - 1), self.max_backoff_seconds)
        if retry_after is not None:
            if retry_after > self.max_retry_after_seconds:
                return None
            wait = max(wait, retry_after)
        return wait


@dataclass(frozen=True)
class Outcome:
    """One attempt's result, as recorded in ``billing.deliveries``."""

    verdict: str
    status_code: int | None = None
    response: str | None = None
    error: str | None = None
    retry_after: float | None = None

    @property
    def status(self) -> str:
        """The row's status after this attempt (a retried one stays pending)."""
        return "pending" if self.verdict == RETRY else self.verdict

    def describe(self) -> str:
        what = f"HTTP {self.status_code}" if self.status_code is not None else (self.error or "no answer")
        if self.status_code is not None and self.response:
            what += f": {self.response[:200]}"
        return what


def excerpt(text: str | None, limit: int = EXCERPT_BYTES) -> str | None:
    """At most ``limit`` UTF-8 bytes of ``text`` (cut on a character boundary)."""
    if text is None:
        return None
    data = text.encode("utf-8")
    if len(data) <= limit:
        return text
    return data[:limit].decode("utf-8", errors="ignore")


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """``Retry-After`` as seconds from now: delta-seconds or an HTTP-date; None when absent or unreadable."""
    text = (value or "").strip()
    if not text:
        return None
    if text.isdigit():
        return float(text)
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


def classify_response(status_code: int, headers: Any, text: str | None, now: datetime | None = None) -> Outcome:
    """A 2xx delivers; 429 and 5xx are retried (429/503 after their ``Retry-After``); anything else is a
    permanent failure (3xx too: a redirect is not followed, the connection should name the final URL)."""
    body = excerpt(text)
    if 200 <= status_code < 300:
        return Outcome(DELIVERED, status_code, body)
    if status_code == 429 or status_code >= 500:
        return Outcome(RETRY, status_code, body, retry_after=parse_retry_after(headers.get("Retry-After"), now))
    error = "redirects are not followed: set the connection's host to the final URL" if status_code < 400 else None
    return Outcome(FAILED, status_code, body, error=error)


def classify_error(exc: BaseException) -> Outcome | None:
    """Timeouts and connection errors (refused, reset, dropped mid-answer) are retried; None for anything
    else, which is not the network's doing and is raised to the caller."""
    import requests  # the transport's errors (HttpHook is built on requests)

    transient = (requests.Timeout, requests.ConnectionError, requests.exceptions.ChunkedEncodingError)
    if isinstance(exc, transient):
        kind = "timeout" if isinstance(exc, requests.Timeout) else "connection error"
        return Outcome(RETRY, error=excerpt(f"{kind}: {type(exc).__name__}: {exc}"))
    return None
