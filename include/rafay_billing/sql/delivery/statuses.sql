-- Where some documents stand at one endpoint (a run's check of what it was asked to deliver).
SELECT d.invoice_id, i.invoice_number, d.status, d.attempts, d.last_status_code, d.last_response, d.last_error
FROM billing.deliveries AS d
JOIN billing.invoices AS i ON i.invoice_id = d.invoice_id
WHERE d.endpoint = %(endpoint)s AND d.invoice_id = ANY(%(invoice_ids)s)
ORDER BY i.issuer, i.invoice_seq;
