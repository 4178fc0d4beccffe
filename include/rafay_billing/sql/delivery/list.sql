-- Deliveries for `rafay-billing deliveries list`, each filter optional (NULL = any).
SELECT d.invoice_id, i.invoice_number, i.org_id, i.currency, i.subtotal, i.period_start, d.endpoint, d.status,
       d.attempts, d.last_status_code, d.last_response, d.last_error, d.enqueued_at, d.last_attempt_at,
       d.delivered_at, d.failed_at
FROM billing.deliveries AS d
JOIN billing.invoices AS i ON i.invoice_id = d.invoice_id
WHERE (%(status)s::text IS NULL OR d.status = %(status)s::text)
  AND (%(endpoint)s::text IS NULL OR d.endpoint = %(endpoint)s::text)
  AND (%(period_start)s::date IS NULL OR i.period_start = %(period_start)s::date)
ORDER BY i.period_start, i.issuer, i.invoice_seq, d.endpoint;
