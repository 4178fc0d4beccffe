-- One document's lines; a correction line also names the usage days it corrects (as documents/invoice_lines.sql).
SELECT l.line_no, l.profile_type, l.profile, l.price_id, l.pricing_unit, l.unit_price,
       l.charge_class, l.quantity, l.amount, l.item_count,
       CASE WHEN l.charge_class = 'correction' THEN coalesce((
           SELECT array_agg(DISTINCT c.usage_date ORDER BY c.usage_date)
           FROM billing.charge_line_items AS c
           WHERE c.billing_period_start = i.period_start AND c.org_id = i.org_id AND c.currency = i.currency
             AND c.charge_class = l.charge_class AND c.profile_type = l.profile_type
             AND c.profile = l.profile AND c.price_id = l.price_id AND c.pricing_unit = l.pricing_unit
             AND c.unit_price = l.unit_price AND c.charge_category = l.charge_category
             AND c.contract_id IS NOT DISTINCT FROM l.contract_id
             AND c.charge_level = l.charge_level
       ), '{}') ELSE '{}' END AS corrects_days,
       l.charge_category, l.contract_id, l.charge_level
FROM billing.invoice_lines AS l
JOIN billing.invoices AS i ON i.invoice_id = l.invoice_id
WHERE l.invoice_id = %(invoice_id)s
ORDER BY l.line_no;
