-- The decision on a pending set: issued, discarded or stale (its fingerprint no longer matches the ledger).
UPDATE billing.invoice_draft_sets
SET status = %(status)s, decided_at = now(), decided_by = %(decided_by)s, decision = %(decision)s,
    decision_comment = %(comment)s
WHERE draft_set_id = %(draft_set_id)s AND status = 'pending'
RETURNING decided_at;
