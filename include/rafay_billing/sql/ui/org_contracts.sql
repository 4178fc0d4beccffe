-- One org's current contracts (billing.contracts), as contracts/current.sql reads them.
SELECT contract_id, version, org_id, kind, profile_type, profile, unit, quantity, unit_price, amount, currency,
       frequency, term_start, term_end, billing_timing, true_up_period, description, source_line
FROM billing.contracts
WHERE org_id = %(org_id)s
ORDER BY contract_id;
