-- One issued document of the org, by its id or its number. Another org's document is not found, by the
-- same query that finds no document at all (no other branch, the same index work).
SELECT i.invoice_id, i.issuer, i.invoice_seq, i.invoice_number, i.org_id, i.organization, i.currency,
       c.minor_unit, i.period_start, i.period_end, i.status, i.subtotal, i.line_count, i.issued_at,
       i.issued_by,
       i.document_type
FROM billing.invoices AS i
JOIN billing.currencies AS c ON c.currency = i.currency
WHERE i.org_id = %(org_id)s AND (i.invoice_id = %(document)s OR i.invoice_number = %(document)s)
ORDER BY (i.invoice_id = %(document)s) DESC
LIMIT 1;
