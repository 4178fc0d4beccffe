-- One `issue` entry of the audit log per invoice of the period.
INSERT INTO billing.audit_log (action, actor, period_start, org_id, detail)
SELECT 'issue', %(actor)s, i.period_start, i.org_id,
       jsonb_build_object('invoice_id', i.invoice_id, 'invoice_number', i.invoice_number, 'currency', i.currency,
                          'subtotal', i.subtotal::text, 'line_count', i.line_count, 'issuer', i.issuer,
                          'document_type', i.document_type)
FROM billing.invoices AS i
WHERE i.period_start = %(period_start)s
ORDER BY i.document_type DESC, i.invoice_seq;
