-- The period's issued invoices, in issue order, with their currency's ISO 4217 minor unit.
SELECT i.invoice_id, i.issuer, i.invoice_seq, i.invoice_number, i.org_id, i.organization, i.currency,
       c.minor_unit, i.period_start, i.period_end, i.status, i.subtotal, i.line_count, i.issued_at,
       i.issued_by
FROM billing.invoices AS i
JOIN billing.currencies AS c ON c.currency = i.currency
WHERE i.period_start = %(period_start)s
ORDER BY i.issuer, i.invoice_seq;
