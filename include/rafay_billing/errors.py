"""Every error the core raises, in one place: each message says what failed and what to fix.

The Rafay client's errors come first; the ledger's and the periods' follow. For the client's:

Messages name the HTTP method, the request path (with its query, never the API key, which only
travels in a header), the status and a short excerpt of the body, so an operator reading a task
log or a terminal can act without reproducing the call.
"""

from __future__ import annotations

from typing import Any

AUTH_HINT = "check the API key of connection rafay_default (or RAFAY_DEFAULT_API_KEY)"


class RafayError(Exception):
    """Base class of everything the Rafay client raises.

    ``retry_kind`` is set by the client on failures worth another attempt (``transport``,
    ``rate_limited``, ``gateway``, ``server_error``, ``malformed``), ``retry_after`` to the server's
    ``Retry-After`` seconds; both stay None on permanent failures.
    """

    retry_kind: str | None = None
    retry_after: float | None = None

    def __init__(
        self,
        message: str,
        *,
        method: str | None = None,
        path: str | None = None,
        status: int | None = None,
        excerpt: str | None = None,
    ) -> None:
        super().__init__(message)
        self.method = method
        self.path = path
        self.status = status
        self.excerpt = excerpt

    def reworded(self, message: str) -> RafayError:
        """The same error (its class, request, status and excerpt) saying ``message``: the caller that
        knows the org or profile adds it, without losing what the client recorded."""
        return type(self)(message, method=self.method, path=self.path, status=self.status, excerpt=self.excerpt)


class RafayConfigError(RafayError):
    """The client cannot be built: console URL or API key missing or unusable, or the key would
    travel over plain http to a host that is not this machine."""


class RafayTransportError(RafayError):
    """No usable HTTP reply: connection refused or dropped, TLS failure, timeout (after retries)."""


class RafayHTTPError(RafayError):
    """The server answered with an error status (after retries when the status is transient)."""


class RafayAuthError(RafayHTTPError):
    """401/403: the API key is wrong, expired or lacks Org Admin rights on the Default Org."""


class RafayNotFound(RafayHTTPError):
    """404: unknown organization, profile or endpoint."""


class RafayRateLimited(RafayHTTPError):
    """429 still answered after every retry."""


class RafayServerError(RafayHTTPError):
    """5xx still answered after every retry (or more 500s than the client tolerates)."""


class RafayResponseError(RafayError):
    """A 2xx reply that cannot be used: not JSON, not the expected shape, or paging that never ends."""


class RafayPagingError(RafayResponseError):
    """A listing did not end within the page limit or the server ignored the requested offset."""


class RafayListingInconsistent(RafayPagingError):
    """A listing changed while it was paged (count moved, offsets shifted, records repeated or went
    missing) on every read allowed (``RetryPolicy.listing_reads``): nothing of it can be trusted."""


# --- the ledger, periods and documents ---------------------------------------------------------------


class DatabaseError(RuntimeError):
    """The database cannot be used as asked (bad migration files, a connection in a failed transaction)."""


class WindowError(ValueError):
    """A billing window (or the run conf that asked for it) is unusable; the message says why."""


class CurrencyError(ValueError):
    """A currency code that cannot price anything: not ISO 4217, or without a minor unit."""


class LoadError(RuntimeError):
    """A usage CSV cannot be landed as asked (wrong header, rows for another org or window, bad cells)."""


class PriceBookError(ValueError):
    """The price book CSV is unusable; ``problems`` lists ``(line, message)``, the header being line 1."""

    def __init__(self, problems: list[tuple[int, str]]) -> None:
        self.problems = sorted(problems, key=lambda p: p[0])
        lines = "\n".join(f"  line {line}: {message}" for line, message in self.problems)
        count = len(self.problems)
        super().__init__(f"price book has {count} problem{'s' if count != 1 else ''}:\n{lines}")


class WaiverError(ValueError):
    """A waiver is refused (no reason given, no such exception, already waived); the message says what to check."""


class PeriodNotReady(RuntimeError):
    """The period cannot be closed yet: the message names every missing or failed (org, day) and open
    exception, and what to do about each. ``readiness`` holds the details."""

    def __init__(self, readiness: Any, allow_exceptions: bool) -> None:
        super().__init__(readiness.describe(allow_exceptions=allow_exceptions))
        self.readiness = readiness


class PeriodError(ValueError):
    """A period label, issuer or waiver input is unusable; the message says what to write."""


class DocumentError(ValueError):
    """The documents cannot be written as asked: a bad period label, an open period, or an invoice
    whose stored numbers disagree with its lines."""


class DraftError(RuntimeError):
    """Invoice drafts awaiting approval cannot be acted on as asked; the message says what to do."""


class DraftsRejected(DraftError):
    """The reviewer rejected the drafts: they are discarded and nothing was numbered or issued."""


class DraftsStale(DraftError):
    """What the period carries changed after its drafts were written (or it is no longer ready):
    nothing was issued; the drafts are marked stale and a new close must draft the period again."""


class FocusExportError(ValueError):
    """The export cannot be made as asked (bad period label, format, names or target)."""
