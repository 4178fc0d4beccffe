"""Airflow provider metadata for the Rafay connection type (entry point ``apache_airflow_provider``).

Since Airflow 3.2 the connection form is declared here as data (``ui-field-behaviour`` and
``conn-fields``): the UI builds the ``rafay`` form without importing the hook, and the hook's
``get_ui_field_behaviour()`` (kept for older callers) returns the same behaviour.
"""

from __future__ import annotations

from rafay_billing import settings as defaults
from rafay_provider.settings import CONFIG_DESCRIPTION, CONFIG_OPTIONS, SECTION

RAFAY_UI_FIELD_BEHAVIOUR: dict = {
    "hidden-fields": ["schema", "port", "login", "extra"],
    "relabeling": {"host": "Console URL", "password": "API key"},
    "placeholders": {
        "host": "rafay.acme.com (https assumed) or a base URL such as http://127.0.0.1:8080",
        "password": "Org Admin API key of the Default Org (sent as x-api-key, masked in logs)",
    },
}

RAFAY_CONN_FIELDS: dict = {
    "api": {
        "label": "Usage API",
        "description": "v2 (default): the blog's per-organization endpoints (/v2/organizations/.../usage). "
        "partner: Rafay's documented billing metrics API (/apis/billing.envmgmt.io/v1/metrics/partner/...), "
        "read per org by instance_organization_id. Org ids (metadata.name), price books and history stay "
        "the same whichever you pick. partner_only: a console without the v2 org listing; orgs are the "
        "partner API's, keyed by their partner id (never chosen on its own: a 404 on the org listing is "
        "an error that names this setting).",
        "schema": {"type": "string", "enum": ["v2", "partner", "partner_only"], "default": "v2"},
    },
    "ca_bundle": {
        "label": "CA bundle path",
        "description": "PEM file of the CA that signed the console's certificate (private CAs).",
        "schema": {"type": ["string", "null"]},
    },
    "verify": {
        "label": "Verify TLS certificate",
        "description": "Leave on. Off only for a throwaway test console.",
        "schema": {"type": ["boolean", "null"], "default": True},
    },
    "cert": {
        "label": "Client certificate path",
        "description": "For a console that asks for a client certificate (mutual TLS): a PEM file with the "
        "certificate (and its key, unless Client key path is set). Only presented over https; the key must "
        "not be encrypted.",
        "schema": {"type": ["string", "null"]},
    },
    "cert_key": {
        "label": "Client key path",
        "description": "PEM file of the client certificate's private key, when it is not in the certificate file.",
        "schema": {"type": ["string", "null"]},
    },
    "proxies": {
        "label": "Proxies (JSON)",
        "description": 'Forward proxies as requests reads them, e.g. {"https": "http://proxy.acme.com:3128"} '
        "(keys http, https, all or scheme://host). They win over the environment's. An https console is "
        "reached through a CONNECT tunnel (the proxy never sees the key); a plain-http console through a "
        "proxy is refused unless the key may go over plain http (Allow the API key over plain http).",
        "schema": {"type": ["string", "null"]},
    },
    "trust_env": {
        "label": "Proxies from the environment",
        "description": "On (default): without Proxies, use HTTP_PROXY / HTTPS_PROXY / ALL_PROXY and NO_PROXY of "
        "the worker (and REQUESTS_CA_BUNDLE). Off: connect directly unless Proxies says otherwise.",
        "schema": {"type": ["boolean", "null"], "default": True},
    },
    "connect_timeout": {
        "label": "Connect timeout (s)",
        "schema": {"type": ["number", "null"], "default": defaults.CONNECT_TIMEOUT},
    },
    "read_timeout": {
        "label": "Read timeout (s)",
        "schema": {"type": ["number", "null"], "default": defaults.READ_TIMEOUT},
    },
    "max_retries": {
        "label": "Attempts per request",
        "description": "Tries per request on transient failures (429, 502/503/504, timeouts).",
        "schema": {"type": ["integer", "null"], "default": defaults.MAX_RETRIES, "minimum": 1},
    },
    "page_size": {
        "label": "Page size",
        "schema": {"type": ["integer", "null"], "default": defaults.PAGE_SIZE, "minimum": 1},
    },
    "concurrency": {
        "label": "Concurrent requests",
        "description": "Requests in flight at most per task (profiles read in parallel).",
        "schema": {"type": ["integer", "null"], "default": defaults.CONCURRENCY, "minimum": 1},
    },
    "listing_reads": {
        "label": "Reads of a changing listing",
        "description": "A listing that changes while it is paged is read again from the start, at most this "
        "many reads in all; then that org's day fails as a whole.",
        "schema": {"type": ["integer", "null"], "default": defaults.LISTING_READS, "minimum": 1},
    },
    "allow_insecure_http": {
        "label": "Allow the API key over plain http",
        "description": "Off: the key goes over http:// only to loopback hosts (a local simulator). On only "
        "for a trusted private network.",
        "schema": {"type": ["boolean", "null"], "default": False},
    },
}


def get_provider_info() -> dict:
    return {
        "package-name": "rafay-billing",
        "name": "Rafay",
        "description": "Rafay usage metering APIs: the `rafay` connection type and RafayHook.",
        "versions": ["0.1.0"],
        "connection-types": [
            {
                "hook-class-name": "rafay_provider.hooks.rafay.RafayHook",
                "hook-name": "Rafay",
                "connection-type": "rafay",
                "ui-field-behaviour": RAFAY_UI_FIELD_BEHAVIOUR,
                "conn-fields": RAFAY_CONN_FIELDS,
            }
        ],
        # [rafay_billing]: `airflow config list` shows each option with its description and default.
        "config": {
            SECTION: {
                "description": CONFIG_DESCRIPTION,
                "options": {key: {"version_added": "0.1.0", **option} for key, option in CONFIG_OPTIONS.items()},
            }
        },
    }
