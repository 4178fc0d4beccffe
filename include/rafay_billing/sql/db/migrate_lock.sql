-- Serialise schema migrations across concurrent runs (held until the migrating transaction ends).
SELECT pg_advisory_xact_lock(hashtextextended('rafay_billing.migrate', 0));
