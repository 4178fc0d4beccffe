-- The org's usage and charges per UTC day of [first, last], per currency, profile, dimension and unit,
-- as currently rated: a day's regular items plus later corrections of it (reversals cancel what they
-- replace). issued: every item summed is on an issued document (false: the day's period is still open,
-- or a correction waits for the next close, and the numbers can change).
SELECT li.usage_date, li.currency, li.profile_type, li.profile, li.dimension, li.pricing_unit,
       sum(li.usage_hours) AS usage_hours, sum(li.pricing_quantity) AS pricing_quantity,
       sum(li.amount) AS amount, count(*) AS item_count, bool_and(i.invoice_id IS NOT NULL) AS issued
FROM billing.charge_line_items AS li
LEFT JOIN billing.invoices AS i
       ON i.org_id = li.org_id AND i.currency = li.currency AND i.period_start = li.billing_period_start
WHERE li.org_id = %(org_id)s AND li.usage_date BETWEEN %(first_day)s AND %(last_day)s
GROUP BY li.usage_date, li.currency, li.profile_type, li.profile, li.dimension, li.pricing_unit
ORDER BY li.usage_date, li.currency, li.profile_type, li.profile, li.dimension, li.pricing_unit;
