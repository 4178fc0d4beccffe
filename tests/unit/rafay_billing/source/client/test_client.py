"""RafayClient: URL and key handling, paging, retries, errors, stats.

Unit cases (the client's own edge cases) use ``responses``; the behaviour over real HTTP (faults,
timeouts, concurrency, server page caps) is proven against the Rafay simulator further down.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from email.utils import format_datetime

import pytest
import requests
import responses

from rafay_billing.errors import (
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
from rafay_billing.source.client import (
    ClientStats,
    ListingRestart,
    PagedItem,
    RafayClient,
    RetryPolicy,
    encode_segment,
    normalize_base_url,
    parse_retry_after,
    percentile,
)
from rafay_billing.window import Window
from tests.support.http_stub import Reply, stub_console

BASE = "https://rafay.test"
KEY = "k3y-SECRET-value-42"
WINDOW = Window(datetime(2026, 11, 10, tzinfo=UTC), datetime(2026, 11, 11, tzinfo=UTC))
FAST = RetryPolicy(attempts=4, backoff_initial=0.001, backoff_max=0.002, jitter=0.001, retry_after_max=5)


class Sleeps(list):
    """Records the waits the client asks for instead of sleeping (no timing in assertions)."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)


def _client(**kw: object) -> RafayClient:
    kw.setdefault("retry", FAST)
    kw.setdefault("sleep", Sleeps())
    return RafayClient(BASE, KEY, **kw)  # type: ignore[arg-type]


# --- configuration -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("rafay.acme.com", "https://rafay.acme.com"),
        (" rafay.acme.com/ ", "https://rafay.acme.com"),
        ("rafay.acme.com:8443", "https://rafay.acme.com:8443"),
        ("http://127.0.0.1:8080", "http://127.0.0.1:8080"),
        ("HTTPS://Console.Example/", "https://Console.Example"),
        ("https://gw.example/rafay/", "https://gw.example/rafay"),
    ],
)
def test_base_url_forms(given: str, expected: str) -> None:
    assert normalize_base_url(given) == expected


@pytest.mark.parametrize("bad", ["", "   ", "ftp://x", "https://", "rafay acme.com", "https://x/?a=1"])
def test_bad_base_urls_are_config_errors(bad: str) -> None:
    with pytest.raises(RafayConfigError):
        normalize_base_url(bad)


def test_key_problems_never_echo_the_key() -> None:
    with pytest.raises(RafayConfigError, match="RAFAY_DEFAULT_API_KEY"):
        RafayClient(BASE, "  ")
    with pytest.raises(RafayConfigError) as info:
        RafayClient(BASE, "secret\nvalue")
    assert "secret" not in str(info.value)
    assert "secret" not in repr(RafayClient(BASE, "secretvalue"))


def test_segments_are_percent_encoded() -> None:
    assert encode_segment("a/b c?#%") == "a%2Fb%20c%3F%23%25"
    assert encode_segment("..") == "%2E%2E"
    assert encode_segment("ü") == "%C3%BC"


def test_a_query_is_encoded_as_urlencode_encodes_it_and_remembered() -> None:
    from urllib.parse import urlencode

    from rafay_billing.source.client.urls import _encoded, encode_query

    query = {"start_time": "2026-11-10T00:00:00Z", "end_time": "2026-11-11T00:00:00+00:00", "offset": 0, "limit": 100,
             "name": "a b/ü&x=1"}
    assert encode_query(query) == urlencode(query)
    hits = _encoded.cache_info().hits
    assert encode_query(dict(query)) == urlencode(query) and _encoded.cache_info().hits == hits + 1
    assert encode_query({"ids": ["a", "b"]}) == urlencode({"ids": ["a", "b"]})  # not hashable: encoded as is


# --- paging ------------------------------------------------------------------------------------


def _page_callback(items: list[dict], cap: int | None = None, with_count: bool = True, field: str = "items"):
    def callback(request: requests.PreparedRequest) -> tuple[int, dict, str]:
        query = dict(p.split("=", 1) for p in request.url.split("?", 1)[1].split("&"))
        offset, limit = int(query["offset"]), int(query["limit"])
        size = min(limit, cap) if cap else limit
        body: dict = {field: items[offset : offset + size]}
        if with_count:
            body.update(count=len(items), offset=offset, limit=size)
        return 200, {}, json.dumps(body)

    return callback


@responses.activate
@pytest.mark.parametrize("live", [False, True])
def test_a_seed_era_listing_read_again_from_its_start_is_not_taken_for_a_second_page(live: bool) -> None:
    """The probe's reply starts with the listing's first record again: the server ignores offset. Also
    when the listing moved in between (a running instance's hours): its records are not new ones."""
    calls = iter(range(100))

    def callback(request: requests.PreparedRequest) -> tuple[int, dict, str]:
        hours = 1 + next(calls) if live else 1
        items = [{"instance_name": "vm0", "usage_hours": 2}, {"instance_name": "vm1", "usage_hours": hours}]
        return 200, {}, json.dumps({"instance_usage_data": items})

    responses.add_callback(responses.GET, f"{BASE}/v2/organizations/coke/ncp/profiles/p1/usage", callback=callback)
    records = list(_client(page_size=100).iter_profile_usage("coke", "p1", WINDOW))
    assert [(r["instance_name"], r["usage_hours"]) for r in records] == [("vm0", 2), ("vm1", 1)]
    assert len(responses.calls) == 2


@responses.activate
@pytest.mark.parametrize("cap", [None, 3, 1])
def test_listing_follows_count_and_copes_with_a_capped_page_size(cap: int | None) -> None:
    orgs = [{"name": f"Org {i}", "metadata": {"name": f"org{i}"}} for i in range(23)]
    responses.add_callback(responses.GET, f"{BASE}/v2/organizations", callback=_page_callback(orgs, cap))
    pages: list[tuple[str, str, int]] = []
    client = _client(page_size=10, on_page=lambda k, key, n, body: pages.append((k, key, n)))
    assert list(client.iter_organizations()) == orgs
    expected_pages = -(-23 // min(10, cap or 10))
    assert len(responses.calls) == expected_pages
    assert pages == [("orgs", "", n) for n in range(expected_pages)]
    assert client.stats.snapshot().pages == expected_pages


@responses.activate
def test_a_reply_without_paging_fields_is_the_whole_listing() -> None:
    """Seed-era servers ignore offset/limit and return everything with no count: the probe for the next
    offset gets the whole listing again, which is not counted twice."""
    items = [{"instance_name": f"vm{i}", "usage_hours": 1.5} for i in range(250)]
    responses.add(
        responses.GET,
        f"{BASE}/v2/organizations/coke/ncp/profiles/p1/usage",
        json={"instance_usage_data": items},
    )
    records = list(_client(page_size=100).iter_profile_usage("coke", "p1", WINDOW))
    assert len(records) == 250 and len(responses.calls) == 2
    assert records[0]["usage_hours"] == Decimal("1.5")
    query = responses.calls[0].request.url.split("?", 1)[1]
    assert "start_time=2026-11-10T00%3A00%3A00Z" in query and "end_time=2026-11-11T00%3A00%3A00Z" in query


@responses.activate
def test_limit_without_count_pages_until_an_empty_page() -> None:
    """A short page without count may just be capped: only an empty page ends the listing."""
    items = [{"metadata": {"name": f"p{i}"}} for i in range(7)]

    def callback(request: requests.PreparedRequest) -> tuple[int, dict, str]:
        query = dict(p.split("=", 1) for p in request.url.split("?", 1)[1].split("&"))
        offset = int(query["offset"])
        return 200, {}, json.dumps({"items": items[offset : offset + 3], "limit": 3})

    responses.add_callback(responses.GET, f"{BASE}/v2/organizations/coke/ncp/profiles", callback=callback)
    assert list(_client(page_size=3).iter_profiles("coke")) == items
    assert len(responses.calls) == 4  # offsets 0, 3, 6 and the empty page at 7


@responses.activate
def test_an_empty_page_before_count_is_read_again_and_accepted_when_two_reads_agree(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """An empty page ends a read; short of ``count`` it is re-read, and a stable server is believed."""

    def callback(request: requests.PreparedRequest) -> tuple[int, dict, str]:
        first = "offset=0&" in request.url
        return 200, {}, json.dumps({"items": [{"metadata": {"name": "a"}}] if first else [], "count": 50})

    responses.add_callback(responses.GET, f"{BASE}/v2/organizations", callback=callback)
    assert len(list(_client(page_size=1).iter_organizations())) == 1
    assert len(responses.calls) == 4  # two reads of two pages
    assert "1 records read but the listing's count is 50" in caplog.text and "stable" in caplog.text


@responses.activate
def test_a_server_that_never_ends_hits_the_page_guard() -> None:
    def callback(request: requests.PreparedRequest) -> tuple[int, dict, str]:
        page = request.url.split("offset=")[1].split("&")[0]
        return 200, {}, json.dumps({"items": [{"metadata": {"name": f"x{page}"}}], "count": 10**9})

    responses.add_callback(responses.GET, f"{BASE}/v2/organizations", callback=callback)
    with pytest.raises(RafayPagingError, match="did not end after 5 pages"):
        list(_client(page_size=1, max_pages=5).iter_organizations())
    assert len(responses.calls) == 5


@responses.activate
def test_a_server_ignoring_offset_is_refused() -> None:
    responses.add(
        responses.GET, f"{BASE}/v2/organizations",
        json={"items": [{"metadata": {"name": "x"}}], "count": 3, "offset": 0, "limit": 1},
    )
    with pytest.raises(RafayListingInconsistent, match="offset 0 for offset 1") as info:
        list(_client(page_size=1).iter_organizations())
    assert isinstance(info.value, RafayPagingError)
    assert len(responses.calls) == 3 * 2  # each read cut short at its second page


@responses.activate
def test_a_server_repeating_the_same_page_without_paging_echo_is_refused() -> None:
    responses.add(responses.GET, f"{BASE}/v2/organizations", json={"items": [{"metadata": {"name": "x"}}], "limit": 1})
    with pytest.raises(RafayPagingError, match="same page again"):
        list(_client(page_size=1).iter_organizations())
    assert len(responses.calls) == 2


@responses.activate
def test_bad_listing_shapes_fail_clearly() -> None:
    responses.add(responses.GET, f"{BASE}/v2/organizations", json={"items": {"a": 1}})
    with pytest.raises(RafayResponseError, match="'items' is not a list"):
        list(_client().iter_organizations())
    responses.replace(responses.GET, f"{BASE}/v2/organizations", json={"items": ["coke"]})
    with pytest.raises(RafayResponseError, match="not an object"):
        list(_client().iter_organizations())


@responses.activate
def test_names_with_any_characters_reach_the_right_path() -> None:
    responses.add(
        responses.GET, f"{BASE}/v2/organizations/%2E%2E/ncp/profiles/a%2Fb%20%3F%23/usage", json={"instance_usage_data": []}
    )
    assert list(_client().iter_profile_usage("..", "a/b ?#", WINDOW)) == []


@responses.activate
def test_partner_usage_query_and_validation() -> None:
    path = f"{BASE}/apis/billing.envmgmt.io/v1/metrics/partner/instance/kind/compute/usage"
    responses.add(responses.GET, path, json={"instance_usage_data": [{"raw_usage": 20.594723}], "count": 1})
    pages: list[tuple[str, str]] = []
    records = list(
        _client().iter_partner_usage("compute", WINDOW, "lk5xnd2", on_page=lambda k, key, n, b: pages.append((k, key)))
    )
    assert records == [{"raw_usage": Decimal("20.594723")}]
    assert pages == [("partner-compute", "lk5xnd2")]
    query = responses.calls[0].request.url
    assert "range_from=2026-11-10T00%3A00%3A00Z" in query and "instance_organization_id=lk5xnd2" in query
    with pytest.raises(ValueError, match="compute"):
        _client().iter_partner_usage("gpu", WINDOW)


# --- retries and errors ------------------------------------------------------------------------


@responses.activate
def test_gateway_errors_are_retried_then_succeed() -> None:
    url = f"{BASE}/v2/organizations"
    responses.add(responses.GET, url, status=502, body="<html><body><h1>502 Bad Gateway</h1></body></html>")
    responses.add(responses.GET, url, status=503)
    responses.add(responses.GET, url, status=504)
    responses.add(responses.GET, url, json={"items": []})
    client = _client()
    assert list(client.iter_organizations()) == []
    snap = client.stats.snapshot()
    assert (snap.requests, snap.retries, snap.pages) == (4, 3, 1)
    assert len(client._sleep) == 3  # type: ignore[attr-defined]


@responses.activate
def test_retry_after_seconds_and_http_date_are_honoured_and_capped() -> None:
    url = f"{BASE}/v2/organizations"
    soon = format_datetime(datetime.now(UTC) + timedelta(seconds=3), usegmt=True)
    responses.add(responses.GET, url, status=429, headers={"Retry-After": "2"})
    responses.add(responses.GET, url, status=429, headers={"Retry-After": soon})
    responses.add(responses.GET, url, status=503, headers={"Retry-After": "3600"})
    responses.add(responses.GET, url, json={"items": []})
    sleeps = Sleeps()
    list(_client(sleep=sleeps).iter_organizations())
    assert sleeps[0] == 2
    assert 0 < sleeps[1] <= 3
    assert sleeps[2] == FAST.retry_after_max


def test_parse_retry_after() -> None:
    now = datetime(2026, 11, 27, tzinfo=UTC)
    assert parse_retry_after("7", now) == 7
    assert parse_retry_after("Fri, 27 Nov 2026 00:00:30 GMT", now) == 30
    assert parse_retry_after("Thu, 26 Nov 2026 00:00:00 GMT", now) == 0
    assert parse_retry_after("soon", now) is None
    assert parse_retry_after(None, now) is None


@responses.activate
def test_rate_limit_that_never_lifts_fails_with_attempt_count() -> None:
    responses.add(responses.GET, f"{BASE}/v2/organizations", status=429, body="slow down")
    with pytest.raises(RafayRateLimited) as info:
        list(_client().iter_organizations())
    assert "HTTP 429" in str(info.value) and "gave up after 4 attempts" in str(info.value)
    assert len(responses.calls) == 4


@responses.activate
def test_500_is_retried_a_limited_number_of_times() -> None:
    responses.add(responses.GET, f"{BASE}/v2/organizations", status=500, body="boom")
    with pytest.raises(RafayServerError, match="HTTP 500"):
        list(_client(retry=RetryPolicy(attempts=10, backoff_initial=0.001, server_error_retries=2)).iter_organizations())
    assert len(responses.calls) == 3


@responses.activate
@pytest.mark.parametrize(
    ("status", "error"),
    [(400, RafayHTTPError), (401, RafayAuthError), (403, RafayAuthError), (404, RafayNotFound), (501, RafayServerError)],
)
def test_permanent_errors_are_not_retried(status: int, error: type[RafayError]) -> None:
    responses.add(responses.GET, f"{BASE}/v2/organizations/coke/ncp/profiles", status=status, body='{"error": "nope"}')
    with pytest.raises(error) as info:
        list(_client().iter_profiles("coke"))
    assert len(responses.calls) == 1
    message = str(info.value)
    assert message.startswith("GET /v2/organizations/coke/ncp/profiles?offset=0&limit=100: HTTP ")
    assert f"HTTP {status}" in message and '{"error": "nope"}' in message
    assert info.value.status == status


@responses.activate
def test_auth_error_says_what_to_check_and_never_shows_the_key() -> None:
    responses.add(responses.GET, f"{BASE}/v2/organizations", status=401, body=f"bad key {KEY}")
    with pytest.raises(RafayAuthError) as info:
        list(_client().iter_organizations())
    message = str(info.value)
    assert "check the API key of connection rafay_default (or RAFAY_DEFAULT_API_KEY)" in message
    assert KEY not in message and "***" in message


ECHOED_KEY = "qZ7xK2-sekrit-Wv9Lp4"  # no run of 4 of it in any message the client writes ("value" is in some)


def key_runs(text: str, key: str = ECHOED_KEY, shortest: int = 4) -> list[str]:
    """The runs of ``shortest`` characters of ``key`` that ``text`` shows (none may show: a cut key
    leaks its start, and any run of it narrows a guess)."""
    return [key[i : i + shortest] for i in range(len(key) - shortest + 1) if key[i : i + shortest] in text]


class Echo:
    """A console's page with the request's own x-api-key in it, after ``pad`` (set per request)."""

    def __init__(self, status: int, content_type: str, page: str) -> None:
        self.status, self.content_type, self.page = status, content_type, page
        self.pad = ""

    def __call__(self, path: str, headers: dict[str, str]) -> Reply:
        body = self.page.format(pad=self.pad, key=headers["x-api-key"]).encode()
        return self.status, {"Content-Type": self.content_type}, body


@pytest.mark.parametrize(
    ("status", "content_type", "page", "pads", "error", "says"),
    [
        # a gateway's 403 page echoing the key, the key across the excerpt's cut at every offset
        (403, "text/html", "<html><body>Forbidden. {pad} request header x-api-key: {key}</body></html>",
         ["x" * n for n in range(130, 200)], RafayAuthError, "HTTP 403 Forbidden"),
        # an HTTP 200 that is not JSON: the same excerpt
        (200, "text/html", "<html><body>Maintenance. {pad} x-api-key={key}</body></html>",
         ["x" * n for n in range(140, 200)], RafayResponseError, "not valid JSON"),
        # mostly white space: the key across the cut of the raw body read for the excerpt
        (403, "text/plain", "denied:{pad}{key} (x-api-key)", [" " * n for n in range(1560, 1600)],
         RafayAuthError, "HTTP 403 Forbidden: denied:"),
    ],
    ids=["error page", "200 not JSON", "raw body cut"],
)
def test_an_echoed_key_never_shows_whole_or_in_part_wherever_the_cut_falls(
    status: int, content_type: str, page: str, pads: list[str], error: type[RafayError], says: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Defect h3-8: the excerpt was cut before the key was masked, so a key straddling the cut showed its start."""
    caplog.set_level(logging.DEBUG)
    echo = Echo(status, content_type, page)
    with stub_console(echo) as console:
        client = RafayClient(console.url, ECHOED_KEY, retry=FAST, sleep=Sleeps())
        for pad in pads:
            echo.pad = pad
            caplog.clear()
            with pytest.raises(error) as info:
                list(client.iter_organizations())
            exc = info.value
            shown = f"{exc}\n{exc!r}\n{exc.excerpt}\n{caplog.text}"
            assert says in str(exc), str(exc)
            assert key_runs(shown) == [], f"pad of {len(pad)}: {shown}"
    assert console.requests and all(headers["x-api-key"] == ECHOED_KEY for _, headers in console.requests)


def test_a_record_echoing_the_key_is_masked_in_the_paging_error_wherever_the_cut_falls() -> None:
    """The pager shows a bad listing entry cut to 80 characters: the key is masked there too."""
    echo = Echo(200, "application/json", '{{"items": ["{pad}{key}"]}}')
    with stub_console(echo) as console:
        client = RafayClient(console.url, ECHOED_KEY, retry=FAST, sleep=Sleeps())
        for pad in ["x" * n for n in range(55, 80)]:
            echo.pad = pad
            with pytest.raises(RafayResponseError, match="an entry of 'items' is not an object") as info:
                list(client.iter_organizations())
            assert key_runs(str(info.value)) == [], f"pad of {len(pad)}: {info.value}"


def test_a_redirect_echoing_the_key_is_masked() -> None:
    def answer(path: str, headers: dict[str, str]) -> Reply:
        return 302, {"Location": f"https://login.test/?key={headers['x-api-key']}"}, b""

    with stub_console(answer) as console:
        with pytest.raises(RafayHTTPError, match=r"unexpected redirect to https://login.test/\?key=\*\*\*") as info:
            list(RafayClient(console.url, ECHOED_KEY, retry=FAST, sleep=Sleeps()).iter_organizations())
    assert key_runs(str(info.value)) == []


@responses.activate
def test_malformed_json_is_transient_once_then_fails_clearly() -> None:
    url = f"{BASE}/v2/organizations"
    responses.add(responses.GET, url, body="<html>oops</html>", status=200)
    responses.add(responses.GET, url, json={"items": [{"metadata": {"name": "a"}}]})
    assert len(list(_client().iter_organizations())) == 1

    responses.replace(responses.GET, url, body='{"items": [', status=200)
    with pytest.raises(RafayResponseError, match="not valid JSON"):
        list(_client().iter_organizations())
    assert len(responses.calls) == 3 + 2  # the first listing: a retry and the no-paging-fields probe
    responses.replace(responses.GET, url, body="[1, 2]", status=200)
    with pytest.raises(RafayResponseError, match="expected an object"):
        list(_client().iter_organizations())


@responses.activate
def test_connection_errors_are_retried_then_reported() -> None:
    url = f"{BASE}/v2/organizations"
    responses.add(responses.GET, url, body=requests.ConnectionError("reset by peer"))
    responses.add(responses.GET, url, json={"items": []})
    assert list(_client().iter_organizations()) == []
    responses.replace(responses.GET, url, body=requests.ConnectionError("reset by peer"))
    with pytest.raises(RafayTransportError, match="connection to https://rafay.test failed"):
        list(_client().iter_organizations())


@responses.activate
def test_redirects_are_not_followed() -> None:
    responses.add(responses.GET, f"{BASE}/v2/organizations", status=301, headers={"Location": "https://evil.test/"})
    with pytest.raises(RafayHTTPError, match="unexpected redirect to https://evil.test/"):
        list(_client().iter_organizations())
    assert len(responses.calls) == 1


@responses.activate
def test_requests_carry_the_key_header_and_debug_logs_never_do(caplog: pytest.LogCaptureFixture) -> None:
    responses.add(responses.GET, f"{BASE}/v2/organizations", json={"items": []})
    caplog.set_level(logging.DEBUG)
    list(_client().iter_organizations())
    assert responses.calls[0].request.headers["x-api-key"] == KEY
    assert "GET /v2/organizations?offset=0&limit=100 -> 200" in caplog.text
    assert KEY not in caplog.text


@responses.activate
def test_a_cookie_the_console_sets_is_never_sent_back() -> None:
    """The client sends what it resolved at construction and nothing else (issue 25 builds each GET
    directly, without requests' Session): no cookie jar, as the blog script kept none. A cookie set
    by a load balancer must not ride along with x-api-key on later requests."""
    orgs = [{"name": f"Org {i}", "metadata": {"name": f"org{i}"}} for i in range(3)]
    responses.add_callback(responses.GET, f"{BASE}/v2/organizations", callback=_with_cookie(_page_callback(orgs, 1)))
    assert len(list(_client().iter_organizations())) == 3
    sent = [call.request.headers for call in responses.calls]
    assert len(sent) == 3 and all("Cookie" not in headers for headers in sent)
    assert all(headers["x-api-key"] == KEY and headers["accept"] == "application/json" for headers in sent)
    assert all(call.response.headers["Set-Cookie"].startswith("AWSALB=") for call in responses.calls)


def _with_cookie(callback):  # type: ignore[no-untyped-def]
    def with_cookie(request: requests.PreparedRequest) -> tuple[int, dict, str]:
        status, headers, body = callback(request)
        return status, {**headers, "Set-Cookie": "AWSALB=sticky; Path=/"}, body

    return with_cookie


# --- stats ---------------------------------------------------------------------------------------


def test_percentile_is_nearest_rank() -> None:
    assert percentile([], 50) is None
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 50) == 50 and percentile(values, 95) == 95
    assert percentile([7.0], 95) == 7


def test_stats_are_thread_safe() -> None:
    stats = ClientStats()

    def work() -> None:
        for _ in range(1000):
            stats.add_request(1.0)
            stats.add_page()
            stats.add_retry()

    threads = [threading.Thread(target=work) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    snap = stats.snapshot()
    assert (snap.requests, snap.pages, snap.retries, snap.p95_ms) == (8000, 8000, 8000, 1.0)


@responses.activate
def test_per_call_stats_are_kept_apart_from_the_client_totals() -> None:
    responses.add(responses.GET, f"{BASE}/v2/organizations/a/ncp/profiles", json={"items": []})
    responses.add(responses.GET, f"{BASE}/v2/organizations/b/ncp/profiles", json={"items": []})
    client = _client()
    mine = ClientStats()
    list(client.iter_profiles("a", stats=mine))
    list(client.iter_profiles("b"))
    assert mine.snapshot().requests == 1 and client.stats.snapshot().requests == 2


# --- over real HTTP, against the Rafay simulator ---------------------------------------------------

from rafay_simulator import (  # noqa: E402
    Dataset,
    Fault,
    Instance,
    Org,
    Profile,
    RafaySimulator,
    RawNumber,
    hours_decimal,
    usage_seconds,
)


def _sim_client(sim: RafaySimulator, **kw: object) -> RafayClient:
    kw.setdefault("retry", FAST)
    kw.setdefault("sleep", Sleeps())
    kw.setdefault("read_timeout", 5.0)
    return RafayClient(sim.url, sim.api_key, **kw)  # type: ignore[arg-type]


def sim_requests(sim: RafaySimulator, at_least: int) -> list:
    """The simulator's request log once it holds ``at_least`` records.

    The simulator logs a request just after writing its reply, so a client can be done before the
    last record lands; wait for it (bounded) instead of racing it.
    """
    deadline = time.monotonic() + 5
    while len(sim.requests) < at_least and time.monotonic() < deadline:
        time.sleep(0.005)
    return sim.requests


def _expected_orgs(sim: RafaySimulator) -> list[dict]:
    return [{"name": o.name, "metadata": {"name": o.org_id}} for o in sim.dataset.orgs]


@pytest.mark.parametrize("max_page_size", [None, 4])
def test_sim_pagination_with_and_without_a_server_cap(rafay_sim_factory, max_page_size: int | None) -> None:
    sim = rafay_sim_factory(orgs=23, max_page_size=max_page_size)
    client = _sim_client(sim, page_size=10)
    assert list(client.iter_organizations()) == _expected_orgs(sim)
    step = min(10, max_page_size or 10)
    log = sim_requests(sim, len(range(0, 23, step)))
    assert [int(r.query["offset"]) for r in log] == list(range(0, 23, step))
    assert {r.query["limit"] for r in log} == {"10"}


def test_sim_usage_records_are_exact_decimals_over_pages(rafay_sim_factory) -> None:
    sim = rafay_sim_factory(orgs=3, instances_per_profile=(6, 8), max_page_size=2)
    org = sim.dataset.orgs[0]
    profile = org.profiles[0]
    window = Window(datetime(2026, 10, 1, tzinfo=UTC), datetime(2026, 11, 27, tzinfo=UTC))
    records = list(_sim_client(sim).iter_profile_usage(org.org_id, profile.name, window))
    assert [r["instance_id"] for r in records] == [
        i.instance_id for i in profile.instances if i.created_at < window.end
    ]
    expected = {
        i.instance_id: hours_decimal(usage_seconds(i, window.start, window.end, sim.now())) for i in profile.instances
    }
    for record in records:
        assert isinstance(record["raw_usage"], Decimal | int)
        assert record["raw_usage"] == expected[record["instance_id"]]
    pages = max(1, -(-len(records) // 2))
    assert len(sim_requests(sim, pages)) == pages  # capped at 2 per page, stops at count


def test_sim_partner_usage_pages_with_the_default_limit(rafay_sim_factory) -> None:
    sim = rafay_sim_factory(orgs=6)
    window = Window(datetime(2026, 11, 1, tzinfo=UTC), datetime(2026, 11, 27, tzinfo=UTC))
    client = _sim_client(sim, page_size=7)
    records = list(client.iter_partner_usage("compute", window))
    assert records and all(r["profile_name"] for r in records)
    assert len({(r["instance_organization_id"], r["instance_id"]) for r in records}) == len(records)
    one_org = sim.dataset.orgs[0].org_id
    assert {r["instance_organization_id"] for r in client.iter_partner_usage("compute", window, one_org)} <= {one_org}


def test_sim_429_retry_after_seconds_and_http_date_are_honoured(rafay_sim) -> None:
    soon = format_datetime(datetime.now(UTC) + timedelta(seconds=2), usegmt=True)
    rafay_sim.add_fault(Fault("status", r"^/v2/organizations$", times=1, status=429, retry_after=3))
    rafay_sim.add_fault(Fault("status", r"^/v2/organizations$", times=1, status=429, retry_after=soon))
    sleeps = Sleeps()
    orgs = list(_sim_client(rafay_sim, sleep=sleeps).iter_organizations())
    assert orgs == _expected_orgs(rafay_sim)
    assert [r.status for r in sim_requests(rafay_sim, 3)] == [429, 429, 200]
    assert sleeps[0] == 3 and 0 < sleeps[1] <= 2


def test_sim_gateway_html_errors_are_retried(rafay_sim) -> None:
    rafay_sim.add_fault(Fault("status", "/ncp/profiles$", times=2, status=502, html=True))
    org = rafay_sim.dataset.orgs[0]
    client = _sim_client(rafay_sim)
    assert len(list(client.iter_profiles(org.org_id))) == len(org.profiles)
    assert [r.status for r in sim_requests(rafay_sim, 3)] == [502, 502, 200]
    assert client.stats.snapshot().retries == 2


def test_sim_persistent_500_fails_after_limited_retries_with_an_excerpt(rafay_sim) -> None:
    rafay_sim.add_fault(Fault("status", "/ncp/profiles$", status=500, html=True))
    org = rafay_sim.dataset.orgs[0]
    with pytest.raises(RafayServerError) as info:
        list(_sim_client(rafay_sim, retry=RetryPolicy(attempts=6, backoff_initial=0.001)).iter_profiles(org.org_id))
    message = str(info.value)
    assert f"GET /v2/organizations/{org.org_id}/ncp/profiles?offset=0&limit=100: HTTP 500" in message
    assert "500 Internal Server Error" in message and "<html>" not in message
    assert len(sim_requests(rafay_sim, 3)) == 3  # first try + 2 retries of a 500


def test_sim_malformed_json_is_retried_once_then_fails(rafay_sim) -> None:
    rafay_sim.add_fault(Fault("malformed_json", r"^/v2/organizations$", times=1))
    assert len(list(_sim_client(rafay_sim).iter_organizations())) == len(rafay_sim.dataset.orgs)
    sim_requests(rafay_sim, 2)
    rafay_sim.reset_stats()
    rafay_sim.add_fault(Fault("malformed_json", r"^/v2/organizations$"))
    with pytest.raises(RafayResponseError, match="HTTP 200 but body is not valid JSON"):
        list(_sim_client(rafay_sim).iter_organizations())
    assert len(sim_requests(rafay_sim, 2)) == 2


def test_sim_dropped_connections_are_retried_then_reported(rafay_sim) -> None:
    rafay_sim.add_fault(Fault("drop", r"^/v2/organizations$", times=2))
    assert len(list(_sim_client(rafay_sim).iter_organizations())) == len(rafay_sim.dataset.orgs)
    rafay_sim.add_fault(Fault("drop", r"^/v2/organizations$"))
    with pytest.raises(RafayTransportError, match="connection to http://127.0.0.1:.* failed.*gave up after 4"):
        list(_sim_client(rafay_sim).iter_organizations())


def test_sim_slow_replies_time_out_and_are_retried(rafay_sim) -> None:
    rafay_sim.add_fault(Fault("slow", r"^/v2/organizations$", times=1, delay_ms=1500))
    client = _sim_client(rafay_sim, read_timeout=0.25)
    assert len(list(client.iter_organizations())) == len(rafay_sim.dataset.orgs)
    assert client.stats.snapshot().retries == 1
    rafay_sim.add_fault(Fault("slow", r"^/v2/organizations$", times=2, delay_ms=1500))
    with pytest.raises(RafayTransportError, match=r"read timed out after 0.25 s \(gave up after 2 attempts\)"):
        list(_sim_client(rafay_sim, read_timeout=0.25, retry=RetryPolicy(attempts=2, backoff_initial=0.001))
             .iter_organizations())


def test_sim_connect_failure_is_a_transport_error() -> None:
    sock = __import__("socket").socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()  # nothing listens there now
    client = RafayClient(f"http://127.0.0.1:{port}", KEY, retry=FAST, sleep=Sleeps(), connect_timeout=1)
    with pytest.raises(RafayTransportError, match="connection to"):
        list(client.iter_organizations())


def test_sim_wrong_key_says_what_to_check_and_is_not_retried(rafay_sim, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    client = RafayClient(rafay_sim.url, "wrong-key-123", retry=FAST, sleep=Sleeps())
    with pytest.raises(RafayAuthError) as info:
        list(client.iter_organizations())
    assert str(info.value).startswith("GET /v2/organizations?offset=0&limit=100: HTTP 401 Unauthorized")
    assert "check the API key of connection rafay_default (or RAFAY_DEFAULT_API_KEY)" in str(info.value)
    log = sim_requests(rafay_sim, 1)
    assert len(log) == 1 and not log[0].api_key_ok
    assert "wrong-key-123" not in caplog.text + str(info.value) + repr(info.value)


def test_sim_key_never_appears_in_logs_or_errors(rafay_sim, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    rafay_sim.add_fault(Fault("status", r"^/v2/organizations$", times=1, status=503, html=True))
    rafay_sim.add_fault(Fault("drop", "/ncp/profiles$", times=1))
    client = _sim_client(rafay_sim)
    orgs = list(client.iter_organizations())
    list(client.iter_profiles(orgs[0]["metadata"]["name"]))
    rafay_sim.add_fault(Fault("status", "/ncp/profiles$", status=404))
    with pytest.raises(RafayNotFound) as info:
        list(client.iter_profiles("nope"))
    assert "-> 200" in caplog.text and "-> 503" in caplog.text and "retry" in caplog.text
    assert rafay_sim.api_key not in caplog.text + str(info.value)


def test_sim_one_pooled_session_reuses_connections(rafay_sim_factory) -> None:
    sim = rafay_sim_factory(orgs=8)
    client = _sim_client(sim, concurrency=2)
    for org in list(client.iter_organizations()):
        list(client.iter_profiles(org["metadata"]["name"]))
    assert len(sim_requests(sim, 9)) == 9
    assert sim.connections_opened == 1


def test_sim_tls_with_a_ca_bundle(rafay_sim_factory) -> None:
    sim = rafay_sim_factory(orgs=2, tls=True)
    assert sim.url.startswith("https://")
    assert len(list(_sim_client(sim, verify=sim.ca_bundle).iter_organizations())) == 2
    with pytest.raises(RafayTransportError, match="TLS failure.*ca_bundle"):
        list(_sim_client(sim).iter_organizations())


# --- listings that change while they are paged (issue 9, defect 3) --------------------------------


def _org_ids(orgs: list[dict]) -> list[str]:
    return [o["metadata"]["name"] for o in orgs]


def test_sim_org_inserted_at_the_head_while_paging_is_neither_repeated_nor_lost(rafay_sim_factory) -> None:
    sim = rafay_sim_factory(orgs=7)
    sim.add_fault(Fault("insert_head", r"^/v2/organizations$", after_pages=1))
    orgs = list(_sim_client(sim, page_size=3).iter_organizations())
    assert _org_ids(orgs) == [o.org_id for o in sim.dataset.orgs]  # trusting the offsets: ids[3] twice, ids[0] never
    offsets = [int(r.query["offset"]) for r in sim_requests(sim, 6)]
    assert offsets == [0, 3, 6, 0, 3, 6]  # the inconsistent read, then one from the start


def test_sim_pages_of_a_listing_read_again_are_counted_as_re_read(rafay_sim_factory) -> None:
    """Issue 23 part 3 (metric pages_reread): the pages of every read after a listing's first, per request
    stats and on the client; each request's latency is kept for the timers."""
    sim = rafay_sim_factory(orgs=7)
    sim.add_fault(Fault("insert_head", r"^/v2/organizations$", after_pages=1))
    client = _sim_client(sim, page_size=3)
    stats = ClientStats()
    list(client.iter_organizations(stats=stats))
    snap = stats.snapshot()
    assert (snap.pages, snap.rereads, snap.requests) == (6, 3, 6)  # offsets 0, 3, 6 twice: the second read re-read
    assert client.stats.snapshot().rereads == 3
    assert len(client.stats.latencies()) == len(sim.requests) == 6
    list(client.iter_organizations(stats=(steady := ClientStats())))
    assert steady.snapshot().rereads == 0


def test_sim_profile_removed_while_paging_does_not_skip_another(rafay_sim_factory, caplog) -> None:
    sim = rafay_sim_factory(orgs=1, profiles_per_org=(6, 6))
    org = sim.dataset.orgs[0]
    sim.add_fault(Fault("remove_head", "/ncp/profiles$", after_pages=2, times=1))
    profiles = list(_sim_client(sim, page_size=2).iter_profiles(org.org_id))
    assert [p["metadata"]["name"] for p in profiles] == [p.name for p in org.profiles][1:]  # the head is gone now
    assert "count changed from 6 to 5 at page 2" in caplog.text


def test_sim_usage_entries_restart_and_carry_page_positions(rafay_sim_factory) -> None:
    instances = [Instance(f"019c0000-0000-7000-8000-00000000010{i}", f"vm-{i}", WINDOW.start) for i in range(5)]
    sim = rafay_sim_factory(dataset=Dataset([Org("org1", "One", [Profile("p1", "compute", 1, instances=instances)])]))
    sim.add_fault(Fault("insert_head", "/usage$", after_pages=1))
    pages: list[int] = []
    entries = list(_sim_client(sim, page_size=2).profile_usage_entries(
        "org1", "p1", WINDOW, on_page=lambda kind, key, n, body: pages.append(n)))
    restarts = [e for e in entries if isinstance(e, ListingRestart)]
    assert len(restarts) == 1 and restarts[0].read == 2 and "count changed from 4 to 5" in restarts[0].reason
    final = entries[entries.index(restarts[0]) + 1 :]
    assert all(isinstance(e, PagedItem) for e in final)
    assert [(e.page_no, e.index, e.item["instance_name"]) for e in final] == [
        (0, 0, "vm-0"), (0, 1, "vm-1"), (1, 0, "vm-2"), (1, 1, "vm-3"), (2, 0, "vm-4"),
    ]
    assert pages == [0, 1, 2, 0, 1, 2]  # page numbers restart with the read: landed files are replaced
    public = list(_sim_client(sim, page_size=2).iter_profile_usage("org1", "p1", WINDOW))
    assert [r["instance_name"] for r in public] == [f"vm-{i}" for i in range(5)]


def test_sim_partner_listing_is_read_again_when_it_changes(rafay_sim_factory) -> None:
    sim = rafay_sim_factory(orgs=6)
    window = Window(datetime(2026, 11, 1, tzinfo=UTC), datetime(2026, 11, 27, tzinfo=UTC))
    steady = list(_sim_client(sim, page_size=7).iter_partner_usage("compute", window))
    sim.add_fault(Fault("remove_head", "/kind/compute/usage$", after_pages=1, times=1))
    changed = list(_sim_client(sim, page_size=7).iter_partner_usage("compute", window))
    assert changed == steady[1:]


def test_sim_a_listing_that_never_holds_still_fails_naming_it_and_the_reads(rafay_sim_factory) -> None:
    sim = rafay_sim_factory(orgs=30)
    sim.add_fault(Fault("remove_head", r"^/v2/organizations$", after_pages=1))  # forever
    with pytest.raises(RafayListingInconsistent) as info:
        list(_sim_client(sim, page_size=5).iter_organizations())
    message = str(info.value)
    assert message.startswith("the organization listing (GET /v2/organizations) changed while it was paged, on each "
                              "of 3 read(s) from the start: read 1: count changed from 30 to 29 at page 1; read 2: ")
    assert "read 3: " in message and "listing_reads" in message and sim.api_key not in message
    sim.clear_faults()
    sim.add_fault(Fault("remove_head", r"^/v2/organizations$", after_pages=1, times=8))
    sim.reset_stats()
    with pytest.raises(RafayListingInconsistent, match="on each of 2 read"):
        list(_sim_client(sim, page_size=5, retry=RetryPolicy(attempts=2, listing_reads=2)).iter_organizations())
    assert [int(r.query["offset"]) for r in sim_requests(sim, 9)].count(0) == 2


def test_listing_reads_must_be_positive() -> None:
    with pytest.raises(RafayConfigError, match="listing_reads"):
        _client(retry=RetryPolicy(listing_reads=0))


def test_sim_a_stable_duplicate_is_accepted_after_two_identical_reads(rafay_sim_factory, caplog) -> None:
    twice = Instance("019c0000-0000-7000-8000-000000000201", "vm-2x", WINDOW.start, copies=2)
    other = Instance("019c0000-0000-7000-8000-000000000202", "vm", WINDOW.start)
    sim = rafay_sim_factory(dataset=Dataset([Org("org1", "One", [Profile("p1", "compute", 1, instances=[twice, other])])]),
                            max_page_size=1)
    records = list(_sim_client(sim).iter_profile_usage("org1", "p1", WINDOW))
    assert [r["instance_name"] for r in records] == ["vm-2x", "vm-2x", "vm"]
    assert len(sim_requests(sim, 6)) == 6  # two identical reads of three pages
    assert "1 record(s) on page 1 already came on an earlier page" in caplog.text and "stable" in caplog.text


# --- paging variants (issue 9, defect 10c) -------------------------------------------------------------


def test_sim_capped_pages_echoing_the_requested_limit_without_count_are_read_to_the_end(rafay_sim_factory) -> None:
    many = [Instance(f"019c0000-0000-7000-8000-{i:012d}", f"vm-{i}", WINDOW.start) for i in range(120)]
    sim = rafay_sim_factory(dataset=Dataset([Org("org1", "One", [Profile("p1", "compute", 1, instances=many)])]),
                            max_page_size=50, echo_requested_limit=True, omit_count=True)
    records = list(_sim_client(sim, page_size=100).iter_profile_usage("org1", "p1", WINDOW))
    assert [r["instance_name"] for r in records] == [f"vm-{i}" for i in range(120)]  # not 50 of 120
    assert [int(r.query["offset"]) for r in sim_requests(sim, 4)] == [0, 50, 100, 120]


def test_sim_a_seed_era_server_without_paging_fields_is_one_page_not_an_error(rafay_sim_factory) -> None:
    """A reply without paging fields: one probe (the next offset, as the next page would be asked for)
    tells a server that ignores paging (it answers the whole listing again) from one that pages without
    saying so (see the next test); the listing is the first reply, nothing counted twice."""
    sim = rafay_sim_factory(orgs=12, ignore_paging=True)
    client = _sim_client(sim, page_size=5)
    assert _org_ids(list(client.iter_organizations())) == [o.org_id for o in sim.dataset.orgs]
    org = sim.dataset.orgs[0]
    assert len(list(client.iter_profiles(org.org_id))) == len(org.profiles)
    asked = [(r.path.rsplit("/", 1)[-1], r.query["offset"], r.query["limit"]) for r in sim_requests(sim, 4)]
    assert asked == [("organizations", "0", "5"), ("organizations", "12", "5"),
                     ("profiles", "0", "5"), ("profiles", str(len(org.profiles)), "5")]


@pytest.mark.parametrize("cap", [None, 7])
def test_sim_a_server_that_pages_without_paging_fields_is_read_to_the_end(rafay_sim_factory, cap: int | None) -> None:
    """A server that honours offset/limit (and may cap pages below the limit) but sends no count, offset or
    limit back: its first page looks like a seed-era server's whole listing. Taking it for one lost every
    record beyond the first page (silently: 10,000 of 19,500 rows, 100 of 130 orgs); the probe finds out."""
    many = [Instance(f"019c0000-0000-7000-8000-{i:012d}", f"vm-{i}", WINDOW.start) for i in range(25)]
    sim = rafay_sim_factory(dataset=Dataset([Org("org1", "One", [Profile("p1", "compute", 1, instances=many)])]),
                            omit_paging_fields=True, max_page_size=cap)
    records = list(_sim_client(sim, page_size=10).iter_profile_usage("org1", "p1", WINDOW))
    assert [r["instance_name"] for r in records] == [f"vm-{i}" for i in range(25)]
    page = cap or 10
    offsets = [int(r.query["offset"]) for r in sim_requests(sim, 4)]
    assert offsets == [*range(0, 25, page), 25]  # the probe is the second page, read once; ends on an empty page


def test_sim_absurd_number_literals_parse_instead_of_failing_the_page(rafay_sim_factory) -> None:
    """A 5000-digit integer is beyond Python's int parsing limit: a Decimal, not a malformed reply."""
    digits = "9" * 5000
    odd = [
        Instance("019c0000-0000-7000-8000-000000000301", "long", WINDOW.start, record_overrides={"raw_usage": RawNumber(digits)}),
        Instance("019c0000-0000-7000-8000-000000000302", "exp", WINDOW.start,
                 record_overrides={"raw_usage": RawNumber("1E+200000")}),
    ]
    sim = rafay_sim_factory(dataset=Dataset([Org("org1", "One", [Profile("p1", "compute", 1, instances=odd)])]))
    records = list(_sim_client(sim).iter_profile_usage("org1", "p1", WINDOW))
    assert records[0]["raw_usage"] == Decimal(digits) and records[1]["raw_usage"] == Decimal("1E+200000")
    assert isinstance(records[0]["usage_hours"], Decimal | int)


# --- the key over plain http (issue 9, defect 10e) ----------------------------------------------------


@pytest.mark.parametrize(
    "url", ["http://127.0.0.1:8080", "http://127.8.9.10", "http://[::1]:9000", "http://localhost:1", "http://LOCALHOST",
            "http://[::ffff:127.0.0.1]:80", "https://rafay.example", "rafay.example"],
)
def test_plain_http_is_fine_to_loopback_hosts_and_https_anywhere(url: str) -> None:
    assert RafayClient(url, KEY).base_url


@pytest.mark.parametrize(
    ("url", "host"),
    [("http://rafay.example", "rafay.example"), ("http://10.0.0.5:8080", "10.0.0.5"), ("http://[fd00::2]:80", "fd00::2"),
     ("http://localhost.evil.example", "localhost.evil.example"), ("http://127.0.0.1.nip.io", "127.0.0.1.nip.io")],
)
def test_plain_http_elsewhere_is_refused_without_showing_the_key(
    url: str, host: str, caplog: pytest.LogCaptureFixture
) -> None:
    with pytest.raises(RafayConfigError) as info:
        RafayClient(url, KEY)
    message = str(info.value)
    assert f"plain http to {host}:" in message and "allow_insecure_http" in message and KEY not in message
    caplog.set_level(logging.WARNING)
    assert RafayClient(url, KEY, allow_insecure_http=True).base_url == normalize_base_url(url)
    assert "unencrypted" in caplog.text and KEY not in caplog.text


def test_sim_key_is_not_sent_over_plain_http_to_a_network_host(rafay_sim_factory, network_address: str) -> None:
    sim = rafay_sim_factory(orgs=2, host="0.0.0.0")
    address = network_address
    url = f"http://{address}:{sim.port}"
    with pytest.raises(RafayConfigError, match=f"plain http to {address}"):
        list(RafayClient(url, sim.api_key, retry=FAST, sleep=Sleeps()).iter_organizations())
    assert sim.requests == []  # nothing left the client, the key least of all
    allowed = RafayClient(url, sim.api_key, retry=FAST, sleep=Sleeps(), allow_insecure_http=True)
    assert len(list(allowed.iter_organizations())) == 2
    assert [r.api_key_ok for r in sim_requests(sim, 1)] == [True]


@responses.activate
def test_a_netrc_entry_for_the_console_adds_no_credentials(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The key travels only in x-api-key; requests' per-request ~/.netrc look-up is off once the
    environment (proxies, CA bundle) has been resolved at construction."""
    netrc = tmp_path / ".netrc"
    netrc.write_text("machine rafay.test login someone password hunter2\n")
    netrc.chmod(0o600)
    monkeypatch.setenv("NETRC", str(netrc))
    responses.add(responses.GET, f"{BASE}/v2/organizations", json={"items": [], "count": 0})
    list(_client().iter_organizations())
    assert len(responses.calls) == 1
    assert "Authorization" not in responses.calls[0].request.headers
