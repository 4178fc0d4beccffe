-- `rafay-billing deliveries retry`: failed deliveries back to pending, so the next run sends them. The
-- document is named by its id or its number; NULL documents = every failed one (of the endpoint, if given).
UPDATE billing.deliveries AS d
SET status = 'pending', failed_at = NULL
FROM billing.invoices AS i
WHERE i.invoice_id = d.invoice_id AND d.status = 'failed'
  AND (%(documents)s::text[] IS NULL OR d.invoice_id = ANY(%(documents)s::text[])
       OR i.invoice_number = ANY(%(documents)s::text[]))
  AND (%(endpoint)s::text IS NULL OR d.endpoint = %(endpoint)s::text)
RETURNING d.invoice_id, i.invoice_number, d.endpoint;
