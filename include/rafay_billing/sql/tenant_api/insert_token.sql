-- A new API token (only the salted hash of its secret); no row when the expiry is not in the future.
INSERT INTO billing.api_tokens (token_id, org_id, secret_hash, salt, kdf, label, created_by, expires_at)
SELECT %(token_id)s, %(org_id)s, %(secret_hash)s, %(salt)s, %(kdf)s, %(label)s, %(created_by)s, %(expires_at)s
WHERE %(expires_at)s::timestamptz IS NULL OR %(expires_at)s::timestamptz > now()
RETURNING token_id;
