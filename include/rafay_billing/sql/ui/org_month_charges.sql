-- One org's month-level items of a closed month (contract charges, as issued and corrected later):
-- per contract, category and currency, net of corrections.
SELECT li.contract_id, li.charge_category, li.currency::text AS currency, li.pricing_unit,
       sum(li.pricing_quantity) AS quantity, sum(li.amount) AS amount
FROM billing.charge_line_items AS li
WHERE li.org_id = %(org_id)s AND li.usage_date = %(month_start)s AND li.charge_level = 'month'
GROUP BY 1, 2, 3, 4
ORDER BY 1, 2, 3;
