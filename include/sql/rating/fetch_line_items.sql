-- A window's line items for the line-items report: timestamps as ISO-8601 UTC text, numbers NUMERIC.
SELECT to_char(window_start AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"') AS window_start,
       to_char(window_end AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"') AS window_end,
       org_id, organization, profile_type, profile, instance, instance_id, usage_hours, pricing_unit,
       pricing_quantity, unit_price, currency::text AS currency, amount, price_id, instance_key, gpu_count,
       run_id
FROM billing.charge_line_items
WHERE window_start = %(window_start)s AND window_end = %(window_end)s
ORDER BY organization, org_id, profile_type, profile, instance, instance_key;
