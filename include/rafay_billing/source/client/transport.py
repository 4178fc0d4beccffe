"""How the client reaches the console: forward proxies and a client certificate, checked up front.

Why a module of its own: a proxy is one more party on the path of the API key. Over https the proxy
only relays an encrypted tunnel (``CONNECT``), whatever its own scheme; for a plain-http console it
receives every request, key included, in clear text. So a proxy in front of a plain-http console is
refused unless ``allow_insecure_http`` says otherwise, and a client certificate (mutual TLS) is only
accepted where it is presented: over https. Files are checked when the client is built, so a wrong
path fails the configuration step with its name, not the first request with an OpenSSL message.
"""

from __future__ import annotations

import logging
import os
import ssl
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from rafay_billing.errors import RafayConfigError

log = logging.getLogger("rafay_billing.source.client")

PROXY_SCHEMES = ("http", "https")
# requests' proxies keys: a scheme, "all", or "scheme://host" / "all://host" for one host.
_KEY_SCHEMES = ("http", "https", "all")

ClientCert = str | tuple[str, str]


def redact(url: str) -> str:
    """A proxy URL fit for messages and logs: any ``user:password@`` becomes ``***@``."""
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    return urlunsplit((parts.scheme, "***@" + parts.netloc.rsplit("@", 1)[1], parts.path, parts.query, ""))


def check_proxies(value: Mapping[str, Any] | None, where: str = "proxies") -> dict[str, str]:
    """``{"https": "http://proxy:3128", ...}`` (requests' form) validated: keys ``http``, ``https``,
    ``all`` or ``<scheme>://<host>``, values http(s) proxy URLs with a host. Errors name ``where``."""
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise RafayConfigError(
            f'{where} must be a JSON object like {{"https": "http://proxy.acme.com:3128"}}, '
            f"got {type(value).__name__}"
        )
    out: dict[str, str] = {}
    for key, url in value.items():
        name = str(key).strip().lower()
        scheme = name.split("://", 1)[0]
        if scheme not in _KEY_SCHEMES or (name != scheme and not urlsplit(name).hostname):
            raise RafayConfigError(
                f"{where}: key {key!r} must be http, https, all or <scheme>://<host> (as requests reads proxies)"
            )
        if url in (None, ""):
            continue
        if not isinstance(url, str):
            raise RafayConfigError(f"{where}: the proxy for {key!r} must be a URL text, got {type(url).__name__}")
        out[name] = check_proxy_url(url, f"{where}: the proxy for {key!r}")
    return out


def check_proxy_url(url: str, where: str = "proxy") -> str:
    """One proxy URL: http:// or https:// with a host (socks would need PySocks, not installed)."""
    text = url.strip()
    try:
        parts = urlsplit(text if "://" in text else "http://" + text)
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        raise RafayConfigError(f"{where} {redact(text)!r} is not a valid URL") from None
    if parts.scheme.lower() not in PROXY_SCHEMES:
        raise RafayConfigError(
            f"{where} must be an http:// or https:// URL, got scheme {parts.scheme!r} in {redact(text)!r}"
        )
    if not parts.hostname or any(c.isspace() for c in text):
        raise RafayConfigError(f"{where} {redact(text)!r} has no host")
    return urlunsplit(parts)


def check_proxy_transport(base_url: str, proxy: str | None, allow_insecure_http: bool = False) -> None:
    """Refuse a proxy that would receive the API key in clear text: a plain-http console through any
    proxy (the proxy reads the request, key included), unless ``allow_insecure_http``.

    An https console is fine through an http:// or https:// proxy: the proxy relays a TLS tunnel
    (``CONNECT``) and never sees the key. Loopback is no exception here: a loopback host seen by a
    proxy is the proxy's own machine, and the key has already been handed to the proxy.
    """
    if not proxy or urlsplit(base_url).scheme != "http":
        return
    shown = redact(proxy)
    if allow_insecure_http:
        log.warning("The Rafay API key goes unencrypted (plain http) through proxy %s to %s: allowed explicitly",
                    shown, base_url)
        return
    raise RafayConfigError(
        f"refusing to send the Rafay API key over plain http through proxy {shown} (the console URL "
        f"{base_url} is http://, so the proxy would read the key): use the console's https:// URL (the proxy "
        "then only relays an encrypted tunnel), bypass the proxy for this host (NO_PROXY, or trust_env "
        "false without proxies), or allow it explicitly with allow_insecure_http"
    )


def check_client_cert(cert: ClientCert | None, base_url: str, where: str = "cert") -> ClientCert | None:
    """A client certificate for mutual TLS: a PEM file with the certificate and its key, or a
    (certificate, key) pair of PEM files. Loaded once here so a wrong path, a key that does not match,
    or an encrypted key (no way to ask for its passphrase in a task) fails with ``where`` named."""
    if cert is None or cert == "" or cert == ():
        return None
    if isinstance(cert, str):
        paths: tuple[str, ...] = (cert,)
    elif isinstance(cert, (tuple, list)) and len(cert) == 2 and all(isinstance(p, str) and p for p in cert):
        paths = (cert[0], cert[1])
    else:
        raise RafayConfigError(f"{where} must be a PEM file path, or a [certificate, key] pair of paths")
    if urlsplit(base_url).scheme != "https":
        raise RafayConfigError(
            f"{where} is set but the console URL {base_url} is plain http: a client certificate is only "
            "presented over https (use the https:// URL, or remove the certificate)"
        )
    for path in paths:
        if not (os.path.isfile(path) and os.access(path, os.R_OK)):
            raise RafayConfigError(f"{where}: {path!r} is not a readable file")

    def no_passphrase() -> str:
        raise RafayConfigError(f"{where}: the private key is encrypted; give an unencrypted PEM key file")

    try:
        ssl.create_default_context().load_cert_chain(paths[0], paths[1] if len(paths) > 1 else None,
                                                     password=no_passphrase)
    except ssl.SSLError as exc:
        what = "certificate and key" if len(paths) > 1 else "certificate (with its key in the same file)"
        raise RafayConfigError(
            f"{where}: {', '.join(map(repr, paths))} is not a usable PEM {what}: {exc.reason or exc}"
        ) from None
    return paths[0] if len(paths) == 1 else (paths[0], paths[1])
