-- One token's public facts (never its hash or salt).
SELECT token_id, org_id, label, created_at, created_by, expires_at, revoked_at, revoked_by, last_used_at
FROM billing.api_tokens
WHERE token_id = %(token_id)s;
