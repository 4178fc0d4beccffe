-- Per (day, org, currency) of a window: line items, hours, amount, the run that rated them, and the
-- (org, day)'s exceptions by reason (an org with exceptions only has a row with no currency).
-- Searchable by org id or name, one page at a time (total_rows = rows of the whole selection).
WITH items AS (
    -- an instance priced per dimension has an item per dimension, each with its hours: count them once
    SELECT usage_date, org_id, min(organization) AS organization, currency::text AS currency,
           count(*) AS items, sum(usage_hours) FILTER (WHERE first_of_instance) AS hours, sum(amount) AS amount,
           min(run_id) AS run_id
    FROM (
        SELECT usage_date, org_id, organization, currency, usage_hours, amount, run_id,
               row_number() OVER (PARTITION BY org_id, usage_date, profile, instance_key, charge_class,
                                               correction_seq, entry ORDER BY dimension) = 1 AS first_of_instance
        FROM billing.charge_line_items
        WHERE usage_date >= %(first_day)s AND usage_date < %(end_day)s
    ) AS li
    GROUP BY usage_date, org_id, currency
), by_reason AS (
    SELECT usage_date, org_id, min(organization) AS organization, reason, count(*) AS n, min(run_id) AS run_id
    FROM billing.rating_exceptions
    WHERE usage_date >= %(first_day)s AND usage_date < %(end_day)s
    GROUP BY usage_date, org_id, reason
), exceptions AS (
    SELECT usage_date, org_id, min(organization) AS organization, jsonb_object_agg(reason, n) AS by_reason,
           min(run_id) AS run_id
    FROM by_reason
    GROUP BY usage_date, org_id
), merged AS (
    SELECT coalesce(i.usage_date, x.usage_date) AS usage_date, coalesce(i.org_id, x.org_id) AS org_id,
           coalesce(i.organization, x.organization) AS organization, i.currency,
           coalesce(i.items, 0) AS items, coalesce(i.hours, 0) AS hours, i.amount,
           coalesce(i.run_id, x.run_id) AS run_id, coalesce(x.by_reason, '{}'::jsonb) AS exceptions
    FROM items AS i
    FULL JOIN exceptions AS x ON x.usage_date = i.usage_date AND x.org_id = i.org_id
)
SELECT usage_date, org_id, organization, currency, items, hours, amount, run_id, exceptions,
       count(*) OVER () AS total_rows
FROM merged
WHERE %(pattern)s::text IS NULL OR org_id ILIKE %(pattern)s OR organization ILIKE %(pattern)s
ORDER BY usage_date DESC, amount DESC NULLS LAST, org_id, currency
LIMIT %(limit)s OFFSET %(offset)s;
