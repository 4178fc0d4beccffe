-- Every stored version of every contract, oldest first: the contracts' history.
SELECT contract_id, version, org_id, kind, profile_type, profile, unit, quantity, unit_price, amount, currency,
       frequency, term_start, term_end, billing_timing, true_up_period, description, source_line,
       valid_from, valid_to, synced_by, retroactive
FROM billing.contract_versions
ORDER BY contract_id, version;
