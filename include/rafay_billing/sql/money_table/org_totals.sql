-- Charges per (org, currency) that one run rated in a window: the rows of the money table in the
-- rating task's log. Amounts are sums of line items already rounded to the currency's minor unit.
SELECT org_id, organization, currency::text AS currency, count(*) AS items, sum(usage_hours) AS hours,
       sum(amount) AS amount
FROM billing.charge_line_items
WHERE run_id = %(run_id)s AND usage_date >= %(first_day)s AND usage_date < %(end_day)s
GROUP BY org_id, organization, currency
ORDER BY sum(amount) DESC, org_id, currency;
