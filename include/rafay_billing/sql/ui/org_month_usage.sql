-- One org's usage charges per currency for the days of a month, as currently rated: the days' regular
-- items plus every later correction of them (a reversal and its new charge net to the change).
SELECT li.currency::text AS currency, sum(li.amount) AS amount
FROM billing.charge_line_items AS li
WHERE li.org_id = %(org_id)s AND li.usage_date >= %(first_day)s AND li.usage_date < %(end_day)s
  AND li.charge_level = 'day'
GROUP BY 1
ORDER BY 1;
