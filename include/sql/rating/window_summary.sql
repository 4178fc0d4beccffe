-- What a window holds after rating, as (kind, key, value) rows: 'currency' totals and
-- 'currency_items' line item counts per currency, 'reason' exception counts, and the 'usage_rows' and
-- 'orgs' (orgs with landed usage) counts. One pass over each table.
WITH items AS MATERIALIZED (
    SELECT currency::text AS currency, count(*) AS line_items, sum(amount) AS total
    FROM billing.charge_line_items
    WHERE window_start = %(window_start)s AND window_end = %(window_end)s
    GROUP BY currency
),
landed AS MATERIALIZED (
    SELECT count(*) AS usage_rows, count(DISTINCT org_id) AS orgs
    FROM billing.usage_records
    WHERE window_start = %(window_start)s AND window_end = %(window_end)s
)
SELECT 'currency' AS kind, currency AS key, total AS value FROM items
UNION ALL
SELECT 'currency_items', currency, line_items FROM items
UNION ALL
SELECT 'reason', reason, count(*)
FROM billing.rating_exceptions
WHERE window_start = %(window_start)s AND window_end = %(window_end)s
GROUP BY reason
UNION ALL
SELECT 'usage_rows', NULL, usage_rows FROM landed
UNION ALL
SELECT 'orgs', NULL, orgs FROM landed;
