-- The period's pending draft set (locked: one decision at a time), or none.
SELECT draft_set_id, period_start, issuer, fingerprint, status, allow_exceptions, drafted_at, drafted_by, summary,
       decided_at, decided_by, decision, decision_comment
FROM billing.invoice_draft_sets
WHERE period_start = %(period_start)s AND status = 'pending'
FOR UPDATE;
