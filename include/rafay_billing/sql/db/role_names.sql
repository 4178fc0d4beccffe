-- The configured role names, for the DO blocks of this migrating transaction (transaction-local settings).
SELECT set_config('rafay_billing.owner_role', %(owner)s, true),
       set_config('rafay_billing.writer_role', %(writer)s, true),
       set_config('rafay_billing.reader_role', %(reader)s, true),
       set_config('rafay_billing.tenant_api_role', %(tenant_api)s, true);
