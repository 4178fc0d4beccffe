-- Totals per currency of a window, of the orgs the search matches (every org without one; whatever page
-- the table shows). An instance priced per dimension has an item per dimension, each with its hours:
-- its hours count once.
SELECT currency::text AS currency, count(DISTINCT org_id) AS orgs, count(*) AS items,
       sum(usage_hours) FILTER (WHERE first_of_instance) AS hours, sum(amount) AS amount
FROM (
    SELECT org_id, currency, usage_hours, amount,
           row_number() OVER (PARTITION BY org_id, usage_date, profile, instance_key, charge_class, correction_seq,
                                           entry ORDER BY dimension) = 1 AS first_of_instance
    FROM billing.charge_line_items
    WHERE usage_date >= %(first_day)s AND usage_date < %(end_day)s
      AND (%(pattern)s::text IS NULL OR org_id ILIKE %(pattern)s OR organization ILIKE %(pattern)s)
) AS li
GROUP BY currency
ORDER BY currency;
