-- Per run with anything in [first_day, end_day) (searchable by org id or name): the (org, day)s whose
-- coverage it set last, by status, and the line items it rated with their amount per currency (exact,
-- as text). The run's state comes from Airflow. Newest run first, at most %(limit)s runs.
WITH cov AS (
    SELECT run_id, count(*) AS org_days,
           count(*) FILTER (WHERE status = 'billed') AS billed,
           count(*) FILTER (WHERE status = 'exceptions') AS exceptions,
           count(*) FILTER (WHERE status = 'failed') AS failed,
           count(*) FILTER (WHERE status = 'held') AS held,
           max(updated_at) AS updated_at
    FROM billing.coverage
    WHERE usage_date >= %(first_day)s AND usage_date < %(end_day)s
      AND (%(pattern)s::text IS NULL OR org_id ILIKE %(pattern)s OR organization ILIKE %(pattern)s)
    GROUP BY run_id
), by_currency AS (
    SELECT run_id, currency::text AS currency, count(*) AS items, sum(amount) AS amount
    FROM billing.charge_line_items
    WHERE usage_date >= %(first_day)s AND usage_date < %(end_day)s
      AND (%(pattern)s::text IS NULL OR org_id ILIKE %(pattern)s OR organization ILIKE %(pattern)s)
    GROUP BY run_id, currency
), items AS (
    SELECT run_id, sum(items) AS items, jsonb_object_agg(currency, amount::text) AS totals
    FROM by_currency
    GROUP BY run_id
)
SELECT coalesce(c.run_id, i.run_id) AS run_id, coalesce(c.org_days, 0) AS org_days,
       coalesce(c.billed, 0) AS billed, coalesce(c.exceptions, 0) AS exceptions, coalesce(c.failed, 0) AS failed,
       coalesce(c.held, 0) AS held, coalesce(i.items, 0) AS items, coalesce(i.totals, '{}'::jsonb) AS totals,
       c.updated_at
FROM cov AS c
FULL JOIN items AS i ON i.run_id = c.run_id
ORDER BY c.updated_at DESC NULLS LAST, 1 DESC
LIMIT %(limit)s;
