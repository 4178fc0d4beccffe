-- A new drafting of the period supersedes its pending drafts (at most one pending set per period).
UPDATE billing.invoice_draft_sets
SET status = 'superseded', decided_at = now(), decided_by = %(actor)s
WHERE period_start = %(period_start)s AND status = 'pending'
RETURNING draft_set_id;
