-- What a window holds after rating, as (kind, key, value) rows:
-- 'currency' totals, 'currency_items' line item counts, 'reason' exception counts, and the
-- 'line_items', 'usage_rows' and 'orgs' (orgs with landed usage) counts.
SELECT 'currency' AS kind, currency::text AS key, sum(amount) AS value
FROM billing.charge_line_items
WHERE window_start = %(window_start)s AND window_end = %(window_end)s
GROUP BY currency
UNION ALL
SELECT 'currency_items', currency::text, count(*)
FROM billing.charge_line_items
WHERE window_start = %(window_start)s AND window_end = %(window_end)s
GROUP BY currency
UNION ALL
SELECT 'reason', reason, count(*)
FROM billing.rating_exceptions
WHERE window_start = %(window_start)s AND window_end = %(window_end)s
GROUP BY reason
UNION ALL
SELECT 'line_items', NULL, count(*)
FROM billing.charge_line_items
WHERE window_start = %(window_start)s AND window_end = %(window_end)s
UNION ALL
SELECT 'usage_rows', NULL, count(*)
FROM billing.usage_records
WHERE window_start = %(window_start)s AND window_end = %(window_end)s
UNION ALL
SELECT 'orgs', NULL, count(DISTINCT org_id)
FROM billing.usage_records
WHERE window_start = %(window_start)s AND window_end = %(window_end)s;
