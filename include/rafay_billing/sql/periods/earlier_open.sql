-- Open periods before the one being closed, from the month of billing_start_date on (NULL: any), that
-- hold billed days (coverage billed or with exceptions) or carry line items: they must close first,
-- so invoice numbers follow the months (issue 21, rule 12). One index probe per month.
WITH held AS (
    SELECT least((SELECT billing.period_of(min(c.usage_date)) FROM billing.coverage AS c),
                 (SELECT min(li.billing_period_start) FROM billing.charge_line_items AS li)) AS first_held
),
bounds AS (
    SELECT CASE WHEN h.first_held IS NOT NULL
                THEN greatest(h.first_held, coalesce(billing.period_of(%(billing_start)s::date), h.first_held))
           END AS first_month
    FROM held AS h
)
SELECT m.month::date
FROM bounds AS b
CROSS JOIN LATERAL generate_series(b.first_month::timestamp, %(period_start)s::date - interval '1 month',
                                   interval '1 month') AS m (month)
WHERE b.first_month IS NOT NULL
  AND NOT EXISTS (SELECT 1 FROM billing.billing_periods AS p WHERE p.period_start = m.month::date)
  AND (EXISTS (SELECT 1 FROM billing.coverage AS c
               WHERE c.usage_date >= m.month::date AND c.usage_date < (m.month + interval '1 month')::date
                 AND c.status IN ('billed', 'exceptions'))
       OR EXISTS (SELECT 1 FROM billing.charge_line_items AS li WHERE li.billing_period_start = m.month::date))
ORDER BY 1;
