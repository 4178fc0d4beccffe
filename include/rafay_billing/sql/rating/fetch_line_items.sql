-- The line items of a window's days for the line-items report: timestamps as ISO-8601 UTC text
-- (each item carries its day's bounds), numbers NUMERIC.
SELECT to_char(window_start AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"') AS window_start,
       to_char(window_end AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"') AS window_end,
       org_id, organization, profile_type, profile, instance, instance_id, usage_hours, pricing_unit,
       pricing_quantity, unit_price, currency::text AS currency, amount, price_id, instance_key, gpu_count,
       run_id, usage_date, charge_class, billing_period_start, correction_seq, entry, dimension,
       labels::text AS labels
FROM billing.charge_line_items
WHERE usage_date >= %(first_day)s AND usage_date < %(end_day)s
ORDER BY organization, org_id, usage_date, profile_type, profile, instance, instance_key, dimension,
         correction_seq, entry DESC;
