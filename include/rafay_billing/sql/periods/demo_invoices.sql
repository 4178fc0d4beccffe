-- The invoices of one period, in number order (the demo's printout).
SELECT invoice_number, organization, currency::text, subtotal
FROM billing.invoices
WHERE period_start = %(period_start)s::date
ORDER BY invoice_seq;
