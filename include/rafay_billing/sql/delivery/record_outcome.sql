-- The answer to the attempt just claimed: 'delivered' (a 2xx), 'failed' (a permanent refusal) or still
-- 'pending' (a transient failure: retried later), with the status code, a body excerpt or the error.
UPDATE billing.deliveries
SET status = %(status)s,
    last_status_code = %(status_code)s,
    last_response = %(response)s,
    last_error = %(error)s,
    delivered_at = CASE WHEN %(status)s = 'delivered' THEN now() END,
    failed_at = CASE WHEN %(status)s = 'failed' THEN now() END
WHERE invoice_id = %(invoice_id)s AND endpoint = %(endpoint)s AND status = 'pending'
RETURNING status;
