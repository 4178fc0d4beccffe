-- One draft set.
SELECT draft_set_id, period_start, issuer, fingerprint, status, allow_exceptions, drafted_at, drafted_by, summary,
       decided_at, decided_by, decision, decision_comment
FROM billing.invoice_draft_sets
WHERE draft_set_id = %(draft_set_id)s;
