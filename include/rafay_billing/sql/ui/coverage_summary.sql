-- Is [first_day, end_day) clean? The (org, day)s of ui/coverage.sql (keep the two in step), every org,
-- whatever the search: how many are expected or known, and how many are failed, held, missing, or
-- billed with exceptions still open. Clean: at least one, and none of those.
WITH expected AS (
    SELECT r.org_id, d.day::date AS usage_date
    FROM billing.org_registry AS r
    CROSS JOIN LATERAL generate_series(
        greatest(%(first_day)s::date, r.first_listed_date),
        least(%(end_day)s::date - 1, coalesce(billing.expected_until(r.unlisted_from), %(end_day)s::date - 1)),
        interval '1 day'
    ) AS d (day)
), window_coverage AS (
    SELECT org_id, usage_date, status FROM billing.coverage
    WHERE usage_date >= %(first_day)s AND usage_date < %(end_day)s
), merged AS (
    SELECT coalesce(c.org_id, x.org_id) AS org_id, coalesce(c.usage_date, x.usage_date) AS usage_date,
           coalesce(c.status, 'missing') AS status
    FROM window_coverage AS c
    FULL JOIN expected AS x ON x.org_id = c.org_id AND x.usage_date = c.usage_date
)
SELECT count(*) AS org_days,
       count(*) FILTER (WHERE status = 'billed') AS billed,
       count(*) FILTER (WHERE status = 'exceptions') AS exceptions,
       count(*) FILTER (WHERE status = 'exceptions' AND EXISTS (
           SELECT 1 FROM billing.open_exceptions AS e WHERE e.org_id = m.org_id AND e.usage_date = m.usage_date
       )) AS open_exceptions,
       count(*) FILTER (WHERE status = 'failed') AS failed,
       count(*) FILTER (WHERE status = 'held') AS held,
       count(*) FILTER (WHERE status = 'missing') AS missing
FROM merged AS m;
