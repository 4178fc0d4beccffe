-- What a closed month's contract charges were issued as, per contract: the net of its month-level
-- items (the month's regular item and corrections issued since: pending ones, in open periods, are
-- replaced by the next computation, so they are not counted), with the newest charge's description
-- (kind, unit, unit price) and the run that wrote it. Contracts whose net is 0 are left out.
SELECT li.contract_id, min(li.org_id) AS org_id, li.currency::text AS currency,
       (array_agg(li.profile ORDER BY li.correction_seq DESC, li.entry))[1] AS kind,
       (array_agg(li.charge_category ORDER BY li.correction_seq DESC, li.entry))[1] AS category,
       (array_agg(li.pricing_unit ORDER BY li.correction_seq DESC, li.entry))[1] AS unit,
       (array_agg(li.unit_price ORDER BY li.correction_seq DESC, li.entry))[1] AS unit_price,
       (array_agg(li.run_id ORDER BY li.correction_seq DESC, li.entry))[1] AS run_id,
       sum(li.pricing_quantity) AS quantity, sum(li.amount) AS amount
FROM billing.charge_line_items AS li
WHERE li.usage_date = %(month)s AND li.charge_level = 'month'
  AND EXISTS (SELECT 1 FROM billing.billing_periods AS p WHERE p.period_start = li.billing_period_start)
  AND li.charge_category <> 'usage'
GROUP BY li.contract_id, li.currency
HAVING sum(li.amount) <> 0 OR sum(li.pricing_quantity) <> 0
ORDER BY li.contract_id, li.currency;
