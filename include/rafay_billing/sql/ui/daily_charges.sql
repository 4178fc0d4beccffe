-- Daily charges of one currency over [first_day, end_day): the top orgs by the range's total each
-- get a series (rank 1..top), every other org is summed into one "others" series (rank NULL).
WITH ranked AS (
    SELECT org_id, min(organization) AS organization,
           row_number() OVER (ORDER BY sum(amount) DESC, org_id) AS rank
    FROM billing.charge_line_items
    WHERE currency = %(currency)s AND usage_date >= %(first_day)s AND usage_date < %(end_day)s
    GROUP BY org_id
)
SELECT l.usage_date,
       CASE WHEN r.rank <= %(top)s THEN l.org_id END AS org_id,
       CASE WHEN r.rank <= %(top)s THEN r.organization END AS organization,
       CASE WHEN r.rank <= %(top)s THEN r.rank END AS rank,
       sum(l.amount) AS amount
FROM billing.charge_line_items AS l
JOIN ranked AS r ON r.org_id = l.org_id
WHERE l.currency = %(currency)s AND l.usage_date >= %(first_day)s AND l.usage_date < %(end_day)s
GROUP BY 1, 2, 3, 4
ORDER BY 1, 4 NULLS LAST;
