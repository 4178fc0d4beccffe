-- One instance's monthly recurring charge (issue 22, rules 3 and 6) as a month-level line item: dated on
-- the month's first day, its window the month, charge_level 'month' and charge_category 'usage', keyed by
-- the instance (org, profile_type, profile, instance_key, dimension ''), like the month's day items of
-- that instance whose amount 0 points here. A regular item of the month's own period, or a correction
-- (the issued charge reversed, or the new one) in a later open one.
INSERT INTO billing.charge_line_items (
    org_id, usage_date, profile, instance_key, dimension, charge_level, charge_class, correction_seq, entry,
    window_start, window_end, organization, profile_type, instance, instance_id, usage_hours, gpu_count,
    pricing_unit, pricing_quantity, unit_price, currency, minor_unit, amount, price_id, run_id,
    billing_period_start, reverses_run_id, charge_category, contract_id, labels
)
SELECT %(org_id)s, %(month)s, %(profile)s, %(instance_key)s, '', 'month', %(charge_class)s, %(correction_seq)s,
       %(entry)s, billing.utc_midnight(%(month)s), billing.utc_midnight((%(month)s + interval '1 month')::date),
       %(organization)s, %(profile_type)s, %(instance)s, %(instance_id)s, %(usage_hours)s, NULL, %(unit)s,
       %(quantity)s, %(unit_price)s, %(currency)s, c.minor_unit, %(amount)s, %(price_id)s, %(run_id)s,
       %(billing_period_start)s, %(reverses_run_id)s, 'usage', NULL, %(labels)s::jsonb
FROM billing.currencies AS c
WHERE c.currency = %(currency)s;
