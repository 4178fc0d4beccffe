"""``RafayHook``: the ``rafay`` connection -> a ready ``RafayClient``.

The hook only does the Airflow part: resolve connection ``rafay_default`` (host = console URL,
password = API key, extras for TLS (``ca_bundle``, ``verify``, a client certificate ``cert`` /
``cert_key``), proxies (``proxies``, ``trust_env``), timeouts, retries, paging, listing re-reads, concurrency,
``allow_insecure_http`` and ``api``: ``v2``, ``partner`` or ``partner_only``, the usage source), fall back to the seed script's ``RAFAY_CONSOLE_URL`` /
``RAFAY_DEFAULT_API_KEY`` (and ``RAFAY_ALLOW_INSECURE_HTTP``) when the connection is not defined,
mask the key, and build the client lazily. All HTTP behaviour lives in ``rafay_billing.source.client`` so the
``rafay-billing`` command and the DAG read the API the same way.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from airflow.sdk import BaseHook
from airflow.sdk.exceptions import AirflowNotFoundException
from airflow.sdk.log import mask_secret

from rafay_billing import settings as defaults
from rafay_billing.errors import RafayConfigError
from rafay_billing.source.client import (
    ClientCert,
    PageHook,
    RafayClient,
    RetryPolicy,
    check_client_cert,
    check_proxies,
    normalize_base_url,
)
from rafay_billing.source.sources import APIS, UsageSource, usage_source
from rafay_billing.window import Window
from rafay_provider import RAFAY_UI_FIELD_BEHAVIOUR
from rafay_provider.settings import RAFAY_CONN_ID

ENV_URL = defaults.ENV_CONSOLE_URL
ENV_KEY = defaults.ENV_API_KEY
ENV_INSECURE = defaults.ENV_ALLOW_INSECURE_HTTP
ENV_API = defaults.ENV_API
_TRUE = ("true", "1", "yes", "on")
_FALSE = ("false", "0", "no", "off", "")


@dataclass(frozen=True)
class RafaySettings:
    """Everything needed to build a client, resolved from a connection or the environment."""

    base_url: str
    api_key: str = field(repr=False)
    source: str
    verify: bool | str = True
    connect_timeout: float = defaults.CONNECT_TIMEOUT
    read_timeout: float = defaults.READ_TIMEOUT
    max_retries: int = defaults.MAX_RETRIES
    page_size: int = defaults.PAGE_SIZE
    concurrency: int = defaults.CONCURRENCY
    listing_reads: int = defaults.LISTING_READS
    allow_insecure_http: bool = False
    api: str = "v2"
    proxies: dict[str, str] = field(default_factory=dict, repr=False)
    trust_env: bool = True
    cert: ClientCert | None = None


class RafayHook(BaseHook):
    """Interact with Rafay's usage metering APIs through connection ``rafay_default`` (type ``rafay``).

    :param rafay_conn_id: connection id; ``rafay_default`` falls back to ``RAFAY_CONSOLE_URL`` and
        ``RAFAY_DEFAULT_API_KEY`` when not defined.
    :param concurrency: requests in flight at most (overrides the connection's ``concurrency`` extra).
    :param on_page: called with every raw listing page (``kind, key, page_no, body``), e.g. to land it.
    """

    conn_name_attr = "rafay_conn_id"
    default_conn_name = RAFAY_CONN_ID
    conn_type = "rafay"
    hook_name = "Rafay"

    def __init__(
        self,
        rafay_conn_id: str = default_conn_name,
        *,
        concurrency: int | None = None,
        on_page: PageHook | None = None,
    ) -> None:
        super().__init__()
        self.rafay_conn_id = rafay_conn_id
        self.concurrency = concurrency
        self.on_page = on_page
        self._client: RafayClient | None = None
        self._settings: RafaySettings | None = None
        self._lock = threading.Lock()

    @classmethod
    def get_ui_field_behaviour(cls) -> dict[str, Any]:
        """Connection form: host is the console URL, password the API key, unused fields hidden."""
        return {
            "hidden_fields": list(RAFAY_UI_FIELD_BEHAVIOUR["hidden-fields"]),
            "relabeling": dict(RAFAY_UI_FIELD_BEHAVIOUR["relabeling"]),
            "placeholders": dict(RAFAY_UI_FIELD_BEHAVIOUR["placeholders"]),
        }

    # -- configuration -------------------------------------------------------------------------

    def get_settings(self) -> RafaySettings:
        """The connection (or the environment fallback) as validated settings, resolved once per hook:
        the client and the usage source of a task come from one reading of the connection."""
        if self._settings is None:
            self._settings = self._resolve_settings()
        return self._settings

    def _resolve_settings(self) -> RafaySettings:
        try:
            conn = self.get_connection(self.rafay_conn_id)
        except AirflowNotFoundException:
            if self.rafay_conn_id != self.default_conn_name:
                raise AirflowNotFoundException(
                    f"Rafay connection {self.rafay_conn_id!r} is not defined "
                    "(add it: type rafay, host = console URL, password = API key)"
                ) from None
            return self._settings_from_env()
        host = (conn.host or "").strip()
        if conn.port and "://" not in host and ":" not in host:
            host = f"{host}:{conn.port}"
        key = (conn.password or "").strip()
        if key:
            mask_secret(key)
        where = f"connection {self.rafay_conn_id}"
        if not host:
            raise RafayConfigError(f"{where} has no host: set it to the console domain or a base URL")
        if not key:
            raise RafayConfigError(f"{where} has no password: set it to the Rafay API key")
        extras = conn.extra_dejson or {}
        base_url = normalize_base_url(host)
        return RafaySettings(
            base_url=base_url,
            api_key=key,
            source=where,
            verify=_verify(extras, where),
            connect_timeout=_number(extras, "connect_timeout", defaults.CONNECT_TIMEOUT, where),
            read_timeout=_number(extras, "read_timeout", defaults.READ_TIMEOUT, where),
            max_retries=int(_number(extras, "max_retries", defaults.MAX_RETRIES, where, whole=True)),
            page_size=int(_number(extras, "page_size", defaults.PAGE_SIZE, where, whole=True)),
            concurrency=int(_number(extras, "concurrency", defaults.CONCURRENCY, where, whole=True)),
            listing_reads=int(_number(extras, "listing_reads", defaults.LISTING_READS, where, whole=True)),
            allow_insecure_http=_flag(_extra(extras, "allow_insecure_http"), f"{where}: extra allow_insecure_http"),
            api=_api(_extra(extras, "api"), f"{where}: extra api"),
            proxies=_proxies(_extra(extras, "proxies"), f"{where}: extra proxies"),
            trust_env=_flag(_extra(extras, "trust_env"), f"{where}: extra trust_env", default=True),
            cert=_cert(_extra(extras, "cert"), _extra(extras, "cert_key"), base_url, where),
        )

    def _settings_from_env(self) -> RafaySettings:
        url, key = os.environ.get(ENV_URL, "").strip(), os.environ.get(ENV_KEY, "").strip()
        if key:
            mask_secret(key)
        if not url or not key:
            missing = " and ".join(n for n, v in ((ENV_URL, url), (ENV_KEY, key)) if not v)
            raise RafayConfigError(
                f"Rafay connection {self.default_conn_name} is not defined and {missing} "
                f"{'are' if ' and ' in missing else 'is'} not set: add the "
                "connection (type rafay, host = console URL, password = API key) or set "
                f"{ENV_URL} and {ENV_KEY}"
            )
        self.log.info("Connection %s is not defined; using %s and %s", self.default_conn_name, ENV_URL, ENV_KEY)
        insecure = _flag(os.environ.get(ENV_INSECURE), ENV_INSECURE)
        return RafaySettings(
            base_url=normalize_base_url(url), api_key=key, source="environment", allow_insecure_http=insecure,
            api=_api(os.environ.get(ENV_API), ENV_API),
        )

    # -- the client ----------------------------------------------------------------------------

    def get_conn(self) -> RafayClient:
        """The hook's client (built on first use, then reused: one pooled session per hook)."""
        with self._lock:
            if self._client is None:
                s = self.get_settings()
                hint = (
                    f"check the API key of connection {self.rafay_conn_id} (or {ENV_KEY})"
                    if s.source != "environment"
                    else f"check {ENV_KEY} (connection {self.default_conn_name} is not defined)"
                )
                try:
                    self._client = RafayClient(
                        s.base_url,
                        s.api_key,
                        verify=s.verify,
                        connect_timeout=s.connect_timeout,
                        read_timeout=s.read_timeout,
                        retry=RetryPolicy(attempts=s.max_retries, listing_reads=s.listing_reads),
                        page_size=s.page_size,
                        concurrency=self.concurrency or s.concurrency,
                        on_page=self.on_page,
                        auth_hint=hint,
                        allow_insecure_http=s.allow_insecure_http,
                        proxies=s.proxies,
                        trust_env=s.trust_env,
                        cert=s.cert,
                    )
                except RafayConfigError as exc:
                    raise RafayConfigError(f"{s.source}: {exc}") from None
                self.log.debug("Rafay client for %s (%s)", s.base_url, s.source)
            return self._client

    def get_source(self) -> UsageSource:
        """The usage source the connection's ``api`` extra names (``v2`` unless it says ``partner`` or
        ``partner_only``; the latter only ever by name, never inferred from a 404)."""
        return usage_source(self.get_settings().api)

    def close(self) -> None:
        with self._lock:
            if self._client is not None:
                self._client.close()
                self._client = None

    # -- reads (thin, for DAG authors) ---------------------------------------------------------

    def iter_organizations(self) -> Iterator[dict]:
        return self.get_conn().iter_organizations()

    def iter_profiles(self, org_id: str) -> Iterator[dict]:
        return self.get_conn().iter_profiles(org_id)

    def iter_profile_usage(self, org_id: str, profile: str, window: Window) -> Iterator[dict]:
        return self.get_conn().iter_profile_usage(org_id, profile, window)

    def iter_partner_usage(self, kind: str, window: Window, org_id: str | None = None) -> Iterator[dict]:
        return self.get_conn().iter_partner_usage(kind, window, org_id)

    def test_connection(self) -> tuple[bool, str]:
        """Lists the organizations the key can see through the chosen source (the UI's Test button).

        With ``api: partner`` that is the org listing (a 404 says to set ``partner_only``); with
        ``api: partner_only`` the orgs of yesterday's partner usage (UTC).
        """
        try:
            client = self.get_conn()
            source = self.get_source()
            today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
            count = len(source.list_orgs(client, Window(today - timedelta(days=1), today)))
        except Exception as exc:
            return False, str(exc)
        via = " through the partner API" if source.api != "v2" else ""
        return True, f"Connected to {client.base_url}: {count} organization(s) visible{via}"


def _extra(extras: dict, name: str) -> Any:
    """Extras as saved by the UI form (``extra__rafay__<name>``) or written by hand (``<name>``)."""
    value = extras.get(name)
    if value in (None, ""):
        value = extras.get(f"extra__rafay__{name}")
    return None if value == "" else value


def _number(extras: dict, name: str, default: float, where: str, *, whole: bool = False) -> float:
    value = _extra(extras, name)
    if value is None:
        return default
    try:
        number = float(value) if not isinstance(value, bool) else float("nan")
    except (TypeError, ValueError):
        number = float("nan")
    if not number > 0 or (whole and number != int(number)):
        kind = "a positive whole number" if whole else "a positive number of seconds"
        raise RafayConfigError(f"{where}: extra {name} must be {kind}, got {value!r}")
    return number


def _flag(value: Any, where: str, *, default: bool = False) -> bool:
    """A yes/no setting: JSON true/false or text like ``true``/``0``; unset = ``default``. Anything else is refused."""
    if value is None:
        return default
    if isinstance(value, bool):
        return value
    if str(value).strip().lower() in _TRUE:
        return True
    if str(value).strip().lower() in _FALSE:
        return False
    raise RafayConfigError(f"{where} must be true or false, got {value!r}")


def _api(value: Any, where: str) -> str:
    """Which usage API to read: ``v2`` (unset), ``partner`` or ``partner_only``; anything else is refused, naming them."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return "v2"
    name = str(value).strip().lower()
    if name not in APIS:
        raise RafayConfigError(f"{where} must be one of {', '.join(APIS)}, got {value!r}")
    return name


def _proxies(value: Any, where: str) -> dict[str, str]:
    """Extra ``proxies``: a JSON object (or its text, as the form stores it) in requests' form,
    ``{"https": "http://proxy.acme.com:3128"}``; proxy passwords are masked like the key."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            raise RafayConfigError(
                f'{where} must be a JSON object like {{"https": "http://proxy.acme.com:3128"}}, got text that '
                "is not JSON"
            ) from None
    proxies = check_proxies(value, where)
    for url in proxies.values():
        password = urlsplit(url).password
        if password:
            mask_secret(password)
    return proxies


def _cert(cert: Any, key: Any, base_url: str, where: str) -> ClientCert | None:
    """Extras ``cert`` (a PEM file with certificate and key, or a ``[certificate, key]`` pair written by
    hand) and ``cert_key`` (the key's PEM file, when ``cert`` holds only the certificate)."""
    if cert is None:
        if key is not None:
            raise RafayConfigError(f"{where}: extra cert_key is set without extra cert (the certificate's PEM path)")
        return None
    value: ClientCert
    if isinstance(cert, str):
        value = (cert.strip(), str(key).strip()) if key is not None else cert.strip()
    elif isinstance(cert, list) and len(cert) == 2 and all(isinstance(p, str) for p in cert) and key is None:
        value = (cert[0], cert[1])
    else:
        raise RafayConfigError(
            f"{where}: extra cert must be a PEM file path (with extra cert_key for a separate key file), "
            "or a [certificate, key] pair of paths"
        )
    return check_client_cert(value, base_url, f"{where}: extra cert")


def _verify(extras: dict, where: str) -> bool | str:
    bundle = _extra(extras, "ca_bundle")
    verify = _extra(extras, "verify")
    if isinstance(verify, str):
        if verify.strip().lower() in ("false", "0", "no", "off"):
            verify = False
        elif verify.strip().lower() in ("true", "1", "yes", "on"):
            verify = True
        else:
            bundle = bundle or verify  # requests' convention: verify may name a CA bundle
            verify = True
    if verify is False:
        return False
    if bundle:
        if not os.path.isfile(str(bundle)):
            raise RafayConfigError(f"{where}: extra ca_bundle {bundle!r} is not a readable file")
        return str(bundle)
    return True
