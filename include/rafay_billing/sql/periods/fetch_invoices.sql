-- The documents of a period (invoices, then credit notes), in number order, with the invoices a credit
-- note corrects.
SELECT i.invoice_id, i.invoice_number, i.issuer, i.invoice_seq, i.org_id, i.organization, i.currency, i.period_start,
       i.period_end, i.status, i.subtotal, i.line_count, i.issued_at, i.issued_by, i.document_type,
       coalesce((SELECT array_agg(r.corrects_id ORDER BY r.corrects_id) FROM billing.document_references AS r
                 WHERE r.invoice_id = i.invoice_id), '{}') AS corrects
FROM billing.invoices AS i
WHERE i.period_start = %(period_start)s
ORDER BY i.issuer, i.document_type DESC, i.invoice_seq;
