-- After rating: the slices' coverage, from what the tables now hold (same transaction as the rating).
-- `billed` when every usage record is in a line item, `exceptions` when some are not.
-- Returns the slices' summary as rating/run_summary.sql does ((kind, key, value) rows: 'currency' totals,
-- 'currency_items' counts, 'reason' counts, 'usage_rows', 'orgs'), from the same per-slice reads: the
-- day's items and usage are read once, not again for the summary (on a million-row day that second read
-- was a tenth of the rating).
WITH per_slice AS MATERIALIZED (
    SELECT s.org_id, s.usage_date, s.organization, u.n AS usage_rows, e.n AS exceptions,
           coalesce(li.n, 0) AS line_items, coalesce(li.totals, '{}'::jsonb) AS totals,
           coalesce(li.items, '{}'::jsonb) AS items_by_currency
    FROM unnest(%(org_ids)s::text[], %(usage_dates)s::date[], %(organizations)s::text[])
         AS s (org_id, usage_date, organization)
    CROSS JOIN LATERAL (
        SELECT count(*) AS n FROM billing.usage_records AS r
        WHERE r.org_id = s.org_id AND r.usage_date = s.usage_date AND r.run_id = %(run_id)s
    ) AS u
    CROSS JOIN LATERAL (
        SELECT count(*) AS n FROM billing.rating_exceptions AS x
        WHERE x.org_id = s.org_id AND x.usage_date = s.usage_date
    ) AS e
    LEFT JOIN LATERAL (
        SELECT sum(t.items) AS n, jsonb_object_agg(t.currency, t.total) AS totals,
               jsonb_object_agg(t.currency, t.items) AS items
        FROM (
            SELECT i.currency::text AS currency, count(*) AS items, sum(i.amount)::text AS total
            FROM billing.charge_line_items AS i
            WHERE i.org_id = s.org_id AND i.usage_date = s.usage_date AND i.charge_level = 'day'
            GROUP BY i.currency
        ) AS t
    ) AS li ON true
),
written AS (
    INSERT INTO billing.coverage AS c (
        org_id, usage_date, organization, status, run_id, billed_run_id, usage_rows, line_items, exceptions,
        totals, detail, updated_at
    )
    SELECT org_id, usage_date, organization, CASE WHEN exceptions > 0 THEN 'exceptions' ELSE 'billed' END,
           %(run_id)s, %(run_id)s, usage_rows, line_items, exceptions, totals, NULL, now()
    FROM per_slice
    ON CONFLICT (org_id, usage_date) DO UPDATE SET
        organization = EXCLUDED.organization, status = EXCLUDED.status, run_id = EXCLUDED.run_id,
        billed_run_id = EXCLUDED.billed_run_id, usage_rows = EXCLUDED.usage_rows,
        line_items = EXCLUDED.line_items, exceptions = EXCLUDED.exceptions, totals = EXCLUDED.totals,
        detail = NULL, updated_at = now()
    RETURNING 1
),
currencies AS MATERIALIZED (
    -- the per-slice totals are exact NUMERIC text (sum(amount)::text), so their sum is the day's sum
    SELECT t.key AS currency, sum(t.value::numeric) AS total, sum((n.value)::bigint) AS line_items
    FROM per_slice AS p
    CROSS JOIN LATERAL jsonb_each_text(p.totals) AS t
    JOIN LATERAL jsonb_each_text(p.items_by_currency) AS n ON n.key = t.key
    GROUP BY t.key
)
SELECT 'currency' AS kind, currency AS key, total AS value FROM currencies
UNION ALL
SELECT 'currency_items', currency, line_items FROM currencies
UNION ALL
SELECT 'reason', x.reason, count(*)
FROM per_slice AS p
JOIN billing.rating_exceptions AS x ON x.org_id = p.org_id AND x.usage_date = p.usage_date
WHERE p.exceptions > 0
GROUP BY x.reason
UNION ALL
SELECT 'usage_rows', NULL, coalesce(sum(usage_rows), 0) FROM per_slice
UNION ALL
SELECT 'orgs', NULL, count(DISTINCT org_id) FILTER (WHERE usage_rows > 0) FROM per_slice
UNION ALL
SELECT 'written', NULL, count(*) FROM written;
