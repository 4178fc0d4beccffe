-- Coverage of [first_day, end_day) per (org, day), one page at a time, searchable by org id or name:
-- billing.coverage's status (billed, exceptions, failed, held) with its reason, detail and run, and
-- `missing` for a day an org of the registry is expected (from its first listing until it left) that
-- has no coverage row. open_exceptions: the day's exceptions neither billed later nor waived; a day
-- `exceptions` with none open counts as billed. Days needing attention come first.
-- (ui/coverage_summary.sql counts the same rows for the whole window: keep the two in step.)
WITH expected AS (
    SELECT r.org_id, r.organization, d.day::date AS usage_date
    FROM billing.org_registry AS r
    CROSS JOIN LATERAL generate_series(
        greatest(%(first_day)s::date, r.first_listed_date),
        least(%(end_day)s::date - 1, coalesce(billing.expected_until(r.unlisted_from), %(end_day)s::date - 1)),
        interval '1 day'
    ) AS d (day)
), window_coverage AS (
    SELECT * FROM billing.coverage WHERE usage_date >= %(first_day)s AND usage_date < %(end_day)s
), merged AS (
    SELECT coalesce(c.usage_date, x.usage_date) AS usage_date, coalesce(c.org_id, x.org_id) AS org_id,
           coalesce(c.organization, x.organization) AS organization, coalesce(c.status, 'missing') AS status,
           c.reason, c.detail, c.run_id, c.billed_run_id, coalesce(c.line_items, 0) AS line_items,
           coalesce(c.exceptions, 0) AS exceptions, c.updated_at,
           (SELECT count(*) FROM billing.open_exceptions AS e
            WHERE e.org_id = coalesce(c.org_id, x.org_id) AND e.usage_date = coalesce(c.usage_date, x.usage_date)
           ) AS open_exceptions
    FROM window_coverage AS c
    FULL JOIN expected AS x ON x.org_id = c.org_id AND x.usage_date = c.usage_date
)
SELECT usage_date, org_id, organization, status, reason, detail, run_id, billed_run_id, line_items, exceptions,
       open_exceptions, updated_at,
       status IN ('failed', 'held', 'missing') OR (status = 'exceptions' AND open_exceptions > 0) AS needs_attention,
       count(*) OVER () AS total_rows
FROM merged
WHERE %(pattern)s::text IS NULL OR org_id ILIKE %(pattern)s OR organization ILIKE %(pattern)s
ORDER BY needs_attention DESC, usage_date DESC, org_id
LIMIT %(limit)s OFFSET %(offset)s;
