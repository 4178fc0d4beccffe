"""Where the client may send the API key: base URL normalisation, the https/loopback rule, path encoding.

The key is a Default Org admin credential, so these rules run before any request is built: a bare
domain means https, plain http goes only to this machine unless allowed explicitly, and org or
profile names are percent-encoded so they can never change the path they are sent to.
"""

from __future__ import annotations

import functools
import ipaddress
import logging
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote, urlencode, urlsplit, urlunsplit

from rafay_billing.errors import RafayConfigError

log = logging.getLogger("rafay_billing.source.client")

INSECURE_HTTP_HINT = (
    "allow it explicitly if that host really only serves http: connection extra "
    "allow_insecure_http: true, rafay-billing metrics --allow-insecure-http (or "
    "RAFAY_ALLOW_INSECURE_HTTP=1), RafayClient(allow_insecure_http=True)"
)


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
    if "@" in parts.netloc:  # before any message that shows the URL: its password would be printed
        shown = urlunsplit(parts._replace(netloc="***@" + parts.netloc.rsplit("@", 1)[1]))
        raise RafayConfigError(
            f"Rafay console URL {shown!r} must not carry a user or password: the console takes the API key "
            "alone (RAFAY_DEFAULT_API_KEY, or the password of connection rafay_default)"
        )
    if parts.scheme.lower() not in ("http", "https"):
        raise RafayConfigError(f"Rafay console URL must be http(s), got scheme {parts.scheme!r} in {value!r}")
    if not parts.hostname or any(c.isspace() for c in text):
        raise RafayConfigError(f"Rafay console URL {value!r} is not a valid domain or base URL")
    if parts.query or parts.fragment:
        raise RafayConfigError(f"Rafay console URL {value!r} must not carry a query or fragment")
    return f"{parts.scheme.lower()}://{parts.netloc}{parts.path.rstrip('/')}"


def check_api_key(api_key: str | None) -> str:
    """The key, stripped; refused (without echoing it) when empty or not sendable in a header."""
    key = (api_key or "").strip()
    if not key:
        raise RafayConfigError(
            "no Rafay API key: set the password of connection rafay_default or RAFAY_DEFAULT_API_KEY"
        )
    if any(ord(c) < 0x20 or ord(c) == 0x7F or ord(c) > 0xFF for c in key):
        # Never echo the key: requests' own InvalidHeader message would.
        raise RafayConfigError("the Rafay API key contains characters that cannot be sent in an HTTP header")
    return key


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


def encode_query(params: Mapping[str, Any]) -> str:
    """``urlencode(params)``, remembered: a run asks for the same few queries (one window, the first
    page of each listing) hundreds of times, and encoding one cost more than sending it."""
    try:
        return _encoded(tuple(params.items()))
    except TypeError:  # a value that is not hashable: encoded as it is
        return urlencode(params)


@functools.lru_cache(maxsize=4096)
def _encoded(items: tuple[tuple[str, Any], ...]) -> str:
    return urlencode(items)
