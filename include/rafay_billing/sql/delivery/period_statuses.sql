-- Where the documents of some periods stand at one endpoint (a run's check of what it was asked to deliver).
SELECT d.invoice_id, i.invoice_number, d.status, d.attempts, d.last_status_code
FROM billing.deliveries AS d
JOIN billing.invoices AS i ON i.invoice_id = d.invoice_id
WHERE d.endpoint = %(endpoint)s AND i.period_start = ANY(%(period_starts)s)
ORDER BY i.issuer, i.invoice_seq;
