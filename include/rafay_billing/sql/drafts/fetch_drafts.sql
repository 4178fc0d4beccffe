-- A draft set's documents, in the order they would be numbered (invoices, then credit notes; by org, currency).
SELECT draft_set_id, org_id, organization, currency, document_type, subtotal, line_count
FROM billing.invoice_drafts
WHERE draft_set_id = %(draft_set_id)s
ORDER BY document_type DESC, org_id, currency;
