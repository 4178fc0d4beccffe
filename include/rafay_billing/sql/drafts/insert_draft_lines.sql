-- The drafts' lines, grouped and numbered exactly as periods/insert_invoice_lines.sql numbers an issued
-- document's lines (regular lines first, usage before the month's contract charges, then corrections).
INSERT INTO billing.invoice_draft_lines (
    draft_set_id, org_id, currency, line_no, profile_type, profile, price_id, pricing_unit, unit_price, charge_class,
    quantity, amount, item_count
)
SELECT %(draft_set_id)s, l.org_id, l.currency,
       row_number() OVER (PARTITION BY l.org_id, l.currency
                          ORDER BY l.charge_class = 'correction', l.contract_id IS NOT NULL, l.charge_category,
                                   l.contract_id, l.profile_type, l.profile, l.price_id, l.pricing_unit,
                                   l.unit_price, l.charge_level),
       l.profile_type, l.profile, l.price_id, l.pricing_unit, l.unit_price, l.charge_class, l.quantity, l.amount,
       l.item_count
FROM (
    SELECT li.org_id, li.currency, li.profile_type, li.profile, li.price_id, li.pricing_unit, li.unit_price,
           li.charge_class, li.charge_category, li.contract_id, li.charge_level, sum(li.pricing_quantity) AS quantity,
           sum(li.amount) AS amount, count(*) AS item_count
    FROM billing.charge_line_items AS li
    WHERE li.billing_period_start = %(period_start)s
    GROUP BY li.org_id, li.currency, li.profile_type, li.profile, li.price_id, li.pricing_unit, li.unit_price,
             li.charge_class, li.charge_category, li.contract_id, li.charge_level
) AS l;
