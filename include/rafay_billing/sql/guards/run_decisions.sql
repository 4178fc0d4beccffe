-- Slices whose newest extraction by the run was refused by the guard: `held` or `superseded`.
SELECT n.org_id, n.usage_date, n.status
FROM unnest(%(org_ids)s::text[], %(usage_dates)s::date[]) AS s (org_id, usage_date)
CROSS JOIN LATERAL (
    SELECT e.org_id, e.usage_date, e.status FROM billing.extractions AS e
    WHERE e.org_id = s.org_id AND e.usage_date = s.usage_date AND e.run_id = %(run_id)s
    ORDER BY e.extraction_seq DESC
    LIMIT 1
) AS n
WHERE n.status IN ('held', 'superseded')
ORDER BY n.org_id, n.usage_date;
