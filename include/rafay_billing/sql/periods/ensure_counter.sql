-- The issuer's invoice counter, created at 0 the first time it issues.
INSERT INTO billing.invoice_counters (issuer, last_number) VALUES (%(issuer)s, 0)
ON CONFLICT (issuer) DO NOTHING;
