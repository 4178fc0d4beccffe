"""The tenant statements API (issue 24, part 2): a read-only HTTP service a provider's customer portal
calls on behalf of one tenant, with that tenant's API token.

* :mod:`.app`: the FastAPI app (routes, isolation, security headers); :mod:`.server`: running it;
* :mod:`.tokens`: per-org API tokens (salted scrypt hashes, creation and revocation audited);
* :mod:`.queries`: every read, scoped to the token's org (``sql/tenant_api/*.sql``);
* :mod:`.cursor`, :mod:`.ratelimit`, :mod:`.pool`: paging, the per-token limit, connections;
* :mod:`.cli`: ``rafay-billing serve-tenant-api`` and ``rafay-billing tenant-token create|revoke|list``.

The service connects as its own database role (``rafay_billing_tenant_api``): SELECT on what it serves
and UPDATE of the tokens' last-used time, nothing else. Importing this package imports no web framework.
"""
