-- After rating: the slices' coverage, from what the tables now hold (same transaction as the rating).
-- `billed` when every usage record is in a line item, `exceptions` when some are not.
INSERT INTO billing.coverage AS c (
    org_id, usage_date, organization, status, run_id, billed_run_id, usage_rows, line_items, exceptions,
    totals, detail, updated_at
)
SELECT s.org_id, s.usage_date, s.organization,
       CASE WHEN e.n > 0 THEN 'exceptions' ELSE 'billed' END,
       %(run_id)s, %(run_id)s, u.n, coalesce(li.n, 0), e.n, coalesce(li.totals, '{}'::jsonb), NULL, now()
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
    SELECT sum(t.items) AS n, jsonb_object_agg(t.currency, t.total) AS totals
    FROM (
        SELECT i.currency::text AS currency, count(*) AS items, sum(i.amount)::text AS total
        FROM billing.charge_line_items AS i
        WHERE i.org_id = s.org_id AND i.usage_date = s.usage_date AND i.charge_level = 'day'
        GROUP BY i.currency
    ) AS t
) AS li ON true
ON CONFLICT (org_id, usage_date) DO UPDATE SET
    organization = EXCLUDED.organization, status = EXCLUDED.status, run_id = EXCLUDED.run_id,
    billed_run_id = EXCLUDED.billed_run_id, usage_rows = EXCLUDED.usage_rows,
    line_items = EXCLUDED.line_items, exceptions = EXCLUDED.exceptions, totals = EXCLUDED.totals,
    detail = NULL, updated_at = now();
