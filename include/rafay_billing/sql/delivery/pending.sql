-- The documents waiting for this endpoint, in issue order, with the unix second of their last signed
-- attempt (a new attempt signs a later second, so no two requests of a document share a signature).
SELECT d.invoice_id, i.invoice_number, floor(extract(epoch FROM d.last_attempt_at))::bigint AS last_signed
FROM billing.deliveries AS d
JOIN billing.invoices AS i ON i.invoice_id = d.invoice_id
WHERE d.endpoint = %(endpoint)s AND d.status = 'pending'
ORDER BY i.issuer, i.invoice_seq;
