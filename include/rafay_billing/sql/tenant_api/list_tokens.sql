-- Every token (of one org when given), newest first; never a hash or a salt.
SELECT token_id, org_id, label, created_at, created_by, expires_at, revoked_at, revoked_by, last_used_at
FROM billing.api_tokens
WHERE %(org_id)s::text IS NULL OR org_id = %(org_id)s::text
ORDER BY created_at DESC, token_id;
