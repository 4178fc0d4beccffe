-- What an open period's invoices would hold today, before its month-level contract charges: its items
-- (its own days' regular items and the corrections that landed in it) grouped into document lines as
-- insert_invoice_lines.sql groups them. Read only.
SELECT li.org_id, min(li.organization) AS organization, li.currency, li.profile_type, li.profile, li.price_id,
       li.pricing_unit, li.unit_price, li.charge_class, li.charge_category, li.contract_id,
       sum(li.pricing_quantity) AS quantity, sum(li.amount) AS amount, count(*) AS item_count, li.charge_level
FROM billing.charge_line_items AS li
WHERE li.billing_period_start = %(period_start)s
GROUP BY li.org_id, li.currency, li.profile_type, li.profile, li.price_id, li.pricing_unit, li.unit_price,
         li.charge_class, li.charge_category, li.contract_id, li.charge_level
ORDER BY li.org_id, li.currency, li.charge_class = 'correction', li.contract_id IS NOT NULL, li.charge_category,
         li.contract_id, li.profile_type, li.profile, li.price_id, li.pricing_unit, li.unit_price, li.charge_level;
