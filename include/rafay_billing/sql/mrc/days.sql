-- The month-priced days of a month (issue 22, rule 3), as currently rated: per instance and day, the net
-- of its day items with a month unit (the regular item and every later correction of that day, wherever
-- it landed: a reversal and its re-rated charge net to the day's current rating). pricing_quantity is
-- the units billed monthly that day (1 instance, or its GPU count for gpu_month; 0 on an idle day), so
-- a day that nets to 0 bills no MRC and is left out. Ordered by instance, then day.
-- Parameters: first_day, end_day (the month, [first_day, end_day)), org_id (NULL: every org).
SELECT li.org_id, li.profile_type, li.profile, li.instance_key, li.usage_date, li.pricing_unit, li.unit_price,
       li.currency::text AS currency, li.price_id,
       min(li.organization) AS organization, min(li.instance) AS instance, min(li.instance_id) AS instance_id,
       sum(li.usage_hours) AS usage_hours, sum(li.pricing_quantity) AS quantity,
       (array_agg(li.labels ORDER BY li.correction_seq DESC, li.entry))[1] AS labels
FROM billing.charge_line_items AS li
WHERE li.usage_date >= %(first_day)s AND li.usage_date < %(end_day)s
  AND (%(org_id)s::text IS NULL OR li.org_id = %(org_id)s)
  AND li.charge_level = 'day' AND li.pricing_unit IN ('instance_month', 'gpu_month')
GROUP BY li.org_id, li.profile_type, li.profile, li.instance_key, li.usage_date, li.pricing_unit, li.unit_price,
         li.currency, li.price_id
HAVING sum(li.pricing_quantity) <> 0
ORDER BY li.org_id, li.profile_type, li.profile, li.instance_key, li.usage_date;
