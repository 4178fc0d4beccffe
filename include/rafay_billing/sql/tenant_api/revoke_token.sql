-- Revoke a token that is not revoked yet (no row: unknown or revoked already).
UPDATE billing.api_tokens SET revoked_at = now(), revoked_by = %(actor)s
WHERE token_id = %(token_id)s AND revoked_at IS NULL
RETURNING token_id, org_id, label, created_at, created_by, expires_at, revoked_at, revoked_by, last_used_at;
