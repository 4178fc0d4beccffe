-- Current contracts whose org the pipeline has never listed (not in billing.org_registry).
SELECT c.contract_id, c.version, c.org_id, c.kind, c.profile_type, c.profile, c.unit, c.quantity, c.unit_price,
       c.amount, c.currency, c.frequency, c.term_start, c.term_end, c.billing_timing, c.true_up_period,
       c.description, c.source_line
FROM billing.contracts AS c
WHERE NOT EXISTS (SELECT 1 FROM billing.org_registry AS r WHERE r.org_id = c.org_id)
ORDER BY c.org_id, c.contract_id;
