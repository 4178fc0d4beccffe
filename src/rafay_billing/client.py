"""``RafayClient``: the Airflow-free HTTP client for Rafay's usage metering APIs.

Why its own client rather than ``requests.get`` per call (the blog script) or Airflow's HttpHook:
billing reads hundreds of listings per night, so it needs one pooled session, timeouts on every
request, retries that tell transient failures (429, gateway errors, dropped connections) from
permanent ones (bad key, unknown org), listings that follow ``offset``/``limit``/``count`` to the
end without trusting the server to behave, and exact decimals for hours. It imports no Airflow:
the ``rafay-billing`` command uses it directly, the Airflow hook wraps it.

Offset paging over data that changes between pages silently repeats or skips records, so every
listing read is checked for consistency and read again from the start when it changed (see
``RafayClient._entries``); a listing that never reads consistently is an error, never half a listing.

The API key only ever travels in the ``x-api-key`` header, over https or to this machine (plain
http elsewhere only when explicitly allowed); it is never logged and is scrubbed from any text
(error excerpts) that could echo it.
"""

from __future__ import annotations

import email.utils
import hashlib
import ipaddress
import json
import logging
import math
import re
import threading
import time
from collections.abc import Callable, Generator, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, NamedTuple
from urllib.parse import quote, urlencode, urlsplit

import requests
from requests.adapters import HTTPAdapter
from tenacity import RetryCallState, Retrying, stop_after_attempt, wait_exponential_jitter

from rafay_billing.errors import (
    AUTH_HINT,
    RafayAuthError,
    RafayConfigError,
    RafayError,
    RafayHTTPError,
    RafayListingInconsistent,
    RafayNotFound,
    RafayPagingError,
    RafayRateLimited,
    RafayResponseError,
    RafayServerError,
    RafayTransportError,
)
from rafay_billing.window import Window

log = logging.getLogger(__name__)

PageHook = Callable[[str, str, int, bytes], None]
"""``on_page(kind, key, page_no, body)``: called with every raw listing page, e.g. to land it for audit.

``kind`` is ``orgs``, ``profiles``, ``usage`` or ``partner-<compute|service>``; ``key`` tells the
listing apart within its kind: ``""`` for orgs, the org id for profiles, the profile name for usage
(the caller knows the org), the org id or ``""`` for partner usage. ``page_no`` counts from 0 and
starts at 0 again when a listing is read again from the start (see ``ListingRestart``), so pages
landed under ``rafay_billing.paths.page_file_name`` are replaced by the read that was used.
"""

PARTNER_KINDS = ("compute", "service")
PARTNER_USAGE_PATH = "/apis/billing.envmgmt.io/v1/metrics/partner/instance/kind/{kind}/usage"
_EXCERPT_CHARS = 200
_PAGING_FIELDS = ("count", "offset", "limit")
_MAX_INT_DIGITS = 4000  # below Python's int-from-text limit (4300); longer integers parse as Decimal
_TAGS = re.compile(r"<[^>]*>")
_SPACE = re.compile(r"\s+")


# --- configuration ---------------------------------------------------------------------------


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

    attempts: int = 5
    backoff_initial: float = 0.5
    backoff_max: float = 20.0
    jitter: float = 0.5
    retry_after_max: float = 60.0
    server_error_retries: int = 2
    malformed_retries: int = 1
    listing_reads: int = 3


def normalize_base_url(value: str) -> str:
    """Console URL -> base URL: a bare domain means https; a URL with a scheme is kept as given.

    Plain http is used only when the value says ``http://`` (a local simulator); any other scheme,
    or a value with spaces, is a configuration error rather than a surprising request.
    """
    text = (value or "").strip()
    if not text:
        raise RafayConfigError(
            "no Rafay console URL: set the host of connection rafay_default or RAFAY_CONSOLE_URL "
            "(a domain like rafay.acme.com, or a base URL like http://127.0.0.1:8080)"
        )
    if "://" not in text:
        text = "https://" + text
    parts = urlsplit(text)
    if parts.scheme.lower() not in ("http", "https"):
        raise RafayConfigError(f"Rafay console URL must be http(s), got scheme {parts.scheme!r} in {value!r}")
    if not parts.hostname or any(c.isspace() for c in text):
        raise RafayConfigError(f"Rafay console URL {value!r} is not a valid domain or base URL")
    if parts.query or parts.fragment:
        raise RafayConfigError(f"Rafay console URL {value!r} must not carry a query or fragment")
    return f"{parts.scheme.lower()}://{parts.netloc}{parts.path.rstrip('/')}"


def _check_api_key(api_key: str | None) -> str:
    key = (api_key or "").strip()
    if not key:
        raise RafayConfigError(
            "no Rafay API key: set the password of connection rafay_default or RAFAY_DEFAULT_API_KEY"
        )
    if any(ord(c) < 0x20 or ord(c) == 0x7F or ord(c) > 0xFF for c in key):
        # Never echo the key: requests' own InvalidHeader message would.
        raise RafayConfigError("the Rafay API key contains characters that cannot be sent in an HTTP header")
    return key


INSECURE_HTTP_HINT = (
    "allow it explicitly if that host really only serves http: connection extra "
    "allow_insecure_http: true, rafay-billing metrics --allow-insecure-http (or "
    "RAFAY_ALLOW_INSECURE_HTTP=1), RafayClient(allow_insecure_http=True)"
)


def is_loopback_host(host: str | None) -> bool:
    """``localhost``, 127.0.0.0/8 or ::1 (also IPv4-mapped): hosts where the key never leaves the machine."""
    if not host:
        return False
    name = host.strip("[]").rstrip(".").lower()
    if name == "localhost":
        return True
    try:
        address = ipaddress.ip_address(name.split("%", 1)[0])
    except ValueError:
        return False
    mapped = getattr(address, "ipv4_mapped", None)
    return address.is_loopback or bool(mapped and mapped.is_loopback)


def check_key_transport(base_url: str, allow_insecure_http: bool = False) -> None:
    """Refuse to send the API key in clear text over the network: plain http only to loopback hosts.

    The key is a Default Org admin credential; anyone on the path of a plain http request can copy
    it. ``allow_insecure_http`` is the explicit opt-out (a test console on a private network).
    """
    parts = urlsplit(base_url)
    if parts.scheme != "http" or is_loopback_host(parts.hostname):
        return
    if allow_insecure_http:
        log.warning("The Rafay API key is sent unencrypted (plain http) to %s: allowed explicitly", parts.hostname)
        return
    raise RafayConfigError(
        f"refusing to send the Rafay API key over plain http to {parts.hostname}: use "
        f"https://{parts.netloc.rsplit('@', 1)[-1]} (a bare domain means https), or "
        f"{INSECURE_HTTP_HINT}. Plain http is allowed without asking only to loopback hosts "
        "(127.0.0.0/8, ::1, localhost)"
    )


def encode_segment(segment: str) -> str:
    """Percent-encode one path segment: org and profile names may contain ``/``, ``?``, ``#``, spaces.

    ``.`` and ``..`` are encoded too (``%2E``), since HTTP libraries collapse them as dot segments.
    """
    text = str(segment)
    if text and set(text) == {"."}:
        return "%2E" * len(text)
    return quote(text, safe="")


# --- listing entries -------------------------------------------------------------------------


class PagedItem(NamedTuple):
    """One listing entry and where it came from: ``page_no`` (from 0 in its read) and ``index``
    (0-based position in that page's items array), so a row can name the raw page it came from."""

    page_no: int
    index: int
    item: dict


@dataclass(frozen=True)
class ListingRestart:
    """Yielded by the ``*_entries`` iterators when a listing is read again from the start.

    Everything received before it came from a read that turned out inconsistent: discard it.
    ``read`` is the read that starts now (2, 3, ...), ``reason`` what was wrong with the last one.
    """

    read: int
    reason: str


ListingEntry = PagedItem | ListingRestart


@dataclass(frozen=True)
class _Listing:
    """One listing to read: ``what`` names it in messages (``profiles of org coke``)."""

    kind: str
    key: str
    path: str
    items_field: str
    what: str
    params: dict[str, Any] = field(default_factory=dict)


@dataclass
class _Read:
    """What one read from the start found: the first inconsistency and a digest of the item sequence.

    ``digest`` is None when the read was cut short (it can then not vouch for the listing).
    """

    problem: str | None = None
    digest: bytes | None = None
    total: int = 0

    def note(self, problem: str) -> None:
        if self.problem is None:
            self.problem = problem


def _fingerprint(item: dict) -> int:
    """Identity of a record's JSON within one process (``repr`` keeps key order and Decimal text)."""
    return hash(repr(item))


def _json_int(text: str) -> int | Decimal:
    """JSON integers as int, except absurdly long ones (Python refuses those): Decimal, never an error."""
    return int(text) if len(text) <= _MAX_INT_DIGITS else Decimal(text)


# --- statistics ------------------------------------------------------------------------------


@dataclass(frozen=True)
class StatsSnapshot:
    requests: int
    pages: int
    retries: int
    p50_ms: float | None
    p95_ms: float | None


def percentile(values: list[float], pct: float) -> float | None:
    """Nearest-rank percentile (no interpolation: a reported p95 is a latency that happened)."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(pct / 100 * len(ordered)))
    return ordered[rank - 1]


class ClientStats:
    """Thread-safe counters: HTTP requests (every attempt), listing pages, retries, latencies."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._requests = 0
        self._pages = 0
        self._retries = 0
        self._latencies: list[float] = []

    def add_request(self, ms: float) -> None:
        with self._lock:
            self._requests += 1
            self._latencies.append(ms)

    def add_page(self) -> None:
        with self._lock:
            self._pages += 1

    def add_retry(self) -> None:
        with self._lock:
            self._retries += 1

    def snapshot(self) -> StatsSnapshot:
        with self._lock:
            latencies = list(self._latencies)
            return StatsSnapshot(
                self._requests, self._pages, self._retries, percentile(latencies, 50), percentile(latencies, 95)
            )


# --- failures of one attempt -----------------------------------------------------------------


class _Attempt:
    """Per-request bookkeeping shared by the attempt function and the retry predicate."""

    def __init__(self) -> None:
        self.server_errors = 0
        self.malformed = 0


def _retry_kind(exc: BaseException) -> str | None:
    return getattr(exc, "retry_kind", None)


def _mark(exc: RafayError, kind: str | None, retry_after: float | None = None) -> RafayError:
    exc.retry_kind = kind  # type: ignore[attr-defined]
    exc.retry_after = retry_after  # type: ignore[attr-defined]
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


# --- the client ------------------------------------------------------------------------------


class RafayClient:
    """Reads Rafay's organizations, profiles and usage; one pooled session, bounded concurrency.

    At most ``concurrency`` requests are in flight at once across all threads using the client
    (the connection pool has the same size), so callers may fan out freely with thread pools.
    """

    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        verify: bool | str = True,
        connect_timeout: float = 10.0,
        read_timeout: float = 90.0,
        retry: RetryPolicy | None = None,
        page_size: int = 100,
        max_pages: int = 10_000,
        concurrency: int = 8,
        on_page: PageHook | None = None,
        auth_hint: str = AUTH_HINT,
        sleep: Callable[[float], None] = time.sleep,
        allow_insecure_http: bool = False,
    ) -> None:
        self.base_url = normalize_base_url(base_url)
        self._api_key = _check_api_key(api_key)
        check_key_transport(self.base_url, allow_insecure_http)
        if verify is False:
            log.warning("TLS certificate verification is OFF for %s", self.base_url)
        if page_size < 1 or max_pages < 1 or concurrency < 1:
            raise RafayConfigError("page_size, max_pages and concurrency must be at least 1")
        if retry is not None and retry.listing_reads < 1:
            raise RafayConfigError("listing_reads must be at least 1 (the first read counts)")
        if connect_timeout <= 0 or read_timeout <= 0:
            raise RafayConfigError("connect_timeout and read_timeout must be positive seconds")
        self.verify = verify
        self.timeout = (float(connect_timeout), float(read_timeout))
        self.retry = retry or RetryPolicy()
        self.page_size = int(page_size)
        self.max_pages = int(max_pages)
        self.concurrency = int(concurrency)
        self.on_page = on_page
        self.auth_hint = auth_hint
        self.stats = ClientStats()
        self._sleep = sleep
        self._slots = threading.BoundedSemaphore(self.concurrency)
        self._session = requests.Session()
        adapter = HTTPAdapter(pool_connections=1, pool_maxsize=self.concurrency, max_retries=0)
        self._session.mount("https://", adapter)
        self._session.mount("http://", adapter)
        self._session.headers.update(
            {"x-api-key": self._api_key, "accept": "application/json", "user-agent": "rafay-billing/0.1"}
        )
        # Proxies and CA settings from the environment, resolved once for the one host we talk to.
        self._send_kwargs = self._session.merge_environment_settings(self.base_url, {}, False, verify, None)

    def __repr__(self) -> str:  # never shows the key
        return f"RafayClient({self.base_url!r}, concurrency={self.concurrency})"

    def close(self) -> None:
        self._session.close()

    def __enter__(self) -> RafayClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- public reads --------------------------------------------------------------------------
    #
    # ``iter_*`` return plain dicts of a consistent read (the listing is buffered until it has been
    # read consistently); ``*_entries`` stream ``PagedItem``s as pages arrive, with a
    # ``ListingRestart`` whenever the listing is read again, for consumers that can discard.

    def iter_organizations(
        self, *, on_page: PageHook | None = None, stats: ClientStats | None = None
    ) -> Iterator[dict]:
        """Organizations visible to the key: ``{"name": display, "metadata": {"name": org_id}, ...}``."""
        return self._consistent(self._orgs_listing(), on_page, stats)

    def iter_profiles(
        self, org_id: str, *, on_page: PageHook | None = None, stats: ClientStats | None = None
    ) -> Iterator[dict]:
        """NCP profiles (SKUs) of an org: ``{"metadata": {"name": ...}, "spec": {"type": ...}}``."""
        return self._consistent(self._profiles_listing(org_id), on_page, stats)

    def iter_profile_usage(
        self,
        org_id: str,
        profile: str,
        window: Window,
        *,
        on_page: PageHook | None = None,
        stats: ClientStats | None = None,
    ) -> Iterator[dict]:
        """Per-instance usage records of one profile for ``window`` (v2 API, as the seed script reads).

        Buffers the listing until it has read consistently; stream big listings with
        :meth:`profile_usage_entries` instead.
        """
        return self._consistent(self._usage_listing(org_id, profile, window), on_page, stats)

    def profile_usage_entries(
        self,
        org_id: str,
        profile: str,
        window: Window,
        *,
        on_page: PageHook | None = None,
        stats: ClientStats | None = None,
    ) -> Iterator[ListingEntry]:
        """:meth:`iter_profile_usage` as it arrives: ``PagedItem``s, and a ``ListingRestart`` before
        each re-read (discard what came before it). Memory stays at one page."""
        return self._entries(self._usage_listing(org_id, profile, window), on_page, stats)

    def iter_partner_usage(
        self,
        kind: str,
        window: Window,
        org_id: str | None = None,
        *,
        on_page: PageHook | None = None,
        stats: ClientStats | None = None,
    ) -> Iterator[dict]:
        """Usage records of every org (or one) from the partner billing metrics API, one listing (buffered)."""
        return self._consistent(self._partner_listing(kind, window, org_id), on_page, stats)

    def partner_usage_entries(
        self,
        kind: str,
        window: Window,
        org_id: str | None = None,
        *,
        on_page: PageHook | None = None,
        stats: ClientStats | None = None,
    ) -> Iterator[ListingEntry]:
        """:meth:`iter_partner_usage` as it arrives, like :meth:`profile_usage_entries`."""
        return self._entries(self._partner_listing(kind, window, org_id), on_page, stats)

    def get_json(self, path: str, params: Mapping[str, Any] | None = None) -> Any:
        """One GET with retries; ``path`` must already be percent-encoded (see ``encode_segment``)."""
        data, _ = self._get(path, dict(params or {}), None)
        return data

    # -- the listings --------------------------------------------------------------------------

    @staticmethod
    def _orgs_listing() -> _Listing:
        return _Listing("orgs", "", "/v2/organizations", "items", "the organization listing")

    @staticmethod
    def _profiles_listing(org_id: str) -> _Listing:
        path = f"/v2/organizations/{encode_segment(org_id)}/ncp/profiles"
        return _Listing("profiles", org_id, path, "items", f"the profile listing of org {org_id}")

    @staticmethod
    def _usage_listing(org_id: str, profile: str, window: Window) -> _Listing:
        path = f"/v2/organizations/{encode_segment(org_id)}/ncp/profiles/{encode_segment(profile)}/usage"
        params = {"start_time": window.start_iso, "end_time": window.end_iso}
        what = f"the usage listing of profile {profile} in org {org_id}"
        return _Listing("usage", profile, path, "instance_usage_data", what, params)

    @staticmethod
    def _partner_listing(kind: str, window: Window, org_id: str | None) -> _Listing:
        if kind not in PARTNER_KINDS:
            raise ValueError(f"partner usage kind must be one of {PARTNER_KINDS}, got {kind!r}")
        params = {"range_from": window.start_iso, "range_to": window.end_iso}
        if org_id:
            params["instance_organization_id"] = org_id
        what = f"the partner {kind} usage listing" + (f" of org {org_id}" if org_id else "")
        path = PARTNER_USAGE_PATH.format(kind=kind)
        return _Listing(f"partner-{kind}", org_id or "", path, "instance_usage_data", what, params)

    # -- paging --------------------------------------------------------------------------------

    def _consistent(self, listing: _Listing, on_page: PageHook | None, stats: ClientStats | None) -> Iterator[dict]:
        """The items of the listing's consistent read, yielded only once it is known to be consistent."""
        items: list[dict] = []
        for entry in self._entries(listing, on_page, stats):
            if isinstance(entry, ListingRestart):
                items = []
            else:
                items.append(entry.item)
        yield from items

    def _entries(
        self, listing: _Listing, on_page: PageHook | None, stats: ClientStats | None
    ) -> Iterator[ListingEntry]:
        """Read a listing until one read is consistent, at most ``retry.listing_reads`` times.

        Offset paging over data that changes between pages repeats a record (one added at the head)
        or skips one (one removed), so a read whose ``count`` moves between pages, whose echoed
        offset is not the one asked for, that meets a record again on a later page (the identical
        JSON object) or whose total is not the final ``count`` is thrown away and the listing read
        again from the start (a ``ListingRestart`` tells the consumer to discard). Two consecutive
        full reads with exactly the same items prove the listing stable even so (the server really
        holds, say, a duplicate record) and the last one is accepted, with a warning.
        """
        hook = on_page or self.on_page
        reads = self.retry.listing_reads
        problems: list[str] = []
        previous: bytes | None = None
        for read_no in range(1, reads + 1):
            if problems:
                yield ListingRestart(read_no, problems[-1])
            result = yield from self._read_once(listing, hook, stats)
            if result.problem is None:
                return
            if result.digest is not None and result.digest == previous:
                log.warning(
                    "%s: reads %d and %d returned the same %d records although %s; the listing is stable, "
                    "accepted as it is", listing.what, read_no - 1, read_no, result.total, result.problem,
                )
                return
            previous = result.digest
            problems.append(result.problem)
            if read_no < reads:
                log.warning(
                    "%s changed while it was paged (%s); reading it again from the start (read %d of %d)",
                    listing.what, result.problem, read_no + 1, reads,
                )
        raise RafayListingInconsistent(
            f"{listing.what} (GET {listing.path}) changed while it was paged, on each of {reads} read(s) "
            "from the start: " + "; ".join(f"read {n}: {p}" for n, p in enumerate(problems, 1))
            + ". None of it was used: run again once the data holds still, or allow more reads "
            "(listing_reads)",
            method="GET", path=listing.path,
        )

    def _read_once(
        self, listing: _Listing, hook: PageHook | None, stats: ClientStats | None
    ) -> Generator[PagedItem, None, _Read]:
        """One read from offset 0 to the end, yielding items as pages arrive; returns what it found.

        The offset advances by the items actually received (a server may cap pages below
        ``limit``). The listing ends at ``count``; without ``count``, only on an empty page (a short
        page may just be capped). A reply with no paging fields at all comes from a server that
        does not page (seed era): it is the whole listing, not asked again - such a server ignores
        offset, and a second copy of a live listing would differ and be taken for new records.
        Hard errors stay immediate: the same page again from a server that pages (it ignores
        offset), more than ``max_pages`` pages, replies of the wrong shape.
        """
        result = _Read()
        sequence = hashlib.blake2b(digest_size=16)
        seen: set[int] = set()
        offset = 0
        previous_body: bytes | None = None
        paging = False
        last_count: int | None = None
        for page_no in range(self.max_pages):
            query = {**listing.params, "offset": offset, "limit": self.page_size}
            data, body = self._get(listing.path, query, stats)
            where = f"GET {listing.path}?{urlencode(query)}"
            for target in (self.stats, stats):
                if target is not None:
                    target.add_page()
            if hook is not None:
                hook(listing.kind, listing.key, page_no, body)
            items = _page_items(data, listing, where)
            paging = paging or any(name in data for name in _PAGING_FIELDS)
            echoed = _whole(data.get("offset"))
            if echoed is not None and echoed != offset:
                result.note(f"page {page_no}: the server answered offset {echoed} for offset {offset}")
                return result  # cut short: paging on from a wrong offset proves nothing
            if items and body == previous_body:
                raise RafayPagingError(
                    f"{where}: server returned the same page again (it ignores offset); refusing to page on",
                    method="GET", path=listing.path,
                )
            previous_body = body
            count = _whole(data.get("count"))
            if count is not None:
                if last_count is not None and count != last_count:
                    result.note(f"count changed from {last_count} to {count} at page {page_no}")
                last_count = count
            prints = [_fingerprint(item) for item in items]
            again = sum(1 for p in prints if p in seen)
            if again:
                result.note(f"{again} record(s) on page {page_no} already came on an earlier page")
            seen.update(prints)
            for p in prints:
                sequence.update(p.to_bytes(8, "little", signed=True))
            result.total += len(items)
            for index, item in enumerate(items):
                yield PagedItem(page_no, index, item)
            if not items:
                break
            offset += len(items)
            if count is not None:
                if offset >= count:
                    break
            elif not paging:
                break
        else:
            raise RafayPagingError(
                f"GET {listing.path}: listing did not end after {self.max_pages} pages (offset {offset}); "
                "the server keeps announcing more items",
                method="GET", path=listing.path,
            )
        if last_count is not None and result.total != last_count:
            result.note(f"{result.total} records read but the listing's count is {last_count}")
        result.digest = sequence.digest()
        return result

    # -- one request with retries --------------------------------------------------------------

    def _get(self, path: str, params: dict[str, Any], stats: ClientStats | None) -> tuple[Any, bytes]:
        target = f"{path}?{urlencode(params)}" if params else path
        state = _Attempt()
        policy = self.retry
        backoff = wait_exponential_jitter(
            initial=policy.backoff_initial, max=policy.backoff_max, jitter=policy.jitter
        )

        def should_retry(rs: RetryCallState) -> bool:
            exc = rs.outcome.exception() if rs.outcome else None
            kind = _retry_kind(exc) if exc else None
            if kind == "server_error":
                return state.server_errors <= policy.server_error_retries
            if kind == "malformed":
                return state.malformed <= policy.malformed_retries
            return kind is not None

        def wait(rs: RetryCallState) -> float:
            exc = rs.outcome.exception() if rs.outcome else None
            retry_after = getattr(exc, "retry_after", None)
            if retry_after is not None:
                return min(float(retry_after), policy.retry_after_max)
            return backoff(rs)

        def before_sleep(rs: RetryCallState) -> None:
            for counter in (self.stats, stats):
                if counter is not None:
                    counter.add_retry()
            exc = rs.outcome.exception() if rs.outcome else None
            delay = rs.next_action.sleep if rs.next_action else 0.0
            log.info("GET %s failed (%s); retry %d in %.2f s", target, _short(exc), rs.attempt_number, delay)

        retrying = Retrying(
            stop=stop_after_attempt(max(1, policy.attempts)),
            wait=wait,
            retry=should_retry,
            sleep=self._sleep,
            before_sleep=before_sleep,
            reraise=True,
        )
        attempts = 0

        def attempt() -> tuple[Any, bytes]:
            nonlocal attempts
            attempts += 1
            return self._attempt(path, target, state, stats)

        try:
            return retrying(attempt)
        except RafayError as exc:
            if attempts > 1:
                exc.args = (f"{exc.args[0]} (gave up after {attempts} attempts)",)
            raise

    def _attempt(
        self, path: str, target: str, state: _Attempt, stats: ClientStats | None
    ) -> tuple[Any, bytes]:
        url = self.base_url + target
        prepared = self._session.prepare_request(requests.Request("GET", url))
        prepared.url = url  # keep our encoding: requests would turn %2E%2E back into a dot segment
        started = time.perf_counter()
        try:
            with self._slots:
                started = time.perf_counter()
                response = self._session.send(
                    prepared, timeout=self.timeout, allow_redirects=False, **self._send_kwargs
                )
                body = response.content
        except requests.exceptions.SSLError as exc:
            self._record(stats, started)
            raise RafayTransportError(
                f"GET {target}: TLS failure talking to {self.base_url}: {_short(exc)}; if the console uses a "
                "private CA, set ca_bundle in the connection extra",
                method="GET", path=target,
            ) from None
        except requests.exceptions.Timeout as exc:
            ms = self._record(stats, started)
            phase = "connect" if isinstance(exc, requests.exceptions.ConnectTimeout) else "read"
            limit = self.timeout[0] if phase == "connect" else self.timeout[1]
            log.debug("GET %s -> %s timeout (%.0f ms)", target, phase, ms)
            raise _mark(
                RafayTransportError(
                    f"GET {target}: {phase} timed out after {limit:g} s", method="GET", path=target
                ),
                "transport",
            ) from None
        except (requests.exceptions.ConnectionError, requests.exceptions.ChunkedEncodingError) as exc:
            ms = self._record(stats, started)
            log.debug("GET %s -> connection error (%.0f ms)", target, ms)
            raise _mark(
                RafayTransportError(
                    f"GET {target}: connection to {self.base_url} failed: {_short(exc)}", method="GET", path=target
                ),
                "transport",
            ) from None
        except requests.exceptions.RequestException as exc:
            self._record(stats, started)
            raise RafayTransportError(f"GET {target}: request failed: {_short(exc)}", method="GET", path=target) from None
        ms = self._record(stats, started)
        status = response.status_code
        log.debug("GET %s -> %d (%.0f ms)", target, status, ms)
        if 200 <= status < 300:
            return self._parse(body, target, state), body
        raise self._status_error(response, body, target, state)

    def _record(self, stats: ClientStats | None, started: float) -> float:
        ms = (time.perf_counter() - started) * 1000
        for counter in (self.stats, stats):
            if counter is not None:
                counter.add_request(ms)
        return ms

    def _parse(self, body: bytes, target: str, state: _Attempt) -> Any:
        problem = None
        try:
            data = json.loads(body, parse_float=Decimal, parse_int=_json_int, parse_constant=Decimal)
        except (ValueError, UnicodeDecodeError) as exc:
            problem = f"body is not valid JSON ({exc.__class__.__name__}: {_short(exc)})"
        else:
            if not isinstance(data, dict):
                problem = f"body is JSON {type(data).__name__}, expected an object"
        if problem is None:
            return data
        state.malformed += 1
        raise _mark(
            RafayResponseError(
                f"GET {target}: HTTP 200 but {problem}: {self._excerpt(body)!r}",
                method="GET", path=target, status=200, excerpt=self._excerpt(body),
            ),
            "malformed",
        )

    def _status_error(self, response: requests.Response, body: bytes, target: str, state: _Attempt) -> RafayError:
        status = response.status_code
        excerpt = self._excerpt(body)
        head = f"GET {target}: HTTP {status} {response.reason or ''}".rstrip()
        detail = f"{head}: {excerpt}" if excerpt else head
        fields = {"method": "GET", "path": target, "status": status, "excerpt": excerpt}
        retry_after = parse_retry_after(response.headers.get("Retry-After"))
        if status in (401, 403):
            return RafayAuthError(f"{detail} - {self.auth_hint}", **fields)
        if status == 404:
            return RafayNotFound(f"{detail} - unknown organization, profile or endpoint", **fields)
        if status == 429:
            return _mark(RafayRateLimited(detail, **fields), "rate_limited", retry_after)
        if status in (502, 503, 504):
            return _mark(RafayServerError(detail, **fields), "gateway", retry_after)
        if status == 500:
            state.server_errors += 1
            return _mark(RafayServerError(detail, **fields), "server_error")
        if 300 <= status < 400:
            where = response.headers.get("Location", "?")
            return RafayHTTPError(f"{head}: unexpected redirect to {where} (check the console URL)", **fields)
        if status >= 500:
            return RafayServerError(detail, **fields)
        return RafayHTTPError(detail, **fields)

    def _excerpt(self, body: bytes) -> str:
        text = body[: _EXCERPT_CHARS * 8].decode("utf-8", errors="replace")
        if "<" in text and ">" in text:
            text = _TAGS.sub(" ", text)
        text = _SPACE.sub(" ", text).strip()
        if len(text) > _EXCERPT_CHARS:
            text = text[: _EXCERPT_CHARS - 1] + "…"
        return text.replace(self._api_key, "***")


def _page_items(data: dict, listing: _Listing, where: str) -> list[dict]:
    """The page's items (absent or null = none); anything but a list of objects is an error."""
    items = data.get(listing.items_field)
    if items is None:
        return []
    if not isinstance(items, list):
        raise RafayResponseError(
            f"{where}: {listing.items_field!r} is not a list", method="GET", path=listing.path
        )
    for item in items:
        if not isinstance(item, dict):
            raise RafayResponseError(
                f"{where}: an entry of {listing.items_field!r} is not an object: {str(item)[:80]!r}",
                method="GET", path=listing.path,
            )
    return items


def _whole(value: Any) -> int | None:
    """An int paging field, or None when absent or not a whole number (then it is ignored)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, Decimal) and value.is_finite() and value == value.to_integral_value():
        return int(value)
    return None


def _short(exc: BaseException | None) -> str:
    if exc is None:
        return "?"
    text = str(exc.args[0]) if exc.args else exc.__class__.__name__
    return text if len(text) <= 300 else text[:299] + "…"
