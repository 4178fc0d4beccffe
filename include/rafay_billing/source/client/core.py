"""``RafayClient``: the Airflow-free HTTP client for Rafay's usage metering APIs.

Why its own client rather than ``requests.get`` per call (the blog script) or Airflow's HttpHook:
billing reads hundreds of listings per night, so it needs one connection pool, timeouts on every
request, retries that tell transient failures (429, gateway errors, dropped connections) from
permanent ones (bad key, unknown org), listings that follow ``offset``/``limit``/``count`` to the
end without trusting the server to behave, and exact decimals for hours. It imports no Airflow:
the ``rafay-billing`` command uses it directly, the Airflow hook wraps it.

This module is the client itself (connection pool, one attempt, status errors, the listings it knows);
the URL rules live in :mod:`.urls`, the retry policy in :mod:`.retry`, the pager in :mod:`.paging`
and the counters in :mod:`.stats`.

The API key only ever travels in the ``x-api-key`` header, over https or to this machine (plain
http elsewhere only when explicitly allowed); it is never logged and is masked in any text that
could echo it (error excerpts, redirect targets, paging errors), in the whole text before it is cut
(see :mod:`.scrub`).
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any, TypedDict, TypeVar
from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter
from requests.structures import CaseInsensitiveDict
from requests.utils import get_environ_proxies, select_proxy

from rafay_billing import settings as defaults
from rafay_billing.errors import (
    AUTH_HINT,
    RafayAuthError,
    RafayConfigError,
    RafayError,
    RafayHTTPError,
    RafayNotFound,
    RafayRateLimited,
    RafayResponseError,
    RafayServerError,
    RafayTransportError,
)
from rafay_billing.source.client.decoding import decode_json, decode_page
from rafay_billing.source.client.paging import Listing, ListingEntry, ListingPart, Page, PageHook, Pager
from rafay_billing.source.client.retry import (
    AttemptState,
    RetryPolicy,
    call_with_retries,
    mark,
    parse_retry_after,
    short,
)
from rafay_billing.source.client.scrub import cut_scrubbed, scrub_secret
from rafay_billing.source.client.stats import ClientStats
from rafay_billing.source.client.transport import (
    ClientCert,
    check_client_cert,
    check_proxies,
    check_proxy_transport,
    check_proxy_url,
    redact,
)
from rafay_billing.source.client.urls import (
    check_api_key,
    check_key_transport,
    encode_query,
    encode_segment,
    normalize_base_url,
)
from rafay_billing.window import Window

log = logging.getLogger("rafay_billing.source.client")

PARTNER_KINDS = ("compute", "service")
PARTNER_USAGE_PATH = "/apis/billing.envmgmt.io/v1/metrics/partner/instance/kind/{kind}/usage"
_EXCERPT_CHARS = 200
_TAGS = re.compile(r"<[^>]*>")
_SPACE = re.compile(r"\s+")

T = TypeVar("T")


class _ErrorFields(TypedDict):
    """The keyword fields every :class:`~rafay_billing.errors.RafayError` for an HTTP status carries."""

    method: str
    path: str
    status: int
    excerpt: str


# --- the client ------------------------------------------------------------------------------


class RafayClient:
    """Reads Rafay's organizations, profiles and usage; one connection pool, bounded concurrency.

    At most ``concurrency`` requests are in flight at once across all threads using the client
    (the connection pool has the same size), so callers may fan out freely with thread pools.
    """

    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        verify: bool | str = True,
        connect_timeout: float = defaults.CONNECT_TIMEOUT,
        read_timeout: float = defaults.READ_TIMEOUT,
        retry: RetryPolicy | None = None,
        page_size: int = defaults.PAGE_SIZE,
        max_pages: int = 10_000,
        concurrency: int = defaults.CONCURRENCY,
        on_page: PageHook | None = None,
        auth_hint: str = AUTH_HINT,
        sleep: Callable[[float], None] = time.sleep,
        allow_insecure_http: bool = False,
        proxies: Mapping[str, str] | None = None,
        trust_env: bool = True,
        cert: ClientCert | None = None,
    ) -> None:
        self.base_url = normalize_base_url(base_url)
        self._api_key = check_api_key(api_key)
        check_key_transport(self.base_url, allow_insecure_http)
        self.cert = check_client_cert(cert, self.base_url)
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
        self._adapter = HTTPAdapter(pool_connections=1, pool_maxsize=self.concurrency, max_retries=0)
        self._session.mount("https://", self._adapter)
        self._session.mount("http://", self._adapter)
        self._session.headers.update(
            {"x-api-key": self._api_key, "accept": "application/json", "user-agent": "rafay-billing/0.1"}
        )
        # what every request carries, nothing else
        self._headers: dict[str, str] = {k: str(v) for k, v in self._session.headers.items()}
        # Proxies (given ones win, as in requests; the environment's HTTP(S)_PROXY/NO_PROXY only with
        # trust_env) and CA settings, resolved once for the one host we talk to.
        self.proxy = self._resolve_proxy(check_proxies(proxies), trust_env)
        check_proxy_transport(self.base_url, self.proxy, allow_insecure_http)
        self._session.trust_env = trust_env  # the environment's CA bundle (REQUESTS_CA_BUNDLE) likewise
        self._send_kwargs = self._session.merge_environment_settings(self.base_url, {}, False, verify, self.cert)
        self._send_kwargs["proxies"] = {urlsplit(self.base_url).scheme: self.proxy} if self.proxy else {}
        resolved_verify = self._send_kwargs["verify"]
        self._verify: bool | str = True if resolved_verify is None else resolved_verify
        # Resolved: no per-request environment look-ups from here on (requests would otherwise search
        # for ~/.netrc and re-read proxy variables on every request, and a .netrc entry would add its
        # credentials to requests meant to carry only x-api-key).
        self._session.trust_env = False
        if self.proxy:
            log.info("Rafay requests to %s go through proxy %s", self.base_url, redact(self.proxy))

    def _resolve_proxy(self, proxies: dict[str, str], trust_env: bool) -> str | None:
        """The one proxy for :attr:`base_url`: from ``proxies`` if it names one for it, else (with
        ``trust_env``) from the environment, where NO_PROXY applies; None = direct."""
        chosen = select_proxy(self.base_url, proxies)
        if chosen or not trust_env:
            return chosen
        from_env = select_proxy(self.base_url, get_environ_proxies(self.base_url))
        if not from_env:
            return None
        return check_proxy_url(from_env, "the environment's proxy (HTTP_PROXY/HTTPS_PROXY/ALL_PROXY)")

    def _via(self) -> str:
        return f" through proxy {redact(self.proxy)}" if self.proxy else ""

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

    def profile_usage_pages(
        self,
        org_id: str,
        profile: str,
        window: Window,
        *,
        on_page: PageHook | None = None,
        stats: ClientStats | None = None,
    ) -> Iterator[ListingPart]:
        """:meth:`profile_usage_entries` a page at a time: ``PageItems`` (page number, records) and a
        ``ListingRestart`` before each re-read (discard what came before it)."""
        listing = self._usage_listing(org_id, profile, window)
        return self._scrubbed(self._pager(on_page, stats, listing.items_field).pages(listing))

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
        return self._get(path, dict(params or {}), None).data

    def shown(self, text: str, limit: int) -> str:
        """``text`` from a reply (a record, say) fit for a message: at most ``limit`` characters, the
        API key masked before the cut and a start of it at the cut (callers know no key; the server
        may echo it anywhere)."""
        return cut_scrubbed(text, self._api_key, limit)

    # -- the listings --------------------------------------------------------------------------

    @staticmethod
    def _orgs_listing() -> Listing:
        return Listing("orgs", "", "/v2/organizations", "items", "the organization listing")

    @staticmethod
    def _profiles_listing(org_id: str) -> Listing:
        path = f"/v2/organizations/{encode_segment(org_id)}/ncp/profiles"
        return Listing("profiles", org_id, path, "items", f"the profile listing of org {org_id}")

    @staticmethod
    def _usage_listing(org_id: str, profile: str, window: Window) -> Listing:
        path = f"/v2/organizations/{encode_segment(org_id)}/ncp/profiles/{encode_segment(profile)}/usage"
        params = {"start_time": window.start_iso, "end_time": window.end_iso}
        what = f"the usage listing of profile {profile} in org {org_id}"
        return Listing("usage", profile, path, "instance_usage_data", what, params)

    @staticmethod
    def _partner_listing(kind: str, window: Window, org_id: str | None) -> Listing:
        if kind not in PARTNER_KINDS:
            raise ValueError(f"partner usage kind must be one of {PARTNER_KINDS}, got {kind!r}")
        params = {"range_from": window.start_iso, "range_to": window.end_iso}
        if org_id:
            params["instance_organization_id"] = org_id
        what = f"the partner {kind} usage listing" + (f" of org {org_id}" if org_id else "")
        path = PARTNER_USAGE_PATH.format(kind=kind)
        return Listing(f"partner-{kind}", org_id or "", path, "instance_usage_data", what, params)

    # -- paging --------------------------------------------------------------------------------

    def _pager(self, on_page: PageHook | None, stats: ClientStats | None, items_field: str) -> Pager:
        def count_page() -> None:
            for target in (self.stats, stats):
                if target is not None:
                    target.add_page()

        def count_reread() -> None:
            for target in (self.stats, stats):
                if target is not None:
                    target.add_reread()

        return Pager(
            fetch=lambda path, query: self._get(path, query, stats, items_field),
            page_size=self.page_size,
            max_pages=self.max_pages,
            listing_reads=self.retry.listing_reads,
            count_page=count_page,
            hook=on_page or self.on_page,
            count_reread=count_reread,
        )

    def _consistent(self, listing: Listing, on_page: PageHook | None, stats: ClientStats | None) -> Iterator[dict]:
        """The items of the listing's consistent read (see :meth:`Pager.consistent`)."""
        return self._scrubbed(self._pager(on_page, stats, listing.items_field).consistent(listing))

    def _entries(
        self, listing: Listing, on_page: PageHook | None, stats: ClientStats | None
    ) -> Iterator[ListingEntry]:
        """The listing as it arrives, re-read while inconsistent (see :meth:`Pager.entries`)."""
        return self._scrubbed(self._pager(on_page, stats, listing.items_field).entries(listing))

    def _scrubbed(self, read: Iterator[T]) -> Iterator[T]:
        """``read``, the API key masked in the message of any client error it raises.

        Why: the pager knows no key, and its errors show what the server sent, cut short (a listing
        entry that is not an object, in 80 characters); a key echoed there would show, whole or its
        start at the cut. The client's own errors are masked already (masking again changes nothing).
        """
        try:
            yield from read
        except RafayError as exc:
            if exc.args and isinstance(exc.args[0], str):
                exc.args = (scrub_secret(exc.args[0], self._api_key, cut=True), *exc.args[1:])
            raise

    # -- one request with retries --------------------------------------------------------------

    def _get(
        self, path: str, params: dict[str, Any], stats: ClientStats | None, items_field: str | None = None
    ) -> Page:
        """One GET with retries; a listing page (``items_field`` given) comes with its records' fingerprints."""
        target = f"{path}?{encode_query(params)}" if params else path

        def count_retry() -> None:
            for counter in (self.stats, stats):
                if counter is not None:
                    counter.add_retry()

        return call_with_retries(
            lambda state: self._attempt(path, target, state, stats, items_field),
            self.retry,
            target=target,
            sleep=self._sleep,
            on_retry=count_retry,
        )

    def _attempt(
        self, path: str, target: str, state: AttemptState, stats: ClientStats | None, items_field: str | None = None
    ) -> Page:
        prepared = self._prepared(self.base_url + target)
        started = time.perf_counter()
        try:
            with self._slots:
                started = time.perf_counter()
                response = self._adapter.send(prepared, stream=False, timeout=self.timeout, verify=self._verify,
                                              cert=self.cert, proxies=self._send_kwargs["proxies"])
                body = response.content
        except requests.exceptions.SSLError as exc:
            self._record(stats, started)
            raise RafayTransportError(
                f"GET {target}: TLS failure talking to {self.base_url}{self._via()}: {short(exc)}; if the console "
                "uses a private CA, set ca_bundle in the connection extra (and cert if it asks for a client "
                "certificate)",
                method="GET", path=target,
            ) from None
        except requests.exceptions.Timeout as exc:
            ms = self._record(stats, started)
            phase = "connect" if isinstance(exc, requests.exceptions.ConnectTimeout) else "read"
            limit = self.timeout[0] if phase == "connect" else self.timeout[1]
            log.debug("GET %s -> %s timeout (%.0f ms)", target, phase, ms)
            raise mark(
                RafayTransportError(
                    f"GET {target}: {phase} timed out after {limit:g} s", method="GET", path=target
                ),
                "transport",
            ) from None
        except (requests.exceptions.ConnectionError, requests.exceptions.ChunkedEncodingError) as exc:
            ms = self._record(stats, started)
            log.debug("GET %s -> connection error (%.0f ms)", target, ms)
            raise mark(
                RafayTransportError(
                    f"GET {target}: connection to {self.base_url}{self._via()} failed: {short(exc)}",
                    method="GET", path=target,
                ),
                "transport",
            ) from None
        except requests.exceptions.RequestException as exc:
            self._record(stats, started)
            raise RafayTransportError(f"GET {target}: request failed: {short(exc)}", method="GET", path=target) from None
        ms = self._record(stats, started)
        status = response.status_code
        log.debug("GET %s -> %d (%.0f ms)", target, status, ms)
        if 200 <= status < 300:
            return self._parse(body, target, state, items_field)
        raise self._status_error(response, body, target, state)

    def _prepared(self, url: str) -> requests.PreparedRequest:
        """The GET for ``url`` as the connection pool sends it, built directly.

        Why not ``Session.request``: its preparation (merging settings, re-parsing and re-quoting a
        URL that is already encoded, cookies, hooks) cost more CPU than the HTTP exchange itself, and on
        a night of thousands of small pages the client's CPU is what stretches a request's round trip
        (eight threads share one interpreter). Everything it would resolve is resolved once, in
        ``__init__``: headers, proxy, CA bundle, certificate. The URL is ours, exactly as encoded
        (requests would turn ``%2E%2E`` back into a dot segment). No cookies are kept or sent, as
        the blog script kept none: the API authenticates by ``x-api-key`` alone; no redirect is followed.
        """
        prepared = requests.PreparedRequest()
        prepared.method = "GET"
        prepared.url = url
        prepared.headers = CaseInsensitiveDict(self._headers)
        prepared.body = None
        prepared.hooks = {"response": []}
        return prepared

    def _record(self, stats: ClientStats | None, started: float) -> float:
        ms = (time.perf_counter() - started) * 1000
        for counter in (self.stats, stats):
            if counter is not None:
                counter.add_request(ms)
        return ms

    def _parse(self, body: bytes, target: str, state: AttemptState, items_field: str | None = None) -> Page:
        problem = None
        prints = None
        try:
            if items_field is None:
                data = decode_json(body)
            else:
                data, prints = decode_page(body, items_field)
        except (ValueError, UnicodeDecodeError) as exc:
            problem = f"body is not valid JSON ({exc.__class__.__name__}: {short(exc)})"
        else:
            if not isinstance(data, dict):
                problem = f"body is JSON {type(data).__name__}, expected an object"
        if problem is None:
            return Page(data, body, prints)
        state.malformed += 1
        excerpt = self._excerpt(body)
        raise mark(
            RafayResponseError(
                f"GET {target}: HTTP 200 but {problem}: {excerpt!r}",
                method="GET", path=target, status=200, excerpt=excerpt,
            ),
            "malformed",
        )

    def _status_error(self, response: requests.Response, body: bytes, target: str, state: AttemptState) -> RafayError:
        status = response.status_code
        excerpt = self._excerpt(body)
        head = f"GET {target}: HTTP {status} {response.reason or ''}".rstrip()
        detail = f"{head}: {excerpt}" if excerpt else head
        fields = _ErrorFields(method="GET", path=target, status=status, excerpt=excerpt)
        retry_after = parse_retry_after(response.headers.get("Retry-After"))
        if status in (401, 403):
            return RafayAuthError(f"{detail} - {self.auth_hint}", **fields)
        if status == 404:
            return RafayNotFound(f"{detail} - unknown organization, profile or endpoint", **fields)
        if status == 429:
            return mark(RafayRateLimited(detail, **fields), "rate_limited", retry_after)
        if status in (502, 503, 504):
            return mark(RafayServerError(detail, **fields), "gateway", retry_after)
        if status == 500:
            state.server_errors += 1
            return mark(RafayServerError(detail, **fields), "server_error")
        if 300 <= status < 400:
            where = scrub_secret(response.headers.get("Location", "?"), self._api_key)
            return RafayHTTPError(f"{head}: unexpected redirect to {where} (check the console URL)", **fields)
        if status >= 500:
            return RafayServerError(detail, **fields)
        return RafayHTTPError(detail, **fields)

    def _excerpt(self, body: bytes) -> str:
        """The body on one line, tags and runs of white space dropped, at most ``_EXCERPT_CHARS``
        characters, the API key masked.

        Why the whole body is decoded and masked before anything is cut: a key straddling a cut is
        no longer found whole, and its start would show (a gateway's 403 page echoing the request's
        ``x-api-key`` did that); at each cut a start of the key is masked as well (see :mod:`.scrub`).
        The text is cut to eight times the excerpt before the tags go: a huge page costs its decoding only.
        """
        key = self._api_key
        text = cut_scrubbed(body.decode("utf-8", errors="replace"), key, _EXCERPT_CHARS * 8)
        if "<" in text and ">" in text:
            text = _TAGS.sub(" ", text)
        # cut_scrubbed masks again before its cut: collapsing white space may spell the key (it may hold spaces)
        return cut_scrubbed(_SPACE.sub(" ", text).strip(), key, _EXCERPT_CHARS)
