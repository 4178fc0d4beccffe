-- One month-level contract charge as a line item (issue 22, rule 6): dated on the month's first day,
-- its window the month, keyed apart from that day's usage by charge_level 'month' (profile_type
-- 'contract', profile = what made it, instance_key = the contract id). A regular item of the month's
-- own period, or a correction (a reversal of what was issued, or the new charge) in a later open one.
INSERT INTO billing.charge_line_items (
    org_id, usage_date, profile, instance_key, dimension, charge_level, charge_class, correction_seq, entry,
    window_start, window_end, organization, profile_type, instance, instance_id, usage_hours, gpu_count,
    pricing_unit, pricing_quantity, unit_price, currency, minor_unit, amount, price_id, run_id,
    billing_period_start, reverses_run_id, charge_category, contract_id
)
SELECT %(org_id)s, %(month)s, %(kind)s, %(contract_id)s, '', 'month', %(charge_class)s, %(correction_seq)s,
       %(entry)s, billing.utc_midnight(%(month)s), billing.utc_midnight((%(month)s + interval '1 month')::date),
       coalesce((SELECT r.organization FROM billing.org_registry AS r WHERE r.org_id = %(org_id)s), %(org_id)s),
       'contract', %(contract_id)s, NULL, 0, NULL, %(unit)s, %(quantity)s, %(unit_price)s, %(currency)s,
       c.minor_unit, %(amount)s, %(contract_id)s, %(run_id)s, %(billing_period_start)s, %(reverses_run_id)s,
       %(category)s, %(contract_id)s
FROM billing.currencies AS c
WHERE c.currency = %(currency)s;
