-- What (org, day) slices hold after rating, as (kind, key, value) rows: 'currency' totals and
-- 'currency_items' line item counts per currency, 'reason' exception counts, and the 'usage_rows'
-- (landed by the given run) and 'orgs' (orgs with landed usage) counts.
WITH slices AS MATERIALIZED (
    SELECT org_id, usage_date FROM unnest(%(org_ids)s::text[], %(usage_dates)s::date[]) AS s (org_id, usage_date)
),
items AS MATERIALIZED (
    SELECT i.currency::text AS currency, count(*) AS line_items, sum(i.amount) AS total
    FROM slices AS s
    JOIN billing.charge_line_items AS i ON i.org_id = s.org_id AND i.usage_date = s.usage_date
     AND i.charge_level = 'day'
    GROUP BY i.currency
),
landed AS MATERIALIZED (
    -- one index count per slice (OFFSET 0: whatever the table's statistics say about the join)
    SELECT coalesce(sum(n.rows), 0) AS usage_rows, count(DISTINCT s.org_id) FILTER (WHERE n.rows > 0) AS orgs
    FROM slices AS s
    CROSS JOIN LATERAL (
        SELECT count(*) AS rows FROM billing.usage_records AS u
        WHERE u.org_id = s.org_id AND u.usage_date = s.usage_date AND u.run_id = %(run_id)s
        OFFSET 0
    ) AS n
)
SELECT 'currency' AS kind, currency AS key, total AS value FROM items
UNION ALL
SELECT 'currency_items', currency, line_items FROM items
UNION ALL
SELECT 'reason', e.reason, count(*)
FROM slices AS s
JOIN billing.rating_exceptions AS e ON e.org_id = s.org_id AND e.usage_date = s.usage_date
GROUP BY e.reason
UNION ALL
SELECT 'usage_rows', NULL, usage_rows FROM landed
UNION ALL
SELECT 'orgs', NULL, orgs FROM landed;
