-- One issued document with its currency's ISO 4217 minor unit, as the delivery payload carries it.
SELECT i.invoice_id, i.issuer, i.invoice_seq, i.invoice_number, i.org_id, i.organization, i.currency,
       c.minor_unit, i.period_start, i.period_end, i.status, i.subtotal, i.line_count, i.issued_at,
       i.issued_by,
       i.document_type
FROM billing.invoices AS i
JOIN billing.currencies AS c ON c.currency = i.currency
WHERE i.invoice_id = %(invoice_id)s;
