-- What an open period's invoices would hold today, before its month-level charges: its items (its own
-- days' regular items and the corrections that landed in it) grouped into document lines as
-- insert_invoice_lines.sql groups them. Read only. Left out, because the close computes them again and
-- the preview adds them as computed now: the period's own month-level items (drafts awaiting approval;
-- contract_charges/delete_month_items.sql) and the pending month-level corrections of the closed months
-- the close corrects again (recorrected_months; the delete_pending_corrections.sql statements).
SELECT li.org_id, min(li.organization) AS organization, li.currency, li.profile_type, li.profile, li.price_id,
       li.pricing_unit, li.unit_price, li.charge_class, li.charge_category, li.contract_id,
       sum(li.pricing_quantity) AS quantity, sum(li.amount) AS amount, count(*) AS item_count, li.charge_level
FROM billing.charge_line_items AS li
WHERE li.billing_period_start = %(period_start)s
  AND NOT (li.charge_level = 'month' AND li.charge_class = 'regular' AND li.usage_date = %(period_start)s)
  AND NOT (li.charge_level = 'month' AND li.charge_class = 'correction'
           AND li.usage_date = ANY(%(recorrected_months)s::date[]))
GROUP BY li.org_id, li.currency, li.profile_type, li.profile, li.price_id, li.pricing_unit, li.unit_price,
         li.charge_class, li.charge_category, li.contract_id, li.charge_level
ORDER BY li.org_id, li.currency, li.charge_class = 'correction', li.contract_id IS NOT NULL, li.charge_category,
         li.contract_id, li.profile_type, li.profile, li.price_id, li.pricing_unit, li.unit_price, li.charge_level;
