-- The version of every contract that was current at an instant (e.g. when a month was closed).
SELECT contract_id, version, org_id, kind, profile_type, profile, unit, quantity, unit_price, amount, currency,
       frequency, term_start, term_end, billing_timing, true_up_period, description, source_line
FROM billing.contract_versions
WHERE valid_from <= %(at)s AND (valid_to IS NULL OR valid_to > %(at)s)
ORDER BY contract_id;
