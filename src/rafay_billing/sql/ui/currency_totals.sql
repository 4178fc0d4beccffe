-- Totals per currency of a window (every org, whatever page or search the table shows).
SELECT currency::text AS currency, count(DISTINCT org_id) AS orgs, count(*) AS items, sum(usage_hours) AS hours,
       sum(amount) AS amount
FROM billing.charge_line_items
WHERE usage_date >= %(first_day)s AND usage_date < %(end_day)s
GROUP BY currency
ORDER BY currency;
