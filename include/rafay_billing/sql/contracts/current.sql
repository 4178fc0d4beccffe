-- The current version of every contract (billing.contracts), in contract_id order.
SELECT contract_id, version, org_id, kind, profile_type, profile, unit, quantity, unit_price, amount, currency,
       frequency, term_start, term_end, billing_timing, true_up_period, description, source_line
FROM billing.contracts
ORDER BY contract_id;
