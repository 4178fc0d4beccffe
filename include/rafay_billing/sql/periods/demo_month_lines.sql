-- The contract and monthly lines of one period's invoices (the demo's printout): covered usage,
-- reservation fees, fees, true-ups and monthly recurring charges, in invoice and line order.
SELECT i.invoice_number, l.charge_category, coalesce(l.contract_id, '') AS contract_id, l.profile,
       l.pricing_unit, l.quantity, l.amount, i.currency::text
FROM billing.invoice_lines AS l
JOIN billing.invoices AS i USING (invoice_id)
WHERE i.period_start = %(period_start)s::date AND (l.contract_id IS NOT NULL OR l.charge_level = 'month')
ORDER BY i.invoice_seq, l.line_no;
