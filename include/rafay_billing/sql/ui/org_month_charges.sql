-- One org's month-level items of a closed month (contract charges and monthly recurring charges, as
-- issued and corrected later): per contract (or MRC instance), category and currency, net of corrections.
SELECT li.contract_id, li.charge_category, li.currency::text AS currency,
       CASE WHEN li.contract_id IS NULL THEN min(li.instance) ELSE '' END AS instance,
       min(li.pricing_unit) AS pricing_unit, sum(li.pricing_quantity) AS quantity, sum(li.amount) AS amount
FROM billing.charge_line_items AS li
WHERE li.org_id = %(org_id)s AND li.usage_date = %(month_start)s AND li.charge_level = 'month'
GROUP BY li.contract_id, li.charge_category, li.currency, li.profile_type, li.profile,
         CASE WHEN li.contract_id IS NULL THEN li.instance_key ELSE '' END
ORDER BY li.contract_id NULLS FIRST, 4, li.charge_category, 3;
