-- A draft set's lines, per document in line order.
SELECT org_id, currency, line_no, profile_type, profile, price_id, pricing_unit, unit_price, charge_class, quantity,
       amount, item_count
FROM billing.invoice_draft_lines
WHERE draft_set_id = %(draft_set_id)s
ORDER BY org_id, currency, line_no;
