-- Count an attempt before the request is sent (a crash mid-request still shows it); last_attempt_at is
-- the second its signature carries. No row: the document is no longer pending (delivered or failed
-- meanwhile) and must not be sent.
UPDATE billing.deliveries
SET attempts = attempts + 1, last_attempt_at = to_timestamp(%(signed_at)s), payload_sha256 = %(payload_sha256)s
WHERE invoice_id = %(invoice_id)s AND endpoint = %(endpoint)s AND status = 'pending'
RETURNING attempts;
