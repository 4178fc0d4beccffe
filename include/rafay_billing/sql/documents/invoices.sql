-- The period's issued documents (invoices, then credit notes), in issue order, with their currency's
-- ISO 4217 minor unit and, for a credit note, the numbers of the invoices it corrects.
SELECT i.invoice_id, i.issuer, i.invoice_seq, i.invoice_number, i.org_id, i.organization, i.currency,
       c.minor_unit, i.period_start, i.period_end, i.status, i.subtotal, i.line_count, i.issued_at,
       i.issued_by, i.document_type,
       coalesce((SELECT array_agg(x.invoice_number ORDER BY x.invoice_number)
                 FROM billing.document_references AS r JOIN billing.invoices AS x ON x.invoice_id = r.corrects_id
                 WHERE r.invoice_id = i.invoice_id), '{}') AS corrects
FROM billing.invoices AS i
JOIN billing.currencies AS c ON c.currency = i.currency
WHERE i.period_start = %(period_start)s
ORDER BY i.issuer, i.document_type DESC, i.invoice_seq;
