-- The org of a period's first issued document (make demo shows its documents through the tenant API).
SELECT org_id FROM billing.invoices WHERE period_start = %(period_start)s ORDER BY issuer, invoice_seq LIMIT 1;
