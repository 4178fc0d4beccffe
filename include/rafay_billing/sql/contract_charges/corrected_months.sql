-- The closed months whose days' usage has corrections landing in this period: their true-ups are
-- computed again by the close (a later correction of an in-term day corrects the true-up too).
SELECT DISTINCT billing.period_of(li.usage_date) AS month
FROM billing.charge_line_items AS li
WHERE li.billing_period_start = %(period_start)s AND li.charge_class = 'correction' AND li.charge_level = 'day'
ORDER BY 1;
