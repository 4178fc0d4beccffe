-- A new version of a contract: version 1, or one more than its latest.
INSERT INTO billing.contract_versions (
    contract_id, version, org_id, kind, profile_type, profile, unit, quantity, unit_price, amount, currency,
    frequency, term_start, term_end, billing_timing, true_up_period, description, source_line, synced_by,
    retroactive)
SELECT %(contract_id)s, coalesce(max(version), 0) + 1, %(org_id)s, %(kind)s, %(profile_type)s, %(profile)s,
       %(unit)s, %(quantity)s, %(unit_price)s, %(amount)s, %(currency)s, %(frequency)s, %(term_start)s,
       %(term_end)s, %(billing_timing)s, %(true_up_period)s, %(description)s, %(source_line)s, %(synced_by)s,
       %(retroactive)s
FROM billing.contract_versions
WHERE contract_id = %(contract_id)s
RETURNING version;
