-- What a closed month's MRC was issued as, per instance and currency: the net of its month-level usage
-- items (the month's regular item and the corrections issued since: pending ones, in open periods, are
-- replaced by the next computation, so they are not counted), with the newest charge's description.
-- Instances whose net is 0 are left out.
SELECT li.org_id, li.profile_type, li.profile, li.instance_key, li.currency::text AS currency,
       (array_agg(li.run_id ORDER BY li.correction_seq DESC, li.entry))[1] AS run_id,
       (array_agg(li.pricing_unit ORDER BY li.correction_seq DESC, li.entry))[1] AS unit,
       (array_agg(li.unit_price ORDER BY li.correction_seq DESC, li.entry))[1] AS unit_price,
       (array_agg(li.price_id ORDER BY li.correction_seq DESC, li.entry))[1] AS price_id,
       min(li.organization) AS organization, min(li.instance) AS instance, min(li.instance_id) AS instance_id,
       sum(li.usage_hours) AS usage_hours, sum(li.pricing_quantity) AS quantity, sum(li.amount) AS amount
FROM billing.charge_line_items AS li
WHERE li.usage_date = %(month)s AND li.charge_level = 'month'
  AND EXISTS (SELECT 1 FROM billing.billing_periods AS p WHERE p.period_start = li.billing_period_start)
  AND li.charge_category = 'usage'
GROUP BY li.org_id, li.profile_type, li.profile, li.instance_key, li.currency
HAVING sum(li.amount) <> 0 OR sum(li.pricing_quantity) <> 0
ORDER BY 1, 2, 3, 4, 5;
