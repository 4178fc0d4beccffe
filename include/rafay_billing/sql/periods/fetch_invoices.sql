-- The invoices of a period, in number order.
SELECT invoice_id, invoice_number, issuer, invoice_seq, org_id, organization, currency, period_start, period_end,
       status, subtotal, line_count, issued_at, issued_by
FROM billing.invoices
WHERE period_start = %(period_start)s
ORDER BY issuer, invoice_seq;
