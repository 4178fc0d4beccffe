"""Errors raised by the Rafay client: each message says what failed and what to fix.

Messages name the HTTP method, the request path (with its query, never the API key, which only
travels in a header), the status and a short excerpt of the body, so an operator reading a task
log or a terminal can act without reproducing the call.
"""

from __future__ import annotations

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
