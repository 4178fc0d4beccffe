"""The core's shared names and defaults, in one place (Airflow-free, no I/O, cheap to import).

The provider (``rafay_provider.settings``), the CLI and the core read these, so a default cannot
drift between the connection form, the hook, the command line and the writers.
"""

from __future__ import annotations

DEFAULT_ISSUER = "RAFAY"
"""Who issues invoices when nothing is configured: invoice numbers are ``<issuer>-NNNNNN`` with
counters keyed by the issuer, and the FOCUS export's ``InvoiceIssuerName`` is the same name."""
