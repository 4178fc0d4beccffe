-- The (org, day) slices a run landed usage for within a window, with the org's display name (its
-- first record's). Index probes only, so the cost follows the orgs and days asked about, not the
-- table's history: the distinct org_ids by a skip scan of the key's first column (one probe per org),
-- then one probe of (org_id, usage_date, run_id) per org and day of the window.
WITH RECURSIVE orgs (org_id) AS (
    (SELECT u.org_id FROM billing.usage_records AS u ORDER BY u.org_id LIMIT 1)
    UNION ALL
    SELECT (SELECT u.org_id FROM billing.usage_records AS u WHERE u.org_id > o.org_id ORDER BY u.org_id LIMIT 1)
    FROM orgs AS o
    WHERE o.org_id IS NOT NULL
),
days AS (
    SELECT d::date AS usage_date
    FROM generate_series(%(first_day)s::date, %(end_day)s::date - 1, interval '1 day') AS g (d)
)
SELECT o.org_id, d.usage_date, f.organization
FROM orgs AS o
CROSS JOIN days AS d
CROSS JOIN LATERAL (
    SELECT u.organization FROM billing.usage_records AS u
    WHERE u.org_id = o.org_id AND u.usage_date = d.usage_date AND u.run_id = %(run_id)s
    ORDER BY u.record_seq
    LIMIT 1
) AS f
WHERE o.org_id IS NOT NULL
ORDER BY o.org_id, d.usage_date;
