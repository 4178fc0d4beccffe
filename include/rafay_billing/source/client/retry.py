"""The typed retry policy and the tenacity loop that applies it to one request.

Each failure of an attempt is marked with a *retry kind* (``transport``, ``rate_limited``,
``gateway``, ``server_error``, ``malformed``) or none (permanent: bad key, unknown org). The loop
retries marked failures within the policy's bounds, honours ``Retry-After`` and says in the final
error how many attempts it made.

The first attempt runs without tenacity, which is imported (and its loop built) only once an
attempt has failed: most requests succeed first time, and tenacity's import (it pulls in asyncio
and tornado when installed) was a tenth of ``rafay-billing metrics``'s start-up.
"""

from __future__ import annotations

import email.utils
import logging
import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, TypeVar

from rafay_billing import settings as defaults
from rafay_billing.errors import RafayError

if TYPE_CHECKING:
    from tenacity import RetryCallState, Retrying

log = logging.getLogger("rafay_billing.source.client")

T = TypeVar("T")


@dataclass(frozen=True)
class RetryPolicy:
    """How hard to try before giving up on one request.

    ``attempts`` bounds every request; within it, HTTP 500 (often a real bug, not a blip) is retried
    at most ``server_error_retries`` times and a malformed body ``malformed_retries`` times. Waits
    grow exponentially with jitter (so parallel readers don't retry in lockstep); a ``Retry-After``
    header replaces the computed wait, capped at ``retry_after_max`` seconds.

    ``listing_reads`` bounds how often one listing is read from the start (all reads included)
    when it changes while it is paged, before the client gives up with
    :class:`~rafay_billing.errors.RafayListingInconsistent`.
    """

    attempts: int = defaults.MAX_RETRIES
    backoff_initial: float = 0.5
    backoff_max: float = 20.0
    jitter: float = 0.5
    retry_after_max: float = 60.0
    server_error_retries: int = 2
    malformed_retries: int = 1
    listing_reads: int = defaults.LISTING_READS


class AttemptState:
    """Per-request bookkeeping shared by the attempt function and the retry predicate."""

    def __init__(self) -> None:
        self.server_errors = 0
        self.malformed = 0


def mark(exc: RafayError, kind: str | None, retry_after: float | None = None) -> RafayError:
    """Tag ``exc`` as retryable (``kind``), optionally with the server's ``Retry-After`` seconds."""
    exc.retry_kind = kind
    exc.retry_after = retry_after
    return exc


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """``Retry-After`` as seconds to wait: a number of seconds or an HTTP-date; None if unusable."""
    if not value:
        return None
    text = value.strip()
    try:
        seconds = float(text)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError):
            return None
        if when is None:
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - (now or datetime.now(UTC))).total_seconds()
    if math.isnan(seconds):
        return None
    return max(0.0, seconds)


def short(exc: BaseException | None) -> str:
    """An exception's message, cut to 300 characters for log lines and error texts."""
    if exc is None:
        return "?"
    text = str(exc.args[0]) if exc.args else exc.__class__.__name__
    return text if len(text) <= 300 else text[:299] + "…"


def _failure(rs: RetryCallState) -> BaseException | None:
    return rs.outcome.exception() if rs.outcome else None


def _retrying(
    policy: RetryPolicy,
    state: AttemptState,
    *,
    target: str,
    sleep: Callable[[float], None],
    on_retry: Callable[[], None],
) -> Retrying:
    # imported only after a failure (see the module's docstring)
    from tenacity import Retrying, stop_after_attempt, wait_exponential_jitter

    backoff = wait_exponential_jitter(initial=policy.backoff_initial, max=policy.backoff_max, jitter=policy.jitter)

    def should_retry(rs: RetryCallState) -> bool:
        kind = getattr(_failure(rs), "retry_kind", None)
        if kind == "server_error":
            return state.server_errors <= policy.server_error_retries
        if kind == "malformed":
            return state.malformed <= policy.malformed_retries
        return kind is not None

    def wait(rs: RetryCallState) -> float:
        retry_after = getattr(_failure(rs), "retry_after", None)
        if retry_after is not None:
            return min(float(retry_after), policy.retry_after_max)
        return backoff(rs)

    def before_sleep(rs: RetryCallState) -> None:
        on_retry()
        delay = rs.next_action.sleep if rs.next_action else 0.0
        log.info("GET %s failed (%s); retry %d in %.2f s", target, short(_failure(rs)), rs.attempt_number, delay)

    return Retrying(
        stop=stop_after_attempt(max(1, policy.attempts)),
        wait=wait,
        retry=should_retry,
        sleep=sleep,
        before_sleep=before_sleep,
        reraise=True,
    )


def call_with_retries(
    attempt: Callable[[AttemptState], T],
    policy: RetryPolicy,
    *,
    target: str,
    sleep: Callable[[float], None],
    on_retry: Callable[[], None],
) -> T:
    """Run ``attempt`` until it succeeds or ``policy`` says stop; the final error names the attempts made.

    The first attempt is made directly; only its failure builds the tenacity loop, which is handed
    that failure as its own first attempt, so the policy applies exactly as if tenacity had made it.
    """
    state = AttemptState()
    try:
        return attempt(state)
    except RafayError as exc:
        first: RafayError = exc
    retrying = _retrying(policy, state, target=target, sleep=sleep, on_retry=on_retry)
    attempts = 0

    def counted() -> T:
        nonlocal attempts
        attempts += 1
        if attempts == 1:
            raise first
        return attempt(state)

    try:
        return retrying(counted)
    except RafayError as exc:
        if attempts > 1:
            exc.args = (f"{exc.args[0]} (gave up after {attempts} attempts)",)
        raise
