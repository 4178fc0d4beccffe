-- Queue a period's issued documents for one endpoint; documents queued before (whatever their status)
-- are left as they are. Returns the documents queued now.
INSERT INTO billing.deliveries (invoice_id, endpoint)
SELECT i.invoice_id, %(endpoint)s
FROM billing.invoices AS i
WHERE i.period_start = %(period_start)s AND i.status = 'issued'
ORDER BY i.issuer, i.invoice_seq
ON CONFLICT ON CONSTRAINT deliveries_pkey DO NOTHING
RETURNING invoice_id;
