-- The (org, day) slices a run landed usage for within a window, with the org's display name (its
-- first record's). Index probes only, so the cost follows the orgs and days asked about, not the
-- table's history: the distinct org_ids by a skip scan of the key's first column (one probe per org),
-- then one probe of (org_id, usage_date, run_id) per org and day of the window. An extraction the run
-- landed with no records (an empty re-read, billing.extractions) is a slice too: rating it is what
-- replaces the day, or holds it when the day holds usage (issue 21 rule 2).
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
),
with_records AS (
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
),
empty AS (
    SELECT DISTINCT e.org_id, e.usage_date,
           coalesce(c.organization, r.organization, e.org_id) AS organization
    FROM billing.extractions AS e
    LEFT JOIN billing.coverage AS c ON c.org_id = e.org_id AND c.usage_date = e.usage_date
    LEFT JOIN billing.org_registry AS r ON r.org_id = e.org_id
    WHERE e.run_id = %(run_id)s AND e.records = 0
      AND e.usage_date >= %(first_day)s::date AND e.usage_date < %(end_day)s::date
      AND NOT EXISTS (SELECT 1 FROM with_records AS w WHERE w.org_id = e.org_id AND w.usage_date = e.usage_date)
)
SELECT org_id, usage_date, organization FROM with_records
UNION ALL
SELECT org_id, usage_date, organization FROM empty
ORDER BY org_id, usage_date;
