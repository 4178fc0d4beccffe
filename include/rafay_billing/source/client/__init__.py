"""The Airflow-free Rafay HTTP client, one module per concern (like dlt's REST client).

- :mod:`.core`: :class:`RafayClient` (session, one attempt, status errors, the listings it reads)
- :mod:`.urls`: base URL normalisation, the https/loopback rule for the key, path encoding
- :mod:`.transport`: proxies (never a plain-http console through one unless allowed), the client certificate
- :mod:`.retry`: the typed :class:`RetryPolicy` and the tenacity loop that applies it
- :mod:`.paging`: the pager that does not trust the server (consistency re-reads)
- :mod:`.decoding`: reply bodies as exact JSON, listing pages with each record's raw-text fingerprint
- :mod:`.scrub`: the key masked in text a server sent, before it is cut and at the cut
- :mod:`.stats`: request counters and latency percentiles

Every name is re-exported here: import from ``rafay_billing.source.client``.
"""

from rafay_billing.source.client.core import PARTNER_KINDS, PARTNER_USAGE_PATH, RafayClient
from rafay_billing.source.client.paging import (
    Listing,
    ListingEntry,
    ListingPart,
    ListingRestart,
    Page,
    PagedItem,
    PageHook,
    PageItems,
    Pager,
)
from rafay_billing.source.client.retry import RetryPolicy, parse_retry_after
from rafay_billing.source.client.scrub import cut_scrubbed, scrub_secret
from rafay_billing.source.client.stats import ClientStats, StatsSnapshot, percentile
from rafay_billing.source.client.transport import (
    ClientCert,
    check_client_cert,
    check_proxies,
    check_proxy_transport,
    check_proxy_url,
)
from rafay_billing.source.client.urls import (
    INSECURE_HTTP_HINT,
    check_api_key,
    check_key_transport,
    encode_segment,
    is_loopback_host,
    normalize_base_url,
)

__all__ = [
    "INSECURE_HTTP_HINT",
    "ClientCert",
    "PARTNER_KINDS",
    "PARTNER_USAGE_PATH",
    "ClientStats",
    "Listing",
    "ListingEntry",
    "ListingPart",
    "ListingRestart",
    "Page",
    "PageHook",
    "PagedItem",
    "PageItems",
    "Pager",
    "RafayClient",
    "RetryPolicy",
    "StatsSnapshot",
    "check_api_key",
    "check_client_cert",
    "check_key_transport",
    "check_proxies",
    "check_proxy_transport",
    "check_proxy_url",
    "cut_scrubbed",
    "encode_segment",
    "is_loopback_host",
    "normalize_base_url",
    "parse_retry_after",
    "percentile",
    "scrub_secret",
]
