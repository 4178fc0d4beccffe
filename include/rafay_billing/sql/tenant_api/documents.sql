-- The org's issued documents (invoices and credit notes), newest period first; optionally one period
-- and one document type. Every statement of the tenant API is scoped by %(org_id)s, the token's org.
SELECT d.*
FROM (
    SELECT i.invoice_id, i.invoice_number, i.issuer,
           i.document_type,
           i.organization, i.currency, c.minor_unit, i.period_start, i.period_end, i.status, i.subtotal,
           i.line_count, i.issued_at
    FROM billing.invoices AS i
    JOIN billing.currencies AS c ON c.currency = i.currency
    WHERE i.org_id = %(org_id)s
      AND (%(period_start)s::date IS NULL OR i.period_start = %(period_start)s::date)
) AS d
WHERE %(document_type)s::text IS NULL OR d.document_type = %(document_type)s::text
ORDER BY d.period_start DESC, d.issued_at DESC, d.invoice_number;
