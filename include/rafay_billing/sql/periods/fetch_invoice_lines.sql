-- The lines of one invoice, in line order.
SELECT invoice_id, line_no, profile_type, profile, price_id, pricing_unit, unit_price, charge_class, quantity,
       amount, item_count, charge_category, contract_id, charge_level
FROM billing.invoice_lines
WHERE invoice_id = %(invoice_id)s
ORDER BY line_no;
