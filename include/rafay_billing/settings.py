"""The core's shared names and defaults, in one place (Airflow-free, no I/O, cheap to import).

The provider (``rafay_provider.settings``), the CLI and the core read these, so a default cannot
drift between the connection form, the hook, the command line and the writers.
"""

from __future__ import annotations

DEFAULT_ISSUER = "RAFAY"
"""Who issues invoices when nothing is configured: invoice numbers are ``<issuer>-NNNNNN`` with
counters keyed by the issuer, and the FOCUS export's ``InvoiceIssuerName`` is the same name."""

# --- environment fallbacks (the seed script's names, and the core's database URL) -------------------
ENV_CONSOLE_URL = "RAFAY_CONSOLE_URL"
"""The console's domain or base URL when connection ``rafay_default`` is not defined (and for the CLI)."""
ENV_API_KEY = "RAFAY_DEFAULT_API_KEY"
"""The Default Org's Org Admin API key, with :data:`ENV_CONSOLE_URL`."""
ENV_ALLOW_INSECURE_HTTP = "RAFAY_ALLOW_INSECURE_HTTP"
"""``1``/``true``: the API key may travel over plain http to a non-loopback host."""
ENV_API = "RAFAY_API"
"""Which usage API: ``v2`` (default), ``partner`` or ``partner_only``."""
ENV_DATABASE_URL = "BILLING_DATABASE_URL"
"""The billing database for the ``rafay-billing`` database commands and ``python -m rafay_billing.db``."""


# --- the Rafay connection's defaults ------------------------------------------------------------------
CONNECT_TIMEOUT = 10.0
"""Seconds to open a connection to the console."""
READ_TIMEOUT = 90.0
"""Seconds to wait for a response (usage pages of a large org are slow)."""
MAX_RETRIES = 5
"""Attempts per request on transient failures (429, 502/503/504, timeouts)."""
PAGE_SIZE = 100
"""Records asked for per page (a server may cap it lower)."""
CONCURRENCY = 8
"""Requests in flight at most per task or command."""
LISTING_READS = 3
"""Reads of a listing that changes while it is paged, the first included; then the org fails whole."""


# --- the database roles (created by the migrations when absent; cluster-wide names) ---------------------
DEFAULT_OWNER_ROLE = "rafay_billing_owner"
"""Owns the schema and runs the migrations (connection ``billing_postgres_owner``)."""
DEFAULT_WRITER_ROLE = "rafay_billing_writer"
"""Only the DML the ledger's triggers allow (connection ``billing_postgres``: every other task)."""
DEFAULT_READER_ROLE = "rafay_billing_reader"
"""``SELECT`` only (connection ``billing_postgres_reader``: the Billing view, exports)."""
DEFAULT_TENANT_API_ROLE = "rafay_billing_tenant_api"
"""The tenant statements API (``rafay-billing serve-tenant-api``): ``SELECT`` on what it serves and
``UPDATE`` of the API tokens' last-used time, nothing else."""
ROLE_ENV = {"owner": "BILLING_DB_OWNER_ROLE", "writer": "BILLING_DB_WRITER_ROLE", "reader": "BILLING_DB_READER_ROLE",
            "tenant_api": "BILLING_DB_TENANT_API_ROLE"}
"""Environment overrides of the role names for ``python -m rafay_billing.db migrate``."""
ENV_TENANT_API_DATABASE_URL = "BILLING_TENANT_API_DATABASE_URL"
"""The tenant API's database login (a member of the tenant API role) for ``rafay-billing serve-tenant-api``."""
